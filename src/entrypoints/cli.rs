//! `tf-lock-reaper`, the CLI for on-call engineers and CI: its arguments and
//! its commands. Flags override the same environment variables the Lambda
//! reads; `run` is the Lambda's pass. Exit codes, decided in one place
//! ([`Status`], [`CliError::exit_code`]): 0 ok, 1 the run had errors, 2 bad
//! configuration or usage, or no AWS credentials.

use std::collections::HashMap;
use std::io::{BufRead, Write as _};

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, DoctorSettings, EntrypointDefaults, ExecSettings, MetricsSinkKind};
use crate::doctor::{doctor, DoctorTargets};
use crate::domain::decision::{Action, ActionTaken};
use crate::domain::doctor::table::TableExpectations;
use crate::domain::lock::SourceKind;
use crate::domain::report::render::{format_age, render_list, render_lock_table};
use crate::exec::holder::BeatSettings;
use crate::exec::record::{self, ReleaseStatus};
use crate::exec::{self, ExecOptions, OnConflict};
use crate::pipeline::Reaper;
use crate::support::deadline::Deadline;
use crate::wiring::{backend_stores, check_credentials, inspectors, sdk_config, Adapters, WiringError};

#[derive(Parser)]
#[command(
    name = "tf-lock-reaper",
    version,
    about = "Find, report and safely clear stale Terraform state locks",
    after_help = "Exit codes: 0 ok; 1 the run had errors (a source unreadable, a write failed, nothing unlocked); \
2 bad configuration or usage, or no AWS credentials.\n\nExamples:\n  \
tf-lock-reaper list --table terraform-state-locks\n  \
tf-lock-reaper run --table terraform-state-locks --action delete --dry-run\n  \
tf-lock-reaper unlock 2b6a2c1e-0f0d-4b5e-9f7a-3c2d1e0f9a8b --table terraform-state-locks\n  \
tf-lock-reaper exec -- terraform apply -auto-approve tfplan\n  \
tf-lock-reaper release\n  \
tf-lock-reaper doctor --table terraform-state-locks --bucket tfstate --config ."
)]
pub struct Cli {
    /// Debug logs on stderr, with the SDK's full error chains (as RUST_LOG=debug).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

const RUN_EXAMPLES: &str = "Examples:
  # What would go, without writing anything:
  tf-lock-reaper run --table terraform-state-locks --action delete --dry-run
  # One pass as the Lambda runs it, configured by the same variables:
  LOCK_TABLES=terraform-state-locks DELETE_AFTER=6h tf-lock-reaper run --action delete --no-notify
  # The full report for a script:
  tf-lock-reaper run --bucket tfstate/teams --json";

const LIST_EXAMPLES: &str = "Examples:
  tf-lock-reaper list --table terraform-state-locks
  tf-lock-reaper list --table terraform-state-locks --bucket tfstate --stale-only
  tf-lock-reaper list --bucket tfstate/teams/a --json";

const UNLOCK_EXAMPLES: &str = "Examples:
  # The ID Terraform printed in \"Error acquiring the state lock\":
  tf-lock-reaper unlock 2b6a2c1e-0f0d-4b5e-9f7a-3c2d1e0f9a8b --table terraform-state-locks
  # Both halves of a double lock, no prompt:
  tf-lock-reaper unlock 2b6a2c1e-0f0d-4b5e-9f7a-3c2d1e0f9a8b --table terraform-state-locks --bucket tfstate --yes";

const EXEC_EXAMPLES: &str = "Examples:
  tf-lock-reaper exec -- terraform apply -auto-approve tfplan
  HEARTBEAT_EVERY=15s tf-lock-reaper exec -- terraform -chdir=stacks/net apply -auto-approve
  # In CI, release what a killed job left behind (after_script / if: always()):
  tf-lock-reaper release

The command runs with the same stdin, stdout, stderr and environment; SIGINT, SIGTERM, SIGHUP
and SIGQUIT are forwarded to it, and the wrapper exits with its exit code (128 + the signal
number when a signal ended it). Send signals to the wrapper, not to its whole process group:
Terraform would get them twice, and a second SIGINT makes it cancel instead of stopping.";

const RELEASE_EXAMPLES: &str = "Examples:
  tf-lock-reaper release
  tf-lock-reaper release --lock-file stacks/net/.terraform/tf-lock-reaper.json --dry-run

Exit codes: 0 released, already gone, taken by another run (left alone) or no lock recorded;
1 an AWS call failed (the record is kept: run it again); 2 an unreadable record.";

const DOCTOR_EXAMPLES: &str = "Examples:
  tf-lock-reaper doctor --table terraform-state-locks --bucket tfstate --config .
  # Sources from LOCK_TABLES / LOCK_BUCKETS, as every command; JSON for CI:
  tf-lock-reaper doctor --config stacks --json

Exit codes: 0 nothing failed (warnings allowed); 1 a check failed; 2 bad configuration or usage.";

const COMPLETIONS_EXAMPLES: &str = "Examples:
  tf-lock-reaper completions bash > /etc/bash_completion.d/tf-lock-reaper
  tf-lock-reaper completions zsh > \"${fpath[1]}/_tf-lock-reaper\"
  tf-lock-reaper completions fish > ~/.config/fish/completions/tf-lock-reaper.fish";

/// Lock sources on the command line; when any is given they replace
/// LOCK_TABLES and LOCK_BUCKETS.
#[derive(clap::Args)]
struct SourceArgs {
    /// DynamoDB lock table (repeatable).
    #[arg(long = "table", value_name = "TABLE")]
    tables: Vec<String>,
    /// State bucket with `.tflock` lockfiles, `bucket` or `bucket/prefix` (repeatable).
    #[arg(long = "bucket", value_name = "BUCKET[/PREFIX]")]
    buckets: Vec<String>,
}

impl SourceArgs {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        if self.tables.is_empty() && self.buckets.is_empty() {
            return Vec::new();
        }
        vec![("LOCK_TABLES", self.tables.join(",")), ("LOCK_BUCKETS", self.buckets.join(","))]
    }
}

