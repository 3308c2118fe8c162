//! The wrapped command: started with the wrapper's stdin, stdout, stderr
//! and environment (plus what `exec` adds), in the wrapper's process group,
//! the wrapper's signals received for forwarding, and its exit status
//! turned into ours.

use std::process::ExitStatus;

use nix::sys::signal::Signal;

/// The signals forwarded to the command: on its first SIGINT or SIGTERM
/// Terraform stops gracefully and releases its lock.
const FORWARDED: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

/// Start the command.
pub(crate) fn spawn(command: &[String], env: &[(String, String)]) -> std::io::Result<tokio::process::Child> {
    let (program, args) = command.split_first().ok_or_else(|| std::io::Error::other("no command given"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn()
}

/// The signals the wrapper receives, from now until the task is aborted;
/// `exec` decides who gets each (`domain::process`).
pub(crate) fn receive_signals(
) -> std::io::Result<(tokio::task::JoinHandle<()>, tokio::sync::mpsc::UnboundedReceiver<Signal>)> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut streams = Vec::new();
    for sig in FORWARDED {
        streams.push((sig, signal(SignalKind::from_raw(sig as i32))?));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let received = futures::future::select_all(
                streams.iter_mut().map(|(sig, s)| Box::pin(async move { s.recv().await.map(|_| *sig) })),
            )
            .await
            .0;
            let Some(sig) = received else { return };
            if tx.send(sig).is_err() {
                return;
            }
        }
    });
    Ok((task, rx))
}

/// Keyboard signals (Ctrl-C, Ctrl-\) already reach every process of the
/// terminal's foreground group, the command's included, when the wrapper
/// is that group: those are not sent a second time, as a second SIGINT
/// makes Terraform cancel instead of stopping gracefully.
pub(crate) fn from_keyboard(sig: Signal) -> bool {
    matches!(sig, Signal::SIGINT | Signal::SIGQUIT) && keyboard_reaches_child()
}

/// The wrapper (and so the command) is the terminal's foreground job.
fn keyboard_reaches_child() -> bool {
    let stdin = std::io::stdin();
    nix::unistd::tcgetpgrp(&stdin).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

/// The command's exit code; 128 + the signal number when a signal ended it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

/// `user@hostname`, as Terraform writes `Who`.
pub(crate) fn who() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name).unwrap_or_default();
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
    format!("{user}@{host}")
}
