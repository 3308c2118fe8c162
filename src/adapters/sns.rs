//! Alerts to an SNS topic: subject, plain-text body and filterable message
//! attributes (`SNS_TOPIC_ARN`, for email and other subscribers), or the
//! custom notification Amazon Q Developer in chat applications shows in
//! Slack and Teams (`CHAT_TOPIC_ARN`).

use async_trait::async_trait;

use crate::adapters::aws_error::Origin;

use crate::domain::alert::chat::custom_notification;
use crate::domain::alert::Message;
use crate::domain::lock::SourceKind;
use crate::ports::notifier::{Notifier, NotifyError};
use crate::support::deadline::Deadline;

/// What a topic's subscribers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Subject and plain text (email, SQS, HTTPS subscribers).
    PlainText,
    /// The chat service's custom notification JSON.
    ChatCustom,
}

/// SNS `Publish` with filterable message attributes.
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    origin: Origin,
    format: Format,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        let origin =
            Origin::new("sns", client.config().region().map(|r| r.as_ref()), client.config().timeout_config(), None);
        SnsNotifier { client, topic_arn, origin, format: Format::PlainText }
    }

    /// A topic Amazon Q Developer in chat applications subscribes to
    /// (`CHAT_TOPIC_ARN`): every message as a custom notification.
    pub fn chat(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        SnsNotifier { format: Format::ChatCustom, ..SnsNotifier::new(client, topic_arn) }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn channel(&self) -> &'static str {
        match self.format {
            Format::PlainText => "sns",
            Format::ChatCustom => "chat",
        }
    }

    async fn send(&self, m: &Message, _deadline: Deadline) -> Result<(), NotifyError> {
        let mut request = self.client.publish().topic_arn(&self.topic_arn);
        request = match self.format {
            Format::PlainText => request.subject(&m.subject).message(&m.body),
            Format::ChatCustom => request.message(custom_notification(m).to_string()),
        };
        let attributes = [
            ("event", Some(m.event.as_str())),
            ("severity", Some(m.severity.as_str())),
            ("kind", Some(m.kind.as_str())),
            ("alert_key", Some(m.alert_key.as_str())),
            (m.source_kind.unwrap_or(SourceKind::Table).as_str(), m.source_name.as_deref()),
            ("lock_id", m.lock_id.as_deref()),
        ];
        // SNS rejects empty attribute values: leave those out.
        for (name, value) in attributes {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                let attr = aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .map_err(|e| NotifyError(e.to_string()))?;
                request = request.message_attributes(name, attr);
            }
        }
        request.send().await.map(|_| ()).map_err(|e| {
            NotifyError(self.origin.explain("Publish", "sns:Publish", &format!("topic {}", self.topic_arn), &e).message)
        })
    }
}
