//! Which locks are the command's: the lock IDs Terraform's log names
//! (pending until the lock carries them), watch mode's `user@hostname` and
//! start time, adopting a found lock, and what is said at the end about a
//! lock that appeared and was not identified.

use crate::domain::lock_record::LockRecord;
use crate::domain::process::ProcId;
use crate::domain::tflog::{LockEvent, LockLine, LogLine};
use crate::exec::backends;
use crate::exec::child;
use crate::exec::holder::describe;
use crate::exec::options::say;
use crate::exec::procs;
use crate::exec::session::blocked::Waiting;
use crate::exec::session::{Followed, Pending, Session, FAST_POLLS, SLOW_TICKS};

/// Polls (200 ms each) before a blocked Terraform whose process was not
/// found is judged anyway.
const UNKNOWN_GRACE_POLLS: u32 = 5;

impl Session {
    /// Enter watch mode (once per reason), saying why.
    pub(super) fn enter_watch(&mut self, why: String) {
        if self.watch.as_deref() == Some(why.as_str()) {
            return;
        }
        say(&format!(
            "heartbeats run in watch mode: {why}. A lock on this run's state taken by {} after the start is \
heartbeated, never released automatically: if the run dies, run `tf-lock-reaper release` or let the reaper clear it \
once its heartbeat is silent past its contract",
            child::who()
        ));
        self.watch = Some(why);
    }

    pub(super) fn on_line(&mut self, line: LogLine) {
        let lock = match line {
            LogLine::Started(release) => {
                if let Some(why) = release.unidentifiable() {
                    self.enter_watch(why);
                }
                return;
            }
            LogLine::Lock(lock) => lock,
        };
        match lock.event {
            LockEvent::Locking | LockEvent::Locked => {
                if self.done.contains(&lock.id) || self.pending.iter().any(|p| p.line.id == lock.id) {
                    return;
                }
                self.add_pending(lock);
            }
            LockEvent::Unlocking => {
                self.pending.retain(|p| p.line.id != lock.id);
                for f in self.followed.iter_mut().filter(|f| f.record.lock_id == lock.id) {
                    f.releasing = true;
                }
            }
            LockEvent::Unlocked => {
                self.pending.retain(|p| p.line.id != lock.id);
                let before = self.followed.len();
                self.followed.retain(|f| f.record.lock_id != lock.id);
                if self.followed.len() != before {
                    self.done.insert(lock.id);
                    self.write_record();
                }
            }
        }
    }

    /// Terraform named lock `line.id`: find its backend now, among the
    /// command's Terraform processes, else under the starting directory.
    pub(super) fn add_pending(&mut self, line: LockLine) {
        let Some(lock_path) = line.lock_path() else { return };
        self.refresh_tree();
        let found = self.note_backends();
        let holders = backends::holders_of(&found, &lock_path);
        let backend = found
            .into_iter()
            .find_map(|b| b.backend.workspace_of(&lock_path).map(|ws| (b.backend, ws)))
            .or_else(|| backends::under(&self.start_dir, &lock_path));
        let Some((backend, workspace)) = backend else {
            if self.unresolved.insert(line.id.clone()) {
                say(&format!(
                    "Terraform took lock {} on {lock_path}, but no initialised backend for it was found in the data \
directory of the command's Terraform processes or under {}: not followed (is TF_DATA_DIR outside the stack?)",
                    line.id,
                    self.start_dir.display()
                ));
            }
            return;
        };
        let location = backend.lock_location(&workspace);
        self.seen.entry(lock_path).or_insert((backend.connection.clone(), location.clone()));
        let found: Vec<_> = self.tree.iter().filter(|p| holders.contains(&p.id)).collect();
        let waits = (!found.is_empty()).then(|| found.iter().any(|p| p.waits_for_lock()));
        self.pending.push(Pending {
            line,
            location,
            connection: backend.connection,
            holders,
            waits,
            polls: 0,
            failed: None,
        });
    }

