//! Which alert conditions hold after a run: stale locks, unreadable
//! sources, unreadable items and a tripped breaker, each with its trigger.

use chrono::{DateTime, Utc};

use crate::alert::keys::hashed_key;
use crate::alert::messages::{generic, stale_message};
use crate::alert::text::{clean, ERROR_CAP, FIELD_CAP};
use crate::alert::{AlertKind, AlertSettings, Message, Severity};
use crate::health::table::enable_ttl_command;
use crate::lock::SourceKind;
use crate::report::{LockReport, RunReport, SourceReport, TtlCheck};

/// A condition that holds after this run, with its trigger message.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub message: Message,
    /// When a stale lock became stale (`Created` + its window, at most now):
    /// grouping tells a backlog from new stale locks by it.
    pub stale_since: Option<DateTime<Utc>>,
}

impl Alert {
    pub fn key(&self) -> &str {
        &self.message.alert_key
    }
}

/// Unreadable items listed in one alert at most.
const UNREADABLE_LISTED: usize = 20;

/// Every alert condition that holds after this run.
pub fn current_alerts(report: &RunReport, s: &AlertSettings, now: DateTime<Utc>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let plain = |message| Alert { message, stale_since: None };
    let stale_since = |l: &LockReport| {
        let window = chrono::Duration::seconds(i64::try_from(l.verdict.window_seconds).unwrap_or(i64::MAX / 2));
        l.lock.created.checked_add_signed(window).map_or(now, |t| t.min(now))
    };
    for source in &report.sources {
        // A double lock pages once, through its table half.
        let alerting = |l: &&LockReport| l.verdict.stale && !l.action.cleared() && !l.is_lockfile_half();
        alerts.extend(
            source
                .locks
                .iter()
                .filter(alerting)
                .map(|l| Alert { message: stale_message(l, s, now), stale_since: Some(stale_since(l)) }),
        );
        alerts.extend(scan_failed(source, now).map(plain));
        alerts.extend(unreadable_items(source, now).map(plain));
        alerts.extend(ttl_disabled(source, now).map(plain));
    }
    alerts.extend(breaker_tripped(report, now).map(plain));
    alerts.extend(discovery_failed(report, now).map(plain));
    alerts
}

/// Discovery failures listed in one alert at most.
const DISCOVERY_FAILURES_LISTED: usize = 20;

/// One alert for every account or region discovery could not search: a
/// member role rolled out nowhere yet fails hundreds of accounts, and must
/// page once, not hundreds of times.
fn discovery_failed(report: &RunReport, now: DateTime<Utc>) -> Option<Message> {
    let failures = &report.discovery.as_ref()?.failures;
    let first = failures.first()?;
    let listed: Vec<String> =
        failures.iter().take(DISCOVERY_FAILURES_LISTED).map(|f| clean(&f.describe(), ERROR_CAP)).collect();
    let more = failures.len().saturating_sub(DISCOVERY_FAILURES_LISTED);
    let lines: String = listed.iter().map(|l| format!("  {l}\n")).collect();
    let tail =
        if more > 0 { format!("  … and {more} more (the run's report lists them all)\n") } else { String::new() };
    Some(generic(
        AlertKind::DiscoveryFailed,
        hashed_key(&["discovery-failed"]),
        Severity::Error,
        None,
        format!(
            "tf-lock-reaper could not search {} account/region pair(s) for lock tables, e.g. {}",
            failures.len(),
            clean(&first.describe(), ERROR_CAP)
        ),
        format!(
            "Discovery could not search these accounts or regions, so their lock tables are neither reported nor \
             cleared (every other account was searched):\n{lines}{tail}\nCheck that MEMBER_ROLE_NAME exists in each \
             account (the member-access StackSet), trusts the reaper's role with the external ID, and may \
             dynamodb:ListTables and DescribeTable; and that the region is enabled.\n"
        ),
        serde_json::json!({"count": failures.len(), "failures": listed, "error": clean(&first.reason, ERROR_CAP)}),
        now,
    ))
}

/// What a source is called in alert text, and what to check when it cannot be read.
fn source_words(kind: SourceKind) -> (&'static str, &'static str) {
    match kind {
        SourceKind::Table => (
            "lock table",
            "that the table exists in this account and region and that the reaper's role may dynamodb:Scan it",
        ),
        SourceKind::Bucket => (
            "lock bucket",
            "that the bucket exists and that the reaper's role may s3:ListBucket it and s3:GetObject its *.tflock \
            objects",
        ),
    }
}

