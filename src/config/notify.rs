//! Notification settings: SNS, PagerDuty (routing key bare or from Secrets
//! Manager), alert severity, and the notify-once state table.

use std::time::Duration;

use crate::config::naming::{valid_arn, valid_table_name};
use crate::config::reader::Reader;
use crate::domain::alert::{Severity, DEFAULT_GROUP_OVER};
use crate::support::secret::Secret;

/// Where the PagerDuty routing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingKeySource {
    Plain(Secret),
    /// Read from Secrets Manager by the entrypoint, once per container.
    SecretArn(String),
}

/// PagerDuty settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    pub routing_key: RoutingKeySource,
    pub events_url: String,
}

/// Where the Slack webhook URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSource {
    Plain(Secret),
    /// Read from Secrets Manager by the entrypoint, once per container.
    SecretArn(String),
}

/// Notification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub sns_topic_arn: Option<String>,
    /// `CHAT_TOPIC_ARN`: custom notifications for Amazon Q Developer in chat applications.
    pub chat_topic_arn: Option<String>,
    pub slack_webhook: Option<WebhookSource>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub severity: Severity,
    pub state_table: Option<String>,
    pub renotify_after: Option<Duration>,
    /// `ALERT_GROUP_OVER`.
    pub group_over: usize,
}

/// Read the notification variables.
pub(crate) fn read(r: &mut Reader<'_>) -> NotifyConfig {
    let sns_topic_arn = r.get("SNS_TOPIC_ARN").map(str::to_string);
    if let Some(arn) = &sns_topic_arn {
        if !valid_arn(arn, "sns", None) {
            r.problem(
                "SNS_TOPIC_ARN",
                arn,
                "an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:terraform-locks",
            );
        }
    }
    let chat_topic_arn = r.get("CHAT_TOPIC_ARN").map(str::to_string);
    if let Some(arn) = &chat_topic_arn {
        if !valid_arn(arn, "sns", None) {
            r.problem(
                "CHAT_TOPIC_ARN",
                arn,
                "an SNS topic ARN that Amazon Q Developer in chat applications subscribes to, such as arn:aws:sns:us-east-1:123456789012:terraform-locks-chat",
            );
        }
    }
    let slack_webhook = read_slack(r);
    let plain = r.get("PAGERDUTY_ROUTING_KEY");
    let secret_arn = r.get("PAGERDUTY_ROUTING_KEY_SECRET_ARN");
    if let Some(arn) = secret_arn {
        if !valid_arn(arn, "secretsmanager", Some("secret")) {
            r.problem(
                "PAGERDUTY_ROUTING_KEY_SECRET_ARN",
                arn,
                "a Secrets Manager secret ARN such as arn:aws:secretsmanager:us-east-1:123456789012:secret:pagerduty-AbCdEf",
            );
        }
    }
    let routing_key = match (plain, secret_arn) {
        (Some(_), Some(_)) => {
            r.problem(
                "PAGERDUTY_ROUTING_KEY",
                "<redacted>",
                "unset when PAGERDUTY_ROUTING_KEY_SECRET_ARN is set (use one of the two)",
            );
            None
        }
        (Some(key), None) => Some(RoutingKeySource::Plain(Secret::new(key))),
        (None, Some(arn)) => Some(RoutingKeySource::SecretArn(arn.to_string())),
        (None, None) => None,
    };
    let events_url = r.get("PAGERDUTY_EVENTS_URL").unwrap_or("https://events.pagerduty.com").to_string();
    let url_ok = url::Url::parse(&events_url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none());
    if !url_ok {
        r.problem("PAGERDUTY_EVENTS_URL", &events_url, "an http(s) base URL such as https://events.pagerduty.com");
    }
    let severity = r.choice(
        "PAGERDUTY_SEVERITY",
        Severity::Warning,
        &[
            ("critical", Severity::Critical),
            ("error", Severity::Error),
            ("warning", Severity::Warning),
            ("info", Severity::Info),
        ],
    );
    let state_table = r.get("NOTIFY_STATE_TABLE").map(str::to_string);
    if let Some(t) = &state_table {
        if !valid_table_name(t) {
            r.problem("NOTIFY_STATE_TABLE", t, "a DynamoDB table name of 3-255 characters from a-z, A-Z, 0-9, _ - .");
        }
    }
    let renotify_after = r.duration("RENOTIFY_AFTER");
    let group_over = r.integer("ALERT_GROUP_OVER", DEFAULT_GROUP_OVER, 0, 100_000);
    NotifyConfig {
        sns_topic_arn,
        chat_topic_arn,
        slack_webhook,
        pagerduty: routing_key.map(|routing_key| PagerDutyConfig { routing_key, events_url }),
        severity,
        state_table,
        renotify_after,
        group_over,
    }
}

