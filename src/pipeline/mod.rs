//! One reaper pass as a pipeline:
//! scan → classify and pair ([`scan`], [`pairing`]) → decide
//! (`domain::decision`) → act ([`act`]) → notify ([`notify`]) → report and
//! metrics. Each step is its own module that knows only ports and the
//! domain; [`Reaper`] composes them. The Lambda handler and the CLI both
//! build a `Reaper` and call [`Reaper::run`]; `list` and `unlock` use its
//! scan and unlock steps. The pipeline never sees an SDK type.

pub mod act;
pub mod notify;
pub(crate) mod pairing;
pub mod preconditions;
pub(crate) mod scan;

use std::sync::Arc;

use crate::config::Config;
use crate::domain::alert::text::{clean, FIELD_CAP};
use crate::domain::decision::{decide, Action, Candidate, DecideSettings, Plan};
use crate::domain::lock::SourceKind;
use crate::domain::metrics::metric_sets;
use crate::domain::policy::Verdict;
use crate::domain::report::{Delivery, Retention, RunReport, SourceReport};
use crate::pipeline::act::Writer;
use crate::pipeline::notify::Dispatcher;
use crate::pipeline::pairing::{halves, joint_verdict, positions, At, Halves};
use crate::pipeline::preconditions::TtlPrecondition;
use crate::pipeline::scan::Scanner;
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::lock_tables::LockTables;
use crate::ports::lockfiles::LockfileBuckets;
use crate::ports::metrics::{MetricsSink, NoMetrics};
use crate::ports::timer::{NeverTimer, Timer};
use crate::support::deadline::Deadline;

/// The pipeline over its ports. Cheap to build per invocation: the ports
/// are shared.
pub struct Reaper {
    config: Config,
    tables: Arc<dyn LockTables>,
    lockfiles: Arc<dyn LockfileBuckets>,
    metrics: Arc<dyn MetricsSink>,
    dispatcher: Arc<Dispatcher>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    ttl_precondition: Option<Arc<TtlPrecondition>>,
    timer: Arc<dyn Timer>,
    /// What discovery found for this pass's sources, when it ran.
    discovery: Option<crate::domain::discovery::DiscoverySummary>,
}

impl Reaper {
    /// A reaper that sends no metrics and no notifications, on the system
    /// clock (what `list` and `unlock` need); the `with_*` methods add the rest.
    pub fn new(config: Config, tables: Arc<dyn LockTables>, lockfiles: Arc<dyn LockfileBuckets>) -> Self {
        Reaper {
            config,
            tables,
            lockfiles,
            metrics: Arc::new(NoMetrics),
            dispatcher: Arc::new(Dispatcher::disabled()),
            clock: Arc::new(SystemClock),
            retention: Retention::Everything,
            ttl_precondition: None,
            timer: Arc::new(NeverTimer),
            discovery: None,
        }
    }

