//! The staleness policy: which window applies to a lock, whether it is stale,
//! excluded, or old enough to delete. Pure functions over plain data.

use std::time::Duration;

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::age::format_age;
use crate::lock::{Lock, CLOCK_SKEW_ALLOWANCE};

/// A per-path stale window: the first override whose glob matches the
/// state path (the LockID; for lockfiles `<bucket>/<key>` without `.tflock`) wins.
#[derive(Debug, Clone)]
pub struct Override {
    pub pattern: String,
    matcher: GlobMatcher,
    pub window: Duration,
}

impl Override {
    pub fn new(pattern: &str, window: Duration) -> Result<Self, globset::Error> {
        Ok(Override { pattern: pattern.to_string(), matcher: Glob::new(pattern)?.compile_matcher(), window })
    }
}

/// Compiled exclusion globs.
#[derive(Debug, Clone)]
pub struct Exclusions {
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl Exclusions {
    pub fn new(patterns: &[String]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(Glob::new(p)?);
        }
        Ok(Exclusions { patterns: patterns.to_vec(), set: builder.build()? })
    }

    pub fn none() -> Self {
        Exclusions { patterns: Vec::new(), set: GlobSet::empty() }
    }

    pub fn is_excluded(&self, lock_key: &str) -> bool {
        self.set.is_match(lock_key)
    }
}

/// Thresholds and exclusions. Config guarantees `delete_after` is at least
/// every stale window.
#[derive(Debug, Clone)]
pub struct Policy {
    pub stale_after: Duration,
    pub overrides: Vec<Override>,
    pub exclusions: Exclusions,
    pub delete_after: Option<Duration>,
    /// How long a heartbeating lock's holder may stay silent.
    pub heartbeat: HeartbeatTimeouts,
}

/// How long a heartbeating holder may stay silent before it counts as dead:
/// the contract its lock names (`exec` writes it beside each heartbeat),
/// held within the platform team's bounds, else `HEARTBEAT_TIMEOUT`. The
/// reaper and a blocked `exec` judge by the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatTimeouts {
    /// For a lock that names no contract (`HEARTBEAT_TIMEOUT`).
    pub default: Duration,
    /// A contract shorter than this counts as this (`HEARTBEAT_TIMEOUT_MIN`).
    pub min: Duration,
    /// A contract longer than this counts as this (`HEARTBEAT_TIMEOUT_MAX`).
    pub max: Duration,
}

impl HeartbeatTimeouts {
    /// The silence allowed to a lock naming `contract` (seconds), if any.
    pub fn for_contract(&self, contract: Option<u64>) -> Duration {
        match contract {
            Some(seconds) => Duration::from_secs(seconds).clamp(self.min, self.max.max(self.min)),
            None => self.default,
        }
    }
}

/// Whether the holder of a lock is known to be alive: a fact for locks
/// `tf-lock-reaper exec` heartbeats, unknown (judged by age) for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "liveness", rename_all = "kebab-case")]
pub enum Liveness {
    /// Nobody heartbeats this lock: its age decides.
    NoHeartbeat,
    /// The last heartbeat is at most the allowed silence old.
    Alive { silent_seconds: u64, timeout_seconds: u64 },
    /// The holder went silent longer than the allowed silence ago.
    Dead { silent_seconds: u64, timeout_seconds: u64 },
    /// A heartbeat further in the future than clock skew explains, on AWS's
    /// clock: a broken clock or a forged value. It must not keep a lock
    /// alive (the age decides whether it is stale and alerted on), and it
    /// is no silence either: such a lock is never deleted automatically.
    FutureHeartbeat,
}

impl Liveness {
    pub fn of(heartbeat: Option<i64>, now: DateTime<Utc>, timeout: Duration) -> Liveness {
        let Some(beat) = heartbeat else { return Liveness::NoHeartbeat };
        let now_s = now.timestamp();
        if beat > now_s + CLOCK_SKEW_ALLOWANCE.num_seconds() {
            return Liveness::FutureHeartbeat;
        }
        let silent_seconds = now_s.saturating_sub(beat).max(0) as u64;
        let timeout_seconds = timeout.as_secs();
        if silent_seconds <= timeout_seconds {
            Liveness::Alive { silent_seconds, timeout_seconds }
        } else {
            Liveness::Dead { silent_seconds, timeout_seconds }
        }
    }

