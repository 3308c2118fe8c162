//! Lock tables in memory, with DynamoDB's conditional writes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::failure::ErrorKind;
use crate::domain::lock::{contract_seconds, epoch_attribute, heartbeat_timeout_attribute, AttrValue, RawItem};
use crate::domain::source::SourceAddress;
use crate::ports::lock_tables::{Beat, HeartbeatGuard, HeldItem, HeldLockTables, LockTables};
use crate::ports::{SourceError, WriteOutcome};
use crate::support::sync::locked;

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
        concat!(
            r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.15.5","#,
            r#""Created":"{}"}}"#
        ),
        created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        id = id,
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
    item.insert(heartbeat_timeout_attribute(beat.attribute), AttrValue::N(beat.timeout.to_string()));
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

    /// Record a write asked for; fail it when every write fails.
    fn write(&self, entry: String) -> Result<(), SourceError> {
        locked(&self.writes).push(entry);
        if self.fail_writes {
            return Err(SourceError::new(ErrorKind::AccessDenied, "AccessDeniedException: not authorized"));
        }
        Ok(())
    }
}

#[async_trait]
impl LockTables for MemoryLockTables {
    async fn scan(
        &self,
        table: &SourceAddress,
        _segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        let table = &table.to_string();
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
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.to_string();
        self.write(format!("delete {table} {lock_key}"))?;
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
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.to_string();
        self.write(format!("ttl {table} {lock_key} {expires_at}"))?;
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
}

#[async_trait]
impl HeldLockTables for MemoryLockTables {
    async fn get_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        heartbeat_attribute: &str,
    ) -> Result<Option<HeldItem>, SourceError> {
        let table = &table.to_string();
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
            heartbeat_timeout: contract_seconds(epoch_attribute(
                item,
                &heartbeat_timeout_attribute(heartbeat_attribute),
            )),
        }))
    }

    async fn heartbeat(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.to_string();
        self.write(format!("heartbeat {table} {lock_key} {}", beat.at))?;
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
        table: &SourceAddress,
        lock_key: &str,
        info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.to_string();
        self.write(format!("restore {table} {lock_key}"))?;
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

    async fn release(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        LockTables::delete_lock(self, table, lock_key, expected_info, heartbeat).await
    }
}
