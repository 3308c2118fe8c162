//! End to end with real Terraform: a killed `apply` orphans its DynamoDB
//! lock, `plan` fails exactly as users see it, one reaper pass clears the
//! orphan while a running apply's younger lock survives, and `plan` works.

mod common;

use std::process::Command;
use std::time::Duration;

use common::terraform::{wait_until, Locking, Stack};
use common::*;

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