    /// Look for each pending lock ID on its lock; adopt it once it is there.
    pub(super) async fn poll_pending(&mut self, tick: u64, last_chance: bool) {
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            let holders_gone = !p.holders.is_empty() && !p.holders.iter().any(|h| procs::is_running(*h));
            let due = last_chance || holders_gone || p.polls < FAST_POLLS || tick % SLOW_TICKS == 0;
            if !due {
                still.push(p);
                continue;
            }
            p.polls += 1;
            let stores = self.stores_for(&p.connection).await;
            let finder = self.finder(&stores, &p.connection);
            let found = if last_chance || holders_gone {
                finder.any_half_by_logged_id(&p.location, &p.line.id).await
            } else {
                finder.by_logged_id(&p.location, &p.line.id).await
            };
            match found {
                Ok(Some(record)) => {
                    self.adopt(record, p.holders).await;
                    continue;
                }
                Ok(None) => {
                    p.failed = None;
                    // Held by another run (or not yet written): judge its holder.
                    // A Terraform not found among the command's processes is
                    // known to have given up only once the command ended; give
                    // it a second before saying anything.
                    let command_ended =
                        p.holders.is_empty() && !(self.child_running && procs::child_running(self.child_pid));
                    let waiting = Waiting::of(p.waits, last_chance || holders_gone || command_ended);
                    if waiting != Waiting::Unknown || p.polls > UNKNOWN_GRACE_POLLS {
                        self.on_blocked(&p.connection, &p.location, &p.line.id, waiting).await;
                    }
                }
                Err(e) => {
                    tracing::debug!(lock = %p.line.id, error = %e, "cannot read the logged lock yet");
                    p.failed = Some(e.to_string());
                }
            }
            // Never taken (a lost race), or its Terraform ended: forget it,
            // and say why if it could not be read.
            if !(last_chance || holders_gone) {
                still.push(p);
            } else if let Some(why) = &p.failed {
                say(&format!("Terraform took lock {} but the wrapper could not read it: {why}", p.line.id));
            }
        }
        self.pending.extend(still);
    }

    /// Watch mode: a lock by this host taken after the start, at the state
    /// of one of the command's Terraform processes.
    pub(super) async fn watch_for_locks(&mut self) {
        let found = self.note_backends();
        let who = child::who();
        for b in &found {
            let location = b.backend.lock_location(&b.workspace);
            if self.followed.iter().any(|f| f.record.lock_path == location.lock_path) {
                continue;
            }
            let holders = backends::holders_of(&found, &location.lock_path);
            let stores = self.stores_for(&b.backend.connection).await;
            let record =
                self.finder(&stores, &b.backend.connection).by_who_and_created(&location, &who, self.since).await;
            match record {
                Ok(Some(record)) if !self.done.contains(&record.lock_id) => self.adopt(record, holders).await,
                Ok(_) => {}
                Err(e) => {
                    if self.unresolved.insert(location.lock_path.clone()) {
                        say(&format!("watching {}: {e}", location.lock_path));
                    }
                }
            }
        }
    }

    pub(super) async fn adopt(&mut self, record: LockRecord, holders: Vec<ProcId>) {
        let halves: Vec<String> = record.halves.iter().map(describe).collect();
        let context = self.opts.ci.map_or_else(|| "on a terminal".to_string(), |ci| format!("in CI ({ci})"));
        say(&format!(
            "following lock {} on {} ({}), heartbeat every {}; counted dead after {} of silence ({context})",
            record.lock_id,
            record.lock_path,
            halves.join(" + "),
            humantime::format_duration(self.opts.every),
            humantime::format_duration(self.opts.beat.timeout)
        ));
        self.done.insert(record.lock_id.clone());
        self.followed.push(Followed { record, holders, releasing: false });
        self.write_record();
        let last = self.followed.len() - 1;
        // The offset is known from reading the lock: say it before the first beat.
        self.warn_about_the_clock_once();
        self.heartbeat(last).await;
    }

    /// At the end, no lock identified although one for the command's state
    /// appeared: say so, with what to do.
    pub(super) async fn report_unidentified(&mut self) {
        for (lock_path, (connection, location)) in self.seen.clone() {
            if self.followed.iter().any(|f| f.record.lock_path == lock_path)
                || self.kept.iter().any(|k| k.lock_path == lock_path)
            {
                continue;
            }
            let stores = self.stores_for(&connection).await;
            let Ok(Some(found)) = self.finder(&stores, &connection).created_since(&location, self.since).await else {
                continue;
            };
            if self.done.contains(&found.lock_id) {
                continue;
            }
            let why = self.watch.clone().unwrap_or_else(|| "Terraform's log did not name it".to_string());
            say(&format!(
                "lock {} on {lock_path} ({} by {} since {}) appeared while the command ran and is still held, but it \
was not identified as the command's ({why}). If no other run holds it: `tf-lock-reaper unlock {}`",
                found.lock_id, found.operation, found.who, found.created, found.lock_id
            ));
        }
    }
}
