//! The text of every message: a stale lock (with everything needed to fix
//! it), a deletion notice, a resolve, and the source- and run-wide alerts.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::alert::commands::{ranked_commands, unlock_commands};
use crate::alert::keys::lock_alert_key;
use crate::alert::text::{cap, clean, subject, FIELD_CAP, SUMMARY_CAP};
use crate::alert::{AlertKind, AlertSettings, Event, Message, OpenAlert, Severity};
use crate::lock::SourceKind;
use crate::policy::Liveness;
use crate::report::render::format_age;
use crate::report::LockReport;

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
                SourceKind::Table => locations.push(("Table", clean(&source.to_string(), FIELD_CAP))),
                SourceKind::Bucket => {
                    let (source, key) = (clean(&source.to_string(), FIELD_CAP), clean(key, FIELD_CAP));
                    locations.push(("Lockfile", format!("s3://{source}/{key}")))
                }
            }
        }
        LockFacts {
            kind: l.lock.kind,
            source: clean(&l.lock.source.to_string(), FIELD_CAP),
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
            concat!(
                "State path:  {}\nWorkspace:   {}\nLock ID:     {}\nWho:         {}\nOperation:   {}\n",
                "Version:     {}\nCreated:     {}\nAge:         {}\nWindow:      {}\nInfo:        {}\n",
            ),
            self.state_path,
            self.workspace,
            self.lock_id,
            self.who,
            self.operation,
            self.version,
            self.created,
            self.age,
            self.window,
            self.info
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
            "liveness": l.verdict.liveness.describe(),
        });
        let at = &l.lock.source;
        if let Some(account) = &at.account {
            d["account"] = serde_json::Value::String(account.clone());
        }
        if let Some(region) = &at.region {
            d["region"] = serde_json::Value::String(region.clone());
        }
        for (label, v) in &self.locations {
            let key = if *label == "Table" { "table" } else { "lockfile" };
            d[key] = serde_json::Value::String(v.clone());
        }
        d
    }

    fn commands_text(l: &LockReport) -> String {
        let mut out = String::from("If no apply is still running for this state, release the lock (safest first):\n");
        for c in ranked_commands(&l.lock, l.paired_with.as_ref()) {
            out.push_str(&format!("  {}\n    ({})\n", c.command, c.why));
        }
        out
    }
}

