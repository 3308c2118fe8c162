//! `tf-lock-reaper`: the CLI for on-call engineers and CI. Flags override the
//! same environment variables the Lambda reads; `run` is the Lambda's pass.
//! Exit codes: 0 ok, 1 the run had errors, 2 bad configuration or usage.

use std::collections::HashMap;
use std::io::{BufRead, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::notify::Dispatcher;
use tf_lock_reaper::report::{format_age, render_lock_table, TableReport};
use tf_lock_reaper::run::{Reaper, SystemClock};
use tf_lock_reaper::store::{DynamoStore, LockStore, WriteOutcome};
use tf_lock_reaper::{aws, metrics::NoMetrics};

#[derive(Parser)]
#[command(name = "tf-lock-reaper", version, about = "Find, report and safely clear stale Terraform state locks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Lock table to scan (repeatable; overrides LOCK_TABLES).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
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
        /// Lock table to scan (repeatable; overrides LOCK_TABLES).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
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
        /// The lock table to search (the whole table, so it works after the backend key changed).
        #[arg(long, value_name = "TABLE")]
        table: String,
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

fn table_override(tables: &[String]) -> Vec<(&'static str, String)> {
    if tables.is_empty() {
        Vec::new()
    } else {
        vec![("LOCK_TABLES", tables.join(","))]
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { tables, action, dry_run, json, no_notify } => {
            let mut overrides = table_override(&tables);
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
            let sdk = aws::sdk_config().await;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk));
            let metrics = aws::metrics_sink(config.metrics_sink, &sdk);
            let alerts = match aws::dispatcher(&config, &sdk, !no_notify).await {
                Ok(d) => d,
                Err(e) => {
                    eprint!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let reaper = Reaper {
                config: &config,
                store: &store,
                metrics: metrics.as_ref(),
                alerts: &alerts,
                clock: &SystemClock,
            };
            let report = reaper.run(None).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::List { tables, stale_only, json } => {
            let config = match config_with(&table_override(&tables)) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let sdk = aws::sdk_config().await;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk));
            let reaper = Reaper {
                config: &config,
                store: &store,
                metrics: &NoMetrics,
                alerts: &Dispatcher::disabled(),
                clock: &SystemClock,
            };
            let mut reports = reaper.scan().await;
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
        Command::Unlock { lock_id, table, yes, dry_run } => {
            let config = match config_with(&[("LOCK_TABLES", table.clone())]) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let sdk = aws::sdk_config().await;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk));
            unlock(&config, &store, &lock_id, &table, yes, dry_run).await
        }
    }
}

fn render_list(reports: &[TableReport]) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.scan_error {
            out.push_str(&format!("table {}: SCAN FAILED: {e}\n", r.table));
            continue;
        }
        out.push_str(&format!(
            "table {}: {} lock(s), {} unreadable, {} digest(s)\n",
            r.table,
            r.locks.len(),
            r.unreadable.len(),
            r.counts.digests
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

async fn unlock(
    config: &Config,
    store: &dyn LockStore,
    lock_id: &str,
    table: &str,
    yes: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let reaper = Reaper { config, store, metrics: &NoMetrics, alerts: &Dispatcher::disabled(), clock: &SystemClock };
    let mut reports = reaper.scan().await;
    let Some(report) = reports.pop() else {
        return Ok(ExitCode::from(1));
    };
    if let Some(e) = &report.scan_error {
        eprintln!("error: cannot read lock table {table}: {e}");
        return Ok(ExitCode::from(1));
    }
    let matches: Vec<_> = report.locks.iter().filter(|l| l.lock.id == lock_id).collect();
    if matches.is_empty() {
        eprintln!(
            "error: no lock with ID {lock_id:?} in table {table} ({} lock(s) held there; `tf-lock-reaper list --table {table}` shows them). Digest items are never unlocked.",
            report.locks.len()
        );
        return Ok(ExitCode::from(1));
    }
    println!("{}", render_lock_table(matches.iter().copied()).trim_end());
    for l in &matches {
        if !l.verdict.stale {
            println!(
                "WARNING: {} is only {} old, inside its {} apply window: an apply may still be running.",
                l.lock.lock_key,
                format_age(l.verdict.age_seconds),
                format_age(l.verdict.window_seconds)
            );
        }
    }
    if dry_run {
        println!("dry run: would delete {} lock item(s) from {table}; nothing written.", matches.len());
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm(&format!("Delete {} lock item(s) from {table}? [y/N] ", matches.len()))? {
        println!("aborted: nothing deleted.");
        return Ok(ExitCode::from(1));
    }
    let mut failed = false;
    for l in matches {
        match store.delete_lock(table, &l.lock.lock_key, &l.lock.raw_info).await {
            Ok(WriteOutcome::Done) => println!("deleted lock {} ({})", l.lock.id, l.lock.lock_key),
            Ok(WriteOutcome::Changed) => {
                failed = true;
                eprintln!("error: lock {} changed or was released since it was read; not deleted", l.lock.lock_key);
            }
            Err(e) => {
                failed = true;
                eprintln!("error: deleting {} failed: {e}", l.lock.lock_key);
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
    let stdin = std::io::stdin();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
