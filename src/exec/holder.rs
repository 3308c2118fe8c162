//! The lock a wrapped command holds: find it (by the ID Terraform logged,
//! or by this host's `user@hostname` and a `Created` after the command
//! started), heartbeat it, restore it when someone removed it while the
//! command still runs, and release it when the command died without doing
//! so. Every write is conditional on the exact lock that was read. Async
//! over the ports only, so it is tested with the in-memory fakes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::backend::{BackendConnection, LockLocation};
use crate::domain::lock::{parse_lock_info, SourceKind};
use crate::domain::lock_record::{IdentifiedBy, LockRecord, RecordedHalf, RECORD_VERSION};
use crate::domain::source::SourceAddress;
use crate::ports::lock_tables::{Beat, HeldLockTables};
use crate::ports::lockfiles::HeldLockfiles;
use crate::ports::{SourceError, WriteOutcome};

/// The lock stores of one backend. They are already the backend's region,
/// endpoint and credentials, so its tables and buckets are addressed as the
/// reaper's own (`SourceAddress::own`): the bare name reaches them.
#[derive(Clone)]
pub(crate) struct Stores {
    pub tables: Arc<dyn HeldLockTables>,
    pub lockfiles: Arc<dyn HeldLockfiles>,
}

/// What a heartbeat writes.
#[derive(Debug, Clone)]
pub(crate) struct BeatSettings {
    pub attribute: String,
    /// The liveness contract written beside each heartbeat.
    pub timeout: std::time::Duration,
    /// `(TTL_ATTRIBUTE, TTL_AFTER)`: a rolling TTL of now + TTL_AFTER.
    pub ttl: Option<(String, std::time::Duration)>,
}

/// How one heartbeat went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BeatOutcome {
    /// Every half heartbeated.
    Alive,
    /// A half was gone and is back, exactly as it was (the text says which).
    Restored(String),
    /// Another lock holds the state now (the text names both).
    Conflict(String),
    /// A half is gone and restoring is not allowed (Terraform is releasing,
    /// or the lock is not provably ours).
    Gone(String),
}

/// How a release of one half went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Released {
    pub half: String,
    pub outcome: WriteOutcome,
}

impl Released {
    /// `table locks item … released`, as `exec` and `release` print it.
    pub(crate) fn describe(&self) -> String {
        let what = match self.outcome {
            WriteOutcome::Done => "released",
            WriteOutcome::Gone => "already gone: nothing to do",
            WriteOutcome::Changed => "now held by another run: left alone",
        };
        format!("{} {what}", self.half)
    }
}

/// Who is asking: what goes into a new record.
#[derive(Clone)]
pub(crate) struct Finder<'a> {
    pub stores: &'a Stores,
    pub connection: &'a BackendConnection,
    pub heartbeat_attribute: &'a str,
    pub wrapper_pid: u32,
}

