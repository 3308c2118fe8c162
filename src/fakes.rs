//! In-memory fakes of every port, for fast tests of the pipeline and the
//! dispatcher (no server, no Python). They keep the real contracts: writes
//! are conditional on what was read, a claim succeeds once, a reminder moves
//! `last_notified_at` only from its expected value. Each can be told to
//! fail, and records what was asked of it.
//! Compiled for the crate's own tests and behind the `fakes` feature.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::alert::{Message, OpenAlert, Severity};
use crate::domain::failure::ErrorKind;
use crate::domain::lock::{epoch_attribute, AttrValue, RawItem};
use crate::domain::metrics::MetricSet;
use crate::ports::alert_state::{AlertState, StateError};
use crate::ports::clock::Clock;
use crate::ports::lock_tables::{Beat, HeartbeatGuard, HeldItem, LockTables};
use crate::ports::lockfiles::{LockfileBuckets, LockfileObject};
use crate::ports::metrics::{MetricsError, MetricsSink};
use crate::ports::notifier::{Notifier, NotifyError};
use crate::ports::{SourceError, WriteOutcome};
use crate::support::deadline::Deadline;

/// Lock a mutex, whatever a panicking test left behind.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lock item `{LockID, Info}` as Terraform writes it.
pub fn lock_item(lock_key: &str, info: &str) -> RawItem {
    let mut item = RawItem::new();
    item.insert("LockID".into(), AttrValue::S(lock_key.into()));
    item.insert("Info".into(), AttrValue::S(info.into()));
    item
}

