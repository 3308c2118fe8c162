//! Building AWS clients and adapters from the environment, shared by both
//! entrypoints. The SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL` and the usual
//! credential chain itself.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::MetricsSinkKind;
use crate::metrics::{ApiSink, EmfSink, MetricsSink, NoMetrics};

/// The SDK configuration with the standard retry policy.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The metrics sink the configuration asks for.
pub fn metrics_sink(kind: MetricsSinkKind, sdk: &SdkConfig) -> Box<dyn MetricsSink> {
    match kind {
        MetricsSinkKind::Emf => Box::new(EmfSink::new(std::io::stdout())),
        MetricsSinkKind::Api => Box::new(ApiSink::new(aws_sdk_cloudwatch::Client::new(sdk))),
        MetricsSinkKind::None => Box::new(NoMetrics),
    }
}
