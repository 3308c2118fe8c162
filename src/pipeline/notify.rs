//! The notify step: turns a run's report into triggers, reminders, resolves
//! and deletion notices on every channel, once per alert when a
//! notify-once state is configured. A failing channel or state never stops
//! a run: every outcome is recorded in the report instead.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alert::conditions::{current_alerts, Alert};
use crate::domain::alert::grouping::{group_key, group_message, partition};
use crate::domain::alert::messages::{deleted_lock_resolve, deleted_message, resolve_message};
use crate::domain::alert::{with_runbook, AlertSettings};
use crate::domain::alert::{AlertKind, Message, OpenAlert, Severity};
use crate::domain::decision::ActionTaken;
use crate::domain::lock::SourceKind;
use crate::domain::report::{Delivery, LockReport, NotificationRecord, RunReport, TtlCheck};
use crate::domain::source::SourceAddress;
use crate::ports::alert_state::{AlertState, StateError};
use crate::ports::clock::Clock;
use crate::ports::notifier::Notifier;
use crate::support::deadline::Deadline;

/// Turns a run's report into notifications.
pub struct Dispatcher {
    pub notifiers: Vec<Box<dyn Notifier>>,
    pub state: Option<Box<dyn AlertState>>,
    pub renotify_after: Option<Duration>,
    pub settings: AlertSettings,
}

/// One dispatch: what it needs to send, and the records it collects.
struct Round<'a> {
    dispatcher: &'a Dispatcher,
    clock: &'a dyn Clock,
    deadline: Deadline,
    now: DateTime<Utc>,
    records: Vec<NotificationRecord>,
    grouped: Vec<Grouped>,
}

/// A grouped alert raised this run, and the stale-lock alerts it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grouped {
    pub alert_key: String,
    pub source_kind: SourceKind,
    pub source: String,
    /// The per-lock alert keys it stands for.
    pub covered: Vec<String>,
}

/// What `ALERT_GROUP_OVER` makes of this run's stale-lock alerts: which a
/// grouped alert covers (lock alert key → group key), and each group's
/// trigger with the state's open alert for it.
struct Grouping<'o> {
    covered_by: HashMap<String, String>,
    groups: HashMap<String, (Message, Option<&'o OpenAlert>, Grouped)>,
}

impl<'o> Grouping<'o> {
    /// Per source, the stale-lock alerts with no alert of their own open
    /// are partitioned into a group and alerts of their own.
    fn of(
        alerts: &[Alert],
        open_by_key: &HashMap<&str, &'o OpenAlert>,
        group_over: usize,
        now: DateTime<Utc>,
    ) -> Grouping<'o> {
        // In first-seen order; the index keeps an organisation's thousands of sources linear.
        let mut by_source: Vec<((SourceKind, String), Vec<&Alert>)> = Vec::new();
        let mut index: HashMap<(SourceKind, String), usize> = HashMap::new();
        for a in alerts.iter().filter(|a| a.message.kind == AlertKind::LockStale) {
            let (Some(kind), Some(source)) = (a.message.source_kind, a.message.source_name.clone()) else { continue };
            if open_by_key.contains_key(a.key()) {
                continue;
            }
            let at = *index.entry((kind, source.clone())).or_insert_with(|| {
                by_source.push(((kind, source), Vec::new()));
                by_source.len() - 1
            });
            by_source[at].1.push(a);
        }
        let mut covered_by = HashMap::new();
        let mut groups = HashMap::new();
        for ((kind, source), candidates) in by_source {
            let key = group_key(kind, &source);
            let open = open_by_key.get(key.as_str()).copied();
            let (covered, _own) = partition(&candidates, open.map(|o| o.opened_at), group_over);
            if covered.is_empty() {
                continue;
            }
            let message = group_message(kind, &source, &covered, group_over, now);
            let grouped = Grouped {
                alert_key: key.clone(),
                source_kind: kind,
                source,
                covered: covered.iter().map(|a| a.key().to_string()).collect(),
            };
            for a in &covered {
                covered_by.insert(a.key().to_string(), key.clone());
            }
            groups.insert(key, (message, open, grouped));
        }
        Grouping { covered_by, groups }
    }
}

impl Dispatcher {
    /// No channels: notifications off.
    pub fn disabled() -> Self {
        Dispatcher { notifiers: Vec::new(), state: None, renotify_after: None, settings: AlertSettings::default() }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.notifiers.is_empty()
    }

