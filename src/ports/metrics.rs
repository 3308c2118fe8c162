//! Where metric sets go.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::metrics::MetricSet;

/// Errors from a metrics sink (never fatal to a run).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("writing EMF lines: {0}")]
    Io(#[from] std::io::Error),
    /// The readable error of the failed call.
    #[error("{0}")]
    Api(String),
}

/// Where metric sets go.
#[async_trait]
pub trait MetricsSink: Send + Sync {
    async fn publish(&self, namespace: &str, at: DateTime<Utc>, sets: &[MetricSet]) -> Result<(), MetricsError>;
}

/// Metrics off.
pub struct NoMetrics;

#[async_trait]
impl MetricsSink for NoMetrics {
    async fn publish(&self, _: &str, _: DateTime<Utc>, _: &[MetricSet]) -> Result<(), MetricsError> {
        Ok(())
    }
}
