//! The wrapper's state while the command runs: the log lines read, the
//! lock IDs Terraform named and not yet seen on their lock, the locks
//! followed with the Terraform processes holding them, the signals to pass
//! on, and what is said at the end. One `run` drives it: every tick reads
//! the log and looks at pending locks and holders; every heartbeat period
//! heartbeats; the command's end signals orphans and waits for the
//! Terraform processes still holding a lock. By concern: which locks are
//! the command's (`identify`), keeping and releasing them (`keep`), another
//! run's lock that blocks the command (`blocked`), and signals (`signals`);
//! this file holds the state and the loop.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;

use crate::domain::backend::{BackendConnection, LockLocation};
use crate::domain::lock_record::{LockRecord, RecordFile, RECORD_VERSION};
use crate::domain::process::{ProcId, Process};
use crate::domain::tflog::LockLine;
use crate::exec::backends;
use crate::exec::child;
use crate::exec::follow::LogFollower;
use crate::exec::holder::{Finder, Stores};
use crate::exec::options::{say, Connect, ExecOptions};
use crate::exec::procs;
use crate::exec::record;

mod blocked;
mod identify;
mod keep;
mod signals;

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
    /// Whether those Terraform processes wait for a lock another run holds
    /// (`-lock-timeout`); `None` when none was found.
    waits: Option<bool>,
    polls: u32,
    /// Why the last look at the lock failed, said if it is the last look.
    failed: Option<String>,
}

/// The wrapper's state while the command runs.
pub(super) struct Session {
    opts: ExecOptions,
    connect: Connect,
    stores: HashMap<BackendConnection, Stores>,
    /// Terraform's log, when there is one to read.
    follower: Option<LogFollower>,
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
    /// What was said about locks blocking the command: (lock ID, what).
    blocked_said: HashSet<(String, &'static str)>,
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
            follower: None,
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
            blocked_said: HashSet::new(),
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
        follower: Option<LogFollower>,
        watch: Option<String>,
    ) -> std::io::Result<i32> {
        self.follower = follower;
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
                    self.tick(ticks, code).await;
                    if code.is_some() && !self.waiting_for_holders() {
                        break;
                    }
                }
                _ = beats.tick() => self.heartbeat_all().await,
            }
        }
        signal_task.abort();
        self.read_log();
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
    async fn tick(&mut self, ticks: u64, code: Option<i32>) {
        self.read_log();
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
            self.read_log();
            self.on_deaths(code).await;
        }
    }

    /// Read what Terraform logged since the last read.
    pub(super) fn read_log(&mut self) {
        let lines = self.follower.as_mut().map(|f| f.lines().unwrap_or_default()).unwrap_or_default();
        for line in lines {
            self.on_line(line);
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

    /// Something of the command's is still to be waited for: a Terraform
    /// holding (or perhaps taking) a lock.
    fn waiting_for_holders(&self) -> bool {
        self.followed.iter().any(|f| self.holders_running(f))
            || self.pending.iter().any(|p| p.holders.iter().any(|h| procs::is_running(*h)))
    }
}
