//! `tf-lock-reaper exec -- <command>`: run Terraform, directly or under a
//! script, `make` or Terragrunt, and make the liveness of every lock it
//! takes a fact. The wrapper learns which locks are the command's from
//! Terraform's own log (1.6 and later name the lock ID), finds the backend
//! of each in the data directory of the Terraform process that took it,
//! heartbeats it, restores it if someone removed it while Terraform still
//! runs, releases it the moment the process holding it dies, and records
//! them all for a CI `release`. Where no log names the lock (Terraform ≤ 1.5,
//! OpenTofu, a `TF_LOG` of the user's without a file) it says so and runs in
//! watch mode: a lock by this host taken after the start is heartbeated, but
//! never released automatically. `release` lives here too.
//!
//! When a Terraform below it is blocked by another run's lock whose holder
//! heartbeated and then went silent past its liveness contract, it
//! releases that lock, so `-lock-timeout` takes the state.
//!
//! Rooms: `session` (the wrapper's state while the command runs: lines,
//! pending and followed locks, holders, blockers, signals), `holder` (the
//! command's lock, over the ports), `blocker` (another run's lock in the
//! way, over the ports), `follow` (the log file), `procs` (the process tree in
//! `/proc`), `backends` (where a lock's backend is), `child` (the command,
//! signals), `record` (the record file and `release`).

pub(crate) mod backends;
pub(crate) mod blocker;
pub(crate) mod child;
pub(crate) mod follow;
pub(crate) mod holder;
mod options;
pub(crate) mod procs;
pub(crate) mod record;
mod session;

pub(crate) use options::{Connect, ExecOptions, OnConflict};

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::domain::process::{chdir_arg, data_dir_name, is_chdir_arg, is_terraform_name};
use crate::exec::follow::LogFollower;
use crate::exec::options::say;
use crate::exec::session::Session;

/// Terraform subcommands that never lock state.
const NEVER_LOCKS: [&str; 12] =
    ["fmt", "validate", "version", "-version", "--version", "-v", "help", "-help", "--help", "get", "login", "logout"];

/// Where the wrapper reads Terraform's lines about its locks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogSource {
    /// The wrapper's own file: `TF_LOG_CORE=INFO`, `TF_LOG_PATH=<temp file>`.
    Private,
    /// The user set `TF_LOG` and `TF_LOG_PATH`: their file.
    Users(PathBuf),
    /// No log to read.
    Unreadable,
}

/// How the wrapper follows the command's locks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Run it, touch nothing; the text says why.
    Transparent(String),
    /// Follow the locks the log names; with a reason, watch mode from the start.
    Follow { log: LogSource, watch: Option<String> },
}

/// The program's file name and, for Terraform, its subcommand.
fn program_and_subcommand(command: &[String]) -> (String, Option<String>) {
    let program = command.first().map(|p| Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()));
    let program = program.flatten().unwrap_or_default();
    let sub = is_terraform_name(&program).then(|| command.iter().skip(1).find(|a| !is_chdir_arg(a)).cloned()).flatten();
    (program, sub)
}

/// Decide from the command and the environment how to follow its locks.
fn plan(command: &[String], var: impl Fn(&str) -> Option<String>) -> Plan {
    let (program, sub) = program_and_subcommand(command);
    if let Some(sub) = sub.as_deref().filter(|s| NEVER_LOCKS.contains(s)) {
        return Plan::Transparent(format!("`{program} {sub}` never locks state"));
    }
    let tofu = program.starts_with("tofu").then(|| "OpenTofu does not log the ID of the lock it takes".to_string());
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let users_level = set("TF_LOG").map(|l| ("TF_LOG", l)).or_else(|| set("TF_LOG_CORE").map(|l| ("TF_LOG_CORE", l)));
    let Some((name, level)) = users_level else { return Plan::Follow { log: LogSource::Private, watch: tofu } };
    let hides_info = matches!(level.trim().to_ascii_lowercase().as_str(), "warn" | "error" | "off");
    match set("TF_LOG_PATH") {
        Some(path) if !hides_info => Plan::Follow { log: LogSource::Users(PathBuf::from(path)), watch: tofu },
        Some(_) => Plan::Follow {
            log: LogSource::Unreadable,
            watch: Some(format!("your {name}={level} leaves out the INFO lines in which Terraform names its lock")),
        },
        None => Plan::Follow {
            log: LogSource::Unreadable,
            watch: Some(format!(
                "your {name} is set without TF_LOG_PATH, so Terraform logs to the terminal, where the wrapper \
                    cannot read"
            )),
        },
    }
}

/// Where the record goes: `.terraform/tf-lock-reaper.json` (or in
/// `TF_DATA_DIR`) of the directory `exec` runs in, or of `-chdir` when the
/// command is Terraform itself. `release` (no command) looks in the same
/// place when run from the same directory.
pub(crate) fn default_record_path(command: &[String], tf_data_dir: Option<&str>) -> PathBuf {
    let (program, _) = program_and_subcommand(command);
    let chdir = is_terraform_name(&program).then(|| chdir_arg(command.get(1..).unwrap_or_default())).flatten();
    let data = data_dir_name(tf_data_dir);
    record::default_path(&chdir.map_or_else(|| PathBuf::from(data), |dir| Path::new(dir).join(data)))
}