    /// Bound each source's scan by the pass's deadline with this timer.
    pub(crate) fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = timer;
        self
    }

    /// Check (with `ACTION=ttl`) that TTL is enabled on every table.
    pub fn with_ttl_precondition(mut self, precondition: Arc<TtlPrecondition>) -> Self {
        self.ttl_precondition = Some(precondition);
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSink>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_dispatcher(mut self, dispatcher: Arc<Dispatcher>) -> Self {
        self.dispatcher = dispatcher;
        self
    }

    /// Report, alert on and count what discovery found for these sources:
    /// an account or region it could not search makes the run not `ok`.
    pub fn with_discovery(mut self, discovery: Option<crate::domain::discovery::DiscoverySummary>) -> Self {
        self.discovery = discovery;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keep only what the run can act or alert on (see [`Retention`]): for
    /// a caller that needs the summary, not every lock.
    pub(crate) fn keeping_only_what_matters(mut self) -> Self {
        let pairing_possible = !self.config.tables.is_empty() && !self.config.buckets.is_empty();
        self.retention = Retention::WhatMatters { pairing_possible };
        self
    }

    /// How far AWS's clock is from this machine's, as measured so far.
    pub(crate) fn clock_offset(&self) -> Option<crate::domain::clock::ClockOffset> {
        self.clock.aws_offset()
    }

    /// Scan every table and bucket, classify every item and pair the halves
    /// of double locks; writes nothing (`list`, and the first step of a run).
    pub(crate) async fn scan(&self) -> Vec<SourceReport> {
        self.scan_until(Deadline::none()).await
    }

    /// [`Self::scan`], each source cut short before `deadline`.
    async fn scan_until(&self, deadline: Deadline) -> Vec<SourceReport> {
        let scanner = Scanner {
            config: &self.config,
            tables: self.tables.as_ref(),
            lockfiles: self.lockfiles.as_ref(),
            clock: self.clock.as_ref(),
            timer: self.timer.as_ref(),
            retention: self.retention,
            deadline,
        };
        scanner.scan().await
    }

    /// The safe force-unlock: delete every lock whose `Info.ID` is
    /// `lock_id`, each conditioned on what was read (see [`Writer::unlock`]).
    pub(crate) async fn unlock(&self, sources: &mut [SourceReport], lock_id: &str) {
        self.writer().unlock(sources, lock_id).await;
    }

    /// With `ACTION=ttl`, record on each table whether its TTL works.
    async fn check_ttl(&self, sources: &mut [SourceReport]) {
        let Some(precondition) = self.ttl_precondition.as_ref().filter(|_| self.config.action == Action::Ttl) else {
            return;
        };
        let now = self.clock.now();
        for source in sources.iter_mut().filter(|s| s.kind == SourceKind::Table) {
            source.ttl = Some(precondition.check(&source.address, now).await);
        }
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            tables: self.tables.as_ref(),
            lockfiles: self.lockfiles.as_ref(),
            ttl_attribute: &self.config.ttl_attribute,
            heartbeat_attribute: &self.config.heartbeat_attribute,
            clock: self.clock.as_ref(),
        }
    }

    /// One full pass. No write or delivery starts near the deadline.
    pub async fn run(&self, deadline: Deadline) -> RunReport {
        let started_at = self.clock.now();
        let mut sources = self.scan_until(deadline).await;
        self.check_ttl(&mut sources).await;

        // One candidate per lock; a double lock is one candidate (its table
        // half), stale only if both halves are.
        let at: Vec<At> = positions(&sources).filter(|&(s, l)| !sources[s].locks[l].is_lockfile_half()).collect();
        let halves = halves(&sources);
        let plan = self.plan(&sources, &halves, &at);
        let partial = self.writer().carry_out(&mut sources, &halves, &at, &plan, self.config.action, deadline).await;
        for s in &mut sources {
            s.recount();
        }

        let mut report = RunReport {
            started_at,
            duration_ms: 0,
            action: self.config.action,
            dry_run: self.config.dry_run,
            ok: sources.iter().all(|t| t.scan_error.is_none() && t.counts.errors == 0)
                && self.discovery.as_ref().is_none_or(|d| d.failures.is_empty()),
            partial,
            breaker_tripped: plan.breaker_tripped,
            max_deletes_per_run: self.config.max_deletes_per_run,
            planned_deletes: plan.planned_deletes,
            sources,
            notifications: Vec::new(),
            alerts_sent: 0,
            alert_errors: 0,
            clock_offset: self.clock.aws_offset(),
            discovery: self.discovery.clone(),
        };

        let (notifications, grouped) = self.dispatcher.dispatch(&report, self.clock.as_ref(), deadline).await;
        report.notifications = notifications;
        for g in &grouped {
            let covered: std::collections::HashSet<&str> = g.covered.iter().map(String::as_str).collect();
            let source =
                report.sources.iter_mut().find(|t| t.kind == g.source_kind && clean(&t.name, FIELD_CAP) == g.source);
            if let Some(source) = source {
                source.mark_grouped(&g.alert_key, &covered);
            }
        }
        report.alerts_sent = report.notifications.iter().filter(|n| n.outcome == Delivery::Sent).count();
        report.alert_errors = report.notifications.iter().filter(|n| n.outcome == Delivery::Failed).count();
        report.ok &= report.alert_errors == 0;

        let finished = self.clock.now();
        report.duration_ms = (finished - started_at).num_milliseconds().max(0) as u64;
        // CloudWatch stamps and bounds metric times on AWS's clock.
        let stamped = self.clock.to_aws(finished);
        if let Err(e) = self.metrics.publish(&self.config.metrics_namespace, stamped, &metric_sets(&report)).await {
            tracing::error!(error = %e, "publishing metrics failed");
        }
        report
    }

    /// Decide every candidate at once, so the breaker sees the total.
    fn plan(&self, sources: &[SourceReport], halves: &Halves, at: &[At]) -> Plan {
        let verdicts: Vec<Verdict> = at.iter().map(|&p| joint_verdict(sources, halves, p)).collect();
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
                release_dead_heartbeats: self.config.release_dead_heartbeats,
            },
        );
        if plan.breaker_tripped {
            tracing::error!(
                planned = plan.planned_deletes,
                max = self.config.max_deletes_per_run,
                "breaker tripped: deleting nothing this run"
            );
        }
        plan
    }
}

#[cfg(test)]
mod tests;
