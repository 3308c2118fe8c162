//! CloudWatch Embedded Metric Format: one JSON line per metric set on
//! stdout, which Lambda's log agent turns into metrics (no API call, no IAM).

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::metrics::MetricSet;
use crate::ports::metrics::{MetricsError, MetricsSink};
use crate::support::sync::locked;

/// One EMF JSON document for a metric set.
pub(crate) fn emf_line(namespace: &str, at: DateTime<Utc>, set: &MetricSet) -> String {
    let dimension_names: Vec<&str> = set.dimensions.iter().map(|(k, _)| k.as_str()).collect();
    let metrics: Vec<serde_json::Value> =
        set.values.iter().map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit.as_str()})).collect();
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": metrics,
            }]
        }),
    );
    for (k, v) in &set.dimensions {
        doc.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    for (name, value, _) in &set.values {
        doc.insert((*name).to_string(), serde_json::json!(value));
    }
    serde_json::Value::Object(doc).to_string()
}

/// EMF lines to a writer (stdout in production, a buffer in tests).
pub struct EmfSink<W: std::io::Write + Send> {
    out: Mutex<W>,
}

impl<W: std::io::Write + Send> EmfSink<W> {
    pub fn new(out: W) -> Self {
        EmfSink { out: Mutex::new(out) }
    }

    pub fn into_inner(self) -> W {
        match self.out.into_inner() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[async_trait]
impl<W: std::io::Write + Send> MetricsSink for EmfSink<W> {
    async fn publish(&self, namespace: &str, at: DateTime<Utc>, sets: &[MetricSet]) -> Result<(), MetricsError> {
        let mut out = locked(&self.out);
        for set in sets {
            writeln!(out, "{}", emf_line(namespace, at, set))?;
        }
        out.flush()?;
        Ok(())
    }
}
