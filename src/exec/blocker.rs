//! The lock that blocks the command: another run's lock on the state a
//! Terraform below `exec` is trying to take. Read it (both halves of a
//! double lock, with their heartbeats and liveness contracts), judge its
//! holder on AWS's clock by the same rule as the reaper, and release it only
//! when that holder provably went silent past its contract: each half
//! conditioned on the exact lock and heartbeat that were read. Async over
//! the ports only, so it is tested with the in-memory fakes.

use chrono::{DateTime, Utc};

use crate::domain::alert::text::shell_quote;
use crate::domain::backend::{BackendConnection, LockLocation};
use crate::domain::lock::{parse_lock_info, SourceKind};
use crate::domain::lock_record::RecordedHalf;
use crate::domain::policy::{HeartbeatTimeouts, Liveness};
use crate::domain::source::SourceAddress;
use crate::exec::holder::{describe, Released, Stores};
use crate::ports::lock_tables::HeartbeatGuard;
use crate::ports::{SourceError, WriteOutcome};
use crate::support::age::format_age;

/// One half of the blocking lock, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockingHalf {
    pub half: RecordedHalf,
    /// The heartbeat `exec` wrote on it (epoch seconds, AWS time).
    pub heartbeat: Option<i64>,
    /// The liveness contract written beside it (seconds).
    pub contract: Option<u64>,
}

/// Another run's lock on the state the command wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocker {
    pub lock_id: String,
    pub lock_path: String,
    pub who: String,
    pub operation: String,
    pub created: DateTime<Utc>,
    pub halves: Vec<BlockingHalf>,
}

/// What the blocker's holder is, judged on AWS's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub liveness: Liveness,
}

impl Blocker {
    /// The most recent heartbeat of any half and the longest contract: a
    /// holder alive on either half is alive.
    fn heartbeat_and_contract(&self) -> (Option<i64>, Option<u64>) {
        let heartbeat = self.halves.iter().filter_map(|h| h.heartbeat).max();
        let contract = self.halves.iter().filter_map(|h| h.contract).max();
        (heartbeat, contract)
    }

    /// The holder's liveness at `aws_now`, by its own contract within the
    /// bounds (the reaper's rule).
    pub(crate) fn judge(&self, aws_now: DateTime<Utc>, bounds: &HeartbeatTimeouts) -> Judgement {
        let (heartbeat, contract) = self.heartbeat_and_contract();
        Judgement { liveness: Liveness::of(heartbeat, aws_now, bounds.for_contract(contract)) }
    }

    /// `lock X (OperationTypeApply by ci@host since 2026-…)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "lock {} ({} by {} since {})",
            self.lock_id,
            self.operation,
            self.who,
            self.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// The `tf-lock-reaper unlock` command that clears it (both halves),
    /// in the backend's region.
    pub(crate) fn unlock_command(&self, connection: &BackendConnection) -> String {
        let mut command = String::new();
        if let Some(region) = &connection.region {
            command.push_str(&format!("AWS_REGION={} ", shell_quote(region)));
        }
        command.push_str(&format!("tf-lock-reaper unlock {}", shell_quote(&self.lock_id)));
        for h in &self.halves {
            match &h.half {
                RecordedHalf::Table { table, .. } => command.push_str(&format!(" --table {}", shell_quote(table))),
                RecordedHalf::Lockfile { bucket, .. } => {
                    command.push_str(&format!(" --bucket {}", shell_quote(bucket)))
                }
            }
        }
        command
    }
}

impl Judgement {
    /// Released here only when the holder is provably dead.
    pub(crate) fn is_dead(self) -> bool {
        self.liveness.is_dead()
    }
}

