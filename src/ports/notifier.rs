//! One notification channel (SNS, PagerDuty).

use async_trait::async_trait;

use crate::domain::alert::Message;
use crate::support::deadline::Deadline;

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(pub String);

/// One channel.
#[async_trait]
pub trait Notifier: Send + Sync {
    fn channel(&self) -> &'static str;
    /// A trigger with an open alert's key updates that alert without
    /// notifying anyone again (PagerDuty's dedup_key); other channels would
    /// post a new message.
    fn updates_in_place(&self) -> bool {
        false
    }
    /// Deliver one message; retries, if any, stop before `deadline`.
    async fn send(&self, message: &Message, deadline: Deadline) -> Result<(), NotifyError>;
}

/// A shared notifier is one too: whoever holds another handle (a test, a
/// second dispatcher) sees the same channel.
#[async_trait]
impl<N: Notifier> Notifier for std::sync::Arc<N> {
    fn channel(&self) -> &'static str {
        self.as_ref().channel()
    }

    fn updates_in_place(&self) -> bool {
        self.as_ref().updates_in_place()
    }

    async fn send(&self, message: &Message, deadline: Deadline) -> Result<(), NotifyError> {
        self.as_ref().send(message, deadline).await
    }
}
