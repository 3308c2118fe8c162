//! `tf-lock-reaper doctor` against moto over loopback (DescribeTable,
//! DescribeTimeToLive, DescribeContinuousBackups, GetBucketVersioning,
//! GetBucketLifecycleConfiguration, GetBucketEncryption,
//! GetPublicAccessBlock, ListObjectsV2) and over backend-block fixtures;
//! and the reaper's own TTL precondition: the `ttl-disabled` alert pages
//! once over three runs and resolves once TTL is enabled.
//!
//! moto 5.2.5 answers GetBucketVersioning with the root element
//! `GetBucketVersioningResponse`, which the Rust SDK cannot decode; the
//! adapter reads `Status` from such an answer, so no call is mocked here.

use std::process::{Command, Output};
use std::sync::Arc;

use crate::common::*;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::Value;
use tf_lock_reaper::adapters::dynamodb_alert_state::DynamoAlertState;
use tf_lock_reaper::adapters::dynamodb_inspect::DynamoTableInspector;
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::alert::{AlertKind, AlertSettings, Event};
use tf_lock_reaper::domain::metrics::metric_sets;
use tf_lock_reaper::fakes::{MemoryLockfiles, RecordingNotifier};
use tf_lock_reaper::pipeline::notify::Dispatcher;
use tf_lock_reaper::pipeline::preconditions::TtlPrecondition;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::alert_state::AlertState;
use tf_lock_reaper::ports::notifier::Notifier;
use tf_lock_reaper::support::deadline::Deadline;

fn doctor(moto: &Moto, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .arg("doctor")
        .args(args)
        .envs(moto.env())
        .envs(env.iter().copied())
        .env_remove("LOCK_TABLES")
        .env_remove("LOCK_BUCKETS")
        .output()
        .expect("run doctor")
}

fn checks(out: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    doc["checks"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(checks: &'a [Value], subject: &str, check: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["subject"] == subject && c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check for {subject}: {checks:#?}"))
}

/// A lock table as it should be: TTL on ExpiresAt, PITR, deletion protection.
async fn healthy_table(moto: &Moto, name: &str) {
    let c = moto.dynamo().await;
    c.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("LockID").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .deletion_protection_enabled(true)
        .send()
        .await
        .unwrap();
    enable_ttl(&c, name).await;
    c.update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn enable_ttl(c: &aws_sdk_dynamodb::Client, name: &str) {
    c.update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name("ExpiresAt").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A state bucket as it should be: versioned, encrypted, not public, old versions expire.
async fn healthy_bucket(moto: &Moto, name: &str) {
    moto.create_bucket(name).await;
    let s3 = moto.s3().await;
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::AwsKms).build().unwrap(),
        )
        .build();
    s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
    block_public_access(&s3, name, true).await;
    let lifecycle = LifecycleRule::builder()
        .id("expire-old-state")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(90).build())
        .build()
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(lifecycle).build().unwrap())
        .send()
        .await
        .unwrap();
}

