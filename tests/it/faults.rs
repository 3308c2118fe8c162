//! The reaper under faults: a fault-injecting proxy (loopback only) in
//! front of `moto_server` answers 500s, throttles, drops a write's answer
//! after the server acted, answers late, or never answers. Every AWS call
//! goes through the project's own timeouts (`wiring::timeouts`), with a
//! small budget so the tests stay short.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;
use aws_config::{BehaviorVersion, Region};
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::adapters::s3_lockfiles::S3LockfileBuckets;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::alert::conditions::current_alerts;
use tf_lock_reaper::domain::alert::AlertSettings;
use tf_lock_reaper::domain::decision::ActionTaken;
use tf_lock_reaper::domain::metrics::metric_sets;
use tf_lock_reaper::domain::report::RunReport;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::support::deadline::Deadline;
use tf_lock_reaper::wiring::timeouts;

/// The SDK pointed at the proxy, with the timeouts a pass of `budget` gets.
async fn sdk_through(proxy: &FaultProxy, budget: Duration) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&proxy.url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .timeout_config(timeouts(budget))
        .load()
        .await
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(&vars(pairs), EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).expect("valid config")
}

async fn pass(proxy: &FaultProxy, cfg: &Config) -> RunReport {
    let sdk = sdk_through(proxy, Duration::from_secs(8)).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    Reaper::new(
        cfg.clone(),
        Arc::new(DynamoLockTables::new(aws_sdk_dynamodb::Client::new(&sdk)).with_endpoint_url(Some(&proxy.url))),
        Arc::new(S3LockfileBuckets::new(s3).with_endpoint_url(Some(&proxy.url))),
    )
    .run(Deadline::none())
    .await
}

