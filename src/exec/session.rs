//! The wrapper's state while the command runs: the log lines read, the
//! lock IDs Terraform named and not yet seen on their lock, the locks
//! followed with the Terraform processes holding them, the signals to pass
//! on, and what is said at the end. One `run` drives it: every tick reads
//! the log and looks at pending locks and holders; every heartbeat period
//! heartbeats; the command's end signals orphans and waits for the
//! Terraform processes still holding a lock.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;

use crate::domain::backend::{BackendConnection, LockLocation};
use crate::domain::clock::CLOCK_OFFSET_WARN_OVER;
use crate::domain::lock_record::{IdentifiedBy, LockRecord, RecordFile, RECORD_VERSION};
use crate::domain::process::{innermost, keyboard_signal_targets, ProcId, Process};
use crate::domain::tflog::{LockEvent, LockLine, LogLine};
use crate::exec::backends;
use crate::exec::child;
use crate::exec::follow::LogFollower;
use crate::exec::holder::{beat, describe, release, still_held, BeatOutcome, Finder, Stores};
use crate::exec::options::{say, Connect, ExecOptions, OnConflict};
use crate::exec::procs;
use crate::exec::record;

/// How often the log, the pending locks and the holders are looked at.
const TICK: std::time::Duration = std::time::Duration::from_millis(200);
/// The process tree and watch mode look every this many ticks (1 s).
const SLOW_TICKS: u64 = 5;
/// A logged lock ID is checked every tick this many times (5 s), then
/// every second until Terraform holds it, releases it or ends.
const FAST_POLLS: u32 = 25;

/// A lock the wrapper follows.
struct Followed {
    record: LockRecord,
    /// The Terraform processes that took it (empty: not found; then the
    /// command itself stands for them).
    holders: Vec<ProcId>,
    /// Terraform began releasing it: no heartbeat, no restore, ever again.
    releasing: bool,
}

/// A lock ID Terraform logged, not yet seen on the lock (1.6–1.9 log it
/// before the attempt; a run that loses the race logs its own ID).
struct Pending {
    line: LockLine,
    location: LockLocation,
    connection: BackendConnection,
    holders: Vec<ProcId>,
    polls: u32,
    /// Why the last look at the lock failed, said if it is the last look.
    failed: Option<String>,
}

/// The wrapper's state while the command runs.
pub(super) struct Session {
    opts: ExecOptions,
    connect: Connect,
    stores: HashMap<BackendConnection, Stores>,
    record_path: PathBuf,
    wrapper_pid: u32,
    child_pid: u32,
    child_running: bool,
    since: DateTime<Utc>,
    start_dir: PathBuf,
    /// Why heartbeats run in watch mode, once known.
    watch: Option<String>,
    followed: Vec<Followed>,
    /// Locks no longer followed but still held (a watched lock whose
    /// holder died, a release that failed): kept in the record.
    kept: Vec<LockRecord>,
    pending: Vec<Pending>,
    /// Lock IDs dealt with: never adopted again.
    done: HashSet<String>,
    tree: Vec<Process>,
    /// Where the command's Terraform processes keep their locks (by lock
    /// path): checked at the end when no lock was identified.
    seen: HashMap<String, (BackendConnection, LockLocation)>,
    /// Locks the log named whose backend could not be found, and watched
    /// states that could not be read (each said once).
    unresolved: HashSet<String>,
    /// This machine's clock was said to be off.
    clock_warned: bool,
    conflict: bool,
    /// The last signal forwarded to the command (SIGTERM, SIGHUP) or to its
    /// orphans: Terraform processes it orphans get it too, once.
    forwarded: Option<Signal>,
    orphans_signalled: HashSet<ProcId>,
}

impl Session {
    pub(super) fn new(
        opts: ExecOptions,
        connect: Connect,
        record_path: PathBuf,
        child_pid: u32,
        since: DateTime<Utc>,
        start_dir: PathBuf,
    ) -> Session {
        Session {
            opts,
            connect,
            stores: HashMap::new(),
            record_path,
            wrapper_pid: std::process::id(),
            child_pid,
            child_running: true,
            since,
            start_dir,
            watch: None,
            followed: Vec::new(),
            kept: Vec::new(),
            pending: Vec::new(),
            done: HashSet::new(),
            tree: Vec::new(),
            seen: HashMap::new(),
            unresolved: HashSet::new(),
            clock_warned: false,
            conflict: false,
            forwarded: None,
            orphans_signalled: HashSet::new(),
        }
    }