/// LockInfo JSON with an ID and a creation time.
pub fn info(id: &str, created: DateTime<Utc>) -> String {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.15.5","Created":"{}"}}"#,
        created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// The item's `Info` is exactly `expected`: the condition of every write.
fn info_is(item: &RawItem, expected: &str) -> bool {
    matches!(item.get("Info"), Some(AttrValue::S(info)) if info == expected)
}

/// The item's heartbeat is what the guard expects (or there is no guard).
fn heartbeat_is(item: &RawItem, guard: Option<HeartbeatGuard<'_>>) -> bool {
    guard.is_none_or(|g| epoch_attribute(item, g.attribute) == g.value)
}

/// Write a heartbeat (and its rolling TTL) on an item, as `UpdateItem SET` does.
fn stamp(item: &mut RawItem, beat: Beat<'_>) {
    item.insert(beat.attribute.to_string(), AttrValue::N(beat.at.to_string()));
    if let Some((attribute, at)) = beat.ttl {
        item.insert(attribute.to_string(), AttrValue::N(at.to_string()));
    }
}

/// Lock tables in memory. A missing table fails its scan as DynamoDB would.
#[derive(Default)]
pub struct MemoryLockTables {
    tables: Mutex<BTreeMap<String, BTreeMap<String, RawItem>>>,
    /// Every write asked for, in order: `delete <table> <key>` or `ttl <table> <key> <at>`.
    pub writes: Mutex<Vec<String>>,
    /// Make every write fail (as an access-denied error).
    pub fail_writes: bool,
}

impl MemoryLockTables {
    /// Tables whose every write fails (as an access-denied error).
    pub fn failing_writes() -> Self {
        MemoryLockTables { fail_writes: true, ..Default::default() }
    }

    pub fn with_table(self, table: &str) -> Self {
        locked(&self.tables).entry(table.to_string()).or_default();
        self
    }

    /// Put (or replace) an item, as Terraform's `PutItem` does.
    pub fn put(&self, table: &str, item: RawItem) {
        let key = match item.get("LockID") {
            Some(AttrValue::S(k)) => k.clone(),
            _ => format!("<item {}>", locked(&self.tables).get(table).map_or(0, BTreeMap::len)),
        };
        locked(&self.tables).entry(table.to_string()).or_default().insert(key, item);
    }

    /// The table disappears: its scans fail from now on.
    pub fn drop_table(&self, table: &str) {
        locked(&self.tables).remove(table);
    }

    pub fn remove(&self, table: &str, lock_key: &str) {
        if let Some(t) = locked(&self.tables).get_mut(table) {
            t.remove(lock_key);
        }
    }

    pub fn get(&self, table: &str, lock_key: &str) -> Option<RawItem> {
        locked(&self.tables).get(table).and_then(|t| t.get(lock_key)).cloned()
    }

    pub fn writes(&self) -> Vec<String> {
        locked(&self.writes).clone()
    }
}

#[async_trait]
impl LockTables for MemoryLockTables {
    async fn scan(
        &self,
        table: &str,
        _segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        let items: Vec<RawItem> =
            locked(&self.tables).get(table).map(|t| t.values().cloned().collect()).ok_or_else(|| {
                SourceError::new(ErrorKind::NotFound, format!("Scan failed: table {table} does not exist"))
            })?;
        // Pages of two items, as a small Limit would give.
        for chunk in items.chunks(2) {
            page(chunk.to_vec());
        }
        Ok(())
    }

    async fn delete_lock(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        locked(&self.writes).push(format!("delete {table} {lock_key}"));
        if self.fail_writes {
            return Err(SourceError::new(ErrorKind::AccessDenied, "AccessDeniedException: not authorized"));
        }
        // Check and delete under one lock, as DynamoDB's condition does.
        let mut tables = locked(&self.tables);
        let Some(items) = tables.get_mut(table) else { return Ok(WriteOutcome::Gone) };
        match items.get(lock_key) {
            None => Ok(WriteOutcome::Gone),
            Some(item) if !info_is(item, expected_info) || !heartbeat_is(item, heartbeat) => Ok(WriteOutcome::Changed),
            Some(_) => {
                items.remove(lock_key);
                Ok(WriteOutcome::Done)
            }
        }
    }

    async fn set_ttl(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        locked(&self.writes).push(format!("ttl {table} {lock_key} {expires_at}"));
        if self.fail_writes {
            return Err(SourceError::new(ErrorKind::AccessDenied, "AccessDeniedException: not authorized"));
        }
        let mut tables = locked(&self.tables);
        let item = tables.get_mut(table).and_then(|t| t.get_mut(lock_key));
        match item {
            Some(item) if info_is(item, expected_info) && !item.contains_key(attribute) => {
                item.insert(attribute.to_string(), AttrValue::N(expires_at.to_string()));
                Ok(WriteOutcome::Done)
            }
            Some(_) => Ok(WriteOutcome::Changed),
            None => Ok(WriteOutcome::Gone),
        }
    }

    async fn get_lock(
        &self,
        table: &str,
        lock_key: &str,
        heartbeat_attribute: &str,
    ) -> Result<Option<HeldItem>, SourceError> {
        let tables = locked(&self.tables);
        let t = tables.get(table).ok_or_else(|| {
            SourceError::new(ErrorKind::NotFound, format!("GetItem failed: table {table} does not exist"))
        })?;
        Ok(t.get(lock_key).map(|item| HeldItem {
            info: match item.get("Info") {
                Some(AttrValue::S(s)) => Some(s.clone()),
                _ => None,
            },
            heartbeat: epoch_attribute(item, heartbeat_attribute),
        }))
    }

    async fn heartbeat(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        locked(&self.writes).push(format!("heartbeat {table} {lock_key} {}", beat.at));
        if self.fail_writes {
            return Err(SourceError::new(ErrorKind::AccessDenied, "AccessDeniedException: not authorized"));
        }
        let mut tables = locked(&self.tables);
        match tables.get_mut(table).and_then(|t| t.get_mut(lock_key)) {
            Some(item) if info_is(item, expected_info) => {
                stamp(item, beat);
                Ok(WriteOutcome::Done)
            }
            Some(_) => Ok(WriteOutcome::Changed),
            None => Ok(WriteOutcome::Gone),
        }
    }

    async fn restore(
        &self,
        table: &str,
        lock_key: &str,
        info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        locked(&self.writes).push(format!("restore {table} {lock_key}"));
        if self.fail_writes {
            return Err(SourceError::new(ErrorKind::AccessDenied, "AccessDeniedException: not authorized"));
        }
        let mut tables = locked(&self.tables);
        let items = tables.entry(table.to_string()).or_default();
        if items.contains_key(lock_key) {
            return Ok(WriteOutcome::Changed);
        }
        let mut item = lock_item(lock_key, info);
        stamp(&mut item, beat);
        items.insert(lock_key.to_string(), item);
        Ok(WriteOutcome::Done)
    }
}

/// One bucket's lockfiles: `key → (etag, body)`.
type Objects = BTreeMap<String, (String, String)>;

/// When a [`HookedLockTables`] runs its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    BeforeScan,
    AfterScan,
    BeforeWrite,
}

/// What a hook does: given the tables, the table name and (for writes) the
/// lock key.
pub type HookFn = Box<dyn Fn(&MemoryLockTables, &str, Option<&str>) + Send + Sync>;

/// In-memory lock tables that run a hook at one point: a test's way to make
/// something happen between the reaper's read and its write (a release, a
/// re-acquire, a slow read).
pub struct HookedLockTables {
    pub inner: std::sync::Arc<MemoryLockTables>,
    pub at: Hook,
    pub hook: HookFn,
}

