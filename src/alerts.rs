//! What on-call is told, as plain data: which alert conditions hold after a
//! run (stale locks, breaker, unreadable tables and items), and the messages
//! for them, with everything needed to fix the problem inside the message.
//! Every string that came from a lock is untrusted: it is stripped of control
//! characters, capped, JSON-escaped by serde and shell-quoted in commands.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::decide::ActionTaken;
use crate::model::{Lock, SourceKind};
use crate::report::{format_age, HalfRef, LockReport, RunReport};

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
    /// The table or bucket name, when the alert is about one.
    pub table: Option<String>,
    /// Whether `table` names a table or a bucket.
    pub source_kind: Option<SourceKind>,
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

/// The commands that release a lock (both halves of a double lock), exactly
/// as on-call would paste them. Every value from the lock is shell-quoted.
pub fn unlock_commands(lock: &Lock, paired: Option<&HalfRef>) -> serde_json::Value {
    let (mut table, mut file) = (None, None);
    for (kind, source, key) in std::iter::once((lock.kind, &lock.source, &lock.lock_key))
        .chain(paired.map(|h| (h.kind, &h.source, &h.lock_key)))
    {
        match kind {
            SourceKind::Table => table = Some((source, key)),
            SourceKind::Bucket => file = Some((source, key)),
        }
    }
    let mut reaper = format!("tf-lock-reaper unlock {}", shell_quote(&lock.id));
    let mut commands = serde_json::Map::new();
    commands
        .insert("terraform_force_unlock".into(), format!("terraform force-unlock {}", shell_quote(&lock.id)).into());
    if let Some((t, key)) = table {
        reaper.push_str(&format!(" --table {}", shell_quote(t)));
        let key_json = serde_json::json!({"LockID": {"S": key}}).to_string();
        commands.insert(
            "aws_cli".into(),
            format!("aws dynamodb delete-item --table-name {} --key {}", shell_quote(t), shell_quote(&key_json)).into(),
        );
    }
    if let Some((b, key)) = file {
        reaper.push_str(&format!(" --bucket {}", shell_quote(b)));
        commands.insert(
            "aws_cli_lockfile".into(),
            format!("aws s3api delete-object --bucket {} --key {}", shell_quote(b), shell_quote(key)).into(),
        );
    }
    commands.insert("tf_lock_reaper_unlock".into(), reaper.into());
    serde_json::Value::Object(commands)
}

