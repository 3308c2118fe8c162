//! The `tf-lock-reaper` binary end to end against `moto_server`: output,
//! exit codes, configuration errors and the safe unlock.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

use crate::common::*;

/// Run the CLI with only the given environment (plus PATH), feeding `stdin`.
fn cli(moto: Option<&Moto>, extra_env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some(m) = moto {
        cmd.envs(m.env());
    }
    cmd.envs(extra_env.iter().copied()).args(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tf-lock-reaper");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn configuration_errors_exit_2_and_list_every_bad_variable() {
    let out = cli(
        None,
        &[("STALE_AFTER", "soon"), ("ACTION", "nuke"), ("SCAN_SEGMENTS", "many"), ("MAX_DELETES_PER_RUN", "x")],
        &["run", "--table", "locks"],
        "",
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        "STALE_AFTER=\"soon\": expected a duration such as 90m, 2h or 1d",
        "ACTION=\"nuke\": expected one of report, ttl, delete",
        "SCAN_SEGMENTS=\"many\"",
        "MAX_DELETES_PER_RUN=\"x\"",
        "4 problem(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // --action delete without DELETE_AFTER.
    let out = cli(None, &[], &["run", "--table", "locks", "--action", "delete"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("DELETE_AFTER"));
    // Usage errors are exit 2 too.
    assert_eq!(cli(None, &[], &["run", "--action", "explode"], "").status.code(), Some(2));
    assert_eq!(cli(None, &[], &["unlock"], "").status.code(), Some(2));
    // release --job needs the job's index, as an absolute path.
    let out = cli(None, &[], &["release", "--job"], "");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("release --job: TF_LOCK_REAPER_JOB_RECORDS is not set"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let out = cli(None, &[("TF_LOCK_REAPER_JOB_RECORDS", "records")], &["release", "--job"], "");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TF_LOCK_REAPER_JOB_RECORDS=\"records\": expected an absolute directory path"), "{err}");
}

#[tokio::test]
async fn list_and_run_print_tables_and_json() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/old/terraform.tfstate", "old-id", hours(5)).await;
    put_lock(&client, "locks", "tfstate/new/terraform.tfstate", "new-id", Duration::from_secs(30)).await;
    put_digest(&client, "locks", "tfstate/old/terraform.tfstate").await;

    let out = cli(Some(&moto), &[], &["list", "--table", "locks"], "");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("table locks: 2 lock(s), 0 unreadable, 1 digest(s)"), "{stdout}");
    assert!(stdout.contains("old-id") && stdout.contains("new-id") && stdout.contains("ci@runner"), "{stdout}");

    let out = cli(Some(&moto), &[], &["list", "--table", "locks", "--stale-only", "--json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    let locks = json[0]["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["id"], "old-id");

    // Flags override the environment: ACTION=delete in env, --action report on the command line.
    let out = cli(
        Some(&moto),
        &[("ACTION", "delete"), ("DELETE_AFTER", "3h")],
        &["run", "--table", "locks", "--action", "report", "--json"],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["action"], "report");
    assert_eq!(report["sources"][0]["counts"]["stale"], 1);
    assert_eq!(report["sources"][0]["counts"]["deleted"], 0);

    let out = cli(
        Some(&moto),
        &[("DELETE_AFTER", "3h")],
        &["run", "--table", "locks", "--action", "delete", "--dry-run"],
        "",
    );
    let (stdout, _) = text(&out);
    assert!(stdout.contains("action=delete (dry run)") && stdout.contains("dry-run (would delete)"), "{stdout}");
    assert!(get_item(&client, "locks", "tfstate/old/terraform.tfstate").await.is_some());

    let out = cli(Some(&moto), &[("DELETE_AFTER", "3h")], &["run", "--table", "locks", "--action", "delete"], "");
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("deleted 1"), "{stdout}");
    assert!(get_item(&client, "locks", "tfstate/old/terraform.tfstate").await.is_none());
    assert!(get_item(&client, "locks", "tfstate/new/terraform.tfstate").await.is_some());
}

