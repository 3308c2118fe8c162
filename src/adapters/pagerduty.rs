//! Alerts to PagerDuty Events API v2: triggers and resolves to
//! `/v2/enqueue`, deletion notices as change events to `/v2/change/enqueue`
//! (they never page). 429 and 5xx are retried within a budget and the
//! run's deadline; other 4xx are not (the event is wrong).

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::alert::text::clean;
use crate::domain::alert::{Event, Message, ALERT_CLASS};
use crate::ports::clock::Clock;
use crate::ports::notifier::{Notifier, NotifyError};
use crate::support::deadline::Deadline;
use crate::support::secret::Secret;

/// Retry bounds for PagerDuty.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    /// Total time spent on one message, whatever the deadline.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, first_delay: Duration::from_millis(500), budget: Duration::from_secs(15) }
    }
}

impl RetryPolicy {
    /// Whether to give up after `attempt` failed: no attempts left, or the
    /// next one (`wait` from `now`) would come past the budget counted from
    /// `started` or too close to the run's deadline.
    pub(crate) fn gives_up(
        &self,
        attempt: u32,
        started: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        wait: Duration,
        deadline: Deadline,
    ) -> bool {
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        let over_budget = (next - started).to_std().unwrap_or_default() > self.budget;
        attempt >= self.max_attempts || over_budget || !deadline.leaves_time_for_a_write(next)
    }
}

/// PagerDuty Events API v2: alerts to `/v2/enqueue`, deletion notices as
/// change events to `/v2/change/enqueue` (they never page).
pub struct PagerDutyNotifier {
    http: reqwest::Client,
    base_url: String,
    routing_key: Secret,
    retry: RetryPolicy,
    clock: Box<dyn Clock>,
}

impl PagerDutyNotifier {
    pub fn new(
        base_url: &str,
        routing_key: Secret,
        retry: RetryPolicy,
        clock: Box<dyn Clock>,
    ) -> Result<Self, NotifyError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("tf-lock-reaper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError(e.to_string()))?;
        Ok(PagerDutyNotifier { http, base_url: base_url.trim_end_matches('/').to_string(), routing_key, retry, clock })
    }

    /// The exact JSON sent for a message, and the path it goes to.
    pub(crate) fn event_json(&self, m: &Message) -> (&'static str, serde_json::Value) {
        pagerduty_event(m, self.routing_key.expose())
    }
}

/// PagerDuty event JSON for a message (pure, so tests can check it exactly).
pub(crate) fn pagerduty_event(m: &Message, routing_key: &str) -> (&'static str, serde_json::Value) {
    let timestamp = m.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match m.event {
        Event::Trigger => (
            "/v2/enqueue",
            serde_json::json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": m.alert_key,
                "payload": {
                    "summary": m.summary,
                    "source": m.source,
                    "severity": m.severity.as_str(),
                    "timestamp": timestamp,
                    "component": m.component,
                    "group": m.group,
                    "class": ALERT_CLASS,
                    "custom_details": m.details,
                },
                "client": "tf-lock-reaper",
                // The runbook section for this alert kind, shown as a link on the incident.
                "links": m.details.get("runbook").and_then(|r| r.as_str()).map(|href| {
                    vec![serde_json::json!({"href": href, "text": format!("Runbook: {}", m.kind.as_str())})]
                }).unwrap_or_default(),
            }),
        ),
        Event::Resolve => (
            "/v2/enqueue",
            serde_json::json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": m.alert_key,
            }),
        ),
        Event::Info => (
            "/v2/change/enqueue",
            serde_json::json!({
                "routing_key": routing_key,
                "payload": {
                    "summary": m.summary,
                    "source": m.source,
                    "timestamp": timestamp,
                    "custom_details": m.details,
                },
            }),
        ),
    }
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    fn channel(&self) -> &'static str {
        "pagerduty"
    }

    fn updates_in_place(&self) -> bool {
        true
    }

    async fn send(&self, m: &Message, deadline: Deadline) -> Result<(), NotifyError> {
        let (path, body) = self.event_json(m);
        let url = format!("{}{path}", self.base_url);
        let started = self.clock.now();
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let outcome = self.http.post(&url).json(&body).send().await;
            let retryable = match outcome {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let err = format!("PagerDuty answered {status}: {}", clean(&text, 300));
                    if status.as_u16() == 429 || status.is_server_error() {
                        NotifyError(self.routing_key.redact(&err))
                    } else {
                        // 400 and other client errors: the event is wrong, retrying cannot help.
                        return Err(NotifyError(self.routing_key.redact(&err)));
                    }
                }
                Err(e) => {
                    tracing::debug!(error = ?e, "PagerDuty request failed");
                    let why = if e.is_timeout() {
                        "no answer within 5s"
                    } else if e.is_connect() {
                        "cannot connect (check PAGERDUTY_EVENTS_URL and the network path)"
                    } else {
                        "the request failed (`-v` shows why)"
                    };
                    NotifyError(self.routing_key.redact(&format!("PagerDuty unreachable at {}: {why}", self.base_url)))
                }
            };
            if self.retry.gives_up(attempt, started, self.clock.now(), delay, deadline) {
                return Err(NotifyError(format!("{} (gave up after {attempt} attempt(s))", retryable.0)));
            }
            tracing::warn!(attempt, error = %retryable, "PagerDuty delivery failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}
