//! The scan step: read every table and bucket at once, parse each item or
//! lockfile, classify each lock by the policy, and pair the halves of
//! double locks. Writes nothing.

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::config::Config;
use crate::domain::decision::ActionTaken;
use crate::domain::failure::ErrorKind;
use crate::domain::lock::{
    contract_seconds, epoch_attribute, heartbeat_timeout_attribute, parse_item, parse_lockfile, Item, SourceKind,
    Unreadable,
};
use crate::domain::policy::Policy;
use crate::domain::report::{LockReport, Retention, SourceReport};
use crate::domain::source::SourceAddress;
use crate::pipeline::pairing::pair_double_locks;
use crate::ports::clock::Clock;
use crate::ports::lock_tables::LockTables;
use crate::ports::lockfiles::LockfileBuckets;
use crate::ports::timer::Timer;
use crate::ports::SourceError;
use crate::support::deadline::Deadline;

/// Reads every configured source and classifies what it holds.
pub(crate) struct Scanner<'a> {
    pub config: &'a Config,
    pub tables: &'a dyn LockTables,
    pub lockfiles: &'a dyn LockfileBuckets,
    pub clock: &'a dyn Clock,
    pub timer: &'a dyn Timer,
    pub retention: Retention,
    pub deadline: Deadline,
}

impl Scanner<'_> {
    /// Scan every table and bucket, `SOURCE_CONCURRENCY` at a time (in
    /// configuration order in the report), classify every item and pair the
    /// halves of double locks; writes nothing.
    pub(crate) async fn scan(&self) -> Vec<SourceReport> {
        let sources = self.config.tables.iter().chain(&self.config.buckets);
        let mut reports: Vec<SourceReport> = futures::stream::iter(sources)
            .map(|source| self.scan_in_time(source))
            .buffered(self.config.source_concurrency.max(1))
            .collect()
            .await;
        pair_double_locks(&mut reports);
        reports
    }

    /// One source, cut short (and failed, alone) if it would run into the
    /// time the rest of the pass needs: an unreachable account never
    /// delays the others past the deadline.
    async fn scan_in_time(&self, source: &SourceAddress) -> SourceReport {
        let scan = async {
            match source.kind {
                SourceKind::Table => self.scan_table(source).await,
                SourceKind::Bucket => self.scan_bucket(source).await,
            }
        };
        let Some(budget) = self.deadline.scan_budget(self.clock.now()) else { return scan.await };
        let timeout = self.timer.sleep(budget);
        futures::pin_mut!(scan, timeout);
        match futures::future::select(scan, timeout).await {
            futures::future::Either::Left((report, _)) => report,
            futures::future::Either::Right(((), _)) => {
                let e = SourceError::new(
                    ErrorKind::Timeout,
                    format!(
                        "the scan of {} {} did not finish within {}s, before the pass's deadline; \
check that the account and region are reachable (the other sources were not held up)",
                        source.kind.as_str(),
                        source.label(),
                        budget.as_secs()
                    ),
                );
                finish(SourceReport::new(source), Err(e))
            }
        }
    }

    /// One table, parsed page by page as the pages arrive: digests are
    /// counted, not kept. Ages are measured from when this read started, so
    /// a slow read can make a lock look younger, never older; on AWS's
    /// clock, as measured once the page arrived (the first response of a
    /// run already corrects this machine's clock).
    async fn scan_table(&self, table: &SourceAddress) -> SourceReport {
        let started = self.clock.now();
        let (policy, ttl_attribute) = (&self.config.policy, self.config.ttl_attribute.as_str());
        let heartbeat_attribute = self.config.heartbeat_attribute.as_str();
        let contract_attribute = heartbeat_timeout_attribute(heartbeat_attribute);
        let mut report = SourceReport::new(table);
        let result = self
            .tables
            .scan(table, self.config.scan_segments, &mut |items| {
                let now = self.clock.to_aws(started);
                for item in items {
                    let heartbeat = epoch_attribute(&item, heartbeat_attribute);
                    let contract = contract_seconds(epoch_attribute(&item, &contract_attribute));
                    let mut parsed = parse_item(table, item, ttl_attribute);
                    if let Item::Lock(lock) = &mut parsed {
                        lock.heartbeat = heartbeat;
                        lock.heartbeat_timeout = contract.filter(|_| heartbeat.is_some());
                    }
                    record(policy, self.retention, &mut report, parsed, now);
                }
            })
            .await;
        finish(report, result)
    }

    /// One bucket's lockfiles (or prefix); a lockfile that could not be read
    /// is unreadable for this pass, the rest are judged.
    async fn scan_bucket(&self, bucket: &SourceAddress) -> SourceReport {
        let started = self.clock.now();
        let mut report = SourceReport::new(bucket);
        let result = self.lockfiles.list(bucket).await.map(|objects| {
            let now = self.clock.to_aws(started);
            for o in objects {
                let item = match &o.body {
                    Ok(body) => {
                        let mut parsed = parse_lockfile(bucket, &o.key, &o.etag, body);
                        if let Item::Lock(lock) = &mut parsed {
                            lock.heartbeat = o.heartbeat;
                            lock.heartbeat_timeout = o.heartbeat_timeout.filter(|_| o.heartbeat.is_some());
                            lock.stored_at = o.last_modified;
                        }
                        parsed
                    }
                    Err(reason) => Item::Unreadable(Unreadable {
                        source: bucket.clone(),
                        lock_key: Some(o.key.clone()),
                        reason: reason.clone(),
                    }),
                };
                record(&self.config.policy, self.retention, &mut report, item, now);
            }
        });
        finish(report, result)
    }
}

