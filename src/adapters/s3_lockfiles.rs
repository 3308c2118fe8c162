//! The S3 adapter of [`LockfileBuckets`] (`use_lockfile = true`). A
//! lockfile is deleted only if it is still the object that was read:
//! `DeleteObject` with `If-Match: <ETag>`.

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::delete_object::DeleteObjectError;
use futures::stream::{self, StreamExt};

use crate::adapters::aws_error::Origin;
use crate::domain::lock::{contract_seconds, HEARTBEAT_TAG, HEARTBEAT_TIMEOUT_TAG, LOCKFILE_SUFFIX};
use crate::domain::source::SourceAddress;
use crate::ports::lockfiles::{HeartbeatTags, HeldLockfiles, LockfileBuckets, LockfileObject};
use crate::ports::{SourceError, WriteOutcome};

/// A lockfile body larger than this is not a lock (Terraform writes ~250 bytes).
pub(crate) const MAX_LOCKFILE_BYTES: usize = 64 * 1024;
/// Objects read at once while scanning a bucket.
const READ_CONCURRENCY: usize = 8;

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3LockfileBuckets {
    client: aws_sdk_s3::Client,
    origin: Origin,
}

impl S3LockfileBuckets {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        let origin =
            Origin::new("s3", client.config().region().map(|r| r.as_ref()), client.config().timeout_config(), None);
        S3LockfileBuckets { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    /// One object with its ETag, version and body (`None` if there is
    /// none); a body over `max_bytes` is not read.
    async fn fetch(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: Option<usize>,
    ) -> Result<Option<LockfileObject>, SourceError> {
        let out = match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(self.origin.explain("GetObject", "s3:GetObject", &format!("s3://{bucket}/{key}"), &e))
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let version_id = out.version_id().map(str::to_string);
        let last_modified =
            out.last_modified().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        let too_big = max_bytes.filter(|max| out.content_length().is_some_and(|n| n as usize > *max));
        let body = match too_big {
            Some(max) => Err(format!("object is larger than {max} bytes: not a lockfile")),
            None => match out.body.collect().await {
                Ok(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| "body is not UTF-8 text".to_string()),
                Err(e) => Err(format!("reading the body failed: {e}")),
            },
        };
        Ok(Some(LockfileObject {
            key: key.to_string(),
            etag,
            version_id,
            body,
            heartbeat: None,
            heartbeat_timeout: None,
            last_modified,
        }))
    }

    /// Read one object while scanning; `None` if it vanished since the
    /// listing (released). A read that fails (after the SDK's retries)
    /// makes this one object unreadable for this pass: the rest of the
    /// bucket is still judged.
    async fn read(&self, bucket: &str, key: String) -> Option<LockfileObject> {
        match self.fetch(bucket, &key, Some(MAX_LOCKFILE_BYTES)).await {
            Ok(object) => object,
            Err(e) => {
                let body = Err(format!("{e}; not judged this pass"));
                Some(LockfileObject {
                    key,
                    etag: String::new(),
                    version_id: None,
                    body,
                    heartbeat: None,
                    heartbeat_timeout: None,
                    last_modified: None,
                })
            }
        }
    }

    /// [`Self::read`] plus the heartbeat tag. A tag that cannot be read makes
    /// the lockfile unreadable for this pass: judging a heartbeating lock
    /// by its age could delete a live one.
    async fn read_with_heartbeat(&self, bucket: &SourceAddress, key: String) -> Option<LockfileObject> {
        let mut object = self.read(&bucket.api_name(), key).await?;
        if object.body.is_ok() {
            match self.tags(bucket, &object.key).await {
                Ok(tags) => (object.heartbeat, object.heartbeat_timeout) = (tags.at, tags.timeout),
                Err(e) => object.body = Err(format!("{e}; not judged this pass")),
            }
        }
        Some(object)
    }

    /// The heartbeat tags as they are now; empty when the object is gone.
    async fn tags(&self, bucket: &SourceAddress, key: &str) -> Result<HeartbeatTags, SourceError> {
        let bucket = &bucket.api_name();
        match self.client.get_object_tagging().bucket(bucket).key(key).send().await {
            Ok(out) => {
                let tag = |name: &str| out.tag_set().iter().find(|t| t.key() == name).map(|t| t.value().to_string());
                Ok(HeartbeatTags {
                    at: tag(HEARTBEAT_TAG).and_then(|v| v.parse::<i64>().ok()),
                    timeout: contract_seconds(tag(HEARTBEAT_TIMEOUT_TAG).and_then(|v| v.parse::<i64>().ok())),
                })
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(HeartbeatTags::default()),
            Err(e) => {
                Err(self.origin.explain("GetObjectTagging", "s3:GetObjectTagging", &format!("s3://{bucket}/{key}"), &e))
            }
        }
    }
}

#[async_trait]
impl LockfileBuckets for S3LockfileBuckets {
    async fn list(&self, bucket: &SourceAddress) -> Result<Vec<LockfileObject>, SourceError> {
        let keys = lockfile_keys(&self.client, &self.origin, &bucket.api_name(), &bucket.prefix).await?;
        let objects: Vec<Option<LockfileObject>> = stream::iter(keys)
            .map(|key| self.read_with_heartbeat(bucket, key))
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        Ok(objects.into_iter().flatten().collect())
    }

    async fn current_etag(&self, bucket: &SourceAddress, key: &str) -> Result<Option<String>, SourceError> {
        let bucket = &bucket.api_name();
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(out.e_tag().map(str::to_string)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(self.origin.explain("HeadObject", "s3:GetObject", &format!("s3://{bucket}/{key}"), &e)),
        }
    }

    async fn current_heartbeat(&self, bucket: &SourceAddress, key: &str) -> Result<Option<i64>, SourceError> {
        Ok(self.tags(bucket, key).await?.at)
    }

    async fn delete_lockfile(
        &self,
        source: &SourceAddress,
        key: &str,
        etag: &str,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &source.api_name();
        match self.client.delete_object().bucket(bucket).key(key).if_match(etag).send().await {
            Ok(_) => Ok(WriteOutcome::Done),
            Err(e) if precondition_failed_or_gone(&e) => {
                // Gone (released, or an earlier attempt of this delete whose
                // response was lost), or replaced by another lock?
                match self.current_etag(source, key).await? {
                    None => Ok(WriteOutcome::Gone),
                    Some(_) => Ok(WriteOutcome::Changed),
                }
            }
            Err(e) => Err(self.origin.explain("DeleteObject", "s3:DeleteObject", &format!("s3://{bucket}/{key}"), &e)),
        }
    }
}

#[async_trait]
impl HeldLockfiles for S3LockfileBuckets {
    async fn get_lockfile(&self, bucket: &SourceAddress, key: &str) -> Result<Option<LockfileObject>, SourceError> {
        let bucket = &bucket.api_name();
        self.fetch(bucket, key, None).await
    }

    async fn heartbeat_tags(&self, bucket: &SourceAddress, key: &str) -> Result<HeartbeatTags, SourceError> {
        self.tags(bucket, key).await
    }

    async fn tag_heartbeat(
        &self,
        bucket: &SourceAddress,
        key: &str,
        version_id: Option<&str>,
        at: i64,
        timeout: u64,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &bucket.api_name();
        let what = format!("s3://{bucket}/{key}");
        let tag =
            |key: &str, value: String| {
                aws_sdk_s3::types::Tag::builder().key(key).value(value).build().map_err(|e| {
                    SourceError::new(crate::domain::failure::ErrorKind::Other, format!("tagging {what}: {e}"))
                })
            };
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .tag_set(tag(HEARTBEAT_TAG, at.to_string())?)
            .tag_set(tag(HEARTBEAT_TIMEOUT_TAG, timeout.to_string())?)
            .build()
            .map_err(|e| SourceError::new(crate::domain::failure::ErrorKind::Other, format!("tagging {what}: {e}")))?;
        let mut request = self.client.put_object_tagging().bucket(bucket).key(key).tagging(tagging);
        if let Some(v) = version_id {
            request = request.version_id(v);
        }
        match request.send().await {
            Ok(_) => Ok(WriteOutcome::Done),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(WriteOutcome::Gone),
            Err(e) => Err(self.origin.explain("PutObjectTagging", "s3:PutObjectTagging", &what, &e)),
        }
    }

    async fn restore_lockfile(
        &self,
        bucket: &SourceAddress,
        key: &str,
        body: &str,
    ) -> Result<WriteOutcome, SourceError> {
        let bucket = &bucket.api_name();
        let result = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body.as_bytes().to_vec()))
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Done),
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) => {
                Ok(WriteOutcome::Changed)
            }
            Err(e) => Err(self.origin.explain("PutObject", "s3:PutObject", &format!("s3://{bucket}/{key}"), &e)),
        }
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

/// The keys of every `*.tflock` object under `prefix` (all pages).
pub(crate) async fn lockfile_keys(
    client: &aws_sdk_s3::Client,
    origin: &Origin,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, SourceError> {
    let mut request = client.list_objects_v2().bucket(bucket);
    if !prefix.is_empty() {
        request = request.prefix(prefix);
    }
    let mut pages = request.into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| origin.explain("ListObjectsV2", "s3:ListBucket", &format!("bucket {bucket}"), &e))?;
        keys.extend(
            page.contents
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| o.key)
                .filter(|k| k.ends_with(LOCKFILE_SUFFIX)),
        );
    }
    Ok(keys)
}

/// 412 (the ETag no longer matches) or 404 (already gone): the lockfile is
/// not the one that was read.
fn precondition_failed_or_gone(err: &SdkError<DeleteObjectError, HttpResponse>) -> bool {
    let code = err.as_service_error().and_then(|e| e.code());
    let status = err.raw_response().map(|r| r.status().as_u16());
    matches!(code, Some("PreconditionFailed" | "NoSuchKey")) || matches!(status, Some(412 | 404))
}
