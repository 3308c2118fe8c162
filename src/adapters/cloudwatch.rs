//! Metrics through the CloudWatch `PutMetricData` API.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use chrono::{DateTime, Utc};

use crate::adapters::aws_error::Origin;

use crate::domain::metrics::MetricSet;
use crate::ports::metrics::{MetricsError, MetricsSink};

/// `PutMetricData` through the CloudWatch API.
pub struct ApiSink {
    client: aws_sdk_cloudwatch::Client,
    origin: Origin,
}

impl ApiSink {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        let origin = Origin::new(
            "monitoring",
            client.config().region().map(|r| r.as_ref()),
            client.config().timeout_config(),
            None,
        );
        ApiSink { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
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
                .map_err(|e| {
                    let what = format!("namespace {namespace}");
                    MetricsError::Api(
                        self.origin.explain("PutMetricData", "cloudwatch:PutMetricData", &what, &e).message,
                    )
                })?;
        }
        Ok(())
    }
}
