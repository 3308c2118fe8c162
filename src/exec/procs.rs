//! The wrapped command's process tree, read from `/proc`, and what `exec`
//! does with processes beyond its direct child: it becomes their subreaper
//! (a Terraform whose script or `make` died is re-parented to the wrapper,
//! not to init, so it is still followed), reaps those it adopted, and checks
//! whether a lock's holder still runs. The rules are in `domain::process`.

use std::path::PathBuf;

use nix::sys::signal::Signal;

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
/// the wrapper waits for it, so its PID cannot have been reused). Only
/// while the session has not waited for it: after that the PID is free.
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

/// Send `signal` to the wrapper's own child, which it has not waited for
/// (a zombie until then, so the PID is still its own); a child already
/// ended is fine.
pub(crate) fn signal_child(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Send `signal` to the process `id` names only if it still is that
/// process: PIDs wrap (32768 by default), and a Terraform that ended since
/// the tree was read may have left its PID to anyone's process. A pidfd,
/// opened before the start time is checked, keeps naming the process
/// checked. Kernels before 5.3 have no pidfd: there the check comes just
/// before `kill`, a window of microseconds. Whether the signal was sent.
pub(crate) fn signal_process(id: ProcId, signal: Signal) -> bool {
    use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};
    let (Some(pid), Some(sig)) = (Pid::from_raw(id.pid), rustix::process::Signal::from_named_raw(signal as i32)) else {
        return false;
    };
    match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => is_running(id) && pidfd_send_signal(&pidfd, sig).is_ok(),
        Err(rustix::io::Errno::NOSYS) => {
            is_running(id) && nix::sys::signal::kill(nix::unistd::Pid::from_raw(id.pid), signal).is_ok()
        }
        Err(_) => false, // gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn id_of(child: &std::process::Child) -> ProcId {
        let pid = i32::try_from(child.id()).expect("pid");
        let (_, _, _, start) = stat(pid).expect("stat");
        ProcId { pid, start }
    }

    fn ended(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn a_process_is_signalled_only_while_it_is_the_one_read() {
        let mut sleep = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let id = id_of(&sleep);
        // The same PID with another start time: a process that ended, its PID reused.
        let earlier = ProcId { start: id.start.wrapping_sub(1), ..id };
        assert!(!signal_process(earlier, Signal::SIGKILL), "another process under the same PID");
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(sleep.try_wait(), Ok(None)), "the sleep was not signalled");
        assert!(signal_process(id, Signal::SIGKILL));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(ended(&mut sleep).and_then(|s| s.signal()), Some(9));
        assert!(!signal_process(id, Signal::SIGKILL), "reaped: gone");
    }

    #[test]
    fn an_ended_unreaped_process_is_not_signalled() {
        let mut sh = std::process::Command::new("sh").args(["-c", "exit 0"]).spawn().expect("sh");
        let id = id_of(&sh);
        let start = Instant::now();
        while is_running(id) {
            assert!(start.elapsed() < Duration::from_secs(10), "sh did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!signal_process(id, Signal::SIGKILL), "a zombie is not running");
        assert!(ended(&mut sh).is_some_and(|s| s.success()));
    }
}
