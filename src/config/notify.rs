//! Notification settings: SNS, PagerDuty (routing key bare or from Secrets
//! Manager), alert severity, and the notify-once state table.

use std::time::Duration;

use crate::config::naming::{valid_arn, valid_table_name};
use crate::config::reader::Reader;
use crate::domain::alert::chat::valid_webhook_url;
use crate::domain::alert::Severity;
use crate::support::secret::Secret;

/// Where a secret setting comes from: the variable itself (local use), or a
/// Secrets Manager secret the entrypoint reads once per container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Plain(Secret),
    SecretArn(String),
}

/// Where the PagerDuty routing key comes from.
pub(crate) type RoutingKeySource = SecretSource;
/// Where the Slack webhook URL comes from.
pub(crate) type WebhookSource = SecretSource;

/// PagerDuty settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    pub routing_key: RoutingKeySource,
    pub events_url: String,
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
    /// `RUNBOOK_URL`; `None` when set empty.
    pub runbook_url: Option<String>,
}

/// Read the notification variables.
pub(crate) fn read(r: &mut Reader<'_>) -> NotifyConfig {
    let sns_topic_arn =
        read_topic(r, "SNS_TOPIC_ARN", "an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:terraform-locks");
    let chat_topic_arn = read_topic(
        r,
        "CHAT_TOPIC_ARN",
        "an SNS topic ARN that Amazon Q Developer in chat applications subscribes to, such as \
            arn:aws:sns:us-east-1:123456789012:terraform-locks-chat",
    );
    let slack_webhook = read_secret_source(
        r,
        ("SLACK_WEBHOOK_URL", Some((valid_webhook_url, "an https URL such as https://hooks.slack.com/services/..."))),
        ("SLACK_WEBHOOK_URL_SECRET_ARN", "slack-webhook-AbCdEf"),
    );
    let routing_key = read_secret_source(
        r,
        ("PAGERDUTY_ROUTING_KEY", None),
        ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", "pagerduty-AbCdEf"),
    );
    let events_url = r.text_or_default("PAGERDUTY_EVENTS_URL").to_string();
    let url_ok = http_url(&events_url).is_some_and(|u| u.query().is_none());
    if !url_ok {
        r.problem("PAGERDUTY_EVENTS_URL", &events_url, "an http(s) base URL such as https://events.pagerduty.com");
    }
    let severity = r.choice_or_default(
        "PAGERDUTY_SEVERITY",
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
    let group_over = r.integer_or_default("ALERT_GROUP_OVER", 0, 100_000);
    let runbook = r.text_or_default("RUNBOOK_URL").trim().to_string();
    let runbook_ok = runbook.is_empty() || http_url(&runbook).is_some_and(|u| u.fragment().is_none());
    if !runbook_ok {
        r.problem(
            "RUNBOOK_URL",
            &runbook,
            "an http(s) URL of the runbook page, without #fragment (each alert adds its section's), or empty",
        );
    }
    let runbook_url = (!runbook.is_empty()).then_some(runbook);
    NotifyConfig {
        sns_topic_arn,
        chat_topic_arn,
        slack_webhook,
        pagerduty: routing_key.map(|routing_key| PagerDutyConfig { routing_key, events_url }),
        severity,
        state_table,
        renotify_after,
        group_over,
        runbook_url,
    }
}

/// `text` as an http(s) URL with a host.
fn http_url(text: &str) -> Option<url::Url> {
    url::Url::parse(text).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// A rule a plain secret value must meet, and what it should be otherwise.
type PlainRule = (fn(&str) -> bool, &'static str);

/// An SNS topic ARN, if set.
fn read_topic(r: &mut Reader<'_>, name: &str, expected: &str) -> Option<String> {
    let arn = r.get(name).map(str::to_string)?;
    if !valid_arn(&arn, "sns", None) {
        r.problem(name, &arn, expected);
    }
    Some(arn)
}

/// A secret given as the variable itself (`plain`, checked by its rule if
/// any) or as a Secrets Manager secret ARN (`arn`, with an example secret
/// name), one of the two. The value is a secret: an error shows
/// `<redacted>`, never the value.
fn read_secret_source(
    r: &mut Reader<'_>,
    (plain_name, plain_rule): (&str, Option<PlainRule>),
    (arn_name, example): (&str, &str),
) -> Option<SecretSource> {
    let plain = r.get(plain_name);
    let secret_arn = r.get(arn_name);
    if let Some(arn) = secret_arn {
        if !valid_arn(arn, "secretsmanager", Some("secret")) {
            let expected = format!(
                "a Secrets Manager secret ARN such as arn:aws:secretsmanager:us-east-1:123456789012:secret:{example}"
            );
            r.problem(arn_name, arn, expected);
        }
    }
    if let (Some(value), Some((valid, expected))) = (plain, plain_rule) {
        if !valid(value) {
            r.problem(plain_name, "<redacted>", expected);
        }
    }
    match (plain, secret_arn) {
        (Some(_), Some(_)) => {
            r.problem(plain_name, "<redacted>", format!("unset when {arn_name} is set (use one of the two)"));
            None
        }
        (Some(value), None) => Some(SecretSource::Plain(Secret::new(value))),
        (None, Some(arn)) => Some(SecretSource::SecretArn(arn.to_string())),
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

    #[test]
    fn chat_settings_and_their_mistakes_all_at_once_the_url_never_echoed() {
        let c = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("CHAT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:chat"),
                ("SLACK_WEBHOOK_URL_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf"),
                ("ALERT_GROUP_OVER", "25"),
            ]),
            cli(),
        )
        .unwrap();
        assert_eq!(c.notify.chat_topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:123456789012:chat"));
        assert!(matches!(c.notify.slack_webhook, Some(SecretSource::SecretArn(_))));
        assert_eq!(c.notify.group_over, 25);
        let secret_url = "http://hooks.slack.com/services/T0/B0/S3CR3TT0K3N";
        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("CHAT_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
                ("SLACK_WEBHOOK_URL", secret_url),
                ("SLACK_WEBHOOK_URL_SECRET_ARN", "nope"),
                ("ALERT_GROUP_OVER", "-3"),
            ]),
            cli(),
        )
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "CHAT_TOPIC_ARN",
                "SLACK_WEBHOOK_URL_SECRET_ARN",
                "SLACK_WEBHOOK_URL",
                "SLACK_WEBHOOK_URL",
                "ALERT_GROUP_OVER"
            ]
        );
        assert!(!format!("{err} {err:?}").contains("S3CR3TT0K3N"), "the URL is a secret");
    }
}
