//! The S3 backend a Terraform working directory is initialised with, read
//! from `.terraform/terraform.tfstate` (Terraform writes the merged backend
//! configuration there, `-backend-config` values included), and where it
//! keeps the lock of a workspace. Pure code over plain data.

use serde::{Deserialize, Serialize};

use crate::lock::LOCKFILE_SUFFIX;

/// Workspace key prefix Terraform's S3 backend uses by default.
pub const DEFAULT_WORKSPACE_KEY_PREFIX: &str = "env:";

/// How to reach the backend's bucket and table: what `exec` and `release`
/// need beyond the credentials (which come from the environment's chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BackendConnection {
    pub region: Option<String>,
    /// `endpoints.dynamodb` (or the older `dynamodb_endpoint`).
    pub dynamodb_endpoint: Option<String>,
    /// `endpoints.s3` (or the older `endpoint`).
    pub s3_endpoint: Option<String>,
    pub use_path_style: bool,
    pub profile: Option<String>,
}

/// An S3 backend's locking configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    pub bucket: String,
    pub key: String,
    pub dynamodb_table: Option<String>,
    pub use_lockfile: bool,
    pub workspace_key_prefix: String,
    pub connection: BackendConnection,
}

/// Where a workspace's lock lives: the table item and/or the lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLocation {
    /// `<bucket>/<state key>`: the table item's `LockID` and the lock's `Path`.
    pub lock_path: String,
    /// `(table, LockID)` with `dynamodb_table`.
    pub table: Option<(String, String)>,
    /// `(bucket, object key)` with `use_lockfile = true`.
    pub lockfile: Option<(String, String)>,
}

/// `.terraform/terraform.tfstate`: only the parts we read.
#[derive(Deserialize)]
struct BackendStateFile {
    backend: Option<BackendBlock>,
}

#[derive(Deserialize)]
struct BackendBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
}

/// What the working directory's backend state file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    S3(Box<S3Backend>),
    /// Another backend type (`local`, `remote`, `gcs`, …).
    Other(String),
}

/// Parse `.terraform/terraform.tfstate`. `Ok(None)`: no backend block (a
/// local state); `Err`: the file is not what Terraform writes.
pub fn parse_backend_state(text: &str) -> Result<Option<Backend>, String> {
    let file: BackendStateFile =
        serde_json::from_str(text).map_err(|e| format!("not a Terraform backend state file: {e}"))?;
    let Some(block) = file.backend else { return Ok(None) };
    if block.kind != "s3" {
        return Ok(Some(Backend::Other(block.kind)));
    }
    let c = &block.config;
    let text = |name: &str| c.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let endpoint = |service: &str| c.get("endpoints").and_then(|e| e.get(service)).and_then(|v| v.as_str());
    let bucket = text("bucket").ok_or("the s3 backend has no bucket")?;
    let key = text("key").ok_or("the s3 backend has no key")?;
    Ok(Some(Backend::S3(Box::new(S3Backend {
        bucket,
        key,
        dynamodb_table: text("dynamodb_table"),
        use_lockfile: c.get("use_lockfile").and_then(|v| v.as_bool()).unwrap_or(false),
        workspace_key_prefix: text("workspace_key_prefix").unwrap_or_else(|| DEFAULT_WORKSPACE_KEY_PREFIX.to_string()),
        connection: BackendConnection {
            region: text("region"),
            dynamodb_endpoint: endpoint("dynamodb").map(str::to_string).or_else(|| text("dynamodb_endpoint")),
            s3_endpoint: endpoint("s3").map(str::to_string).or_else(|| text("endpoint")),
            use_path_style: ["use_path_style", "force_path_style"]
                .iter()
                .any(|k| c.get(*k).and_then(|v| v.as_bool()).unwrap_or(false)),
            profile: text("profile"),
        },
    }))))
}

impl S3Backend {
    /// The state key of a workspace: `key` for `default`, else
    /// `<workspace_key_prefix>/<workspace>/<key>`.
    pub fn state_key(&self, workspace: &str) -> String {
        if workspace == "default" {
            self.key.clone()
        } else {
            format!("{}/{workspace}/{}", self.workspace_key_prefix, self.key)
        }
    }

    /// Where the workspace's lock lives.
    pub fn lock_location(&self, workspace: &str) -> LockLocation {
        let state_key = self.state_key(workspace);
        let lock_path = format!("{}/{state_key}", self.bucket);
        LockLocation {
            table: self.dynamodb_table.as_ref().map(|t| (t.clone(), lock_path.clone())),
            lockfile: self.use_lockfile.then(|| (self.bucket.clone(), format!("{state_key}{LOCKFILE_SUFFIX}"))),
            lock_path,
        }
    }

