//! The bounded summary of a run: what the Lambda returns. Run status, every
//! source's counts, and the locks that matter (stale or acted on), oldest
//! first, capped, with a count of those left out. Every string from a lock
//! is cleaned and capped, so the summary stays far under Lambda's 6 MB
//! response limit (under 256 KB) whatever the table holds. The full
//! per-lock report stays on the CLI (`run --json`, `list --json`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alert::text::{clean, ERROR_CAP, FIELD_CAP};
use crate::decision::{Action, ActionTaken};
use crate::lock::SourceKind;
use crate::report::{Counts, Delivery, LockReport, RunReport, SourceReport};

/// Locks listed per source, and in the whole summary.
pub const LOCKS_PER_SOURCE: usize = 50;
pub const LOCKS_IN_ALL: usize = 80;
/// Unreadable items listed per source, and in the whole summary.
pub const UNREADABLE_PER_SOURCE: usize = 20;
pub const UNREADABLE_IN_ALL: usize = 40;
/// Notifications listed.
pub const NOTIFICATIONS_LISTED: usize = 50;

/// The whole run, bounded.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub action: Action,
    pub dry_run: bool,
    pub ok: bool,
    pub partial: bool,
    pub breaker_tripped: bool,
    pub max_deletes_per_run: usize,
    pub planned_deletes: usize,
    pub sources: Vec<SourceSummary>,
    pub alerts_sent: usize,
    pub alert_errors: usize,
    pub notifications: Vec<NotificationSummary>,
    pub notifications_omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_seconds: Option<i64>,
    /// Discovery's counts and its first failures (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::discovery::DiscoverySummary>,
    /// Discovery failures left out of `discovery.failures`.
    #[serde(skip_serializing_if = "is_zero")]
    pub discovery_failures_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Discovery failures listed in the Lambda's summary; the rest are counted.
const DISCOVERY_FAILURES_LISTED: usize = 20;

/// One source: all its counts, its locks that matter and its unreadable items.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    pub kind: SourceKind,
    pub name: String,
    pub scan_error: Option<String>,
    pub error_kind: Option<crate::failure::ErrorKind>,
    pub counts: Counts,
    pub oldest_lock_age_seconds: Option<u64>,
    /// Stale or acted-on locks, oldest first.
    pub locks: Vec<LockSummary>,
    pub locks_omitted: usize,
    pub unreadable: Vec<UnreadableSummary>,
    pub unreadable_omitted: usize,
}

