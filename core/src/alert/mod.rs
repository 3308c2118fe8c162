//! What on-call is told, as plain data: the alert vocabulary (severity,
//! kind, event), one message ready for any channel, and an open alert as the
//! notify-once state remembers it. The conditions that raise alerts, the
//! message text, alert keys and fix commands live in the submodules.
//! Every string that came from a lock is untrusted: it is stripped of control
//! characters, capped, JSON-escaped by serde and shell-quoted in commands.

pub mod chat;
pub mod commands;
pub mod conditions;
pub mod grouping;
pub mod keys;
pub mod messages;
pub mod text;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::lock::SourceKind;

/// PagerDuty class of every alert.
pub const ALERT_CLASS: &str = "terraform-state-lock";

/// PagerDuty-style severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// The condition an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    LockStale,
    BreakerTripped,
    ScanFailed,
    UnreadableItems,
    /// `ACTION=ttl`, and TTL is not enabled on the table's TTL attribute.
    TtlDisabled,
    /// More stale locks in one source than `ALERT_GROUP_OVER`: one alert for them.
    StaleGroup,
    /// Discovery could not search an account or region (or the organisation).
    DiscoveryFailed,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LockStale => "lock-stale",
            AlertKind::BreakerTripped => "breaker-tripped",
            AlertKind::ScanFailed => "scan-failed",
            AlertKind::UnreadableItems => "unreadable-items",
            AlertKind::TtlDisabled => "ttl-disabled",
            AlertKind::StaleGroup => "stale-group",
            AlertKind::DiscoveryFailed => "discovery-failed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a message does to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Open (or re-send) the alert.
    Trigger,
    /// The condition cleared.
    Resolve,
    /// Informational: the reaper deleted a lock. Never pages.
    Info,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Trigger => "trigger",
            Event::Resolve => "resolve",
            Event::Info => "info",
        }
    }
}

/// One message, ready for any channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub event: Event,
    /// Stable per occurrence: PagerDuty's `dedup_key` and the state table's `AlertKey`.
    pub alert_key: String,
    pub kind: AlertKind,
    pub severity: Severity,
    /// SNS subject: ASCII, no line breaks, under 100 characters.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// One line, at most 1024 characters (PagerDuty `summary`).
    pub summary: String,
    /// Table or bucket the alert is about (PagerDuty `source`).
    pub source: String,
    /// The table or bucket name, when the alert is about one.
    pub source_name: Option<String>,
    /// Whether `source_name` names a table or a bucket.
    pub source_kind: Option<SourceKind>,
    pub lock_key: Option<String>,
    pub lock_id: Option<String>,
    /// PagerDuty `component` and `group`.
    pub component: String,
    pub group: String,
    pub timestamp: DateTime<Utc>,
    pub details: serde_json::Value,
}

/// Inputs besides the report.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Severity of a stale lock (`PAGERDUTY_SEVERITY`).
    pub severity: Severity,
    /// More stale locks than this opening alerts in one source in one run
    /// open one grouped alert instead (`ALERT_GROUP_OVER`).
    pub group_over: usize,
    /// The runbook page every alert links to, at its kind's section
    /// (`RUNBOOK_URL`); `None`: no link.
    pub runbook_url: Option<String>,
}

/// The published runbook (`RUNBOOK_URL`'s default): one section per alert
/// kind, its anchor the kind's name (`#lock-stale`).
pub const DEFAULT_RUNBOOK_URL: &str = "https://tf-lock-reaper.github.io/tf-lock-reaper/runbook.html";

impl AlertKind {
    /// Every kind the code can send.
    pub const ALL: [AlertKind; 7] = [
        AlertKind::LockStale,
        AlertKind::BreakerTripped,
        AlertKind::ScanFailed,
        AlertKind::UnreadableItems,
        AlertKind::TtlDisabled,
        AlertKind::StaleGroup,
        AlertKind::DiscoveryFailed,
    ];

    /// This kind's section of the runbook at `base`.
    pub fn runbook_link(self, base: &str) -> String {
        format!("{}#{}", base.split('#').next().unwrap_or(base), self.as_str())
    }
}

/// `m` with the link to its runbook section: in `details.runbook` (the
/// page's `custom_details`, PagerDuty `links`, chat and Slack read it) and,
/// for a trigger, as the body's last line (the SNS text).
pub fn with_runbook(m: &Message, base: Option<&str>) -> Message {
    let mut m = m.clone();
    let Some(base) = base.filter(|b| !b.is_empty()) else { return m };
    let link = m.kind.runbook_link(base);
    if let serde_json::Value::Object(d) = &mut m.details {
        d.insert("runbook".into(), link.clone().into());
    }
    if m.event == Event::Trigger {
        m.body.push_str(&format!("\nRunbook (what this means, what to check, when to escalate): {link}\n"));
    }
    m
}

/// `ALERT_GROUP_OVER`'s default.
pub const DEFAULT_GROUP_OVER: usize = 10;

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            severity: Severity::Warning,
            group_over: DEFAULT_GROUP_OVER,
            runbook_url: Some(DEFAULT_RUNBOOK_URL.to_string()),
        }
    }
}

/// An alert the notify-once state says is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub key: String,
    pub kind: AlertKind,
    /// The table or bucket the alert is about.
    pub source_name: Option<String>,
    pub source_kind: Option<SourceKind>,
    /// For lock alerts: the state path.
    pub lock_key: Option<String>,
    pub lock_id: Option<String>,
    pub severity: Severity,
    pub opened_at: i64,
    pub last_notified_at: i64,
    pub summary: String,
    /// A grouped alert: how many locks it covers.
    pub count: Option<u64>,
}

impl OpenAlert {
    /// The alert a trigger message opens at `now` (epoch seconds).
    pub fn opened_by(m: &Message, now: i64) -> Self {
        OpenAlert {
            key: m.alert_key.clone(),
            kind: m.kind,
            source_name: m.source_name.clone(),
            source_kind: m.source_kind,
            lock_key: m.lock_key.clone(),
            lock_id: m.lock_id.clone(),
            severity: m.severity,
            opened_at: now,
            last_notified_at: now,
            summary: m.summary.clone(),
            count: m
                .details
                .get("count")
                .and_then(serde_json::Value::as_u64)
                .filter(|_| m.kind == AlertKind::StaleGroup),
        }
    }
}