/// The lock at `location` when it is not the command's own (`ours`, the
/// lock ID Terraform logged): the halves carrying the first other lock ID,
/// with their heartbeats. `None` when the state is free or ours. A lock
/// that cannot be read as a Terraform lock is an error naming it: it is
/// never touched.
pub(crate) async fn read_blocker(
    stores: &Stores,
    location: &LockLocation,
    heartbeat_attribute: &str,
    ours: &str,
) -> Result<Option<Blocker>, SourceError> {
    let mut blocker: Option<Blocker> = None;
    let mut add = |lock: crate::domain::lock::Lock, half: BlockingHalf| {
        if lock.id == ours || blocker.as_ref().is_some_and(|b| b.lock_id != lock.id) {
            return;
        }
        blocker
            .get_or_insert_with(|| Blocker {
                lock_id: lock.id.clone(),
                lock_path: location.lock_path.clone(),
                who: lock.who.clone(),
                operation: lock.operation.clone(),
                created: lock.created,
                halves: Vec::new(),
            })
            .halves
            .push(half);
    };
    if let Some((table, key)) = &location.table {
        let at = SourceAddress::own(SourceKind::Table, table);
        let item = stores.tables.get_lock(&at, key, heartbeat_attribute).await?;
        if let Some((info, item)) = item.and_then(|i| i.info.clone().map(|info| (info, i))) {
            let what = || format!("table {table} item {key}");
            let lock = parse_lock_info(&at, key, &info).map_err(|reason| unreadable(what(), &reason))?;
            let half = RecordedHalf::Table { table: table.clone(), lock_key: key.clone(), info };
            add(lock, BlockingHalf { half, heartbeat: item.heartbeat, contract: item.heartbeat_timeout });
        }
    }
    if let Some((bucket, key)) = &location.lockfile {
        let at = SourceAddress::own(SourceKind::Bucket, bucket);
        if let Some(object) = stores.lockfiles.get_lockfile(&at, key).await? {
            let what = || format!("lockfile s3://{bucket}/{key}");
            let body = object.body.map_err(|reason| unreadable(what(), &reason))?;
            let lock = parse_lock_info(&at, key, &body).map_err(|reason| unreadable(what(), &reason))?;
            if lock.id != ours {
                let tags = stores.lockfiles.heartbeat_tags(&at, key).await?;
                let half = RecordedHalf::Lockfile {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    etag: object.etag,
                    version_id: object.version_id,
                    body,
                };
                add(lock, BlockingHalf { half, heartbeat: tags.at, contract: tags.timeout });
            }
        }
    }
    Ok(blocker)
}

/// Release a dead holder's lock, each half only if it is still exactly
/// what was read, heartbeat included (a heartbeat that lands in between
/// proves the holder alive). As the reaper does with a double lock: the
/// lockfile is checked first, the table half deleted (while the lockfile
/// still stops any new run), then the lockfile by its ETag; if either half
/// changed, neither is touched.
pub(crate) async fn release_dead(
    stores: &Stores,
    blocker: &Blocker,
    heartbeat_attribute: &str,
) -> Result<Vec<Released>, SourceError> {
    let changed = |h: &BlockingHalf| Released { half: describe(&h.half), outcome: WriteOutcome::Changed };
    // Check every lockfile half first: S3 cannot condition a delete on a tag.
    for h in &blocker.halves {
        if let RecordedHalf::Lockfile { bucket, key, etag, .. } = &h.half {
            let at = SourceAddress::own(SourceKind::Bucket, bucket);
            let current = stores.lockfiles.get_lockfile(&at, key).await?;
            let unchanged = current.is_some_and(|c| &c.etag == etag)
                && stores.lockfiles.heartbeat_tags(&at, key).await?.at == h.heartbeat;
            if !unchanged {
                return Ok(blocker.halves.iter().map(changed).collect());
            }
        }
    }
    let mut out = Vec::new();
    let mut taken = false;
    for h in &blocker.halves {
        let outcome = match &h.half {
            _ if taken => WriteOutcome::Changed,
            RecordedHalf::Table { table, lock_key, info } => {
                let at = SourceAddress::own(SourceKind::Table, table);
                let guard = HeartbeatGuard { attribute: heartbeat_attribute, value: h.heartbeat };
                stores.tables.release(&at, lock_key, info, Some(guard)).await?
            }
            RecordedHalf::Lockfile { bucket, key, etag, .. } => {
                let at = SourceAddress::own(SourceKind::Bucket, bucket);
                stores.lockfiles.release_lockfile(&at, key, etag).await?
            }
        };
        taken |= outcome == WriteOutcome::Changed;
        out.push(Released { half: describe(&h.half), outcome });
    }
    Ok(out)
}

/// A blocking lock that is not a Terraform lock: named, and left alone.
fn unreadable(what: String, reason: &str) -> SourceError {
    SourceError::new(
        crate::domain::failure::ErrorKind::Other,
        format!("{what} cannot be read as a Terraform lock ({reason}); it is left alone"),
    )
}