#[derive(Subcommand)]
enum Command {
    /// One reaper pass, exactly as the scheduled Lambda runs it.
    #[command(after_help = RUN_EXAMPLES)]
    Run {
        #[command(flatten)]
        sources: SourceArgs,
        /// What to do with stale locks (overrides ACTION).
        #[arg(long, value_parser = PossibleValuesParser::new(Action::ALL.map(Action::as_str)))]
        action: Option<String>,
        /// Show what would be written, write nothing (overrides DRY_RUN).
        #[arg(long)]
        dry_run: bool,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
        /// Send no SNS/PagerDuty notifications (a manual pass).
        #[arg(long)]
        no_notify: bool,
    },
    /// Every lock held, with age, who, operation and path.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        #[command(flatten)]
        sources: SourceArgs,
        /// Only locks older than their stale window.
        #[arg(long)]
        stale_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Safe force-unlock: delete the lock with this ID if it is unchanged.
    #[command(after_help = UNLOCK_EXAMPLES)]
    Unlock {
        /// The lock ID Terraform printed (Info.ID), as for `terraform force-unlock`.
        lock_id: String,
        /// Where to search: whole tables and buckets, so it works after the backend key changed.
        #[command(flatten)]
        sources: SourceArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Show the lock, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a Terraform command with its lock heartbeated, released if the
    /// command dies holding it, and recorded for `release`.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec {
        /// How often to heartbeat the lock (overrides HEARTBEAT_EVERY).
        #[arg(long, value_name = "DUR")]
        heartbeat_every: Option<String>,
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
    },
    /// Release the lock `exec` recorded, only if it is unchanged (for CI after_script).
    #[command(after_help = RELEASE_EXAMPLES)]
    Release {
        /// The record `exec` wrote (default: .terraform/tf-lock-reaper.json, or in TF_DATA_DIR, of the current
        /// directory: where `exec` ran).
        #[arg(long, value_name = "PATH")]
        lock_file: Option<std::path::PathBuf>,
        /// Show what would be released, release nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check that the backend can be trusted: lock tables, state buckets and
    /// every backend "s3" block under --config, each failure with its fix.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor {
        #[command(flatten)]
        sources: SourceArgs,
        /// A directory to search (recursively) for `backend "s3"` blocks (repeatable).
        #[arg(long = "config", value_name = "DIR")]
        config_dirs: Vec<std::path::PathBuf>,
        /// Print the checks as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConflictArg {
    Interrupt,
    Warn,
}

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Clean,
    /// Exit 1: a source was unreadable, a write failed, or nothing was done.
    HadErrors,
    /// `exec`: the wrapped command's own exit code.
    Wrapped(u8),
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Clean => 0,
            Status::HadErrors => 1,
            Status::Wrapped(code) => code,
        }
    }

    fn from_ok(ok: bool) -> Self {
        if ok {
            Status::Clean
        } else {
            Status::HadErrors
        }
    }
}

/// A command that could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// The credential chain yielded nothing: said once, before any source.
    #[error("{0}")]
    Credentials(String),
    /// The command ran and failed; the text says why and what to do.
    #[error("{0}")]
    Failed(String),
    /// An input file that cannot be used (exit 2); the text names it.
    #[error("{0}")]
    BadInput(String),
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// Exit status: 2 for bad configuration, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Credentials(_) | CliError::BadInput(_) => 2,
            CliError::Wiring(w) => w.exit_code(),
            CliError::Failed(_) | CliError::Io(_) | CliError::Json(_) => 1,
        }
    }
}

