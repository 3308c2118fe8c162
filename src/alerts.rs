//! What on-call is told, as plain data: which alert conditions hold after a
//! run (stale locks, breaker, unreadable tables and items), and the messages
//! for them, with everything needed to fix the problem inside the message.
//! Every string that came from a lock is untrusted: it is stripped of control
//! characters, capped, JSON-escaped by serde and shell-quoted in commands.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::decide::ActionTaken;
use crate::report::{format_age, LockReport, RunReport};

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
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LockStale => "lock-stale",
            AlertKind::BreakerTripped => "breaker-tripped",
            AlertKind::ScanFailed => "scan-failed",
            AlertKind::UnreadableItems => "unreadable-items",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        [AlertKind::LockStale, AlertKind::BreakerTripped, AlertKind::ScanFailed, AlertKind::UnreadableItems]
            .into_iter()
            .find(|k| k.as_str() == s)
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
    pub table: Option<String>,
    pub lock_key: Option<String>,
    pub lock_id: Option<String>,
    /// PagerDuty `component` and `group`.
    pub component: String,
    pub group: String,
    pub timestamp: DateTime<Utc>,
    pub details: serde_json::Value,
}

/// A condition that holds after this run, with its trigger message.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub message: Message,
}

impl Alert {
    pub fn key(&self) -> &str {
        &self.message.alert_key
    }
}

/// Caps for untrusted text.
const FIELD_CAP: usize = 256;
const ERROR_CAP: usize = 512;
const SUBJECT_CAP: usize = 99;
const SUMMARY_CAP: usize = 1024;
/// PagerDuty class of every alert.
pub const ALERT_CLASS: &str = "terraform-state-lock";

/// Remove control and invisible formatting characters (bidi overrides,
/// zero-width) and cap at `max` characters, marking a cut with `…`.
pub fn clean(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c })
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect();
    cap(&cleaned, max)
}

fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An SNS subject: printable ASCII only, under 100 characters.
pub fn subject(s: &str) -> String {
    let ascii: String = s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if ascii.len() <= SUBJECT_CAP {
        ascii
    } else {
        format!("{}...", &ascii[..SUBJECT_CAP - 3])
    }
}

/// POSIX shell single-quoting, so a hostile ID cannot break out of a command.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Stable key for one lock instance: table + LockID + lock ID.
pub fn lock_alert_key(table: &str, lock_key: &str, lock_id: &str) -> String {
    hashed_key(&["lock", table, lock_key, lock_id])
}

/// `tflr-<sha256 hex>`: 69 characters, well under PagerDuty's 255.
fn hashed_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("tflr-{}", hex::encode(h.finalize()))
}

/// The commands that release a lock, exactly as on-call would paste them.
pub fn unlock_commands(table: &str, lock_key: &str, lock_id: &str) -> serde_json::Value {
    let key_json = serde_json::json!({"LockID": {"S": lock_key}}).to_string();
    serde_json::json!({
        "terraform_force_unlock": format!("terraform force-unlock {}", shell_quote(lock_id)),
        "tf_lock_reaper_unlock": format!("tf-lock-reaper unlock {} --table {}", shell_quote(lock_id), shell_quote(table)),
        "aws_cli": format!("aws dynamodb delete-item --table-name {} --key {}", shell_quote(table), shell_quote(&key_json)),
    })
}

/// Facts about a lock, cleaned for humans.
struct LockFacts {
    table: String,
    lock_key: String,
    lock_id: String,
    workspace: String,
    who: String,
    operation: String,
    version: String,
    info: String,
    created: String,
    age: String,
    window: String,
}

impl LockFacts {
    fn of(l: &LockReport) -> Self {
        LockFacts {
            table: clean(&l.lock.source, FIELD_CAP),
            lock_key: clean(&l.lock.lock_key, FIELD_CAP),
            lock_id: clean(&l.lock.id, FIELD_CAP),
            workspace: clean(l.lock.workspace.as_deref().unwrap_or("default"), FIELD_CAP),
            who: clean(&l.lock.who, FIELD_CAP),
            operation: clean(&l.lock.operation, FIELD_CAP),
            version: clean(&l.lock.version, FIELD_CAP),
            info: clean(&l.lock.info_text, FIELD_CAP),
            created: l.lock.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            age: format_age(l.verdict.age_seconds),
            window: format!(
                "{} ({})",
                format_age(l.verdict.window_seconds),
                clean(&l.verdict.window_source, FIELD_CAP)
            ),
        }
    }