    /// Follow the command until it and every Terraform holding a lock
    /// ended; release, re-read or report what is left; the exit code.
    pub(super) async fn run(
        mut self,
        mut child: tokio::process::Child,
        mut follower: Option<LogFollower>,
        watch: Option<String>,
    ) -> std::io::Result<i32> {
        let (signal_task, mut signals) = child::receive_signals()?;
        if let Some(why) = watch {
            self.enter_watch(why);
        }
        let mut poll = tokio::time::interval(TICK);
        let mut ticks: u64 = 0;
        let mut beats = tokio::time::interval(self.opts.every);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut code = None;
        loop {
            tokio::select! {
                status = child.wait(), if code.is_none() => {
                    code = Some(child::exit_code(status?));
                    self.child_running = false;
                    self.signal_orphans();
                }
                Some(sig) = signals.recv() => self.forward(sig),
                _ = poll.tick() => {
                    ticks += 1;
                    self.tick(ticks, follower.as_mut(), code).await;
                    if code.is_some() && !self.waiting_for_holders() {
                        break;
                    }
                }
                _ = beats.tick() => self.heartbeat_all().await,
            }
        }
        signal_task.abort();
        self.read_log(follower.as_mut());
        // A lock taken and left in the last moments: one last look.
        self.poll_pending(ticks, true).await;
        self.on_deaths(code).await;
        self.report_unidentified().await;
        self.write_record();
        let code = code.unwrap_or(1);
        Ok(if self.conflict && code == 0 { 1 } else { code })
    }

    /// Every tick: the log, the pending lock IDs, once a second the process
    /// tree (and watch mode), and the locks whose Terraform ended.
    async fn tick(&mut self, ticks: u64, mut follower: Option<&mut LogFollower>, code: Option<i32>) {
        self.read_log(follower.as_deref_mut());
        self.poll_pending(ticks, false).await;
        if ticks % SLOW_TICKS == 1 {
            self.refresh_tree();
            procs::reap_adopted(&self.tree, self.child_pid);
            if self.watch.is_some() {
                self.watch_for_locks().await;
            } else {
                self.note_backends();
            }
        }
        if self.followed.iter().any(|f| !self.holders_running(f)) {
            // What Terraform logged just before it ended (an unlock) counts.
            self.read_log(follower);
            self.on_deaths(code).await;
        }
    }

    fn read_log(&mut self, follower: Option<&mut LogFollower>) {
        if let Some(f) = follower {
            for line in f.lines().unwrap_or_default() {
                self.on_line(line);
            }
        }
    }

    async fn stores_for(&mut self, connection: &BackendConnection) -> Stores {
        if let Some(s) = self.stores.get(connection) {
            return s.clone();
        }
        let s = (self.connect)(connection.clone()).await;
        self.stores.insert(connection.clone(), s.clone());
        s
    }

