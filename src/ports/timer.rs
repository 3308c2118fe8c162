//! Waiting, behind a trait so the pure pipeline can bound a source's scan
//! by the pass's deadline without naming an async runtime.

use std::time::Duration;

use async_trait::async_trait;

/// Sleeps.
#[async_trait]
pub(crate) trait Timer: Send + Sync {
    async fn sleep(&self, duration: Duration);
}

/// A timer that never fires: no deadline, nothing is cut short.
pub(crate) struct NeverTimer;

#[async_trait]
impl Timer for NeverTimer {
    async fn sleep(&self, _: Duration) {
        futures::future::pending::<()>().await
    }
}
