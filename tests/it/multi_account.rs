//! One reaper for many accounts and regions, against one moto server over
//! loopback: moto takes the region from the request signature, and
//! requests signed with credentials from `sts:AssumeRole` into
//! `arn:aws:iam::111111111111:role/…` act in account 111111111111.

use std::process::{Command, Output};
use std::time::Duration;

use crate::common::pagerduty::Receiver;
use crate::common::terraform::{wait_until, Locking, Stack};
use crate::common::*;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::111111111111:role/tf-lock-reaper-access";
const WEST: &str = "arn:aws:dynamodb:us-west-2:123456789012:table/locks";
const MEMBER: &str = "arn:aws:dynamodb:us-east-1:111111111111:table/locks";
const KEY: &str = "tfstate/app/terraform.tfstate";

/// The moto SDK config in another region and/or as the member account's role.
async fn sdk_as(moto: &Moto, region: &str, role: Option<&str>) -> SdkConfig {
    let base = moto.sdk().await;
    let mut conf = base.to_builder();
    conf.set_region(Some(Region::new(region.to_string())));
    if let Some(role) = role {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role).session_name("test-setup").configure(&base);
        conf.set_credentials_provider(Some(SharedCredentialsProvider::new(provider.build().await)));
    }
    conf.build()
}

/// The same table name in two regions of the default account and in the
/// member account, each with an orphan; a lockfile orphan in a us-west-2 bucket.
async fn estate(moto: &Moto) -> [aws_sdk_dynamodb::Client; 3] {
    let clients = [
        moto.dynamo().await,
        aws_sdk_dynamodb::Client::new(&sdk_as(moto, "us-west-2", None).await),
        aws_sdk_dynamodb::Client::new(&sdk_as(moto, "us-east-1", Some(ROLE)).await),
    ];
    for (i, c) in clients.iter().enumerate() {
        create_lock_table(c, "locks").await;
        put_lock(c, "locks", KEY, &format!("orphan-{i}"), hours(10)).await;
    }
    let west = sdk_as(moto, "us-west-2", None).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&west).force_path_style(true).build());
    s3.create_bucket()
        .bucket("west-state")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Stored 10 hours ago on the server's clock, as Terraform would have.
    let body =
        info_json("orphan-file", "west-state/app/terraform.tfstate", chrono::Utc::now() - chrono::Duration::hours(10));
    put_object_stored(moto, &s3, "west-state", "app/terraform.tfstate.tflock", &body, chrono::Duration::hours(10))
        .await;
    clients
}

