//! `tf-lock-reaper`: the CLI for on-call engineers and CI. Flags override the
//! same environment variables the Lambda reads; `run` is the Lambda's pass.
//! Exit codes: 0 ok, 1 the run had errors, 2 bad configuration or usage.

use std::collections::HashMap;
use std::io::{BufRead, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tf_lock_reaper::aws;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::decide::ActionTaken;
use tf_lock_reaper::lockfiles::S3LockfileStore;
use tf_lock_reaper::metrics::{MetricsSink, NoMetrics};
use tf_lock_reaper::notify::Dispatcher;
use tf_lock_reaper::report::{format_age, render_lock_table, SourceReport};
use tf_lock_reaper::run::{Reaper, SystemClock};
use tf_lock_reaper::store::DynamoStore;

#[derive(Parser)]
#[command(name = "tf-lock-reaper", version, about = "Find, report and safely clear stale Terraform state locks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Report,
    Ttl,
    Delete,
}

#[derive(Subcommand)]
enum Command {
    /// One reaper pass, exactly as the scheduled Lambda runs it.
    Run {
        #[command(flatten)]
        sources: SourceArgs,
        /// What to do with stale locks (overrides ACTION).
        #[arg(long, value_enum)]
        action: Option<ActionArg>,
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
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Environment plus flag overrides, parsed into a configuration.
fn config_with(overrides: &[(&str, String)]) -> Result<Config, ExitCode> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        vars.insert((*k).to_string(), v.clone());
    }
    Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).map_err(|e| {
        eprint!("error: {e}");
        ExitCode::from(2)
    })
}

/// The AWS adapters the CLI uses.
struct Adapters {
    sdk: aws_config::SdkConfig,
    store: DynamoStore,
    lockfiles: S3LockfileStore,
}

impl Adapters {
    /// A reaper over these adapters; `list` and `unlock` send no metrics or alerts.
    fn reaper<'a>(&'a self, config: &'a Config, metrics: &'a dyn MetricsSink, alerts: &'a Dispatcher) -> Reaper<'a> {
        Reaper { config, store: &self.store, lockfiles: &self.lockfiles, metrics, alerts, clock: &SystemClock }
    }
}

async fn adapters() -> Adapters {
    let sdk = aws::sdk_config().await;
    Adapters {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk)),
        lockfiles: S3LockfileStore::new(aws::s3_client(&sdk)),
        sdk,
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { sources, action, dry_run, json, no_notify } => {
            let mut overrides = sources.overrides();
            if let Some(a) = action {
                let name = match a {
                    ActionArg::Report => "report",
                    ActionArg::Ttl => "ttl",
                    ActionArg::Delete => "delete",
                };
                overrides.push(("ACTION", name.to_string()));
            }
            if dry_run {
                overrides.push(("DRY_RUN", "true".to_string()));
            }
            let config = match config_with(&overrides) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let a = adapters().await;
            let metrics = aws::metrics_sink(config.metrics_sink, &a.sdk);
            let alerts = match aws::dispatcher(&config, &a.sdk, !no_notify).await {
                Ok(d) => d,
                Err(e) => {
                    eprint!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let report = a.reaper(&config, metrics.as_ref(), &alerts).run(None).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::List { sources, stale_only, json } => {
            let config = match config_with(&sources.overrides()) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let a = adapters().await;
            let alerts = Dispatcher::disabled();
            let mut reports = a.reaper(&config, &NoMetrics, &alerts).scan().await;
            if stale_only {
                for r in &mut reports {
                    r.locks.retain(|l| l.verdict.stale);
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                print!("{}", render_list(&reports));
            }
            let ok = reports.iter().all(|r| r.scan_error.is_none());
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Unlock { lock_id, sources, yes, dry_run } => {
            let config = match config_with(&sources.overrides()) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let a = adapters().await;
            let alerts = Dispatcher::disabled();
            unlock(&a.reaper(&config, &NoMetrics, &alerts), &lock_id, yes, dry_run).await
        }
    }
}

fn render_list(reports: &[SourceReport]) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.scan_error {
            out.push_str(&format!("{} {}: SCAN FAILED: {e}\n", r.kind.as_str(), r.name));
            continue;
        }
        out.push_str(&format!(
            "{} {}: {} lock(s), {} unreadable{}\n",
            r.kind.as_str(),
            r.name,
            r.locks.len(),
            r.unreadable.len(),
            r.digest_note()
        ));
        if !r.locks.is_empty() {
            out.push_str(&render_lock_table(r.locks.iter()));
        }
        for u in &r.unreadable {
            out.push_str(&format!("  UNREADABLE {}: {}\n", u.lock_key.as_deref().unwrap_or("<no LockID>"), u.reason));
        }
    }
    out
}

async fn unlock(reaper: &Reaper<'_>, lock_id: &str, yes: bool, dry_run: bool) -> anyhow::Result<ExitCode> {
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
        eprintln!(
            "error: no lock with ID {lock_id:?} in {} ({held} lock(s) held there; `tf-lock-reaper list` shows them). Digest items are never unlocked.",
            names.join(", ")
        );
        return Ok(ExitCode::from(1));
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
        if l.lock.kind == tf_lock_reaper::model::SourceKind::Table && l.paired_with.is_none() && unreadable {
            println!("WARNING: a bucket could not be read: if this is a double lock, its lockfile half may remain.");
        }
    }
    if dry_run {
        println!("dry run: would delete {} lock object(s); nothing written.", matches.len());
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm(&format!("Delete {} lock object(s)? [y/N] ", matches.len()))? {
        println!("aborted: nothing deleted.");
        return Ok(ExitCode::from(1));
    }
    reaper.release(&mut sources, lock_id).await;
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
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Ask on the terminal; anything but y/yes (including end of input) is no.
fn confirm(prompt: &str) -> anyhow::Result<bool> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    // Scripts and tests may answer on a pipe, so read stdin whatever it is.
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
