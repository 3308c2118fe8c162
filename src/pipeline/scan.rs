//! The scan step: read every table and bucket at once, parse each item or
//! lockfile, classify each lock by the policy, and pair the halves of
//! double locks. Writes nothing.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::decision::ActionTaken;
use crate::domain::lock::{parse_item, parse_lockfile, Item, SourceKind, Unreadable};
use crate::domain::policy::Policy;
use crate::domain::report::{LockReport, SourceReport};
use crate::pipeline::pairing::pair_double_locks;
use crate::ports::clock::Clock;
use crate::ports::lock_tables::LockTables;
use crate::ports::lockfiles::{LockfileBuckets, LockfileObject};
use crate::ports::SourceError;

/// Reads every configured source and classifies what it holds.
pub struct Scanner<'a> {
    pub config: &'a Config,
    pub tables: &'a dyn LockTables,
    pub lockfiles: &'a dyn LockfileBuckets,
    pub clock: &'a dyn Clock,
}

impl Scanner<'_> {
    /// Scan every table and bucket, classify every item and pair the halves
    /// of double locks; writes nothing.
    pub async fn scan(&self) -> Vec<SourceReport> {
        let config = self.config;
        let tables = futures::future::join_all(config.tables.iter().map(|t| self.tables.scan(t, config.scan_segments)));
        let buckets =
            futures::future::join_all(config.buckets.iter().map(|b| self.lockfiles.list(&b.bucket, &b.prefix)));
        let (tables, buckets) = futures::join!(tables, buckets);
        let now = self.clock.now();
        let policy = &config.policy;
        let mut reports: Vec<SourceReport> = config
            .tables
            .iter()
            .zip(tables)
            .map(|(table, scanned)| {
                source_report(SourceKind::Table, table, scanned, |report, items| {
                    for item in items {
                        record(policy, report, parse_item(table, &item, &config.ttl_attribute, now), now);
                    }
                })
            })
            .collect();
        reports.extend(config.buckets.iter().zip(buckets).map(|(spec, listed)| {
            source_report(SourceKind::Bucket, &spec.name(), listed, |report, objects: Vec<LockfileObject>| {
                for o in objects {
                    let item = match &o.body {
                        Ok(body) => parse_lockfile(&spec.bucket, &o.key, &o.etag, body, now),
                        Err(reason) => Item::Unreadable(Unreadable {
                            source: spec.bucket.clone(),
                            lock_key: Some(o.key.clone()),
                            reason: reason.clone(),
                        }),
                    };
                    record(policy, report, item, now);
                }
            })
        }));
        pair_double_locks(&mut reports);
        reports
    }
}

/// A source's report from its scan result: every item recorded, oldest
/// lock first, counted; or the scan error.
fn source_report<T>(
    kind: SourceKind,
    name: &str,
    scanned: Result<T, SourceError>,
    fill: impl FnOnce(&mut SourceReport, T),
) -> SourceReport {
    match scanned {
        Ok(items) => {
            let mut report = SourceReport::new(kind, name);
            fill(&mut report, items);
            // Oldest first: that is what on-call looks for.
            report.locks.sort_by(|a, b| {
                b.verdict.age_seconds.cmp(&a.verdict.age_seconds).then(a.lock.lock_key.cmp(&b.lock.lock_key))
            });
            report.recount();
            report
        }
        Err(e) => {
            tracing::error!(kind = kind.as_str(), source = %name, error = %e, "cannot scan lock source");
            SourceReport::failed(kind, name, e.to_string())
        }
    }
}

/// One parsed item into the source's report: a lock with its verdict, a
/// digest counted, or an unreadable item kept with its reason.
fn record(policy: &Policy, report: &mut SourceReport, item: Item, now: DateTime<Utc>) {
    match item {
        Item::Lock(lock) => {
            let verdict = policy.classify(&lock, now);
            report.locks.push(LockReport {
                lock: *lock,
                verdict,
                action: ActionTaken::NoAction,
                detail: None,
                paired_with: None,
            });
        }
        Item::Digest(_) => report.counts.digests += 1,
        Item::Unreadable(u) => {
            tracing::warn!(source = %report.name, lock_key = ?u.lock_key, reason = %u.reason, "unreadable lock item");
            report.unreadable.push(u);
        }
    }
}