    /// Send what this run calls for; never fails, records every outcome.
    /// Also returns the grouped alerts raised, for the report.
    pub(crate) async fn dispatch(
        &self,
        report: &RunReport,
        clock: &dyn Clock,
        deadline: Deadline,
    ) -> (Vec<NotificationRecord>, Vec<Grouped>) {
        if !self.is_active() {
            return (Vec::new(), Vec::new());
        }
        // Alert times are compared across runs and machines: AWS's clock.
        let now = clock.aws_now();
        let mut round = Round { dispatcher: self, clock, deadline, now, records: Vec::new(), grouped: Vec::new() };
        let alerts = current_alerts(report, &self.settings, now);
        // A cleared double lock is told once, through its table half; only
        // what this run deleted gets a deletion notice.
        let cleared: Vec<&LockReport> = report
            .sources
            .iter()
            .flat_map(|t| &t.locks)
            .filter(|l| l.action.cleared() && !l.is_lockfile_half())
            .collect();
        for l in cleared.iter().filter(|l| l.action == ActionTaken::Deleted) {
            round.send_all(&deleted_message(l, now)).await;
        }
        match self.open_alerts(&mut round).await {
            Some((state, open)) => round.with_state(state, &open, &alerts, report).await,
            None => round.stateless(&alerts, &cleared).await,
        }
        (round.records, round.grouped)
    }

    /// The state and the alerts it holds open; `None` without a state, or
    /// when it cannot be read (better to page twice than never).
    async fn open_alerts(&self, round: &mut Round<'_>) -> Option<(&dyn AlertState, Vec<OpenAlert>)> {
        let state = self.state.as_deref()?;
        match state.open_alerts().await {
            Ok(open) => Some((state, open)),
            Err(e) => {
                round.records.push(state_error_record(&e));
                None
            }
        }
    }
}

