//! Metrics: derived from the run report as plain data, then written by a
//! sink: CloudWatch Embedded Metric Format lines on stdout (no API call, no
//! IAM), `PutMetricData`, or nothing.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use chrono::{DateTime, Utc};

use crate::model::SourceKind;
use crate::report::RunReport;

/// Unit of one metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Values that share one set of dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSet {
    /// Empty for run-wide metrics.
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<(&'static str, f64, Unit)>,
}

/// The dimension that names a source: `TableName` or `Bucket`.
pub fn dimension_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Table => "TableName",
        SourceKind::Bucket => "Bucket",
    }
}

/// Per-source metrics plus run-wide ones (`RunDurationMs`, `AlertsSent`,
/// `AlertErrors`; no dimension).
pub fn metric_sets(report: &RunReport) -> Vec<MetricSet> {
    let mut sets: Vec<MetricSet> = report
        .sources
        .iter()
        .map(|t| {
            let c = &t.counts;
            let n = |v: usize| v as f64;
            MetricSet {
                dimensions: vec![(dimension_name(t.kind).to_string(), t.name.clone())],
                values: vec![
                    ("LocksHeld", n(c.locks_held), Unit::Count),
                    ("StaleLocks", n(c.stale), Unit::Count),
                    ("OldestLockAgeSeconds", t.oldest_lock_age_seconds.unwrap_or(0) as f64, Unit::Seconds),
                    ("UnreadableItems", n(c.unreadable), Unit::Count),
                    ("LocksDeleted", n(c.deleted), Unit::Count),
                    ("LocksChanged", n(c.changed), Unit::Count),
                    ("TtlBackfilled", n(c.ttl_backfilled), Unit::Count),
                    ("ActionErrors", n(c.errors), Unit::Count),
                    ("BreakerTripped", if report.breaker_tripped { 1.0 } else { 0.0 }, Unit::Count),
                    ("ScanErrors", if t.scan_error.is_some() { 1.0 } else { 0.0 }, Unit::Count),
                ],
            }
        })
        .collect();
    sets.push(MetricSet {
        dimensions: Vec::new(),
        values: vec![
            ("RunDurationMs", report.duration_ms as f64, Unit::Milliseconds),
            ("AlertsSent", report.alerts_sent as f64, Unit::Count),
            ("AlertErrors", report.alert_errors as f64, Unit::Count),
        ],
    });
    sets
}

/// Errors from a metrics sink (never fatal to a run).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("writing EMF lines: {0}")]
    Io(#[from] std::io::Error),
    #[error("PutMetricData failed: {0}")]
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

/// One EMF JSON document for a metric set.
pub fn emf_line(namespace: &str, at: DateTime<Utc>, set: &MetricSet) -> String {
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
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for set in sets {
            writeln!(out, "{}", emf_line(namespace, at, set))?;
        }
        out.flush()?;
        Ok(())
    }
}

/// `PutMetricData` through the CloudWatch API.
pub struct ApiSink {
    client: aws_sdk_cloudwatch::Client,
}

impl ApiSink {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        ApiSink { client }
    }
}

/// CloudWatch accepts up to 1000 datums per request.
const MAX_DATUMS_PER_CALL: usize = 1000;

#[async_trait]
impl MetricsSink for ApiSink {
    async fn publish(&self, namespace: &str, at: DateTime<Utc>, sets: &[MetricSet]) -> Result<(), MetricsError> {
        let timestamp = aws_smithy_types::DateTime::from_millis(at.timestamp_millis());
        let datums: Vec<MetricDatum> = sets
            .iter()
            .flat_map(|set| {
                let dims: Vec<Dimension> =
                    set.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
                set.values.iter().map(move |(name, value, unit)| {
                    MetricDatum::builder()
                        .metric_name(*name)
                        .value(*value)
                        .unit(StandardUnit::from(unit.as_str()))
                        .timestamp(timestamp)
                        .set_dimensions(Some(dims.clone()))
                        .build()
                })
            })
            .collect();
        for chunk in datums.chunks(MAX_DATUMS_PER_CALL) {
            self.client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| MetricsError::Api(aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string()))?;
        }
        Ok(())
    }
}
