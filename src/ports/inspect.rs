//! Reading how a lock table and a state bucket are set up (for `doctor`,
//! and the reaper's own TTL precondition). Implemented by
//! `adapters::dynamodb_inspect` and `adapters::s3_inspect`.

use async_trait::async_trait;

use crate::domain::doctor::bucket::BucketFacts;
use crate::domain::doctor::table::{TableFacts, TtlDescription};
use crate::ports::SourceError;

/// A lock table's settings.
#[async_trait]
pub trait TableInspector: Send + Sync {
    /// Everything `doctor` checks; each call may fail on its own.
    async fn table_facts(&self, table: &str) -> TableFacts;

    /// `DescribeTimeToLive` alone.
    async fn ttl(&self, table: &str) -> Result<TtlDescription, SourceError>;
}

/// A state bucket's settings.
#[async_trait]
pub trait BucketInspector: Send + Sync {
    /// Everything `doctor` checks; with `lockfile_prefix`, also that
    /// `*.tflock` objects can be listed under it.
    async fn bucket_facts(&self, bucket: &str, lockfile_prefix: Option<&str>) -> BucketFacts;
}
