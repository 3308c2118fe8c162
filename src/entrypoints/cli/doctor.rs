//! `tf-lock-reaper doctor`: can this backend be trusted? (`crate::doctor`)

use crate::config::DoctorSettings;
use crate::doctor::DoctorTargets;
use crate::domain::health::table::TableExpectations;
use crate::entrypoints::cli::{
    config_with, env_with, print_json, say_discovery, sources_or_discovered, with_discovery, CliError, SourceArgs,
    Status,
};
use crate::wiring::{check_credentials, inspectors, sdk_config, RouteClients};

pub(super) const EXAMPLES: &str = "Examples:
  tf-lock-reaper doctor --table terraform-state-locks --bucket tfstate --config .
  # Sources from LOCK_TABLES / LOCK_BUCKETS, as every command; JSON for CI:
  tf-lock-reaper doctor --config stacks --json

Exit codes: 0 nothing failed (warnings allowed); 1 a check failed; 2 bad configuration or usage.";

#[derive(clap::Args)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// A directory to search (recursively) for `backend "s3"` blocks (repeatable).
    #[arg(long = "config", value_name = "DIR")]
    config_dirs: Vec<std::path::PathBuf>,
    /// Print the checks as one JSON document.
    #[arg(long)]
    json: bool,
}

impl DoctorArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        // Backend blocks alone need no AWS call; with nothing at all, look for the lock tables here.
        let overrides = if self.config_dirs.is_empty() {
            sources_or_discovered(&self.sources).await?
        } else {
            self.sources.overrides()
        };
        let vars = env_with(&overrides);
        let mut settings = DoctorSettings::from_vars(&vars)?;
        let sdk = sdk_config(settings.run_budget).await;
        let clients = RouteClients::new(&sdk);
        // Sources from a document or discovered across the organisation: checked like listed ones.
        let set = |name: &str| vars.get(name).is_some_and(|v| !v.trim().is_empty());
        if set("SOURCES_URI") || set("ORGANIZATION_ACCOUNTS") {
            check_credentials(&sdk).await.map_err(CliError::Credentials)?;
            let config = config_with(&overrides).await?;
            let (config, discovery) = with_discovery(config, &clients).await;
            say_discovery(discovery.as_ref());
            settings.tables = config.tables;
            settings.buckets = config.buckets;
            settings.assume_roles = config.assume_roles;
        }
        // Only HCL to read: no AWS call, so no credentials needed.
        if !(settings.tables.is_empty() && settings.buckets.is_empty()) {
            check_credentials(&sdk).await.map_err(CliError::Credentials)?;
        }
        let (tables, buckets) = inspectors(&settings, &clients).await;
        let targets = DoctorTargets {
            tables: &settings.tables,
            buckets: &settings.buckets,
            config_dirs: &self.config_dirs,
            expect: TableExpectations { ttl_attribute: &settings.ttl_attribute, ttl_written: settings.ttl_written },
        };
        let report = crate::doctor::run(&targets, tables.as_ref(), buckets.as_ref(), &crate::wiring::aws_clock()).await;
        if self.json {
            print_json(&report)?;
        } else {
            print!("{}", report.render_text());
        }
        Ok(Status::from_ok(report.ok))
    }
}
