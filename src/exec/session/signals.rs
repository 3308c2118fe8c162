//! Signals the wrapper receives: who gets them (the command, every
//! Terraform below it, or the Terraform processes it orphaned).

use nix::sys::signal::Signal;

use crate::domain::process::{keyboard_signal_targets, Process};
use crate::exec::child;
use crate::exec::procs;
use crate::exec::session::Session;

impl Session {
    /// A signal the wrapper received: who gets it.
    pub(super) fn forward(&mut self, sig: Signal) {
        if child::from_keyboard(sig) {
            return;
        }
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
                procs::signal_child(self.child_pid, sig);
                let child = i32::try_from(self.child_pid).unwrap_or(i32::MAX);
                for id in keyboard_signal_targets(&tree, child) {
                    procs::signal_process(id, sig);
                }
            }
            _ => {
                procs::signal_child(self.child_pid, sig);
                self.forwarded = Some(sig);
            }
        }
    }

    /// The command ended while Terraform processes it started still run
    /// (re-parented to the wrapper): a SIGTERM or SIGHUP that ended the
    /// command (a shell does not pass it on) reaches them once.
    pub(super) fn signal_orphans(&mut self) {
        let Some(sig) = self.forwarded else { return };
        self.refresh_tree();
        for p in self.tree.iter().filter(|p| p.running && p.is_terraform()) {
            if self.orphans_signalled.insert(p.id) {
                procs::signal_process(p.id, sig);
            }
        }
    }
}
