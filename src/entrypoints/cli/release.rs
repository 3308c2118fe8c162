//! `tf-lock-reaper release`: release the locks `exec` recorded, each only
//! if it is unchanged (`crate::exec::record`).

use crate::config::ExecSettings;
use crate::entrypoints::cli::{connector, env_with, CliError, Status};
use crate::exec::record::{self, ReleaseStatus};

pub(super) const EXAMPLES: &str = "Examples:
  tf-lock-reaper release
  tf-lock-reaper release --lock-file stacks/net/.terraform/tf-lock-reaper.json --dry-run
  TF_LOCK_REAPER_JOB_RECORDS=$RUNNER_TEMP/locks tf-lock-reaper release --job

Exit codes: 0 released, already gone, taken by another run (left alone) or no lock recorded;
1 an AWS call failed (the record is kept: run it again; with --job also an unreadable record, the others
  are still released); 2 an unreadable record, or --job without TF_LOCK_REAPER_JOB_RECORDS.";

#[derive(clap::Args)]
pub(super) struct ReleaseArgs {
    /// The record `exec` wrote (default: .terraform/tf-lock-reaper.json, or in TF_DATA_DIR, of the current
    /// directory: where `exec` ran).
    #[arg(long, value_name = "PATH")]
    lock_file: Option<std::path::PathBuf>,
    /// Release every record an `exec` of this job noted in TF_LOCK_REAPER_JOB_RECORDS, whatever directory
    /// it ran in (what the GitHub Action's post step runs).
    #[arg(long, conflicts_with = "lock_file")]
    job: bool,
    /// Show what would be released, release nothing.
    #[arg(long)]
    dry_run: bool,
}

impl ReleaseArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        let settings = ExecSettings::from_vars(&env_with(&[]))?;
        let connect = connector(settings.run_budget);
        let (status, lines) = if self.job {
            let index = settings.job_records.ok_or_else(|| {
                CliError::BadInput(
                    "release --job: TF_LOCK_REAPER_JOB_RECORDS is not set, so no exec of this job noted its \
                     record; set it to an absolute directory for the whole job (the GitHub Action does), or run \
                     `release` in the directory where exec ran"
                        .to_string(),
                )
            })?;
            record::release_job(&index, self.dry_run, &connect).await
        } else {
            let tf_data_dir = std::env::var("TF_DATA_DIR").ok();
            let path = self.lock_file.unwrap_or_else(|| crate::exec::default_record_path(&[], tf_data_dir.as_deref()));
            record::release_recorded(&path, self.dry_run, &connect)
                .await
                .map_err(|e| CliError::BadInput(e.to_string()))?
        };
        for line in lines {
            println!("{line}");
        }
        Ok(match status {
            ReleaseStatus::Done => Status::Clean,
            ReleaseStatus::Failed => Status::HadErrors,
        })
    }
}
