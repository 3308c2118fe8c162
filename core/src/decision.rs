//! The decision: given each lock's verdict and the configured action, which
//! writes to make, which to hold back (dry run, breaker) and why. Pure code.

use serde::Serialize;

use crate::policy::Verdict;

/// What to do with stale locks (`ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Report,
    Ttl,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Report, Action::Ttl, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Ttl => "ttl",
            Action::Delete => "delete",
        }
    }
}

/// What happened to a lock in this run, as the report and scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionTaken {
    /// Nothing to do (fresh, `ACTION=report`, or not yet due). Shown as `none`.
    #[serde(rename = "none")]
    NoAction,
    Deleted,
    Ttl,
    /// The lock changed between scan and write, so the write did not happen.
    Changed,
    /// The lock was gone when the write's condition was checked: released
    /// by its holder, or removed by an earlier attempt of this delete whose
    /// response was lost. Either way it no longer blocks anyone.
    Gone,
    DryRun,
    /// Stale but matched by `EXCLUDE`.
    Excluded,
    /// Held back because the run would have deleted too many locks.
    Breaker,
    /// The write failed.
    Error,
    /// Not started: the invocation deadline was too close.
    Deadline,
}

impl ActionTaken {
    /// The lock no longer blocks anyone: this run deleted it, or found it
    /// gone. No stale-lock alert holds for it.
    pub fn cleared(self) -> bool {
        matches!(self, ActionTaken::Deleted | ActionTaken::Gone)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionTaken::NoAction => "none",
            ActionTaken::Deleted => "deleted",
            ActionTaken::Ttl => "ttl",
            ActionTaken::Changed => "changed",
            ActionTaken::Gone => "gone",
            ActionTaken::DryRun => "dry-run",
            ActionTaken::Excluded => "excluded",
            ActionTaken::Breaker => "breaker",
            ActionTaken::Error => "error",
            ActionTaken::Deadline => "deadline",
        }
    }
}

/// A conditional write to one lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "write", rename_all = "kebab-case")]
pub enum Write {
    /// Delete the lock if it is still exactly what was read.
    Delete,
    /// Set the TTL attribute (epoch seconds) if the lock is unchanged and has none.
    SetTtl { expires_at: i64 },
}

impl Write {
    pub fn describe(self) -> String {
        match self {
            Write::Delete => "delete".to_string(),
            Write::SetTtl { expires_at } => format!("set TTL to {expires_at}"),
        }
    }
}

/// The decision for one lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No write; the outcome is `NoAction` or `Excluded`.
    Leave(ActionTaken),
    /// Make this write now.
    Execute(Write),
    /// Would write, but held back; the outcome is `DryRun` or `Breaker`.
    Withhold(Write, ActionTaken),
}

/// One lock as the decision sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub verdict: &'a Verdict,
    /// The lock already carries the TTL attribute.
    pub has_ttl: bool,
    /// A TTL can be set (table items); S3 lockfiles cannot take one.
    pub ttl_supported: bool,
    /// `Created` as epoch seconds.
    pub created_epoch: i64,
}

/// Settings that shape the decision.
#[derive(Debug, Clone, Copy)]
pub struct DecideSettings {
    pub action: Action,
    pub dry_run: bool,
    pub ttl_after_secs: Option<u64>,
    pub max_deletes_per_run: usize,
    /// `RELEASE_DEAD_HEARTBEATS`: a lock whose holder heartbeated and then
    /// went silent past its contract is deleted in every `ACTION` (the
    /// holder opted in by heartbeating); age alone never deletes outside
    /// `ACTION=delete`.
    pub release_dead_heartbeats: bool,
}

/// Decisions for a whole run, in candidate order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    /// Deletes the policy asked for, before breaker and dry run.
    pub planned_deletes: usize,
    pub breaker_tripped: bool,
}