/// One lock that matters: who holds what, since when, and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct LockSummary {
    pub id: String,
    pub state_path: String,
    pub lock_key: String,
    pub who: String,
    pub operation: String,
    pub created: DateTime<Utc>,
    pub age_seconds: u64,
    pub window_seconds: u64,
    pub stale: bool,
    pub excluded: bool,
    pub action: ActionTaken,
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<crate::failure::ErrorKind>,
    /// A double lock's other half, `<kind> <source>`.
    pub paired_with: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_note: Option<crate::policy::ClockNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnreadableSummary {
    pub lock_key: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotificationSummary {
    pub channel: String,
    pub event: Option<&'static str>,
    pub kind: Option<&'static str>,
    pub outcome: Delivery,
    pub detail: Option<String>,
}

/// A lock matters when it is stale or something was done (or held back).
fn matters(l: &LockReport) -> bool {
    l.verdict.stale || l.action != ActionTaken::NoAction
}

impl RunReport {
    /// The bounded summary of this run.
    pub fn summary(&self) -> RunSummary {
        let mut locks_left = LOCKS_IN_ALL;
        let mut unreadable_left = UNREADABLE_IN_ALL;
        let sources = self.sources.iter().map(|s| summarize_source(s, &mut locks_left, &mut unreadable_left)).collect();
        let notifications = self
            .notifications
            .iter()
            .take(NOTIFICATIONS_LISTED)
            .map(|n| NotificationSummary {
                channel: n.channel.clone(),
                event: n.event.map(|e| e.as_str()),
                kind: n.kind.map(|k| k.as_str()),
                outcome: n.outcome,
                detail: n.detail.as_deref().map(|d| clean(d, ERROR_CAP)),
            })
            .collect();
        RunSummary {
            started_at: self.started_at,
            duration_ms: self.duration_ms,
            action: self.action,
            dry_run: self.dry_run,
            ok: self.ok,
            partial: self.partial,
            breaker_tripped: self.breaker_tripped,
            max_deletes_per_run: self.max_deletes_per_run,
            planned_deletes: self.planned_deletes,
            sources,
            alerts_sent: self.alerts_sent,
            alert_errors: self.alert_errors,
            notifications,
            notifications_omitted: self.notifications.len().saturating_sub(NOTIFICATIONS_LISTED),
            clock_offset_seconds: self.clock_offset.map(|o| o.seconds()),
            discovery: self.discovery.as_ref().map(|d| {
                let mut d = d.clone();
                d.failures.truncate(DISCOVERY_FAILURES_LISTED);
                for f in &mut d.failures {
                    f.reason = clean(&f.reason, ERROR_CAP);
                }
                d
            }),
            discovery_failures_omitted: self
                .discovery
                .as_ref()
                .map_or(0, |d| d.failures.len().saturating_sub(DISCOVERY_FAILURES_LISTED)),
        }
    }
}

fn summarize_source(s: &SourceReport, locks_left: &mut usize, unreadable_left: &mut usize) -> SourceSummary {
    let mattering = s.locks.iter().filter(|l| matters(l));
    let take = LOCKS_PER_SOURCE.min(*locks_left);
    let locks: Vec<LockSummary> = mattering.clone().take(take).map(summarize_lock).collect();
    *locks_left -= locks.len();
    let take = UNREADABLE_PER_SOURCE.min(*unreadable_left);
    let unreadable: Vec<UnreadableSummary> = s
        .unreadable
        .iter()
        .take(take)
        .map(|u| UnreadableSummary {
            lock_key: u.lock_key.as_deref().map(|k| clean(k, FIELD_CAP)),
            reason: clean(&u.reason, ERROR_CAP),
        })
        .collect();
    *unreadable_left -= unreadable.len();
    SourceSummary {
        kind: s.kind,
        name: s.name.clone(),
        scan_error: s.scan_error.as_deref().map(|e| clean(e, ERROR_CAP)),
        error_kind: s.error_kind,
        counts: s.counts.clone(),
        oldest_lock_age_seconds: s.oldest_lock_age_seconds,
        locks_omitted: mattering.count() - locks.len(),
        locks,
        unreadable_omitted: s.unreadable.len() - unreadable.len(),
        unreadable,
    }
}

fn summarize_lock(l: &LockReport) -> LockSummary {
    LockSummary {
        id: clean(&l.lock.id, FIELD_CAP),
        state_path: clean(&l.lock.state_path, FIELD_CAP),
        lock_key: clean(&l.lock.lock_key, FIELD_CAP),
        who: clean(&l.lock.who, FIELD_CAP),
        operation: clean(&l.lock.operation, FIELD_CAP),
        created: l.lock.created,
        age_seconds: l.verdict.age_seconds,
        window_seconds: l.verdict.window_seconds,
        stale: l.verdict.stale,
        excluded: l.verdict.excluded,
        action: l.action,
        detail: l.detail.as_deref().map(|d| clean(d, ERROR_CAP)),
        error_kind: l.error_kind,
        paired_with: l
            .paired_with
            .as_ref()
            .map(|h| format!("{} {}", h.kind.as_str(), clean(&h.source.to_string(), FIELD_CAP))),
        clock_note: l.verdict.clock_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{parse_lock_info, Unreadable};
    use crate::policy::Verdict;
    use crate::source::SourceAddress;
    use chrono::TimeZone;

    /// A table past 6 MB in the full shape: `n` locks (every one stale,
    /// with hostile 2 KB strings) and `n / 10` unreadable items, per source.
    fn huge_report(n: usize) -> RunReport {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let long = "\u{202E}x".repeat(1000);
        let info = format!(r#"{{"ID":"{long}","Who":"{long}","Operation":"{long}","Created":"2026-11-26T00:00:00Z"}}"#);
        let locks = SourceAddress::own(SourceKind::Table, "locks");
        let lock = parse_lock_info(&locks, &format!("tfstate/{long}"), &info).unwrap();
        let verdict = Verdict {
            age_seconds: 43_200,
            window_seconds: 7200,
            window_source: "STALE_AFTER".into(),
            stale: true,
            excluded: false,
            delete_due: false,
            liveness: crate::policy::Liveness::NoHeartbeat,
            clock_note: None,
        };
        let mut source = SourceReport::new(&locks);
        source.locks = (0..n)
            .map(|_| LockReport {
                lock: lock.clone(),
                verdict: verdict.clone(),
                action: ActionTaken::NoAction,
                detail: Some(long.clone()),
                error_kind: None,
                paired_with: None,
                grouped_alert: None,
            })
            .collect();
        source.unreadable = (0..n / 10)
            .map(|_| Unreadable { source: locks.clone(), lock_key: Some(long.clone()), reason: long.clone() })
            .collect();
        source.recount();
        RunReport {
            started_at: now,
            duration_ms: 1,
            action: Action::Report,
            dry_run: false,
            ok: true,
            partial: false,
            breaker_tripped: false,
            max_deletes_per_run: 5,
            planned_deletes: 0,
            sources: vec![source.clone(), SourceReport { name: "other".into(), ..source }],
            notifications: Vec::new(),
            alerts_sent: 0,
            alert_errors: 0,
            clock_offset: None,
            discovery: None,
        }
    }

    #[test]
    fn the_summary_of_a_huge_run_stays_under_256_kb() {
        let report = huge_report(2_000);
        let full = serde_json::to_vec(&report).unwrap().len();
        assert!(full > 6 * 1024 * 1024, "the full report is {full} bytes: the test needs one past 6 MB");
        let summary = report.summary();
        let size = serde_json::to_vec(&summary).unwrap().len();
        assert!(size < 256 * 1024, "summary is {size} bytes");
        assert_eq!(summary.sources[0].locks.len(), LOCKS_PER_SOURCE);
        assert_eq!(summary.sources[0].locks_omitted, 2_000 - LOCKS_PER_SOURCE);
        assert_eq!(summary.sources[1].locks.len(), LOCKS_IN_ALL - LOCKS_PER_SOURCE);
        assert_eq!(summary.sources[0].counts.locks_held, 2_000, "counts are whole");
        assert_eq!(summary.sources[0].unreadable_omitted, 200 - UNREADABLE_PER_SOURCE);
    }

    #[test]
    fn only_locks_that_matter_are_listed() {
        let mut report = huge_report(10);
        report.sources.truncate(1);
        for (i, l) in report.sources[0].locks.iter_mut().enumerate() {
            l.verdict.stale = i < 3;
        }
        let summary = report.summary();
        assert_eq!(summary.sources[0].locks.len(), 3);
        assert_eq!(summary.sources[0].locks_omitted, 0);
    }
}
