//! `tf-lock-reaper explain [FILE…]`: paste what you have (Terraform's lock
//! error, a lock item, a lockfile and its ETag, the backend block, a digest
//! mismatch) and get the locks, the findings, the commands ranked safest
//! first, and the corrected backend block. No AWS access: the pure
//! `domain::explain`, as the web page runs it.

use std::io::Read as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::explain::{explain, render_text, Options};
use crate::entrypoints::cli::{print_json, CliError, Status};

pub(super) const EXAMPLES: &str = "Examples:
  terraform plan 2>&1 | tf-lock-reaper explain
  tf-lock-reaper explain ci-job.log backend.tf
  aws dynamodb get-item --table-name terraform-state-locks --key '{\"LockID\":{\"S\":\"tfstate/prod/terraform.tfstate\"}}' | tf-lock-reaper explain --json
  tf-lock-reaper explain --now 2026-11-26T14:00:00Z --redact error.txt

Exit codes: 0 something was recognised; 2 nothing was (one line says what is expected), or a file cannot be read.";

/// Bytes read from standard input or the files together: one more than
/// `explain` reads, so that it can say the input was cut.
const READ_CAP: u64 = crate::domain::explain::parts::INPUT_CAP as u64 + 1;

#[derive(clap::Args)]
pub(super) struct ExplainArgs {
    /// Files to read, `-` for standard input (the default when none), all taken together.
    #[arg(value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
    /// The clock ages are read on (RFC 3339); default: this machine's clock.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// The apply window: an older lock is stale (as `list`).
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    stale_after: String,
    /// Also mask account IDs in ARNs: a report to share in an incident channel.
    #[arg(long)]
    redact: bool,
    /// One JSON object: locks, findings, commands, backend_fix.
    #[arg(long)]
    json: bool,
}

impl ExplainArgs {
    pub(super) fn run(self) -> Result<Status, CliError> {
        let (now, clock) = match &self.now {
            Some(text) => {
                let now = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
                    CliError::BadInput(format!(
                        "--now {text:?} is not an RFC 3339 time (e.g. 2026-11-26T14:00:00Z): {e}"
                    ))
                })?;
                (now.with_timezone(&Utc), "the clock --now gave".to_string())
            }
            None => (Utc::now(), "this machine's clock (--now sets another)".to_string()),
        };
        let stale_after: Duration =
            humantime::parse_duration(self.stale_after.trim()).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                CliError::BadInput(format!("--stale-after {:?} is not a duration (e.g. 2h, 90m)", self.stale_after))
            })?;
        let input = self.read()?;
        let options = Options { now: Some(now), clock, stale_after, redact: self.redact };
        let answer = explain(&input, &options).map_err(|e| CliError::BadInput(e.to_string()))?;
        if self.json {
            print_json(&answer)?;
        } else {
            use std::io::Write as _;
            // A reader that stopped early (`| head`) is not an error.
            match std::io::stdout().lock().write_all(render_text(&answer).as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
        Ok(Status::Clean)
    }

    /// The files, or standard input, as text (invalid UTF-8 replaced), capped.
    fn read(&self) -> Result<String, CliError> {
        let mut bytes = Vec::new();
        if self.files.is_empty() {
            std::io::stdin().lock().take(READ_CAP).read_to_end(&mut bytes)?;
        }
        for f in &self.files {
            let left = READ_CAP.saturating_sub(bytes.len() as u64);
            let read = if f.as_os_str() == "-" {
                std::io::stdin().lock().take(left).read_to_end(&mut bytes)
            } else {
                std::fs::File::open(f).and_then(|file| file.take(left).read_to_end(&mut bytes))
            };
            read.map_err(|e| CliError::BadInput(format!("cannot read {}: {e}", f.display())))?;
            bytes.push(b'\n');
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
