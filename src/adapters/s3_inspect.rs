//! The S3 adapter of [`BucketInspector`]: versioning, lifecycle, default
//! encryption, Block Public Access, and a listing of `*.tflock` objects.
//! Reads only.

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::adapters::aws_error::Origin;
use crate::adapters::s3_lockfiles::lockfile_keys;
use crate::domain::health::bucket::BucketFacts;
use crate::domain::source::SourceAddress;
use crate::ports::inspect::BucketInspector;

/// Reads a state bucket's settings.
#[derive(Debug, Clone)]
pub(crate) struct S3BucketInspector {
    client: aws_sdk_s3::Client,
    origin: Origin,
}

/// The service said "there is no such configuration": an answer, not a failure.
fn absent<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool {
    err.as_service_error().and_then(|e| e.code()).is_some_and(|c| codes.contains(&c))
}

impl S3BucketInspector {
    pub(crate) fn new(client: aws_sdk_s3::Client) -> Self {
        let config = client.config();
        let origin = Origin::new("s3", config.region().map(|r| r.as_ref()), config.timeout_config(), None);
        S3BucketInspector { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    fn failed<E, R>(&self, op: &'static str, action: &'static str, bucket: &str, e: &SdkError<E, R>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.origin.explain(op, action, &format!("bucket {bucket}"), e).message
    }

    async fn versioning(&self, bucket: &str) -> Result<Option<String>, String> {
        match self.client.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => Ok(out.status().map(|s| s.as_str().to_string())),
            Err(e) => match versioning_from_raw(&e) {
                Some(status) => Ok(status),
                None => Err(self.failed("GetBucketVersioning", "s3:GetBucketVersioning", bucket, &e)),
            },
        }
    }

    async fn noncurrent_expiry(&self, bucket: &str) -> Result<bool, String> {
        match self.client.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
            Ok(out) => Ok(out
                .rules()
                .iter()
                .any(|r| r.status().as_str() == "Enabled" && r.noncurrent_version_expiration().is_some())),
            Err(e) if absent(&e, &["NoSuchLifecycleConfiguration"]) => Ok(false),
            Err(e) => Err(self.failed("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", bucket, &e)),
        }
    }

    async fn encryption(&self, bucket: &str) -> Result<Option<String>, String> {
        match self.client.get_bucket_encryption().bucket(bucket).send().await {
            Ok(out) => Ok(out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default())
                .map(|d| d.sse_algorithm().as_str().to_string())),
            Err(e) if absent(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => Ok(None),
            Err(e) => Err(self.failed("GetBucketEncryption", "s3:GetEncryptionConfiguration", bucket, &e)),
        }
    }

    async fn public_access_block(&self, bucket: &str) -> Result<Option<[bool; 4]>, String> {
        match self.client.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => Ok(out.public_access_block_configuration().map(|c| {
                [
                    c.block_public_acls().unwrap_or(false),
                    c.ignore_public_acls().unwrap_or(false),
                    c.block_public_policy().unwrap_or(false),
                    c.restrict_public_buckets().unwrap_or(false),
                ]
            })),
            Err(e) if absent(&e, &["NoSuchPublicAccessBlockConfiguration"]) => Ok(None),
            Err(e) => Err(self.failed("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", bucket, &e)),
        }
    }

    async fn lockfiles(&self, bucket: &str, prefix: &str) -> Result<usize, String> {
        lockfile_keys(&self.client, &self.origin, bucket, prefix).await.map(|keys| keys.len()).map_err(|e| e.message)
    }
}

/// A 200 answer the SDK could not decode: some S3-compatible servers (moto
/// 5.2.5 among them) name the root element `GetBucketVersioningResponse`
/// instead of `VersioningConfiguration`. The `Status` element says the same.
fn versioning_from_raw<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<Option<String>> {
    let raw = err.raw_response().filter(|r| r.status().as_u16() == 200)?;
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    if !body.contains("GetBucketVersioningResponse") && !body.contains("VersioningConfiguration") {
        return None;
    }
    let status = body.split_once("<Status>").and_then(|(_, rest)| rest.split_once("</Status>")).map(|(s, _)| s);
    Some(status.map(str::to_string))
}

#[async_trait]
impl BucketInspector for S3BucketInspector {
    async fn bucket_facts(&self, source: &SourceAddress) -> BucketFacts {
        let bucket = &source.api_name();
        let lockfiles = self.lockfiles(bucket, &source.prefix);
        let (versioning, noncurrent_expiry, encryption, public_access_block, lockfiles) = futures::join!(
            self.versioning(bucket),
            self.noncurrent_expiry(bucket),
            self.encryption(bucket),
            self.public_access_block(bucket),
            lockfiles
        );
        BucketFacts { versioning, noncurrent_expiry, encryption, public_access_block, lockfiles }
    }
}

#[async_trait]
impl crate::ports::discovery::BucketCatalog for S3BucketInspector {
    async fn bucket_names(&self) -> Result<Vec<String>, crate::ports::SourceError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_buckets()
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.origin.explain("ListBuckets", "s3:ListAllMyBuckets", "buckets", &e))?;
            names.extend(out.buckets().iter().filter_map(|b| b.name().map(str::to_string)));
            match out.continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(names),
            }
        }
    }

    async fn bucket_tags(&self, bucket: &str) -> Result<Vec<(String, String)>, crate::ports::SourceError> {
        match self.client.get_bucket_tagging().bucket(bucket).send().await {
            Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
            Err(e) if absent(&e, &["NoSuchTagSet"]) => Ok(Vec::new()),
            Err(e) => {
                Err(self.origin.explain("GetBucketTagging", "s3:GetBucketTagging", &format!("bucket {bucket}"), &e))
            }
        }
    }

    async fn bucket_region(&self, bucket: &str) -> Result<String, crate::ports::SourceError> {
        let out = self.client.get_bucket_location().bucket(bucket).send().await.map_err(|e| {
            self.origin.explain("GetBucketLocation", "s3:GetBucketLocation", &format!("bucket {bucket}"), &e)
        })?;
        // No constraint is us-east-1; `EU` is the old name of eu-west-1.
        Ok(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(region) => region.to_string(),
        })
    }
}