fn scan_failed(t: &SourceReport, now: DateTime<Utc>) -> Option<Message> {
    let err = t.scan_error.as_ref()?;
    let (what, how) = source_words(t.kind);
    let name = clean(&t.name, FIELD_CAP);
    let err = clean(err, ERROR_CAP);
    Some(generic(
        AlertKind::ScanFailed,
        hashed_key(&["scan-failed", &t.name]),
        Severity::Error,
        Some((t.kind, t.name.as_str())),
        format!("tf-lock-reaper cannot read {what} {name}: {err}"),
        format!(
            "tf-lock-reaper could not scan {what} {name}, so stale locks there are neither reported nor \
                cleared.\n\nError: {err}\n\nCheck {how}.\n"
        ),
        serde_json::json!({t.kind.as_str(): name, "error": err}),
        now,
    ))
}

fn unreadable_items(t: &SourceReport, now: DateTime<Utc>) -> Option<Message> {
    if t.unreadable.is_empty() {
        return None;
    }
    let (what, _) = source_words(t.kind);
    let name = clean(&t.name, FIELD_CAP);
    // Kept or only counted by a lean run.
    let count = t.unreadable_total();
    let items: Vec<serde_json::Value> = t
        .unreadable
        .iter()
        .take(UNREADABLE_LISTED)
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
    Some(generic(
        AlertKind::UnreadableItems,
        hashed_key(&["unreadable", &t.name]),
        Severity::Warning,
        Some((t.kind, t.name.as_str())),
        format!("{} unreadable item(s) in {what} {name}", count),
        format!(
            "The {what} {name} holds {} item(s) that are neither Terraform locks nor digests. The reaper reports \
                them and never touches them; inspect and remove them by hand.\n\n{lines}",
            count
        ),
        serde_json::json!({t.kind.as_str(): name, "count": count, "items": items}),
        now,
    ))
}

fn ttl_disabled(t: &SourceReport, now: DateTime<Utc>) -> Option<Message> {
    let Some(TtlCheck::Disabled { detail, attribute }) = &t.ttl else { return None };
    let name = clean(&t.name, FIELD_CAP);
    let attribute = clean(attribute, FIELD_CAP);
    let fix = enable_ttl_command(&t.name, &attribute);
    Some(generic(
        AlertKind::TtlDisabled,
        hashed_key(&["ttl-disabled", &t.name]),
        Severity::Warning,
        Some((t.kind, t.name.as_str())),
        format!("TTL is not enabled on lock table {name}: ACTION=ttl writes {attribute} for nothing"),
        format!(
            "tf-lock-reaper runs with ACTION=ttl and writes {attribute} on the stale locks of table {name}, but \
            {detail}: DynamoDB never expires them, so they keep blocking Terraform.\n\nEnable TTL on {attribute}:\n  \
            {fix}\n\nor switch ACTION to report or delete. `tf-lock-reaper doctor --table {name}` checks the rest of \
            the table.\n",
            detail = clean(detail, ERROR_CAP)
        ),
        serde_json::json!({
            t.kind.as_str(): name,
            "ttl": clean(detail, ERROR_CAP),
            "ttl_attribute": attribute,
            "fix": fix,
        }),
        now,
    ))
}

fn breaker_tripped(report: &RunReport, now: DateTime<Utc>) -> Option<Message> {
    if !report.breaker_tripped {
        return None;
    }
    Some(generic(
        AlertKind::BreakerTripped,
        hashed_key(&["breaker"]),
        Severity::Error,
        None,
        format!(
            "tf-lock-reaper breaker tripped: {} deletes planned, limit {}; nothing deleted",
            report.planned_deletes, report.max_deletes_per_run
        ),
        format!(
            "One run would have deleted {} locks, more than MAX_DELETES_PER_RUN={}, so it deleted none.\nMass \
                staleness usually means a clock or configuration error (STALE_AFTER, DELETE_AFTER). Check the locks \
                with `tf-lock-reaper list`, then raise the limit or clear them with `tf-lock-reaper unlock`.\n",
            report.planned_deletes, report.max_deletes_per_run
        ),
        serde_json::json!({
            "planned_deletes": report.planned_deletes,
            "max_deletes_per_run": report.max_deletes_per_run,
        }),
        now,
    ))
}
