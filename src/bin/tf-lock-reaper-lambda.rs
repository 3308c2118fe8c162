//! The scheduled Lambda (`provided.al2023`): one reaper pass per invocation.
//! Configuration is parsed and SDK clients are built once per container; a
//! configuration error fails the container's init with every problem logged.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tf_lock_reaper::aws;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::lambda::{effective_deadline, invocation_config};
use tf_lock_reaper::lockfiles::S3LockfileStore;
use tf_lock_reaper::metrics::MetricsSink;
use tf_lock_reaper::notify::Dispatcher;
use tf_lock_reaper::run::{Clock, Reaper, SystemClock};
use tf_lock_reaper::store::DynamoStore;

/// Built once per container, shared by every invocation.
struct Container {
    config: Config,
    store: DynamoStore,
    lockfiles: S3LockfileStore,
    metrics: Box<dyn MetricsSink>,
    alerts: Dispatcher,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).without_time(); // CloudWatch stamps every line
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.with_ansi(false).init();
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::Emf }) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(problems = e.problems.len(), "{e}");
            std::process::exit(2);
        }
    };
    let sdk = aws::sdk_config().await;
    // The routing key secret is read here, once per container.
    let alerts = match aws::dispatcher(&config, &sdk, true).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(problems = e.problems.len(), "{e}");
            std::process::exit(2);
        }
    };
    let container = Arc::new(Container {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk)),
        lockfiles: S3LockfileStore::new(aws::s3_client(&sdk)),
        metrics: aws::metrics_sink(config.metrics_sink, &sdk),
        alerts,
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let container = Arc::clone(&container);
        async move { handle(&container, event).await }
    }))
    .await
}

async fn handle(c: &Container, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let config = invocation_config(&c.config, &event.payload);
    let deadline = effective_deadline(event.context.deadline(), SystemClock.now(), config.run_budget);
    let reaper = Reaper {
        config: &config,
        store: &c.store,
        lockfiles: &c.lockfiles,
        metrics: c.metrics.as_ref(),
        alerts: &c.alerts,
        clock: &SystemClock,
    };
    let report = reaper.run(Some(deadline)).await;
    tracing::info!(
        ok = report.ok,
        partial = report.partial,
        breaker_tripped = report.breaker_tripped,
        duration_ms = report.duration_ms,
        "run finished"
    );
    Ok(serde_json::to_value(&report)?)
}
