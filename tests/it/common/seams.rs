//! A seam in front of the real DynamoDB adapter: something happens to the
//! table just before the reaper's write (a release, a re-acquire, a
//! heartbeat), so races are tested against the real conditional writes.

use async_trait::async_trait;
use futures::future::BoxFuture;

use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::domain::lock::RawItem;
use tf_lock_reaper::ports::lock_tables::{Beat, HeartbeatGuard, HeldItem, LockTables};
use tf_lock_reaper::ports::{SourceError, WriteOutcome};

/// What runs before a write: given the table and the lock key.
pub type BeforeWriteHook = Box<dyn Fn(String, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// The real adapter, with `hook` run before every reaper write (delete, TTL).
pub struct BeforeWrite {
    pub inner: DynamoLockTables,
    pub hook: BeforeWriteHook,
}

impl BeforeWrite {
    pub fn new<F, Fut>(inner: DynamoLockTables, hook: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        BeforeWrite { inner, hook: Box::new(move |t, k| Box::pin(hook(t, k))) }
    }
}

#[async_trait]
impl LockTables for BeforeWrite {
    async fn scan(&self, t: &str, n: i32, page: &mut (dyn FnMut(Vec<RawItem>) + Send)) -> Result<(), SourceError> {
        self.inner.scan(t, n, page).await
    }
    async fn delete_lock(
        &self,
        t: &str,
        k: &str,
        i: &str,
        g: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        (self.hook)(t.to_string(), k.to_string()).await;
        self.inner.delete_lock(t, k, i, g).await
    }
    async fn set_ttl(&self, t: &str, k: &str, i: &str, a: &str, e: i64) -> Result<WriteOutcome, SourceError> {
        (self.hook)(t.to_string(), k.to_string()).await;
        self.inner.set_ttl(t, k, i, a, e).await
    }
    async fn get_lock(&self, t: &str, k: &str, a: &str) -> Result<Option<HeldItem>, SourceError> {
        self.inner.get_lock(t, k, a).await
    }
    async fn heartbeat(&self, t: &str, k: &str, i: &str, b: Beat<'_>) -> Result<WriteOutcome, SourceError> {
        self.inner.heartbeat(t, k, i, b).await
    }
    async fn restore(&self, t: &str, k: &str, i: &str, b: Beat<'_>) -> Result<WriteOutcome, SourceError> {
        self.inner.restore(t, k, i, b).await
    }
}
