//! The lock record file, and `tf-lock-reaper release`: release each
//! recorded lock only if it is still exactly what was recorded. Idempotent,
//! so a CI `after_script` can always run it.
//!
//! The job's index (`TF_LOCK_REAPER_JOB_RECORDS`): each `exec` of a job
//! leaves there the absolute path of its record, so one `release --job` at
//! the end (the GitHub Action's post step) finds every record of the job,
//! whatever directory each command ran in.

use std::path::{Path, PathBuf};

use crate::domain::lock_record::{parse_record, LockRecord, RecordFile};
use crate::exec::holder::release;
use crate::exec::options::Connect;

/// `<data dir>/tf-lock-reaper.json`.
pub(crate) fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tf-lock-reaper.json")
}

/// Write the record whole (a temporary file renamed into place), so a
/// reader never sees half of one.
pub(crate) fn write(path: &Path, record: &RecordFile) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&tmp, record)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Remove the record; a record already gone is fine.
pub(crate) fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Note `record` in the job's index `index`: a file named by the record's
/// absolute path's digest, holding that path. Idempotent.
pub(crate) fn register(index: &Path, record: &Path) -> std::io::Result<()> {
    use sha2::Digest;
    let absolute = std::path::absolute(record)?;
    let text = absolute.to_string_lossy().into_owned();
    let digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    std::fs::create_dir_all(index)?;
    let tmp = tempfile::NamedTempFile::new_in(index)?;
    std::fs::write(tmp.path(), &text)?;
    tmp.persist(index.join(format!("{}.path", &digest[..16]))).map_err(|e| e.error)?;
    Ok(())
}

/// The records the job's index names, sorted; unreadable entries are skipped
/// (the index only points: the records themselves are read by `read`).
pub(crate) fn registered(index: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(index) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "path"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .map(|text| PathBuf::from(text.trim_end()))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// `tf-lock-reaper release --job`: release every record the job's index
/// names that still holds a lock; one line when none does.
pub(crate) async fn release_job(index: &Path, dry_run: bool, connect: &Connect) -> (ReleaseStatus, Vec<String>) {
    let recorded = registered(index);
    let mut status = ReleaseStatus::Done;
    let mut lines = Vec::new();
    for path in recorded.iter().filter(|p| p.exists()) {
        match release_recorded(path, dry_run, connect).await {
            Ok((ReleaseStatus::Done, more)) => lines.extend(more),
            Ok((ReleaseStatus::Failed, more)) => {
                status = ReleaseStatus::Failed;
                lines.extend(more);
            }
            // One bad record must not keep the others' locks: say it, go on.
            Err(e) => {
                status = ReleaseStatus::Failed;
                lines.push(e.to_string());
            }
        }
    }
    if lines.is_empty() {
        lines.push(format!(
            "nothing to release: {} command(s) ran under exec in this job ({}) and none holds a lock now",
            recorded.len(),
            index.display()
        ));
    }
    (status, lines)
}

/// How `release` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseStatus {
    /// Nothing left to do (released, already gone, taken by another run, or
    /// no record): exit 0.
    Done,
    /// An AWS call failed; the record keeps what is left for another try: exit 1.
    Failed,
}

/// A record that cannot be used, with the path and the fix.
#[derive(Debug, thiserror::Error)]
#[error("lock record {path}: {reason}; remove it if no job of this stack holds a lock")]
pub(crate) struct BadRecord {
    pub path: String,
    pub reason: String,
}

/// Read the record at `path`; `Ok(None)` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<RecordFile>, BadRecord> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BadRecord { path: path.display().to_string(), reason: e.to_string() }),
    };
    parse_record(&text).map(Some).map_err(|e| BadRecord {
        path: path.display().to_string(),
        reason: format!("not a tf-lock-reaper lock record: {e}"),
    })
}