/// Decide every lock of a run at once, so the breaker sees the total.
pub fn decide(candidates: &[Candidate<'_>], s: DecideSettings) -> Plan {
    let wanted: Vec<Option<Write>> = candidates.iter().map(|c| wanted_write(c, s)).collect();
    let planned_deletes = wanted.iter().filter(|w| **w == Some(Write::Delete)).count();
    let breaker_tripped = planned_deletes > s.max_deletes_per_run;
    let decisions = candidates
        .iter()
        .zip(wanted)
        .map(|(c, w)| match w {
            None if c.verdict.stale && c.verdict.excluded => Decision::Leave(ActionTaken::Excluded),
            None => Decision::Leave(ActionTaken::NoAction),
            Some(Write::Delete) if breaker_tripped => Decision::Withhold(Write::Delete, ActionTaken::Breaker),
            Some(w) if s.dry_run => Decision::Withhold(w, ActionTaken::DryRun),
            Some(w) => Decision::Execute(w),
        })
        .collect();
    Plan { decisions, planned_deletes, breaker_tripped }
}

/// The write the policy asks for, before breaker and dry run. Only stale,
/// non-excluded locks are ever written to.
fn wanted_write(c: &Candidate<'_>, s: DecideSettings) -> Option<Write> {
    if !c.verdict.stale || c.verdict.excluded {
        return None;
    }
    if s.release_dead_heartbeats && c.verdict.liveness.is_dead() {
        return Some(Write::Delete);
    }
    match s.action {
        Action::Report => None,
        Action::Delete => c.verdict.delete_due.then_some(Write::Delete),
        Action::Ttl => {
            // A TTL deletes the lock later: a heartbeat from the future is
            // no silence, so it gets none (as it gets no delete).
            if !c.ttl_supported || c.verdict.liveness == crate::policy::Liveness::FutureHeartbeat {
                return None;
            }
            let ttl = s.ttl_after_secs?;
            (!c.has_ttl).then(|| Write::SetTtl {
                expires_at: c.created_epoch.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(stale: bool, excluded: bool, delete_due: bool) -> Verdict {
        Verdict {
            age_seconds: 0,
            window_seconds: 7200,
            window_source: "STALE_AFTER".into(),
            stale,
            excluded,
            delete_due,
            liveness: crate::policy::Liveness::NoHeartbeat,
            clock_note: None,
        }
    }

    fn settings(action: Action) -> DecideSettings {
        DecideSettings {
            action,
            dry_run: false,
            ttl_after_secs: Some(86400),
            max_deletes_per_run: 5,
            release_dead_heartbeats: false,
        }
    }

    fn dead() -> Verdict {
        let liveness = crate::policy::Liveness::Dead { silent_seconds: 91, timeout_seconds: 90 };
        // As the policy judges it: stale at once, due only where DELETE_AFTER is set.
        Verdict { liveness, ..verdict(true, false, false) }
    }

    /// `RELEASE_DEAD_HEARTBEATS`: a dead holder's lock is deleted in every
    /// mode; dry run, exclusions and the breaker still hold it back.
    #[test]
    fn dead_heartbeats_are_released_in_every_mode_when_asked() {
        for action in [Action::Report, Action::Ttl, Action::Delete] {
            let on = DecideSettings { release_dead_heartbeats: true, ..settings(action) };
            let plan = run(&[dead(), verdict(true, false, false)], false, on);
            assert_eq!(plan.decisions[0], Decision::Execute(Write::Delete), "{action:?}");
            assert_ne!(plan.decisions[1], Decision::Execute(Write::Delete), "age alone never deletes: {action:?}");
            let dry = run(&[dead()], false, DecideSettings { dry_run: true, ..on });
            assert_eq!(dry.decisions, vec![Decision::Withhold(Write::Delete, ActionTaken::DryRun)]);
            let excluded = Verdict { excluded: true, ..dead() };
            assert_eq!(run(&[excluded], false, on).decisions, vec![Decision::Leave(ActionTaken::Excluded)]);
            let breaker = run(&[dead(), dead()], false, DecideSettings { max_deletes_per_run: 1, ..on });
            assert!(breaker.breaker_tripped, "{action:?}");
            // An alive or future heartbeat is never released.
            for liveness in [
                crate::policy::Liveness::Alive { silent_seconds: 10, timeout_seconds: 90 },
                crate::policy::Liveness::FutureHeartbeat,
            ] {
                let v = Verdict { liveness, ..verdict(true, false, false) };
                assert_ne!(run(&[v], false, on).decisions[0], Decision::Execute(Write::Delete), "{liveness:?}");
            }
        }
    }

    /// Off, the decision is exactly what it was before the switch existed.
    #[test]
    fn without_the_switch_dead_heartbeats_follow_the_action() {
        assert_eq!(run(&[dead()], false, settings(Action::Report)).decisions, [Decision::Leave(ActionTaken::NoAction)]);
        let ttl = run(&[dead()], false, settings(Action::Ttl)).decisions;
        assert_eq!(ttl, [Decision::Execute(Write::SetTtl { expires_at: 1_000 + 86_400 })]);
        let due = Verdict { delete_due: true, ..dead() };
        assert_eq!(run(&[due], false, settings(Action::Delete)).decisions, [Decision::Execute(Write::Delete)]);
    }

    fn run(verdicts: &[Verdict], has_ttl: bool, s: DecideSettings) -> Plan {
        let cands: Vec<Candidate> = verdicts
            .iter()
            .map(|v| Candidate { verdict: v, has_ttl, ttl_supported: true, created_epoch: 1_000 })
            .collect();
        decide(&cands, s)
    }

    #[test]
    fn fresh_locks_are_never_written() {
        for action in [Action::Report, Action::Ttl, Action::Delete] {
            // delete_due cannot be true for a fresh lock, but even if it were, no write.
            let plan = run(&[verdict(false, false, true)], false, settings(action));
            assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::NoAction)], "{action:?}");
        }
    }

    #[test]
    fn a_lock_with_a_heartbeat_from_the_future_is_never_written() {
        let future = Verdict { liveness: crate::policy::Liveness::FutureHeartbeat, ..verdict(true, false, false) };
        for action in [Action::Report, Action::Ttl, Action::Delete] {
            let plan = run(std::slice::from_ref(&future), false, settings(action));
            assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::NoAction)], "{action:?}");
        }
        // The same stale lock without it gets its TTL.
        let plan = run(&[verdict(true, false, false)], false, settings(Action::Ttl));
        assert!(matches!(plan.decisions[0], Decision::Execute(Write::SetTtl { .. })), "{:?}", plan.decisions);
    }

    #[test]
    fn excluded_locks_are_never_written() {
        for action in [Action::Report, Action::Ttl, Action::Delete] {
            let plan = run(&[verdict(true, true, true)], false, settings(action));
            assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::Excluded)]);
        }
    }

    #[test]
    fn report_writes_nothing() {
        let plan = run(&[verdict(true, false, true)], false, settings(Action::Report));
        assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::NoAction)]);
    }

    #[test]
    fn delete_only_when_due() {
        let plan = run(&[verdict(true, false, true), verdict(true, false, false)], false, settings(Action::Delete));
        assert_eq!(plan.decisions, vec![Decision::Execute(Write::Delete), Decision::Leave(ActionTaken::NoAction)]);
        assert_eq!(plan.planned_deletes, 1);
    }

    #[test]
    fn ttl_is_created_plus_ttl_after_and_only_when_missing() {
        let plan = run(&[verdict(true, false, false)], false, settings(Action::Ttl));
        assert_eq!(plan.decisions, vec![Decision::Execute(Write::SetTtl { expires_at: 1_000 + 86_400 })]);
        let plan = run(&[verdict(true, false, false)], true, settings(Action::Ttl));
        assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::NoAction)]);
    }

    #[test]
    fn lockfiles_get_no_ttl() {
        let v = verdict(true, false, false);
        let c = Candidate { verdict: &v, has_ttl: false, ttl_supported: false, created_epoch: 0 };
        let plan = decide(&[c], settings(Action::Ttl));
        assert_eq!(plan.decisions, vec![Decision::Leave(ActionTaken::NoAction)]);
    }

    #[test]
    fn dry_run_withholds_every_write() {
        let s = DecideSettings { dry_run: true, ..settings(Action::Delete) };
        let plan = run(&[verdict(true, false, true)], false, s);
        assert_eq!(plan.decisions, vec![Decision::Withhold(Write::Delete, ActionTaken::DryRun)]);
        let s = DecideSettings { dry_run: true, ..settings(Action::Ttl) };
        let plan = run(&[verdict(true, false, false)], false, s);
        assert!(matches!(plan.decisions[0], Decision::Withhold(Write::SetTtl { .. }, ActionTaken::DryRun)));
    }

    #[test]
    fn breaker_trips_above_the_limit_and_deletes_none() {
        let s = DecideSettings { max_deletes_per_run: 2, ..settings(Action::Delete) };
        let at_limit = run(&[verdict(true, false, true), verdict(true, false, true)], false, s);
        assert!(!at_limit.breaker_tripped);
        assert!(at_limit.decisions.iter().all(|d| *d == Decision::Execute(Write::Delete)));
        let over = run(&vec![verdict(true, false, true); 3], false, s);
        assert!(over.breaker_tripped);
        assert_eq!(over.planned_deletes, 3);
        assert!(over.decisions.iter().all(|d| *d == Decision::Withhold(Write::Delete, ActionTaken::Breaker)));
        // Zero allowed means every delete trips the breaker.
        let zero = run(&[verdict(true, false, true)], false, DecideSettings { max_deletes_per_run: 0, ..s });
        assert!(zero.breaker_tripped);
    }
}
