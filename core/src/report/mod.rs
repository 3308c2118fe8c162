//! The run report: one plain serializable struct per run, returned by the
//! Lambda, printed by the CLI as a table or JSON, and the source of metrics
//! and alerts. It carries the notifications the run sent.

pub mod render;
pub mod summary;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alert::{AlertKind, Event};
use crate::decision::{Action, ActionTaken};
use crate::failure::ErrorKind;
use crate::lock::{Lock, SourceKind, Unreadable};
use crate::policy::Verdict;
use crate::source::SourceAddress;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub action: Action,
    pub dry_run: bool,
    /// No source failed to scan and no write failed.
    pub ok: bool,
    /// The deadline stopped some writes from starting.
    pub partial: bool,
    pub breaker_tripped: bool,
    pub max_deletes_per_run: usize,
    /// Deletes the policy asked for, before breaker and dry run.
    pub planned_deletes: usize,
    /// Every lock table, then every lock bucket, in configuration order.
    pub sources: Vec<SourceReport>,
    /// Every notification attempted, with its outcome.
    pub notifications: Vec<NotificationRecord>,
    pub alerts_sent: usize,
    pub alert_errors: usize,
    /// How far AWS's clock is ahead of this machine's, as measured from the
    /// run's responses: ages and heartbeats were judged on AWS's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset: Option<crate::clock::ClockOffset>,
    /// What discovery across an organisation found, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::discovery::DiscoverySummary>,
}

/// One lock table or lock bucket.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// Where the source is, as configured; its kind and label are
    /// serialized as `kind` and `name`.
    #[serde(skip)]
    pub address: SourceAddress,
    pub kind: SourceKind,
    /// Table name, or `bucket` / `bucket/prefix` as configured.
    pub name: String,
    /// Set when the source could not be read (one readable line); the
    /// counts are then zero.
    pub scan_error: Option<String>,
    /// The kind of `scan_error`, stable for scripts.
    pub error_kind: Option<ErrorKind>,
    pub counts: Counts,
    pub oldest_lock_age_seconds: Option<u64>,
    /// Every lock held, stale or not; with [`Retention::WhatMatters`],
    /// fresh locks are only counted (in `not_kept`).
    pub locks: Vec<LockReport>,
    pub unreadable: Vec<Unreadable>,
    /// What was counted but not kept (see [`Retention`]); never serialized:
    /// the counts include it.
    #[serde(skip)]
    pub not_kept: NotKept,
    /// With `ACTION=ttl`: whether TTL is enabled on the table's TTL attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<TtlCheck>,
    /// The grouped alert raised for this source's stale locks this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grouped_alert: Option<GroupedAlert>,
}

/// A grouped alert (`ALERT_GROUP_OVER`) and how many stale locks it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupedAlert {
    pub alert_key: String,
    pub covered: usize,
}

/// The TTL precondition of a table (`ACTION=ttl` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TtlCheck {
    Enabled,
    /// TTL is not enabled on the attribute the reaper writes: its writes do nothing.
    Disabled {
        detail: String,
        attribute: String,
    },
    /// `DescribeTimeToLive` failed: neither raise nor resolve anything.
    Unknown {
        error: String,
    },
}

/// How much of a source a run keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Every lock and unreadable item: the CLI's full report.
    Everything,
    /// Only what the run can act or alert on, so memory follows the locks
    /// that matter, not the table (the Lambda, whose result is a summary):
    /// fresh locks are counted, not kept, unless a double lock could pair
    /// them (tables and buckets both configured: a fresh half keeps its
    /// double lock fresh), and unreadable items beyond
    /// [`UNREADABLE_KEPT`] are counted.
    WhatMatters { pairing_possible: bool },
}

/// Unreadable items kept per source with [`Retention::WhatMatters`]: more
/// than any alert or summary lists.
pub const UNREADABLE_KEPT: usize = 100;

/// Locks and unreadable items counted but not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotKept {
    pub fresh_locks: usize,
    /// How many of those carry a heartbeat (all alive: a dead one is stale).
    pub heartbeat_locks: usize,
    pub oldest_fresh_age_seconds: Option<u64>,
    pub unreadable: usize,
}

impl Retention {
    /// Whether a lock with this verdict is kept.
    pub fn keeps_lock(self, verdict: &Verdict) -> bool {
        match self {
            Retention::Everything | Retention::WhatMatters { pairing_possible: true } => true,
            Retention::WhatMatters { pairing_possible: false } => verdict.stale,
        }
    }

    /// Whether one more unreadable item is kept, `already` being kept.
    pub fn keeps_unreadable(self, already: usize) -> bool {
        matches!(self, Retention::Everything) || already < UNREADABLE_KEPT
    }
}

/// Per-source counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub locks_held: usize,
    pub stale: usize,
    pub excluded: usize,
    pub unreadable: usize,
    pub digests: usize,
    pub deleted: usize,
    pub changed: usize,
    /// Found gone by their write (released meanwhile, or a lost response).
    pub gone: usize,
    pub ttl_backfilled: usize,
    pub errors: usize,
    /// Locks `exec` heartbeats, alive or dead.
    pub heartbeat_locks: usize,
    /// Locks whose holder stopped heartbeating longer ago than their liveness contract.
    pub dead_heartbeats: usize,
}

