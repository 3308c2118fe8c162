//! The next job unblocks itself: runner A applies under `exec` and is
//! SIGKILLed as a whole (wrapper, Terraform and all: a dead CI runner);
//! runner B, in another directory on the same state, runs
//! `exec -- terraform apply -lock-timeout=…`. B's wrapper sees from
//! Terraform's log that its Terraform is blocked, reads A's lock, finds its
//! heartbeat silent past its liveness contract, releases it (conditioned on
//! what it read), and B's Terraform takes the state on its next retry.
//! Real Terraform (every release that logs its lock ID) against moto.
//!
//! Each case prints the time from A's death to B holding the lock (B's
//! `Info.Created`, the same machine's clock as the kill). The tests' contract
//! is 5 s with a heartbeat every second (`Stack::reaper_command`); with
//! `UNBLOCK_CI_DEFAULTS=1` the jobs run with the CI defaults instead (a
//! heartbeat every 15 s, a 90 s contract), which is how the README's figures
//! were measured: `make measure-unblock`.
//!
//! What never happens is proven here too: an alive holder, a holder on the
//! terminal contract not yet silent long enough, and a holder not under
//! `exec` are left byte for byte, with the `unlock` command printed. (A
//! heartbeat landing between B's read and B's delete: `exec::blocker`'s unit
//! tests, over the in-memory ports, and the guarded delete against moto in
//! `reaper_dynamodb`.)

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

use crate::common::terraform::{wait_until, Locking, Release, RunningExec, Stack};
use crate::common::*;

const TABLE: &str = "terraform-state-locks";
const STATE: &str = "app/terraform.tfstate";
const LOCK_KEY: &str = "tfstate/app/terraform.tfstate";
const LOCKFILE: &str = "app/terraform.tfstate.tflock";

/// The CI defaults (`UNBLOCK_CI_DEFAULTS=1`) or the tests' short contract.
fn ci_defaults() -> bool {
    std::env::var("UNBLOCK_CI_DEFAULTS").is_ok_and(|v| v == "1")
}

/// The contract and heartbeat period the jobs run with.
fn contract_and_every() -> (Duration, Duration) {
    if ci_defaults() {
        (Duration::from_secs(90), Duration::from_secs(15))
    } else {
        (Duration::from_secs(5), Duration::from_secs(1))
    }
}

async fn backend() -> Moto {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, TABLE).await;
    moto
}

/// `exec -- terraform <args>` in the stack's directory, as a CI job: its
/// own process group, its output in `exec.log`.
fn start_job(stack: &Stack, moto: &Moto, args: &[&str]) -> RunningExec {
    let mut command = vec!["exec", "--", "terraform"];
    command.extend_from_slice(args);
    let mut cmd = stack.reaper_command(moto, &command);
    if ci_defaults() {
        cmd.env_remove("HEARTBEAT_EVERY").env_remove("HEARTBEAT_TIMEOUT").env_remove("HEARTBEAT_TIMEOUT_MIN");
        cmd.env("CI", "true");
    }
    RunningExec::start(cmd.stdin(Stdio::null()), stack.path())
}

