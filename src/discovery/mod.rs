//! Finding lock sources by what they are: every table of an account and
//! region whose only key is `LockID` (S), narrowed by name globs. Over the
//! ports only (`TableCatalog`), so it is tested with fakes and against moto.

use futures::stream::{self, StreamExt};

use crate::domain::discovery::{FoundTables, NameFilter};
use crate::ports::discovery::TableCatalog;
use crate::ports::SourceError;

/// Tables described at once.
const DESCRIBE_CONCURRENCY: usize = 8;

/// The lock tables `catalog` holds. A table whose keys cannot be read is
/// named in `errors` and left out; a listing that fails is the error.
pub(crate) async fn lock_tables(catalog: &dyn TableCatalog, filter: &NameFilter) -> Result<FoundTables, SourceError> {
    let names = catalog.table_names().await?;
    let (wanted, left_out): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| filter.matches(n));
    let described: Vec<(String, Result<_, SourceError>)> = stream::iter(wanted)
        .map(|name| async move {
            let keys = catalog.describe_keys(&name).await;
            (name, keys)
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut found = FoundTables { examined: described.len(), filtered_out: left_out.len(), ..FoundTables::default() };
    for (name, keys) in described {
        match keys {
            Ok(d) if d.is_terraform_lock_table() => found.lock_tables.push(name),
            Ok(_) => {}
            Err(e) => found.errors.push(format!("{name}: {e}")),
        }
    }
    found.lock_tables.sort();
    found.errors.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::health::table::TableDescription;

    /// Tables by name: `Ok(keys)` or a describe that fails.
    struct Catalog(BTreeMap<&'static str, Result<TableDescription, &'static str>>);

    #[async_trait]
    impl TableCatalog for Catalog {
        async fn table_names(&self) -> Result<Vec<String>, SourceError> {
            Ok(self.0.keys().map(|k| k.to_string()).collect())
        }
        async fn describe_keys(&self, table: &str) -> Result<TableDescription, SourceError> {
            match &self.0[table] {
                Ok(d) => Ok(d.clone()),
                Err(why) => Err(SourceError::new(crate::domain::failure::ErrorKind::AccessDenied, *why)),
            }
        }
    }

    fn keyed(hash: &str, ty: &str) -> Result<TableDescription, &'static str> {
        Ok(TableDescription {
            key_schema: vec![(hash.into(), "HASH".into())],
            attribute_types: vec![(hash.into(), ty.into())],
            ..TableDescription::default()
        })
    }

    #[tokio::test]
    async fn only_tables_keyed_like_terraforms_are_found_and_failures_are_named() {
        let catalog = Catalog(BTreeMap::from([
            ("terraform-state-locks", keyed("LockID", "S")),
            ("a-name-nobody-would-guess", keyed("LockID", "S")),
            ("orders", keyed("OrderId", "S")),
            ("numbers", keyed("LockID", "N")),
            ("secret-locks", Err("access denied")),
        ]));
        let found = lock_tables(&catalog, &NameFilter::any()).await.unwrap();
        assert_eq!(found.lock_tables, ["a-name-nobody-would-guess", "terraform-state-locks"]);
        assert_eq!((found.examined, found.filtered_out), (5, 0));
        assert_eq!(found.errors, ["secret-locks: access denied"]);
        let narrowed = lock_tables(&catalog, &NameFilter::new(&["terraform-*".into()]).unwrap()).await.unwrap();
        assert_eq!((narrowed.lock_tables.len(), narrowed.examined, narrowed.filtered_out), (1, 1, 4));
    }
}