    /// `alive, heartbeat 12s ago (contract 1m30s)` / `dead, silent 14m
    /// (contract 10m)` / `no heartbeat`.
    pub fn describe(self) -> String {
        match self {
            Liveness::NoHeartbeat => "no heartbeat".to_string(),
            Liveness::Alive { silent_seconds, timeout_seconds } => {
                format!(
                    "alive, heartbeat {} ago (contract {})",
                    format_age(silent_seconds),
                    format_age(timeout_seconds)
                )
            }
            Liveness::Dead { silent_seconds, timeout_seconds } => {
                format!("dead, silent {} (contract {})", format_age(silent_seconds), format_age(timeout_seconds))
            }
            Liveness::FutureHeartbeat => "heartbeat in the future (never deleted automatically)".to_string(),
        }
    }

    pub fn has_heartbeat(self) -> bool {
        !matches!(self, Liveness::NoHeartbeat)
    }

    pub fn is_dead(self) -> bool {
        matches!(self, Liveness::Dead { .. })
    }
}

/// What the policy says about one lock at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Age in whole seconds on AWS's clock, from the later of `Created` and
    /// (lockfiles) S3's `LastModified`; a lock "created" in the future is 0.
    pub age_seconds: u64,
    /// The stale window that applies.
    pub window_seconds: u64,
    /// `STALE_AFTER` or the override pattern that set the window.
    pub window_source: String,
    pub stale: bool,
    pub excluded: bool,
    /// Old enough for `ACTION=delete` (never true without `DELETE_AFTER`).
    pub delete_due: bool,
    #[serde(flatten)]
    pub liveness: Liveness,
    /// What a wrong clock did to this lock's age, when it did anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_note: Option<ClockNote>,
}

/// A lock whose timestamps disagree with AWS's clock by more than
/// [`CLOCK_SKEW_ALLOWANCE`]: said in the report and `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "clock", rename_all = "kebab-case")]
pub enum ClockNote {
    /// `Info.Created` lies this far in the future on AWS's clock: the
    /// writer's clock is fast, or the item is forged. Its age counts as 0.
    CreatedInFuture { ahead_seconds: u64 },
    /// A lockfile whose `Info.Created` is this much older than S3's
    /// `LastModified`: the writer's clock is behind, and the age counts
    /// from `LastModified`.
    AgedFromLastModified { created_earlier_seconds: u64 },
}

impl ClockNote {
    pub fn describe(self) -> String {
        match self {
            ClockNote::CreatedInFuture { ahead_seconds } => format!(
                "Info.Created is {} in the future on AWS's clock (the writer's clock is fast, or the item is forged): \
its age counts as 0",
                format_age(ahead_seconds)
            ),
            ClockNote::AgedFromLastModified { created_earlier_seconds } => format!(
                "age counted from S3 LastModified: Info.Created is {} earlier (the writer's clock is behind)",
                format_age(created_earlier_seconds)
            ),
        }
    }
}

/// Where a lock's age counts from, on AWS's clock: the later of `Created`
/// and S3's `LastModified` (a lock is never older than AWS says it was
/// stored), and what a disagreement beyond the allowance says.
fn age_basis(lock: &Lock, now: DateTime<Utc>) -> (DateTime<Utc>, Option<ClockNote>) {
    let allowance = CLOCK_SKEW_ALLOWANCE;
    let from = lock.stored_at.map_or(lock.created, |stored| stored.max(lock.created));
    if from > now + allowance {
        return (from, Some(ClockNote::CreatedInFuture { ahead_seconds: age_seconds(now, from) }));
    }
    let note = lock
        .stored_at
        .filter(|stored| *stored > lock.created + allowance)
        .map(|stored| ClockNote::AgedFromLastModified { created_earlier_seconds: age_seconds(lock.created, stored) });
    (from, note)
}

impl Policy {
    /// The window that applies to a lock key and where it came from.
    pub fn window_for(&self, lock_key: &str) -> (Duration, &str) {
        self.overrides
            .iter()
            .find(|o| o.matcher.is_match(lock_key))
            .map(|o| (o.window, o.pattern.as_str()))
            .unwrap_or((self.stale_after, "STALE_AFTER"))
    }

