//! Sources in other regions and accounts: one adapter per (region, role),
//! built once (per container) by `wiring`, and a router in front of them
//! that implements the same ports. A call names its source by address (a
//! table ARN, `bucket@region:account`, or a bare name for the reaper's own
//! account and region); the router picks the adapter for that region and
//! the role of that account (`ASSUME_ROLES`), and hands it the bare name.

use std::borrow::Cow;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::health::bucket::BucketFacts;
use crate::domain::health::table::{TableFacts, TtlDescription};
use crate::domain::lock::RawItem;
use crate::domain::source::SourceAddress;
use crate::ports::inspect::{BucketInspector, TableInspector};
use crate::ports::lock_tables::{HeartbeatGuard, LockTables};
use crate::ports::lockfiles::{LockfileBuckets, LockfileObject};
use crate::ports::{SourceError, WriteOutcome};

/// Which client serves a source: its region (`None`: the reaper's own)
/// and the role assumed for its account (`None`: the reaper's own
/// credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Route {
    pub region: Option<String>,
    pub role: Option<String>,
}

impl Route {
    /// The reaper's own region and credentials.
    pub(crate) fn own() -> Self {
        Route { region: None, role: None }
    }
}

/// The route of a source address, given the role of each account.
pub(crate) fn route_of(roles: &HashMap<String, String>, address: &SourceAddress) -> Route {
    Route { region: address.region.clone(), role: address.account.as_ref().and_then(|a| roles.get(a)).cloned() }
}

/// Adapters by route, and the role of each account.
pub(crate) struct Router<T> {
    routes: HashMap<Route, T>,
    /// account → role ARN (`ASSUME_ROLES`).
    roles: HashMap<String, String>,
}

impl<T> Router<T> {
    pub(crate) fn new(routes: HashMap<Route, T>, roles: HashMap<String, String>) -> Self {
        Router { routes, roles }
    }

    /// The adapter for `address`, the address to give it (as seen from
    /// inside its account when a role is assumed there: the bare name
    /// reaches it; else a table in another account goes by its ARN, shared
    /// with the reaper's own credentials by a resource-based policy), and
    /// the role assumed.
    fn pick<'a>(
        &'a self,
        address: &'a SourceAddress,
    ) -> Result<(&'a T, Cow<'a, SourceAddress>, Option<&'a str>), SourceError> {
        let route = route_of(&self.roles, address);
        let adapter = self.routes.get(&route).ok_or_else(|| {
            SourceError::new(
                crate::domain::failure::ErrorKind::Other,
                format!(
                    "no client for {} {address} (region {:?}): it is not a configured source",
                    address.kind.as_str(),
                    route.region
                ),
            )
        })?;
        let role = address.account.as_ref().and_then(|a| self.roles.get(a)).map(String::as_str);
        let given = if role.is_some() { Cow::Owned(address.in_its_account()) } else { Cow::Borrowed(address) };
        Ok((adapter, given, role))
    }
}

/// Say which role a failed call used: an AssumeRole denied reads as such.
fn as_role<T>(result: Result<T, SourceError>, role: Option<&str>) -> Result<T, SourceError> {
    result.map_err(|e| match role {
        Some(r) => SourceError::new(e.kind, format!("{} (as role {r})", e.message)),
        None => e,
    })
}

#[async_trait]
impl<T: LockTables> LockTables for Router<T> {
    async fn scan(
        &self,
        table: &SourceAddress,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        let (a, name, role) = self.pick(table)?;
        as_role(a.scan(&name, segments, page).await, role)
    }

    async fn delete_lock(
        &self,
        table: &SourceAddress,
        key: &str,
        info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        let (a, name, role) = self.pick(table)?;
        as_role(a.delete_lock(&name, key, info, heartbeat).await, role)
    }

    async fn set_ttl(
        &self,
        table: &SourceAddress,
        key: &str,
        info: &str,
        attr: &str,
        at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        let (a, name, role) = self.pick(table)?;
        as_role(a.set_ttl(&name, key, info, attr, at).await, role)
    }
}

#[async_trait]
impl<T: LockfileBuckets> LockfileBuckets for Router<T> {
    async fn list(&self, bucket: &SourceAddress) -> Result<Vec<LockfileObject>, SourceError> {
        let (a, name, role) = self.pick(bucket)?;
        as_role(a.list(&name).await, role)
    }

    async fn current_etag(&self, bucket: &SourceAddress, key: &str) -> Result<Option<String>, SourceError> {
        let (a, name, role) = self.pick(bucket)?;
        as_role(a.current_etag(&name, key).await, role)
    }

    async fn current_heartbeat(&self, bucket: &SourceAddress, key: &str) -> Result<Option<i64>, SourceError> {
        let (a, name, role) = self.pick(bucket)?;
        as_role(a.current_heartbeat(&name, key).await, role)
    }

    async fn delete_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError> {
        let (a, name, role) = self.pick(bucket)?;
        as_role(a.delete_lockfile(&name, key, etag).await, role)
    }
}

#[async_trait]
impl<T: TableInspector> TableInspector for Router<T> {
    async fn table_facts(&self, table: &SourceAddress) -> TableFacts {
        match self.pick(table) {
            Ok((a, name, _)) => a.table_facts(&name).await,
            Err(e) => TableFacts {
                description: Err(e.message.clone()),
                ttl: Err(e.message.clone()),
                point_in_time_recovery: Err(e.message),
            },
        }
    }
    async fn ttl(&self, table: &SourceAddress) -> Result<TtlDescription, SourceError> {
        let (a, name, role) = self.pick(table)?;
        as_role(a.ttl(&name).await, role)
    }
}

#[async_trait]
impl<T: BucketInspector> BucketInspector for Router<T> {
    async fn bucket_facts(&self, bucket: &SourceAddress) -> BucketFacts {
        match self.pick(bucket) {
            Ok((a, name, _)) => a.bucket_facts(&name).await,
            Err(e) => BucketFacts {
                versioning: Err(e.message.clone()),
                noncurrent_expiry: Err(e.message.clone()),
                encryption: Err(e.message.clone()),
                public_access_block: Err(e.message.clone()),
                lockfiles: Err(e.message),
            },
        }
    }
}
