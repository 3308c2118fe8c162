//! `tf-lock-reaper exec -- <command>`: run Terraform and make its lock's
//! liveness a fact. The wrapper learns which lock is the command's from
//! Terraform's own log, heartbeats it, restores it if someone removed it
//! while the command still runs, releases it if the command died holding
//! it, and records it for a CI `release`. `release` lives here too.
//!
//! Rooms: `holder` (the lock, over the ports), `follow` (the log file),
//! `child` (process and signals), `record` (the record file and `release`).

pub mod child;
pub mod follow;
pub mod holder;
pub mod record;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;

use crate::domain::backend::{
    current_workspace, parse_backend_state, Backend, BackendConnection, LockLocation, S3Backend,
};
use crate::domain::lock_record::{IdentifiedBy, LockRecord};
use crate::domain::tflog::LockEvent;
use crate::exec::follow::LogFollower;
use crate::exec::holder::{beat, describe, release, BeatOutcome, BeatSettings, Finder, Stores};

/// Builds the stores of a backend (the entrypoint wires the AWS adapters).
pub type Connect = Box<dyn Fn(BackendConnection) -> BoxFuture<'static, Stores> + Send + Sync>;

/// Terraform subcommands that never lock state.
const NEVER_LOCKS: [&str; 12] =
    ["fmt", "validate", "version", "-version", "--version", "-v", "help", "-help", "--help", "get", "login", "logout"];

/// What to do when another run took the state while the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// SIGINT the command, so Terraform stops before it writes state it no
    /// longer holds the lock for.
    Interrupt,
    Warn,
}

/// Everything `exec` needs.
pub struct ExecOptions {
    pub command: Vec<String>,
    pub beat: BeatSettings,
    pub every: Duration,
    pub lock_file: Option<PathBuf>,
    pub on_conflict: OnConflict,
}

/// How the wrapper follows the command's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Run it, touch nothing; the text says why.
    Transparent(String),
    /// Terraform names its lock in the private log the wrapper reads.
    Log,
    /// No log to read (the text says why): watch for a lock by this host's
    /// `user@hostname` created after the start; never release it.
    Watch(String),
}

/// Where the command works: `-chdir=DIR`, then `TF_DATA_DIR` within it.
#[derive(Debug, Clone)]
struct Dirs {
    data: PathBuf,
}

impl Dirs {
    fn of(command: &[String]) -> Dirs {
        let chdir = command.iter().skip(1).find_map(|a| a.strip_prefix("-chdir=")).map(PathBuf::from);
        let work = chdir.unwrap_or_else(|| PathBuf::from("."));
        let data = match std::env::var("TF_DATA_DIR") {
            Ok(d) if !d.is_empty() => work.join(d),
            _ => work.join(".terraform"),
        };
        Dirs { data }
    }

    fn backend(&self) -> Option<Result<Option<Backend>, String>> {
        let text = std::fs::read_to_string(self.data.join("terraform.tfstate")).ok()?;
        Some(parse_backend_state(&text))
    }

    fn s3_backend(&self) -> Option<S3Backend> {
        match self.backend() {
            Some(Ok(Some(Backend::S3(b)))) => Some(*b),
            _ => None,
        }
    }

    fn workspace(&self) -> String {
        let env = std::env::var("TF_WORKSPACE").ok();
        let file = std::fs::read_to_string(self.data.join("environment")).ok();
        current_workspace(env.as_deref(), file.as_deref())
    }
}

/// The program's file name and its subcommand (the first argument that is
/// not an option), for Terraform and OpenTofu.
fn program_and_subcommand(command: &[String]) -> (String, Option<String>) {
    let program = command.first().map(|p| Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()));
    let program = program.flatten().unwrap_or_default();
    let terraform_like = matches!(program.as_str(), "terraform" | "tofu");
    let sub = terraform_like.then(|| command.iter().skip(1).find(|a| !a.starts_with("-chdir=")).cloned()).flatten();
    (program, sub)
}

fn mode(command: &[String], dirs: &Dirs) -> Mode {
    let (program, sub) = program_and_subcommand(command);
    if let Some(sub) = sub.as_deref().filter(|s| NEVER_LOCKS.contains(s)) {
        return Mode::Transparent(format!("`{program} {sub}` never locks state"));
    }
    if sub.as_deref() != Some("init") {
        let why = match dirs.backend() {
            None => Some(format!("no initialised backend in {}", dirs.data.display())),
            Some(Err(e)) => Some(format!("{}/terraform.tfstate: {e}", dirs.data.display())),
            Some(Ok(None)) => Some("the state is local (no backend)".to_string()),
            Some(Ok(Some(Backend::Other(kind)))) => Some(format!("the backend is `{kind}`, not s3")),
            Some(Ok(Some(Backend::S3(b)))) if !b.locks() => {
                Some("the s3 backend has neither dynamodb_table nor use_lockfile: nothing locks".to_string())
            }
            Some(Ok(Some(Backend::S3(_)))) => None,
        };
        if let Some(why) = why {
            return Mode::Transparent(why);
        }
    }
    for var in ["TF_LOG", "TF_LOG_PATH", "TF_LOG_CORE"] {
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            return Mode::Watch(format!("{var} is set, so Terraform's log is yours, not the wrapper's"));
        }
    }
    if program == "tofu" {
        return Mode::Watch("OpenTofu does not log the ID of the lock it takes".to_string());
    }
    Mode::Log
}

