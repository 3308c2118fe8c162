//! Notifications: the channels (SNS, PagerDuty Events API v2), the
//! notify-once state (a DynamoDB table keyed by `AlertKey`), and the
//! dispatcher that turns a run's alert conditions into triggers, reminders,
//! resolves and deletion notices. A failing channel never stops a run.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerts::{
    current_alerts, deleted_message, resolve_message, AlertKind, AlertSettings, Event, Message, OpenAlertRef, Severity,
    ALERT_CLASS,
};
use crate::decide::ActionTaken;
use crate::model::SourceKind;
use crate::report::RunReport;
use crate::run::{Clock, WRITE_MARGIN};

/// A credential that must never be printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Remove the secret from text that may echo it (error bodies).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(pub String);

/// One channel.
#[async_trait]
pub trait Notifier: Send + Sync {
    fn channel(&self) -> &'static str;
    async fn send(&self, message: &Message, deadline: Option<DateTime<Utc>>) -> Result<(), NotifyError>;
}

/// SNS `Publish` with filterable message attributes.
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        SnsNotifier { client, topic_arn }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn channel(&self) -> &'static str {
        "sns"
    }

    async fn send(&self, m: &Message, _deadline: Option<DateTime<Utc>>) -> Result<(), NotifyError> {
        let mut request = self.client.publish().topic_arn(&self.topic_arn).subject(&m.subject).message(&m.body);
        let attributes = [
            ("event", Some(m.event.as_str())),
            ("severity", Some(m.severity.as_str())),
            ("kind", Some(m.kind.as_str())),
            ("alert_key", Some(m.alert_key.as_str())),
            (m.source_kind.unwrap_or(SourceKind::Table).as_str(), m.table.as_deref()),
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
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| NotifyError(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))
    }
}

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
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("tf-lock-reaper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError(format!("building HTTP client: {e}")))?;
        Ok(PagerDutyNotifier { http, base_url: base_url.trim_end_matches('/').to_string(), routing_key, retry, clock })
    }

    /// The exact JSON sent for a message, and the path it goes to.
    pub fn event_json(&self, m: &Message) -> (&'static str, serde_json::Value) {
        pagerduty_event(m, self.routing_key.expose())
    }
}

/// PagerDuty event JSON for a message (pure, so tests can check it exactly).
pub fn pagerduty_event(m: &Message, routing_key: &str) -> (&'static str, serde_json::Value) {
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

    async fn send(&self, m: &Message, deadline: Option<DateTime<Utc>>) -> Result<(), NotifyError> {
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
                    let err = format!("PagerDuty answered {status}: {}", crate::alerts::clean(&text, 300));
                    if status.as_u16() == 429 || status.is_server_error() {
                        NotifyError(self.routing_key.redact(&err))
                    } else {
                        // 400 and other client errors: the event is wrong, retrying cannot help.
                        return Err(NotifyError(self.routing_key.redact(&err)));
                    }
                }
                Err(e) => NotifyError(self.routing_key.redact(&format!("PagerDuty unreachable: {e}"))),
            };
            let now = self.clock.now();
            let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
            let over_budget = (next - started).to_std().unwrap_or_default() > self.retry.budget;
            let past_deadline = deadline.is_some_and(|d| next + WRITE_MARGIN > d);
            if attempt >= self.retry.max_attempts || over_budget || past_deadline {
                return Err(NotifyError(format!("{} (gave up after {attempt} attempt(s))", retryable.0)));
            }
            tracing::warn!(attempt, error = %retryable, "PagerDuty delivery failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// An alert the state table says is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub key: String,
    pub kind: AlertKind,
    pub table: Option<String>,
    pub source_kind: Option<SourceKind>,
    pub lock_key: Option<String>,
    pub lock_id: Option<String>,
    pub severity: Severity,
    pub opened_at: i64,
    pub last_notified_at: i64,
    pub summary: String,
}

impl OpenAlert {
    fn of(m: &Message, now: i64) -> Self {
        OpenAlert {
            key: m.alert_key.clone(),
            kind: m.kind,
            table: m.table.clone(),
            source_kind: m.source_kind,
            lock_key: m.lock_key.clone(),
            lock_id: m.lock_id.clone(),
            severity: m.severity,
            opened_at: now,
            last_notified_at: now,
            summary: m.summary.clone(),
        }
    }

    fn as_ref(&self) -> OpenAlertRef<'_> {
        OpenAlertRef {
            key: &self.key,
            kind: self.kind,
            table: self.table.as_deref(),
            source_kind: self.source_kind,
            lock_key: self.lock_key.as_deref(),
            lock_id: self.lock_id.as_deref(),
            summary: &self.summary,
        }
    }
}

/// A failed state-table call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification state table: {0}")]
pub struct StateError(pub String);

/// Which alerts are open, shared by overlapping runs.
#[async_trait]
pub trait AlertState: Send + Sync {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError>;
    /// Record a new open alert; `false` if another run already did.
    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError>;
    /// Move `last_notified_at` from `expected` to `now` (and set severity);
    /// `false` if another run already did.
    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError>;
    /// Forget an alert (it resolved, or its trigger could not be delivered).
    async fn release(&self, key: &str) -> Result<(), StateError>;
}