/// A source's report once its read ended: oldest lock first, counted; or
/// the read's error (what was read before it is dropped: a partial picture
/// of a source is not acted on).
fn finish(mut report: SourceReport, read: Result<(), SourceError>) -> SourceReport {
    match read {
        Ok(()) => {
            // Oldest first: that is what on-call looks for.
            report.locks.sort_by(|a, b| {
                b.verdict.age_seconds.cmp(&a.verdict.age_seconds).then(a.lock.lock_key.cmp(&b.lock.lock_key))
            });
            report.recount();
            report
        }
        Err(e) => {
            tracing::error!(
                kind = report.kind.as_str(),
                source = %report.name,
                error_kind = e.kind.as_str(),
                error = %e,
                "cannot scan lock source"
            );
            SourceReport::failed(&report.address, e.message, e.kind)
        }
    }
}

/// One parsed item into the source's report: a lock with its verdict, a
/// digest counted, or an unreadable item with its reason; what `retention`
/// does not keep is counted.
fn record(policy: &Policy, retention: Retention, report: &mut SourceReport, item: Item, now: DateTime<Utc>) {
    match item {
        Item::Lock(lock) => {
            let verdict = policy.classify(&lock, now);
            if !retention.keeps_lock(&verdict) {
                let n = &mut report.not_kept;
                n.fresh_locks += 1;
                n.heartbeat_locks += usize::from(verdict.liveness.has_heartbeat());
                n.oldest_fresh_age_seconds = n.oldest_fresh_age_seconds.max(Some(verdict.age_seconds));
                return;
            }
            report.locks.push(LockReport {
                lock: *lock,
                verdict,
                action: ActionTaken::NoAction,
                detail: None,
                error_kind: None,
                paired_with: None,
                grouped_alert: None,
            });
        }
        Item::Digest(_) => report.counts.digests += 1,
        Item::Unreadable(u) => {
            tracing::warn!(source = %report.name, lock_key = ?u.lock_key, reason = %u.reason, "unreadable lock item");
            if retention.keeps_unreadable(report.unreadable.len()) {
                report.unreadable.push(u);
            } else {
                report.not_kept.unreadable += 1;
            }
        }
    }
}