impl Counts {
    /// Add `other`'s counts to these (totals over sources).
    pub fn add(&mut self, other: &Counts) {
        // Destructured, so a new count cannot be left out of the totals.
        let Counts {
            locks_held,
            stale,
            excluded,
            unreadable,
            digests,
            deleted,
            changed,
            gone,
            ttl_backfilled,
            errors,
            heartbeat_locks,
            dead_heartbeats,
        } = other;
        self.locks_held += locks_held;
        self.stale += stale;
        self.excluded += excluded;
        self.unreadable += unreadable;
        self.digests += digests;
        self.deleted += deleted;
        self.changed += changed;
        self.gone += gone;
        self.ttl_backfilled += ttl_backfilled;
        self.errors += errors;
        self.heartbeat_locks += heartbeat_locks;
        self.dead_heartbeats += dead_heartbeats;
    }
}

/// One lock, what the policy said, and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    #[serde(flatten)]
    pub lock: Lock,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub action: ActionTaken,
    /// The write withheld or the error met, when there is one.
    pub detail: Option<String>,
    /// The kind of the error met (`action: error` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Double locking: the other half of this lock (same ID and state path,
    /// in a table for a lockfile, in a bucket for a table item).
    pub paired_with: Option<HalfRef>,
    /// The key of the grouped alert that covers this stale lock, when
    /// `ALERT_GROUP_OVER` grouped its source's alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grouped_alert: Option<String>,
}

impl LockReport {
    /// The lockfile half of a double lock: its table half acts, pages and
    /// is told about for both.
    pub fn is_lockfile_half(&self) -> bool {
        self.lock.kind == SourceKind::Bucket && self.paired_with.is_some()
    }
}

/// Where the other half of a double lock is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HalfRef {
    pub kind: SourceKind,
    pub source: SourceAddress,
    pub lock_key: String,
    /// That half's exact `Info` (or lockfile body) and ETag: the conditions
    /// of the commands that release it.
    #[serde(skip)]
    pub raw_info: String,
    #[serde(skip)]
    pub etag: Option<String>,
}

impl HalfRef {
    /// A reference to `lock`, the other half of a double lock.
    pub fn of(lock: &Lock) -> HalfRef {
        HalfRef {
            kind: lock.kind,
            source: lock.source.clone(),
            lock_key: lock.lock_key.clone(),
            raw_info: lock.raw_info.clone(),
            etag: lock.etag.clone(),
        }
    }
}

impl SourceReport {
    pub fn new(address: &SourceAddress) -> Self {
        SourceReport {
            address: address.clone(),
            kind: address.kind,
            name: address.label(),
            scan_error: None,
            error_kind: None,
            counts: Counts::default(),
            oldest_lock_age_seconds: None,
            locks: Vec::new(),
            unreadable: Vec::new(),
            not_kept: NotKept::default(),
            ttl: None,
            grouped_alert: None,
        }
    }

    /// A source that could not be read: the error, and nothing else.
    pub fn failed(address: &SourceAddress, error: String, error_kind: ErrorKind) -> Self {
        SourceReport { scan_error: Some(error), error_kind: Some(error_kind), ..SourceReport::new(address) }
    }

    /// Mark the stale locks a grouped alert covers (by their lock alert keys).
    pub fn mark_grouped(&mut self, alert_key: &str, covered: &std::collections::HashSet<&str>) {
        let mut n = 0;
        for l in &mut self.locks {
            let key = crate::alert::keys::lock_alert_key(&l.lock.source, &l.lock.lock_key, &l.lock.id);
            if covered.contains(key.as_str()) {
                l.grouped_alert = Some(alert_key.to_string());
                n += 1;
            }
        }
        self.grouped_alert = Some(GroupedAlert { alert_key: alert_key.to_string(), covered: n });
    }

    /// Every unreadable item read, kept or only counted.
    pub fn unreadable_total(&self) -> usize {
        self.unreadable.len() + self.not_kept.unreadable
    }

    /// `, N digest(s)` for tables; buckets have no digest items.
    pub fn digest_note(&self) -> String {
        match self.kind {
            SourceKind::Table => format!(", {} digest(s)", self.counts.digests),
            SourceKind::Bucket => String::new(),
        }
    }

    /// Recompute counts from the items (after actions were recorded).
    pub fn recount(&mut self) {
        let count = |a: ActionTaken| self.locks.iter().filter(|l| l.action == a).count();
        let counts = Counts {
            locks_held: self.locks.len() + self.not_kept.fresh_locks,
            stale: self.locks.iter().filter(|l| l.verdict.stale).count(),
            excluded: count(ActionTaken::Excluded),
            unreadable: self.unreadable_total(),
            digests: self.counts.digests,
            deleted: count(ActionTaken::Deleted),
            changed: count(ActionTaken::Changed),
            gone: count(ActionTaken::Gone),
            ttl_backfilled: count(ActionTaken::Ttl),
            errors: count(ActionTaken::Error),
            heartbeat_locks: self.locks.iter().filter(|l| l.verdict.liveness.has_heartbeat()).count()
                + self.not_kept.heartbeat_locks,
            dead_heartbeats: self.locks.iter().filter(|l| l.verdict.liveness.is_dead()).count(),
        };
        self.oldest_lock_age_seconds =
            self.locks.iter().map(|l| l.verdict.age_seconds).chain(self.not_kept.oldest_fresh_age_seconds).max();
        self.counts = counts;
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Sent,
    Failed,
    /// Not attempted: the deadline was near.
    Skipped,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::Skipped => "skipped",
        }
    }
}

/// One delivery attempt, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationRecord {
    /// `None` for state-table errors.
    pub event: Option<Event>,
    pub kind: Option<AlertKind>,
    pub alert_key: String,
    /// `sns`, `pagerduty`, or `state` for state-table errors.
    pub channel: String,
    /// The table or bucket the alert is about (`table` in the JSON report).
    #[serde(rename = "table")]
    pub source_name: Option<String>,
    pub lock_id: Option<String>,
    pub outcome: Delivery,
    pub detail: Option<String>,
}