fn locks_deleted_metric(report: &RunReport) -> f64 {
    metric_sets(report)[0].values.iter().find(|(n, _, _)| *n == "LocksDeleted").map(|(_, v, _)| *v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_answer_is_lost_is_cleared_not_changed_and_not_paged() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "stale-1", hours(5)).await;
    let proxy = FaultProxy::start(moto.port);
    // The first DeleteItem reaches moto and deletes; its answer never comes
    // back. The SDK retries; the retry's condition fails on the missing item.
    proxy.queue("DeleteItem", &[Fault::ResetAfterForward]);
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = pass(&proxy, &cfg).await;
    assert!(proxy.requests("DeleteItem").len() >= 2, "the SDK retried: {:?}", proxy.log.lock().unwrap());
    let lock = &report.sources[0].locks[0];
    assert_eq!(lock.action, ActionTaken::Gone, "{:?}", lock.detail);
    assert!(report.ok);
    assert!(get_item(&client, "locks", "tfstate/app/terraform.tfstate").await.is_none());
    assert_eq!(locks_deleted_metric(&report), 1.0, "the cleared lock is counted");
    let alerts = current_alerts(&report, &AlertSettings::default(), chrono::Utc::now());
    assert!(alerts.is_empty(), "no critical page for a lock the reaper removed: {alerts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_taken_again_after_a_lost_answer_is_changed_and_survives() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    let key = "tfstate/app/terraform.tfstate";
    put_lock(&client, "locks", key, "old-run", hours(5)).await;
    let proxy = FaultProxy::start(moto.port);
    // The first attempt lands and its answer is slow; meanwhile nothing else
    // happens, so this exercises the ordinary path: one attempt, deleted.
    proxy.queue("DeleteItem", &[Fault::Slow(Duration::from_millis(300))]);
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = pass(&proxy, &cfg).await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Deleted);

    // Now a new run takes the lock between the scan and the delete's retry.
    put_lock(&client, "locks", key, "old-run-2", hours(5)).await;
    let proxy = FaultProxy::start(moto.port);
    proxy.queue("DeleteItem", &[Fault::ResetAfterForward]);
    let new_info = info_json("new-run", key, chrono::Utc::now());
    let client2 = client.clone();
    let writer = tokio::spawn(async move {
        // Wait for the first (lost) delete to land, then take the lock again.
        for _ in 0..2000 {
            if get_item(&client2, "locks", key).await.is_none() {
                put_item(&client2, "locks", &[("LockID", s(key)), ("Info", s(&new_info))]).await;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    });
    let report = pass(&proxy, &cfg).await;
    assert!(writer.await.unwrap(), "the lock was re-taken");
    let lock = &report.sources[0].locks[0];
    // The retry may run before or after the re-take; either way the new
    // run's lock is never deleted.
    assert!(matches!(lock.action, ActionTaken::Gone | ActionTaken::Changed), "{:?}", lock.action);
    let item = get_item(&client, "locks", key).await.expect("the new run's lock survives");
    assert!(item["Info"].as_s().unwrap().contains("new-run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn scans_ride_out_server_errors_throttling_and_slow_answers() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "stale-1", hours(5)).await;
    let proxy = FaultProxy::start(moto.port);
    proxy.queue("Scan", &[Fault::ServerError, Fault::Throttle, Fault::Slow(Duration::from_millis(500))]);
    let report = pass(&proxy, &config(&[("LOCK_TABLES", "locks")])).await;
    assert!(report.ok, "{:?}", report.sources[0].scan_error);
    assert_eq!(report.sources[0].counts.stale, 1);
    assert_eq!(proxy.requests("Scan").len(), 3, "{:?}", proxy.log.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lockfile_that_never_answers_is_unreadable_and_the_rest_are_judged() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    for (key, id) in [("a/terraform.tfstate", "lock-a"), ("b/terraform.tfstate", "lock-b")] {
        put_lockfile(&moto, "tfstate", &format!("{key}.tflock"), id, chrono::Duration::hours(5)).await;
    }
    let proxy = FaultProxy::start(moto.port);
    proxy.always("GetObject", Some("/a/terraform.tfstate.tflock"), Fault::NeverAnswer);
    let cfg = config(&[("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = pass(&proxy, &cfg).await;
    let bucket = &report.sources[0];
    assert!(bucket.scan_error.is_none(), "one object does not fail the bucket: {:?}", bucket.scan_error);
    assert_eq!(bucket.unreadable.len(), 1);
    assert_eq!(bucket.unreadable[0].lock_key.as_deref(), Some("a/terraform.tfstate.tflock"));
    let host = proxy.url.trim_start_matches("http://");
    let reason = &bucket.unreadable[0].reason;
    assert!(
        reason.starts_with(&format!(
            "GetObject on s3://tfstate/a/terraform.tfstate.tflock failed: no answer from {host}"
        )),
        "{reason}"
    );
    assert_eq!(bucket.locks.len(), 1);
    assert_eq!(bucket.locks[0].lock.id, "lock-b");
    assert_eq!(bucket.locks[0].action, ActionTaken::Deleted);
    let kept = s3.head_object().bucket("tfstate").key("a/terraform.tfstate.tflock").send().await;
    assert!(kept.is_ok(), "the unread lockfile is never touched");
}

#[test]
fn the_cli_ends_in_time_against_a_server_that_never_answers() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port);
    for op in ["Scan", "ListObjectsV2"] {
        proxy.always(op, None, Fault::NeverAnswer);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .args(["list", "--table", "locks", "--bucket", "tfstate"])
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("RUN_BUDGET", "4s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hang detector, not a performance bound: with RUN_BUDGET=4s every
    // call gives up after 2s; two minutes means the timeouts are not set.
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        assert!(waited < Duration::from_secs(120), "the CLI hangs on a server that never answers");
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a source that cannot be read is an error");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("table locks: SCAN FAILED") && stdout.contains("bucket tfstate: SCAN FAILED"), "{stdout}");
    assert!(stdout.to_lowercase().contains("timeout") || stdout.to_lowercase().contains("timed out"), "{stdout}");
}
