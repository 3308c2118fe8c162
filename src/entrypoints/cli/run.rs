//! `tf-lock-reaper run`: one pass, exactly as the scheduled Lambda runs it.

use clap::builder::PossibleValuesParser;

use crate::domain::decision::Action;
use crate::entrypoints::cli::{
    config_with, print_json, sdk_with_credentials, sources_or_discovered, with_discovery, CliError, SourceArgs, Status,
};
use crate::support::deadline::Deadline;
use crate::wiring::{Adapters, RouteClients};

pub(super) const EXAMPLES: &str = "Examples:
  # What would go, without writing anything:
  tf-lock-reaper run --table terraform-state-locks --action delete --dry-run
  # One pass as the Lambda runs it, configured by the same variables:
  LOCK_TABLES=terraform-state-locks DELETE_AFTER=6h tf-lock-reaper run --action delete --no-notify
  # Report only: not even a dead heartbeat's lock is released:
  RELEASE_DEAD_HEARTBEATS=false tf-lock-reaper run --table terraform-state-locks
  # The full report for a script:
  tf-lock-reaper run --bucket tfstate/teams --json";

#[derive(clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// What to do with stale locks (overrides ACTION). In every mode, a lock whose `exec` holder went
    /// silent past its liveness contract is released (RELEASE_DEAD_HEARTBEATS=false keeps it).
    #[arg(long, value_parser = PossibleValuesParser::new(Action::ALL.map(Action::as_str)))]
    action: Option<String>,
    /// Show what would be written, write nothing (overrides DRY_RUN).
    #[arg(long)]
    dry_run: bool,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
    /// Send no SNS/PagerDuty/chat notifications (a manual pass).
    #[arg(long)]
    no_notify: bool,
}

impl RunArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        let mut overrides = sources_or_discovered(&self.sources).await?;
        if let Some(a) = self.action {
            overrides.push(("ACTION", a));
        }
        if self.dry_run {
            overrides.push(("DRY_RUN", "true".to_string()));
        }
        let config = config_with(&overrides).await?;
        let clients = RouteClients::new(&sdk_with_credentials(&config).await?);
        let (config, discovery) = with_discovery(config, &clients).await;
        let adapters = Adapters::for_run(&config, &clients, !self.no_notify).await?;
        let report = adapters.reaper(config).with_discovery(discovery).run(Deadline::none()).await;

        if self.json {
            print_json(&report)?;
        } else {
            print!("{}", report.render_text());
        }
        Ok(Status::from_ok(report.ok))
    }
}
