//! The lock record `exec` writes beside the stack (`--lock-file`, default
//! `.terraform/tf-lock-reaper.json`) as soon as it knows the lock its
//! command holds, so a CI `after_script` can `release` exactly that lock,
//! only if it is unchanged. Plain data.

use serde::{Deserialize, Serialize};

use crate::domain::backend::BackendConnection;

/// Version of the record's format.
pub const RECORD_VERSION: u32 = 1;

/// How `exec` knew the lock was its command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifiedBy {
    /// Terraform named the lock ID in its own log: provably the command's.
    TerraformLog,
    /// This host's `user@hostname` and a `Created` after the command
    /// started: likely, not proven, so never released automatically.
    WhoAndCreated,
}

/// One half of the held lock, with the exact condition of its release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RecordedHalf {
    Table { table: String, lock_key: String, info: String },
    Lockfile { bucket: String, key: String, etag: String, version_id: Option<String>, body: String },
}

/// The record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub version: u32,
    /// `Info.ID`, what `terraform force-unlock` takes.
    pub lock_id: String,
    /// `<bucket>/<key>`: the table item's `LockID`.
    pub lock_path: String,
    pub who: String,
    pub operation: String,
    pub created: String,
    pub identified_by: IdentifiedBy,
    /// The `tf-lock-reaper exec` process that wrote it.
    pub wrapper_pid: u32,
    pub backend: BackendConnection,
    pub halves: Vec<RecordedHalf>,
}
