//! End to end with real Terraform: a killed `apply` orphans its DynamoDB
//! lock, `plan` fails exactly as users see it, one reaper pass clears the
//! orphan while a running apply's younger lock survives, and `plan` works.

use std::process::Command;
use std::time::Duration;

use crate::common::terraform::{wait_until, Locking, Stack};
use crate::common::*;

const TABLE: &str = "terraform-state-locks";

#[tokio::test(flavor = "multi_thread")]
async fn killed_apply_orphan_is_reaped_and_running_apply_survives() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let client = moto.dynamo().await;
    create_lock_table(&client, TABLE).await;

    let orphaned = Stack::new(&moto, "tfstate", TABLE, "prod/terraform.tfstate", Locking::DynamoDb);
    let running = Stack::new(&moto, "tfstate", TABLE, "staging/terraform.tfstate", Locking::DynamoDb);
    orphaned.init_and_apply();
    running.init_and_apply();
    let orphan_key = "tfstate/prod/terraform.tfstate";
    let running_key = "tfstate/staging/terraform.tfstate";
    assert!(get_item(&client, TABLE, &format!("{orphan_key}-md5")).await.is_some(), "apply wrote a digest");

    // The runner dies mid-apply.
    let apply = orphaned.start_hanging_apply(300);
    wait_until("the orphan's lock", Duration::from_secs(60), || async {
        get_item(&client, TABLE, orphan_key).await.is_some()
    })
    .await;
    apply.kill();
    let orphan_created = std::time::Instant::now();

    let (ok, text) = orphaned.plan();
    assert!(!ok, "plan must be blocked by the orphaned lock");
    assert!(
        text.contains("Error acquiring the state lock") && text.contains("ConditionalCheckFailedException"),
        "{text}"
    );

    // The orphan is older than the (short) window; a fresh apply starts now.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(orphan_created.elapsed())).await;
    let live = running.start_hanging_apply(120);
    wait_until("the running apply's lock", Duration::from_secs(60), || async {
        get_item(&client, TABLE, running_key).await.is_some()
    })
    .await;
    let live_before = get_item(&client, TABLE, running_key).await;

    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("STALE_AFTER", "5s")
        .env("DELETE_AFTER", "5s")
        .args(["run", "--table", TABLE, "--action", "delete", "--json"])
        .output()
        .expect("run reaper");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let locks = report["sources"][0]["locks"].as_array().unwrap();
    let action_of = |key: &str| locks.iter().find(|l| l["lock_key"] == key).map(|l| l["action"].clone());
    assert_eq!(action_of(orphan_key), Some("deleted".into()), "{report:#}");
    assert_eq!(action_of(running_key), Some("none".into()), "{report:#}");

    assert!(get_item(&client, TABLE, orphan_key).await.is_none());
    assert_eq!(get_item(&client, TABLE, running_key).await, live_before, "the running apply's lock is untouched");
    assert!(get_item(&client, TABLE, &format!("{orphan_key}-md5")).await.is_some(), "digest untouched");

    let (ok, text) = orphaned.plan();
    assert!(ok, "plan works again after the reaper pass:\n{text}");
    live.kill();
}

async fn object_exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object().bucket(bucket).key(key).send().await.is_ok()
}

async fn object_etag(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    s3.head_object().bucket(bucket).key(key).send().await.ok().and_then(|o| o.e_tag)
}

