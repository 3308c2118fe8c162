//! One reaper pass as a pipeline: scan → classify (and pair double locks) →
//! decide → act → notify → report → metrics. The Lambda handler and the CLI
//! both call [`Reaper::run`].

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Action, Config};
use crate::decide::{decide, ActionTaken, Candidate, DecideSettings, Decision, Write};
use crate::lockfiles::{LockfileObject, LockfileStore};
use crate::metrics::{metric_sets, MetricsSink};
use crate::model::{parse_item, parse_lockfile, Item, SourceKind};
use crate::notify::{Delivery, Dispatcher};
use crate::policy::Verdict;
use crate::report::{HalfRef, LockReport, RunReport, SourceReport};
use crate::store::{LockStore, StoreError, WriteOutcome};

/// No write starts when less than this remains before the deadline: the
/// write itself, metrics and the report still need time.
pub const WRITE_MARGIN: Duration = Duration::from_secs(5);

/// What a lockfile gets in `ACTION=ttl`: S3 objects have no TTL.
pub const TTL_NOT_FOR_LOCKFILES: &str = "ttl does not apply to S3 lockfiles";

/// Wall clock, behind a trait so tests can fix or move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything a pass needs.
pub struct Reaper<'a> {
    pub config: &'a Config,
    pub store: &'a dyn LockStore,
    pub lockfiles: &'a dyn LockfileStore,
    pub metrics: &'a dyn MetricsSink,
    pub alerts: &'a Dispatcher,
    pub clock: &'a dyn Clock,
}

/// Position of a lock in the sources: (source index, lock index).
type At = (usize, usize);

