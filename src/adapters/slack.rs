//! Alerts to a Slack incoming webhook as Block Kit (`domain::alert::chat`).
//! The webhook URL is a secret: never logged, never in an error or the
//! report. 429 is retried after its `Retry-After`, 5xx and timeouts with
//! backoff, both within a budget and the run's deadline; other 4xx are not
//! retried (the message is wrong, or the webhook was revoked).

use std::time::Duration;

use async_trait::async_trait;

use crate::adapters::pagerduty::RetryPolicy;
use crate::domain::alert::chat::slack_blocks;
use crate::domain::alert::text::clean;
use crate::domain::alert::Message;
use crate::ports::clock::Clock;
use crate::ports::notifier::{Notifier, NotifyError};
use crate::support::deadline::Deadline;
use crate::support::secret::Secret;

/// A `Retry-After` longer than this is not waited for within one run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A Slack incoming webhook.
pub struct SlackNotifier {
    http: reqwest::Client,
    url: Secret,
    retry: RetryPolicy,
    clock: Box<dyn Clock>,
}

impl SlackNotifier {
    /// `timeout` bounds each request (connect included).
    pub fn new(url: Secret, retry: RetryPolicy, timeout: Duration, clock: Box<dyn Clock>) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .user_agent(concat!("tf-lock-reaper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError(e.without_url().to_string()))?;
        Ok(SlackNotifier { http, url, retry, clock })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn channel(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, m: &Message, deadline: Deadline) -> Result<(), NotifyError> {
        let body = slack_blocks(m);
        let started = self.clock.now();
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let (err, wait) = match self.http.post(self.url.expose()).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    let err = self.url.redact(&format!("Slack webhook answered {status}: {}", clean(&text, 200)));
                    match status.as_u16() {
                        429 => (err, retry_after.unwrap_or(delay).min(MAX_RETRY_AFTER)),
                        s if s >= 500 => (err, delay),
                        // 400 invalid_blocks, 403/404 a revoked webhook: retrying cannot help.
                        _ => return Err(NotifyError(format!("{err} (check the webhook and the message)"))),
                    }
                }
                Err(e) => {
                    let e = e.without_url();
                    tracing::debug!(error = %e, "Slack webhook request failed");
                    let why = if e.is_timeout() {
                        "no answer within the timeout"
                    } else if e.is_connect() {
                        "cannot connect (check the network path to hooks.slack.com)"
                    } else {
                        "the request failed"
                    };
                    (format!("Slack webhook unreachable: {why}"), delay)
                }
            };
            if self.retry.gives_up(attempt, started, self.clock.now(), wait, deadline) {
                return Err(NotifyError(format!("{err} (gave up after {attempt} attempt(s))")));
            }
            tracing::warn!(attempt, error = %err, "Slack delivery failed; retrying");
            tokio::time::sleep(wait).await;
            delay *= 2;
            attempt += 1;
        }
    }
}
