//! The ports: one small trait per edge of the pipeline (lock tables,
//! lockfile buckets, notifiers, the notify-once state, metrics, the clock).
//! The pipeline sees only these; `adapters` implement them for AWS and
//! PagerDuty, `fakes` in memory.

pub mod alert_state;
pub mod clock;
pub(crate) mod discovery;
pub(crate) mod inspect;
pub mod lock_tables;
pub mod lockfiles;
pub mod metrics;
pub mod notifier;
pub(crate) mod timer;

use crate::domain::failure::ErrorKind;

/// Result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// The condition failed and the lock is now another lock (re-acquired,
    /// or changed). Nothing was written.
    Changed,
    /// The condition failed and the lock is gone: released by its holder,
    /// or removed by an earlier attempt of this very write whose response
    /// was lost (the SDK retried, and the retry's condition failed).
    Gone,
}

/// A failed call: one readable line (what failed, why, what to do) and
/// its kind. The SDK's full error chain goes to debug logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SourceError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError { kind, message: message.into() }
    }
}
