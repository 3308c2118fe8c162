//! The notify step: turns a run's report into triggers, reminders, resolves
//! and deletion notices on every channel, once per alert when a
//! notify-once state is configured. A failing channel or state never stops
//! a run: every outcome is recorded in the report instead.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alert::conditions::{current_alerts, Alert};
use crate::domain::alert::messages::{deleted_lock_resolve, deleted_message, resolve_message};
use crate::domain::alert::AlertSettings;
use crate::domain::alert::{AlertKind, Message, OpenAlert, Severity};
use crate::domain::decision::ActionTaken;
use crate::domain::report::{Delivery, LockReport, NotificationRecord, RunReport, TtlCheck};
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
}

impl Dispatcher {
    /// No channels: notifications off.
    pub fn disabled() -> Self {
        Dispatcher {
            notifiers: Vec::new(),
            state: None,
            renotify_after: None,
            settings: AlertSettings { severity: Severity::Warning },
        }
    }

    pub fn is_active(&self) -> bool {
        !self.notifiers.is_empty()
    }

    /// Send what this run calls for; never fails, records every outcome.
    pub async fn dispatch(&self, report: &RunReport, clock: &dyn Clock, deadline: Deadline) -> Vec<NotificationRecord> {
        if !self.is_active() {
            return Vec::new();
        }
        let now = clock.now();
        let mut round = Round { dispatcher: self, clock, deadline, now, records: Vec::new() };
        let alerts = current_alerts(report, self.settings, now);
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
        round.records
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
    /// incident); resolve only what this run cleared.
    async fn stateless(&mut self, alerts: &[Alert], cleared: &[&LockReport]) {
        for a in alerts {
            self.send_all(&a.message).await;
        }
        for l in cleared {
            self.send_all(&deleted_lock_resolve(l, self.now)).await;
        }
    }

    /// With the notify-once state: open each new alert once, remind or
    /// escalate open ones when due, resolve those whose condition cleared.
    async fn with_state(&mut self, state: &dyn AlertState, open: &[OpenAlert], alerts: &[Alert], report: &RunReport) {
        let open_by_key: HashMap<&str, &OpenAlert> = open.iter().map(|o| (o.key.as_str(), o)).collect();
        for a in alerts {
            match open_by_key.get(a.key()) {
                Some(o) => self.remind(state, o, &a.message).await,
                None => self.open(state, &a.message).await,
            }
        }
        let current: HashSet<&str> = alerts.iter().map(|a| a.key()).collect();
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
            if o.kind == AlertKind::LockStale
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

    async fn forget(&mut self, state: &dyn AlertState, key: &str) {
        if let Err(e) = state.forget(key).await {
            self.records.push(state_error_record(&e));
        }
    }

    /// Send to every channel; `true` if at least one delivered it.
    async fn send_all(&mut self, m: &Message) -> bool {
        let mut delivered = false;
        for n in &self.dispatcher.notifiers {
            let (outcome, detail) = if !self.deadline.leaves_time_for_a_write(self.clock.now()) {
                (Delivery::Skipped, Some("deadline near".to_string()))
            } else {
                match n.send(m, self.deadline).await {
                    Ok(()) => {
                        delivered = true;
                        (Delivery::Sent, None)
                    }
                    Err(e) => {
                        tracing::error!(channel = n.channel(), event = m.event.as_str(), alert_key = %m.alert_key, error = %e, "notification failed");
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
