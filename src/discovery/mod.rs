//! Finding lock sources by what they are: every table of an account and
//! region whose only key is `LockID` (S), narrowed by name globs; across an
//! AWS Organization, every `ACTIVE` account in scope and every region asked
//! for, each through its member role. An account or region that fails is
//! named and holds up nothing else. Over the ports only, so it is tested
//! with fakes and against moto.

use futures::stream::{self, StreamExt};

use crate::config::{AssumeRole, OrgDiscovery};
use crate::domain::discovery::{BucketFilter, DiscoveryFailure, DiscoverySummary, FoundTables, NameFilter};
use crate::domain::organization::{member_role_arn, table_arn};
use crate::domain::source::SourceAddress;
use crate::ports::discovery::{BucketCatalog, Catalogs, OrganizationReader, TableCatalog};
use crate::ports::SourceError;

/// (account, region) pairs searched at once.
const SEARCH_CONCURRENCY: usize = 8;

/// What a discovery across an organisation yields: the tables, the role
/// for each member account they are in, and the summary for the report.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub tables: Vec<SourceAddress>,
    /// Lockfile buckets (`DISCOVER_BUCKETS`), `bucket[/prefix]@region:account`.
    pub buckets: Vec<SourceAddress>,
    pub roles: Vec<AssumeRole>,
    pub summary: DiscoverySummary,
}

/// Search the organisation's accounts in scope, in every region asked for
/// (the reaper's own by default). The reaper's own account is searched with
/// its own credentials, the others through `MEMBER_ROLE_NAME`; a table in the
/// reaper's own account and region keeps its bare name.
pub(crate) async fn organization(
    org: &OrgDiscovery,
    reader: &dyn OrganizationReader,
    catalogs: &dyn Catalogs,
) -> Discovered {
    let mut out = Discovered::default();
    let failed = |account: Option<&str>, region: Option<&str>, role: Option<&str>, e: &SourceError| DiscoveryFailure {
        account: account.map(str::to_string),
        region: region.map(str::to_string),
        role: role.map(str::to_string),
        reason: e.message.clone(),
    };
    let (own_account, partition) = match catalogs.whoami().await {
        Ok(me) => me,
        Err(e) => {
            out.summary.failures.push(failed(None, None, None, &e));
            return out;
        }
    };
    let tree = match reader.tree().await {
        Ok(tree) => tree,
        Err(e) => {
            out.summary.failures.push(failed(None, None, org.organization_role_arn.as_deref(), &e));
            return out;
        }
    };
    let scope = tree.scope(&org.accounts, &org.skip);
    let own_region = catalogs.own_region();
    let regions: Vec<String> =
        if org.regions.is_empty() { own_region.iter().cloned().collect() } else { org.regions.clone() };
    let role_of =
        |account: &str| (account != own_account).then(|| member_role_arn(&partition, account, &org.member_role_name));
    let pairs: Vec<(String, String)> =
        scope.accounts.iter().flat_map(|a| regions.iter().map(move |r| (a.clone(), r.clone()))).collect();
    out.summary.accounts = scope.accounts.len();
    out.summary.skipped_accounts = scope.skipped;
    out.summary.inactive_accounts = scope.inactive;
    out.summary.unknown_targets = scope.unknown_targets;
    out.summary.searched = pairs.len();
    let results: Vec<_> = stream::iter(pairs)
        .map(|(account, region)| {
            let role = role_of(&account);
            async move {
                let catalog = catalogs.catalog(role.as_deref(), &region).await;
                let found = lock_tables(catalog.as_ref(), &org.tables).await;
                (account, region, role, found)
            }
        })
        .buffer_unordered(SEARCH_CONCURRENCY)
        .collect()
        .await;
    for (account, region, role, found) in results {
        match found {
            Ok(found) => {
                out.summary.other_tables += found.examined + found.filtered_out - found.lock_tables.len();
                for e in &found.errors {
                    let e = SourceError::new(crate::domain::failure::ErrorKind::Other, e.clone());
                    out.summary.failures.push(failed(Some(&account), Some(&region), role.as_deref(), &e));
                }
                for name in found.lock_tables {
                    let own = account == own_account && own_region.as_deref() == Some(region.as_str());
                    let address = if own {
                        Ok(SourceAddress::own(crate::domain::source::SourceKind::Table, &name))
                    } else {
                        SourceAddress::table(&table_arn(&partition, &region, &account, &name))
                    };
                    if let Ok(address) = address {
                        out.tables.push(address);
                    }
                }
                note_role(&mut out.roles, account, role);
            }
            Err(e) => out.summary.failures.push(failed(Some(&account), Some(&region), role.as_deref(), &e)),
        }
    }
    if !org.buckets.is_empty() {
        let searched: Vec<AccountBuckets> = stream::iter(scope.accounts.clone())
            .map(|account| {
                let role = role_of(&account);
                let regions = &regions;
                async move {
                    let catalog = catalogs.buckets(role.as_deref()).await;
                    let mut errors = Vec::new();
                    let found = lockfile_buckets(catalog.as_ref(), &org.buckets, regions, &mut errors).await;
                    AccountBuckets { account, role, found, errors }
                }
            })
            .buffer_unordered(SEARCH_CONCURRENCY)
            .collect()
            .await;
        for AccountBuckets { account, role, found, errors } in searched {
            for e in errors {
                let e = SourceError::new(crate::domain::failure::ErrorKind::Other, e);
                out.summary.failures.push(failed(Some(&account), None, role.as_deref(), &e));
            }
            match found {
                Ok(found) => {
                    for b in found {
                        let path =
                            if b.prefix.is_empty() { b.bucket.clone() } else { format!("{}/{}", b.bucket, b.prefix) };
                        let own_account = account == own_account;
                        let entry = match (own_account, own_region.as_deref() == Some(b.region.as_str())) {
                            (true, true) => path,
                            (true, false) => format!("{path}@{}", b.region),
                            (false, _) => format!("{path}@{}:{account}", b.region),
                        };
                        if let Ok(address) = SourceAddress::bucket(&entry) {
                            out.buckets.push(address);
                        }
                    }
                    note_role(&mut out.roles, account, role);
                }
                Err(e) => out.summary.failures.push(failed(Some(&account), None, role.as_deref(), &e)),
            }
        }
    }
    out.tables.sort();
    out.tables.dedup();
    out.buckets.sort();
    out.buckets.dedup();
    out.summary.tables = out.tables.len();
    out.summary.buckets = out.buckets.len();
    out.summary.failures.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    out.roles.sort_by(|a, b| a.account.cmp(&b.account));
    out.roles.dedup_by(|a, b| a.account == b.account);
    out
}

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