impl Cli {
    pub fn verbose(&self) -> bool {
        self.verbose
    }
}

/// Logs go to stderr, and only on request (`-v`, or `RUST_LOG`): every
/// failure is already in the command's output, once. Colours only on a
/// terminal.
pub fn init_tracing(verbose: bool) {
    use std::io::IsTerminal;
    let default = if verbose { "tf_lock_reaper=debug,aws_config=info,warn" } else { "off" };
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() && !verbose => tracing_subscriber::EnvFilter::new(directives),
        _ => tracing_subscriber::EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

/// Run one command.
pub async fn run(cli: Cli) -> Result<Status, CliError> {
    match cli.command {
        Command::Run { sources, action, dry_run, json, no_notify } => {
            let mut overrides = sources.overrides();
            if let Some(a) = action {
                overrides.push(("ACTION", a));
            }
            if dry_run {
                overrides.push(("DRY_RUN", "true".to_string()));
            }
            let config = config_with(&overrides)?;
            let sdk = sdk_with_credentials(&config).await?;
            let adapters = Adapters::for_run(&config, &sdk, !no_notify).await?;
            let report = adapters.reaper(config).run(Deadline::none()).await;
            if json {
                print_json(&report)?;
            } else {
                print!("{}", report.render_text());
            }
            Ok(Status::from_ok(report.ok))
        }
        Command::List { sources, stale_only, json } => {
            let reaper = sources_reaper(config_with(&sources.overrides())?).await?;
            let mut reports = reaper.scan().await;
            if stale_only {
                for r in &mut reports {
                    r.locks.retain(|l| l.verdict.stale);
                }
            }
            if json {
                print_json(&reports)?;
            } else {
                print!("{}", render_list(&reports));
            }
            Ok(Status::from_ok(reports.iter().all(|r| r.scan_error.is_none())))
        }
        Command::Unlock { lock_id, sources, yes, dry_run } => {
            let reaper = sources_reaper(config_with(&sources.overrides())?).await?;
            unlock(&reaper, &lock_id, yes, dry_run).await
        }
        Command::Exec { heartbeat_every, lock_file, on_conflict, command } => {
            let overrides: Vec<(&str, String)> = heartbeat_every.map(|e| ("HEARTBEAT_EVERY", e)).into_iter().collect();
            let settings = ExecSettings::from_vars(&env_with(&overrides))?;
            let opts = ExecOptions {
                command,
                beat: BeatSettings { attribute: settings.heartbeat_attribute, ttl: settings.rolling_ttl },
                every: settings.heartbeat_every,
                lock_file,
                on_conflict: match on_conflict {
                    ConflictArg::Interrupt => OnConflict::Interrupt,
                    ConflictArg::Warn => OnConflict::Warn,
                },
            };
            let program = opts.command.first().cloned().unwrap_or_default();
            let code = match exec::exec(opts, connector(settings.run_budget)).await {
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
        Command::Release { lock_file, dry_run } => {
            let settings = ExecSettings::from_vars(&env_with(&[]))?;
            let path = lock_file.unwrap_or_else(default_record_path);
            let (status, lines) = record::release_recorded(&path, dry_run, &connector(settings.run_budget))
                .await
                .map_err(|e| CliError::BadInput(e.to_string()))?;
            for line in lines {
                println!("{line}");
            }
            Ok(match status {
                ReleaseStatus::Done => Status::Clean,
                ReleaseStatus::Failed => Status::HadErrors,
            })
        }
        Command::Doctor { sources, config_dirs, json } => {
            let settings = DoctorSettings::from_vars(&env_with(&sources.overrides()))?;
            if settings.tables.is_empty() && settings.buckets.is_empty() && config_dirs.is_empty() {
                return Err(CliError::BadInput(
                    "doctor has nothing to check: give --table, --bucket or --config (or set LOCK_TABLES / LOCK_BUCKETS)"
                        .to_string(),
                ));
            }
            let sdk = sdk_config(settings.run_budget).await;
            // Only HCL to read: no AWS call, so no credentials needed.
            if !(settings.tables.is_empty() && settings.buckets.is_empty()) {
                check_credentials(&sdk).await.map_err(CliError::Credentials)?;
            }
            let (tables, buckets) = inspectors(&settings, &sdk).await;
            let targets = DoctorTargets {
                tables: &settings.tables,
                buckets: &settings.buckets,
                config_dirs: &config_dirs,
                expect: TableExpectations { ttl_attribute: &settings.ttl_attribute, ttl_written: settings.ttl_written },
            };
            let report = doctor(&targets, tables.as_ref(), buckets.as_ref()).await;
            if json {
                print_json(&report)?;
            } else {
                print!("{}", report.render_text());
            }
            Ok(Status::from_ok(report.ok))
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "tf-lock-reaper", &mut script);
            match std::io::stdout().lock().write_all(&script) {
                // A reader that stopped early (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(Status::Clean),
            }
        }
    }
}

/// `exec` and `release` reach the wrapped stack's backend through this.
fn connector(budget: std::time::Duration) -> exec::Connect {
    Box::new(move |connection| Box::pin(async move { backend_stores(&connection, budget).await }))
}

/// `.terraform/tf-lock-reaper.json`, or in `TF_DATA_DIR`.
fn default_record_path() -> std::path::PathBuf {
    let data = std::env::var("TF_DATA_DIR").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| ".terraform".into());
    record::default_path(std::path::Path::new(&data))
}

/// The full report as JSON, written straight to stdout (no second copy in
/// memory, however many locks it lists).
fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Environment plus flag overrides, parsed into a configuration.
fn config_with(overrides: &[(&str, String)]) -> Result<Config, ConfigError> {
    Config::from_vars(&env_with(overrides), EntrypointDefaults { metrics_sink: MetricsSinkKind::None })
}

/// The environment, with flag overrides on top.
fn env_with(overrides: &[(&str, String)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        vars.insert((*k).to_string(), v.clone());
    }
    vars
}

/// A reaper over the lock sources only: `list` and `unlock` send no metrics
/// or alerts.
async fn sources_reaper(config: Config) -> Result<Reaper, CliError> {
    let sdk = sdk_with_credentials(&config).await?;
    Ok(Adapters::sources_only(&config, &sdk).await.reaper(config))
}

/// The SDK configuration, once its credential chain has yielded credentials.
async fn sdk_with_credentials(config: &Config) -> Result<aws_config::SdkConfig, CliError> {
    let sdk = sdk_config(config.run_budget).await;
    check_credentials(&sdk).await.map_err(CliError::Credentials)?;
    Ok(sdk)
}

async fn unlock(reaper: &Reaper, lock_id: &str, yes: bool, dry_run: bool) -> Result<Status, CliError> {
    let mut sources = reaper.scan().await;
    let names: Vec<String> = sources.iter().map(|s| format!("{} {}", s.kind.as_str(), s.name)).collect();
    let mut unreadable = false;
    for s in sources.iter().filter(|s| s.scan_error.is_some()) {
        unreadable = true;
        eprintln!("error: cannot read {} {}: {}", s.kind.as_str(), s.name, s.scan_error.as_deref().unwrap_or_default());
    }
    let matches: Vec<_> = sources.iter().flat_map(|s| &s.locks).filter(|l| l.lock.id == lock_id).cloned().collect();
    if matches.is_empty() {
        let held: usize = sources.iter().map(|s| s.locks.len()).sum();
        return Err(CliError::Failed(format!(
            "no lock with ID {lock_id:?} in {} ({held} lock(s) held there; `tf-lock-reaper list` shows them). Digest items are never unlocked.",
            names.join(", ")
        )));
    }
    println!("{}", render_lock_table(matches.iter()).trim_end());
    for l in &matches {
        if !l.verdict.stale {
            println!(
                "WARNING: {} is only {} old, inside its {} apply window: an apply may still be running.",
                l.lock.state_path,
                format_age(l.verdict.age_seconds),
                format_age(l.verdict.window_seconds)
            );
        }
        if l.lock.kind == SourceKind::Table && l.paired_with.is_none() && unreadable {
            println!("WARNING: a bucket could not be read: if this is a double lock, its lockfile half may remain.");
        }
    }
    if dry_run {
        println!("dry run: would delete {} lock object(s); nothing written.", matches.len());
        return Ok(Status::Clean);
    }
    if !yes && !confirm(&format!("Delete {} lock object(s)? [y/N] ", matches.len()))? {
        println!("aborted: nothing deleted.");
        return Ok(Status::HadErrors);
    }
    reaper.unlock(&mut sources, lock_id).await;
    let mut failed = false;
    for l in sources.iter().flat_map(|s| &s.locks).filter(|l| l.lock.id == lock_id) {
        let what = format!("{} {} ({})", l.lock.kind.as_str(), l.lock.source, l.lock.lock_key);
        match l.action {
            ActionTaken::Deleted => println!("deleted lock {} from {what}", l.lock.id),
            _ => {
                failed = true;
                eprintln!(
                    "error: {what} not deleted: {}",
                    l.detail.as_deref().unwrap_or("lock changed or was released since it was read")
                );
            }
        }
    }
    Ok(Status::from_ok(!failed))
}

/// Ask on the terminal; anything but y/yes (including end of input) is no.
fn confirm(prompt: &str) -> Result<bool, std::io::Error> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    // Scripts and tests may answer on a pipe, so read stdin whatever it is.
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