/// How long an abandoned state item lives (its TTL, refreshed on each reminder).
pub const STATE_ITEM_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The state table in DynamoDB: hash key `AlertKey` (S), TTL on `ExpiresAt`.
pub struct DynamoAlertState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAlertState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoAlertState { client, table }
    }
}

fn state_err<E: std::error::Error>(e: E) -> StateError {
    StateError(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

fn ttl_from(now: i64) -> String {
    (now + STATE_ITEM_TTL.as_secs() as i64).to_string()
}

#[async_trait]
impl AlertState for DynamoAlertState {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        let mut pages =
            self.client.scan().table_name(&self.table).consistent_read(true).into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(state_err)?;
            let s = |k: &str| match item.get(k) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            };
            let n = |k: &str| match item.get(k) {
                Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
                _ => None,
            };
            // Items we do not understand are left alone; they expire by TTL.
            let (Some(key), Some(kind)) = (s("AlertKey"), s("Kind").as_deref().and_then(AlertKind::parse)) else {
                continue;
            };
            out.push(OpenAlert {
                key,
                kind,
                table: s("TableName"),
                source_kind: match s("SourceKind").as_deref() {
                    Some("bucket") => Some(SourceKind::Bucket),
                    Some("table") => Some(SourceKind::Table),
                    _ => None,
                },
                lock_key: s("LockKey"),
                lock_id: s("LockInfoId"),
                severity: s("Severity").as_deref().and_then(Severity::parse).unwrap_or(Severity::Warning),
                opened_at: n("OpenedAt").unwrap_or(0),
                last_notified_at: n("LastNotifiedAt").unwrap_or(0),
                summary: s("Summary").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    async fn claim(&self, a: &OpenAlert) -> Result<bool, StateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("AlertKey", AttributeValue::S(a.key.clone()))
            .item("Kind", AttributeValue::S(a.kind.as_str().to_string()))
            .item("Severity", AttributeValue::S(a.severity.as_str().to_string()))
            .item("OpenedAt", AttributeValue::N(a.opened_at.to_string()))
            .item("LastNotifiedAt", AttributeValue::N(a.last_notified_at.to_string()))
            .item("ExpiresAt", AttributeValue::N(ttl_from(a.opened_at)))
            .item("Summary", AttributeValue::S(a.summary.clone()))
            .condition_expression("attribute_not_exists(AlertKey)");
        let source_kind = a.source_kind.map(|k| k.as_str().to_string());
        for (name, value) in [
            ("TableName", &a.table),
            ("SourceKind", &source_kind),
            ("LockKey", &a.lock_key),
            ("LockInfoId", &a.lock_id),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                req = req.item(name, AttributeValue::S(v.clone()));
            }
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(state_err(e)),
        }
    }

    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("AlertKey", AttributeValue::S(key.to_string()))
            .update_expression("SET LastNotifiedAt = :now, Severity = :sev, ExpiresAt = :exp")
            .condition_expression("LastNotifiedAt = :expected")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":sev", AttributeValue::S(severity.as_str().to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(ttl_from(now)))
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(state_err(e)),
        }
    }

    async fn release(&self, key: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("AlertKey", AttributeValue::S(key.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(state_err)
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Sent,
    Failed,
    /// Not attempted: the deadline was near.
    Skipped,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::Skipped => "skipped",
        }
    }
}

/// One delivery attempt, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationRecord {
    /// `None` for state-table errors.
    pub event: Option<Event>,
    pub kind: Option<AlertKind>,
    pub alert_key: String,
    /// `sns`, `pagerduty`, or `state` for state-table errors.
    pub channel: String,
    pub table: Option<String>,
    pub lock_id: Option<String>,
    pub outcome: Delivery,
    pub detail: Option<String>,
}

/// Turns a run's report into notifications.
pub struct Dispatcher {
    pub notifiers: Vec<Box<dyn Notifier>>,
    pub state: Option<Box<dyn AlertState>>,
    pub renotify_after: Option<Duration>,
    pub settings: AlertSettings,
}

impl Dispatcher {
    /// No channels: notifications off.
    pub fn disabled() -> Self {
        Dispatcher {
            notifiers: Vec::new(),
            state: None,
            renotify_after: None,
            settings: AlertSettings { severity: Severity::Warning },
        }
    }

    pub fn is_active(&self) -> bool {
        !self.notifiers.is_empty()
    }

