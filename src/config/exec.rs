//! What `tf-lock-reaper exec` and `release` read from the environment.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::heartbeat::{ci_variable, read_heartbeat, Role};
use crate::config::reader::Reader;
use crate::domain::policy::HeartbeatTimeouts;

/// What `tf-lock-reaper exec` and `release` read from the environment.
/// No sources: the backend of the wrapped stack is the source.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub heartbeat_every: Duration,
    /// The liveness contract written beside each heartbeat: the silence
    /// after which this job counts as dead.
    pub heartbeat_timeout: Duration,
    /// How a lock that blocks the command is judged (its own contract,
    /// within `HEARTBEAT_TIMEOUT_MIN`/`_MAX`).
    pub judge: HeartbeatTimeouts,
    /// The CI variable that made the CI defaults apply; `None` on a terminal.
    pub ci: Option<&'static str>,
    pub heartbeat_attribute: String,
    /// `(TTL_ATTRIBUTE, TTL_AFTER)` when `TTL_AFTER` is set: each heartbeat
    /// also sets a rolling TTL of now + `TTL_AFTER`.
    pub rolling_ttl: Option<(String, Duration)>,
    pub run_budget: Duration,
    /// `TF_LOCK_REAPER_JOB_RECORDS`: the job's index of lock records.
    pub job_records: Option<std::path::PathBuf>,
}

impl ExecSettings {
    pub(crate) fn from_vars(vars: &HashMap<String, String>) -> Result<ExecSettings, ConfigError> {
        let ci = ci_variable(vars);
        let mut r = Reader::new(vars);
        let ttl_attribute = r.text_or_default("TTL_ATTRIBUTE").to_string();
        let hb = read_heartbeat(&mut r, &ttl_attribute, Role::Exec { ci });
        let ttl_after = r.duration("TTL_AFTER");
        if let Some(after) = ttl_after.filter(|a| *a < hb.contract) {
            r.problem(
                "TTL_AFTER",
                &humantime::format_duration(after).to_string(),
                format!(
                    "at least HEARTBEAT_TIMEOUT ({}): the rolling TTL must outlast the heartbeat timeout",
                    humantime::format_duration(hb.contract)
                ),
            );
        }
        let run_budget = r.duration_or_default("RUN_BUDGET");
        let job_records = r.get("TF_LOCK_REAPER_JOB_RECORDS").map(std::path::PathBuf::from);
        if let Some(dir) = job_records.as_ref().filter(|d| !d.is_absolute()) {
            // Each command of a job runs in its own directory: only an
            // absolute path names one index for all of them.
            r.problem("TF_LOCK_REAPER_JOB_RECORDS", &dir.display().to_string(), "an absolute directory path");
        }
        r.finish()?;
        Ok(ExecSettings {
            heartbeat_every: hb.every,
            heartbeat_timeout: hb.contract,
            judge: hb.timeouts,
            ci,
            heartbeat_attribute: hb.attribute,
            rolling_ttl: ttl_after.map(|a| (ttl_attribute, a)),
            run_budget,
            job_records,
        })
    }
}
