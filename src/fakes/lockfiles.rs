//! Lockfile buckets in memory, with S3's ETag conditions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::failure::ErrorKind;
use crate::domain::source::SourceAddress;
use crate::ports::lockfiles::{HeartbeatTags, HeldLockfiles, LockfileBuckets, LockfileObject};
use crate::ports::{SourceError, WriteOutcome};
use crate::support::sync::locked;

/// One bucket's lockfiles: `key → (etag, body)`.
type Objects = BTreeMap<String, (String, String)>;

/// Lockfile buckets in memory: `bucket → key → (etag, body)`. ETags change
/// with every put, as S3's do with the content.
#[derive(Default)]
pub struct MemoryLockfiles {
    buckets: Mutex<BTreeMap<String, Objects>>,
    puts: Mutex<u64>,
    /// `(bucket, key) → heartbeat tags`; a put or delete clears them, as a
    /// new object starts without tags.
    tags: Mutex<BTreeMap<(String, String), HeartbeatTags>>,
}

impl MemoryLockfiles {
    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        let mut puts = locked(&self.puts);
        *puts += 1;
        let etag = format!("\"etag-{}\"", *puts);
        locked(&self.buckets).entry(bucket.to_string()).or_default().insert(key.to_string(), (etag, body.to_string()));
        locked(&self.tags).remove(&(bucket.to_string(), key.to_string()));
    }

    /// Tag a lockfile with a heartbeat and no contract, as `exec` before
    /// contracts did.
    pub fn set_heartbeat(&self, bucket: &str, key: &str, at: i64) {
        self.set_tags(bucket, key, HeartbeatTags { at: Some(at), timeout: None });
    }

    /// Tag a lockfile with a heartbeat and its contract, as `exec` does.
    pub fn set_tags(&self, bucket: &str, key: &str, tags: HeartbeatTags) {
        locked(&self.tags).insert((bucket.to_string(), key.to_string()), tags);
    }

    fn tags_of(&self, bucket: &str, key: &str) -> HeartbeatTags {
        locked(&self.tags).get(&(bucket.to_string(), key.to_string())).copied().unwrap_or_default()
    }

    /// The lockfile is released, as Terraform's `DeleteObject` does.
    pub fn remove(&self, bucket: &str, key: &str) {
        if let Some(b) = locked(&self.buckets).get_mut(bucket) {
            b.remove(key);
        }
        locked(&self.tags).remove(&(bucket.to_string(), key.to_string()));
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<String> {
        locked(&self.buckets).get(bucket).and_then(|b| b.get(key)).map(|(_, body)| body.clone())
    }
}

#[async_trait]
impl LockfileBuckets for MemoryLockfiles {
    async fn list(&self, source: &SourceAddress) -> Result<Vec<LockfileObject>, SourceError> {
        let (bucket, prefix) = (&source.to_string(), source.prefix.as_str());
        let buckets = locked(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| SourceError::new(ErrorKind::NotFound, format!("NoSuchBucket: {bucket}")))?;
        Ok(b.iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.ends_with(crate::domain::lock::LOCKFILE_SUFFIX))
            .map(|(k, (etag, body))| LockfileObject {
                key: k.clone(),
                etag: etag.clone(),
                version_id: None,
                body: Ok(body.clone()),
                heartbeat: self.tags_of(bucket, k).at,
                heartbeat_timeout: self.tags_of(bucket, k).timeout,
                last_modified: None,
            })
            .collect())
    }

    async fn current_etag(&self, bucket: &SourceAddress, key: &str) -> Result<Option<String>, SourceError> {
        let bucket = &bucket.to_string();
        Ok(locked(&self.buckets).get(bucket).and_then(|b| b.get(key)).map(|(etag, _)| etag.clone()))
    }

    async fn delete_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &bucket.to_string();
        let mut buckets = locked(&self.buckets);
        let Some(b) = buckets.get_mut(bucket) else { return Ok(WriteOutcome::Gone) };
        match b.get(key) {
            Some((current, _)) if current == etag => {
                b.remove(key);
                locked(&self.tags).remove(&(bucket.to_string(), key.to_string()));
                Ok(WriteOutcome::Done)
            }
            Some(_) => Ok(WriteOutcome::Changed),
            None => Ok(WriteOutcome::Gone),
        }
    }

    async fn current_heartbeat(&self, bucket: &SourceAddress, key: &str) -> Result<Option<i64>, SourceError> {
        let bucket = &bucket.to_string();
        Ok(self.tags_of(bucket, key).at)
    }
}

#[async_trait]
impl HeldLockfiles for MemoryLockfiles {
    async fn get_lockfile(&self, bucket: &SourceAddress, key: &str) -> Result<Option<LockfileObject>, SourceError> {
        let bucket = &bucket.to_string();
        let buckets = locked(&self.buckets);
        Ok(buckets.get(bucket).and_then(|b| b.get(key)).map(|(etag, body)| LockfileObject {
            key: key.to_string(),
            etag: etag.clone(),
            version_id: None,
            body: Ok(body.clone()),
            heartbeat: None,
            heartbeat_timeout: None,
            last_modified: None,
        }))
    }

    async fn heartbeat_tags(&self, bucket: &SourceAddress, key: &str) -> Result<HeartbeatTags, SourceError> {
        Ok(self.tags_of(&bucket.to_string(), key))
    }

    async fn tag_heartbeat(
        &self,
        bucket: &SourceAddress,
        key: &str,
        _version_id: Option<&str>,
        at: i64,
        timeout: u64,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &bucket.to_string();
        if self.get(bucket, key).is_none() {
            return Ok(WriteOutcome::Gone);
        }
        self.set_tags(bucket, key, HeartbeatTags { at: Some(at), timeout: Some(timeout) });
        Ok(WriteOutcome::Done)
    }

    async fn restore_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        body: &str,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &bucket.to_string();
        if self.get(bucket, key).is_some() {
            return Ok(WriteOutcome::Changed);
        }
        self.put(bucket, key, body);
        Ok(WriteOutcome::Done)
    }

    async fn release_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError> {
        LockfileBuckets::delete_lockfile(self, bucket, key, etag).await
    }
}
