//! Reading how a lock table and a state bucket are set up (for `doctor`,
//! and the reaper's own TTL precondition). Implemented by
//! `adapters::dynamodb_inspect` and `adapters::s3_inspect`.

use async_trait::async_trait;

use crate::domain::health::bucket::BucketFacts;
use crate::domain::health::table::{TableFacts, TtlDescription};
use crate::domain::source::SourceAddress;
use crate::ports::SourceError;

/// A lock table's settings.
#[async_trait]
pub trait TableInspector: Send + Sync {
    /// Everything `doctor` checks; each call may fail on its own.
    async fn table_facts(&self, table: &SourceAddress) -> TableFacts;

    /// `DescribeTimeToLive` alone.
    async fn ttl(&self, table: &SourceAddress) -> Result<TtlDescription, SourceError>;
}

/// A state bucket's settings.
#[async_trait]
pub(crate) trait BucketInspector: Send + Sync {
    /// Everything `doctor` checks, and that `*.tflock` objects can be
    /// listed under the source's prefix.
    async fn bucket_facts(&self, bucket: &SourceAddress) -> BucketFacts;
}
