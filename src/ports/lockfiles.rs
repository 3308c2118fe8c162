//! Lockfile buckets. Two ports, one per user: [`LockfileBuckets`] is what
//! the reaper needs (list every `*.tflock` object with its body, ETag and
//! heartbeat tag; the conditional delete), [`HeldLockfiles`] what `exec`
//! needs for the lockfile its own Terraform holds (read, heartbeat tag,
//! restore, release). Both implemented by `adapters::s3_lockfiles`.

use async_trait::async_trait;

use crate::domain::source::SourceAddress;
use crate::ports::{SourceError, WriteOutcome};

/// One `.tflock` object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockfileObject {
    pub key: String,
    /// The ETag of the version that was read.
    pub etag: String,
    /// The version that was read, in a versioned bucket.
    pub version_id: Option<String>,
    /// The body, or why it could not be read as text.
    pub body: Result<String, String>,
    /// The `tf-lock-reaper-heartbeat` tag (epoch seconds), when there is one.
    pub heartbeat: Option<i64>,
    /// The `tf-lock-reaper-heartbeat-timeout` tag (seconds), when there is one.
    pub heartbeat_timeout: Option<u64>,
    /// S3's `LastModified`: when AWS stored this version, on AWS's clock.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// A lockfile's heartbeat tags as they are now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatTags {
    /// `tf-lock-reaper-heartbeat` (epoch seconds).
    pub at: Option<i64>,
    /// `tf-lock-reaper-heartbeat-timeout` (seconds).
    pub timeout: Option<u64>,
}

/// State buckets holding S3 native lockfiles (`use_lockfile = true`).
#[async_trait]
pub trait LockfileBuckets: Send + Sync {
    /// Every `*.tflock` object under the source's prefix (all pages), with
    /// its body and heartbeat tag.
    async fn list(&self, bucket: &SourceAddress) -> Result<Vec<LockfileObject>, SourceError>;

    /// The object's current ETag; `None` if it is gone.
    async fn current_etag(&self, bucket: &SourceAddress, key: &str) -> Result<Option<String>, SourceError>;

    /// The object's heartbeat tag as it is now (`GetObjectTagging`);
    /// `Ok(None)` when it has none or is gone.
    async fn current_heartbeat(&self, bucket: &SourceAddress, key: &str) -> Result<Option<i64>, SourceError>;

    /// Delete the object if its ETag is still `etag`.
    async fn delete_lockfile(&self, bucket: &SourceAddress, key: &str, etag: &str)
        -> Result<WriteOutcome, SourceError>;
}

/// The lockfile half of the lock a wrapped Terraform holds, as `exec` keeps
/// it alive and releases it.
#[async_trait]
pub(crate) trait HeldLockfiles: Send + Sync {
    /// One lockfile with its body, ETag and version (no tags); `None` if
    /// there is none.
    async fn get_lockfile(&self, bucket: &SourceAddress, key: &str) -> Result<Option<LockfileObject>, SourceError>;

    /// The heartbeat tags of a lockfile (`GetObjectTagging`); empty when it
    /// has none or is gone.
    async fn heartbeat_tags(&self, bucket: &SourceAddress, key: &str) -> Result<HeartbeatTags, SourceError>;

    /// Tag the object (the version read, in a versioned bucket) with the
    /// heartbeat `at` and the contract `timeout` (seconds). Tags change
    /// neither the body nor the ETag. `Gone` when the object (version) no
    /// longer exists.
    async fn tag_heartbeat(
        &self,
        bucket: &SourceAddress,
        key: &str,
        version_id: Option<&str>,
        at: i64,
        timeout: u64,
    ) -> Result<WriteOutcome, SourceError>;

    /// Put the lockfile back with exactly `body` only if no object holds
    /// the key (`If-None-Match: *`): `Changed` when one does.
    async fn restore_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        body: &str,
    ) -> Result<WriteOutcome, SourceError>;

    /// Delete the object if its ETag is still `etag`.
    async fn release_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError>;
}