impl Reaper<'_> {
    /// Scan every table and bucket, classify every item and pair the halves
    /// of double locks; writes nothing.
    pub async fn scan(&self) -> Vec<SourceReport> {
        let segments = self.config.scan_segments;
        let tables = futures::future::join_all(self.config.tables.iter().map(|t| self.store.scan(t, segments)));
        let buckets =
            futures::future::join_all(self.config.buckets.iter().map(|b| self.lockfiles.list(&b.bucket, &b.prefix)));
        let (tables, buckets) = futures::join!(tables, buckets);
        let now = self.clock.now();
        let mut reports: Vec<SourceReport> = self
            .config
            .tables
            .iter()
            .zip(tables)
            .map(|(table, scanned)| {
                self.classify(SourceKind::Table, table, scanned, |report, items| {
                    for item in items {
                        self.record(report, parse_item(table, &item, &self.config.ttl_attribute, now), now);
                    }
                })
            })
            .collect();
        reports.extend(self.config.buckets.iter().zip(buckets).map(|(spec, listed)| {
            self.classify(SourceKind::Bucket, &spec.name(), listed, |report, objects: Vec<LockfileObject>| {
                for o in objects {
                    let item = match &o.body {
                        Ok(body) => parse_lockfile(&spec.bucket, &o.key, &o.etag, body, now),
                        Err(reason) => Item::Unreadable(crate::model::Unreadable {
                            source: spec.bucket.clone(),
                            lock_key: Some(o.key.clone()),
                            reason: reason.clone(),
                        }),
                    };
                    self.record(report, item, now);
                }
            })
        }));
        pair_double_locks(&mut reports);
        reports
    }

    /// A source's report from its scan result.
    fn classify<T>(
        &self,
        kind: SourceKind,
        name: &str,
        scanned: Result<T, StoreError>,
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

    fn record(&self, report: &mut SourceReport, item: Item, now: DateTime<Utc>) {
        match item {
            Item::Lock(lock) => {
                let verdict = self.config.policy.classify(&lock, now);
                report.locks.push(LockReport {
                    lock: *lock,
                    verdict,
                    action: ActionTaken::None,
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

    /// One full pass. `deadline`, when known, stops new writes near its end.
    pub async fn run(&self, deadline: Option<DateTime<Utc>>) -> RunReport {
        let started_at = self.clock.now();
        let mut sources = self.scan().await;

        // One candidate per lock; a double lock is one candidate (its table
        // half), stale only if both halves are.
        let at: Vec<At> = positions(&sources).filter(|&(s, l)| !sources[s].locks[l].is_lockfile_half()).collect();
        let halves = halves(&sources);
        let verdicts: Vec<Verdict> = at.iter().map(|&p| joint_verdict(&sources, &halves, p)).collect();
        let candidates: Vec<Candidate<'_>> = at
            .iter()
            .zip(&verdicts)
            .map(|(&(s, l), verdict)| {
                let lock = &sources[s].locks[l].lock;
                Candidate {
                    verdict,
                    has_ttl: lock.expires_at.is_some(),
                    ttl_supported: lock.kind == SourceKind::Table,
                    created_epoch: lock.created.timestamp(),
                }
            })
            .collect();
        let plan = decide(
            &candidates,
            DecideSettings {
                action: self.config.action,
                dry_run: self.config.dry_run,
                ttl_after_secs: self.config.ttl_after.map(|d| d.as_secs()),
                max_deletes_per_run: self.config.max_deletes_per_run,
            },
        );
        if plan.breaker_tripped {
            tracing::error!(
                planned = plan.planned_deletes,
                max = self.config.max_deletes_per_run,
                "breaker tripped: deleting nothing this run"
            );
        }

        let mut partial = false;
        for (&p, decision) in at.iter().zip(&plan.decisions) {
            let (action, detail) = match *decision {
                Decision::Leave(a) => (a, None),
                Decision::Withhold(w, a) => (a, Some(format!("would {}", w.describe()))),
                Decision::Execute(w) if deadline.is_some_and(|d| self.clock.now() + WRITE_MARGIN > d) => {
                    partial = true;
                    (ActionTaken::Deadline, Some(format!("{} not started: deadline near", w.describe())))
                }
                Decision::Execute(w) => {
                    self.execute(&mut sources, p, halves.get(&p).copied(), w).await;
                    continue;
                }
            };
            set_outcome(&mut sources, p, action, detail.clone());
            // A double lock's lockfile half shares its table half's fate,
            // except for a TTL, which it cannot take (noted below).
            let ttl_write = matches!(
                decision,
                Decision::Withhold(Write::SetTtl { .. }, _) | Decision::Execute(Write::SetTtl { .. })
            );
            if let (Some(&half), false) = (halves.get(&p), ttl_write) {
                set_outcome(&mut sources, half, action, detail);
            }
        }
        // Lockfiles (alone or as a double lock's half) cannot take a TTL:
        // say so rather than stay silent.
        if self.config.action == Action::Ttl {
            for (s, l) in positions(&sources).collect::<Vec<_>>() {
                let lr = &mut sources[s].locks[l];
                if lr.lock.kind == SourceKind::Bucket && lr.verdict.stale && lr.action == ActionTaken::None {
                    lr.detail = Some(TTL_NOT_FOR_LOCKFILES.to_string());
                }
            }
        }
        for s in &mut sources {
            s.recount();
        }

        let mut report = RunReport {
            started_at,
            duration_ms: 0,
            action: self.config.action,
            dry_run: self.config.dry_run,
            ok: sources.iter().all(|t| t.scan_error.is_none() && t.counts.errors == 0),
            partial,
            breaker_tripped: plan.breaker_tripped,
            max_deletes_per_run: self.config.max_deletes_per_run,
            planned_deletes: plan.planned_deletes,
            sources,
            notifications: Vec::new(),
            alerts_sent: 0,
            alert_errors: 0,
        };

        report.notifications = self.alerts.dispatch(&report, self.clock, deadline).await;
        report.alerts_sent = report.notifications.iter().filter(|n| n.outcome == Delivery::Sent).count();
        report.alert_errors = report.notifications.iter().filter(|n| n.outcome == Delivery::Failed).count();
        report.ok &= report.alert_errors == 0;

        let finished = self.clock.now();
        report.duration_ms = (finished - started_at).num_milliseconds().max(0) as u64;
        if let Err(e) = self.metrics.publish(&self.config.metrics_namespace, finished, &metric_sets(&report)).await {
            tracing::error!(error = %e, "publishing metrics failed");
        }
        report
    }

    /// The safe force-unlock: delete every lock whose `Info.ID` is `lock_id`
    /// (both halves of a double lock, table half first), each conditioned
    /// on what was read. Outcomes are recorded on the locks.
    pub async fn release(&self, sources: &mut [SourceReport], lock_id: &str) {
        let targets: Vec<At> = positions(sources)
            .filter(|&(s, l)| sources[s].locks[l].lock.id == lock_id && !sources[s].locks[l].is_lockfile_half())
            .collect();
        let halves = halves(sources);
        for &p in &targets {
            self.execute(sources, p, halves.get(&p).copied(), Write::Delete).await;
        }
    }

    /// Make the conditional write(s) for one candidate and record the outcome.
    async fn execute(&self, sources: &mut [SourceReport], p: At, half: Option<At>, write: Write) {
        let lock = sources[p.0].locks[p.1].lock.clone();
        let outcomes: Vec<(At, ActionTaken, Option<String>)> = match (write, half) {
            (Write::SetTtl { expires_at }, _) => {
                let result = self
                    .store
                    .set_ttl(&lock.source, &lock.lock_key, &lock.raw_info, &self.config.ttl_attribute, expires_at)
                    .await;
                let (action, detail) =
                    outcome(result, write, || format!("{} = {expires_at}", self.config.ttl_attribute));
                vec![(p, action, detail)]
            }
            (Write::Delete, None) => {
                let result = match lock.kind {
                    SourceKind::Table => self.store.delete_lock(&lock.source, &lock.lock_key, &lock.raw_info).await,
                    SourceKind::Bucket => {
                        let etag = lock.etag.as_deref().unwrap_or_default();
                        self.lockfiles.delete_lockfile(&lock.source, &lock.lock_key, etag).await
                    }
                };
                let (action, detail) = outcome(result, write, String::new);
                vec![(p, action, detail)]
            }
            (Write::Delete, Some(h)) => {
                let file = sources[h.0].locks[h.1].lock.clone();
                self.delete_double_lock(&lock, &file)
                    .await
                    .into_iter()
                    .zip([p, h])
                    .map(|((a, d), at)| (at, a, d))
                    .collect()
            }
        };
        for (at, action, detail) in outcomes {
            let l = &sources[at.0].locks[at.1];
            tracing::info!(
                source = %l.lock.source,
                lock_key = %l.lock.lock_key,
                lock_id = %l.lock.id,
                age_seconds = l.verdict.age_seconds,
                action = action.as_str(),
                detail = detail.as_deref().unwrap_or(""),
                "lock action"
            );
            set_outcome(sources, at, action, detail);
        }
    }

    /// Clear both halves of a double lock, or neither if either changed.
    /// The lockfile is checked first; the table half goes first (while the
    /// lockfile still stops any new run), then the lockfile by ETag.
    /// Returns the outcomes of the table half and the lockfile half.
    async fn delete_double_lock(
        &self,
        table_half: &crate::model::Lock,
        file_half: &crate::model::Lock,
    ) -> [(ActionTaken, Option<String>); 2] {
        let etag = file_half.etag.as_deref().unwrap_or_default();
        let neither = |why: String| [(ActionTaken::Changed, Some(why.clone())), (ActionTaken::Changed, Some(why))];
        let failed = |e: StoreError| {
            let why = format!("double lock not cleared: {e}");
            [(ActionTaken::Error, Some(why.clone())), (ActionTaken::Error, Some(why))]
        };
        match self.lockfiles.current_etag(&file_half.source, &file_half.lock_key).await {
            Ok(Some(now)) if now == etag => {}
            Ok(_) => return neither("lockfile half changed or released since the scan; neither half deleted".into()),
            Err(e) => return failed(e),
        }
        match self.store.delete_lock(&table_half.source, &table_half.lock_key, &table_half.raw_info).await {
            Ok(WriteOutcome::Done) => {}
            Ok(WriteOutcome::Changed) => {
                return neither("table half changed or released since the scan; neither half deleted".into())
            }
            Err(e) => return failed(e),
        }
        let table_done = (ActionTaken::Deleted, Some("double lock: both halves deleted".to_string()));
        match self.lockfiles.delete_lockfile(&file_half.source, &file_half.lock_key, etag).await {
            Ok(WriteOutcome::Done) => [table_done.clone(), table_done],
            Ok(WriteOutcome::Changed) => [
                (ActionTaken::Deleted, Some("double lock: table half deleted, lockfile changed just after".into())),
                (ActionTaken::Changed, Some("lockfile changed after its check; left alone".into())),
            ],
            Err(e) => [
                (ActionTaken::Deleted, Some("double lock: table half deleted, lockfile delete failed".into())),
                (ActionTaken::Error, Some(format!("delete failed: {e}"))),
            ],
        }
    }
}

/// Every lock position, source by source.
fn positions(sources: &[SourceReport]) -> impl Iterator<Item = At> + '_ {
    sources.iter().enumerate().flat_map(|(s, src)| (0..src.locks.len()).map(move |l| (s, l)))
}

/// Both halves of every double lock, each pointing at the other.
type Halves = HashMap<At, At>;

fn halves(sources: &[SourceReport]) -> Halves {
    let by_location: HashMap<(SourceKind, &str, &str), At> = positions(sources)
        .map(|(s, l)| {
            let lock = &sources[s].locks[l].lock;
            ((lock.kind, lock.source.as_str(), lock.lock_key.as_str()), (s, l))
        })
        .collect();
    positions(sources)
        .filter_map(|p| {
            let other = sources[p.0].locks[p.1].paired_with.as_ref()?;
            by_location.get(&(other.kind, other.source.as_str(), other.lock_key.as_str())).map(|&h| (p, h))
        })
        .collect()
}

/// A double lock is stale, excluded or due only if both halves are.
fn joint_verdict(sources: &[SourceReport], halves: &Halves, p: At) -> Verdict {
    let mut v = sources[p.0].locks[p.1].verdict.clone();
    if let Some(&h) = halves.get(&p) {
        let o = &sources[h.0].locks[h.1].verdict;
        v.stale &= o.stale;
        v.delete_due &= o.delete_due;
        v.excluded |= o.excluded;
        v.age_seconds = v.age_seconds.min(o.age_seconds);
    }
    v
}

fn set_outcome(sources: &mut [SourceReport], p: At, action: ActionTaken, detail: Option<String>) {
    let l = &mut sources[p.0].locks[p.1];
    l.action = action;
    l.detail = detail;
}

/// The report's view of one conditional write's result.
fn outcome(
    result: Result<WriteOutcome, StoreError>,
    write: Write,
    done_detail: impl FnOnce() -> String,
) -> (ActionTaken, Option<String>) {
    match (result, write) {
        (Ok(WriteOutcome::Done), Write::Delete) => (ActionTaken::Deleted, None),
        (Ok(WriteOutcome::Done), Write::SetTtl { .. }) => (ActionTaken::Ttl, Some(done_detail())),
        (Ok(WriteOutcome::Changed), _) => {
            (ActionTaken::Changed, Some("lock changed or released since the scan; left alone".to_string()))
        }
        (Err(e), _) => (ActionTaken::Error, Some(format!("{} failed: {e}", write.describe()))),
    }
}

/// Mark the two halves of every double lock: a lockfile and a table item
/// with the same lock ID and the same state path.
pub fn pair_double_locks(sources: &mut [SourceReport]) {
    let mut table_halves: HashMap<(String, String), At> = HashMap::new();
    for (s, l) in positions(sources).collect::<Vec<_>>() {
        let lock = &sources[s].locks[l].lock;
        if lock.kind == SourceKind::Table && !lock.id.is_empty() {
            table_halves.entry((lock.id.clone(), lock.state_path.clone())).or_insert((s, l));
        }
    }
    for (s, l) in positions(sources).collect::<Vec<_>>() {
        let file = sources[s].locks[l].lock.clone();
        if file.kind != SourceKind::Bucket {
            continue;
        }
        let Some(&(ts, tl)) = table_halves.get(&(file.id.clone(), file.state_path.clone())) else { continue };
        let table = sources[ts].locks[tl].lock.clone();
        sources[s].locks[l].paired_with =
            Some(HalfRef { kind: SourceKind::Table, source: table.source.clone(), lock_key: table.lock_key.clone() });
        sources[ts].locks[tl].paired_with =
            Some(HalfRef { kind: SourceKind::Bucket, source: file.source.clone(), lock_key: file.lock_key.clone() });
    }
}
