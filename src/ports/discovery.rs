//! Listing what an account and region hold, to find lock sources by what
//! they are, and the accounts of an AWS Organization. Implemented by
//! `adapters::dynamodb_inspect` and `adapters::organizations`, and by
//! `wiring` (a catalog per account and region).

use async_trait::async_trait;

use crate::domain::health::table::TableDescription;
use crate::domain::organization::OrgTree;
use crate::ports::SourceError;

/// The tables of one account and region, as a search reads them.
#[async_trait]
pub(crate) trait TableCatalog: Send + Sync {
    /// Every table's name (`ListTables`, all pages).
    async fn table_names(&self) -> Result<Vec<String>, SourceError>;

    /// One table's keys (`DescribeTable`).
    async fn describe_keys(&self, table: &str) -> Result<TableDescription, SourceError>;
}

/// The buckets of one account, as a search for lockfiles reads them.
#[async_trait]
pub(crate) trait BucketCatalog: Send + Sync {
    /// Every bucket's name (`ListBuckets`).
    async fn bucket_names(&self) -> Result<Vec<String>, SourceError>;

    /// A bucket's tags (`GetBucketTagging`); none when it has none.
    async fn bucket_tags(&self, bucket: &str) -> Result<Vec<(String, String)>, SourceError>;

    /// The bucket's region (`GetBucketLocation`).
    async fn bucket_region(&self, bucket: &str) -> Result<String, SourceError>;
}

/// An AWS Organization's tree: roots, OUs and accounts.
#[async_trait]
pub(crate) trait OrganizationReader: Send + Sync {
    async fn tree(&self) -> Result<OrgTree, SourceError>;
}

/// Who the reaper is, and the table catalog of any account and region.
#[async_trait]
pub(crate) trait Catalogs: Send + Sync {
    /// The reaper's own account ID and partition (`aws`, `aws-cn`, …).
    async fn whoami(&self) -> Result<(String, String), SourceError>;

    /// The reaper's own region.
    fn own_region(&self) -> Option<String>;

    /// The tables of `region`, through `role` (`None`: the reaper's own
    /// credentials).
    async fn catalog(&self, role: Option<&str>, region: &str) -> Box<dyn TableCatalog>;

    /// The buckets of an account, through `role` (`None`: the reaper's own
    /// credentials).
    async fn buckets(&self, role: Option<&str>) -> Box<dyn BucketCatalog>;
}