/// The member role of an account a source was found in (once per account:
/// `out.roles` is deduplicated at the end).
fn note_role(roles: &mut Vec<AssumeRole>, account: String, role: Option<String>) {
    if let Some(arn) = role {
        roles.push(AssumeRole { arn, account });
    }
}

/// What the bucket search of one account found.
struct AccountBuckets {
    account: String,
    role: Option<String>,
    found: Result<Vec<FoundBucket>, SourceError>,
    /// Buckets whose tags or region could not be read.
    errors: Vec<String>,
}

/// A bucket that holds lockfiles, where to search it, and its region.
struct FoundBucket {
    bucket: String,
    prefix: String,
    region: String,
}

/// The buckets of one account `filter` keeps, in the regions searched. A
/// bucket whose tags or region cannot be read is named in `errors` and left
/// out; a listing that fails is the error.
async fn lockfile_buckets(
    catalog: &dyn BucketCatalog,
    filter: &BucketFilter,
    regions: &[String],
    errors: &mut Vec<String>,
) -> Result<Vec<FoundBucket>, SourceError> {
    let mut found = Vec::new();
    for bucket in catalog.bucket_names().await? {
        let mut prefix = filter.prefix_for(&bucket, None);
        if prefix.is_none() && filter.needs_tags() {
            match catalog.bucket_tags(&bucket).await {
                Ok(tags) => prefix = filter.prefix_for(&bucket, Some(&tags)),
                Err(e) => errors.push(format!("bucket {bucket}: {e}")),
            }
        }
        let Some(prefix) = prefix else { continue };
        match catalog.bucket_region(&bucket).await {
            Ok(region) if regions.contains(&region) => found.push(FoundBucket { bucket, prefix, region }),
            Ok(_) => {}
            Err(e) => errors.push(format!("bucket {bucket}: {e}")),
        }
    }
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
