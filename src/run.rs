//! One reaper pass as a pipeline: scan → classify → decide → act → notify
//! → report → metrics. The Lambda handler and the CLI both call [`Reaper::run`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::decide::{decide, ActionTaken, Candidate, DecideSettings, Decision, Write};
use crate::metrics::{metric_sets, MetricsSink};
use crate::model::{parse_item, Item};
use crate::notify::Dispatcher;
use crate::report::{Counts, LockReport, RunReport, TableReport};
use crate::store::{LockStore, WriteOutcome};

/// No write starts when less than this remains before the deadline: the
/// write itself, metrics and the report still need time.
pub const WRITE_MARGIN: Duration = Duration::from_secs(5);

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
    pub metrics: &'a dyn MetricsSink,
    pub alerts: &'a Dispatcher,
    pub clock: &'a dyn Clock,
}

impl Reaper<'_> {
    /// Scan every table and classify every item; writes nothing.
    pub async fn scan(&self) -> Vec<TableReport> {
        let scans =
            self.config.tables.iter().map(|t| async move { (t, self.store.scan(t, self.config.scan_segments).await) });
        let results = futures::future::join_all(scans).await;
        let now = self.clock.now();
        results
            .into_iter()
            .map(|(table, result)| match result {
                Ok(items) => self.classify_table(table, &items, now),
                Err(e) => {
                    tracing::error!(table = %table, error = %e, "cannot scan lock table");
                    TableReport::failed(table, e.to_string())
                }
            })
            .collect()
    }

    fn classify_table(&self, table: &str, items: &[crate::model::RawItem], now: DateTime<Utc>) -> TableReport {
        let mut report = TableReport {
            table: table.to_string(),
            scan_error: None,
            counts: Counts::default(),
            oldest_lock_age_seconds: None,
            locks: Vec::new(),
            unreadable: Vec::new(),
        };
        for item in items {
            match parse_item(table, item, &self.config.ttl_attribute, now) {
                Item::Lock(lock) => {
                    let verdict = self.config.policy.classify(&lock, now);
                    report.locks.push(LockReport { lock, verdict, action: ActionTaken::None, detail: None });
                }
                Item::Digest(_) => report.counts.digests += 1,
                Item::Unreadable(u) => {
                    tracing::warn!(table = %table, lock_key = ?u.lock_key, reason = %u.reason, "unreadable lock-table item");
                    report.unreadable.push(u);
                }
            }
        }
        // Oldest first: that is what on-call looks for.
        report.locks.sort_by(|a, b| {
            b.verdict.age_seconds.cmp(&a.verdict.age_seconds).then(a.lock.lock_key.cmp(&b.lock.lock_key))
        });
        report.recount();
        report
    }

    /// One full pass. `deadline`, when known, stops new writes near its end.
    pub async fn run(&self, deadline: Option<DateTime<Utc>>) -> RunReport {
        let started_at = self.clock.now();
        let mut tables = self.scan().await;

        let candidates: Vec<Candidate<'_>> = tables
            .iter()
            .flat_map(|t| &t.locks)
            .map(|l| Candidate {
                verdict: &l.verdict,
                has_ttl: l.lock.expires_at.is_some(),
                created_epoch: l.lock.created.timestamp(),
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
        let mut decisions = plan.decisions.iter();
        for table in &mut tables {
            for lock in &mut table.locks {
                let Some(decision) = decisions.next() else {
                    break;
                };
                match *decision {
                    Decision::Leave(a) => lock.action = a,
                    Decision::Withhold(w, a) => {
                        lock.action = a;
                        lock.detail = Some(format!("would {}", w.describe()));
                    }
                    Decision::Execute(w) => {
                        if deadline.is_some_and(|d| self.clock.now() + WRITE_MARGIN > d) {
                            partial = true;
                            lock.action = ActionTaken::Deadline;
                            lock.detail = Some(format!("{} not started: deadline near", w.describe()));
                            continue;
                        }
                        self.execute(&table.table, lock, w).await;
                    }
                }
            }
            table.recount();
        }

        let mut report = RunReport {
            started_at,
            duration_ms: 0,
            action: self.config.action,
            dry_run: self.config.dry_run,
            ok: tables.iter().all(|t| t.scan_error.is_none() && t.counts.errors == 0),
            partial,
            breaker_tripped: plan.breaker_tripped,
            max_deletes_per_run: self.config.max_deletes_per_run,
            planned_deletes: plan.planned_deletes,
            tables,
            notifications: Vec::new(),
            alerts_sent: 0,
            alert_errors: 0,
        };

        report.notifications = self.alerts.dispatch(&report, self.clock, deadline).await;
        report.alerts_sent = report.notifications.iter().filter(|n| n.outcome == "sent").count();
        report.alert_errors = report.notifications.iter().filter(|n| n.outcome == "failed").count();
        report.ok &= report.alert_errors == 0;

        let finished = self.clock.now();
        report.duration_ms = (finished - started_at).num_milliseconds().max(0) as u64;
        if let Err(e) = self.metrics.publish(&self.config.metrics_namespace, finished, &metric_sets(&report)).await {
            tracing::error!(error = %e, "publishing metrics failed");
        }
        report
    }

    /// Make one conditional write and record its outcome on the lock.
    async fn execute(&self, table: &str, lock: &mut LockReport, write: Write) {
        let l = &lock.lock;
        let result = match write {
            Write::Delete => self.store.delete_lock(table, &l.lock_key, &l.raw_info).await,
            Write::SetTtl { expires_at } => {
                self.store.set_ttl(table, &l.lock_key, &l.raw_info, &self.config.ttl_attribute, expires_at).await
            }
        };
        let (action, detail) = match (result, write) {
            (Ok(WriteOutcome::Done), Write::Delete) => (ActionTaken::Deleted, None),
            (Ok(WriteOutcome::Done), Write::SetTtl { expires_at }) => {
                (ActionTaken::Ttl, Some(format!("{} = {expires_at}", self.config.ttl_attribute)))
            }
            (Ok(WriteOutcome::Changed), _) => {
                (ActionTaken::Changed, Some("lock changed or released since the scan; left alone".to_string()))
            }
            (Err(e), _) => (ActionTaken::Error, Some(format!("{} failed: {e}", write.describe()))),
        };
        tracing::info!(
            table = %table,
            lock_key = %l.lock_key,
            lock_id = %l.id,
            age_seconds = lock.verdict.age_seconds,
            action = action.as_str(),
            detail = detail.as_deref().unwrap_or(""),
            "lock action"
        );
        lock.action = action;
        lock.detail = detail;
    }
}