    /// Every window any lock can get: the default and each override.
    pub fn all_windows(&self) -> impl Iterator<Item = Duration> + '_ {
        std::iter::once(self.stale_after).chain(self.overrides.iter().map(|o| o.window))
    }

    /// A heartbeat, when there is one, decides: an alive holder's lock is
    /// never stale however old, a dead holder's lock is stale (and due for
    /// `ACTION=delete`) at once. Without one, the lock's age decides. A
    /// heartbeat in the future is neither life nor silence: the age decides
    /// staleness, and the lock is never due for deletion. `now` is AWS's
    /// clock (`Clock::aws_now`): every timestamp here was written elsewhere.
    pub fn classify(&self, lock: &Lock, now: DateTime<Utc>) -> Verdict {
        let (age_from, clock_note) = age_basis(lock, now);
        let age_seconds = age_seconds(age_from, now);
        let (window, source) = self.window_for(&lock.state_path);
        let liveness = Liveness::of(lock.heartbeat, now, self.heartbeat.for_contract(lock.heartbeat_timeout));
        let (stale, delete_due) = match liveness {
            Liveness::Alive { .. } => (false, false),
            Liveness::Dead { .. } => (true, self.delete_after.is_some()),
            Liveness::FutureHeartbeat => (age_seconds >= window.as_secs(), false),
            Liveness::NoHeartbeat => {
                let stale = age_seconds >= window.as_secs();
                (stale, stale && self.delete_after.is_some_and(|d| age_seconds >= d.as_secs().max(window.as_secs())))
            }
        };
        Verdict {
            age_seconds,
            window_seconds: window.as_secs(),
            window_source: source.to_string(),
            stale,
            excluded: self.exclusions.is_excluded(&lock.state_path),
            delete_due,
            liveness,
            clock_note,
        }
    }
}