impl Finder<'_> {
    /// The lock whose ID is `id` (Terraform's word), once every half the
    /// backend uses carries it: a double lock is taken lockfile first, and
    /// a lock adopted between its halves would be released half. `None`
    /// until then.
    pub(crate) async fn by_logged_id(
        &self,
        location: &LockLocation,
        id: &str,
    ) -> Result<Option<LockRecord>, SourceError> {
        let record = self.any_half_by_logged_id(location, id).await?;
        let expected = usize::from(location.table.is_some()) + usize::from(location.lockfile.is_some());
        Ok(record.filter(|r| r.halves.len() == expected))
    }

    /// The halves of `location` whose lock ID is `id`, however many: for
    /// the last look, after the Terraform that logged it ended (perhaps
    /// between the halves); `None` when no half carries it.
    pub(crate) async fn any_half_by_logged_id(
        &self,
        location: &LockLocation,
        id: &str,
    ) -> Result<Option<LockRecord>, SourceError> {
        self.find(location, IdentifiedBy::TerraformLog, |info| info.id == id).await
    }

    /// The halves of `location` written by `who` at or after `since`.
    pub(crate) async fn by_who_and_created(
        &self,
        location: &LockLocation,
        who: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<LockRecord>, SourceError> {
        self.find(location, IdentifiedBy::WhoAndCreated, |info| info.who == who && info.created >= since).await
    }

    /// Any lock at `location` created at or after `since`, whoever took it.
    pub(crate) async fn created_since(
        &self,
        location: &LockLocation,
        since: DateTime<Utc>,
    ) -> Result<Option<LockRecord>, SourceError> {
        self.find(location, IdentifiedBy::WhoAndCreated, |info| info.created >= since).await
    }

    async fn find(
        &self,
        location: &LockLocation,
        identified_by: IdentifiedBy,
        ours: impl Fn(&crate::domain::lock::Lock) -> bool,
    ) -> Result<Option<LockRecord>, SourceError> {
        let mut halves = Vec::new();
        let mut first: Option<crate::domain::lock::Lock> = None;
        if let Some((table, key)) = &location.table {
            let at = SourceAddress::own(SourceKind::Table, table);
            let item = self.stores.tables.get_lock(&at, key, self.heartbeat_attribute).await?;
            if let Some(info) = item.and_then(|i| i.info) {
                let lock = readable(parse_lock_info(&at, key, &info), || format!("table {table} item {key}"))?;
                if ours(&lock) {
                    halves.push(RecordedHalf::Table { table: table.clone(), lock_key: key.clone(), info });
                    first.get_or_insert(lock);
                }
            }
        }
        if let Some((bucket, key)) = &location.lockfile {
            let at = SourceAddress::own(SourceKind::Bucket, bucket);
            if let Some(object) = self.stores.lockfiles.get_lockfile(&at, key).await? {
                let what = || format!("lockfile s3://{bucket}/{key}");
                let body = object.body.map_err(|reason| unreadable(what(), &reason))?;
                let lock = readable(parse_lock_info(&at, key, &body), what)?;
                // Both halves of a double lock carry the same ID.
                if ours(&lock) && first.as_ref().is_none_or(|f| f.id == lock.id) {
                    halves.push(RecordedHalf::Lockfile {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        etag: object.etag,
                        version_id: object.version_id,
                        body,
                    });
                    first.get_or_insert(lock);
                }
            }
        }
        Ok(first.map(|lock| LockRecord {
            version: RECORD_VERSION,
            lock_id: lock.id,
            lock_path: location.lock_path.clone(),
            who: lock.who,
            operation: lock.operation,
            created: lock.created.to_rfc3339(),
            identified_by,
            wrapper_pid: self.wrapper_pid,
            backend: self.connection.clone(),
            halves,
        }))
    }
}

/// A lock whose `Info` (or lockfile body) is not a Terraform lock: an error
/// that names it, so the wrapper says so instead of skipping it.
fn readable(
    parsed: Result<crate::domain::lock::Lock, String>,
    what: impl FnOnce() -> String,
) -> Result<crate::domain::lock::Lock, SourceError> {
    parsed.map_err(|reason| unreadable(what(), &reason))
}

fn unreadable(what: String, reason: &str) -> SourceError {
    SourceError::new(
        crate::domain::failure::ErrorKind::Other,
        format!("{what} cannot be read as a Terraform lock ({reason}); it is not followed"),
    )
}