impl HookedLockTables {
    pub fn new(
        inner: std::sync::Arc<MemoryLockTables>,
        at: Hook,
        hook: impl Fn(&MemoryLockTables, &str, Option<&str>) + Send + Sync + 'static,
    ) -> Self {
        HookedLockTables { inner, at, hook: Box::new(hook) }
    }

    fn run(&self, at: Hook, table: &str, key: Option<&str>) {
        if self.at == at {
            (self.hook)(&self.inner, table, key);
        }
    }
}

#[async_trait]
impl LockTables for HookedLockTables {
    async fn scan(
        &self,
        table: &str,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        self.run(Hook::BeforeScan, table, None);
        let read = self.inner.scan(table, segments, page).await;
        self.run(Hook::AfterScan, table, None);
        read
    }

    async fn delete_lock(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        self.run(Hook::BeforeWrite, table, Some(lock_key));
        self.inner.delete_lock(table, lock_key, expected_info, heartbeat).await
    }

    async fn set_ttl(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        self.run(Hook::BeforeWrite, table, Some(lock_key));
        self.inner.set_ttl(table, lock_key, expected_info, attribute, expires_at).await
    }

    async fn get_lock(
        &self,
        table: &str,
        lock_key: &str,
        heartbeat_attribute: &str,
    ) -> Result<Option<HeldItem>, SourceError> {
        self.inner.get_lock(table, lock_key, heartbeat_attribute).await
    }

    async fn heartbeat(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        self.run(Hook::BeforeWrite, table, Some(lock_key));
        self.inner.heartbeat(table, lock_key, expected_info, beat).await
    }

    async fn restore(
        &self,
        table: &str,
        lock_key: &str,
        info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        self.run(Hook::BeforeWrite, table, Some(lock_key));
        self.inner.restore(table, lock_key, info, beat).await
    }
}

/// Lockfile buckets in memory: `bucket → key → (etag, body)`. ETags change
/// with every put, as S3's do with the content.
#[derive(Default)]
pub struct MemoryLockfiles {
    buckets: Mutex<BTreeMap<String, Objects>>,
    puts: Mutex<u64>,
    /// `(bucket, key) → heartbeat tag`; a put or delete clears it, as a new
    /// object starts without tags.
    tags: Mutex<BTreeMap<(String, String), i64>>,
}

impl MemoryLockfiles {
    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        let mut puts = locked(&self.puts);
        *puts += 1;
        let etag = format!("\"etag-{}\"", *puts);
        locked(&self.buckets).entry(bucket.to_string()).or_default().insert(key.to_string(), (etag, body.to_string()));
        locked(&self.tags).remove(&(bucket.to_string(), key.to_string()));
    }

    /// Tag a lockfile with a heartbeat, as `exec` does.
    pub fn set_heartbeat(&self, bucket: &str, key: &str, at: i64) {
        locked(&self.tags).insert((bucket.to_string(), key.to_string()), at);
    }

    fn heartbeat_of(&self, bucket: &str, key: &str) -> Option<i64> {
        locked(&self.tags).get(&(bucket.to_string(), key.to_string())).copied()
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<String> {
        locked(&self.buckets).get(bucket).and_then(|b| b.get(key)).map(|(_, body)| body.clone())
    }
}

#[async_trait]
impl LockfileBuckets for MemoryLockfiles {
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<LockfileObject>, SourceError> {
        let buckets = locked(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| SourceError::new(ErrorKind::NotFound, format!("NoSuchBucket: {bucket}")))?;
        Ok(b.iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.ends_with(crate::domain::lock::LOCKFILE_SUFFIX))
            .map(|(k, (etag, body))| LockfileObject {
                key: k.clone(),
                etag: etag.clone(),
                version_id: None,
                body: Ok(body.clone()),
                heartbeat: self.heartbeat_of(bucket, k),
            })
            .collect())
    }

    async fn current_etag(&self, bucket: &str, key: &str) -> Result<Option<String>, SourceError> {
        Ok(locked(&self.buckets).get(bucket).and_then(|b| b.get(key)).map(|(etag, _)| etag.clone()))
    }

    async fn delete_lockfile(&self, bucket: &str, key: &str, etag: &str) -> Result<WriteOutcome, SourceError> {
        let mut buckets = locked(&self.buckets);
        let Some(b) = buckets.get_mut(bucket) else { return Ok(WriteOutcome::Gone) };
        match b.get(key) {
            Some((current, _)) if current == etag => {
                b.remove(key);
                locked(&self.tags).remove(&(bucket.to_string(), key.to_string()));
                Ok(WriteOutcome::Done)
            }
            Some(_) => Ok(WriteOutcome::Changed),
            None => Ok(WriteOutcome::Gone),
        }
    }

    async fn current_heartbeat(&self, bucket: &str, key: &str) -> Result<Option<i64>, SourceError> {
        Ok(self.heartbeat_of(bucket, key))
    }

    async fn get_lockfile(&self, bucket: &str, key: &str) -> Result<Option<LockfileObject>, SourceError> {
        let buckets = locked(&self.buckets);
        Ok(buckets.get(bucket).and_then(|b| b.get(key)).map(|(etag, body)| LockfileObject {
            key: key.to_string(),
            etag: etag.clone(),
            version_id: None,
            body: Ok(body.clone()),
            heartbeat: None,
        }))
    }

    async fn tag_heartbeat(
        &self,
        bucket: &str,
        key: &str,
        _version_id: Option<&str>,
        at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        if self.get(bucket, key).is_none() {
            return Ok(WriteOutcome::Gone);
        }
        self.set_heartbeat(bucket, key, at);
        Ok(WriteOutcome::Done)
    }

    async fn restore_lockfile(&self, bucket: &str, key: &str, body: &str) -> Result<WriteOutcome, SourceError> {
        if self.get(bucket, key).is_some() {
            return Ok(WriteOutcome::Changed);
        }
        self.put(bucket, key, body);
        Ok(WriteOutcome::Done)
    }
}

