//! S3 native lockfiles (`<key>.tflock`) against `moto_server`: the server
//! enforces `If-Match` on DeleteObject, replaced lockfiles survive, paging
//! through thousands of objects, `ttl` mode, prefixes, double locks (paired,
//! cleared both or neither, paged once) and the CLI.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::pagerduty::Receiver;
use crate::common::seams::before_write;
use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::adapters::pagerduty::{PagerDutyNotifier, RetryPolicy};
use tf_lock_reaper::adapters::s3_lockfiles::S3LockfileBuckets;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::alert::AlertSettings;
use tf_lock_reaper::domain::decision::ActionTaken;
use tf_lock_reaper::domain::failure::ErrorKind;
use tf_lock_reaper::domain::lock::SourceKind;
use tf_lock_reaper::domain::report::{LockReport, RunReport};
use tf_lock_reaper::domain::source::SourceAddress;
use tf_lock_reaper::fakes::{Call, Hooked, Point};
use tf_lock_reaper::pipeline::act::TTL_NOT_FOR_LOCKFILES;
use tf_lock_reaper::pipeline::notify::Dispatcher;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::clock::SystemClock;
use tf_lock_reaper::ports::lockfiles::LockfileBuckets;
use tf_lock_reaper::ports::notifier::Notifier;
use tf_lock_reaper::ports::WriteOutcome;
use tf_lock_reaper::support::deadline::Deadline;
use tf_lock_reaper::support::secret::Secret;

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(&vars(pairs), EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).expect("valid config")
}

async fn put_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) -> String {
    let out =
        s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body.as_bytes().to_vec())).send().await.unwrap();
    out.e_tag.unwrap()
}

/// A lockfile as Terraform writes it, created (and stored, on the
/// server's clock) `age` ago; returns its body.
async fn lockfile_aged(moto: &Moto, bucket: &str, state_key: &str, id: &str, age: Duration) -> String {
    let age = chrono::Duration::from_std(age).unwrap();
    put_lockfile(moto, bucket, &format!("{state_key}.tflock"), id, age).await
}

async fn exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object().bucket(bucket).key(key).send().await.is_ok()
}

async fn body(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let out = s3.get_object().bucket(bucket).key(key).send().await.unwrap();
    String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap()
}

async fn pass<L: LockfileBuckets + 'static>(moto: &Moto, lockfiles: L, cfg: &Config, alerts: Dispatcher) -> RunReport {
    let tables = Arc::new(DynamoLockTables::new(moto.dynamo().await));
    Reaper::new(cfg.clone(), tables, Arc::new(lockfiles)).with_dispatcher(Arc::new(alerts)).run(Deadline::none()).await
}

fn find<'a>(report: &'a RunReport, kind: SourceKind, key: &str) -> &'a LockReport {
    report
        .sources
        .iter()
        .filter(|s| s.kind == kind)
        .flat_map(|s| &s.locks)
        .find(|l| l.lock.lock_key == key)
        .unwrap_or_else(|| panic!("{key} not in report"))
}

#[tokio::test]
async fn the_server_enforces_if_match_on_delete() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    let etag = put_object(&s3, "tfstate", "a.tflock", "one").await;
    let store = S3LockfileBuckets::new(s3.clone());
    let tfstate = SourceAddress::own(SourceKind::Bucket, "tfstate");
    assert_eq!(store.delete_lockfile(&tfstate, "a.tflock", "\"0000\"").await, Ok(WriteOutcome::Changed));
    assert!(exists(&s3, "tfstate", "a.tflock").await, "a wrong ETag deletes nothing");
    assert_eq!(store.current_etag(&tfstate, "a.tflock").await, Ok(Some(etag.clone())));
    assert_eq!(store.delete_lockfile(&tfstate, "a.tflock", &etag).await, Ok(WriteOutcome::Done));
    assert!(!exists(&s3, "tfstate", "a.tflock").await);
    assert_eq!(store.current_etag(&tfstate, "a.tflock").await, Ok(None));
}

/// The real store; another run releases the lockfile and takes it again
/// (same key, new body, new ETag) just before each delete, and with
/// `before_check` also before the ETag check that precedes it.
fn replace_before_delete(s3: &aws_sdk_s3::Client, before_check: bool) -> Hooked<S3LockfileBuckets> {
    let s3 = s3.clone();
    Hooked::new(Arc::new(S3LockfileBuckets::new(s3.clone())), move |call: Call| {
        let replace = matches!(call.point, Point::BeforeWrite) || (before_check && call.point == Point::BeforeCheck);
        let s3 = s3.clone();
        async move {
            if let (true, Some(key)) = (replace, call.key) {
                put_object(&s3, &call.source, &key, &info_json("new-run", &key, chrono::Utc::now())).await;
            }
        }
    })
}

