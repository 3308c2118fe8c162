//! One clock for liveness and age, against moto over loopback with real
//! Terraform 1.15.5: one process's clock at a time is shifted by libfaketime
//! (the PyPI package's preload library, in the venv). Terraform is a Go
//! program and keeps the true clock, exactly like a runner whose wrapper
//! and Terraform disagree; moto plays AWS and keeps the true clock too.
//!
//! Before: `exec` 15 minutes behind followed nothing (its Terraform's lock
//! looked "created in the future"), `exec` 15 minutes ahead wrote future
//! heartbeats that the reaper ignored, and a reaper 15 minutes fast deleted
//! a live lock. Now `exec` writes, and every reaper judges, in AWS time.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::common::terraform::{wait_until, Locking, Stack};
use crate::common::*;

const TABLE: &str = "terraform-state-locks";
const KEY: &str = "tfstate/prod/terraform.tfstate";

/// Run `cmd` with its clock shifted by `shift` (libfaketime's syntax:
/// `-15m`, `+15m`); `None` keeps the true clock.
fn on_clock<'a>(cmd: &'a mut Command, shift: Option<&str>) -> &'a mut Command {
    if let Some(shift) = shift {
        cmd.env("LD_PRELOAD", faketime_library()).env("FAKETIME", shift).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    cmd
}

/// `shift` as seconds that AWS's clock is ahead of the shifted process's.
fn expected_offset(shift: Option<&str>) -> i64 {
    match shift {
        Some("-15m") => 900,
        Some("+15m") => -900,
        _ => 0,
    }
}

