//! Building AWS clients and adapters from the environment, shared by both
//! entrypoints. The SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL` and the usual
//! credential chain itself.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::alerts::AlertSettings;
use crate::config::{Config, ConfigError, MetricsSinkKind, Problem, RoutingKeySource};
use crate::metrics::{ApiSink, EmfSink, MetricsSink, NoMetrics};
use crate::notify::{
    AlertState, Dispatcher, DynamoAlertState, Notifier, PagerDutyNotifier, RetryPolicy, Secret, SnsNotifier,
};
use crate::run::SystemClock;

/// The SDK configuration with the standard retry policy.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// S3 client: path-style addressing when an endpoint override is set (local
/// servers such as moto cannot do virtual-hosted buckets), AWS's default otherwise.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The metrics sink the configuration asks for.
pub fn metrics_sink(kind: MetricsSinkKind, sdk: &SdkConfig) -> Box<dyn MetricsSink> {
    match kind {
        MetricsSinkKind::Emf => Box::new(EmfSink::new(std::io::stdout())),
        MetricsSinkKind::Api => Box::new(ApiSink::new(aws_sdk_cloudwatch::Client::new(sdk))),
        MetricsSinkKind::None => Box::new(NoMetrics),
    }
}

/// Read the PagerDuty routing key from Secrets Manager: the secret may be
/// the bare key or JSON `{"routing_key": "..."}`. Failure is a configuration
/// error naming the variable (the key itself is never echoed).
pub async fn routing_key_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<Secret, ConfigError> {
    let problem = |expected: String| ConfigError {
        problems: vec![Problem {
            variable: "PAGERDUTY_ROUTING_KEY_SECRET_ARN".into(),
            value: arn.to_string(),
            expected,
        }],
    };
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        problem(format!(
            "a secret the reaper can read (GetSecretValue failed: {})",
            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
        ))
    })?;
    let text = out.secret_string().unwrap_or_default();
    parse_routing_key_secret(text).map_err(problem)
}

/// The routing key from a secret's text: bare, or JSON with `routing_key`.
pub fn parse_routing_key_secret(text: &str) -> Result<Secret, String> {
    const SHAPE: &str = "a secret string holding the routing key, bare or as {\"routing_key\": \"...\"}";
    let text = text.trim();
    let key = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|_| format!("{SHAPE}: the secret is not valid JSON"))?;
        v.get("routing_key")
            .and_then(|k| k.as_str())
            .map(str::trim)
            .ok_or_else(|| format!("{SHAPE}: the JSON has no string routing_key"))?
            .to_string()
    } else {
        text.to_string()
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("{SHAPE}: the key is empty or contains whitespace"));
    }
    Ok(Secret::new(key))
}

/// The notification channels and state the configuration asks for, or none
/// when `enabled` is false (`--no-notify`).
pub async fn dispatcher(config: &Config, sdk: &SdkConfig, enabled: bool) -> Result<Dispatcher, ConfigError> {
    let n = &config.notify;
    let mut notifiers: Vec<Box<dyn Notifier>> = Vec::new();
    if !enabled {
        return Ok(Dispatcher::disabled());
    }
    if let Some(arn) = &n.sns_topic_arn {
        notifiers.push(Box::new(SnsNotifier::new(aws_sdk_sns::Client::new(sdk), arn.clone())));
    }
    if let Some(pd) = &n.pagerduty {
        let key = match &pd.routing_key {
            RoutingKeySource::Plain(k) => k.clone(),
            RoutingKeySource::SecretArn(arn) => {
                routing_key_from_secret(&aws_sdk_secretsmanager::Client::new(sdk), arn).await?
            }
        };
        let notifier = PagerDutyNotifier::new(&pd.events_url, key, RetryPolicy::default(), Box::new(SystemClock))
            .map_err(|e| ConfigError {
                problems: vec![Problem {
                    variable: "PAGERDUTY_EVENTS_URL".into(),
                    value: pd.events_url.clone(),
                    expected: e.0,
                }],
            })?;
        notifiers.push(Box::new(notifier));
    }
    let state: Option<Box<dyn AlertState>> = n
        .state_table
        .as_ref()
        .map(|t| Box::new(DynamoAlertState::new(aws_sdk_dynamodb::Client::new(sdk), t.clone())) as Box<dyn AlertState>);
    Ok(Dispatcher {
        notifiers,
        state,
        renotify_after: n.renotify_after,
        settings: AlertSettings { severity: n.severity },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_key_secret_shapes() {
        assert_eq!(parse_routing_key_secret("abc123\n").unwrap().expose(), "abc123");
        assert_eq!(parse_routing_key_secret(r#"{"routing_key": "abc123", "other": 1}"#).unwrap().expose(), "abc123");
        for bad in ["", "   ", r#"{"key": "x"}"#, r#"{"routing_key": ""}"#, "{not json", "two words"] {
            assert!(parse_routing_key_secret(bad).is_err(), "{bad:?}");
        }
    }
}