/// Run the command under the wrapper; returns the exit code to use.
pub(crate) async fn run(opts: ExecOptions, connect: Connect) -> std::io::Result<i32> {
    let var = |name: &str| std::env::var(name).ok();
    let plan = plan(&opts.command, var);
    let record_path = opts
        .lock_file
        .clone()
        .unwrap_or_else(|| default_record_path(&opts.command, std::env::var("TF_DATA_DIR").ok().as_deref()));
    let since = Utc::now() - chrono::Duration::seconds(1);
    let (log, watch) = match plan {
        Plan::Transparent(why) => {
            say(&format!("{why}: running the command without heartbeats"));
            return run_transparently(&opts.command).await;
        }
        Plan::Follow { log, watch } => (log, watch),
    };
    if let Some(index) = &opts.job_records {
        // Before the command runs, so a job killed at any moment after can
        // still find the record; a failure costs only `release --job`.
        if let Err(e) = record::register(index, &record_path) {
            say(&format!(
                "cannot note the lock record in TF_LOCK_REAPER_JOB_RECORDS={} ({e}): `release --job` will not find \
                 it; `release` from this directory still does",
                index.display()
            ));
        }
    }
    let mut env = Vec::new();
    let private = match &log {
        LogSource::Private => {
            let file = tempfile::Builder::new().prefix("tf-lock-reaper-log-").tempfile()?;
            env.push(("TF_LOG_CORE".to_string(), "INFO".to_string()));
            env.push(("TF_LOG_PATH".to_string(), file.path().display().to_string()));
            Some(file)
        }
        _ => None,
    };
    let follower = match (&log, &private) {
        (LogSource::Private, Some(file)) => Some(LogFollower::private(file.path())?),
        (LogSource::Users(path), _) => Some(LogFollower::users(path)),
        _ => None,
    };
    procs::become_subreaper();
    let child = child::spawn(&opts.command, &env)?;
    let start_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let session = Session::new(opts, connect, record_path, child.id().unwrap_or_default(), since, start_dir);
    session.run(child, follower, watch).await
}

/// A command that never locks: run it, forward signals, nothing else.
async fn run_transparently(command: &[String]) -> std::io::Result<i32> {
    let mut child = child::spawn(command, &[])?;
    let pid = child.id().unwrap_or_default();
    let (task, mut signals) = child::receive_signals()?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            Some(sig) = signals.recv() => if !child::from_keyboard(sig) {
                procs::signal_child(pid, sig);
            },
        }
    };
    task.abort();
    Ok(child::exit_code(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn plan_with(command: &[&str], env: &[(&str, &str)]) -> Plan {
        let env: std::collections::HashMap<String, String> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        plan(&args(command), |k| env.get(k).cloned())
    }

    #[test]
    fn commands_that_never_lock_run_transparently() {
        assert!(matches!(plan_with(&["terraform", "fmt", "-check"], &[]), Plan::Transparent(_)));
        assert!(matches!(plan_with(&["terraform", "-chdir=x", "validate"], &[]), Plan::Transparent(_)));
        assert!(matches!(plan_with(&["/usr/bin/terraform-1.9.8", "version"], &[]), Plan::Transparent(_)));
    }

    #[test]
    fn wrappers_get_the_private_log_whatever_their_directory() {
        for command in
            [&["./deploy.sh"][..], &["make", "apply"], &["terragrunt", "run-all", "apply"], &["terraform", "apply"]]
        {
            assert_eq!(plan_with(command, &[]), Plan::Follow { log: LogSource::Private, watch: None }, "{command:?}");
        }
        // TF_LOG_PATH alone makes Terraform log nothing: the wrapper's own log it is.
        assert_eq!(
            plan_with(&["terraform", "apply"], &[("TF_LOG_PATH", "/tmp/x")]),
            Plan::Follow { log: LogSource::Private, watch: None }
        );
    }

    #[test]
    fn a_users_own_log_is_read_or_watch_mode_says_why() {
        let mine = plan_with(&["terraform", "apply"], &[("TF_LOG", "INFO"), ("TF_LOG_PATH", "/tmp/mine.log")]);
        assert_eq!(mine, Plan::Follow { log: LogSource::Users("/tmp/mine.log".into()), watch: None });
        let json = plan_with(&["terraform", "apply"], &[("TF_LOG", "json"), ("TF_LOG_PATH", "/tmp/j")]);
        assert_eq!(json, Plan::Follow { log: LogSource::Users("/tmp/j".into()), watch: None });
        let Plan::Follow { log, watch: Some(why) } = plan_with(&["terraform", "apply"], &[("TF_LOG", "DEBUG")]) else {
            panic!()
        };
        assert_eq!(log, LogSource::Unreadable);
        assert!(why.contains("TF_LOG is set without TF_LOG_PATH"), "{why}");
        let Plan::Follow { watch: Some(why), .. } =
            plan_with(&["terraform", "apply"], &[("TF_LOG_CORE", "WARN"), ("TF_LOG_PATH", "/tmp/x")])
        else {
            panic!()
        };
        assert!(why.contains("TF_LOG_CORE=WARN leaves out the INFO lines"), "{why}");
        let Plan::Follow { watch: Some(why), .. } = plan_with(&["tofu", "apply"], &[]) else { panic!() };
        assert!(why.contains("OpenTofu"), "{why}");
    }

    #[test]
    fn the_record_is_where_release_looks() {
        assert_eq!(default_record_path(&args(&["./deploy.sh"]), None), PathBuf::from(".terraform/tf-lock-reaper.json"));
        assert_eq!(default_record_path(&[], Some("data")), PathBuf::from("data/tf-lock-reaper.json"), "release's");
        assert_eq!(
            default_record_path(&args(&["terraform", "-chdir=stacks/net", "apply"]), Some("data")),
            PathBuf::from("stacks/net/data/tf-lock-reaper.json")
        );
        assert_eq!(
            default_record_path(&args(&["make", "-chdir=x"]), None),
            PathBuf::from(".terraform/tf-lock-reaper.json"),
            "-chdir means something only to Terraform"
        );
    }
}