/// `SLACK_WEBHOOK_URL_SECRET_ARN` or `SLACK_WEBHOOK_URL` (one of the two).
/// The URL is a secret: an error shows `<redacted>`, never the value.
fn read_slack(r: &mut Reader<'_>) -> Option<WebhookSource> {
    let plain = r.get("SLACK_WEBHOOK_URL");
    let secret_arn = r.get("SLACK_WEBHOOK_URL_SECRET_ARN");
    if let Some(arn) = secret_arn {
        if !valid_arn(arn, "secretsmanager", Some("secret")) {
            r.problem(
                "SLACK_WEBHOOK_URL_SECRET_ARN",
                arn,
                "a Secrets Manager secret ARN such as arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-webhook-AbCdEf",
            );
        }
    }
    if let Some(url) = plain {
        if !crate::domain::alert::chat::valid_webhook_url(url) {
            r.problem("SLACK_WEBHOOK_URL", "<redacted>", "an https URL such as https://hooks.slack.com/services/...");
        }
    }
    match (plain, secret_arn) {
        (Some(_), Some(_)) => {
            r.problem(
                "SLACK_WEBHOOK_URL",
                "<redacted>",
                "unset when SLACK_WEBHOOK_URL_SECRET_ARN is set (use one of the two)",
            );
            None
        }
        (Some(url), None) => Some(WebhookSource::Plain(Secret::new(url))),
        (None, Some(arn)) => Some(WebhookSource::SecretArn(arn.to_string())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{cli, vars};
    use crate::config::Config;

    #[test]
    fn notification_settings() {
        let c = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:terraform-locks"),
                ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-AbCdEf"),
                ("PAGERDUTY_SEVERITY", "critical"),
                ("NOTIFY_STATE_TABLE", "tf-lock-reaper-alerts"),
                ("RENOTIFY_AFTER", "4h"),
            ]),
            cli(),
        )
        .unwrap();
        let n = c.notify;
        assert_eq!(n.severity, Severity::Critical);
        let pd = n.pagerduty.unwrap();
        assert_eq!(pd.events_url, "https://events.pagerduty.com");
        assert!(matches!(pd.routing_key, RoutingKeySource::SecretArn(_)));
        assert_eq!(n.renotify_after, Some(Duration::from_secs(4 * 3600)));
    }

    #[test]
    fn bad_notification_settings_are_named_and_the_key_is_never_echoed() {
        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("SNS_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
                ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEYSECRET"),
                ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", "not-an-arn"),
                ("PAGERDUTY_EVENTS_URL", "ftp://x"),
                ("PAGERDUTY_SEVERITY", "loud"),
                ("NOTIFY_STATE_TABLE", "x"),
                ("RENOTIFY_AFTER", "often"),
            ]),
            cli(),
        )
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "SNS_TOPIC_ARN",
                "PAGERDUTY_ROUTING_KEY_SECRET_ARN",
                "PAGERDUTY_ROUTING_KEY",
                "PAGERDUTY_EVENTS_URL",
                "PAGERDUTY_SEVERITY",
                "NOTIFY_STATE_TABLE",
                "RENOTIFY_AFTER"
            ]
        );
        assert!(!err.to_string().contains("R0UTINGKEYSECRET"));
        assert!(!format!("{err:?}").contains("R0UTINGKEYSECRET"));
    }
}
