//! Lockfile buckets: list every `*.tflock` object with its body and ETag,
//! check an ETag, and delete conditionally. Implemented by
//! `adapters::s3_lockfiles`.

use async_trait::async_trait;

use crate::ports::{SourceError, WriteOutcome};

/// One `.tflock` object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockfileObject {
    pub key: String,
    /// The ETag of the version that was read.
    pub etag: String,
    /// The body, or why it could not be read as text.
    pub body: Result<String, String>,
}

/// State buckets holding S3 native lockfiles (`use_lockfile = true`).
#[async_trait]
pub trait LockfileBuckets: Send + Sync {
    /// Every `*.tflock` object under `prefix` (all pages), with its body.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<LockfileObject>, SourceError>;

    /// The object's current ETag; `None` if it is gone.
    async fn current_etag(&self, bucket: &str, key: &str) -> Result<Option<String>, SourceError>;

    /// Delete the object if its ETag is still `etag`.
    async fn delete_lockfile(&self, bucket: &str, key: &str, etag: &str) -> Result<WriteOutcome, SourceError>;
}