/// Print one line for the person reading the job's log.
fn say(text: &str) {
    eprintln!("tf-lock-reaper exec: {text}");
}

/// The lock the wrapper follows now.
struct Held {
    record: LockRecord,
    /// Terraform began releasing it: no heartbeat, no restore, ever again.
    releasing: bool,
}

/// The wrapper's state while the command runs.
struct Session {
    opts: ExecOptions,
    connect: Connect,
    dirs: Dirs,
    record_path: PathBuf,
    stores: Option<(BackendConnection, Stores)>,
    held: Option<Held>,
    conflict: bool,
    pid: u32,
}

impl Session {
    async fn stores_for(&mut self, connection: &BackendConnection) -> Stores {
        match &self.stores {
            Some((c, s)) if c == connection => s.clone(),
            _ => {
                let s = (self.connect)(connection.clone()).await;
                self.stores = Some((connection.clone(), s.clone()));
                s
            }
        }
    }

    /// Where the workspace's lock lives now, per the data directory, and the
    /// stores to read it with; `None` without an s3 backend.
    async fn locate(&mut self) -> Option<(S3Backend, LockLocation, Stores)> {
        let backend = self.dirs.s3_backend()?;
        let location = backend.lock_location(&self.dirs.workspace());
        let stores = self.stores_for(&backend.connection).await;
        Some((backend, location, stores))
    }

    fn finder<'a>(&'a self, stores: &'a Stores, backend: &'a S3Backend) -> Finder<'a> {
        Finder {
            stores,
            connection: &backend.connection,
            heartbeat_attribute: &self.opts.beat.attribute,
            wrapper_pid: self.pid,
        }
    }

    /// Terraform logged that it holds lock `id`: find it and check it is
    /// exactly that lock before adopting it.
    async fn adopt_logged(&mut self, id: &str) {
        let Some((backend, location, stores)) = self.locate().await else {
            say(&format!("Terraform took lock {id}, but {} has no s3 backend to find it in", self.dirs.data.display()));
            return;
        };
        match self.finder(&stores, &backend).by_logged_id(&location, id).await {
            Ok(Some(record)) => self.adopt(record).await,
            Ok(None) => {
                say(&format!("Terraform logged lock {id}, but no lock with that ID is at {}", location.lock_path))
            }
            Err(e) => say(&format!("cannot read lock {id} at {}: {e}", location.lock_path)),
        }
    }

    /// No log: a lock by this host created after the start is likely ours.
    async fn watch_for_lock(&mut self, since: chrono::DateTime<Utc>) {
        let Some((backend, location, stores)) = self.locate().await else { return };
        let found = self.finder(&stores, &backend).by_who_and_created(&location, &child::who(), since).await;
        if let Ok(Some(record)) = found {
            self.adopt(record).await;
        }
    }

    async fn adopt(&mut self, record: LockRecord) {
        let halves: Vec<String> = record.halves.iter().map(describe).collect();
        say(&format!(
            "following lock {} on {} ({}), heartbeat every {}",
            record.lock_id,
            record.lock_path,
            halves.join(" + "),
            humantime::format_duration(self.opts.every)
        ));
        if let Err(e) = record::write(&self.record_path, &record) {
            say(&format!("cannot write the lock record {}: {e}", self.record_path.display()));
        }
        self.held = Some(Held { record, releasing: false });
        self.heartbeat().await;
    }

    async fn heartbeat(&mut self) {
        let Some(held) = self.held.as_mut().filter(|h| !h.releasing) else { return };
        let may_restore = held.record.identified_by == IdentifiedBy::TerraformLog;
        let Some((_, stores)) = self.stores.clone() else { return };
        let now = Utc::now().timestamp();
        match beat(&stores, &mut held.record, &self.opts.beat, now, may_restore).await {
            Ok(BeatOutcome::Alive) => {}
            Ok(BeatOutcome::Restored(what)) => {
                say(&format!(
                    "WARNING: lock {} was removed while the command runs ({what}); restored it exactly as it was",
                    held.record.lock_id
                ));
                let _ = record::write(&self.record_path, &held.record);
            }
            Ok(BeatOutcome::Gone(what)) => {
                say(&format!("lock {} is no longer held ({what}); no longer following it", held.record.lock_id));
                self.held = None;
                record::remove(&self.record_path);
            }
            Ok(BeatOutcome::Conflict(text)) => {
                self.conflict = true;
                say(&format!("ERROR: another run holds the state now: {text}"));
                if self.opts.on_conflict == OnConflict::Interrupt {
                    say("interrupting the command (SIGINT) so it stops before writing state it no longer holds");
                    child::interrupt(self.pid);
                }
                // Never touch the other run's lock.
                self.held = None;
                record::remove(&self.record_path);
            }
            Err(e) => say(&format!("heartbeat of lock {} failed (will retry): {e}", held.record.lock_id)),
        }
    }

    fn on_event(&mut self, event: &LockEvent) -> Option<String> {
        match event {
            LockEvent::Locked { id, .. } => return Some(id.clone()),
            LockEvent::Unlocking { id } => {
                if let Some(h) = self.held.as_mut().filter(|h| &h.record.lock_id == id) {
                    h.releasing = true;
                }
            }
            LockEvent::Unlocked { id } => {
                if self.held.as_ref().is_some_and(|h| &h.record.lock_id == id) {
                    self.held = None;
                    record::remove(&self.record_path);
                }
            }
        }
        None
    }

    /// The command ended while the wrapper still follows a lock: release it
    /// if it is provably the command's and unchanged.
    async fn after_exit(&mut self, code: i32) {
        let Some(held) = self.held.take() else { return };
        let record = held.record;
        if record.identified_by != IdentifiedBy::TerraformLog {
            say(&format!(
                "lock {} is still held; not released automatically: it was identified by this host's user@hostname \
and its creation time, not by Terraform's log. If this job was its only holder, run `tf-lock-reaper release --lock-file {}`",
                record.lock_id,
                self.record_path.display()
            ));
            return;
        }
        let Some((_, stores)) = self.stores.clone() else { return };
        match release(&stores, &record).await {
            Ok(released) => {
                for r in released {
                    say(&format!("the command exited ({code}) holding lock {}: {}", record.lock_id, r.describe()));
                }
                record::remove(&self.record_path);
            }
            Err(e) => say(&format!(
                "the command exited ({code}) holding lock {}, and releasing it failed: {e}. Run `tf-lock-reaper release --lock-file {}`",
                record.lock_id,
                self.record_path.display()
            )),
        }
    }
}

