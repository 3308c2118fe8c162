//! The bounded summary of a run: what the Lambda returns. Run status,
//! totals over every source, the sources with something to report (stale
//! or dead locks, unreadable items, errors, actions taken), most urgent
//! first and capped, with a count of those left out, and their locks that
//! matter (stale or acted on), oldest first, capped. Every string from a
//! lock is cleaned and capped, so the summary stays bounded whatever the
//! number of sources or locks: a few KB for quiet runs, under 64 KB for
//! 1,000 sources that all hold a stale lock, under 256 KB (the limit of an
//! asynchronous invocation's destination) in the worst case. The full
//! per-source and per-lock report stays in CloudWatch Logs and on the CLI
//! (`run --json`, `list --json`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alert::text::{clean, ERROR_CAP, FIELD_CAP};
use crate::decision::{Action, ActionTaken};
use crate::lock::SourceKind;
use crate::report::{Counts, Delivery, LockReport, RunReport, SourceReport};

/// Sources listed: those with something to report, most urgent first.
pub const SOURCES_LISTED: usize = 25;
/// Unknown organisation targets listed.
const UNKNOWN_TARGETS_LISTED: usize = 20;
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
    /// Totals over every source of the pass.
    pub totals: SourceTotals,
    /// The sources with something to report, most urgent first (unreadable
    /// sources, then failed writes, then stale or dead locks and actions,
    /// then unreadable items; configuration order within each), at most
    /// [`SOURCES_LISTED`]. Sources with nothing to report are only counted.
    pub sources: Vec<SourceSummary>,
    /// Sources with something to report left out of `sources`.
    pub sources_omitted: usize,
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
    /// Unknown targets left out of `discovery.unknown_targets`.
    #[serde(skip_serializing_if = "is_zero")]
    pub discovery_unknown_targets_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Totals over every source of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceTotals {
    /// Lock tables and lock buckets read (or tried).
    pub sources: usize,
    /// Sources that could not be read.
    pub failed: usize,
    /// Sources with something to report, listed or not.
    pub reporting: usize,
    #[serde(flatten)]
    pub counts: Counts,
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

/// How urgent a source's report is, most urgent lowest; `None` when it
/// has nothing to report.
fn urgency(s: &SourceReport) -> Option<u8> {
    let c = &s.counts;
    if s.scan_error.is_some() {
        Some(0)
    } else if c.errors > 0 {
        Some(1)
    } else if c.dead_heartbeats > 0 || s.locks.iter().any(matters) {
        // Stale locks and every action taken (its count is of these locks).
        Some(2)
    } else if c.unreadable > 0 || matches!(s.ttl, Some(crate::report::TtlCheck::Disabled { .. })) {
        Some(3)
    } else {
        None
    }
}

/// Whether a source has something to report (the summary lists it, up to
/// [`SOURCES_LISTED`]).
pub fn has_something_to_report(s: &SourceReport) -> bool {
    urgency(s).is_some()
}

/// A lock matters when it is stale or something was done (or held back).
fn matters(l: &LockReport) -> bool {
    l.verdict.stale || l.action != ActionTaken::NoAction
}

impl RunReport {
    /// The bounded summary of this run.
    pub fn summary(&self) -> RunSummary {
        let mut totals = SourceTotals { sources: self.sources.len(), ..SourceTotals::default() };
        let mut reporting: Vec<(u8, &SourceReport)> = Vec::new();
        for s in &self.sources {
            totals.counts.add(&s.counts);
            totals.failed += usize::from(s.scan_error.is_some());
            if let Some(rank) = urgency(s) {
                reporting.push((rank, s));
            }
        }
        totals.reporting = reporting.len();
        // Stable: configuration order within a rank.
        reporting.sort_by_key(|(rank, _)| *rank);
        let mut locks_left = LOCKS_IN_ALL;
        let mut unreadable_left = UNREADABLE_IN_ALL;
        let sources = reporting
            .iter()
            .take(SOURCES_LISTED)
            .map(|(_, s)| summarize_source(s, &mut locks_left, &mut unreadable_left))
            .collect();
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
            totals,
            sources,
            sources_omitted: reporting.len().saturating_sub(SOURCES_LISTED),
            alerts_sent: self.alerts_sent,
            alert_errors: self.alert_errors,
            notifications,
            notifications_omitted: self.notifications.len().saturating_sub(NOTIFICATIONS_LISTED),
            clock_offset_seconds: self.clock_offset.map(|o| o.seconds()),
            discovery: self.discovery.as_ref().map(|d| {
                let mut d = d.clone();
                d.failures.truncate(DISCOVERY_FAILURES_LISTED);
                d.unknown_targets.truncate(UNKNOWN_TARGETS_LISTED);
                for t in &mut d.unknown_targets {
                    *t = clean(t, FIELD_CAP);
                }
                for f in &mut d.failures {
                    f.reason = clean(&f.reason, ERROR_CAP);
                }
                d
            }),
            discovery_failures_omitted: self
                .discovery
                .as_ref()
                .map_or(0, |d| d.failures.len().saturating_sub(DISCOVERY_FAILURES_LISTED)),
            discovery_unknown_targets_omitted: self
                .discovery
                .as_ref()
                .map_or(0, |d| d.unknown_targets.len().saturating_sub(UNKNOWN_TARGETS_LISTED)),
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

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn stale_verdict() -> Verdict {
        Verdict {
            age_seconds: 43_200,
            window_seconds: 7200,
            window_source: "STALE_AFTER".into(),
            stale: true,
            excluded: false,
            delete_due: false,
            liveness: crate::policy::Liveness::NoHeartbeat,
            clock_note: None,
        }
    }

    fn run_of(sources: Vec<SourceReport>) -> RunReport {
        RunReport {
            started_at: now(),
            duration_ms: 1,
            action: Action::Report,
            dry_run: false,
            ok: true,
            partial: false,
            breaker_tripped: false,
            max_deletes_per_run: 5,
            planned_deletes: 0,
            sources,
            notifications: Vec::new(),
            alerts_sent: 0,
            alert_errors: 0,
            clock_offset: None,
            discovery: None,
        }
    }

    /// A table past 6 MB in the full shape: `n` locks (every one stale,
    /// with hostile 2 KB strings) and `n / 10` unreadable items, per source.
    fn huge_report(n: usize) -> RunReport {
        let long = "\u{202E}x".repeat(1000);
        let info = format!(r#"{{"ID":"{long}","Who":"{long}","Operation":"{long}","Created":"2026-11-26T00:00:00Z"}}"#);
        let locks = SourceAddress::own(SourceKind::Table, "locks");
        let lock = parse_lock_info(&locks, &format!("tfstate/{long}"), &info).unwrap();
        let mut source = SourceReport::new(&locks);
        source.locks = (0..n)
            .map(|_| LockReport {
                lock: lock.clone(),
                verdict: stale_verdict(),
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
        run_of(vec![source.clone(), SourceReport { name: "other".into(), ..source }])
    }

    /// A member account's lock table as discovery names it, holding one
    /// stale lock and three fresh ones (counted, not kept, as the Lambda
    /// keeps them), as `make bench-org` builds them.
    fn org_table(n: usize) -> SourceReport {
        let arn = format!("arn:aws:dynamodb:eu-west-1:{:012}:table/terraform-locks-0", 100_000_000_000 + n);
        let address = SourceAddress::table(&arn).unwrap();
        let key = format!("tfstate/terraform-locks-0/stack-{n}/terraform.tfstate");
        let info = format!(
            r#"{{"ID":"{n:08x}-0000-0000-0000-000000000000","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.15.5","Created":"2026-11-26T09:00:00Z","Path":"{key}"}}"#
        );
        let mut source = SourceReport::new(&address);
        source.locks = vec![LockReport {
            lock: parse_lock_info(&address, &key, &info).unwrap(),
            verdict: stale_verdict(),
            action: ActionTaken::NoAction,
            detail: None,
            error_kind: None,
            paired_with: None,
            grouped_alert: None,
        }];
        source.not_kept =
            crate::report::NotKept { fresh_locks: 3, oldest_fresh_age_seconds: Some(60), ..Default::default() };
        source.counts.digests = 4;
        source.recount();
        source
    }

    /// The worst a source can be for the summary's size: an ARN-length
    /// name, an error at the cap of hostile text, and stale locks of
    /// hostile 2 KB strings.
    fn worst_source(n: usize) -> SourceReport {
        let mut source = huge_report(3).sources.remove(0);
        source.name = format!("arn:aws:dynamodb:eu-west-1:{:012}:table/{}", n, "t".repeat(255));
        source.scan_error = Some("\u{202E}\"".repeat(2000));
        source
    }

    fn size(summary: &RunSummary) -> usize {
        serde_json::to_vec(summary).unwrap().len()
    }

    #[test]
    fn the_summary_stays_bounded_whatever_the_number_of_sources() {
        for (n, bound) in [(1_000, 64 * 1024), (10_000, 256 * 1024)] {
            let report = run_of((0..n).map(org_table).collect());
            let full = serde_json::to_vec(&report).unwrap().len();
            let summary = report.summary();
            let bytes = size(&summary);
            assert!(
                bytes <= bound,
                "{n} sources: the summary is {bytes} bytes, over {bound} (the full report: {full})"
            );
            assert_eq!(summary.sources.len(), SOURCES_LISTED);
            assert_eq!(summary.sources_omitted, n - SOURCES_LISTED);
            let t = &summary.totals;
            assert_eq!((t.sources, t.reporting, t.failed), (n, n, 0));
            assert_eq!((t.counts.locks_held, t.counts.stale, t.counts.digests), (4 * n, n, 4 * n), "totals are whole");
        }
        let worst = run_of((0..10_000).map(worst_source).collect()).summary();
        assert!(size(&worst) <= 256 * 1024, "the worst case is {} bytes", size(&worst));
        assert_eq!(worst.totals.failed, 10_000);
    }

    #[test]
    fn quiet_sources_are_counted_and_the_most_urgent_are_listed_first() {
        let mut quiet = org_table(1);
        quiet.locks.clear();
        quiet.recount();
        let stale = org_table(2);
        let mut unreadable = org_table(3);
        unreadable.locks.clear();
        unreadable.unreadable = vec![Unreadable {
            source: unreadable.address.clone(),
            lock_key: Some("k".into()),
            reason: "not JSON".into(),
        }];
        unreadable.recount();
        let mut write_failed = org_table(4);
        write_failed.locks[0].action = ActionTaken::Error;
        write_failed.recount();
        let failed =
            SourceReport::failed(&org_table(5).address, "AccessDenied".into(), crate::failure::ErrorKind::AccessDenied);
        let summary = run_of(vec![quiet, unreadable, stale.clone(), write_failed, failed, stale]).summary();
        let listed: Vec<&str> = summary.sources.iter().map(|s| s.name.rsplit(':').nth(1).unwrap()).collect();
        assert_eq!(listed, ["100000000005", "100000000004", "100000000002", "100000000002", "100000000003"]);
        let t = &summary.totals;
        assert_eq!((t.sources, t.reporting, t.failed, summary.sources_omitted), (6, 5, 1, 0));
        assert_eq!((t.counts.stale, t.counts.errors, t.counts.unreadable), (3, 1, 1));
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