/// Whether a half of the recorded lock is still exactly what was recorded:
/// asked before anything is said about a lock the wrapper only watched.
pub(crate) async fn still_held(
    stores: &Stores,
    record: &LockRecord,
    heartbeat_attribute: &str,
) -> Result<bool, SourceError> {
    for half in &record.halves {
        let held = match half {
            RecordedHalf::Table { table, lock_key, info } => {
                let table = &SourceAddress::own(SourceKind::Table, table);
                let item = stores.tables.get_lock(table, lock_key, heartbeat_attribute).await?;
                item.and_then(|i| i.info).as_deref() == Some(info.as_str())
            }
            RecordedHalf::Lockfile { bucket, key, body, .. } => {
                let bucket = &SourceAddress::own(SourceKind::Bucket, bucket);
                let object = stores.lockfiles.get_lockfile(bucket, key).await?;
                object.is_some_and(|o| o.body.as_deref() == Ok(body.as_str()))
            }
        };
        if held {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One half as people read it.
pub(crate) fn describe(half: &RecordedHalf) -> String {
    match half {
        RecordedHalf::Table { table, lock_key, .. } => format!("table {table} item {lock_key}"),
        RecordedHalf::Lockfile { bucket, key, .. } => format!("lockfile s3://{bucket}/{key}"),
    }
}

/// The lock now in a half's place, as people read it.
fn other_lock(half: &RecordedHalf, info: &str) -> String {
    let (source, key) = match half {
        RecordedHalf::Table { table, lock_key, .. } => (SourceAddress::own(SourceKind::Table, table), lock_key),
        RecordedHalf::Lockfile { bucket, key, .. } => (SourceAddress::own(SourceKind::Bucket, bucket), key),
    };
    match parse_lock_info(&source, key, info) {
        Ok(l) => format!("lock ID {} ({} by {} since {})", l.id, l.operation, l.who, l.created.to_rfc3339()),
        Err(_) => "an unreadable lock".to_string(),
    }
}

/// Heartbeat every half of the held lock. With `may_restore`, a half found
/// gone is put back exactly as it was, only if nothing holds its place.
pub(crate) async fn beat(
    stores: &Stores,
    record: &mut LockRecord,
    settings: &BeatSettings,
    now: i64,
    may_restore: bool,
) -> Result<BeatOutcome, SourceError> {
    let ttl_at = settings.ttl.as_ref().map(|(a, after)| (a.as_str(), now.saturating_add(after.as_secs() as i64)));
    let timeout = settings.timeout.as_secs();
    let beat = Beat { attribute: &settings.attribute, at: now, timeout, ttl: ttl_at };
    let mut restored = Vec::new();
    let id = record.lock_id.clone();
    for half in record.halves.iter_mut() {
        let what = describe(half);
        let gone_or_restored = match half {
            RecordedHalf::Table { table, lock_key, info } => {
                let table = &SourceAddress::own(SourceKind::Table, table);
                match stores.tables.heartbeat(table, lock_key, info, beat).await? {
                    WriteOutcome::Done => continue,
                    WriteOutcome::Changed => {
                        let now_info = stores.tables.get_lock(table, lock_key, &settings.attribute).await?;
                        let other = now_info.and_then(|i| i.info).unwrap_or_default();
                        return Ok(conflict(&id, &what, &other_lock(half, &other)));
                    }
                    WriteOutcome::Gone if !may_restore => None,
                    WriteOutcome::Gone => Some(stores.tables.restore(table, lock_key, info, beat).await?),
                }
            }
            RecordedHalf::Lockfile { bucket, key, etag, version_id, body } => {
                let bucket = &SourceAddress::own(SourceKind::Bucket, bucket);
                match stores.lockfiles.get_lockfile(bucket, key).await? {
                    Some(current) if current.body.as_deref() == Ok(body.as_str()) => {
                        *etag = current.etag;
                        *version_id = current.version_id;
                        // Replaced between the read and the tag: the next beat judges it.
                        stores.lockfiles.tag_heartbeat(bucket, key, version_id.as_deref(), now, timeout).await?;
                        continue;
                    }
                    Some(current) => {
                        let other = current.body.unwrap_or_default();
                        return Ok(conflict(&id, &what, &other_lock(half, &other)));
                    }
                    None if !may_restore => None,
                    None => {
                        let outcome = stores.lockfiles.restore_lockfile(bucket, key, body).await?;
                        if outcome == WriteOutcome::Done {
                            if let Some(current) = stores.lockfiles.get_lockfile(bucket, key).await? {
                                *etag = current.etag;
                                *version_id = current.version_id;
                            }
                            stores.lockfiles.tag_heartbeat(bucket, key, version_id.as_deref(), now, timeout).await?;
                        }
                        Some(outcome)
                    }
                }
            }
        };
        match gone_or_restored {
            None => return Ok(BeatOutcome::Gone(format!("{what} is gone"))),
            Some(WriteOutcome::Done | WriteOutcome::Gone) => restored.push(what),
            Some(WriteOutcome::Changed) => {
                return Ok(conflict(&id, &what, "another lock taken while it was being restored"));
            }
        }
    }
    Ok(if restored.is_empty() { BeatOutcome::Alive } else { BeatOutcome::Restored(restored.join(", ")) })
}

fn conflict(id: &str, what: &str, other: &str) -> BeatOutcome {
    BeatOutcome::Conflict(format!("{what}: our lock ID {id} was replaced by {other}"))
}

/// Release the recorded lock, each half only if it is still exactly what
/// was recorded: the table half by its `Info`, then the lockfile by its
/// ETag. If the table half now belongs to another run, the lockfile is
/// left alone too.
pub(crate) async fn release(stores: &Stores, record: &LockRecord) -> Result<Vec<Released>, SourceError> {
    let mut out = Vec::new();
    let mut taken = false;
    for half in &record.halves {
        let outcome = match half {
            RecordedHalf::Table { table, lock_key, info } => {
                let table = &SourceAddress::own(SourceKind::Table, table);
                stores.tables.release(table, lock_key, info, None).await?
            }
            RecordedHalf::Lockfile { .. } if taken => WriteOutcome::Changed,
            RecordedHalf::Lockfile { bucket, key, etag, .. } => {
                let bucket = &SourceAddress::own(SourceKind::Bucket, bucket);
                stores.lockfiles.release_lockfile(bucket, key, etag).await?
            }
        };
        taken |= outcome == WriteOutcome::Changed;
        out.push(Released { half: describe(half), outcome });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lock::{AttrValue, LOCKFILE_SUFFIX};
    use crate::fakes::{info, lock_item, MemoryLockTables, MemoryLockfiles};
    use crate::ports::lockfiles::LockfileBuckets;

    const KEY: &str = "tfstate/app/terraform.tfstate";
    const FILE: &str = "app/terraform.tfstate.tflock";

    fn setup(with_file: bool) -> (Arc<MemoryLockTables>, Arc<MemoryLockfiles>, Stores, LockLocation, String) {
        let tables = Arc::new(MemoryLockTables::default().with_table("locks"));
        let files = Arc::new(MemoryLockfiles::default());
        let ours = info("ours", Utc::now());
        tables.put("locks", lock_item(KEY, &ours));
        files.put("tfstate", "other.tflock", "{}");
        if with_file {
            files.put("tfstate", FILE, &ours);
        }
        let stores = Stores { tables: tables.clone(), lockfiles: files.clone() };
        let location = LockLocation {
            lock_path: KEY.into(),
            table: Some(("locks".into(), KEY.into())),
            lockfile: with_file.then(|| ("tfstate".into(), format!("app/terraform.tfstate{LOCKFILE_SUFFIX}"))),
        };
        (tables, files, stores, location, ours)
    }

    fn finder(stores: &Stores) -> Finder<'_> {
        static CONNECTION: BackendConnection = BackendConnection {
            region: None,
            dynamodb_endpoint: None,
            s3_endpoint: None,
            use_path_style: false,
            profile: None,
        };
        Finder { stores, connection: &CONNECTION, heartbeat_attribute: "Heartbeat", wrapper_pid: 7 }
    }

    fn settings() -> BeatSettings {
        BeatSettings {
            attribute: "Heartbeat".into(),
            timeout: std::time::Duration::from_secs(90),
            ttl: Some(("ExpiresAt".into(), std::time::Duration::from_secs(3600))),
        }
    }

    #[tokio::test]
    async fn only_the_logged_id_is_adopted() {
        let (_, _, stores, location, _) = setup(true);
        assert_eq!(finder(&stores).by_logged_id(&location, "someone-else").await, Ok(None));
        let record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().expect("adopted");
        assert_eq!(record.halves.len(), 2, "both halves of the double lock");
        assert_eq!(record.identified_by, IdentifiedBy::TerraformLog);
    }

    /// Terraform takes a double lock lockfile first: between the halves the
    /// lock is not adopted (it would be released half), except at the last
    /// look, after the Terraform that logged it ended.
    #[tokio::test]
    async fn a_double_lock_is_adopted_once_both_halves_are_taken() {
        let (tables, _, stores, location, _) = setup(true);
        tables.remove("locks", KEY);
        assert_eq!(finder(&stores).by_logged_id(&location, "ours").await, Ok(None), "the table half is not yet taken");
        let partial = finder(&stores).any_half_by_logged_id(&location, "ours").await.unwrap().expect("the last look");
        assert_eq!(partial.halves.len(), 1);
    }

    #[tokio::test]
    async fn a_heartbeat_sets_the_attribute_and_rolling_ttl_and_tags_the_lockfile() {
        let (tables, files, stores, location, ours) = setup(true);
        let mut record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().unwrap();
        assert_eq!(beat(&stores, &mut record, &settings(), 1000, true).await, Ok(BeatOutcome::Alive));
        let item = tables.get("locks", KEY).unwrap();
        assert_eq!(item.get("Heartbeat"), Some(&AttrValue::N("1000".into())));
        assert_eq!(item.get("HeartbeatTimeout"), Some(&AttrValue::N("90".into())), "the liveness contract");
        assert_eq!(item.get("ExpiresAt"), Some(&AttrValue::N("4600".into())));
        assert_eq!(item.get("Info"), Some(&AttrValue::S(ours.clone())), "Info is never rewritten");
        let listed = files.list(&SourceAddress::bucket("tfstate/app/").unwrap()).await.unwrap();
        assert_eq!((listed[0].heartbeat, listed[0].heartbeat_timeout), (Some(1000), Some(90)));
    }

    #[tokio::test]
    async fn a_lost_lock_is_restored_exactly_but_never_while_terraform_releases_it() {
        let (tables, files, stores, location, ours) = setup(true);
        let mut record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().unwrap();
        tables.remove("locks", KEY);
        assert_eq!(
            beat(&stores, &mut record, &settings(), 1000, false).await,
            Ok(BeatOutcome::Gone("table locks item tfstate/app/terraform.tfstate is gone".into())),
            "no restore allowed: nothing written"
        );
        assert!(tables.get("locks", KEY).is_none());
        let outcome = beat(&stores, &mut record, &settings(), 1001, true).await.unwrap();
        assert!(matches!(outcome, BeatOutcome::Restored(_)), "{outcome:?}");
        assert_eq!(tables.get("locks", KEY).unwrap().get("Info"), Some(&AttrValue::S(ours.clone())));
        // The lockfile too, byte for byte.
        let bucket = SourceAddress::own(SourceKind::Bucket, "tfstate");
        let etag = files.get_lockfile(&bucket, FILE).await.unwrap().unwrap().etag;
        files.delete_lockfile(&bucket, FILE, &etag).await.unwrap();
        assert!(matches!(beat(&stores, &mut record, &settings(), 1002, true).await, Ok(BeatOutcome::Restored(_))));
        assert_eq!(files.get("tfstate", FILE), Some(ours));
    }

    #[tokio::test]
    async fn another_runs_lock_is_a_conflict_and_is_never_touched() {
        let (tables, _, stores, location, _) = setup(false);
        let mut record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().unwrap();
        let theirs = info("theirs", Utc::now());
        tables.put("locks", lock_item(KEY, &theirs));
        let outcome = beat(&stores, &mut record, &settings(), 1000, true).await.unwrap();
        let BeatOutcome::Conflict(text) = outcome else { panic!("{outcome:?}") };
        assert!(text.contains("ours") && text.contains("theirs"), "names both locks: {text}");
        assert_eq!(release(&stores, &record).await.unwrap()[0].outcome, WriteOutcome::Changed);
        let item = tables.get("locks", KEY).unwrap();
        assert_eq!(item.get("Info"), Some(&AttrValue::S(theirs)));
        assert!(!item.contains_key("Heartbeat"), "their lock was not heartbeated");
    }

    #[tokio::test]
    async fn release_is_conditional_and_idempotent() {
        let (tables, files, stores, location, _) = setup(true);
        let record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().unwrap();
        let first = release(&stores, &record).await.unwrap();
        assert!(first.iter().all(|r| r.outcome == WriteOutcome::Done), "{first:?}");
        assert!(tables.get("locks", KEY).is_none() && files.get("tfstate", FILE).is_none());
        let second = release(&stores, &record).await.unwrap();
        assert!(second.iter().all(|r| r.outcome == WriteOutcome::Gone), "{second:?}");
    }

    #[tokio::test]
    async fn a_watched_lock_is_re_read_before_anything_is_said() {
        let (tables, _, stores, location, _) = setup(false);
        let record = finder(&stores).by_logged_id(&location, "ours").await.unwrap().unwrap();
        assert_eq!(still_held(&stores, &record, "Heartbeat").await, Ok(true));
        tables.put("locks", lock_item(KEY, &info("theirs", Utc::now())));
        assert_eq!(still_held(&stores, &record, "Heartbeat").await, Ok(false), "another run's lock is not ours");
        tables.remove("locks", KEY);
        assert_eq!(still_held(&stores, &record, "Heartbeat").await, Ok(false), "released by Terraform");
    }

    #[tokio::test]
    async fn without_the_log_only_this_hosts_fresh_lock_is_found() {
        let (_, _, stores, location, _) = setup(false);
        let f = finder(&stores);
        assert_eq!(
            f.by_who_and_created(&location, "other@host", Utc::now() - chrono::Duration::hours(1)).await,
            Ok(None)
        );
        let since_later = Utc::now() + chrono::Duration::hours(1);
        assert_eq!(f.by_who_and_created(&location, "ci@runner", since_later).await, Ok(None), "older than the start");
        let found = f.by_who_and_created(&location, "ci@runner", Utc::now() - chrono::Duration::hours(1)).await;
        assert_eq!(found.unwrap().unwrap().identified_by, IdentifiedBy::WhoAndCreated);
    }

    /// Identification reads no clock: a lock "created" 15 minutes ahead of
    /// or behind the wrapper's clock is found by the ID Terraform logged.
    /// A lock that is not a Terraform lock is named, never skipped.
    #[tokio::test]
    async fn the_logged_id_is_found_whatever_the_clocks_and_an_unreadable_lock_is_named() {
        let (tables, _, stores, location, _) = setup(false);
        for skew in [chrono::Duration::minutes(15), chrono::Duration::minutes(-15), chrono::Duration::days(365)] {
            tables.put("locks", lock_item(KEY, &info("ours", Utc::now() + skew)));
            let found = finder(&stores).by_logged_id(&location, "ours").await;
            assert_eq!(found.unwrap().map(|r| r.lock_id), Some("ours".to_string()), "{skew}");
        }
        tables.put("locks", lock_item(KEY, r#"{"Who":"x@y"}"#));
        let e = finder(&stores).by_logged_id(&location, "ours").await.unwrap_err();
        assert_eq!(
            e.message,
            format!("table locks item {KEY} cannot be read as a Terraform lock (Info has no lock ID (no ID field)); it is not followed")
        );
    }
}