/// Whole seconds from `created` to `now`, never negative.
pub fn age_seconds(created: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    (now - created).num_seconds().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lock(key: &str, created: DateTime<Utc>) -> Lock {
        Lock {
            kind: crate::lock::SourceKind::Table,
            source: crate::source::SourceAddress::own(crate::lock::SourceKind::Table, "t"),
            lock_key: key.into(),
            state_path: key.into(),
            etag: None,
            id: "id".into(),
            operation: "OperationTypeApply".into(),
            info_text: String::new(),
            who: "w".into(),
            version: "1.15.5".into(),
            created,
            stored_at: None,
            path: key.into(),
            workspace: None,
            raw_info: "{}".into(),
            expires_at: None,
            heartbeat: None,
            heartbeat_timeout: None,
            missing_fields: Vec::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    fn policy() -> Policy {
        Policy {
            stale_after: hours(2),
            overrides: vec![
                Override::new("tfstate/prod/*", hours(6)).unwrap(),
                Override::new("*/sandbox/*", Duration::from_secs(30 * 60)).unwrap(),
            ],
            exclusions: Exclusions::new(&["tfstate/pinned/*".to_string()]).unwrap(),
            delete_after: Some(hours(8)),
            heartbeat: HeartbeatTimeouts {
                default: Duration::from_secs(600),
                min: Duration::from_secs(60),
                max: Duration::from_secs(3600),
            },
        }
    }

    fn beating(key: &str, created: DateTime<Utc>, heartbeat: DateTime<Utc>) -> Lock {
        Lock { heartbeat: Some(heartbeat.timestamp()), ..lock(key, created) }
    }

    #[test]
    fn default_window_applies_and_boundary_is_stale() {
        let p = policy();
        let v = p.classify(&lock("tfstate/app/terraform.tfstate", now() - hours(2)), now());
        assert!(v.stale);
        assert_eq!(v.window_source, "STALE_AFTER");
        let v = p.classify(&lock("tfstate/app/terraform.tfstate", now() - hours(2) + Duration::from_secs(1)), now());
        assert!(!v.stale, "one second younger than the window is not stale");
    }

    #[test]
    fn first_matching_override_wins() {
        let p = policy();
        let prod = p.classify(&lock("tfstate/prod/net/terraform.tfstate", now() - hours(5)), now());
        assert!(!prod.stale, "prod gets 6h");
        assert_eq!(prod.window_source, "tfstate/prod/*");
        let sandbox = p.classify(&lock("tfstate/sandbox/x.tfstate", now() - Duration::from_secs(31 * 60)), now());
        assert!(sandbox.stale);
        assert_eq!(sandbox.window_seconds, 1800);
        // Both patterns match: the first listed wins.
        let both = p.classify(&lock("tfstate/prod/sandbox/x", now() - hours(1)), now());
        assert_eq!(both.window_source, "tfstate/prod/*");
        assert!(!both.stale);
    }

    #[test]
    fn exclusions_are_reported_not_hidden() {
        let v = policy().classify(&lock("tfstate/pinned/terraform.tfstate", now() - hours(100)), now());
        assert!(v.excluded);
        assert!(v.stale, "an excluded lock is still reported as stale");
    }

    #[test]
    fn delete_needs_delete_after_and_the_window() {
        let p = policy();
        assert!(!p.classify(&lock("tfstate/app/t", now() - hours(7)), now()).delete_due);
        assert!(p.classify(&lock("tfstate/app/t", now() - hours(8)), now()).delete_due);
        let no_delete = Policy { delete_after: None, ..policy() };
        assert!(!no_delete.classify(&lock("tfstate/app/t", now() - hours(100)), now()).delete_due);
        // Even if DELETE_AFTER were shorter than a window, the window still guards.
        let short = Policy { delete_after: Some(hours(1)), ..policy() };
        assert!(!short.classify(&lock("tfstate/prod/t", now() - hours(5)), now()).delete_due);
    }

    #[test]
    fn future_created_within_skew_is_age_zero_and_fresh() {
        let v = policy().classify(&lock("tfstate/app/t", now() + Duration::from_secs(60)), now());
        assert_eq!(v.age_seconds, 0);
        assert!(!v.stale);
    }

    #[test]
    fn an_alive_heartbeat_keeps_any_lock_fresh() {
        let p = policy();
        let ancient = now() - hours(1000);
        let v = p.classify(&beating("tfstate/app/t", ancient, now() - Duration::from_secs(600)), now());
        assert_eq!(
            v.liveness,
            Liveness::Alive { silent_seconds: 600, timeout_seconds: 600 },
            "the timeout itself is still alive"
        );
        assert!(!v.stale && !v.delete_due, "however old, an alive lock is never stale: {v:?}");
        assert_eq!(v.liveness.describe(), "alive, heartbeat 10m00s ago (contract 10m00s)");
    }

    #[test]
    fn a_silent_heartbeat_is_stale_and_due_at_once() {
        let p = policy();
        let young = now() - Duration::from_secs(900);
        let v = p.classify(&beating("tfstate/app/t", young, now() - Duration::from_secs(601)), now());
        assert_eq!(v.liveness, Liveness::Dead { silent_seconds: 601, timeout_seconds: 600 });
        assert!(v.stale && v.delete_due, "silence decides, not age (15 minutes < the 2h window): {v:?}");
        let no_delete = Policy { delete_after: None, ..policy() };
        assert!(!no_delete.classify(&beating("tfstate/app/t", young, young), now()).delete_due);
        assert_eq!(v.liveness.describe(), "dead, silent 10m01s (contract 10m00s)");
    }

    /// A lock's own contract decides its silence, held within the platform
    /// team's bounds; a lock naming none keeps `HEARTBEAT_TIMEOUT`.
    #[test]
    fn each_lock_is_judged_by_its_own_contract_within_the_bounds() {
        let p = policy();
        let created = now() - Duration::from_secs(300);
        let silent = |s: u64, contract: Option<u64>| Lock {
            heartbeat_timeout: contract,
            ..beating("tfstate/app/t", created, now() - Duration::from_secs(s))
        };
        // The CI contract: dead after 90s of silence, not after 10 minutes.
        let v = p.classify(&silent(91, Some(90)), now());
        assert_eq!(v.liveness, Liveness::Dead { silent_seconds: 91, timeout_seconds: 90 });
        assert!(v.stale && v.delete_due, "{v:?}");
        assert!(!p.classify(&silent(90, Some(90)), now()).stale, "the contract itself is still alive");
        // A 5s contract is held to HEARTBEAT_TIMEOUT_MIN (60s): a network blip is no death.
        assert_eq!(
            p.classify(&silent(30, Some(5)), now()).liveness,
            Liveness::Alive { silent_seconds: 30, timeout_seconds: 60 }
        );
        assert!(p.classify(&silent(61, Some(5)), now()).liveness.is_dead());
        // A week-long contract is held to HEARTBEAT_TIMEOUT_MAX (1h).
        assert_eq!(
            p.classify(&silent(3601, Some(7 * 86400)), now()).liveness,
            Liveness::Dead { silent_seconds: 3601, timeout_seconds: 3600 }
        );
        // No contract: HEARTBEAT_TIMEOUT (10m), not clamped.
        assert!(!p.classify(&silent(599, None), now()).stale);
        let short_default =
            Policy { heartbeat: HeartbeatTimeouts { default: Duration::from_secs(5), ..p.heartbeat }, ..policy() };
        assert!(short_default.classify(&silent(6, None), now()).liveness.is_dead(), "the default is not clamped");
        assert_eq!(p.heartbeat.for_contract(Some(90)), Duration::from_secs(90));
    }

    #[test]
    fn locks_without_or_with_a_forged_heartbeat_are_judged_by_age() {
        let p = policy();
        let young = now() - Duration::from_secs(60);
        let v = p.classify(&lock("tfstate/app/t", young), now());
        assert_eq!((v.liveness, v.stale), (Liveness::NoHeartbeat, false));
        let far_future = now() + hours(24 * 365);
        let old = now() - hours(3);
        let v = p.classify(&beating("tfstate/app/t", old, far_future), now());
        assert_eq!(v.liveness, Liveness::FutureHeartbeat);
        assert!(v.stale, "a heartbeat from the future cannot keep a 3h lock alive");
        let ancient = beating("tfstate/app/t", now() - hours(100), now() + Duration::from_secs(301));
        let v = p.classify(&ancient, now());
        assert_eq!(v.liveness, Liveness::FutureHeartbeat);
        assert!(v.stale && !v.delete_due, "a future heartbeat is no silence: never deleted automatically: {v:?}");
        // Within the allowance a heartbeat ahead of AWS's clock is simply alive.
        let v = p.classify(&beating("tfstate/app/t", ancient.created, now() + Duration::from_secs(300)), now());
        assert_eq!(v.liveness, Liveness::Alive { silent_seconds: 0, timeout_seconds: 600 });
    }

    #[test]
    fn a_created_far_in_the_future_is_flagged_and_never_aged() {
        let p = policy();
        let v = p.classify(&lock("tfstate/app/t", now() + Duration::from_secs(15 * 60)), now());
        assert_eq!(v.clock_note, Some(ClockNote::CreatedInFuture { ahead_seconds: 900 }));
        assert!(!v.stale && !v.delete_due && v.age_seconds == 0, "{v:?}");
        assert!(v.clock_note.unwrap().describe().starts_with("Info.Created is 15m00s in the future on AWS's clock"));
        // Its heartbeat still decides: a dead holder is reaped whatever its clock said at lock time.
        let dead = beating("tfstate/app/t", now() + hours(1), now() - Duration::from_secs(601));
        let v = p.classify(&dead, now());
        assert!(v.stale && v.delete_due, "{v:?}");
        // Within the allowance nothing is said.
        assert_eq!(p.classify(&lock("tfstate/app/t", now() + Duration::from_secs(299)), now()).clock_note, None);
    }

    #[test]
    fn a_lockfile_is_never_older_than_s3_says_it_was_stored() {
        let p = policy();
        // Terraform on a host 3h behind: Created 3h old, stored seconds ago.
        let behind = Lock { stored_at: Some(now() - Duration::from_secs(5)), ..lock("b/k", now() - hours(3)) };
        let v = p.classify(&behind, now());
        assert_eq!(v.age_seconds, 5);
        assert!(!v.stale && !v.delete_due, "{v:?}");
        assert_eq!(v.clock_note, Some(ClockNote::AgedFromLastModified { created_earlier_seconds: 3 * 3600 - 5 }));
        // Really old: both say so, and it is reaped; nothing to note when they agree.
        let old = Lock { stored_at: Some(now() - hours(9)), ..lock("b/k", now() - hours(9) - Duration::from_secs(1)) };
        let v = p.classify(&old, now());
        assert!(v.stale && v.delete_due && v.clock_note.is_none(), "{v:?}");
        // A Created later than LastModified (a writer ahead, within reason) is the younger: it counts.
        let ahead = Lock { stored_at: Some(now() - hours(3)), ..lock("b/k", now() - hours(1)) };
        assert_eq!(p.classify(&ahead, now()).age_seconds, 3600);
    }
}