    fn body_lines(&self) -> String {
        format!(
            "Table:       {}\nState path:  {}\nWorkspace:   {}\nLock ID:     {}\nWho:         {}\nOperation:   {}\nVersion:     {}\nCreated:     {}\nAge:         {}\nWindow:      {}\nInfo:        {}\n",
            self.table, self.lock_key, self.workspace, self.lock_id, self.who, self.operation, self.version, self.created, self.age, self.window, self.info
        )
    }

    fn details(&self, l: &LockReport) -> serde_json::Value {
        // Commands use the exact (uncapped) key and ID, quoted; the rest is cleaned.
        serde_json::json!({
            "table": self.table,
            "state_path": self.lock_key,
            "workspace": self.workspace,
            "lock_id": self.lock_id,
            "who": self.who,
            "operation": self.operation,
            "terraform_version": self.version,
            "info": self.info,
            "created": self.created,
            "age": self.age,
            "age_seconds": l.verdict.age_seconds,
            "stale_window": self.window,
            "commands": unlock_commands(&l.lock.source, &l.lock.lock_key, &l.lock.id),
        })
    }

    fn commands_text(l: &LockReport) -> String {
        let c = unlock_commands(&l.lock.source, &l.lock.lock_key, &l.lock.id);
        let get = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        format!(
            "If no apply is still running for this state, release the lock with one of:\n  {}    (run from the stack's directory, with its backend config)\n  {}\n  {}\n",
            get("terraform_force_unlock"),
            get("tf_lock_reaper_unlock"),
            get("aws_cli")
        )
    }
}

/// Inputs besides the report.
#[derive(Debug, Clone, Copy)]
pub struct AlertSettings {
    /// Severity of a stale lock (`PAGERDUTY_SEVERITY`).
    pub severity: Severity,
}

