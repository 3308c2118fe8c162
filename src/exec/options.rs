//! What `exec` and `release` are given, and how `exec` speaks: shared by
//! the rooms of `exec`, importing none of them but the holder's stores.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::domain::backend::BackendConnection;
use crate::domain::policy::HeartbeatTimeouts;
use crate::exec::holder::{BeatSettings, Stores};
use crate::ports::clock::Clock;

/// Builds the stores of a backend (the entrypoint wires the AWS adapters).
pub(crate) type Connect = Box<dyn Fn(BackendConnection) -> BoxFuture<'static, Stores> + Send + Sync>;

/// What to do when another run took the state while the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// SIGINT the Terraform holding the lock, so it stops before it writes
    /// state it no longer holds the lock for.
    Interrupt,
    Warn,
}

/// Everything `exec` needs.
pub(crate) struct ExecOptions {
    pub command: Vec<String>,
    pub beat: BeatSettings,
    pub every: Duration,
    /// How another run's lock that blocks the command is judged.
    pub judge: HeartbeatTimeouts,
    /// The CI variable that chose the CI defaults; `None` on a terminal.
    pub ci: Option<&'static str>,
    pub lock_file: Option<PathBuf>,
    /// The job's index of records (`TF_LOCK_REAPER_JOB_RECORDS`), where
    /// this command's record is noted for `release --job`.
    pub job_records: Option<PathBuf>,
    pub on_conflict: OnConflict,
    /// AWS's clock, measured by the stores' clients: heartbeats and the
    /// rolling TTL are written in it.
    pub clock: std::sync::Arc<dyn Clock>,
}

/// Print one line for the person reading the job's log.
pub(super) fn say(text: &str) {
    eprintln!("tf-lock-reaper exec: {text}");
}
