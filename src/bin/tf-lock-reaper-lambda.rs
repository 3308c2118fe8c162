//! The scheduled Lambda: parse the configuration and build the adapters once
//! per container, then serve invocations; each returns its run report.
//! Everything else lives in `tf_lock_reaper::entrypoints::lambda`.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tf_lock_reaper::entrypoints::lambda::{init_tracing, Container};

// One thread: a pass is network-bound, and one thread keeps one allocator
// arena, so memory follows the locks that matter (see `make bench-lambda`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let container = match Container::from_env().await {
        Ok(c) => c,
        Err(e) => {
            // Fail the container's init, every problem logged.
            tracing::error!("{e}");
            std::process::exit(e.exit_code().into());
        }
    };
    let container = &container;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { container.handle(event).await })).await
}