/// `its runner ci@host went silent 2m10s ago (contract 1m30s)`.
pub(crate) fn silence(blocker: &Blocker, judgement: Judgement) -> String {
    match judgement.liveness {
        Liveness::Dead { silent_seconds, timeout_seconds } | Liveness::Alive { silent_seconds, timeout_seconds } => {
            format!(
                "its runner {} went silent {} ago (contract {})",
                blocker.who,
                format_age(silent_seconds),
                format_age(timeout_seconds)
            )
        }
        other => format!("its runner {}: {}", blocker.who, other.describe()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::lock::{AttrValue, LOCKFILE_SUFFIX};
    use crate::fakes::{info, lock_item, MemoryLockTables, MemoryLockfiles};
    use crate::ports::lock_tables::{Beat, HeldItem, HeldLockTables};
    use crate::ports::lockfiles::HeartbeatTags;

    const KEY: &str = "tfstate/app/terraform.tfstate";
    const FILE: &str = "app/terraform.tfstate.tflock";

    fn location(table: bool, file: bool) -> LockLocation {
        LockLocation {
            lock_path: KEY.into(),
            table: table.then(|| ("locks".into(), KEY.into())),
            lockfile: file.then(|| ("tfstate".into(), format!("app/terraform.tfstate{LOCKFILE_SUFFIX}"))),
        }
    }

    fn bounds() -> HeartbeatTimeouts {
        let s = std::time::Duration::from_secs;
        HeartbeatTimeouts { default: s(600), min: s(60), max: s(3600) }
    }

    /// A table holding A's lock, heartbeated `silent` seconds before `now`
    /// with `contract`; and the same lock as a lockfile, tagged alike.
    fn held_by_a(
        now: i64,
        silent: Option<i64>,
        contract: Option<u64>,
    ) -> (Arc<MemoryLockTables>, Arc<MemoryLockfiles>, Stores) {
        let tables = Arc::new(MemoryLockTables::default().with_table("locks"));
        let files = Arc::new(MemoryLockfiles::default());
        let a = info("lock-a", Utc::now() - chrono::Duration::minutes(10));
        let mut item = lock_item(KEY, &a);
        if let Some(s) = silent {
            item.insert("Heartbeat".into(), AttrValue::N((now - s).to_string()));
        }
        if let Some(c) = contract {
            item.insert("HeartbeatTimeout".into(), AttrValue::N(c.to_string()));
        }
        tables.put("locks", item);
        files.put("tfstate", FILE, &a);
        if let Some(s) = silent {
            files.set_tags("tfstate", FILE, HeartbeatTags { at: Some(now - s), timeout: contract });
        }
        let stores = Stores { tables: tables.clone(), lockfiles: files.clone() };
        (tables, files, stores)
    }

    fn at(epoch: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(epoch, 0).unwrap()
    }

    #[tokio::test]
    async fn a_holder_silent_past_its_contract_is_released_both_halves() {
        let now = Utc::now().timestamp();
        let (tables, files, stores) = held_by_a(now, Some(130), Some(90));
        let b = read_blocker(&stores, &location(true, true), "Heartbeat", "lock-b").await.unwrap().unwrap();
        assert_eq!((b.lock_id.as_str(), b.halves.len()), ("lock-a", 2));
        let j = b.judge(at(now), &bounds());
        assert_eq!(j.liveness, Liveness::Dead { silent_seconds: 130, timeout_seconds: 90 });
        assert_eq!(silence(&b, j), "its runner ci@runner went silent 2m10s ago (contract 1m30s)");
        let released = release_dead(&stores, &b, "Heartbeat").await.unwrap();
        assert!(released.iter().all(|r| r.outcome == WriteOutcome::Done), "{released:?}");
        assert!(tables.get("locks", KEY).is_none() && files.get("tfstate", FILE).is_none());
    }

    #[tokio::test]
    async fn alive_unexpired_and_unheartbeated_holders_are_judged_so() {
        let now = Utc::now().timestamp();
        let judge = |silent: Option<i64>, contract: Option<u64>| async move {
            let (_, _, stores) = held_by_a(now, silent, contract);
            let b = read_blocker(&stores, &location(true, false), "Heartbeat", "lock-b").await.unwrap().unwrap();
            b.judge(at(now), &bounds())
        };
        assert!(!judge(Some(10), Some(90)).await.is_dead(), "alive");
        // The terminal contract (10m), silent for 2 minutes: not dead yet.
        assert_eq!(
            judge(Some(120), Some(600)).await.liveness,
            Liveness::Alive { silent_seconds: 120, timeout_seconds: 600 }
        );
        // Not under exec: no heartbeat, never released here, however old.
        assert_eq!(judge(None, None).await.liveness, Liveness::NoHeartbeat);
        // A heartbeat with no contract (an older exec): HEARTBEAT_TIMEOUT's 10m.
        assert!(!judge(Some(300), None).await.is_dead());
        // A contract below the bound is held to HEARTBEAT_TIMEOUT_MIN.
        assert!(!judge(Some(30), Some(5)).await.is_dead());
        // The command's own lock, or a free state, blocks nothing.
        let (_, _, stores) = held_by_a(now, Some(130), Some(90));
        assert_eq!(read_blocker(&stores, &location(true, true), "Heartbeat", "lock-a").await, Ok(None));
        let (tables, files, stores) = held_by_a(now, None, None);
        tables.remove("locks", KEY);
        files.remove("tfstate", FILE);
        assert_eq!(read_blocker(&stores, &location(true, true), "Heartbeat", "lock-b").await, Ok(None));
    }

    #[tokio::test]
    async fn the_unlock_command_names_the_lock_and_both_halves() {
        let now = Utc::now().timestamp();
        let (_, _, stores) = held_by_a(now, None, None);
        let b = read_blocker(&stores, &location(true, true), "Heartbeat", "lock-b").await.unwrap().unwrap();
        let connection = BackendConnection {
            region: Some("eu-west-1".into()),
            dynamodb_endpoint: None,
            s3_endpoint: None,
            use_path_style: false,
            profile: None,
        };
        assert_eq!(
            b.unlock_command(&connection),
            "AWS_REGION='eu-west-1' tf-lock-reaper unlock 'lock-a' --table 'locks' --bucket 'tfstate'"
        );
    }

    /// The table half as DynamoDB holds it, and A's wrapper heartbeating
    /// it the moment B's delete is sent: between B's read and B's delete.
    struct HeartbeatLandsFirst {
        inner: Arc<MemoryLockTables>,
        at: i64,
    }

    #[async_trait]
    impl HeldLockTables for HeartbeatLandsFirst {
        async fn get_lock(&self, t: &SourceAddress, k: &str, a: &str) -> Result<Option<HeldItem>, SourceError> {
            self.inner.get_lock(t, k, a).await
        }
        async fn heartbeat(
            &self,
            t: &SourceAddress,
            k: &str,
            i: &str,
            b: Beat<'_>,
        ) -> Result<WriteOutcome, SourceError> {
            self.inner.heartbeat(t, k, i, b).await
        }
        async fn restore(&self, t: &SourceAddress, k: &str, i: &str, b: Beat<'_>) -> Result<WriteOutcome, SourceError> {
            self.inner.restore(t, k, i, b).await
        }
        async fn release(
            &self,
            t: &SourceAddress,
            k: &str,
            i: &str,
            g: Option<HeartbeatGuard<'_>>,
        ) -> Result<WriteOutcome, SourceError> {
            let beat = Beat { attribute: "Heartbeat", at: self.at, timeout: 90, ttl: None };
            assert_eq!(self.inner.heartbeat(t, k, i, beat).await, Ok(WriteOutcome::Done));
            self.inner.release(t, k, i, g).await
        }
    }

    #[tokio::test]
    async fn a_heartbeat_landing_between_read_and_delete_keeps_the_lock() {
        let now = Utc::now().timestamp();
        let (tables, files, _) = held_by_a(now, Some(130), Some(90));
        let stores =
            Stores { tables: Arc::new(HeartbeatLandsFirst { inner: tables.clone(), at: now }), lockfiles: files };
        let b = read_blocker(&stores, &location(true, false), "Heartbeat", "lock-b").await.unwrap().unwrap();
        assert!(b.judge(at(now), &bounds()).is_dead());
        let released = release_dead(&stores, &b, "Heartbeat").await.unwrap();
        assert_eq!(released[0].outcome, WriteOutcome::Changed, "{released:?}");
        let item = tables.get("locks", KEY).expect("the lock is kept");
        assert_eq!(item.get("Heartbeat"), Some(&AttrValue::N(now.to_string())));
    }

    #[tokio::test]
    async fn a_lockfile_whose_heartbeat_moved_keeps_both_halves() {
        let now = Utc::now().timestamp();
        let (tables, files, stores) = held_by_a(now, Some(130), Some(90));
        let b = read_blocker(&stores, &location(true, true), "Heartbeat", "lock-b").await.unwrap().unwrap();
        files.set_tags("tfstate", FILE, HeartbeatTags { at: Some(now), timeout: Some(90) });
        let released = release_dead(&stores, &b, "Heartbeat").await.unwrap();
        assert!(released.iter().all(|r| r.outcome == WriteOutcome::Changed), "{released:?}");
        assert!(tables.get("locks", KEY).is_some() && files.get("tfstate", FILE).is_some());
        // Replaced by another run's lock since the read: left alone too.
        files.put("tfstate", FILE, &info("lock-c", Utc::now()));
        let released = release_dead(&stores, &b, "Heartbeat").await.unwrap();
        assert!(released.iter().all(|r| r.outcome == WriteOutcome::Changed), "{released:?}");
    }

    #[tokio::test]
    async fn an_unreadable_blocker_is_named_and_never_touched() {
        let (tables, _, stores) = held_by_a(Utc::now().timestamp(), Some(130), Some(90));
        tables.put("locks", lock_item(KEY, "not json"));
        let e = read_blocker(&stores, &location(true, false), "Heartbeat", "lock-b").await.unwrap_err();
        assert!(e.message.starts_with("table locks item tfstate/app/terraform.tfstate cannot be read"), "{e}");
        assert_eq!(tables.get("locks", KEY).unwrap().get("Info"), Some(&AttrValue::S("not json".into())));
    }
}