/// Run the command under the wrapper; returns the exit code to use.
pub async fn exec(opts: ExecOptions, connect: Connect) -> std::io::Result<i32> {
    let dirs = Dirs::of(&opts.command);
    let mode = mode(&opts.command, &dirs);
    let record_path = opts.lock_file.clone().unwrap_or_else(|| record::default_path(&dirs.data));
    let started = Utc::now() - chrono::Duration::seconds(1);
    let mut env = Vec::new();
    let log_file = match &mode {
        Mode::Transparent(why) => {
            say(&format!("{why}: running the command without heartbeats"));
            None
        }
        Mode::Watch(why) => {
            say(&format!(
                "{why}: following a lock by this host's user@hostname instead; it will not be released automatically"
            ));
            None
        }
        Mode::Log => {
            let file = tempfile::Builder::new().prefix("tf-lock-reaper-log-").tempfile()?;
            env.push(("TF_LOG_CORE".to_string(), "INFO".to_string()));
            env.push(("TF_LOG_PATH".to_string(), file.path().display().to_string()));
            Some(file)
        }
    };
    let mut child = child::spawn(&opts.command, &env)?;
    let pid = child.id().unwrap_or_default();
    let forwarder = child::forward_signals(pid)?;
    if matches!(mode, Mode::Transparent(_)) {
        let status = child.wait().await?;
        forwarder.abort();
        return Ok(child::exit_code(status));
    }
    let mut follower = match &log_file {
        Some(f) => Some(LogFollower::open(f.path())?),
        None => None,
    };
    let every = opts.every;
    let mut session = Session { opts, connect, dirs, record_path, stores: None, held: None, conflict: false, pid };
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut polls: u64 = 0;
    let mut beats = tokio::time::interval(every);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = poll.tick() => {
                polls += 1;
                match follower.as_mut() {
                    Some(f) => {
                        for event in f.events().unwrap_or_default() {
                            if let Some(id) = session.on_event(&event) {
                                session.adopt_logged(&id).await;
                            }
                        }
                    }
                    // Without a log, look for the lock once a second.
                    None if session.held.is_none() && polls % 5 == 1 => session.watch_for_lock(started).await,
                    None => {}
                }
            }
            _ = beats.tick() => session.heartbeat().await,
        }
    };
    forwarder.abort();
    // What Terraform logged just before it exited (an unlock) counts.
    if let Some(f) = follower.as_mut() {
        for event in f.events().unwrap_or_default() {
            session.on_event(&event);
        }
    }
    let code = child::exit_code(status);
    session.after_exit(code).await;
    Ok(if session.conflict && code == 0 { 1 } else { code })
}