impl Round<'_> {
    /// Stateless: trigger every run (PagerDuty's dedup_key keeps one
    /// incident), a flood grouped within the run; resolve only what this
    /// run cleared (a source's group when it cleared a flood and no stale
    /// lock is left there).
    async fn stateless(&mut self, alerts: &[Alert], cleared: &[&LockReport]) {
        let group_over = self.dispatcher.settings.group_over;
        let mut grouping = Grouping::of(alerts, &HashMap::new(), group_over, self.now);
        for a in alerts {
            match grouping.covered_by.get(a.key()) {
                Some(g) => {
                    if let Some((m, _, grouped)) = grouping.groups.remove(g) {
                        self.send_all(&m).await;
                        self.grouped.push(grouped);
                    }
                }
                None => {
                    self.send_all(&a.message).await;
                }
            }
        }
        let still_stale: HashSet<(SourceKind, &str)> = alerts
            .iter()
            .filter(|a| a.message.kind == AlertKind::LockStale)
            .filter_map(|a| Some((a.message.source_kind?, a.message.source_name.as_deref()?)))
            .collect();
        let mut cleared_per_source: HashMap<&SourceAddress, usize> = HashMap::new();
        for l in cleared {
            *cleared_per_source.entry(&l.lock.source).or_default() += 1;
        }
        let mut group_resolved = HashSet::new();
        for l in cleared {
            let source = &l.lock.source;
            if cleared_per_source[source] <= group_over {
                self.send_all(&deleted_lock_resolve(l, self.now)).await;
                continue;
            }
            // Alert messages name their source by its address string.
            let name = source.to_string();
            if !still_stale.contains(&(source.kind, name.as_str())) && group_resolved.insert(source) {
                self.send_all(&resolve_message(&group_resolve(source.kind, &name), self.now)).await;
            }
        }
    }

    /// With the notify-once state: open each new alert once (a flood of
    /// stale locks in one source as one grouped alert), remind or escalate
    /// open ones when due, resolve those whose condition cleared.
    async fn with_state(&mut self, state: &dyn AlertState, open: &[OpenAlert], alerts: &[Alert], report: &RunReport) {
        let open_by_key: HashMap<&str, &OpenAlert> = open.iter().map(|o| (o.key.as_str(), o)).collect();
        let mut grouping = Grouping::of(alerts, &open_by_key, self.dispatcher.settings.group_over, self.now);
        let mut current: HashSet<String> = HashSet::new();
        for a in alerts {
            if let Some(g) = grouping.covered_by.get(a.key()) {
                current.insert(g.clone());
                if let Some((m, open, grouped)) = grouping.groups.remove(g) {
                    match open {
                        Some(o) => self.update_group(state, o, &m).await,
                        None => self.open(state, &m).await,
                    }
                    self.grouped.push(grouped);
                }
                continue;
            }
            current.insert(a.key().to_string());
            match open_by_key.get(a.key()) {
                Some(o) => self.remind(state, o, &a.message).await,
                None => self.open(state, &a.message).await,
            }
        }
        let unreadable_sources: HashSet<&str> =
            report.sources.iter().filter(|t| t.scan_error.is_some()).map(|t| t.name.as_str()).collect();
        // A TTL setting that could not be read this run is not known to be fixed.
        let ttl_unknown: HashSet<&str> = report
            .sources
            .iter()
            .filter(|t| matches!(t.ttl, Some(TtlCheck::Unknown { .. })))
            .map(|t| t.name.as_str())
            .collect();
        for o in open {
            if current.contains(o.key.as_str()) {
                continue;
            }
            // A lock in a source we could not read may still be there.
            if matches!(o.kind, AlertKind::LockStale | AlertKind::StaleGroup)
                && o.source_name.as_deref().is_some_and(|t| unreadable_sources.contains(t))
            {
                continue;
            }
            if o.kind == AlertKind::TtlDisabled && o.source_name.as_deref().is_some_and(|t| ttl_unknown.contains(t)) {
                continue;
            }
            if self.send_all(&resolve_message(o, self.now)).await {
                self.forget(state, &o.key).await;
            }
        }
    }

    /// A new alert: claim it, then send; if nobody was told, forget it so
    /// the next run tries again.
    async fn open(&mut self, state: &dyn AlertState, m: &Message) {
        match state.claim(&OpenAlert::opened_by(m, self.now.timestamp())).await {
            Ok(true) => {
                if !self.send_all(m).await {
                    self.forget(state, &m.alert_key).await;
                }
            }
            Ok(false) => {} // an overlapping run opened it first
            Err(e) => {
                self.records.push(state_error_record(&e));
                self.send_all(m).await;
            }
        }
    }

    /// An open alert: send again only when it escalated or a reminder is due.
    async fn remind(&mut self, state: &dyn AlertState, o: &OpenAlert, m: &Message) {
        let epoch = self.now.timestamp();
        let escalated = m.severity > o.severity;
        let reminder_due = self
            .dispatcher
            .renotify_after
            .is_some_and(|r| epoch.saturating_sub(o.last_notified_at) >= r.as_secs() as i64);
        if !(escalated || reminder_due) {
            return;
        }
        match state.renotified(&o.key, o.last_notified_at, epoch, m.severity).await {
            Ok(true) => {
                self.send_all(m).await;
            }
            Ok(false) => {} // another run sent the reminder
            Err(e) => self.records.push(state_error_record(&e)),
        }
    }

    /// An open grouped alert: record a changed count (channels that update
    /// an alert in place, PagerDuty, get it: no new page), and remind or
    /// escalate as any alert.
    async fn update_group(&mut self, state: &dyn AlertState, o: &OpenAlert, m: &Message) {
        let count = m.details.get("count").and_then(serde_json::Value::as_u64);
        if let Some(count) = count.filter(|c| o.count != Some(*c)) {
            if let Err(e) = state.recount(&o.key, count, &m.summary).await {
                self.records.push(state_error_record(&e));
            }
            self.send_where(m, |n| n.updates_in_place()).await;
        }
        self.remind(state, o, m).await;
    }

    async fn forget(&mut self, state: &dyn AlertState, key: &str) {
        if let Err(e) = state.forget(key).await {
            self.records.push(state_error_record(&e));
        }
    }

    /// Send to every channel; `true` if at least one delivered it.
    async fn send_all(&mut self, m: &Message) -> bool {
        self.send_where(m, |_| true).await
    }

    /// Send to the channels `which` picks; `true` if at least one delivered it.
    async fn send_where(&mut self, m: &Message, which: impl Fn(&dyn Notifier) -> bool) -> bool {
        // Every alert leaves with its runbook section's link (RUNBOOK_URL).
        let m = &with_runbook(m, self.dispatcher.settings.runbook_url.as_deref());
        let mut delivered = false;
        for n in self.dispatcher.notifiers.iter().filter(|n| which(n.as_ref())) {
            let (outcome, detail) = if !self.deadline.leaves_time_for_a_write(self.clock.now()) {
                (Delivery::Skipped, Some("deadline near".to_string()))
            } else {
                match n.send(m, self.deadline).await {
                    Ok(()) => {
                        delivered = true;
                        (Delivery::Sent, None)
                    }
                    Err(e) => {
                        let (channel, event) = (n.channel(), m.event.as_str());
                        tracing::error!(channel, event, alert_key = %m.alert_key, error = %e, "notification failed");
                        (Delivery::Failed, Some(e.0))
                    }
                }
            };
            self.records.push(NotificationRecord {
                event: Some(m.event),
                kind: Some(m.kind),
                alert_key: m.alert_key.clone(),
                channel: n.channel().to_string(),
                source_name: m.source_name.clone(),
                lock_id: m.lock_id.clone(),
                outcome,
                detail,
            });
        }
        delivered
    }
}

/// The open alert a stateless run resolves for a source's group.
fn group_resolve(kind: SourceKind, source: &str) -> OpenAlert {
    OpenAlert {
        key: group_key(kind, source),
        kind: AlertKind::StaleGroup,
        source_name: Some(source.to_string()),
        source_kind: Some(kind),
        lock_key: None,
        lock_id: None,
        severity: Severity::Info,
        opened_at: 0,
        last_notified_at: 0,
        summary: "stale locks deleted by tf-lock-reaper".to_string(),
        count: None,
    }
}

fn state_error_record(e: &StateError) -> NotificationRecord {
    tracing::error!(error = %e, "notification state table failed");
    NotificationRecord {
        event: None,
        kind: None,
        alert_key: String::new(),
        channel: "state".to_string(),
        source_name: None,
        lock_id: None,
        outcome: Delivery::Failed,
        detail: Some(e.to_string()),
    }
}
