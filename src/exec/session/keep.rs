//! Keeping the command's locks: heartbeats (in AWS time, with one warning
//! when this machine's clock is off), and what happens when the Terraform
//! holding a lock ends: released if provably the command's, else re-read
//! and kept for `release` or the reaper.

use nix::sys::signal::Signal;

use crate::domain::clock::CLOCK_OFFSET_WARN_OVER;
use crate::domain::lock_record::IdentifiedBy;
use crate::domain::process::{innermost, Process};
use crate::exec::holder::{beat, release, still_held, BeatOutcome};
use crate::exec::options::{say, OnConflict};
use crate::exec::procs;
use crate::exec::session::{Followed, Session};

impl Session {
    pub(super) async fn heartbeat_all(&mut self) {
        // By lock ID: a heartbeat may read the log, which may end the following of others.
        let ids: Vec<String> = self.followed.iter().map(|f| f.record.lock_id.clone()).collect();
        for id in ids.iter().rev() {
            if let Some(i) = self.followed.iter().position(|f| &f.record.lock_id == id) {
                self.heartbeat(i).await;
            }
        }
    }

    /// Once, when this machine's clock is off by more than
    /// [`CLOCK_OFFSET_WARN_OVER`]: heartbeats are corrected, but people
    /// reading the job should know.
    pub(super) fn warn_about_the_clock_once(&mut self) {
        let Some(offset) = self.opts.clock.aws_offset() else { return };
        if !self.clock_warned && offset.exceeds(CLOCK_OFFSET_WARN_OVER) {
            self.clock_warned = true;
            say(&format!("{}; heartbeats are written in AWS time", offset.describe()));
            self.write_record();
        }
    }

    /// Heartbeat the `i`th followed lock (it may stop being followed).
    pub(super) async fn heartbeat(&mut self, i: usize) {
        let alive = self.holders_running(&self.followed[i]);
        let f = &self.followed[i];
        if f.releasing || !alive {
            return;
        }
        let may_restore = f.record.identified_by == IdentifiedBy::TerraformLog;
        let (id, backend) = (f.record.lock_id.clone(), f.record.backend.clone());
        let stores = self.stores_for(&backend).await;
        let now = self.opts.clock.aws_now().timestamp();
        let mut outcome = beat(&stores, &mut self.followed[i].record, &self.opts.beat, now, false).await;
        if may_restore && matches!(outcome, Ok(BeatOutcome::Gone(_))) {
            // Terraform logs `Unlocking` before it deletes its lock: with the
            // deletion seen, the log now says whether it was Terraform's own.
            self.read_log();
            let Some(i) = self.followed.iter().position(|f| f.record.lock_id == id && !f.releasing) else {
                return;
            };
            outcome = beat(&stores, &mut self.followed[i].record, &self.opts.beat, now, true).await;
        }
        let Some(i) = self.followed.iter().position(|f| f.record.lock_id == id) else { return };
        match outcome {
            Ok(BeatOutcome::Alive) => {}
            Ok(BeatOutcome::Restored(what)) => {
                say(&format!(
                    "WARNING: lock {id} was removed while the command runs ({what}); restored it exactly as it was"
                ));
                self.write_record();
            }
            Ok(BeatOutcome::Gone(what)) => {
                say(&format!("lock {id} is no longer held ({what}); no longer following it"));
                self.followed.remove(i);
                self.write_record();
            }
            Ok(BeatOutcome::Conflict(text)) => {
                self.conflict = true;
                say(&format!("ERROR: another run holds the state now: {text}"));
                let holders = self.followed[i].holders.clone();
                if self.opts.on_conflict == OnConflict::Interrupt {
                    let tree: Vec<&Process> = self.tree.iter().collect();
                    say("interrupting the command (SIGINT) so it stops before writing state it no longer holds");
                    // Terraform (as Ctrl-C would: it stops gracefully), else the command.
                    match innermost(&tree, &holders) {
                        Some(holder) => {
                            procs::signal_process(holder, Signal::SIGINT);
                        }
                        None if self.child_running => procs::signal_child(self.child_pid, Signal::SIGINT),
                        None => {}
                    }
                }
                // Never touch the other run's lock.
                self.followed.remove(i);
                self.write_record();
            }
            Err(e) => say(&format!("heartbeat of lock {id} failed (will retry): {e}")),
        }
        self.warn_about_the_clock_once();
    }

    /// Locks whose Terraform ended: release those provably the command's
    /// (each only if unchanged); re-read the watched ones before saying
    /// anything about them.
    pub(super) async fn on_deaths(&mut self, code: Option<i32>) {
        let mut i = 0;
        while i < self.followed.len() {
            if self.holders_running(&self.followed[i]) {
                i += 1;
                continue;
            }
            let f = self.followed.remove(i);
            self.after_holder_ended(f, code).await;
            self.write_record();
        }
    }

    pub(super) async fn after_holder_ended(&mut self, f: Followed, code: Option<i32>) {
        let record = f.record;
        let stores = self.stores_for(&record.backend.clone()).await;
        let id = record.lock_id.clone();
        let ended = match (f.holders.is_empty(), code) {
            (true, Some(code)) => format!("the command exited ({code}) holding lock {id}"),
            _ => format!("the Terraform process holding lock {id} ended"),
        };
        if record.identified_by != IdentifiedBy::TerraformLog {
            match still_held(&stores, &record, &self.opts.beat.attribute).await {
                Ok(false) => {}
                Ok(true) => {
                    say(&format!(
                        "{ended} and the lock is still held. It was identified by this host's user@hostname and its \
creation time, not by Terraform's log, so it is not released automatically: its heartbeat stops, so the reaper \
clears it once it is silent past its contract, or run `tf-lock-reaper release --lock-file {}` if this job was its only holder",
                        self.record_path.display()
                    ));
                    self.kept.push(record);
                }
                Err(e) => {
                    say(&format!("{ended}; cannot tell whether it is still held: {e}"));
                    self.kept.push(record);
                }
            }
            return;
        }
        match release(&stores, &record).await {
            Ok(released) => {
                let quiet = f.releasing && released.iter().all(|r| r.outcome == crate::ports::WriteOutcome::Gone);
                if !quiet {
                    for r in released {
                        say(&format!("{ended}: {}", r.describe()));
                    }
                }
            }
            Err(e) => {
                say(&format!(
                    "{ended}, and releasing it failed: {e}. Run `tf-lock-reaper release --lock-file {}`",
                    self.record_path.display()
                ));
                self.kept.push(record);
            }
        }
    }
}