    /// Send what this run calls for; never fails, records every outcome.
    pub async fn dispatch(
        &self,
        report: &RunReport,
        clock: &dyn Clock,
        deadline: Option<DateTime<Utc>>,
    ) -> Vec<NotificationRecord> {
        let mut records = Vec::new();
        if !self.is_active() {
            return records;
        }
        let now = clock.now();
        let alerts = current_alerts(report, self.settings, now);
        // A deleted double lock is told once, through its table half.
        let deleted: Vec<_> = report
            .sources
            .iter()
            .flat_map(|t| &t.locks)
            .filter(|l| l.action == ActionTaken::Deleted && !l.is_lockfile_half())
            .collect();

        for l in &deleted {
            self.send_all(&deleted_message(l, now), clock, deadline, &mut records).await;
        }

        let open = match &self.state {
            None => None,
            Some(state) => match state.open_alerts().await {
                Ok(open) => Some(open),
                Err(e) => {
                    // Better to page twice than never: fall back to stateless.
                    records.push(state_error_record(&e));
                    None
                }
            },
        };
        let (Some(state), Some(open)) = (&self.state, open) else {
            // Stateless: trigger every run (PagerDuty's dedup_key keeps one
            // incident); resolve only what this run deleted.
            for a in &alerts {
                self.send_all(&a.message, clock, deadline, &mut records).await;
            }
            for l in &deleted {
                let resolve = resolve_message(
                    &OpenAlertRef {
                        key: &crate::alerts::lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id),
                        kind: AlertKind::LockStale,
                        table: Some(&l.lock.source),
                        source_kind: Some(l.lock.kind),
                        // The state path, as in the trigger and in the state table.
                        lock_key: Some(&l.lock.state_path),
                        lock_id: Some(&l.lock.id),
                        summary: "stale lock deleted by tf-lock-reaper",
                    },
                    now,
                );
                self.send_all(&resolve, clock, deadline, &mut records).await;
            }
            return records;
        };

        let open_by_key: HashMap<&str, &OpenAlert> = open.iter().map(|o| (o.key.as_str(), o)).collect();
        let epoch = now.timestamp();
        for a in &alerts {
            let m = &a.message;
            match open_by_key.get(a.key()) {
                Some(o) => {
                    let escalated = m.severity > o.severity;
                    let reminder_due = self
                        .renotify_after
                        .is_some_and(|r| epoch.saturating_sub(o.last_notified_at) >= r.as_secs() as i64);
                    if !(escalated || reminder_due) {
                        continue;
                    }
                    match state.renotified(&o.key, o.last_notified_at, epoch, m.severity).await {
                        Ok(true) => {
                            self.send_all(m, clock, deadline, &mut records).await;
                        }
                        Ok(false) => {} // another run sent the reminder
                        Err(e) => records.push(state_error_record(&e)),
                    }
                }
                None => match state.claim(&OpenAlert::of(m, epoch)).await {
                    Ok(true) => {
                        if !self.send_all(m, clock, deadline, &mut records).await {
                            // Nobody was told: forget it so the next run tries again.
                            if let Err(e) = state.release(a.key()).await {
                                records.push(state_error_record(&e));
                            }
                        }
                    }
                    Ok(false) => {} // an overlapping run opened it first
                    Err(e) => {
                        records.push(state_error_record(&e));
                        self.send_all(m, clock, deadline, &mut records).await;
                    }
                },
            }
        }

        let current: HashSet<&str> = alerts.iter().map(|a| a.key()).collect();
        let unreadable_tables: HashSet<&str> =
            report.sources.iter().filter(|t| t.scan_error.is_some()).map(|t| t.name.as_str()).collect();
        for o in &open {
            if current.contains(o.key.as_str()) {
                continue;
            }
            // A lock in a table we could not read may still be there.
            if o.kind == AlertKind::LockStale && o.table.as_deref().is_some_and(|t| unreadable_tables.contains(t)) {
                continue;
            }
            if self.send_all(&resolve_message(&o.as_ref(), now), clock, deadline, &mut records).await {
                if let Err(e) = state.release(&o.key).await {
                    records.push(state_error_record(&e));
                }
            }
        }
        records
    }

    /// Send to every channel; `true` if at least one delivered it.
    async fn send_all(
        &self,
        m: &Message,
        clock: &dyn Clock,
        deadline: Option<DateTime<Utc>>,
        records: &mut Vec<NotificationRecord>,
    ) -> bool {
        let mut delivered = false;
        for n in &self.notifiers {
            let (outcome, detail) = if deadline.is_some_and(|d| clock.now() + WRITE_MARGIN > d) {
                (Delivery::Skipped, Some("deadline near".to_string()))
            } else {
                match n.send(m, deadline).await {
                    Ok(()) => {
                        delivered = true;
                        (Delivery::Sent, None)
                    }
                    Err(e) => {
                        tracing::error!(channel = n.channel(), event = m.event.as_str(), alert_key = %m.alert_key, error = %e, "notification failed");
                        (Delivery::Failed, Some(e.0))
                    }
                }
            };
            records.push(NotificationRecord {
                event: Some(m.event),
                kind: Some(m.kind),
                alert_key: m.alert_key.clone(),
                channel: n.channel().to_string(),
                table: m.table.clone(),
                lock_id: m.lock_id.clone(),
                outcome,
                detail,
            });
        }
        delivered
    }
}

fn state_error_record(e: &StateError) -> NotificationRecord {
    tracing::error!(error = %e, "notification state table failed");
    NotificationRecord {
        event: None,
        kind: None,
        alert_key: String::new(),
        channel: "state".to_string(),
        table: None,
        lock_id: None,
        outcome: Delivery::Failed,
        detail: Some(e.to_string()),
    }
}