/// `tf-lock-reaper release`: every line it prints, and how it ended.
pub(crate) async fn release_recorded(
    path: &Path,
    dry_run: bool,
    connect: &Connect,
) -> Result<(ReleaseStatus, Vec<String>), BadRecord> {
    let Some(file) = read(path)? else {
        return Ok((ReleaseStatus::Done, vec![format!("no lock recorded at {}: nothing to release", path.display())]));
    };
    let mut lines = Vec::new();
    if dry_run {
        for record in &file.locks {
            let halves: Vec<String> = record.halves.iter().map(crate::exec::holder::describe).collect();
            lines.push(format!("dry run: would release lock {} ({}) if unchanged", record.lock_id, halves.join(" + ")));
        }
        return Ok((ReleaseStatus::Done, lines));
    }
    let mut left: Vec<LockRecord> = Vec::new();
    for record in file.locks {
        let stores = connect(record.backend.clone()).await;
        match release(&stores, &record).await {
            Ok(released) => {
                lines.extend(released.iter().map(|r| format!("lock {}: {}", record.lock_id, r.describe())));
            }
            Err(e) => {
                lines.push(format!(
                    "releasing lock {} failed: {e}. The record keeps it: run `tf-lock-reaper release` again",
                    record.lock_id
                ));
                left.push(record);
            }
        }
    }
    if left.is_empty() {
        remove(path);
        return Ok((ReleaseStatus::Done, lines));
    }
    let rest = RecordFile { locks: left, ..file };
    if let Err(e) = write(path, &rest) {
        lines.push(format!("cannot rewrite the lock record {}: {e}", path.display()));
    }
    Ok((ReleaseStatus::Failed, lines))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::backend::BackendConnection;
    use crate::domain::lock_record::{IdentifiedBy, RecordedHalf, RECORD_VERSION};
    use crate::exec::holder::Stores;
    use crate::fakes::{info, lock_item, MemoryLockTables, MemoryLockfiles};

    fn lock(id: &str, path: &str, info: &str) -> LockRecord {
        LockRecord {
            version: RECORD_VERSION,
            lock_id: id.into(),
            lock_path: path.into(),
            who: "ci@runner".into(),
            operation: "OperationTypeApply".into(),
            created: Utc::now().to_rfc3339(),
            identified_by: IdentifiedBy::TerraformLog,
            wrapper_pid: 1,
            backend: BackendConnection::default(),
            halves: vec![RecordedHalf::Table { table: "locks".into(), lock_key: path.into(), info: info.into() }],
        }
    }

    fn connect(tables: Arc<MemoryLockTables>) -> Connect {
        Box::new(move |_| {
            let stores = Stores { tables: tables.clone(), lockfiles: Arc::new(MemoryLockfiles::default()) };
            Box::pin(async move { stores })
        })
    }

    /// A `run-all` record: every unchanged lock released, one taken by
    /// another run left alone; a failing store keeps the rest for next time.
    #[tokio::test]
    async fn release_releases_each_recorded_lock_that_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".terraform/tf-lock-reaper.json");
        let tables = Arc::new(MemoryLockTables::default().with_table("locks"));
        let (a, b, c) = (info("a", Utc::now()), info("b", Utc::now()), info("c", Utc::now()));
        tables.put("locks", lock_item("tfstate/a", &a));
        tables.put("locks", lock_item("tfstate/b", &b));
        tables.put("locks", lock_item("tfstate/c", &info("someone-else", Utc::now())));
        let locks = vec![lock("a", "tfstate/a", &a), lock("b", "tfstate/b", &b), lock("c", "tfstate/c", &c)];
        write(&path, &RecordFile { version: RECORD_VERSION, wrapper_pid: 1, clock_offset_seconds: None, locks })
            .unwrap();
        let (status, lines) = release_recorded(&path, false, &connect(tables.clone())).await.unwrap();
        assert_eq!(status, ReleaseStatus::Done, "{lines:?}");
        assert!(tables.get("locks", "tfstate/a").is_none() && tables.get("locks", "tfstate/b").is_none());
        assert!(tables.get("locks", "tfstate/c").is_some(), "another run's lock is never touched");
        assert_eq!(lines.iter().filter(|l| l.ends_with("released")).count(), 2, "{lines:?}");
        assert!(!path.exists(), "nothing left to release");

        let failing = Arc::new(MemoryLockTables::failing_writes().with_table("locks"));
        failing.put("locks", lock_item("tfstate/a", &a));
        write(
            &path,
            &RecordFile {
                version: RECORD_VERSION,
                wrapper_pid: 1,
                clock_offset_seconds: None,
                locks: vec![lock("a", "tfstate/a", &a)],
            },
        )
        .unwrap();
        let (status, _) = release_recorded(&path, false, &connect(failing)).await.unwrap();
        assert_eq!(status, ReleaseStatus::Failed);
        assert_eq!(read(&path).unwrap().unwrap().locks.len(), 1, "the record keeps it for another try");
    }

    /// Two commands in two directories of one job: `release --job` releases
    /// both records' locks, leaves another run's lock, skips a record its
    /// `exec` already removed, and says one line when nothing is left.
    #[tokio::test]
    async fn release_job_releases_every_record_the_jobs_index_names() {
        let work = tempfile::tempdir().unwrap();
        let index = work.path().join("records");
        let tables = Arc::new(MemoryLockTables::default().with_table("locks"));
        let (net, app) = (info("net", Utc::now()), info("app", Utc::now()));
        tables.put("locks", lock_item("tfstate/net", &net));
        tables.put("locks", lock_item("tfstate/app", &app));
        tables.put("locks", lock_item("tfstate/other", &info("other", Utc::now())));
        let record = |locks| RecordFile { version: RECORD_VERSION, wrapper_pid: 1, clock_offset_seconds: None, locks };
        let net_record = work.path().join("stacks/net/.terraform/tf-lock-reaper.json");
        let app_record = work.path().join("stacks/app/.terraform/tf-lock-reaper.json");
        let done_record = work.path().join("stacks/done/.terraform/tf-lock-reaper.json");
        write(&net_record, &record(vec![lock("net", "tfstate/net", &net)])).unwrap();
        write(&app_record, &record(vec![lock("app", "tfstate/app", &app)])).unwrap();
        for path in [&net_record, &app_record, &done_record, &net_record] {
            register(&index, path).unwrap();
        }
        assert_eq!(registered(&index).len(), 3, "one entry per record, however often registered");

        let (status, lines) = release_job(&index, false, &connect(tables.clone())).await;
        assert_eq!(status, ReleaseStatus::Done, "{lines:?}");
        assert!(tables.get("locks", "tfstate/net").is_none() && tables.get("locks", "tfstate/app").is_none());
        assert!(tables.get("locks", "tfstate/other").is_some(), "a lock no record names is never touched");
        assert_eq!(lines.iter().filter(|l| l.ends_with("released")).count(), 2, "{lines:?}");

        let (status, lines) = release_job(&index, false, &connect(tables.clone())).await;
        assert_eq!(status, ReleaseStatus::Done);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("nothing to release: 3 command(s) ran under exec in this job"), "{lines:?}");
        let (_, lines) = release_job(&work.path().join("never-made"), false, &connect(tables)).await;
        assert!(lines[0].starts_with("nothing to release: 0 command(s) ran under exec"), "{lines:?}");
    }
}
