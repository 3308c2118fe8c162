//! The heartbeat settings `exec` writes by and the reaper judges by:
//! `HEARTBEAT_TIMEOUT`, `HEARTBEAT_EVERY`, `HEARTBEAT_ATTRIBUTE`, and the
//! attributes that are Terraform's, never ours.

use std::time::Duration;

use crate::config::reader::Reader;

/// `HEARTBEAT_TIMEOUT`, `HEARTBEAT_EVERY` and `HEARTBEAT_ATTRIBUTE`.
pub(crate) struct HeartbeatSettings {
    pub(crate) timeout: Duration,
    pub(crate) every: Duration,
    pub(crate) attribute: String,
}

/// Terraform's own attributes on a lock item: never ours to write.
pub(crate) const TERRAFORM_ATTRIBUTES: [&str; 3] = ["LockID", "Info", "Digest"];

/// The heartbeat settings. A heartbeat must come several times within the
/// timeout, or one slow write would make a live holder look dead.
pub(crate) fn read_heartbeat(r: &mut Reader<'_>, ttl_attribute: &str) -> HeartbeatSettings {
    let timeout = r.duration_or_default("HEARTBEAT_TIMEOUT");
    let every = r.duration_or_default("HEARTBEAT_EVERY");
    if every.saturating_mul(2) > timeout {
        r.problem(
            "HEARTBEAT_EVERY",
            &humantime::format_duration(every).to_string(),
            format!(
                "at most half of HEARTBEAT_TIMEOUT ({}), so one late heartbeat never makes a live holder look dead",
                humantime::format_duration(timeout)
            ),
        );
    }
    let attribute = r.text_or_default("HEARTBEAT_ATTRIBUTE").to_string();
    if TERRAFORM_ATTRIBUTES.contains(&attribute.as_str()) || attribute == ttl_attribute || attribute.is_empty() {
        r.problem(
            "HEARTBEAT_ATTRIBUTE",
            &attribute,
            "an attribute name other than LockID, Info, Digest and TTL_ATTRIBUTE",
        );
    }
    HeartbeatSettings { timeout, every, attribute }
}
