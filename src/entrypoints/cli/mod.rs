//! `tf-lock-reaper`, the CLI for on-call engineers and CI: the top-level
//! arguments, the dispatch, and what every command shares. Each command
//! owns its arguments and its run function in a file of its own. Flags
//! override the same environment variables the Lambda reads; `run` is the
//! Lambda's pass. Exit codes, decided in one place ([`Status`],
//! [`CliError::exit_code`]): 0 ok, 1 the run had errors, 2 bad configuration
//! or usage, or no AWS credentials.

mod completions;
mod doctor;
mod exec;
mod explain;
mod list;
mod release;
mod run;
mod unlock;

use std::collections::HashMap;
use std::io::Write as _;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, DiscoverySettings, EntrypointDefaults, MetricsSinkKind};
use crate::domain::discovery::DiscoverySummary;
use crate::exec::Connect;
use crate::pipeline::Reaper;
use crate::wiring::{
    backend_stores, check_credentials, discover, load_config, own_lock_tables, sdk_config, Adapters, RouteClients,
    WiringError,
};

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
terraform plan 2>&1 | tf-lock-reaper explain\n  \
tf-lock-reaper doctor --table terraform-state-locks --bucket tfstate --config ."
)]
pub struct Cli {
    /// Debug logs on stderr, with the SDK's full error chains (as RUST_LOG=debug).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// Lock sources on the command line; when `--table` or `--bucket` is given
/// they replace LOCK_TABLES and LOCK_BUCKETS. The discovery flags set the
/// variables of the same names.
#[derive(clap::Args)]
struct SourceArgs {
    /// DynamoDB lock table (repeatable).
    #[arg(long = "table", value_name = "TABLE")]
    tables: Vec<String>,
    /// State bucket with `.tflock` lockfiles, `bucket` or `bucket/prefix`, with `@REGION` or
    /// `@REGION:ACCOUNT` for one in another region or account (repeatable).
    #[arg(long = "bucket", value_name = "BUCKET[/PREFIX][@REGION[:ACCOUNT]]")]
    buckets: Vec<String>,
    /// Discover lock tables in AWS Organizations accounts: `all`, or root, OU and account IDs
    /// (ORGANIZATION_ACCOUNTS).
    #[arg(long, value_name = "IDS")]
    organization_accounts: Option<String>,
    /// OU and account IDs left out of the discovery, recursively (ORGANIZATION_SKIP).
    #[arg(long, value_name = "IDS")]
    organization_skip: Option<String>,
    /// A role to read Organizations through (ORGANIZATION_ROLE_ARN).
    #[arg(long, value_name = "ARN")]
    organization_role_arn: Option<String>,
    /// The role assumed in each member account (MEMBER_ROLE_NAME).
    #[arg(long, value_name = "NAME")]
    member_role_name: Option<String>,
    /// Regions to discover in (DISCOVER_REGIONS).
    #[arg(long, value_name = "REGIONS")]
    discover_regions: Option<String>,
    /// Table name globs discovery keeps (DISCOVER_TABLES).
    #[arg(long, value_name = "GLOBS")]
    discover_tables: Option<String>,
    /// Lockfile buckets by name glob[/prefix] or tag:KEY=VALUE (DISCOVER_BUCKETS).
    #[arg(long, value_name = "ENTRIES")]
    discover_buckets: Option<String>,
    /// s3://bucket/key of a sources document (SOURCES_URI).
    #[arg(long, value_name = "S3_URI")]
    sources_uri: Option<String>,
}

impl SourceArgs {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.tables.is_empty() && self.buckets.is_empty()) {
            out.push(("LOCK_TABLES", self.tables.join(",")));
            out.push(("LOCK_BUCKETS", self.buckets.join(",")));
        }
        for (name, value) in [
            ("ORGANIZATION_ACCOUNTS", &self.organization_accounts),
            ("ORGANIZATION_SKIP", &self.organization_skip),
            ("ORGANIZATION_ROLE_ARN", &self.organization_role_arn),
            ("MEMBER_ROLE_NAME", &self.member_role_name),
            ("DISCOVER_REGIONS", &self.discover_regions),
            ("DISCOVER_TABLES", &self.discover_tables),
            ("DISCOVER_BUCKETS", &self.discover_buckets),
            ("SOURCES_URI", &self.sources_uri),
        ] {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        out
    }
}

#[derive(Subcommand)]
enum Command {
    /// One reaper pass, exactly as the scheduled Lambda runs it.
    #[command(after_help = run::EXAMPLES)]
    Run(run::RunArgs),
    /// Every lock held, with age, who, operation and path.
    #[command(after_help = list::EXAMPLES)]
    List(list::ListArgs),
    /// Safe force-unlock: delete the lock with this ID if it is unchanged.
    #[command(after_help = unlock::EXAMPLES)]
    Unlock(unlock::UnlockArgs),
    /// Run a Terraform command (directly or under a script, make or
    /// Terragrunt) with its locks heartbeated, released if the Terraform
    /// holding one dies, and recorded for `release`.
    #[command(after_help = exec::EXAMPLES)]
    Exec(exec::ExecArgs),
    /// Release the locks `exec` recorded, each only if it is unchanged (for CI after_script).
    #[command(after_help = release::EXAMPLES)]
    Release(release::ReleaseArgs),
    /// Check that the backend can be trusted: lock tables, state buckets and
    /// every backend "s3" block under --config, each failure with its fix.
    #[command(after_help = doctor::EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Explain a pasted lock error, lock item, lockfile or backend block: the
    /// locks, what is going on, the commands ranked safest first, the fixed
    /// backend block. No AWS access.
    #[command(after_help = explain::EXAMPLES)]
    Explain(explain::ExplainArgs),
    /// Print a shell completion script.
    #[command(after_help = completions::EXAMPLES)]
    Completions(completions::CompletionsArgs),
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
        Command::Run(args) => args.run().await,
        Command::List(args) => args.run().await,
        Command::Unlock(args) => args.run().await,
        Command::Exec(args) => args.run().await,
        Command::Release(args) => args.run().await,
        Command::Doctor(args) => args.run().await,
        Command::Explain(args) => args.run(),
        Command::Completions(args) => args.run(),
    }
}