#[tokio::test]
async fn run_exits_1_when_a_table_cannot_be_read() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    let out = cli(Some(&moto), &[], &["run", "--table", "locks", "--table", "missing-table"], "");
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("table missing-table: SCAN FAILED") && stdout.contains("status=FAILED"), "{stdout}");
    let out = cli(Some(&moto), &[], &["list", "--table", "missing-table"], "");
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn unlock_finds_the_lock_by_id_anywhere_in_the_table() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    // The backend key has since moved: only the lock ID from the error message is known.
    put_lock(&client, "locks", "tfstate/old-key/terraform.tfstate", "db4f693e-8b1b-8e4c-d741-a4c77006cd79", hours(3))
        .await;
    put_digest(&client, "locks", "tfstate/old-key/terraform.tfstate").await;
    put_lock(&client, "locks", "tfstate/other/terraform.tfstate", "other-id", hours(3)).await;
    let before = snapshot(&client, "locks").await;
    let id = "db4f693e-8b1b-8e4c-d741-a4c77006cd79";

    // Not found: exit 1, clear message, nothing touched.
    let out = cli(Some(&moto), &[], &["unlock", "no-such-id", "--table", "locks", "--yes"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("no lock with ID \"no-such-id\" in table locks"), "{}", text(&out).1);

    // Dry run and a "no" answer delete nothing.
    let out = cli(Some(&moto), &[], &["unlock", id, "--table", "locks", "--dry-run"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("tfstate/old-key/terraform.tfstate"));
    let out = cli(Some(&moto), &[], &["unlock", id, "--table", "locks"], "n\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("[y/N]"));
    assert_eq!(snapshot(&client, "locks").await, before);

    // "y" deletes exactly that lock; its digest and the other lock stay.
    let out = cli(Some(&moto), &[], &["unlock", id, "--table", "locks"], "y\n");
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(get_item(&client, "locks", "tfstate/old-key/terraform.tfstate").await.is_none());
    assert!(get_item(&client, "locks", "tfstate/old-key/terraform.tfstate-md5").await.is_some());
    assert!(get_item(&client, "locks", "tfstate/other/terraform.tfstate").await.is_some());

    // A second unlock of the same ID: not found.
    assert_eq!(cli(Some(&moto), &[], &["unlock", id, "--table", "locks", "--yes"], "").status.code(), Some(1));
}

#[tokio::test]
async fn unlock_warns_about_a_lock_inside_its_window() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/live/terraform.tfstate", "live-id", Duration::from_secs(60)).await;
    let out = cli(Some(&moto), &[], &["unlock", "live-id", "--table", "locks", "--dry-run"], "");
    assert!(text(&out).0.contains("WARNING"), "{:?}", text(&out));
}

/// A table keyed `LockID` (N), or `LockID` with a range key: not Terraform's.
async fn create_keyed(client: &aws_sdk_dynamodb::Client, name: &str, ty: ScalarAttributeType, range: bool) {
    let mut attributes =
        vec![AttributeDefinition::builder().attribute_name("LockID").attribute_type(ty).build().unwrap()];
    let mut keys = vec![KeySchemaElement::builder().attribute_name("LockID").key_type(KeyType::Hash).build().unwrap()];
    if range {
        attributes.push(
            AttributeDefinition::builder().attribute_name("At").attribute_type(ScalarAttributeType::N).build().unwrap(),
        );
        keys.push(KeySchemaElement::builder().attribute_name("At").key_type(KeyType::Range).build().unwrap());
    }
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(keys))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

/// Given no source at all, `list`, `run` and `doctor` look for lock tables
/// in their own account and region by key schema, whatever the names, and
/// say which they found; nothing else is read or written.
#[tokio::test]
async fn with_no_source_the_cli_finds_the_lock_tables_by_their_keys() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "terraform-state-locks").await;
    create_lock_table(&client, "a-name-nobody-would-guess").await;
    create_state_table(&client, "alert-state").await;
    create_table(&client, "orders", "OrderId").await;
    create_keyed(&client, "numbered", ScalarAttributeType::N, false).await;
    create_keyed(&client, "ranged", ScalarAttributeType::S, true).await;
    put_lock(&client, "terraform-state-locks", "tfstate/a/terraform.tfstate", "lock-a", hours(3)).await;
    put_lock(&client, "a-name-nobody-would-guess", "tfstate/b/terraform.tfstate", "lock-b", hours(3)).await;
    put_item(&client, "orders", &[("OrderId", s("tfstate/c/terraform.tfstate")), ("Info", s("{}"))]).await;
    let before = snapshot(&client, "orders").await;

    let out = cli(Some(&moto), &[], &["list"], "");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "no source given: found 2 lock table(s) among 6 table(s): a-name-nobody-would-guess, \
             terraform-state-locks in us-east-1 (tables whose only key is LockID (S))"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("lock-a") && stdout.contains("lock-b"), "{stdout}");
    assert!(!stdout.contains("orders") && !stdout.contains("alert-state"), "{stdout}");

    // Globs narrow the search; `run` in report mode writes nothing anywhere.
    let out = cli(Some(&moto), &[("DISCOVER_TABLES", "terraform-*")], &["run", "--no-notify", "--json"], "");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("found 1 lock table(s) among 6 table(s): terraform-state-locks named terraform-*"),
        "{stderr}"
    );
    assert!(stdout.contains("lock-a") && !stdout.contains("lock-b"), "{stdout}");
    assert_eq!(snapshot(&client, "orders").await, before, "a table that is not a lock table is never touched");

    // Nothing that looks like a lock table: a usage error that says what to do.
    let out = cli(Some(&moto), &[("DISCOVER_TABLES", "nothing-*")], &["doctor"], "");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no source given, and no Terraform lock table named nothing-* (a table whose only key is LockID (S)) \
             among the 6 table(s) in us-east-1: give --table or --bucket, or set LOCK_TABLES / LOCK_BUCKETS"
        ),
        "{stderr}"
    );
    // An explicit source is used as it is: no search.
    let out = cli(Some(&moto), &[], &["list", "--table", "terraform-state-locks"], "");
    assert!(!text(&out).1.contains("no source given"), "{}", text(&out).1);
}