/// A second directory on the same state, initialised (B's checkout).
fn second_checkout(moto: &Moto, locking: Locking, release: Release) -> Stack {
    let b = Stack::with_release(moto, TABLE, STATE, locking, release);
    let out = b.tf(&["init", "-input=false", "-no-color"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b
}

/// Runner A: an apply under `exec` that hangs, with its lock heartbeated.
async fn runner_a(moto: &Moto, locking: Locking, release: Release) -> (Stack, RunningExec) {
    let a = Stack::with_release(moto, TABLE, STATE, locking, release);
    a.init_and_apply();
    let job = start_job(&a, moto, &["apply", "-auto-approve", "-input=false", "-no-color", "-var=hang_seconds=600"]);
    let record = a.record();
    wait_until("A's lock record", Duration::from_secs(90), || {
        let exists = record.exists();
        async move { exists }
    })
    .await;
    (a, job)
}

/// The lock ID in the record a wrapper keeps (`locks[0]`).
fn recorded_id(record: &Path) -> Option<String> {
    let text = std::fs::read_to_string(record).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["locks"][0]["lock_id"].as_str()?.to_string())
}

/// The ID of the lock on the state now: the table item's, else the lockfile's.
async fn lock_id_now(moto: &Moto) -> Option<String> {
    let info = match get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await {
        Some(item) => item.get("Info")?.as_s().ok()?.clone(),
        None => lockfile_body(moto).await?,
    };
    let v: serde_json::Value = serde_json::from_str(&info).ok()?;
    Some(v["ID"].as_str()?.to_string())
}

/// Wait for B to exit, noting when a lock other than A's first held the
/// state (Terraform's `Created` is when it began trying, not when it got it).
async fn wait_for_b(
    moto: &Moto,
    a_id: &str,
    job: &mut RunningExec,
    within: Duration,
) -> (Option<i32>, Option<Instant>) {
    let start = Instant::now();
    let mut held = None;
    while start.elapsed() < within {
        if held.is_none() && lock_id_now(moto).await.is_some_and(|id| id != a_id) {
            held = Some(Instant::now());
        }
        if let Some(status) = job.job.ended() {
            return (status.code(), held);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (None, held)
}

async fn lockfile_body(moto: &Moto) -> Option<String> {
    let out = moto.s3().await.get_object().bucket("tfstate").key(LOCKFILE).send().await.ok()?;
    String::from_utf8(out.body.collect().await.ok()?.to_vec()).ok()
}

/// Dead A, waiting B: B's apply completes; the time from A's death to B
/// holding the lock is printed and held to the goal (the contract plus two
/// heartbeats) plus Terraform's own retry delay, which doubles up to 16 s.
async fn dead_runner_unblocks(release: Release, locking: Locking) {
    let moto = backend().await;
    let (a, mut job_a) = runner_a(&moto, locking, release).await;
    let b = second_checkout(&moto, locking, release);
    let a_id = recorded_id(&a.record()).expect("A's record");
    job_a.kill_group();
    let died = Instant::now();
    // B's apply holds the state a few seconds, so its record is seen.
    let args = ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=5m", "-var=hang_seconds=3"];
    let mut job_b = start_job(&b, &moto, &args);
    let (contract, every) = contract_and_every();
    let (code, held) = wait_for_b(&moto, &a_id, &mut job_b, contract + Duration::from_secs(120)).await;
    let log = job_b.log();
    assert_eq!(code, Some(0), "B's apply completes:\n{log}");
    let released = format!("released lock {a_id} on {LOCK_KEY}: its runner ");
    assert!(log.contains(&released) && log.contains("Terraform takes the state on its next retry"), "{log}");
    let took = held.expect("B held the lock").duration_since(died);
    eprintln!(
        "time to unblock: Terraform {}, {locking:?}: {:.1}s from A's death to B holding the lock (contract {}s, \
         heartbeat every {}s)",
        release.version(),
        took.as_secs_f64(),
        contract.as_secs(),
        every.as_secs()
    );
    let terraform_retry = Duration::from_secs(16);
    let slack = Duration::from_secs(10);
    assert!(took <= contract + 2 * every + terraform_retry + slack, "{took:?}\n{log}");
    let left = get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await;
    assert!(left.is_none(), "B released its own lock at the end: {left:?}\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_6_dynamodb_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_6_6, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_9_dynamodb_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_9_8, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_10_dynamodb_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_10_5, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_10_lockfile_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_10_5, Locking::Lockfile).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_10_double_lock_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_10_5, Locking::Both).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_15_dynamodb_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_15_5, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_15_lockfile_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_15_5, Locking::Lockfile).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_1_15_double_lock_dead_runner_unblocks_the_next_job() {
    dead_runner_unblocks(Release::V1_15_5, Locking::Both).await;
}

/// Without `-lock-timeout` Terraform fails at once: B exits with Terraform's
/// code, says the state is free now, and a re-run succeeds. `exec` never
/// re-runs anything itself.
#[tokio::test(flavor = "multi_thread")]
async fn without_lock_timeout_the_job_fails_releases_and_its_rerun_succeeds() {
    if ci_defaults() {
        return;
    }
    let moto = backend().await;
    let (a, mut job_a) = runner_a(&moto, Locking::DynamoDb, Release::V1_15_5).await;
    let b = second_checkout(&moto, Locking::DynamoDb, Release::V1_15_5);
    let a_id = recorded_id(&a.record()).expect("A's record");
    job_a.kill_group();
    // Past A's contract (5s): dead by the time B asks.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let apply = ["apply", "-auto-approve", "-input=false", "-no-color"];
    let mut job_b = start_job(&b, &moto, &apply);
    let code = job_b.wait(Duration::from_secs(60));
    let log = job_b.log();
    assert_eq!(code, Some(1), "Terraform's exit code:\n{log}");
    assert!(log.contains("Error acquiring the state lock"), "{log}");
    let released = format!("released lock {a_id} on {LOCK_KEY}: its runner ");
    assert!(log.contains(&released) && log.contains("the state is free now: re-run the command"), "{log}");
    assert!(get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await.is_none(), "{log}");
    let mut rerun = start_job(&b, &moto, &apply);
    assert_eq!(rerun.wait(Duration::from_secs(60)), Some(0), "{}", rerun.log());
}

/// An alive A (a long apply): B waits out its `-lock-timeout` and fails;
/// A's lock is intact byte for byte (its `Info`, its lockfile), and B said
/// who holds it, that it is alive, and the `unlock` command.
#[tokio::test(flavor = "multi_thread")]
async fn an_alive_holder_is_waited_out_and_left_intact() {
    if ci_defaults() {
        return;
    }
    let moto = backend().await;
    let (a, _job_a) = runner_a(&moto, Locking::Both, Release::V1_15_5).await;
    let b = second_checkout(&moto, Locking::Both, Release::V1_15_5);
    let a_id = recorded_id(&a.record()).expect("A's record");
    let info_before = get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await.expect("A's lock")["Info"].clone();
    let file_before = lockfile_body(&moto).await.expect("A's lockfile");
    let mut job_b = start_job(&b, &moto, &["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=8s"]);
    let code = job_b.wait(Duration::from_secs(60));
    let log = job_b.log();
    assert_eq!(code, Some(1), "B gave up after its -lock-timeout:\n{log}");
    let item = get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await.expect("A's lock is kept");
    assert_eq!(item["Info"], info_before, "{log}");
    assert_eq!(lockfile_body(&moto).await.as_deref(), Some(file_before.as_str()), "{log}");
    assert!(log.contains(&format!("is locked by another run: lock {a_id} (OperationTypeApply by ")), "{log}");
    assert!(log.contains("heartbeated") && log.contains("alive, so it is left alone"), "{log}");
    assert!(log.contains(&format!("tf-lock-reaper unlock '{a_id}' --table '{TABLE}' --bucket 'tfstate'")), "{log}");
    assert!(!log.contains("released lock"), "{log}");
}

/// A on the terminal contract (10 min), silent for 2 minutes: B leaves it.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_contract_not_yet_run_out_is_left() {
    if ci_defaults() {
        return;
    }
    let moto = backend().await;
    let b = second_checkout(&moto, Locking::DynamoDb, Release::V1_15_5);
    let dynamo = moto.dynamo().await;
    let info = put_lock(&dynamo, TABLE, LOCK_KEY, "laptop-lock", Duration::from_secs(600)).await;
    let silent_since = (Utc::now() - chrono::Duration::minutes(2)).timestamp().to_string();
    dynamo
        .update_item()
        .table_name(TABLE)
        .key("LockID", s(LOCK_KEY))
        .update_expression("SET Heartbeat = :hb, HeartbeatTimeout = :c")
        .expression_attribute_values(":hb", AttributeValue::N(silent_since.clone()))
        .expression_attribute_values(":c", AttributeValue::N("600".into()))
        .send()
        .await
        .unwrap();
    let mut job_b = start_job(&b, &moto, &["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=4s"]);
    assert_eq!(job_b.wait(Duration::from_secs(60)), Some(1), "{}", job_b.log());
    let log = job_b.log();
    let item = get_item(&dynamo, TABLE, LOCK_KEY).await.expect("left alone");
    assert_eq!((item["Info"].as_s().ok(), item["Heartbeat"].as_n().ok()), (Some(&info), Some(&silent_since)), "{log}");
    assert!(log.contains("heartbeated 2m0") && log.contains("(contract 10m00s): alive"), "{log}");
}

/// A not under `exec` (no heartbeat) and dead: B leaves it and prints the
/// `unlock` command.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_without_heartbeats_is_left_with_the_unlock_command() {
    if ci_defaults() {
        return;
    }
    let moto = backend().await;
    let a = Stack::with_release(&moto, TABLE, STATE, Locking::DynamoDb, Release::V1_15_5);
    a.init_and_apply();
    let plain = a.start_hanging_apply(600);
    wait_until("A's plain lock", Duration::from_secs(60), || async {
        get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await.is_some()
    })
    .await;
    plain.kill();
    let held = get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await.expect("A's orphan");
    let info: serde_json::Value = serde_json::from_str(held["Info"].as_s().unwrap()).unwrap();
    let a_id = info["ID"].as_str().unwrap().to_string();
    let b = second_checkout(&moto, Locking::DynamoDb, Release::V1_15_5);
    let mut job_b = start_job(&b, &moto, &["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=4s"]);
    assert_eq!(job_b.wait(Duration::from_secs(60)), Some(1), "{}", job_b.log());
    let log = job_b.log();
    assert_eq!(get_item(&moto.dynamo().await, TABLE, LOCK_KEY).await, Some(held), "{log}");
    assert!(log.contains("no heartbeat: it was not taken under tf-lock-reaper exec"), "{log}");
    assert!(
        log.contains(&format!(
            "If no run holds it: `AWS_REGION='us-east-1' tf-lock-reaper unlock '{a_id}' --table '{TABLE}'`"
        )),
        "{log}"
    );
}