fn reaper(moto: &Moto, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("STALE_AFTER", "5s")
        .env("DELETE_AFTER", "5s")
        .args(["run", "--action", "delete", "--json"])
        .args(args)
        .output()
        .expect("run reaper");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn action_of(report: &serde_json::Value, kind: &str, key: &str) -> Option<String> {
    report["sources"]
        .as_array()?
        .iter()
        .filter(|s| s["kind"] == kind)
        .flat_map(|s| s["locks"].as_array().cloned().unwrap_or_default())
        .find(|l| l["lock_key"] == key)
        .and_then(|l| l["action"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_apply_lockfile_is_reaped_and_running_apply_lockfile_survives() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    let orphaned = Stack::new(&moto, "tfstate", TABLE, "prod/terraform.tfstate", Locking::Lockfile);
    let running = Stack::new(&moto, "tfstate", TABLE, "staging/terraform.tfstate", Locking::Lockfile);
    orphaned.init_and_apply();
    running.init_and_apply();
    let (orphan_key, running_key) = ("prod/terraform.tfstate.tflock", "staging/terraform.tfstate.tflock");

    let apply = orphaned.start_hanging_apply(300);
    wait_until("the orphan's lockfile", Duration::from_secs(60), || object_exists(&s3, "tfstate", orphan_key)).await;
    apply.kill();
    let orphan_created = std::time::Instant::now();
    let (ok, text) = orphaned.plan();
    assert!(!ok, "plan must be blocked by the orphaned lockfile");
    assert!(text.contains("Error acquiring the state lock") && text.contains("StatusCode: 412"), "{text}");

    tokio::time::sleep(Duration::from_secs(8).saturating_sub(orphan_created.elapsed())).await;
    let live = running.start_hanging_apply(120);
    wait_until("the running apply's lockfile", Duration::from_secs(60), || object_exists(&s3, "tfstate", running_key))
        .await;
    let live_etag = object_etag(&s3, "tfstate", running_key).await;

    let report = reaper(&moto, &["--bucket", "tfstate"]);
    assert_eq!(action_of(&report, "bucket", orphan_key).as_deref(), Some("deleted"), "{report:#}");
    assert_eq!(action_of(&report, "bucket", running_key).as_deref(), Some("none"), "{report:#}");
    assert!(!object_exists(&s3, "tfstate", orphan_key).await);
    assert_eq!(object_etag(&s3, "tfstate", running_key).await, live_etag, "the running apply's lockfile is untouched");
    assert!(object_exists(&s3, "tfstate", "prod/terraform.tfstate").await, "the state itself is untouched");

    let (ok, text) = orphaned.plan();
    assert!(ok, "plan works again:\n{text}");
    live.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_apply_with_double_locking_leaves_two_halves_and_both_are_reaped() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    let client = moto.dynamo().await;
    create_lock_table(&client, TABLE).await;
    let stack = Stack::new(&moto, "tfstate", TABLE, "prod/terraform.tfstate", Locking::Both);
    stack.init_and_apply();
    let (table_key, file_key) = ("tfstate/prod/terraform.tfstate", "prod/terraform.tfstate.tflock");

    let apply = stack.start_hanging_apply(300);
    wait_until("both halves", Duration::from_secs(60), || async {
        object_exists(&s3, "tfstate", file_key).await && get_item(&client, TABLE, table_key).await.is_some()
    })
    .await;
    apply.kill();
    let created = std::time::Instant::now();
    let (ok, text) = stack.plan();
    assert!(!ok && text.contains("Error acquiring the state lock"), "{text}");

    tokio::time::sleep(Duration::from_secs(7).saturating_sub(created.elapsed())).await;
    let report = reaper(&moto, &["--table", TABLE, "--bucket", "tfstate"]);
    assert_eq!(action_of(&report, "table", table_key).as_deref(), Some("deleted"), "{report:#}");
    assert_eq!(action_of(&report, "bucket", file_key).as_deref(), Some("deleted"), "{report:#}");
    assert_eq!(report["planned_deletes"], 1, "one lock, two halves");
    assert!(get_item(&client, TABLE, table_key).await.is_none());
    assert!(!object_exists(&s3, "tfstate", file_key).await);
    assert!(get_item(&client, TABLE, &format!("{table_key}-md5")).await.is_some(), "digest untouched");

    let (ok, text) = stack.plan();
    assert!(ok, "plan works again:\n{text}");
}