/// The notify-once state in memory, with the same conditional semantics as
/// the DynamoDB table.
#[derive(Default)]
pub struct MemoryAlertState {
    pub open: Mutex<BTreeMap<String, OpenAlert>>,
    /// Make every call fail.
    pub fail: bool,
}

impl MemoryAlertState {
    pub fn keys(&self) -> Vec<String> {
        locked(&self.open).keys().cloned().collect()
    }

    fn check(&self) -> Result<(), StateError> {
        if self.fail {
            Err(StateError("AccessDeniedException: not authorized".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AlertState for MemoryAlertState {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        self.check()?;
        Ok(locked(&self.open).values().cloned().collect())
    }

    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError> {
        self.check()?;
        let mut open = locked(&self.open);
        if open.contains_key(&alert.key) {
            return Ok(false);
        }
        open.insert(alert.key.clone(), alert.clone());
        Ok(true)
    }

    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        self.check()?;
        match locked(&self.open).get_mut(key) {
            Some(a) if a.last_notified_at == expected => {
                a.last_notified_at = now;
                a.severity = severity;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError> {
        self.check()?;
        if let Some(a) = locked(&self.open).get_mut(key) {
            a.count = Some(count);
            a.summary = summary.to_string();
        }
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), StateError> {
        self.check()?;
        locked(&self.open).remove(key);
        Ok(())
    }
}

/// A channel that records every message it is given.
#[derive(Default)]
pub struct RecordingNotifier {
    pub sent: Mutex<Vec<Message>>,
    /// Make every delivery fail.
    pub fail: bool,
}

impl RecordingNotifier {
    pub fn sent(&self) -> Vec<Message> {
        locked(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn channel(&self) -> &'static str {
        "memory"
    }

    async fn send(&self, message: &Message, _deadline: Deadline) -> Result<(), NotifyError> {
        if self.fail {
            return Err(NotifyError("channel down".into()));
        }
        locked(&self.sent).push(message.clone());
        Ok(())
    }
}

/// Forward to a shared notifier, so a test keeps a handle on what was sent
/// while the dispatcher owns its channels.
#[async_trait]
impl<N: Notifier> Notifier for std::sync::Arc<N> {
    fn channel(&self) -> &'static str {
        self.as_ref().channel()
    }

    async fn send(&self, message: &Message, deadline: Deadline) -> Result<(), NotifyError> {
        self.as_ref().send(message, deadline).await
    }
}

/// Forward to a shared state, as for notifiers.
#[async_trait]
impl<S: AlertState> AlertState for std::sync::Arc<S> {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        self.as_ref().open_alerts().await
    }
    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError> {
        self.as_ref().claim(alert).await
    }
    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        self.as_ref().renotified(key, expected, now, severity).await
    }
    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError> {
        self.as_ref().recount(key, count, summary).await
    }
    async fn forget(&self, key: &str) -> Result<(), StateError> {
        self.as_ref().forget(key).await
    }
}

/// Metric sets as published.
#[derive(Default)]
pub struct RecordingMetrics {
    pub published: Mutex<Vec<MetricSet>>,
}

#[async_trait]
impl MetricsSink for RecordingMetrics {
    async fn publish(&self, _namespace: &str, _at: DateTime<Utc>, sets: &[MetricSet]) -> Result<(), MetricsError> {
        locked(&self.published).extend_from_slice(sets);
        Ok(())
    }
}

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(now))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *locked(&self.0) += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *locked(&self.0)
    }
}