pub fn stale_message(l: &LockReport, s: &AlertSettings, now: DateTime<Utc>) -> Message {
    let f = LockFacts::of(l);
    // Past DELETE_AFTER and still there: the reaper will not or could not clear it.
    let severity = if l.verdict.delete_due { Severity::Critical } else { s.severity };
    // A dead heartbeat is a fact about the holder, not a guess by age: say so.
    let (summary, opening, subject) = match (l.verdict.liveness, l.lock.heartbeat) {
        (Liveness::Dead { silent_seconds, timeout_seconds }, Some(beat)) => {
            let silent = format_age(silent_seconds);
            let contract = format_age(timeout_seconds);
            let last = DateTime::from_timestamp(beat, 0)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| beat.to_string());
            (
                format!(
                    "Dead Terraform lock on {}: its holder stopped heartbeating {silent} ago ({} by {}, lock ID {}) \
                        in {}",
                    f.state_path, f.operation, f.who, f.lock_id, f.source
                ),
                format!(
                    "The `tf-lock-reaper exec` wrapper holding this lock stopped heartbeating {silent} ago (last \
                        heartbeat {last}), longer than its liveness contract of {contract}: its job is gone, \
                        whatever the lock's age ({}).",
                    f.age
                ),
                format!("Dead Terraform lock: {} (silent {silent})", f.state_path),
            )
        }
        _ => (
            format!(
                "Stale Terraform lock on {} held {} (window {}) by {} ({}, lock ID {}) in {}",
                f.state_path, f.age, f.window, f.who, f.operation, f.lock_id, f.source
            ),
            format!(
                "A Terraform state lock has been held for {}, longer than its apply window of {}.",
                f.age, f.window
            ),
            format!("Stale Terraform lock: {} ({})", f.state_path, f.age),
        ),
    };
    let summary = cap(&summary, SUMMARY_CAP);
    let body = format!(
        "{opening}\nEvery plan/apply on this state fails with \"Error acquiring the state lock\" until it is \
            released.\n\n{}\n{}",
        f.body_lines(),
        LockFacts::commands_text(l)
    );
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
        source_name: Some(f.source.clone()),
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
        "tf-lock-reaper deleted a stale Terraform state lock: held {} (apply window {}, DELETE_AFTER reached), \
            unchanged since it was read.\n\n{}",
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
pub fn resolve_message(open: &OpenAlert, now: DateTime<Utc>) -> Message {
    let what = match open.kind {
        AlertKind::LockStale => {
            format!("Terraform lock on {} released", clean(open.lock_key.as_deref().unwrap_or("?"), FIELD_CAP))
        }
        AlertKind::BreakerTripped => "tf-lock-reaper breaker no longer tripped".to_string(),
        AlertKind::ScanFailed => format!(
            "lock {} {} readable again",
            open.source_kind.unwrap_or(SourceKind::Table).as_str(),
            clean(open.source_name.as_deref().unwrap_or("?"), FIELD_CAP)
        ),
        AlertKind::UnreadableItems => {
            format!("no unreadable items left in {}", clean(open.source_name.as_deref().unwrap_or("?"), FIELD_CAP))
        }
        AlertKind::TtlDisabled => format!(
            "TTL enabled on lock table {} (or ACTION is no longer ttl)",
            clean(open.source_name.as_deref().unwrap_or("?"), FIELD_CAP)
        ),
        AlertKind::StaleGroup => format!(
            "no stale lock of the grouped backlog left in lock {} {}",
            open.source_kind.unwrap_or(SourceKind::Table).as_str(),
            clean(open.source_name.as_deref().unwrap_or("?"), FIELD_CAP)
        ),
        AlertKind::DiscoveryFailed => "every account and region in scope could be searched again".to_string(),
    };
    Message {
        event: Event::Resolve,
        alert_key: open.key.to_string(),
        kind: open.kind,
        severity: Severity::Info,
        subject: subject(&format!("RESOLVED: {what}")),
        body: format!("Resolved: {what}.\nAlert: {}\n", open.summary),
        summary: cap(&format!("Resolved: {what}"), SUMMARY_CAP),
        source: clean(open.source_name.as_deref().unwrap_or("tf-lock-reaper"), FIELD_CAP),
        source_name: open.source_name.as_deref().map(|t| clean(t, FIELD_CAP)),
        source_kind: open.source_kind,
        lock_key: open.lock_key.as_deref().map(|k| clean(k, FIELD_CAP)),
        lock_id: open.lock_id.as_deref().map(|i| clean(i, FIELD_CAP)),
        component: clean(open.lock_key.as_deref().unwrap_or("tf-lock-reaper"), FIELD_CAP),
        group: String::new(),
        timestamp: now,
        details: serde_json::json!({"resolved": what}),
    }
}

/// Without a state table nothing remembers what was opened: the resolve
/// for a lock the reaper deleted, built from the lock itself.
pub fn deleted_lock_resolve(l: &LockReport, now: DateTime<Utc>) -> Message {
    let open = OpenAlert {
        key: lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id),
        kind: AlertKind::LockStale,
        source_name: Some(l.lock.source.to_string()),
        source_kind: Some(l.lock.kind),
        // The state path, as in the trigger and in the state table.
        lock_key: Some(l.lock.state_path.clone()),
        lock_id: Some(l.lock.id.clone()),
        severity: Severity::Info,
        opened_at: 0,
        last_notified_at: 0,
        summary: "stale lock deleted by tf-lock-reaper".to_string(),
        count: None,
    };
    resolve_message(&open, now)
}

/// A trigger about a source or the whole run (not one lock).
#[allow(clippy::too_many_arguments)]
pub fn generic(
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
        source_name: about.map(|_| source.clone()),
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
