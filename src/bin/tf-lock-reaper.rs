//! `tf-lock-reaper`: parse the arguments, run the command, print, exit.
//! Everything else lives in `tf_lock_reaper::entrypoints::cli`.

use std::process::ExitCode;

use clap::Parser;
use tf_lock_reaper::entrypoints::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    cli::init_tracing(args.verbose());
    match cli::run(args).await {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) => {
            // Configuration errors already end with a newline (one line per problem).
            let text = e.to_string();
            eprint!("error: {text}{}", if text.ends_with('\n') { "" } else { "\n" });
            ExitCode::from(e.exit_code())
        }
    }
}
