//! When a Terraform below the wrapper cannot take its state because
//! another run holds it (Terraform logged its own lock ID, and the lock
//! carries another): read that run's lock and judge its holder. A holder
//! that heartbeated and went silent past its contract is dead as a matter
//! of fact: its lock is released, conditioned on exactly what was read, and
//! Terraform's `-lock-timeout` takes the state on its next retry. Any other
//! holder is left alone, and the person reading the job is told who holds
//! the state, since when, its liveness and the exact `unlock` command.

use crate::domain::backend::{BackendConnection, LockLocation};
use crate::domain::policy::Liveness;
use crate::exec::blocker::{read_blocker, release_dead, silence, Blocker, Judgement};
use crate::exec::options::say;
use crate::exec::session::Session;
use crate::ports::WriteOutcome;

/// Whether the blocked Terraform keeps trying: with `-lock-timeout` it
/// takes the state on a retry; without, it has failed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiting {
    Retries,
    GaveUp,
    /// Its process was not found.
    Unknown,
}

impl Waiting {
    /// From whether its Terraform waits (`None`: not found) and whether it ended.
    pub(super) fn of(waits: Option<bool>, ended: bool) -> Waiting {
        match (ended, waits) {
            (true, _) | (false, Some(false)) => Waiting::GaveUp,
            (false, Some(true)) => Waiting::Retries,
            (false, None) => Waiting::Unknown,
        }
    }
}

impl Session {
    /// Terraform is trying to take `location` with lock ID `ours`, which the
    /// lock does not carry.
    pub(super) async fn on_blocked(
        &mut self,
        connection: &BackendConnection,
        location: &LockLocation,
        ours: &str,
        waiting: Waiting,
    ) {
        let stores = self.stores_for(connection).await;
        let attribute = self.opts.beat.attribute.clone();
        let blocker = match read_blocker(&stores, location, &attribute, ours).await {
            Ok(Some(blocker)) => blocker,
            Ok(None) => return,
            Err(e) => {
                if self.unresolved.insert(format!("blocked {}", location.lock_path)) {
                    say(&format!("the state {} is locked by another run, and {e}", location.lock_path));
                }
                return;
            }
        };
        let judgement = blocker.judge(self.opts.clock.aws_now(), &self.opts.judge);
        if !judgement.is_dead() {
            self.say_blocked_once(&blocker, judgement, connection, waiting);
            return;
        }
        let next = match waiting {
            Waiting::Retries => "; Terraform takes the state on its next retry (-lock-timeout)",
            Waiting::GaveUp => "; the state is free now: re-run the command",
            Waiting::Unknown => "; the state is free now (with -lock-timeout Terraform takes it on its next retry)",
        };
        match release_dead(&stores, &blocker, &attribute).await {
            Ok(released) if released.iter().all(|r| r.outcome != WriteOutcome::Changed) => {
                self.blocked_said.insert((blocker.lock_id.clone(), "released"));
                say(&format!(
                    "released lock {} on {}: {}{next}",
                    blocker.lock_id,
                    blocker.lock_path,
                    silence(&blocker, judgement)
                ));
            }
            Ok(_) => {
                if self.blocked_said.insert((blocker.lock_id.clone(), "changed")) {
                    say(&format!(
                        "lock {} on {} changed while it was being released (its runner heartbeated, or released \
                         it): left alone",
                        blocker.lock_id, blocker.lock_path
                    ));
                }
            }
            Err(e) => {
                if self.blocked_said.insert((blocker.lock_id.clone(), "failed")) {
                    say(&format!(
                        "{} on {}: {}, but releasing it failed: {e}. If no run holds it: `{}`",
                        blocker.describe(),
                        blocker.lock_path,
                        silence(&blocker, judgement),
                        blocker.unlock_command(connection)
                    ));
                }
            }
        }
    }

    /// Who holds the state and why it is left alone: once per lock and
    /// liveness (alive, no heartbeat, a heartbeat in the future).
    fn say_blocked_once(
        &mut self,
        blocker: &Blocker,
        judgement: Judgement,
        connection: &BackendConnection,
        waiting: Waiting,
    ) {
        let (kind, why) = match judgement.liveness {
            Liveness::Alive { .. } => (
                "alive",
                format!(
                    "{}: alive, so it is left alone; {}",
                    silence(blocker, judgement).replacen("went silent", "heartbeated", 1),
                    if waiting == Waiting::GaveUp {
                        "re-run the command with -lock-timeout=3m to wait for it"
                    } else {
                        "if it goes silent past its contract it is released here while Terraform waits"
                    }
                ),
            ),
            Liveness::NoHeartbeat => (
                "no-heartbeat",
                "no heartbeat: it was not taken under tf-lock-reaper exec, so nothing proves its runner dead and it \
                 is never released here"
                    .to_string(),
            ),
            other => ("other", format!("{}, so it is never released here", other.describe())),
        };
        if !self.blocked_said.insert((blocker.lock_id.clone(), kind)) {
            return;
        }
        say(&format!(
            "the state {} is locked by another run: {}; {why}. If no run holds it: `{}`",
            blocker.lock_path,
            blocker.describe(),
            blocker.unlock_command(connection)
        ));
    }
}
