//! Lock tables: read every item, and the two conditional writes the reaper
//! ever makes to one. Implemented by `adapters::dynamodb_locks`.

use async_trait::async_trait;

use crate::domain::lock::RawItem;
use crate::ports::{SourceError, WriteOutcome};

/// Terraform's DynamoDB lock tables (`dynamodb_table`), by table name.
#[async_trait]
pub trait LockTables: Send + Sync {
    /// Every item of the table (eventually consistent, all pages), handed
    /// to `page` one page at a time as pages arrive, so the caller keeps
    /// only what it needs. An error ends the scan; pages already handed
    /// over stay handed over.
    async fn scan(
        &self,
        table: &str,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError>;

    /// Delete the item if its `Info` is still exactly `expected_info`. When
    /// the condition fails, one consistent read tells `Changed` from `Gone`.
    async fn delete_lock(&self, table: &str, lock_key: &str, expected_info: &str) -> Result<WriteOutcome, SourceError>;

    /// Set `attribute` to `expires_at` if `Info` is unchanged and the
    /// attribute does not exist. Touches nothing else. When the condition
    /// fails, one consistent read tells `Changed` and `Gone` apart, and
    /// finds an earlier attempt of this write that landed (`Done`).
    async fn set_ttl(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError>;
}