/// Facts about a lock, cleaned for humans.
struct LockFacts {
    kind: SourceKind,
    /// Table or bucket.
    source: String,
    state_path: String,
    /// Where each half lives, one line each.
    locations: Vec<(&'static str, String)>,
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
        let mut locations = Vec::new();
        for (kind, source, key) in std::iter::once((l.lock.kind, &l.lock.source, &l.lock.lock_key))
            .chain(l.paired_with.as_ref().map(|h| (h.kind, &h.source, &h.lock_key)))
        {
            match kind {
                SourceKind::Table => locations.push(("Table", clean(source, FIELD_CAP))),
                SourceKind::Bucket => {
                    locations.push(("Lockfile", format!("s3://{}/{}", clean(source, FIELD_CAP), clean(key, FIELD_CAP))))
                }
            }
        }
        LockFacts {
            kind: l.lock.kind,
            source: clean(&l.lock.source, FIELD_CAP),
            state_path: clean(&l.lock.state_path, FIELD_CAP),
            locations,
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
        let mut out: String =
            self.locations.iter().map(|(label, v)| format!("{:<13}{v}\n", format!("{label}:"))).collect();
        if self.locations.len() == 2 {
            out.push_str("Double lock:  both halves must go for Terraform to proceed\n");
        }
        out.push_str(&format!(
            "State path:  {}\nWorkspace:   {}\nLock ID:     {}\nWho:         {}\nOperation:   {}\nVersion:     {}\nCreated:     {}\nAge:         {}\nWindow:      {}\nInfo:        {}\n",
            self.state_path, self.workspace, self.lock_id, self.who, self.operation, self.version, self.created, self.age, self.window, self.info
        ));
        out
    }

    fn details(&self, l: &LockReport) -> serde_json::Value {
        // Commands use the exact (uncapped) key and ID, quoted; the rest is cleaned.
        let mut d = serde_json::json!({
            "state_path": self.state_path,
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
            "commands": unlock_commands(&l.lock, l.paired_with.as_ref()),
        });
        for (label, v) in &self.locations {
            let key = if *label == "Table" { "table" } else { "lockfile" };
            d[key] = serde_json::Value::String(v.clone());
        }
        d
    }

    fn commands_text(l: &LockReport) -> String {
        let c = unlock_commands(&l.lock, l.paired_with.as_ref());
        let get = |k: &str| c.get(k).and_then(|v| v.as_str()).map(|v| format!("  {v}\n")).unwrap_or_default();
        format!(
            "If no apply is still running for this state, release the lock with one of:\n  {}    (run from the stack's directory, with its backend config)\n{}{}{}",
            c["terraform_force_unlock"].as_str().unwrap_or_default(),
            get("tf_lock_reaper_unlock"),
            get("aws_cli"),
            get("aws_cli_lockfile"),
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
        // A double lock pages once, through its table half.
        let alerting = |l: &&LockReport| l.verdict.stale && l.action != ActionTaken::Deleted && !l.is_lockfile_half();
        for l in t.locks.iter().filter(alerting) {
            alerts.push(Alert { message: stale_message(l, s, now) });
        }
        let (what, how) = match t.kind {
            SourceKind::Table => ("lock table", "that the table exists in this account and region and that the reaper's role may dynamodb:Scan it"),
            SourceKind::Bucket => ("lock bucket", "that the bucket exists and that the reaper's role may s3:ListBucket it and s3:GetObject its *.tflock objects"),
        };
        let about = Some((t.kind, t.name.as_str()));
        if let Some(err) = &t.scan_error {
            let table = clean(&t.name, FIELD_CAP);
            let err = clean(err, ERROR_CAP);
            alerts.push(Alert {
                message: generic(
                    AlertKind::ScanFailed,
                    hashed_key(&["scan-failed", &t.name]),
                    Severity::Error,
                    about,
                    format!("tf-lock-reaper cannot read {what} {table}: {err}"),
                    format!(
                        "tf-lock-reaper could not scan {what} {table}, so stale locks there are neither reported nor cleared.\n\nError: {err}\n\nCheck {how}.\n"
                    ),
                    serde_json::json!({t.kind.as_str(): table, "error": err}),
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
                    about,
                    format!("{} unreadable item(s) in {what} {table}", t.unreadable.len()),
                    format!(
                        "The {what} {table} holds {} item(s) that are neither Terraform locks nor digests. The reaper reports them and never touches them; inspect and remove them by hand.\n\n{lines}",
                        t.unreadable.len()
                    ),
                    serde_json::json!({t.kind.as_str(): table, "count": t.unreadable.len(), "items": items}),
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
                None,
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
            f.state_path, f.age, f.window, f.who, f.operation, f.lock_id, f.source
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
    let subject = format!("Stale Terraform lock: {} ({})", f.state_path, f.age);
    lock_message(l, &f, Event::Trigger, severity, &subject, body, summary, now)
}

/// A message about one lock: what every lock message shares.
#[allow(clippy::too_many_arguments)]
fn lock_message(
    l: &LockReport,
    f: &LockFacts,
    event: Event,
    severity: Severity,
    subject_text: &str,
    body: String,
    summary: String,
    now: DateTime<Utc>,
) -> Message {
    Message {
        event,
        alert_key: lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id),
        kind: AlertKind::LockStale,
        severity,
        subject: subject(subject_text),
        body,
        summary,
        source: f.source.clone(),
        table: Some(f.source.clone()),
        source_kind: Some(f.kind),
        lock_key: Some(f.state_path.clone()),
        lock_id: Some(f.lock_id.clone()),
        component: f.state_path.clone(),
        group: f.workspace.clone(),
        timestamp: now,
        details: f.details(l),
    }
}

/// The informational message for a lock the reaper deleted.
pub fn deleted_message(l: &LockReport, now: DateTime<Utc>) -> Message {
    let f = LockFacts::of(l);
    let body = format!(
        "tf-lock-reaper deleted a stale Terraform state lock: held {} (apply window {}, DELETE_AFTER reached), unchanged since it was read.\n\n{}",
        f.age,
        f.window,
        f.body_lines()
    );
    let summary = cap(
        &format!(
            "Deleted stale Terraform lock on {} (held {}, lock ID {}) in {}",
            f.state_path, f.age, f.lock_id, f.source
        ),
        SUMMARY_CAP,
    );
    let subject = format!("Deleted stale Terraform lock: {} ({})", f.state_path, f.age);
    lock_message(l, &f, Event::Info, Severity::Info, &subject, body, summary, now)
}

/// The resolve message for an alert whose condition cleared.
pub fn resolve_message(open: &OpenAlertRef<'_>, now: DateTime<Utc>) -> Message {
    let what = match open.kind {
        AlertKind::LockStale => {
            format!("Terraform lock on {} released", clean(open.lock_key.unwrap_or("?"), FIELD_CAP))
        }
        AlertKind::BreakerTripped => "tf-lock-reaper breaker no longer tripped".to_string(),
        AlertKind::ScanFailed => format!(
            "lock {} {} readable again",
            open.source_kind.unwrap_or(SourceKind::Table).as_str(),
            clean(open.table.unwrap_or("?"), FIELD_CAP)
        ),
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
        source_kind: open.source_kind,
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
    pub source_kind: Option<SourceKind>,
    pub lock_key: Option<&'a str>,
    pub lock_id: Option<&'a str>,
    pub summary: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn generic(
    kind: AlertKind,
    key: String,
    severity: Severity,
    about: Option<(SourceKind, &str)>,
    summary: String,
    body: String,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> Message {
    let source = clean(about.map(|(_, name)| name).unwrap_or("tf-lock-reaper"), FIELD_CAP);
    Message {
        event: Event::Trigger,
        alert_key: key,
        kind,
        severity,
        subject: subject(&summary),
        body,
        summary: cap(&summary, SUMMARY_CAP),
        table: about.map(|_| source.clone()),
        source_kind: about.map(|(k, _)| k),
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

    fn lock(kind: SourceKind, source: &str, key: &str) -> Lock {
        let now = chrono::Utc::now();
        let info = r#"{"ID":"id-1","Created":"2026-01-01T00:00:00Z"}"#;
        let mut l = crate::model::parse_lock_info(source, key, info, now).unwrap();
        l.kind = kind;
        l
    }

    #[test]
    fn aws_cli_command_has_the_exact_key_json() {
        let c = unlock_commands(&lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate"), None);
        assert_eq!(
            c["aws_cli"],
            r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}'"#
        );
        assert_eq!(c["terraform_force_unlock"], "terraform force-unlock 'id-1'");
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks'");
        assert!(c.get("aws_cli_lockfile").is_none());
    }

    #[test]
    fn lockfile_and_double_lock_commands() {
        let file = lock(SourceKind::Bucket, "tfstate", "prod/terraform.tfstate.tflock");
        let c = unlock_commands(&file, None);
        assert_eq!(
            c["aws_cli_lockfile"],
            "aws s3api delete-object --bucket 'tfstate' --key 'prod/terraform.tfstate.tflock'"
        );
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --bucket 'tfstate'");
        let table = lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate");
        let half = HalfRef {
            kind: SourceKind::Bucket,
            source: "tfstate".into(),
            lock_key: "prod/terraform.tfstate.tflock".into(),
        };
        let c = unlock_commands(&table, Some(&half));
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks' --bucket 'tfstate'");
        assert!(c["aws_cli"].as_str().unwrap().starts_with("aws dynamodb delete-item"));
        assert!(c["aws_cli_lockfile"].as_str().unwrap().starts_with("aws s3api delete-object"));
    }
}