    /// The workspace whose lock is at `lock_path` (`<bucket>/<state key>`,
    /// as Terraform logs it), if that lock is this backend's.
    pub fn workspace_of(&self, lock_path: &str) -> Option<String> {
        let state_key = lock_path.strip_prefix(&self.bucket)?.strip_prefix('/')?;
        if state_key == self.key {
            return Some("default".to_string());
        }
        let rest = state_key.strip_prefix(&self.workspace_key_prefix)?.strip_prefix('/')?;
        let workspace = rest.strip_suffix(&self.key)?.strip_suffix('/')?;
        (!workspace.is_empty() && !workspace.contains('/')).then(|| workspace.to_string())
    }
}

/// The workspace Terraform uses: `TF_WORKSPACE`, else the data directory's
/// `environment` file, else `default`.
pub fn current_workspace(tf_workspace: Option<&str>, environment_file: Option<&str>) -> String {
    tf_workspace
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .or_else(|| environment_file.map(str::trim).filter(|w| !w.is_empty()))
        .unwrap_or("default")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from the file Terraform 1.15.5 wrote here (`init` against moto).
    const REAL: &str = concat!(
        r#"{"version":3,"terraform_version":"1.15.5","backend":{"type":"s3","config":{"access_key":"test","#,
        r#""bucket":"tfstate","dynamodb_endpoint":null,"dynamodb_table":"locks","endpoint":null,"#,
        r#""endpoints":{"dynamodb":"http://127.0.0.1:45671","iam":null,"s3":"http://127.0.0.1:45671","sso":null,"#,
        r#""sts":null},"force_path_style":null,"key":"prod/terraform.tfstate","profile":null,"region":"us-east-1","#,
        r#""use_lockfile":true,"use_path_style":true,"workspace_key_prefix":null},"hash":2903056746}}"#,
    );

    fn s3(text: &str) -> S3Backend {
        match parse_backend_state(text) {
            Ok(Some(Backend::S3(b))) => *b,
            other => panic!("expected an s3 backend, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_real_backend_state_file() {
        let b = s3(REAL);
        assert_eq!((b.bucket.as_str(), b.key.as_str()), ("tfstate", "prod/terraform.tfstate"));
        assert_eq!(b.dynamodb_table.as_deref(), Some("locks"));
        assert!(b.use_lockfile);
        assert_eq!(b.workspace_key_prefix, "env:");
        assert_eq!(b.connection.region.as_deref(), Some("us-east-1"));
        assert_eq!(b.connection.dynamodb_endpoint.as_deref(), Some("http://127.0.0.1:45671"));
        assert!(b.connection.use_path_style);
    }

    #[test]
    fn lock_locations_per_workspace() {
        let b = s3(REAL);
        let default = b.lock_location("default");
        assert_eq!(default.table, Some(("locks".into(), "tfstate/prod/terraform.tfstate".into())));
        assert_eq!(default.lockfile, Some(("tfstate".into(), "prod/terraform.tfstate.tflock".into())));
        let staging = b.lock_location("staging");
        assert_eq!(staging.lock_path, "tfstate/env:/staging/prod/terraform.tfstate");
        assert_eq!(staging.lockfile, Some(("tfstate".into(), "env:/staging/prod/terraform.tfstate.tflock".into())));
        let custom = S3Backend { workspace_key_prefix: "workspaces".into(), use_lockfile: false, ..b };
        let l = custom.lock_location("dev");
        assert_eq!(l.table.map(|t| t.1), Some("tfstate/workspaces/dev/prod/terraform.tfstate".into()));
        assert_eq!(l.lockfile, None);
    }

    #[test]
    fn the_workspace_of_a_logged_lock_path() {
        let b = s3(REAL);
        assert_eq!(b.workspace_of("tfstate/prod/terraform.tfstate").as_deref(), Some("default"));
        assert_eq!(b.workspace_of("tfstate/env:/ci/prod/terraform.tfstate").as_deref(), Some("ci"));
        assert_eq!(b.workspace_of("other/prod/terraform.tfstate"), None, "another bucket");
        assert_eq!(b.workspace_of("tfstate/staging/terraform.tfstate"), None, "another key");
        assert_eq!(b.workspace_of("tfstate/env:/a/b/prod/terraform.tfstate"), None);
        assert_eq!(b.workspace_of("tfstate/env://prod/terraform.tfstate"), None);
    }

    #[test]
    fn other_backends_local_state_and_garbage() {
        assert_eq!(
            parse_backend_state(r#"{"version":3,"backend":{"type":"gcs","config":{}}}"#),
            Ok(Some(Backend::Other("gcs".into())))
        );
        assert_eq!(parse_backend_state(r#"{"version":3}"#), Ok(None));
        assert!(parse_backend_state("not json").unwrap_err().contains("not a Terraform backend state file"));
        let no_bucket = r#"{"backend":{"type":"s3","config":{"key":"k"}}}"#;
        assert_eq!(parse_backend_state(no_bucket), Err("the s3 backend has no bucket".to_string()));
    }

    #[test]
    fn workspace_precedence() {
        assert_eq!(current_workspace(Some("ci"), Some("dev\n")), "ci");
        assert_eq!(current_workspace(None, Some("dev\n")), "dev");
        assert_eq!(current_workspace(Some(" "), None), "default");
    }
}