/// `exec` and `release` reach the wrapped stack's backend through this.
fn connector(budget: std::time::Duration) -> Connect {
    Box::new(move |connection| Box::pin(async move { backend_stores(&connection, budget).await }))
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

/// Environment plus flag overrides, parsed into a configuration (with the
/// sources document merged in when `SOURCES_URI` names one).
async fn config_with(overrides: &[(&str, String)]) -> Result<Config, CliError> {
    Ok(load_config(&env_with(overrides), EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).await?)
}

/// The environment, with flag overrides on top.
fn env_with(overrides: &[(&str, String)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        vars.insert((*k).to_string(), v.clone());
    }
    vars
}

/// The source flags, or with no source anywhere (no `--table`/`--bucket`,
/// no `LOCK_TABLES`/`LOCK_BUCKETS`) the lock tables of this account and
/// region, found by their key schema and said on stderr: a newcomer's
/// `tf-lock-reaper list` shows every lock.
async fn sources_or_discovered(sources: &SourceArgs) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut overrides = sources.overrides();
    let vars = env_with(&overrides);
    let set = |name: &str| vars.get(name).is_some_and(|v| !v.trim().is_empty());
    if set("LOCK_TABLES") || set("LOCK_BUCKETS") || set("ORGANIZATION_ACCOUNTS") || set("SOURCES_URI") {
        return Ok(overrides);
    }
    let settings = DiscoverySettings::from_vars(&vars)?;
    let sdk = sdk_config(settings.run_budget).await;
    check_credentials(&sdk).await.map_err(CliError::Credentials)?;
    let region = sdk.region().map_or_else(|| "(no region set)".to_string(), |r| r.to_string());
    let narrowed = match settings.tables.patterns.as_slice() {
        [] => String::new(),
        globs => format!(" named {}", globs.join(" or ")),
    };
    let found = own_lock_tables(&sdk, &settings.tables).await.map_err(|e| {
        CliError::Failed(format!(
            "no source given, and looking for lock tables in {region} failed: {e}. Give --table or --bucket, or set \
             LOCK_TABLES / LOCK_BUCKETS"
        ))
    })?;
    for e in &found.errors {
        eprintln!("warning: cannot read the keys of table {e}: left out");
    }
    if found.lock_tables.is_empty() {
        return Err(CliError::BadInput(format!(
            "no source given, and no Terraform lock table{narrowed} (a table whose only key is LockID (S)) among the \
             {} table(s) in {region}: give --table or --bucket, or set LOCK_TABLES / LOCK_BUCKETS",
            found.examined + found.filtered_out
        )));
    }
    eprintln!(
        "no source given: found {}{narrowed} in {region} (tables whose only key is LockID (S)); --table or \
         LOCK_TABLES chooses",
        found.describe()
    );
    overrides.push(("LOCK_TABLES", found.lock_tables.join(",")));
    Ok(overrides)
}

/// A reaper over the lock sources only: `list` and `unlock` send no metrics
/// or alerts.
async fn sources_reaper(config: Config) -> Result<Reaper, CliError> {
    let clients = RouteClients::new(&sdk_with_credentials(&config).await?);
    let (config, discovery) = with_discovery(config, &clients).await;
    say_discovery(discovery.as_ref());
    Ok(Adapters::sources_only(&config, &clients).await.reaper(config))
}

/// What discovery found, on stderr, for the commands whose output has no
/// place for it (`list`, `unlock`, `doctor`; `run` reports it).
fn say_discovery(discovery: Option<&DiscoverySummary>) {
    if let Some(d) = discovery {
        let mut text = String::new();
        crate::domain::report::render::render_discovery(&mut text, d);
        eprint!("{text}");
    }
}

/// With `ORGANIZATION_ACCOUNTS`: the configuration with the lock tables
/// discovered across the organisation, and what discovery found.
async fn with_discovery(config: Config, clients: &RouteClients) -> (Config, Option<DiscoverySummary>) {
    match discover(&config, clients).await {
        Some(found) => (config.with_discovered(&found.tables, &found.buckets, &found.roles), Some(found.summary)),
        None => (config, None),
    }
}

/// The SDK configuration, once its credential chain has yielded credentials.
async fn sdk_with_credentials(config: &Config) -> Result<aws_config::SdkConfig, CliError> {
    let sdk = sdk_config(config.run_budget).await;
    check_credentials(&sdk).await.map_err(CliError::Credentials)?;
    Ok(sdk)
}