/// Every alert condition that holds after this run.
pub fn current_alerts(report: &RunReport, s: AlertSettings, now: DateTime<Utc>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for t in &report.sources {
        for l in t.locks.iter().filter(|l| l.verdict.stale && l.action != ActionTaken::Deleted) {
            alerts.push(Alert { message: stale_message(l, s, now) });
        }
        if let Some(err) = &t.scan_error {
            let table = clean(&t.name, FIELD_CAP);
            let err = clean(err, ERROR_CAP);
            alerts.push(Alert {
                message: generic(
                    AlertKind::ScanFailed,
                    hashed_key(&["scan-failed", &t.name]),
                    Severity::Error,
                    &t.name,
                    format!("tf-lock-reaper cannot read lock table {table}: {err}"),
                    format!(
                        "tf-lock-reaper could not scan lock table {table}, so stale locks there are neither reported nor cleared.\n\nError: {err}\n\nCheck that the table exists in this account and region and that the reaper's role may dynamodb:Scan it.\n"
                    ),
                    serde_json::json!({"table": table, "error": err}),
                    now,
                ),
            });
        }
        if !t.unreadable.is_empty() {
            let table = clean(&t.name, FIELD_CAP);
            let items: Vec<serde_json::Value> = t
                .unreadable
                .iter()
                .take(20)
                .map(|u| {
                    serde_json::json!({
                        "lock_key": u.lock_key.as_deref().map(|k| clean(k, FIELD_CAP)),
                        "reason": clean(&u.reason, ERROR_CAP),
                    })
                })
                .collect();
            let lines: String = items
                .iter()
                .map(|i| {
                    format!(
                        "  {}: {}\n",
                        i["lock_key"].as_str().unwrap_or("<no LockID>"),
                        i["reason"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            alerts.push(Alert {
                message: generic(
                    AlertKind::UnreadableItems,
                    hashed_key(&["unreadable", &t.name]),
                    Severity::Warning,
                    &t.name,
                    format!("{} unreadable item(s) in lock table {table}", t.unreadable.len()),
                    format!(
                        "Lock table {table} holds {} item(s) that are neither Terraform locks nor digests. The reaper reports them and never touches them; inspect and remove them by hand.\n\n{lines}",
                        t.unreadable.len()
                    ),
                    serde_json::json!({"table": table, "count": t.unreadable.len(), "items": items}),
                    now,
                ),
            });
        }
    }
    if report.breaker_tripped {
        alerts.push(Alert {
            message: generic(
                AlertKind::BreakerTripped,
                hashed_key(&["breaker"]),
                Severity::Error,
                "tf-lock-reaper",
                format!(
                    "tf-lock-reaper breaker tripped: {} deletes planned, limit {}; nothing deleted",
                    report.planned_deletes, report.max_deletes_per_run
                ),
                format!(
                    "One run would have deleted {} locks, more than MAX_DELETES_PER_RUN={}, so it deleted none.\nMass staleness usually means a clock or configuration error (STALE_AFTER, DELETE_AFTER). Check the locks with `tf-lock-reaper list`, then raise the limit or clear them with `tf-lock-reaper unlock`.\n",
                    report.planned_deletes, report.max_deletes_per_run
                ),
                serde_json::json!({"planned_deletes": report.planned_deletes, "max_deletes_per_run": report.max_deletes_per_run}),
                now,
            ),
        });
    }
    alerts
}

fn stale_message(l: &LockReport, s: AlertSettings, now: DateTime<Utc>) -> Message {
    let f = LockFacts::of(l);
    // Past DELETE_AFTER and still there: the reaper will not or could not clear it.
    let severity = if l.verdict.delete_due { Severity::Critical } else { s.severity };
    let summary = cap(
        &format!(
            "Stale Terraform lock on {} held {} (window {}) by {} ({}, lock ID {}) in {}",
            f.lock_key, f.age, f.window, f.who, f.operation, f.lock_id, f.table
        ),
        SUMMARY_CAP,
    );
    let body = format!(
        "A Terraform state lock has been held for {}, longer than its apply window of {}.\nEvery plan/apply on this state fails with \"Error acquiring the state lock\" until it is released.\n\n{}\n{}",
        f.age,
        f.window,
        f.body_lines(),
        LockFacts::commands_text(l)
    );
    Message {
        event: Event::Trigger,
        alert_key: lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id),
        kind: AlertKind::LockStale,
        severity,
        subject: subject(&format!("Stale Terraform lock: {} ({})", f.lock_key, f.age)),
        body,
        summary,
        source: f.table.clone(),
        table: Some(f.table.clone()),
        lock_key: Some(f.lock_key.clone()),
        lock_id: Some(f.lock_id.clone()),
        component: f.lock_key.clone(),
        group: f.workspace.clone(),
        timestamp: now,
        details: f.details(l),
    }
}

/// The informational message for a lock the reaper deleted.
pub fn deleted_message(l: &LockReport, now: DateTime<Utc>) -> Message {
    let f = LockFacts::of(l);
    Message {
        event: Event::Info,
        alert_key: lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id),
        kind: AlertKind::LockStale,
        severity: Severity::Info,
        subject: subject(&format!("Deleted stale Terraform lock: {} ({})", f.lock_key, f.age)),
        body: format!(
            "tf-lock-reaper deleted a stale Terraform state lock: held {} (apply window {}, DELETE_AFTER reached), unchanged since it was read.\n\n{}",
            f.age,
            f.window,
            f.body_lines()
        ),
        summary: cap(&format!("Deleted stale Terraform lock on {} (held {}, lock ID {}) in {}", f.lock_key, f.age, f.lock_id, f.table), SUMMARY_CAP),
        source: f.table.clone(),
        table: Some(f.table.clone()),
        lock_key: Some(f.lock_key.clone()),
        lock_id: Some(f.lock_id.clone()),
        component: f.lock_key.clone(),
        group: f.workspace.clone(),
        timestamp: now,
        details: f.details(l),
    }
}

/// The resolve message for an alert whose condition cleared.
pub fn resolve_message(open: &OpenAlertRef<'_>, now: DateTime<Utc>) -> Message {
    let what = match open.kind {
        AlertKind::LockStale => {
            format!("Terraform lock on {} released", clean(open.lock_key.unwrap_or("?"), FIELD_CAP))
        }
        AlertKind::BreakerTripped => "tf-lock-reaper breaker no longer tripped".to_string(),
        AlertKind::ScanFailed => format!("lock table {} readable again", clean(open.table.unwrap_or("?"), FIELD_CAP)),
        AlertKind::UnreadableItems => {
            format!("no unreadable items left in {}", clean(open.table.unwrap_or("?"), FIELD_CAP))
        }
    };
    Message {
        event: Event::Resolve,
        alert_key: open.key.to_string(),
        kind: open.kind,
        severity: Severity::Info,
        subject: subject(&format!("RESOLVED: {what}")),
        body: format!("Resolved: {what}.\nAlert: {}\n", open.summary),
        summary: cap(&format!("Resolved: {what}"), SUMMARY_CAP),
        source: clean(open.table.unwrap_or("tf-lock-reaper"), FIELD_CAP),
        table: open.table.map(|t| clean(t, FIELD_CAP)),
        lock_key: open.lock_key.map(|k| clean(k, FIELD_CAP)),
        lock_id: open.lock_id.map(|i| clean(i, FIELD_CAP)),
        component: clean(open.lock_key.unwrap_or("tf-lock-reaper"), FIELD_CAP),
        group: String::new(),
        timestamp: now,
        details: serde_json::json!({"resolved": what}),
    }
}

/// What a resolve needs to know about an open alert.
#[derive(Debug, Clone, Copy)]
pub struct OpenAlertRef<'a> {
    pub key: &'a str,
    pub kind: AlertKind,
    pub table: Option<&'a str>,
    pub lock_key: Option<&'a str>,
    pub lock_id: Option<&'a str>,
    pub summary: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn generic(
    kind: AlertKind,
    key: String,
    severity: Severity,
    source: &str,
    summary: String,
    body: String,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> Message {
    let source = clean(source, FIELD_CAP);
    Message {
        event: Event::Trigger,
        alert_key: key,
        kind,
        severity,
        subject: subject(&summary),
        body,
        summary: cap(&summary, SUMMARY_CAP),
        table: (kind != AlertKind::BreakerTripped).then(|| source.clone()),
        component: source.clone(),
        source,
        lock_key: None,
        lock_id: None,
        group: String::new(),
        timestamp: now,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_control_and_invisible_characters_and_caps() {
        assert_eq!(clean("a\nb\tc\u{7}d\u{202E}e\u{200B}f", 100), "a b cdef");
        let long = "x".repeat(10_000);
        let c = clean(&long, 256);
        assert_eq!(c.chars().count(), 256);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn subjects_are_short_ascii_single_lines() {
        let s = subject(&format!("Stale lock: {}\n\u{1F525}", "y".repeat(300)));
        assert!(s.len() < 100 && s.is_ascii() && !s.contains('\n'));
    }

    #[test]
    fn shell_quoting_defeats_injection() {
        assert_eq!(shell_quote("abc"), "'abc'");
        assert_eq!(shell_quote("x'; rm -rf / #"), r"'x'\''; rm -rf / #'");
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        let a = lock_alert_key("t", "b/k", "id1");
        assert_eq!(a, lock_alert_key("t", "b/k", "id1"));
        assert_ne!(a, lock_alert_key("t", "b/k", "id2"));
        assert_ne!(lock_alert_key("t", "ab", "c"), lock_alert_key("t", "a", "bc"));
        assert!(a.len() <= 255 && a.starts_with("tflr-"));
    }

    #[test]
    fn aws_cli_command_has_the_exact_key_json() {
        let c = unlock_commands("locks", "tfstate/prod/terraform.tfstate", "id-1");
        assert_eq!(
            c["aws_cli"],
            r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}'"#
        );
        assert_eq!(c["terraform_force_unlock"], "terraform force-unlock 'id-1'");
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks'");
    }
}
