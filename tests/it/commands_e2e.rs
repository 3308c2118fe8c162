//! The commands we print for a person to paste (`domain::commands`), run
//! for real with the AWS CLI (PyPI `awscli`, v1) through `sh -c` against
//! moto, on locks a killed Terraform apply left behind:
//!
//! - once the lock has been taken again (another ID in the item, a replaced
//!   lockfile), each conditional command is refused and the lock stays;
//! - each one deletes the lock it names, and then `terraform plan` works.

use std::process::Command;
use std::time::Duration;

use tf_lock_reaper::domain::commands::{release_commands, FileHalf, ReleaseTarget, TableHalf};
use tf_lock_reaper::domain::source::SourceAddress;

use crate::common::terraform::{wait_until, Locking, Release, Stack};
use crate::common::*;

const TABLE: &str = "locks";
const KEY: &str = "prod/terraform.tfstate";

fn aws_cli() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-awscli/bin")
}

/// Run one printed command as a person would paste it.
fn paste(moto: &Moto, command: &str) -> (bool, String) {
    let path = format!("{}:{}", aws_cli().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .args(["-c", command])
        .envs(moto.env())
        .env("PATH", path)
        // AWS CLI v1 reads the region from AWS_DEFAULT_REGION.
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run sh");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A lock a killed apply left on `KEY`, and a plan that it blocks.
async fn orphan(moto: &Moto, locking: Locking) -> Stack {
    orphan_of(moto, Stack::new(moto, "tfstate", TABLE, KEY, locking), locking).await.0
}

/// The same with any stack; also the blocked plan's output.
async fn orphan_of(moto: &Moto, stack: Stack, locking: Locking) -> (Stack, String) {
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, TABLE).await;
    stack.init_and_apply();
    let apply = stack.start_hanging_apply(300);
    let (dynamo, s3) = (moto.dynamo().await, moto.s3().await);
    wait_until("the orphan's lock", Duration::from_secs(60), || async {
        match locking {
            Locking::Lockfile => s3.head_object().bucket("tfstate").key(format!("{KEY}.tflock")).send().await.is_ok(),
            _ => get_item(&dynamo, TABLE, &format!("tfstate/{KEY}")).await.is_some(),
        }
    })
    .await;
    apply.kill();
    let (ok, text) = stack.plan();
    assert!(!ok && text.contains("Error acquiring the state lock"), "{text}");
    (stack, text)
}

async fn item_info(moto: &Moto) -> Option<String> {
    let item = get_item(&moto.dynamo().await, TABLE, &format!("tfstate/{KEY}")).await?;
    item.get("Info").and_then(|v| v.as_s().ok()).cloned()
}

/// The lockfile's body and ETag, if it is there.
async fn lockfile(moto: &Moto) -> Option<(String, String)> {
    let out = moto.s3().await.get_object().bucket("tfstate").key(format!("{KEY}.tflock")).send().await.ok()?;
    let etag = out.e_tag().unwrap_or_default().to_string();
    let body = out.body.collect().await.ok()?.into_bytes();
    Some((String::from_utf8_lossy(&body).into_owned(), etag))
}

fn id_of(info: &str) -> String {
    serde_json::from_str::<serde_json::Value>(info).unwrap()["ID"].as_str().unwrap().to_string()
}

fn command(target: &ReleaseTarget<'_>, name: &str) -> String {
    let commands = release_commands(target);
    commands.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {commands:?}")).command.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_commands_delete_only_the_lock_they_name_and_then_plan_works() {
    let moto = Moto::start();
    let stack = orphan(&moto, Locking::DynamoDb).await;
    let table = SourceAddress::table(TABLE).unwrap();
    let lock_key = format!("tfstate/{KEY}");
    let first = item_info(&moto).await.expect("the orphan's item");
    let first_id = id_of(&first);
    let exact = ReleaseTarget {
        id: &first_id,
        table: Some(TableHalf { at: &table, lock_key: &lock_key, info: Some(&first) }),
        lockfile: None,
        dynamodb_endpoint: None,
        s3_endpoint: None,
    };
    let by_id =
        ReleaseTarget { table: Some(TableHalf { info: None, ..exact.table.clone().unwrap() }), ..exact.clone() };
    let (exact_cmd, by_id_cmd) = (command(&exact, "aws_cli"), command(&by_id, "aws_cli"));

    // Released and taken again by another run before the paste: both refused, the new lock stays.
    let dynamo = moto.dynamo().await;
    let retaken = put_lock(&dynamo, TABLE, &lock_key, "0f0e0d0c-1111-2222-3333-444455556666", Duration::ZERO).await;
    for cmd in [&exact_cmd, &by_id_cmd] {
        let (ok, text) = paste(&moto, cmd);
        assert!(!ok && text.contains("ConditionalCheckFailed"), "{cmd}\n{text}");
        assert_eq!(item_info(&moto).await.as_deref(), Some(retaken.as_str()), "the new lock stays: {cmd}");
    }

    // Each deletes the lock it names: the exact-Info form, then (on a fresh lock) the ID form.
    let retaken_id = id_of(&retaken);
    let now = ReleaseTarget {
        id: &retaken_id,
        table: Some(TableHalf { at: &table, lock_key: &lock_key, info: Some(&retaken) }),
        ..exact.clone()
    };
    let (ok, text) = paste(&moto, &command(&now, "aws_cli"));
    assert!(ok, "{text}");
    assert_eq!(item_info(&moto).await, None);
    let third = put_lock(&dynamo, TABLE, &lock_key, "aaaabbbb-cccc-dddd-eeee-ffff00001111", Duration::ZERO).await;
    let third_id = id_of(&third);
    let from_error_alone = ReleaseTarget {
        id: &third_id,
        table: Some(TableHalf { info: None, ..now.table.clone().unwrap() }),
        ..now.clone()
    };
    let (ok, text) = paste(&moto, &command(&from_error_alone, "aws_cli"));
    assert!(ok, "{text}");
    assert_eq!(item_info(&moto).await, None);
    assert!(get_item(&dynamo, TABLE, &format!("{lock_key}-md5")).await.is_some(), "the digest is untouched");
    let (ok, text) = stack.plan();
    assert!(ok, "plan works once the lock is gone:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lockfile_command_deletes_only_the_file_it_names_and_then_plan_works() {
    let moto = Moto::start();
    let stack = orphan(&moto, Locking::Lockfile).await;
    let bucket = SourceAddress::own(tf_lock_reaper::domain::lock::SourceKind::Bucket, "tfstate");
    let key = format!("{KEY}.tflock");
    let (body, etag) = lockfile(&moto).await.expect("the orphan's lockfile");
    let id = id_of(&body);
    let command_for = |id: &str, etag: &str| {
        let file = FileHalf { at: &bucket, key: &key, etag: Some(etag) };
        let target =
            ReleaseTarget { id, table: None, lockfile: Some(file), dynamodb_endpoint: None, s3_endpoint: None };
        command(&target, "aws_cli_lockfile")
    };
    let stale_cmd = command_for(&id, &etag);

    // Replaced by another run's lockfile before the paste: refused (412), the new file stays.
    put_lockfile(&moto, "tfstate", &key, "0f0e0d0c-1111-2222-3333-444455556666", chrono::Duration::zero()).await;
    let (replaced, new_etag) = lockfile(&moto).await.unwrap();
    let (ok, text) = paste(&moto, &stale_cmd);
    assert!(!ok && text.contains("PreconditionFailed"), "{stale_cmd}\n{text}");
    assert_eq!(lockfile(&moto).await.map(|(b, _)| b), Some(replaced.clone()), "the new lockfile stays");

    // Its own command deletes it; then plan works.
    let now = command_for(&id_of(&replaced), &new_etag);
    let (ok, text) = paste(&moto, &now);
    assert!(ok, "{now}\n{text}");
    assert!(lockfile(&moto).await.is_none());
    let (ok, text) = stack.plan();
    assert!(ok, "plan works once the lockfile is gone:\n{text}");
}

/// `explain --json` over `input`, judged three hours from now.
fn explain(input: &str) -> serde_json::Value {
    let now = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    explain_json(input, &["--stale-after", "1h", "--now", &now])
}

fn explained(answer: &serde_json::Value, name: &str) -> String {
    let commands = answer["commands"].as_array().unwrap();
    let c = commands.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name}: {answer:#}"));
    c["command"].as_str().unwrap().to_string()
}

/// What `explain` makes of Terraform's real error (and the stack's backend
/// block): the lock as the table or lockfile holds it, stale, commands
/// ranked with force-unlock last; and its conditional command, pasted,
/// releases the lock so that plan works.
async fn explain_then_release(release: Release, locking: Locking) {
    let moto = Moto::start();
    let stack = Stack::with_release(&moto, TABLE, KEY, locking, release);
    let (stack, error) = orphan_of(&moto, stack, locking).await;
    let backend = std::fs::read_to_string(stack.path().join("main.tf")).unwrap();
    let held = match locking {
        Locking::Lockfile => lockfile(&moto).await.map(|(body, _)| body),
        _ => item_info(&moto).await,
    };
    let id = id_of(&held.expect("the orphan"));
    let answer = explain(&format!("{error}\n{backend}"));
    let what = format!("Terraform {release:?} {locking:?}:\n{error}\n{answer:#}");
    assert_eq!(answer["locks"][0]["id"], id.as_str(), "{what}");
    assert_eq!(answer["locks"][0]["path"], format!("tfstate/{KEY}").as_str(), "{what}");
    let kind = if locking == Locking::Lockfile { "lockfile" } else { "table" };
    assert_eq!(answer["locks"][0]["kind"], kind, "{what}");
    let scenarios: Vec<&str> =
        answer["findings"].as_array().unwrap().iter().filter_map(|f| f["scenario"].as_str()).collect();
    assert!(scenarios.contains(&"stale"), "{what}");
    let names: Vec<&str> = answer["commands"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        (names.first(), names.last()),
        (Some(&"tf_lock_reaper_unlock"), Some(&"terraform_force_unlock")),
        "{what}"
    );
    let command = match locking {
        Locking::Lockfile => {
            // No ETag in the error: the head-object it prints, pasted back, gives the delete.
            let (ok, head) = paste(&moto, &explained(&answer, "aws_cli_lockfile_etag"));
            assert!(ok, "{head}");
            explained(&explain(&format!("{error}\n{backend}\n{head}")), "aws_cli_lockfile")
        }
        _ => explained(&answer, "aws_cli"),
    };
    assert!(command.contains("--condition-expression") || command.contains("--if-match"), "{command}");
    let (ok, text) = paste(&moto, &command);
    assert!(ok, "{command}\n{text}");
    let (ok, text) = stack.plan();
    assert!(ok, "plan works once the lock is gone:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_terraform_1_15s_table_lock_error_and_its_command_releases_the_lock() {
    explain_then_release(Release::V1_15_5, Locking::DynamoDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_terraform_1_15s_lockfile_error_and_its_command_releases_the_lock() {
    explain_then_release(Release::V1_15_5, Locking::Lockfile).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_reads_terraform_1_6s_error_and_its_command_releases_the_lock() {
    explain_then_release(Release::V1_6_6, Locking::DynamoDb).await;
}
