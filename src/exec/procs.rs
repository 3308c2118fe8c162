//! The wrapped command's process tree, read from `/proc`, and what `exec`
//! does with processes beyond its direct child: it becomes their subreaper
//! (a Terraform whose script or `make` died is re-parented to the wrapper,
//! not to init, so it is still followed), reaps those it adopted, and checks
//! whether a lock's holder still runs. The rules are in `domain::process`.

use std::path::PathBuf;

use crate::domain::process::{descendants, parse_stat, ProcId, Process};

/// `/proc/<pid>/stat`, parsed.
fn stat(pid: i32) -> Option<(i32, bool, i32, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process below `root`, with its command line, working directory
/// and the Terraform variables of its environment. Processes of other
/// users, or gone while being read, are skipped or read partly.
pub(crate) fn tree(root: u32) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let all: Vec<Process> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .map(|(pid, running, ppid, start)| Process {
            id: ProcId { pid, start },
            ppid,
            running,
            exe: None,
            argv: Vec::new(),
            cwd: None,
            data_dir: None,
            workspace: None,
            cli_args_env: Vec::new(),
        })
        .collect();
    let root = i32::try_from(root).unwrap_or(i32::MAX);
    descendants(&all, root).into_iter().cloned().map(with_details).collect()
}

fn with_details(mut p: Process) -> Process {
    let dir = PathBuf::from(format!("/proc/{}", p.id.pid));
    p.exe = std::fs::read_link(dir.join("exe")).ok();
    p.cwd = std::fs::read_link(dir.join("cwd")).ok();
    let nul_separated = |name: &str| -> Vec<String> {
        std::fs::read(dir.join(name))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    p.argv = nul_separated("cmdline");
    for var in nul_separated("environ") {
        if let Some(v) = var.strip_prefix("TF_DATA_DIR=") {
            p.data_dir = Some(v.to_string());
        } else if let Some(v) = var.strip_prefix("TF_WORKSPACE=") {
            p.workspace = Some(v.to_string());
        } else if let Some((_, v)) = var.split_once('=').filter(|(k, _)| k.starts_with("TF_CLI_ARGS")) {
            p.cli_args_env.push(v.to_string());
        }
    }
    p
}

/// The process still runs (not ended, not a zombie, PID not reused).
pub(crate) fn is_running(id: ProcId) -> bool {
    stat(id.pid).is_some_and(|(_, running, _, start)| running && start == id.start)
}

/// The wrapper's own child still runs (an ended one stays a zombie until
/// the wrapper waits for it, so its PID cannot have been reused).
pub(crate) fn child_running(pid: u32) -> bool {
    i32::try_from(pid).ok().and_then(stat).is_some_and(|(_, running, _, _)| running)
}

/// Orphans below the wrapper are re-parented to it instead of init.
pub(crate) fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!(error = %e, "cannot become a child subreaper; orphaned Terraform processes go to init");
    }
}

/// Reap the orphans the wrapper adopted that ended (never the direct
/// child: tokio waits for that one).
pub(crate) fn reap_adopted(tree: &[Process], child: u32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let own = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    for p in tree.iter().filter(|p| !p.running && p.ppid == own && u32::try_from(p.id.pid).ok() != Some(child)) {
        let _ = waitpid(nix::unistd::Pid::from_raw(p.id.pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Send `signal` to `pid`; a process already gone is fine.
pub(crate) fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}
