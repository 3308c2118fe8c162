//! Listing what an account and region hold, to find lock sources by what
//! they are. Implemented by `adapters::dynamodb_inspect`.

use async_trait::async_trait;

use crate::domain::health::table::TableDescription;
use crate::ports::SourceError;

/// The tables of one account and region, as a search reads them.
#[async_trait]
pub(crate) trait TableCatalog: Send + Sync {
    /// Every table's name (`ListTables`, all pages).
    async fn table_names(&self) -> Result<Vec<String>, SourceError>;

    /// One table's keys (`DescribeTable`).
    async fn describe_keys(&self, table: &str) -> Result<TableDescription, SourceError>;
}
