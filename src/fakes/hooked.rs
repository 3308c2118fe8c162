//! One wrapper for every race a test needs: [`Hooked`] puts a hook in front
//! of any lock table or lockfile store (an in-memory fake or the real
//! adapter against a local server) and runs it at a [`Point`] of a call:
//! before or after a scan or listing, before a write, before the re-read
//! that tells `Changed` from `Gone`. The hook makes something happen there
//! (a release, a re-acquire, a heartbeat, a slow read); the call itself
//! then goes to the wrapped store unchanged, so its real conditions decide.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::domain::lock::RawItem;
use crate::domain::source::SourceAddress;
use crate::ports::lock_tables::{HeartbeatGuard, LockTables};
use crate::ports::lockfiles::{LockfileBuckets, LockfileObject};
use crate::ports::{SourceError, WriteOutcome};

/// Where in a call the hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Before a table scan or a bucket listing.
    BeforeScan,
    /// After a table scan or a bucket listing returned.
    AfterScan,
    /// Before any write (delete, TTL, heartbeat, restore, tag).
    BeforeWrite,
    /// Before a lockfile's current ETag is read (after a failed delete).
    BeforeCheck,
}

/// The call a hook runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub point: Point,
    /// The table or bucket, by its address string.
    pub source: String,
    /// The lock key, for calls about one lock.
    pub key: Option<String>,
}

type HookFn = Arc<dyn Fn(Call) -> BoxFuture<'static, ()> + Send + Sync>;

/// A store with a hook in front of it.
pub struct Hooked<T: ?Sized> {
    inner: Arc<T>,
    hook: HookFn,
}

impl<T: ?Sized> Hooked<T> {
    /// `hook` is called at every [`Point`] of every call; it returns the
    /// future to await there (`async {}` when it did its work at once).
    pub fn new<F, Fut>(inner: Arc<T>, hook: F) -> Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Hooked { inner, hook: Arc::new(move |call| Box::pin(hook(call))) }
    }

    async fn at(&self, point: Point, source: &SourceAddress, key: Option<&str>) {
        (self.hook)(Call { point, source: source.to_string(), key: key.map(str::to_string) }).await;
    }
}

#[async_trait]
impl<T: LockTables + ?Sized> LockTables for Hooked<T> {
    async fn scan(
        &self,
        table: &SourceAddress,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        self.at(Point::BeforeScan, table, None).await;
        let read = self.inner.scan(table, segments, page).await;
        self.at(Point::AfterScan, table, None).await;
        read
    }

    async fn delete_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        self.at(Point::BeforeWrite, table, Some(lock_key)).await;
        self.inner.delete_lock(table, lock_key, expected_info, heartbeat).await
    }

    async fn set_ttl(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        self.at(Point::BeforeWrite, table, Some(lock_key)).await;
        self.inner.set_ttl(table, lock_key, expected_info, attribute, expires_at).await
    }
}

#[async_trait]
impl<T: LockfileBuckets + ?Sized> LockfileBuckets for Hooked<T> {
    async fn list(&self, bucket: &SourceAddress) -> Result<Vec<LockfileObject>, SourceError> {
        self.at(Point::BeforeScan, bucket, None).await;
        let listed = self.inner.list(bucket).await;
        self.at(Point::AfterScan, bucket, None).await;
        listed
    }

    async fn current_etag(&self, bucket: &SourceAddress, key: &str) -> Result<Option<String>, SourceError> {
        self.at(Point::BeforeCheck, bucket, Some(key)).await;
        self.inner.current_etag(bucket, key).await
    }

    async fn current_heartbeat(&self, bucket: &SourceAddress, key: &str) -> Result<Option<i64>, SourceError> {
        self.inner.current_heartbeat(bucket, key).await
    }

    async fn delete_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError> {
        self.at(Point::BeforeWrite, bucket, Some(key)).await;
        self.inner.delete_lockfile(bucket, key, etag).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::lock::SourceKind;
    use crate::fakes::lock_tables::{info, lock_item, MemoryLockTables};
    use crate::fakes::lockfiles::MemoryLockfiles;

    /// The hook runs at each point, with the source and key; the call then
    /// reaches the wrapped store.
    #[tokio::test]
    async fn the_hook_runs_at_each_point_before_the_store_answers() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tables = Arc::new(MemoryLockTables::default().with_table("locks"));
        let log = seen.clone();
        let hooked = Hooked::new(tables.clone(), move |call: Call| {
            log.lock().unwrap().push((call.point, call.source, call.key));
            async {}
        });
        let at = SourceAddress::own(SourceKind::Table, "locks");
        let now = chrono::Utc::now();
        tables.put("locks", lock_item("b/k", &info("a", now)));
        hooked.scan(&at, 1, &mut |_| {}).await.unwrap();
        let outcome = hooked.delete_lock(&at, "b/k", &info("a", now), None).await;
        assert_eq!(outcome, Ok(WriteOutcome::Done), "the call reached the store");
        let points: Vec<_> = seen.lock().unwrap().iter().map(|s| (s.0, s.2.clone())).collect();
        assert_eq!(
            points,
            vec![(Point::BeforeScan, None), (Point::AfterScan, None), (Point::BeforeWrite, Some("b/k".into()))]
        );
        assert!(seen.lock().unwrap().iter().all(|s| s.1 == "locks"));

        let files = Arc::new(MemoryLockfiles::default());
        let bucket = SourceAddress::own(SourceKind::Bucket, "tfstate");
        let f = files.clone();
        // A release just before the delete: the store then finds it gone.
        let hooked = Hooked::new(files.clone(), move |call: Call| {
            if let (Point::BeforeWrite, Some(key)) = (call.point, call.key) {
                f.remove("tfstate", &key);
            }
            async {}
        });
        files.put("tfstate", "k.tflock", "{}");
        let etag = files.current_etag(&bucket, "k.tflock").await.unwrap().unwrap();
        assert_eq!(hooked.delete_lockfile(&bucket, "k.tflock", &etag).await, Ok(WriteOutcome::Gone));
    }
}
