//! Lock tables: read every item, and the few conditional writes anyone here
//! ever makes to one. Two ports, one per user: [`LockTables`] is what the
//! reaper needs (scan, delete, TTL), [`HeldLockTables`] what `exec` needs
//! for the lock its own Terraform holds (read, heartbeat, restore,
//! release). Both implemented by `adapters::dynamodb_locks`.

use async_trait::async_trait;

use crate::domain::lock::RawItem;
use crate::domain::source::SourceAddress;
use crate::ports::{SourceError, WriteOutcome};

/// The heartbeat a delete expects to find as it was read: a heartbeat
/// written between the reaper's scan and its delete keeps the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatGuard<'a> {
    pub attribute: &'a str,
    /// The value read; `None`: the attribute must still be absent.
    pub value: Option<i64>,
}

/// One heartbeat write: `attribute = at`, and the rolling TTL when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Beat<'a> {
    pub attribute: &'a str,
    /// Epoch seconds.
    pub at: i64,
    /// The liveness contract (seconds) written beside it, in
    /// `<attribute>Timeout`.
    pub timeout: u64,
    /// `(TTL_ATTRIBUTE, now + TTL_AFTER)`: a TTL that can only expire once
    /// the holder has gone silent.
    pub ttl: Option<(&'a str, i64)>,
}

/// A lock item read consistently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldItem {
    /// The `Info` string; `None` when the item has none (not a lock).
    pub info: Option<String>,
    /// The heartbeat attribute, when there is one.
    pub heartbeat: Option<i64>,
    /// The liveness contract beside it (seconds), when there is one.
    pub heartbeat_timeout: Option<u64>,
}

/// Terraform's DynamoDB lock tables (`dynamodb_table`), as the reaper reads
/// and clears them.
#[async_trait]
pub trait LockTables: Send + Sync {
    /// Every item of the table (eventually consistent, all pages), handed
    /// to `page` one page at a time as pages arrive, so the caller keeps
    /// only what it needs. An error ends the scan; pages already handed
    /// over stay handed over.
    async fn scan(
        &self,
        table: &SourceAddress,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError>;

    /// Delete the item if its `Info` is still exactly `expected_info` (and,
    /// with a guard, its heartbeat still what was read). When the condition
    /// fails, one consistent read tells `Changed` from `Gone`.
    async fn delete_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError>;

    /// Set `attribute` to `expires_at` if `Info` is unchanged and the
    /// attribute does not exist. Touches nothing else. When the condition
    /// fails, one consistent read tells `Changed` and `Gone` apart, and
    /// finds an earlier attempt of this write that landed (`Done`).
    async fn set_ttl(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError>;
}

/// The table half of the lock a wrapped Terraform holds, as `exec` keeps it
/// alive and releases it.
#[async_trait]
pub(crate) trait HeldLockTables: Send + Sync {
    /// The item under `lock_key`, read consistently; `None` if there is none.
    async fn get_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        heartbeat_attribute: &str,
    ) -> Result<Option<HeldItem>, SourceError>;

    /// `UpdateItem SET` the heartbeat (and rolling TTL) if `Info` is still
    /// exactly `expected_info`; never replaces the item. `Gone` or
    /// `Changed` (after one consistent read) when the condition fails.
    async fn heartbeat(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError>;

    /// Put the lock back exactly as it was (`LockID`, the same `Info`, the
    /// heartbeat) only if no item holds the key: `Changed` when one does.
    async fn restore(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError>;

    /// Delete the item if its `Info` is still exactly `expected_info` (and,
    /// guarded, its heartbeat still what was read: another run's lock
    /// released because its holder went silent): `Gone` or `Changed`
    /// (after one consistent read) when it is not.
    async fn release(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError>;
}
