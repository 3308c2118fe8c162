//! A metrics sink that records what it was given.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::metrics::MetricSet;
use crate::ports::metrics::{MetricsError, MetricsSink};
use crate::support::sync::locked;

/// Metric sets as published.
#[derive(Default)]
pub struct RecordingMetrics {
    pub published: Mutex<Vec<MetricSet>>,
}

#[async_trait]
impl MetricsSink for RecordingMetrics {
    async fn publish(&self, _namespace: &str, _at: DateTime<Utc>, sets: &[MetricSet]) -> Result<(), MetricsError> {
        locked(&self.published).extend_from_slice(sets);
        Ok(())
    }
}
