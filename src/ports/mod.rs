//! The ports: one small trait per edge of the pipeline (lock tables,
//! lockfile buckets, notifiers, the notify-once state, metrics, the clock).
//! The pipeline sees only these; `adapters` implement them for AWS and
//! PagerDuty, `fakes` in memory.

pub mod alert_state;
pub mod clock;
pub mod lock_tables;
pub mod lockfiles;
pub mod metrics;
pub mod notifier;

/// Result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// The condition failed: the item changed or is gone. Nothing was written.
    Changed,
}

/// A failed call, with the service's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);