async fn block_public_access(s3: &aws_sdk_s3::Client, bucket: &str, policy: bool) {
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(policy)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_table_and_bucket_pass_every_check() {
    let moto = Moto::start();
    healthy_table(&moto, "locks").await;
    healthy_bucket(&moto, "tfstate").await;
    let out = doctor(&moto, &["--table", "locks", "--bucket", "tfstate", "--json"], &[("ACTION", "ttl")]);
    let all = checks(&out);
    let not_passed: Vec<&Value> = all.iter().filter(|c| c["status"] != "PASS").collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(all.len(), 7 + 5 + 1, "seven table checks, five bucket checks, the clock");
    let clock = all.iter().find(|c| c["check"] == "clock").expect("the clock is checked");
    assert!(clock["why"].as_str().unwrap().contains("AWS (within "), "{clock:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_is_found_with_its_fix_and_a_missing_table_stops_nothing() {
    let moto = Moto::start();
    let c = moto.dynamo().await;
    create_lock_table(&c, "no-ttl").await; // TTL, PITR and deletion protection all off
    create_table(&c, "not-locks", "id").await;
    moto.create_bucket("never-versioned").await;
    healthy_bucket(&moto, "suspended").await;
    let s3 = moto.s3().await;
    s3.put_bucket_versioning()
        .bucket("suspended")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build())
        .send()
        .await
        .unwrap();
    block_public_access(&s3, "suspended", false).await;

    let args = [
        "--table",
        "missing",
        "--table",
        "no-ttl",
        "--table",
        "not-locks",
        "--bucket",
        "never-versioned",
        "--bucket",
        "suspended",
        "--json",
    ];
    let out = doctor(&moto, &args, &[("ACTION", "ttl")]);
    assert_eq!(out.status.code(), Some(1), "something failed");
    let all = checks(&out);
    let missing = find(&all, "table missing", "exists");
    assert_eq!(missing["status"], "FAIL");
    assert!(missing["fix"].as_str().unwrap().contains("create-table"));
    let ttl = find(&all, "table no-ttl", "ttl");
    assert_eq!(ttl["status"], "FAIL", "ACTION=ttl with TTL disabled");
    assert!(ttl["fix"].as_str().unwrap().contains("update-time-to-live --table-name 'no-ttl'"), "{ttl}");
    assert_eq!(find(&all, "table no-ttl", "point-in-time recovery")["status"], "WARN");
    assert_eq!(find(&all, "table no-ttl", "deletion protection")["status"], "WARN");
    assert_eq!(find(&all, "table not-locks", "key schema")["status"], "FAIL");
    let never = find(&all, "bucket never-versioned", "versioning");
    assert_eq!(never["status"], "FAIL");
    assert!(never["why"].as_str().unwrap().starts_with("never enabled"));
    assert!(never["fix"].as_str().unwrap().contains("put-bucket-versioning --bucket 'never-versioned'"));
    assert_eq!(find(&all, "bucket never-versioned", "block public access")["status"], "FAIL");
    let suspended = find(&all, "bucket suspended", "versioning");
    assert!(suspended["why"].as_str().unwrap().starts_with("Suspended"), "{suspended}");
    let bpa = find(&all, "bucket suspended", "block public access");
    assert_eq!(bpa["status"], "FAIL");
    assert!(bpa["why"].as_str().unwrap().starts_with("BlockPublicPolicy off"), "{bpa}");

    // Without ACTION=ttl a disabled TTL is a warning; the text names every fix.
    let text = doctor(&moto, &["--table", "no-ttl"], &[]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "warnings only: {shown}");
    assert!(shown.contains("WARN  ttl") && shown.contains("fix:"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_blocks_in_a_repository_are_checked_with_file_and_line() {
    let moto = Moto::start();
    let repo = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let p = repo.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let block = |body: &str| format!("terraform {{\n  backend \"s3\" {{\n{body}\n  }}\n}}\n");
    write("none/main.tf", &block("    bucket = \"b\"\n    key = \"none.tfstate\""));
    write("table/main.tf", &block("    bucket = \"b\"\n    key = \"t.tfstate\"\n    dynamodb_table = \"locks\""));
    write("file/main.tf", &block("    bucket = \"b\"\n    key = \"f.tfstate\"\n    use_lockfile = true"));
    write(
        "both/main.tf",
        &block("    bucket = \"b\"\n    key = \"x.tfstate\"\n    use_lockfile = true\n    dynamodb_table = \"locks\""),
    );
    let ws =
        "    bucket = \"b\"\n    key = \"w.tfstate\"\n    use_lockfile = true\n    workspace_key_prefix = \"teams\"";
    write("ws/main.tf", &block(ws));
    write("partial/main.tf", &block("    key = \"p.tfstate\""));
    write("partial/prod.tfbackend", "bucket = \"prod-state\"\nuse_lockfile = true\n");
    write("broken/main.tf", "terraform {\n  backend \"s3\" {\n    bucket = \n");
    write("none/.terraform/modules/m/main.tf", &block("    bucket = \"ignored\"\n    key = \"k\""));

    let dir = repo.path().to_str().unwrap();
    let out = doctor(&moto, &["--config", dir, "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let all = checks(&out);
    let at = |name: &str| format!("{dir}/{name}/main.tf:2");
    assert_eq!(find(&all, &at("none"), "locking")["status"], "FAIL");
    assert_eq!(find(&all, &at("table"), "locking")["status"], "WARN");
    assert_eq!(find(&all, &at("file"), "locking")["status"], "PASS");
    assert_eq!(find(&all, &at("both"), "locking")["status"], "PASS");
    let ws = find(&all, &at("ws"), "lock location");
    assert!(ws["why"].as_str().unwrap().contains("teams/ws/w.tfstate"), "{ws}");
    let partial = find(&all, &format!("{} with prod.tfbackend", at("partial")), "lock location");
    assert!(partial["why"].as_str().unwrap().contains("s3://prod-state/p.tfstate.tflock"), "{partial}");
    let broken = find(&all, &format!("{dir}/broken/main.tf"), "parse");
    assert_eq!(broken["status"], "FAIL");
    assert!(broken["why"].as_str().unwrap().starts_with("does not parse as HCL"), "{broken}");
    assert!(all.iter().all(|c| !c["subject"].as_str().unwrap().contains(".terraform")), "downloaded modules skipped");

    let usage = doctor(&moto, &[], &[]);
    assert_eq!(usage.status.code(), Some(2), "nothing to check, and no lock table found: a usage error");
}

fn ttl_config() -> Config {
    let vars = vars(&[
        ("LOCK_TABLES", "locks"),
        ("ACTION", "ttl"),
        ("TTL_AFTER", "24h"),
        ("NOTIFY_STATE_TABLE", "alert-state"),
    ]);
    Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_disabled_pages_once_over_three_runs_and_resolves_once_enabled() {
    let moto = Moto::start();
    let c = moto.dynamo().await;
    create_lock_table(&c, "locks").await;
    create_state_table(&c, "alert-state").await;
    let channel = Arc::new(RecordingNotifier::default());
    let dispatcher = Arc::new(Dispatcher {
        notifiers: vec![Box::new(Arc::clone(&channel)) as Box<dyn Notifier>],
        state: Some(Box::new(DynamoAlertState::new(c.clone(), "alert-state".into())) as Box<dyn AlertState>),
        renotify_after: None,
        settings: AlertSettings::default(),
    });
    // One precondition per container, as the Lambda keeps it.
    let container = |inspector: DynamoTableInspector| {
        let precondition = Arc::new(TtlPrecondition::new(Arc::new(inspector), "ExpiresAt"));
        Reaper::new(ttl_config(), Arc::new(DynamoLockTables::new(c.clone())), Arc::new(MemoryLockfiles::default()))
            .with_dispatcher(Arc::clone(&dispatcher))
            .with_ttl_precondition(precondition)
    };
    let reaper = container(DynamoTableInspector::new(c.clone()));
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(reaper.run(Deadline::none()).await);
    }
    let sent = channel.sent();
    let ttl: Vec<_> = sent.iter().filter(|m| m.kind == AlertKind::TtlDisabled).collect();
    assert_eq!(ttl.len(), 1, "paged once over three runs: {sent:#?}");
    assert_eq!(ttl[0].event, Event::Trigger);
    assert!(ttl[0].body.contains("update-time-to-live --table-name 'locks'"), "{}", ttl[0].body);
    let metric = metric_sets(&reports[0])
        .into_iter()
        .flat_map(|s| s.values)
        .find(|(name, _, _)| *name == "TtlDisabled")
        .map(|(_, v, _)| v);
    assert_eq!(metric, Some(1.0));

    // Fixed; the next container (or the same one an hour later) sees it.
    enable_ttl(&c, "locks").await;
    let fixed = container(DynamoTableInspector::new(c.clone())).run(Deadline::none()).await;
    let resolves: Vec<_> =
        channel.sent().into_iter().filter(|m| m.kind == AlertKind::TtlDisabled && m.event == Event::Resolve).collect();
    assert_eq!(resolves.len(), 1, "resolved once");
    let metric = metric_sets(&fixed).into_iter().flat_map(|s| s.values).find(|(n, _, _)| *n == "TtlDisabled");
    assert_eq!(metric.map(|(_, v, _)| v), Some(0.0));
}
