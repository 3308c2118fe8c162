//! The tokio adapter of [`Timer`].

use std::time::Duration;

use async_trait::async_trait;

use crate::ports::timer::Timer;

/// Sleeps on the tokio runtime.
pub(crate) struct TokioTimer;

#[async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}
