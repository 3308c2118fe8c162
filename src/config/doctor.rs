//! What `tf-lock-reaper doctor` reads from the environment.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::reader::Reader;
use crate::config::sources::{read_roles, read_source_lists, AssumeRole};
use crate::domain::source::SourceAddress;

/// What `tf-lock-reaper doctor` reads from the environment: the sources
/// (either may be empty: `--config` alone is a valid run) and what the
/// TTL check needs.
#[derive(Debug, Clone)]
pub struct DoctorSettings {
    pub tables: Vec<SourceAddress>,
    pub buckets: Vec<SourceAddress>,
    pub ttl_attribute: String,
    /// `ACTION=ttl` or `TTL_AFTER` set: TTL values are written.
    pub ttl_written: bool,
    pub run_budget: Duration,
    pub assume_roles: Vec<AssumeRole>,
    pub assume_role_external_id: Option<String>,
}

impl DoctorSettings {
    pub(crate) fn from_vars(vars: &HashMap<String, String>) -> Result<DoctorSettings, ConfigError> {
        let mut r = Reader::new(vars);
        let (tables, buckets) = read_source_lists(&mut r);
        let ttl_attribute = r.text_or_default("TTL_ATTRIBUTE").to_string();
        let ttl_written = r.get("ACTION") == Some("ttl") || r.get("TTL_AFTER").is_some();
        let run_budget = r.duration_or_default("RUN_BUDGET");
        let (assume_roles, assume_role_external_id) = read_roles(&mut r);
        r.finish()?;
        Ok(DoctorSettings {
            tables,
            buckets,
            ttl_attribute,
            ttl_written,
            run_budget,
            assume_roles,
            assume_role_external_id,
        })
    }
}
