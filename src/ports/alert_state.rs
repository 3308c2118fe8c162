//! The notify-once state: which alerts are open, shared by overlapping runs,
//! so an alert pages once, is reminded on schedule and resolves.

use async_trait::async_trait;

use crate::domain::alert::{OpenAlert, Severity};

/// A failed state-table call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification state table: {0}")]
pub struct StateError(pub String);

/// Which alerts are open, shared by overlapping runs.
#[async_trait]
pub trait AlertState: Send + Sync {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError>;
    /// Record a new open alert; `false` if another run already did.
    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError>;
    /// Move `last_notified_at` from `expected` to `now` (and set severity);
    /// `false` if another run already did.
    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError>;
    /// A grouped alert now covers `count` locks: record it (no message).
    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError>;
    /// Forget an alert (it resolved, or its trigger could not be delivered).
    async fn forget(&self, key: &str) -> Result<(), StateError>;
}

/// A shared state is one too, as for notifiers.
#[async_trait]
impl<S: AlertState> AlertState for std::sync::Arc<S> {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        self.as_ref().open_alerts().await
    }
    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError> {
        self.as_ref().claim(alert).await
    }
    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        self.as_ref().renotified(key, expected, now, severity).await
    }
    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError> {
        self.as_ref().recount(key, count, summary).await
    }
    async fn forget(&self, key: &str) -> Result<(), StateError> {
        self.as_ref().forget(key).await
    }
}
