//! `tf-lock-reaper list`: every lock held, with age, who, operation and path.

use crate::domain::report::render::render_list;
use crate::entrypoints::cli::{
    config_with, print_json, sources_or_discovered, sources_reaper, CliError, SourceArgs, Status,
};

pub(super) const EXAMPLES: &str = "Examples:
  tf-lock-reaper list --table terraform-state-locks
  tf-lock-reaper list --table terraform-state-locks --bucket tfstate --stale-only
  tf-lock-reaper list --bucket tfstate/teams/a --json";

#[derive(clap::Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    sources: SourceArgs,
    /// Only locks older than their stale window.
    #[arg(long)]
    stale_only: bool,
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        let reaper = sources_reaper(config_with(&sources_or_discovered(&self.sources).await?).await?).await?;
        let mut reports = reaper.scan().await;
        if self.stale_only {
            for r in &mut reports {
                r.locks.retain(|l| l.verdict.stale);
            }
        }
        if self.json {
            print_json(&reports)?;
        } else {
            print!("{}", render_list(&reports, reaper.clock_offset()));
        }
        Ok(Status::from_ok(reports.iter().all(|r| r.scan_error.is_none())))
    }
}
