//! The lock record `exec` writes (`--lock-file`, default
//! `.terraform/tf-lock-reaper.json` where `exec` runs) as soon as it knows a
//! lock its command holds, one record for all of them (a `run-all` holds
//! several), so a CI `after_script` can `release` exactly those locks, each
//! only if it is unchanged. Plain data.

use serde::{Deserialize, Serialize};

use crate::backend::BackendConnection;

/// Version of the record's format. Version 1 held one lock; `release`
/// still reads it.
pub const RECORD_VERSION: u32 = 2;

/// How `exec` knew the lock was its command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifiedBy {
    /// Terraform named the lock ID in its own log, and the lock carries
    /// it: provably the command's.
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

/// One lock the command held.
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

/// The record file: every lock the command holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFile {
    pub version: u32,
    /// The `tf-lock-reaper exec` process that wrote it.
    pub wrapper_pid: u32,
    /// How far AWS's clock was ahead of the wrapper's (negative: behind),
    /// in seconds, when the record was written: heartbeats are written in
    /// AWS's time, this machine's clock corrected by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_seconds: Option<i64>,
    pub locks: Vec<LockRecord>,
}

/// Either format on disk.
#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    V2(RecordFile),
    V1(Box<LockRecord>),
}

/// Parse a record file, version 2 or 1.
pub fn parse_record(text: &str) -> Result<RecordFile, serde_json::Error> {
    Ok(match serde_json::from_str(text)? {
        OnDisk::V2(file) => file,
        OnDisk::V1(lock) => RecordFile {
            version: RECORD_VERSION,
            wrapper_pid: lock.wrapper_pid,
            clock_offset_seconds: None,
            locks: vec![*lock],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(id: &str) -> LockRecord {
        LockRecord {
            version: RECORD_VERSION,
            lock_id: id.into(),
            lock_path: "tfstate/app/terraform.tfstate".into(),
            who: "ci@runner".into(),
            operation: "OperationTypeApply".into(),
            created: "2026-12-01T10:00:00Z".into(),
            identified_by: IdentifiedBy::TerraformLog,
            wrapper_pid: 42,
            backend: BackendConnection::default(),
            halves: vec![RecordedHalf::Table {
                table: "locks".into(),
                lock_key: "tfstate/app/terraform.tfstate".into(),
                info: "{}".into(),
            }],
        }
    }

    #[test]
    fn both_formats_read_back() {
        let file = RecordFile {
            version: RECORD_VERSION,
            wrapper_pid: 42,
            clock_offset_seconds: Some(-898),
            locks: vec![lock("a"), lock("b")],
        };
        assert_eq!(parse_record(&serde_json::to_string(&file).unwrap()).unwrap(), file);
        let v1 = LockRecord { version: 1, ..lock("old") };
        let read = parse_record(&serde_json::to_string(&v1).unwrap()).unwrap();
        assert_eq!((read.wrapper_pid, read.locks), (42, vec![v1]));
        assert!(parse_record(r#"{"version":2}"#).is_err());
    }
}