#[tokio::test]
async fn a_lockfile_replaced_between_list_and_delete_survives() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    lockfile_aged(&moto, "tfstate", "app/terraform.tfstate", "old-run", hours(10)).await;
    let store = replace_before_delete(&s3, false);
    let cfg = config(&[("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = pass(&moto, store, &cfg, Dispatcher::disabled()).await;
    let l = find(&report, SourceKind::Bucket, "app/terraform.tfstate.tflock");
    assert_eq!(l.action, ActionTaken::Changed);
    assert!(report.ok, "changed is not an error");
    assert!(
        body(&s3, "tfstate", "app/terraform.tfstate.tflock").await.contains("new-run"),
        "the new lockfile survives"
    );
}

#[tokio::test]
async fn thousands_of_objects_across_pages_only_stale_lockfiles_go() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    // 2,500 state files (3 pages of ListObjectsV2) around a few lockfiles.
    futures::stream::iter(0..2500)
        .map(|i| {
            let s3 = s3.clone();
            let key = format!("stacks/s{i:04}/terraform.tfstate");
            async move { put_object(&s3, "tfstate", &key, "{\"version\":4}").await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    lockfile_aged(&moto, "tfstate", "stacks/s0007/terraform.tfstate", "stale-a", hours(10)).await;
    lockfile_aged(&moto, "tfstate", "stacks/s1999/terraform.tfstate", "stale-b", hours(11)).await;
    lockfile_aged(&moto, "tfstate", "stacks/s2400/terraform.tfstate", "fresh", Duration::from_secs(30)).await;
    put_object(&s3, "tfstate", "stacks/s0500/terraform.tfstate.tflock", "not a lock").await;
    let first = s3.list_objects_v2().bucket("tfstate").send().await.unwrap();
    assert_eq!(first.is_truncated, Some(true), "the listing must page");

    let cfg = config(&[("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = pass(&moto, S3LockfileBuckets::new(s3.clone()), &cfg, Dispatcher::disabled()).await;
    let src = &report.sources[0];
    assert_eq!((src.counts.locks_held, src.counts.stale, src.counts.deleted, src.counts.unreadable), (3, 2, 2, 1));
    assert!(!exists(&s3, "tfstate", "stacks/s0007/terraform.tfstate.tflock").await);
    assert!(!exists(&s3, "tfstate", "stacks/s1999/terraform.tfstate.tflock").await);
    assert!(exists(&s3, "tfstate", "stacks/s2400/terraform.tfstate.tflock").await, "fresh lockfile stays");
    assert!(
        exists(&s3, "tfstate", "stacks/s0500/terraform.tfstate.tflock").await,
        "unreadable lockfile is never deleted"
    );
    let listed = s3.list_objects_v2().bucket("tfstate").prefix("stacks/s0007/").send().await.unwrap();
    assert_eq!(listed.key_count, Some(1), "the state file itself is untouched");
}

#[tokio::test]
async fn ttl_mode_reports_lockfiles_and_prefixes_limit_the_scan() {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    let s3 = moto.s3().await;
    lockfile_aged(&moto, "tfstate", "team-a/terraform.tfstate", "a", hours(10)).await;
    lockfile_aged(&moto, "tfstate", "team-b/terraform.tfstate", "b", hours(10)).await;
    let cfg = config(&[("LOCK_BUCKETS", "tfstate/team-a/"), ("ACTION", "ttl"), ("TTL_AFTER", "3h")]);
    let report = pass(&moto, S3LockfileBuckets::new(s3.clone()), &cfg, Dispatcher::disabled()).await;
    assert!(report.ok);
    assert_eq!(report.sources[0].name, "tfstate/team-a/");
    assert_eq!(report.sources[0].locks.len(), 1, "only under the prefix");
    let l = &report.sources[0].locks[0];
    assert_eq!((l.action, l.detail.as_deref()), (ActionTaken::NoAction, Some(TTL_NOT_FOR_LOCKFILES)));
    assert!(exists(&s3, "tfstate", "team-a/terraform.tfstate.tflock").await);
}

#[tokio::test]
async fn a_missing_bucket_fails_the_run_but_not_the_table() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(10)).await;
    let cfg = config(&[
        ("LOCK_TABLES", "locks"),
        ("LOCK_BUCKETS", "no-such-bucket"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "3h"),
    ]);
    let report = pass(&moto, S3LockfileBuckets::new(moto.s3().await), &cfg, Dispatcher::disabled()).await;
    assert!(!report.ok);
    let err = report.sources[1].scan_error.as_deref().unwrap();
    assert!(
        err.starts_with("ListObjectsV2 on bucket no-such-bucket failed: bucket no-such-bucket does not exist"),
        "{err}"
    );
    assert_eq!(report.sources[1].error_kind, Some(ErrorKind::NotFound));
    assert_eq!(report.sources[0].counts.deleted, 1);
}

/// A double lock: the same ID in the table and in the bucket.
async fn seed_double_lock(moto: &Moto, id: &str, age: Duration) -> (String, String) {
    let client = moto.dynamo().await;
    let table_info = put_lock(&client, "locks", "tfstate/prod/terraform.tfstate", id, age).await;
    let file_body = lockfile_aged(moto, "tfstate", "prod/terraform.tfstate", id, age + Duration::from_millis(50)).await;
    (table_info, file_body)
}

async fn double_lock_setup() -> Moto {
    let moto = Moto::start();
    moto.create_bucket("tfstate").await;
    create_lock_table(&moto.dynamo().await, "locks").await;
    moto
}

fn both() -> Config {
    config(&[("LOCK_TABLES", "locks"), ("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")])
}

#[tokio::test]
async fn a_double_lock_is_paired_and_both_halves_are_cleared() {
    let moto = double_lock_setup().await;
    seed_double_lock(&moto, "dbl-1", hours(10)).await;
    let s3 = moto.s3().await;
    let report = pass(&moto, S3LockfileBuckets::new(s3.clone()), &both(), Dispatcher::disabled()).await;
    let table = find(&report, SourceKind::Table, "tfstate/prod/terraform.tfstate");
    let file = find(&report, SourceKind::Bucket, "prod/terraform.tfstate.tflock");
    assert_eq!(table.paired_with.as_ref().map(|h| h.lock_key.as_str()), Some("prod/terraform.tfstate.tflock"));
    assert_eq!(file.paired_with.as_ref().map(|h| h.source.to_string()).as_deref(), Some("locks"));
    assert_eq!((table.action, file.action), (ActionTaken::Deleted, ActionTaken::Deleted));
    assert_eq!(report.planned_deletes, 1, "one lock with two halves");
    assert!(get_item(&moto.dynamo().await, "locks", "tfstate/prod/terraform.tfstate").await.is_none());
    assert!(!exists(&s3, "tfstate", "prod/terraform.tfstate.tflock").await);
}

#[tokio::test]
async fn ttl_mode_backfills_a_double_locks_table_half_and_notes_the_lockfile() {
    let moto = double_lock_setup().await;
    seed_double_lock(&moto, "dbl-1", hours(10)).await;
    let s3 = moto.s3().await;
    let cfg = config(&[("LOCK_TABLES", "locks"), ("LOCK_BUCKETS", "tfstate"), ("ACTION", "ttl"), ("TTL_AFTER", "3h")]);
    let report = pass(&moto, S3LockfileBuckets::new(s3.clone()), &cfg, Dispatcher::disabled()).await;
    assert!(report.ok);
    assert_eq!(find(&report, SourceKind::Table, "tfstate/prod/terraform.tfstate").action, ActionTaken::Ttl);
    let file = find(&report, SourceKind::Bucket, "prod/terraform.tfstate.tflock");
    assert_eq!((file.action, file.detail.as_deref()), (ActionTaken::NoAction, Some(TTL_NOT_FOR_LOCKFILES)));
    let item = get_item(&moto.dynamo().await, "locks", "tfstate/prod/terraform.tfstate").await.unwrap();
    assert!(item.contains_key("ExpiresAt"));
    assert!(exists(&s3, "tfstate", "prod/terraform.tfstate.tflock").await);
}

#[tokio::test]
async fn if_one_half_changed_neither_is_deleted() {
    // The lockfile half changes before its check.
    let moto = double_lock_setup().await;
    let (table_info, _) = seed_double_lock(&moto, "dbl-1", hours(10)).await;
    let s3 = moto.s3().await;
    let store = replace_before_delete(&s3, true);
    let report = pass(&moto, store, &both(), Dispatcher::disabled()).await;
    let table = find(&report, SourceKind::Table, "tfstate/prod/terraform.tfstate");
    assert_eq!(table.action, ActionTaken::Changed);
    assert!(table.detail.as_deref().unwrap().contains("neither half deleted"), "{:?}", table.detail);
    let item =
        get_item(&moto.dynamo().await, "locks", "tfstate/prod/terraform.tfstate").await.expect("table half kept");
    assert_eq!(item.get("Info"), Some(&s(&table_info)));
    assert!(exists(&s3, "tfstate", "prod/terraform.tfstate.tflock").await);

    // The table half changes before its delete.
    let moto = double_lock_setup().await;
    seed_double_lock(&moto, "dbl-2", hours(10)).await;
    let s3 = moto.s3().await;
    let client = moto.dynamo().await;
    let c = client.clone();
    let store = before_write(Arc::new(DynamoLockTables::new(client.clone())), move |table, key| {
        let c = c.clone();
        let info = info_json("other", &key, chrono::Utc::now());
        async move { put_item(&c, &table, &[("LockID", s(&key)), ("Info", s(&info))]).await }
    });
    let lockfiles = S3LockfileBuckets::new(s3.clone());
    let report = Reaper::new(both(), Arc::new(store), Arc::new(lockfiles)).run(Deadline::none()).await;
    let file = find(&report, SourceKind::Bucket, "prod/terraform.tfstate.tflock");
    assert_eq!(file.action, ActionTaken::Changed);
    assert!(exists(&s3, "tfstate", "prod/terraform.tfstate.tflock").await, "lockfile half kept");
}

#[tokio::test]
async fn a_double_lock_pages_once_with_both_halves_in_the_page() {
    let moto = double_lock_setup().await;
    seed_double_lock(&moto, "dbl-1", hours(3)).await;
    let pd = Receiver::start();
    let notifier: Box<dyn Notifier> = Box::new(
        PagerDutyNotifier::new(&pd.url, Secret::new("k"), RetryPolicy::default(), Box::new(SystemClock)).unwrap(),
    );
    let alerts =
        Dispatcher { notifiers: vec![notifier], state: None, renotify_after: None, settings: AlertSettings::default() };
    let cfg = config(&[("LOCK_TABLES", "locks"), ("LOCK_BUCKETS", "tfstate")]);
    pass(&moto, S3LockfileBuckets::new(moto.s3().await), &cfg, alerts).await;
    let triggers = pd.actions("trigger");
    assert_eq!(triggers.len(), 1, "one page for the pair");
    let d = &triggers[0]["payload"]["custom_details"];
    assert_eq!(d["table"], "locks");
    assert_eq!(d["lockfile"], "s3://tfstate/prod/terraform.tfstate.tflock");
    assert_eq!(
        d["commands"]["tf_lock_reaper_unlock"],
        "tf-lock-reaper unlock 'dbl-1' --table 'locks' --bucket 'tfstate'"
    );
}

#[tokio::test]
async fn cli_lists_buckets_and_unlock_clears_both_halves() {
    let moto = double_lock_setup().await;
    seed_double_lock(&moto, "dbl-1", hours(3)).await;
    let s3 = moto.s3().await;
    lockfile_aged(&moto, "tfstate", "solo/terraform.tfstate", "solo-1", hours(3)).await;
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper")).envs(moto.env()).args(args).output().unwrap()
    };

    let out = cli(&["list", "--bucket", "tfstate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("bucket tfstate: 2 lock(s)") && stdout.contains("solo-1") && stdout.contains("dbl-1"),
        "{stdout}"
    );

    let out = cli(&["unlock", "solo-1", "--bucket", "tfstate", "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!exists(&s3, "tfstate", "solo/terraform.tfstate.tflock").await);

    let out = cli(&["unlock", "dbl-1", "--table", "locks", "--bucket", "tfstate", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("deleted lock dbl-1 from table locks")
            && stdout.contains("deleted lock dbl-1 from bucket tfstate"),
        "{stdout}"
    );
    assert!(get_item(&moto.dynamo().await, "locks", "tfstate/prod/terraform.tfstate").await.is_none());
    assert!(!exists(&s3, "tfstate", "prod/terraform.tfstate.tflock").await);
}