/// The reaper CLI against the stack's table, on a clock of its own.
fn reaper(stack: &Stack, moto: &Moto, shift: Option<&str>, args: &[&str], window: &str) -> Output {
    let mut cmd = stack.reaper_command(moto, args);
    cmd.env("AWS_ENDPOINT_URL", &moto.url)
        .env("LOCK_TABLES", TABLE)
        .env("STALE_AFTER", window)
        .env("DELETE_AFTER", window)
        // Longer than the tests' 5s contract: a heartbeat delayed by a loaded machine is not death.
        .env("HEARTBEAT_TIMEOUT_MIN", "15s");
    on_clock(&mut cmd, shift).output().expect("run the reaper")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

async fn heartbeat_of(moto: &Moto) -> Option<i64> {
    let item = get_item(&moto.dynamo().await, TABLE, KEY).await?;
    item.get("Heartbeat").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// `exec` on `exec_shift` around a real apply; against its live lock, then
/// its dead one, the reaper on the true clock, 15 minutes ahead and 15
/// minutes behind.
async fn every_reaper_clock_against_exec_on(exec_shift: Option<&str>) {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, TABLE).await;
    let stack = Stack::new(&moto, "tfstate", TABLE, "prod/terraform.tfstate", Locking::DynamoDb);
    stack.init_and_apply();
    let mut job = {
        let mut cmd = stack.reaper_command(
            &moto,
            &[
                "exec",
                "--",
                "terraform",
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                "-var=hang_seconds=120",
            ],
        );
        cmd.stdin(std::process::Stdio::null());
        crate::common::terraform::RunningExec::start(on_clock(&mut cmd, exec_shift), stack.path())
    };

    // The lock is followed whatever the wrapper's clock, and heartbeats land in AWS time.
    let record = stack.record();
    let exists = || {
        let e = record.exists();
        async move { e }
    };
    wait_until("the lock record", Duration::from_secs(60), exists).await;
    wait_until("a heartbeat", Duration::from_secs(15), || async { heartbeat_of(&moto).await.is_some() }).await;
    let beat = heartbeat_of(&moto).await.expect("a heartbeat");
    let true_now = chrono::Utc::now().timestamp();
    assert!((true_now - beat).abs() <= 5, "heartbeat {beat} is in AWS time (now {true_now}):\n{}", job.log());
    let offset = expected_offset(exec_shift);
    if offset != 0 {
        let record: Value = serde_json::from_str(&std::fs::read_to_string(stack.record()).unwrap()).unwrap();
        let measured = record["clock_offset_seconds"].as_i64().expect("the record keeps the offset");
        assert!((measured - offset).abs() <= 2, "offset {measured}, expected about {offset}");
        let way = if offset > 0 { "behind AWS" } else { "ahead of AWS" };
        let warned = || {
            let said = job.log().contains("; heartbeats are written in AWS time");
            async move { said }
        };
        wait_until("the clock warning", Duration::from_secs(10), warned).await;
        let log = job.log();
        assert_eq!(log.matches("; heartbeats are written in AWS time").count(), 1, "warned once:\n{log}");
        assert!(log.contains(way), "{log}");
    }

    // Alive: no reaper clock and no window deletes it, and each reads it as a lock.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for shift in [None, Some("+15m"), Some("-15m")] {
        for window in ["5s", "2h"] {
            let out = reaper(&stack, &moto, shift, &["run", "--action", "delete", "--no-notify"], window);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "reaper {shift:?}, window {window}:\n{text}");
            assert!(text.contains("alive, heartbeat"), "reaper {shift:?}, window {window}:\n{text}");
            assert!(!text.contains("UNREADABLE"), "{text}");
            assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_some(), "reaper {shift:?} left it:\n{text}");
            if shift.is_some() {
                assert!(text.contains("clock: this machine's clock is 1"), "the offset is said:\n{text}");
            }
        }
    }

    // Dead: the runner is killed; its silence is judged the same by every reaper clock.
    job.kill_group();
    tokio::time::sleep(Duration::from_secs(17)).await;
    for shift in [None, Some("+15m"), Some("-15m")] {
        let out =
            reaper(&stack, &moto, shift, &["run", "--action", "delete", "--dry-run", "--no-notify", "--json"], "2h");
        let report = json_of(&out);
        let lock = &report["sources"][0]["locks"][0];
        assert_eq!(lock["liveness"], "dead", "reaper {shift:?}: {report:#}");
        assert_eq!(lock["action"], "dry-run", "reaper {shift:?} would delete it: {report:#}");
        let millis = report["clock_offset"]["millis"].as_i64().expect("the report keeps the offset");
        assert!((millis / 1000 - expected_offset(shift)).abs() <= 2, "reaper {shift:?}: offset {millis} ms");
    }
    let out = reaper(&stack, &moto, Some("+15m"), &["run", "--action", "delete", "--no-notify"], "2h");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(get_item(&moto.dynamo().await, TABLE, KEY).await.is_none(), "reaped by silence:\n{text}");
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_15_minutes_behind_follows_its_lock_and_every_reaper_judges_it_right() {
    every_reaper_clock_against_exec_on(Some("-15m")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_15_minutes_ahead_follows_its_lock_and_every_reaper_judges_it_right() {
    every_reaper_clock_against_exec_on(Some("+15m")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_on_the_true_clock_against_reapers_ahead_and_behind() {
    every_reaper_clock_against_exec_on(None).await;
}

/// A lockfile whose Terraform ran on a host 3 hours behind: its `Created`
/// is 3 hours old, S3 stored it seconds ago. Kept under a 2h window (and
/// the report says why); a lockfile that S3 also stored 3 hours ago is
/// reaped. A table lock "created" 15 minutes ahead of AWS is a flagged
/// lock, never unreadable and never aged.
#[tokio::test(flavor = "multi_thread")]
async fn lockfile_age_is_never_older_than_s3_says_and_a_future_created_is_flagged() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let dynamo = moto.dynamo().await;
    create_lock_table(&dynamo, TABLE).await;
    let behind =
        info_json("behind-host", "tfstate/behind/terraform.tfstate", chrono::Utc::now() - chrono::Duration::hours(3));
    let key = "behind/terraform.tfstate.tflock";
    put_object_stored(&moto, &moto.s3().await, "tfstate", key, &behind, chrono::Duration::zero()).await;
    put_lockfile(&moto, "tfstate", "old/terraform.tfstate.tflock", "old-run", chrono::Duration::hours(3)).await;
    let fast =
        info_json("fast-host", "tfstate/fast/terraform.tfstate", chrono::Utc::now() + chrono::Duration::minutes(15));
    put_item(&dynamo, TABLE, &[("LockID", s("tfstate/fast/terraform.tfstate")), ("Info", s(&fast))]).await;

    let run = |json: bool| {
        let mut args = vec!["run", "--table", TABLE, "--bucket", "tfstate", "--action", "delete", "--no-notify"];
        if json {
            args.push("--json");
        }
        Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
            .args(&args)
            .envs(moto.env())
            .env("STALE_AFTER", "2h")
            .env("DELETE_AFTER", "2h")
            .output()
            .expect("run the reaper")
    };
    let out = run(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let s3 = moto.s3().await;
    let exists = |key: &'static str| {
        let s3 = s3.clone();
        async move { s3.head_object().bucket("tfstate").key(key).send().await.is_ok() }
    };
    assert!(exists("behind/terraform.tfstate.tflock").await, "stored seconds ago: kept\n{text}");
    assert!(!exists("old/terraform.tfstate.tflock").await, "stored 3h ago: reaped\n{text}");
    assert!(get_item(&dynamo, TABLE, "tfstate/fast/terraform.tfstate").await.is_some(), "{text}");
    let note = "CLOCK behind-host: age counted from S3 LastModified: Info.Created is 2h59m earlier";
    assert!(text.contains(note) || text.contains(&note.replace("2h59m", "3h00m")), "{text}");
    assert!(text.contains("CLOCK fast-host: Info.Created is 1"), "{text}");
    assert!(!text.contains("UNREADABLE"), "{text}");

    let report = json_of(&run(true));
    let note = |source: usize, id: &str| {
        report["sources"][source]["locks"].as_array().unwrap().iter().find(|l| l["id"] == id).unwrap()["clock_note"]
            .clone()
    };
    assert_eq!(note(1, "behind-host")["clock"], "aged-from-last-modified", "{report:#}");
    assert_eq!(note(0, "fast-host")["clock"], "created-in-future", "{report:#}");
}
