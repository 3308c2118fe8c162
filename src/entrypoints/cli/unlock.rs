//! `tf-lock-reaper unlock`: a safe force-unlock: delete the lock with this
//! ID if it is unchanged, after showing it (and asking, unless `--yes`).

use std::io::{BufRead, Write as _};

use crate::domain::decision::ActionTaken;
use crate::domain::lock::SourceKind;
use crate::domain::report::render::{format_age, render_lock_table};
use crate::entrypoints::cli::{config_with, sources_or_discovered, sources_reaper, CliError, SourceArgs, Status};
use crate::pipeline::Reaper;

pub(super) const EXAMPLES: &str = "Examples:
  # The ID Terraform printed in \"Error acquiring the state lock\":
  tf-lock-reaper unlock 2b6a2c1e-0f0d-4b5e-9f7a-3c2d1e0f9a8b --table terraform-state-locks
  # Both halves of a double lock, no prompt:
  tf-lock-reaper unlock 2b6a2c1e-0f0d-4b5e-9f7a-3c2d1e0f9a8b --table terraform-state-locks --bucket tfstate --yes";

#[derive(clap::Args)]
pub(super) struct UnlockArgs {
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
}

impl UnlockArgs {
    pub(super) async fn run(self) -> Result<Status, CliError> {
        let reaper = sources_reaper(config_with(&sources_or_discovered(&self.sources).await?).await?).await?;
        unlock(&reaper, &self.lock_id, self.yes, self.dry_run).await
    }
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
            "no lock with ID {lock_id:?} in {} ({held} lock(s) held there; `tf-lock-reaper list` shows them). \
                Digest items are never unlocked.",
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
