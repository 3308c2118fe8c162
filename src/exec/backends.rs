//! Where the command's backends are: in the data directory of each of its
//! Terraform processes (`.terraform/terraform.tfstate`, or `TF_DATA_DIR`),
//! found through `/proc` when the lock is taken, not when `exec` starts;
//! failing that, any initialised data directory under the directory `exec`
//! runs in (a Terragrunt cache included) whose backend holds the lock.

use std::path::{Path, PathBuf};

use crate::domain::backend::{current_workspace, parse_backend_state, Backend, S3Backend};
use crate::domain::process::{ProcId, Process};

/// A Terraform process's s3 backend and the workspace it works in.
#[derive(Debug, Clone)]
pub(crate) struct ProcessBackend {
    pub process: ProcId,
    pub backend: S3Backend,
    pub workspace: String,
}

/// The s3 backend of a data directory, if it has one.
fn backend_in(data_dir: &Path) -> Option<S3Backend> {
    let text = std::fs::read_to_string(data_dir.join("terraform.tfstate")).ok()?;
    match parse_backend_state(&text) {
        Ok(Some(Backend::S3(b))) => Some(*b),
        _ => None,
    }
}

/// The workspace of a data directory: `TF_WORKSPACE`, else its `environment` file.
fn workspace_in(data_dir: &Path, tf_workspace: Option<&str>) -> String {
    let file = std::fs::read_to_string(data_dir.join("environment")).ok();
    current_workspace(tf_workspace, file.as_deref())
}

impl ProcessBackend {
    /// The lock this process takes: its backend's, in its workspace.
    pub(crate) fn lock_path(&self) -> String {
        self.backend.lock_location(&self.workspace).lock_path
    }
}

/// The processes holding the lock at `lock_path`: those whose own backend
/// and workspace take it (Terraform ≤ 1.1 runs as two; two workspaces of
/// one stack are two locks).
pub(crate) fn holders_of(found: &[ProcessBackend], lock_path: &str) -> Vec<ProcId> {
    found.iter().filter(|b| b.lock_path() == lock_path).map(|b| b.process).collect()
}

/// The s3 backends of the running Terraform processes in `tree`.
pub(crate) fn of_processes(tree: &[Process]) -> Vec<ProcessBackend> {
    let mut out = Vec::new();
    for p in tree.iter().filter(|p| p.running && p.is_terraform()) {
        if let Some((dir, backend)) = p.data_dirs().into_iter().find_map(|d| backend_in(&d).map(|b| (d, b))) {
            let workspace = workspace_in(&dir, p.workspace.as_deref());
            out.push(ProcessBackend { process: p.id, backend, workspace });
        }
    }
    out
}

/// The backend, and the workspace, holding the lock at `lock_path`
/// (`<bucket>/<state key>`) among the data directories under `dir`.
pub(crate) fn under(dir: &Path, lock_path: &str) -> Option<(S3Backend, String)> {
    data_dirs_under(dir).into_iter().find_map(|d| {
        let backend = backend_in(&d)?;
        let workspace = backend.workspace_of(lock_path)?;
        Some((backend, workspace))
    })
}

/// Directories named `.terraform` below `dir` (hidden ones included, as
/// Terragrunt keeps its copies in `.terragrunt-cache`), bounded in depth
/// and in entries read so a huge tree never stalls the wrapper.
fn data_dirs_under(dir: &Path) -> Vec<PathBuf> {
    const MAX_DEPTH: usize = 8;
    const MAX_ENTRIES: usize = 20_000;
    const SKIP: [&str; 3] = [".git", "node_modules", "providers"];
    let mut found = Vec::new();
    let mut read = 0;
    let mut next = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = next.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            read += 1;
            if read > MAX_ENTRIES {
                return found;
            }
            let name = entry.file_name();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || SKIP.iter().any(|s| name == *s) {
                continue;
            }
            if name == ".terraform" {
                found.push(entry.path());
            } else if depth < MAX_DEPTH {
                next.push((entry.path(), depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = concat!(
        r#"{"version":3,"backend":{"type":"s3","config":{"bucket":"tfstate","key":"app/terraform.tfstate","#,
        r#""dynamodb_table":"locks","region":"us-east-1"}}}"#,
    );

    #[test]
    fn a_terragrunt_cache_copy_is_found_by_its_lock_path() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("live/app/.terragrunt-cache/abc/def/.terraform");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("terraform.tfstate"), STATE).unwrap();
        std::fs::create_dir_all(root.path().join(".git/objects")).unwrap();
        let (backend, ws) = under(root.path(), "tfstate/app/terraform.tfstate").expect("found");
        assert_eq!((backend.dynamodb_table.as_deref(), ws.as_str()), (Some("locks"), "default"));
        assert_eq!(under(root.path(), "tfstate/env:/ci/app/terraform.tfstate").map(|f| f.1).as_deref(), Some("ci"));
        assert!(under(root.path(), "tfstate/other/terraform.tfstate").is_none());
    }

    #[test]
    fn a_running_terraforms_backend_and_workspace() {
        let root = tempfile::tempdir().unwrap();
        let stack = root.path().join("stack");
        std::fs::create_dir_all(stack.join(".terraform")).unwrap();
        std::fs::write(stack.join(".terraform/terraform.tfstate"), STATE).unwrap();
        std::fs::write(stack.join(".terraform/environment"), "dev").unwrap();
        let process = |argv: &[&str], running| Process {
            id: ProcId { pid: 5, start: 1 },
            ppid: 1,
            running,
            exe: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: Some(root.path().to_path_buf()),
            data_dir: None,
            workspace: None,
            cli_args_env: Vec::new(),
        };
        let found = of_processes(&[process(&["terraform", "-chdir=stack", "apply"], true)]);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].backend.bucket.as_str(), found[0].workspace.as_str()), ("tfstate", "dev"));
        assert!(of_processes(&[process(&["make", "apply"], true)]).is_empty(), "not Terraform");
        let other_workspace =
            ProcessBackend { process: ProcId { pid: 6, start: 1 }, workspace: "default".into(), ..found[0].clone() };
        let both = [found[0].clone(), other_workspace];
        assert_eq!(holders_of(&both, "tfstate/env:/dev/app/terraform.tfstate"), vec![ProcId { pid: 5, start: 1 }]);
        assert_eq!(holders_of(&both, "tfstate/app/terraform.tfstate"), vec![ProcId { pid: 6, start: 1 }]);
        assert!(of_processes(&[process(&["terraform", "-chdir=stack", "apply"], false)]).is_empty(), "ended");
    }
}