fn reaper(moto: &Moto, args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .args(args)
        .envs(moto.env())
        .env("LOCK_TABLES", format!("locks,{WEST},{MEMBER}"))
        .env("LOCK_BUCKETS", "west-state@us-west-2")
        .env("ASSUME_ROLES", ROLE)
        .env("STALE_AFTER", "1h")
        .env("DELETE_AFTER", "2h")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the reaper")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_pass_reaps_the_same_table_in_two_regions_and_another_account_with_distinct_identities() {
    let moto = Moto::start();
    let clients = estate(&moto).await;
    let pd = Receiver::start();
    let paging = [("PAGERDUTY_ROUTING_KEY", "key-1".to_string()), ("PAGERDUTY_EVENTS_URL", pd.url.clone())];

    // A report pass: four distinct pages, metrics with distinct dimensions.
    let mut env = paging.to_vec();
    env.push(("METRICS_SINK", "emf".to_string()));
    let out = reaper(&moto, &["run"], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    // The report, for people reading the test's output (`--nocapture`).
    println!("{}", text.lines().filter(|l| !l.starts_with('{')).collect::<Vec<_>>().join("\n"));
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let triggers = pd.actions("trigger");
    let sources: std::collections::BTreeSet<&str> =
        triggers.iter().map(|t| t["payload"]["source"].as_str().unwrap()).collect();
    assert_eq!(triggers.len(), 4, "{triggers:#?}");
    assert_eq!(sources.len(), 4, "four identities: {sources:?}");
    let dedup: std::collections::BTreeSet<&str> = triggers.iter().map(|t| t["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(dedup.len(), 4, "same-named tables never share an alert");
    let member = triggers.iter().find(|t| t["payload"]["source"] == MEMBER).expect("the member account's page");
    assert_eq!(member["payload"]["custom_details"]["account"], "111111111111");
    let cli = member["payload"]["custom_details"]["commands"]["aws_cli"].as_str().unwrap();
    assert!(cli.starts_with("aws --region 'us-east-1' dynamodb delete-item --table-name 'locks'"), "{cli}");
    let emf: Vec<Value> =
        text.lines().filter(|l| l.starts_with("{\"_aws\"")).map(|l| serde_json::from_str(l).unwrap()).collect();
    let dims: std::collections::BTreeSet<String> = emf
        .iter()
        .filter(|m| m.get("TableName").is_some())
        .map(|m| {
            format!(
                "{}|{}|{}",
                m["TableName"],
                m.get("Account").unwrap_or(&Value::Null),
                m.get("Region").unwrap_or(&Value::Null)
            )
        })
        .collect();
    assert_eq!(dims.len(), 3, "three table metric sets: {dims:?}");
    assert!(
        emf.iter().any(|m| m["TableName"] == "locks" && m.get("Account").is_none()),
        "own table keeps one dimension"
    );

    // A delete pass clears all four, each with its own client.
    let out = reaper(&moto, &["run", "--action", "delete", "--no-notify", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    let names: Vec<&str> = report["sources"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["locks", WEST, MEMBER, "west-state@us-west-2"]);
    for s in report["sources"].as_array().unwrap() {
        assert_eq!(s["counts"]["deleted"], 1, "{s:#}");
    }
    for c in &clients {
        assert!(get_item(c, "locks", KEY).await.is_none());
    }
    let west = sdk_as(&moto, "us-west-2", None).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&west).force_path_style(true).build());
    assert!(s3.head_object().bucket("west-state").key("app/terraform.tfstate.tflock").send().await.is_err());

    // doctor reaches the same sources through the same routes.
    let out = reaper(
        &moto,
        &["doctor", "--table", WEST, "--table", MEMBER, "--bucket", "west-state@us-west-2", "--json"],
        &[],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    for subject in [format!("table {WEST}"), format!("table {MEMBER}")] {
        let exists =
            doc["checks"].as_array().unwrap().iter().find(|c| c["subject"] == subject && c["check"] == "exists");
        assert_eq!(exists.map(|c| c["status"].clone()), Some(Value::from("PASS")), "{subject}: {doc:#}");
    }
    let lockfiles = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "bucket west-state@us-west-2" && c["check"] == "lockfiles");
    assert_eq!(lockfiles.map(|c| c["status"].clone()), Some(Value::from("PASS")), "{doc:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_whose_role_cannot_be_assumed_fails_alone() {
    let moto = Moto::start();
    let clients = estate(&moto).await;
    // STS answers nothing here: every AssumeRole fails; the reaper's own credentials need none.
    let dead_sts = format!("http://127.0.0.1:{}", closed_port());
    let env = [("AWS_ENDPOINT_URL_STS", dead_sts), ("RUN_BUDGET", "20s".to_string())];
    let started = std::time::Instant::now();
    let out = reaper(&moto, &["run", "--action", "delete", "--no-notify", "--json"], &env);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| report["sources"].as_array().unwrap().iter().find(|s| s["name"] == n).cloned().unwrap();
    let member = by_name(MEMBER);
    let error = member["scan_error"].as_str().expect("the member account's source failed");
    assert!(error.contains(ROLE), "the error names the role: {error}");
    assert_eq!(by_name("locks")["counts"]["deleted"], 1);
    assert_eq!(by_name(WEST)["counts"]["deleted"], 1);
    assert!(get_item(&clients[2], "locks", KEY).await.is_some(), "untouched in the unreachable account");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_terraform_lock_in_a_second_region_is_orphaned_and_reaped() {
    let moto = Moto::start();
    let west = sdk_as(&moto, "us-west-2", None).await;
    let client = aws_sdk_dynamodb::Client::new(&west);
    create_lock_table(&client, "locks").await;
    moto.create_bucket("tfstate").await;
    let stack = Stack::new_in(&moto, "us-west-2", "tfstate", "locks", "west/terraform.tfstate", Locking::DynamoDb);
    stack.init_and_apply();
    let key = "tfstate/west/terraform.tfstate";
    let apply = stack.start_hanging_apply(300);
    wait_until("the us-west-2 lock", Duration::from_secs(60), || async {
        get_item(&client, "locks", key).await.is_some()
    })
    .await;
    apply.kill();
    let (blocked, _) = stack.plan();
    assert!(!blocked, "plan is blocked by the orphan");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .args(["run", "--action", "delete", "--no-notify"])
        .envs(moto.env())
        .env("LOCK_TABLES", WEST)
        .env("STALE_AFTER", "2s")
        .env("DELETE_AFTER", "2s")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(WEST) && text.contains("deleted 1"), "{text}");
    assert!(get_item(&client, "locks", key).await.is_none());
    let (ok, plan) = stack.plan();
    assert!(ok, "{plan}");
}
