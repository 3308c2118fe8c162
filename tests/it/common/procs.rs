//! Signalling the tests' own processes without ever naming another's.
//!
//! PIDs wrap here (`pid_max` is 32768) while the suite starts thousands of
//! processes, so a PID the test read or reaped earlier may already belong
//! to something else: a SIGKILL sent to it once crashed the browser of the
//! web test running beside. So a job's group is signalled only while its
//! leader is unreaped (a zombie still holds its PID, and so the group's
//! ID), and a PID read from a file or `ps` only through a pidfd opened
//! first and checked to be the process meant.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tf_lock_reaper::domain::process::parse_stat;

/// A job started in a process group of its own, as a CI runner's job.
/// Its leader is reaped only by [`Group::kill`] (or on drop), after the
/// group has been signalled.
pub struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    pub fn spawn(cmd: &mut Command, what: &str) -> Group {
        let child = cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        Group { child, reaped: false }
    }

    /// The leader's PID, which is also the group's ID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// How the leader ended, if it has, seen without reaping it.
    pub fn ended(&self) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.pid()), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(ExitStatus::from_raw(signal as i32)),
            _ => None,
        }
    }

    /// Send `signal` to the leader alone (it cannot have been reaped).
    pub fn signal_leader(&self, signal: Signal) {
        if !self.reaped {
            let _ = nix::sys::signal::kill(self.pid(), signal);
        }
    }

    /// SIGKILL the whole group, as an OOM kill or a spot termination
    /// would, then reap the leader. Once only: after the reap the ID is free.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
        self.reaped = true;
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("a PID fits an i32"))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send `signal` to `pid` if it is still the process `is_it` says it is
/// (given its `/proc/<pid>` directory). The pidfd, opened before the
/// check, keeps naming that process even if it ends and the PID is reused.
pub fn signal_if(pid: u32, signal: Signal, is_it: impl Fn(&Path) -> bool) -> bool {
    let Some(target) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    let Ok(pidfd) = rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()) else {
        return false; // already gone
    };
    let Some(signal) = rustix::process::Signal::from_named_raw(signal as i32) else { return false };
    is_it(&Path::new("/proc").join(pid.to_string())) && rustix::process::pidfd_send_signal(&pidfd, signal).is_ok()
}

/// The process's command line, its arguments joined by spaces.
pub fn cmdline(proc_dir: &Path) -> String {
    std::fs::read(proc_dir.join("cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

/// End the `sleep` a stack's hanging provisioner started (Terraform runs it
/// in a group of its own, so killing the job's group leaves it), as
/// recorded in `<dir>/hang.pid`: only while that PID is still a `sleep`
/// running in `dir`.
pub fn end_hang(dir: &Path) {
    let Some(pid) = std::fs::read_to_string(dir.join("hang.pid")).ok().and_then(|p| p.trim().parse().ok()) else {
        return; // never started, or the file is still being written
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    signal_if(pid, Signal::SIGKILL, |proc_dir| {
        cmdline(proc_dir).starts_with("sleep ") && std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd == dir)
    });
}

/// The parent PID in `/proc/<pid>/stat`, read as `exec` reads it.
pub fn parent(proc_dir: &Path) -> Option<u32> {
    let (_, _, ppid, _) = parse_stat(&std::fs::read_to_string(proc_dir.join("stat")).ok()?)?;
    u32::try_from(ppid).ok()
}

/// Send `signal` to a Terraform process found with `ps` or `pgrep`, if that
/// PID still runs Terraform.
pub fn signal_terraform(pid: u32, signal: Signal) {
    signal_if(pid, signal, |proc_dir| cmdline(proc_dir).contains("terraform"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    #[test]
    fn an_ended_leader_stays_unreaped_until_killed_so_its_id_stays_ours() {
        let mut job = Group::spawn(Command::new("sh").args(["-c", "exit 3"]), "sh");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = job.ended() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "sh did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(job.ended().and_then(|s| s.code()), Some(3), "asking again still sees it");
        let pid = job.id();
        assert_eq!(state(pid), Some('Z'), "a zombie holds the PID");
        job.kill();
        assert_eq!(job.ended(), None);
        assert_ne!(state(pid), Some('Z'), "reaped once killed");
    }

    #[test]
    fn a_pid_that_is_not_the_process_meant_is_not_signalled() {
        let mut other = Group::spawn(Command::new("sleep").arg("30"), "sleep");
        let pid = other.id();
        assert!(!signal_if(pid, Signal::SIGKILL, |dir| cmdline(dir).starts_with("terraform ")), "not Terraform");
        std::thread::sleep(Duration::from_millis(100));
        assert!(other.ended().is_none(), "the sleep still runs");
        assert!(signal_if(pid, Signal::SIGKILL, |dir| cmdline(dir).starts_with("sleep 30")));
        let start = Instant::now();
        while other.ended().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "the sleep was not killed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(other.ended().and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)), Some(9));
        other.kill();
    }
}