    fn finder<'a>(&'a self, stores: &'a Stores, connection: &'a BackendConnection) -> Finder<'a> {
        Finder { stores, connection, heartbeat_attribute: &self.opts.beat.attribute, wrapper_pid: self.wrapper_pid }
    }

    fn refresh_tree(&mut self) {
        self.tree = procs::tree(self.wrapper_pid);
    }

    /// Note where the command's Terraform processes keep their locks.
    fn note_backends(&mut self) -> Vec<backends::ProcessBackend> {
        let found = backends::of_processes(&self.tree);
        for b in &found {
            let location = b.backend.lock_location(&b.workspace);
            self.seen.entry(location.lock_path.clone()).or_insert((b.backend.connection.clone(), location));
        }
        found
    }

    /// Enter watch mode (once per reason), saying why.
    fn enter_watch(&mut self, why: String) {
        if self.watch.as_deref() == Some(why.as_str()) {
            return;
        }
        say(&format!(
            "heartbeats run in watch mode: {why}. A lock on this run's state taken by {} after the start is \
heartbeated, never released automatically: if the run dies, run `tf-lock-reaper release` or let the reaper clear it \
once its heartbeat is silent for HEARTBEAT_TIMEOUT",
            child::who()
        ));
        self.watch = Some(why);
    }

    fn on_line(&mut self, line: LogLine) {
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
    fn add_pending(&mut self, line: LockLine) {
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
        self.pending.push(Pending { line, location, connection: backend.connection, holders, polls: 0, failed: None });
    }

    /// Look for each pending lock ID on its lock; adopt it once it is there.
    async fn poll_pending(&mut self, tick: u64, last_chance: bool) {
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
            match self.finder(&stores, &p.connection).by_logged_id(&p.location, &p.line.id).await {
                Ok(Some(record)) => {
                    self.adopt(record, p.holders).await;
                    continue;
                }
                Ok(None) => p.failed = None,
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
    async fn watch_for_locks(&mut self) {
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

    async fn adopt(&mut self, record: LockRecord, holders: Vec<ProcId>) {
        let halves: Vec<String> = record.halves.iter().map(describe).collect();
        say(&format!(
            "following lock {} on {} ({}), heartbeat every {}",
            record.lock_id,
            record.lock_path,
            halves.join(" + "),
            humantime::format_duration(self.opts.every)
        ));
        self.done.insert(record.lock_id.clone());
        self.followed.push(Followed { record, holders, releasing: false });
        self.write_record();
        let last = self.followed.len() - 1;
        self.heartbeat(last).await;
    }

    fn write_record(&self) {
        let locks: Vec<LockRecord> =
            self.followed.iter().map(|f| f.record.clone()).chain(self.kept.iter().cloned()).collect();
        if locks.is_empty() {
            record::remove(&self.record_path);
            return;
        }
        let clock_offset_seconds = self.opts.clock.aws_offset().map(|o| o.seconds());
        let file = RecordFile { version: RECORD_VERSION, wrapper_pid: self.wrapper_pid, clock_offset_seconds, locks };
        if let Err(e) = record::write(&self.record_path, &file) {
            say(&format!("cannot write the lock record {}: {e}", self.record_path.display()));
        }
    }

    fn holders_running(&self, f: &Followed) -> bool {
        if f.holders.is_empty() {
            self.child_running
        } else {
            f.holders.iter().any(|h| procs::is_running(*h))
        }
    }

    async fn heartbeat_all(&mut self) {
        for i in (0..self.followed.len()).rev() {
            self.heartbeat(i).await;
        }
    }

    /// Once, when this machine's clock is off by more than
    /// [`CLOCK_OFFSET_WARN_OVER`]: heartbeats are corrected, but people
    /// reading the job should know.
    fn warn_about_the_clock_once(&mut self) {
        let Some(offset) = self.opts.clock.aws_offset() else { return };
        if !self.clock_warned && offset.exceeds(CLOCK_OFFSET_WARN_OVER) {
            self.clock_warned = true;
            say(&format!("{}; heartbeats are written in AWS time", offset.describe()));
            self.write_record();
        }
    }

    /// Heartbeat the `i`th followed lock (it may stop being followed).
    async fn heartbeat(&mut self, i: usize) {
        let alive = self.holders_running(&self.followed[i]);
        let f = &self.followed[i];
        if f.releasing || !alive {
            return;
        }
        let may_restore = f.record.identified_by == IdentifiedBy::TerraformLog;
        let stores = self.stores_for(&f.record.backend.clone()).await;
        let now = self.opts.clock.aws_now().timestamp();
        let f = &mut self.followed[i];
        let id = f.record.lock_id.clone();
        match beat(&stores, &mut f.record, &self.opts.beat, now, may_restore).await {
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
                    let target = innermost(&tree, &holders).map_or(self.child_pid, |h| h.pid.unsigned_abs());
                    say("interrupting the command (SIGINT) so it stops before writing state it no longer holds");
                    child::interrupt(target);
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
    async fn on_deaths(&mut self, code: Option<i32>) {
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

    async fn after_holder_ended(&mut self, f: Followed, code: Option<i32>) {
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
clears it after HEARTBEAT_TIMEOUT, or run `tf-lock-reaper release --lock-file {}` if this job was its only holder",
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

    /// A signal the wrapper received: who gets it.
    fn forward(&mut self, sig: Signal) {
        if child::from_keyboard(sig) {
            return;
        }
        let child = i32::try_from(self.child_pid).unwrap_or(i32::MAX);
        if !self.child_running {
            // Only orphaned Terraform processes are left: each gets this signal once.
            self.forwarded = Some(sig);
            self.orphans_signalled.clear();
            self.signal_orphans();
            return;
        }
        match sig {
            Signal::SIGINT | Signal::SIGQUIT => {
                self.refresh_tree();
                let tree: Vec<&Process> = self.tree.iter().collect();
                for pid in keyboard_signal_targets(&tree, child) {
                    procs::signal(pid, sig);
                }
            }
            _ => {
                procs::signal(child, sig);
                self.forwarded = Some(sig);
            }
        }
    }

    /// The command ended while Terraform processes it started still run
    /// (re-parented to the wrapper): a SIGTERM or SIGHUP that ended the
    /// command (a shell does not pass it on) reaches them once.
    fn signal_orphans(&mut self) {
        let Some(sig) = self.forwarded else { return };
        self.refresh_tree();
        for p in self.tree.iter().filter(|p| p.running && p.is_terraform()) {
            if self.orphans_signalled.insert(p.id) {
                procs::signal(p.id.pid, sig);
            }
        }
    }

    /// Something of the command's is still to be waited for: a Terraform
    /// holding (or perhaps taking) a lock.
    fn waiting_for_holders(&self) -> bool {
        self.followed.iter().any(|f| self.holders_running(f))
            || self.pending.iter().any(|p| p.holders.iter().any(|h| procs::is_running(*h)))
    }

    /// At the end, no lock identified although one for the command's state
    /// appeared: say so, with what to do.
    async fn report_unidentified(&mut self) {
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
