//! `tf-lock-reaper exec -- <command>`: the command under the wrapper
//! (`crate::exec`), its exit code ours.

use crate::config::ExecSettings;
use crate::entrypoints::cli::{connector, env_with, CliError, Status};
use crate::exec::holder::BeatSettings;
use crate::exec::{ExecOptions, OnConflict};

pub(super) const EXAMPLES: &str = "Examples:
  tf-lock-reaper exec -- terraform apply -auto-approve tfplan
  tf-lock-reaper exec --heartbeat-timeout 2m -- terraform -chdir=stacks/net apply -auto-approve
  # In CI, wait for a dead runner's lock to be released instead of failing at once:
  tf-lock-reaper exec -- terraform apply -lock-timeout=3m -auto-approve tfplan
  # In CI, release what a killed job left behind (after_script / if: always()):
  tf-lock-reaper release

The command may be Terraform, a script, make or Terragrunt: every lock a Terraform process
below it takes is followed. It runs with the same stdin, stdout, stderr and environment;
SIGTERM and SIGHUP are forwarded to it (and to a Terraform it orphaned), SIGINT and SIGQUIT to
it and to every Terraform below it, once each, as a terminal does; the wrapper exits with the
command's exit code (128 + the signal number when a signal ended it). Send signals to the
wrapper, not to its whole process group: Terraform would get them twice, and a second SIGINT
makes it cancel instead of stopping. The locks are recorded in .terraform/tf-lock-reaper.json
of the directory exec runs in (of DIR with `terraform -chdir=DIR`), where `release` looks.";

#[derive(clap::Args)]
pub(super) struct ExecArgs {
    /// How often to heartbeat the lock (overrides HEARTBEAT_EVERY; default 15s in CI, 30s on a terminal).
    #[arg(long, value_name = "DUR")]
    heartbeat_every: Option<String>,
    /// The liveness contract written on the lock: after this much silence the run counts as dead, and
    /// the next job or the reaper releases its lock (overrides HEARTBEAT_TIMEOUT; default 90s in CI, 10m
    /// on a terminal).
    #[arg(long, value_name = "DUR")]
    heartbeat_timeout: Option<String>,
    /// Where to record the command's locks (default: .terraform/tf-lock-reaper.json, or in TF_DATA_DIR, of
    /// the directory exec runs in; of -chdir when the command is `terraform -chdir=DIR`). `release` run
    /// from the same directory finds it.
    #[arg(long, value_name = "PATH")]
    lock_file: Option<std::path::PathBuf>,
    /// When another run takes the state while the command runs: interrupt it (SIGINT), or only warn.
    #[arg(long, value_enum, default_value = "interrupt")]
    on_conflict: ConflictArg,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConflictArg {
    Interrupt,
    Warn,
}

impl ExecArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        let overrides: Vec<(&str, String)> =
            [("HEARTBEAT_EVERY", self.heartbeat_every), ("HEARTBEAT_TIMEOUT", self.heartbeat_timeout)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect();
        let settings = ExecSettings::from_vars(&env_with(&overrides))?;
        let opts = ExecOptions {
            command: self.command,
            beat: BeatSettings {
                attribute: settings.heartbeat_attribute,
                timeout: settings.heartbeat_timeout,
                ttl: settings.rolling_ttl,
            },
            every: settings.heartbeat_every,
            judge: settings.judge,
            ci: settings.ci,
            lock_file: self.lock_file,
            job_records: settings.job_records,
            clock: std::sync::Arc::new(crate::wiring::aws_clock()),
            on_conflict: match self.on_conflict {
                ConflictArg::Interrupt => OnConflict::Interrupt,
                ConflictArg::Warn => OnConflict::Warn,
            },
        };
        let program = opts.command.first().cloned().unwrap_or_default();
        let code = match crate::exec::run(opts, connector(settings.run_budget)).await {
            Ok(code) => code,
            // As shells do: 127 not found, 126 not executable.
            Err(e) => {
                let code = match e.kind() {
                    std::io::ErrorKind::NotFound => 127,
                    std::io::ErrorKind::PermissionDenied => 126,
                    _ => 1,
                };
                eprintln!(
                    "error: cannot run {program:?}: {e} (check the program name, PATH and that it is executable)"
                );
                code
            }
        };
        Ok(Status::Wrapped(u8::try_from(code).unwrap_or(1)))
    }
}
