//! The reaper pass against a real DynamoDB protocol server (`moto_server`
//! on loopback): scanning, every action, dry run, breaker, policy, table
//! failures and the scan/delete race.

use std::sync::Arc;
use std::time::Duration;

use crate::common::seams::before_write;
use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::alert::conditions::current_alerts;
use tf_lock_reaper::domain::alert::AlertSettings;
use tf_lock_reaper::domain::decision::Action;
use tf_lock_reaper::domain::decision::ActionTaken;
use tf_lock_reaper::domain::failure::ErrorKind;
use tf_lock_reaper::domain::report::RunReport;
use tf_lock_reaper::fakes::MemoryLockfiles;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::lock_tables::LockTables;
use tf_lock_reaper::support::deadline::Deadline;

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(&vars(pairs), EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).expect("valid config")
}

async fn run_with(store: Arc<dyn LockTables>, config: &Config) -> RunReport {
    Reaper::new(config.clone(), store, Arc::new(MemoryLockfiles::default())).run(Deadline::none()).await
}

/// One table with a stale lock, a fresh lock, their digests, an excluded
/// stale lock and a malformed item. Returns the stale lock's Info.
async fn seed_mixed(client: &aws_sdk_dynamodb::Client, table: &str) -> String {
    create_lock_table(client, table).await;
    let stale = put_lock(client, table, "tfstate/app/terraform.tfstate", "stale-1", hours(5)).await;
    put_digest(client, table, "tfstate/app/terraform.tfstate").await;
    put_lock(client, table, "tfstate/fresh/terraform.tfstate", "fresh-1", Duration::from_secs(60)).await;
    put_digest(client, table, "tfstate/fresh/terraform.tfstate").await;
    put_lock(client, table, "tfstate/pinned/terraform.tfstate", "pinned-1", hours(50)).await;
    put_item(client, table, &[("LockID", s("tfstate/broken/terraform.tfstate")), ("Info", s("{not json"))]).await;
    // A -md5 item without Digest, as Terragrunt's backend migrate writes.
    put_item(client, table, &[("LockID", s("tfstate/migrated/terraform.tfstate-md5"))]).await;
    stale
}

fn lock<'a>(report: &'a RunReport, table: &str, key: &str) -> &'a tf_lock_reaper::domain::report::LockReport {
    report
        .sources
        .iter()
        .find(|t| t.name == table)
        .and_then(|t| t.locks.iter().find(|l| l.lock.lock_key == key))
        .unwrap_or_else(|| panic!("{key} not in report"))
}

#[tokio::test]
async fn report_mode_writes_nothing_byte_for_byte() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    seed_mixed(&client, "locks").await;
    let before = snapshot(&client, "locks").await;
    let store: Arc<dyn LockTables> = Arc::new(DynamoLockTables::new(client.clone()));
    let report = run_with(store.clone(), &config(&[("LOCK_TABLES", "locks"), ("EXCLUDE", "tfstate/pinned/*")])).await;
    assert_eq!(snapshot(&client, "locks").await, before, "report mode must not change the table");
    let t = &report.sources[0];
    assert_eq!(t.counts.locks_held, 3);
    assert_eq!(t.counts.stale, 2);
    assert_eq!(t.counts.excluded, 1);
    assert_eq!(t.counts.unreadable, 1);
    assert_eq!(t.counts.digests, 3);
    assert!(report.ok);
    assert!(t.unreadable[0].reason.contains("not JSON"));
    assert_eq!(lock(&report, "locks", "tfstate/app/terraform.tfstate").action, ActionTaken::NoAction);
    assert_eq!(lock(&report, "locks", "tfstate/pinned/terraform.tfstate").action, ActionTaken::Excluded);
    assert_eq!(t.oldest_lock_age_seconds.map(|a| a / 3600), Some(50));
}

#[tokio::test]
async fn delete_removes_only_stale_due_non_excluded_locks() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    seed_mixed(&client, "locks").await;
    let before = snapshot(&client, "locks").await;
    let store: Arc<dyn LockTables> = Arc::new(DynamoLockTables::new(client.clone()));
    let cfg = config(&[
        ("LOCK_TABLES", "locks"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "4h"),
        ("EXCLUDE", "tfstate/pinned/*"),
    ]);
    let report = run_with(store.clone(), &cfg).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(lock(&report, "locks", "tfstate/app/terraform.tfstate").action, ActionTaken::Deleted);
    assert_eq!(report.sources[0].counts.deleted, 1);
    assert!(get_item(&client, "locks", "tfstate/app/terraform.tfstate").await.is_none());
    // Everything else is byte for byte as before: fresh lock, excluded lock, digests, malformed item.
    let after = snapshot(&client, "locks").await;
    let expected: Vec<String> = before.into_iter().filter(|row| !row.contains("stale-1")).collect();
    assert_eq!(after, expected);
}

#[tokio::test]
async fn delete_waits_for_delete_after_even_when_stale() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    let before = snapshot(&client, "locks").await;
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = run_with(Arc::new(DynamoLockTables::new(client.clone())), &cfg).await;
    let l = lock(&report, "locks", "tfstate/a/terraform.tfstate");
    assert!(l.verdict.stale && !l.verdict.delete_due);
    assert_eq!(l.action, ActionTaken::NoAction);
    assert_eq!(snapshot(&client, "locks").await, before);
}

#[tokio::test]
async fn ttl_backfills_created_plus_ttl_after_without_touching_info() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    let stale_info = seed_mixed(&client, "locks").await;
    // A stale lock that already has a TTL keeps it.
    let has_ttl = put_lock(&client, "locks", "tfstate/hasttl/terraform.tfstate", "ttl-1", hours(4)).await;
    client
        .update_item()
        .table_name("locks")
        .key("LockID", s("tfstate/hasttl/terraform.tfstate"))
        .update_expression("SET ExpiresAt = :e")
        .expression_attribute_values(":e", AttributeValue::N("123".into()))
        .send()
        .await
        .unwrap();
    let fresh_before = get_item(&client, "locks", "tfstate/fresh/terraform.tfstate").await;
    let cfg =
        config(&[("LOCK_TABLES", "locks"), ("ACTION", "ttl"), ("TTL_AFTER", "1d"), ("EXCLUDE", "tfstate/pinned/*")]);
    let report = run_with(Arc::new(DynamoLockTables::new(client.clone())), &cfg).await;
    assert!(report.ok);
    let app = lock(&report, "locks", "tfstate/app/terraform.tfstate");
    assert_eq!(app.action, ActionTaken::Ttl);
    let item = get_item(&client, "locks", "tfstate/app/terraform.tfstate").await.unwrap();
    let expected = app.lock.created.timestamp() + 86_400;
    assert_eq!(item.get("ExpiresAt"), Some(&AttributeValue::N(expected.to_string())));
    assert_eq!(item.get("Info"), Some(&s(&stale_info)), "Info is never rewritten");
    assert_eq!(item.len(), 3, "only ExpiresAt was added: {item:?}");
    let kept = get_item(&client, "locks", "tfstate/hasttl/terraform.tfstate").await.unwrap();
    assert_eq!(kept.get("ExpiresAt"), Some(&AttributeValue::N("123".into())));
    assert_eq!(kept.get("Info"), Some(&s(&has_ttl)));
    assert_eq!(
        get_item(&client, "locks", "tfstate/fresh/terraform.tfstate").await,
        fresh_before,
        "fresh locks get no TTL"
    );
    let pinned = get_item(&client, "locks", "tfstate/pinned/terraform.tfstate").await.unwrap();
    assert!(!pinned.contains_key("ExpiresAt"), "excluded locks get no TTL");
    assert_eq!(report.sources[0].counts.ttl_backfilled, 1);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_says_what_it_would_do() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    seed_mixed(&client, "locks").await;
    let before = snapshot(&client, "locks").await;
    let store: Arc<dyn LockTables> = Arc::new(DynamoLockTables::new(client.clone()));
    for (action, threshold) in [("delete", "DELETE_AFTER"), ("ttl", "TTL_AFTER")] {
        let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", action), (threshold, "4h"), ("DRY_RUN", "true")]);
        let report = run_with(store.clone(), &cfg).await;
        let app = lock(&report, "locks", "tfstate/app/terraform.tfstate");
        assert_eq!(app.action, ActionTaken::DryRun, "{action}");
        assert!(app.detail.as_deref().unwrap_or("").starts_with("would "), "{action}: {:?}", app.detail);
        assert_eq!(snapshot(&client, "locks").await, before, "{action} dry run wrote something");
    }
}

#[tokio::test]
async fn breaker_deletes_none_when_too_many_are_due() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "tbl-a").await;
    create_lock_table(&client, "tbl-b").await;
    // Three stale locks across two tables: the limit counts the whole run.
    put_lock(&client, "tbl-a", "tfstate/1/terraform.tfstate", "1", hours(10)).await;
    put_lock(&client, "tbl-a", "tfstate/2/terraform.tfstate", "2", hours(10)).await;
    put_lock(&client, "tbl-b", "tfstate/3/terraform.tfstate", "3", hours(10)).await;
    let (before_a, before_b) = (snapshot(&client, "tbl-a").await, snapshot(&client, "tbl-b").await);
    let store: Arc<dyn LockTables> = Arc::new(DynamoLockTables::new(client.clone()));
    let cfg = config(&[
        ("LOCK_TABLES", "tbl-a,tbl-b"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "3h"),
        ("MAX_DELETES_PER_RUN", "2"),
    ]);
    let report = run_with(store.clone(), &cfg).await;
    assert!(report.breaker_tripped);
    assert_eq!(report.planned_deletes, 3);
    assert!(report.sources.iter().flat_map(|t| &t.locks).all(|l| l.action == ActionTaken::Breaker));
    assert_eq!(snapshot(&client, "tbl-a").await, before_a);
    assert_eq!(snapshot(&client, "tbl-b").await, before_b);
    // At the limit, it deletes.
    let cfg = config(&[
        ("LOCK_TABLES", "tbl-a,tbl-b"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "3h"),
        ("MAX_DELETES_PER_RUN", "3"),
    ]);
    let report = run_with(store.clone(), &cfg).await;
    assert!(!report.breaker_tripped);
    assert_eq!(report.sources.iter().map(|t| t.counts.deleted).sum::<usize>(), 3);
}

#[tokio::test]
async fn overrides_and_exclusions_shape_deletion() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/prod/net/terraform.tfstate", "prod-young", hours(5)).await;
    put_lock(&client, "locks", "tfstate/prod/db/terraform.tfstate", "prod-old", hours(7)).await;
    put_lock(&client, "locks", "tfstate/sandbox/x/terraform.tfstate", "sandbox", Duration::from_secs(45 * 60)).await;
    put_lock(&client, "locks", "tfstate/keep/terraform.tfstate", "kept", hours(30)).await;
    let cfg = config(&[
        ("LOCK_TABLES", "locks"),
        ("STALE_AFTER", "2h"),
        ("STALE_AFTER_OVERRIDES", "tfstate/prod/*=6h,*/sandbox/*=30m"),
        ("EXCLUDE", "tfstate/keep/*"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "6h"),
    ]);
    let report = run_with(Arc::new(DynamoLockTables::new(client.clone())), &cfg).await;
    let young = lock(&report, "locks", "tfstate/prod/net/terraform.tfstate");
    assert!(!young.verdict.stale, "prod has a 6h window");
    assert_eq!(young.verdict.window_source, "tfstate/prod/*");
    let sandbox = lock(&report, "locks", "tfstate/sandbox/x/terraform.tfstate");
    assert!(sandbox.verdict.stale && !sandbox.verdict.delete_due, "stale at 30m, deletable only after DELETE_AFTER");
    assert_eq!(lock(&report, "locks", "tfstate/prod/db/terraform.tfstate").action, ActionTaken::Deleted);
    assert_eq!(lock(&report, "locks", "tfstate/keep/terraform.tfstate").action, ActionTaken::Excluded);
    assert!(get_item(&client, "locks", "tfstate/prod/net/terraform.tfstate").await.is_some());
    assert!(get_item(&client, "locks", "tfstate/sandbox/x/terraform.tfstate").await.is_some());
    assert!(get_item(&client, "locks", "tfstate/keep/terraform.tfstate").await.is_some());
    assert!(get_item(&client, "locks", "tfstate/prod/db/terraform.tfstate").await.is_none());
}

#[tokio::test]
async fn a_missing_table_between_two_good_ones_fails_the_run_but_not_the_others() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "first").await;
    create_lock_table(&client, "last").await;
    put_lock(&client, "first", "tfstate/a/terraform.tfstate", "a", hours(10)).await;
    put_lock(&client, "last", "tfstate/b/terraform.tfstate", "b", hours(10)).await;
    let cfg = config(&[("LOCK_TABLES", "first,missing,last"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = run_with(Arc::new(DynamoLockTables::new(client.clone())), &cfg).await;
    assert!(!report.ok);
    let names: Vec<&str> = report.sources.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["first", "missing", "last"]);
    let missing = &report.sources[1];
    let err = missing.scan_error.as_deref().unwrap_or_default();
    assert!(err.starts_with("Scan on table missing failed: table missing does not exist in region us-east-1"), "{err}");
    assert_eq!(report.sources[1].error_kind, Some(ErrorKind::NotFound));
    assert_eq!(report.sources[0].counts.deleted, 1);
    assert_eq!(report.sources[2].counts.deleted, 1);
}

#[tokio::test]
async fn pagination_over_more_than_one_megabyte_with_parallel_segments() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "big").await;
    // 1,500 digest items of ~1 KB each (> 1 MB, so Scan must page), then a few locks.
    let padding = "0".repeat(1000);
    let requests: Vec<WriteRequest> = (0..1500)
        .map(|i| {
            let put = PutRequest::builder()
                .item("LockID", s(&format!("tfstate/stack-{i:04}/terraform.tfstate-md5")))
                .item("Digest", s(&padding))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in requests.chunks(25) {
        client.batch_write_item().request_items("big", chunk.to_vec()).send().await.unwrap();
    }
    put_lock(&client, "big", "tfstate/stack-0001/terraform.tfstate", "old", hours(10)).await;
    put_lock(&client, "big", "tfstate/stack-0002/terraform.tfstate", "new", Duration::from_secs(10)).await;
    // Prove the server really pages this table.
    let first = client.scan().table_name("big").send().await.unwrap();
    assert!(first.last_evaluated_key.is_some(), "expected more than one page");
    let store: Arc<dyn LockTables> = Arc::new(DynamoLockTables::new(client.clone()));
    for segments in ["1", "4"] {
        let cfg = config(&[("LOCK_TABLES", "big"), ("SCAN_SEGMENTS", segments)]);
        let report = run_with(store.clone(), &cfg).await;
        let t = &report.sources[0];
        assert_eq!((t.counts.digests, t.counts.locks_held, t.counts.stale), (1500, 2, 1), "segments={segments}");
    }
    let cfg = config(&[("LOCK_TABLES", "big"), ("ACTION", "delete"), ("DELETE_AFTER", "3h"), ("SCAN_SEGMENTS", "3")]);
    let report = run_with(store.clone(), &cfg).await;
    assert_eq!(report.sources[0].counts.deleted, 1);
    assert!(get_item(&client, "big", "tfstate/stack-0001/terraform.tfstate").await.is_none());
    assert!(get_item(&client, "big", "tfstate/stack-0002/terraform.tfstate").await.is_some());
    assert!(get_item(&client, "big", "tfstate/stack-0001/terraform.tfstate-md5").await.is_some());
}

#[tokio::test]
async fn a_lock_replaced_between_scan_and_write_survives_and_counts_as_changed() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    let key = "tfstate/app/terraform.tfstate";
    let new_info = info_json("new-run", key, chrono::Utc::now());
    let (c, info) = (client.clone(), new_info.clone());
    let store = Arc::new(before_write(Arc::new(DynamoLockTables::new(client.clone())), move |table, key| {
        let (c, info) = (c.clone(), info.clone());
        // Another run takes the state again just before the write.
        async move { put_item(&c, &table, &[("LockID", s(&key)), ("Info", s(&info))]).await }
    }));
    for (action, threshold) in [("delete", "DELETE_AFTER"), ("ttl", "TTL_AFTER")] {
        put_lock(&client, "locks", key, "old-run", hours(10)).await;
        let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", action), (threshold, "3h")]);
        let report = run_with(store.clone(), &cfg).await;
        assert_eq!(lock(&report, "locks", key).action, ActionTaken::Changed, "{action}");
        assert_eq!(report.sources[0].counts.changed, 1);
        assert_eq!(report.sources[0].counts.errors, 0);
        assert!(report.ok, "a changed lock is not an error");
        let item = get_item(&client, "locks", key).await.expect("the new lock survives");
        assert_eq!(item.get("Info"), Some(&s(&new_info)), "{action}");
        assert!(!item.contains_key("ExpiresAt"), "{action}: nothing added to the new lock");
    }
    assert_eq!(Action::Delete.as_str(), "delete");
}

#[tokio::test]
async fn a_lock_released_between_scan_and_delete_is_gone_and_not_paged() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(10)).await;
    let c = client.clone();
    let store = Arc::new(before_write(Arc::new(DynamoLockTables::new(client.clone())), move |table, key| {
        let c = c.clone();
        // The holder releases the lock just before the reaper's delete.
        async move {
            c.delete_item().table_name(table).key("LockID", s(&key)).send().await.unwrap();
        }
    }));
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]);
    let report = run_with(store.clone(), &cfg).await;
    // The delete's condition fails; the re-read finds the item gone.
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Gone);
    assert_eq!(report.sources[0].counts.gone, 1);
    assert!(report.ok);
    let alerts = current_alerts(&report, &AlertSettings::default(), chrono::Utc::now());
    assert!(alerts.is_empty(), "no page for a lock that is gone: {alerts:?}");
}

#[tokio::test]
async fn an_info_without_a_lock_id_is_unreadable_and_never_deleted() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    let created = (chrono::Utc::now() - chrono::Duration::hours(30)).to_rfc3339();
    // Lock-shaped, stale for a day, but no ID: written by something other than Terraform.
    for (key, info) in [
        ("tfstate/no-id/terraform.tfstate", format!(r#"{{"Operation":"OperationTypeApply","Created":"{created}"}}"#)),
        ("tfstate/empty-id/terraform.tfstate", format!(r#"{{"ID":"","Created":"{created}"}}"#)),
        ("tfstate/number-id/terraform.tfstate", format!(r#"{{"ID":42,"Created":"{created}"}}"#)),
    ] {
        put_item(&client, "locks", &[("LockID", s(key)), ("Info", s(&info))]).await;
    }
    let before = snapshot(&client, "locks").await;
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = run_with(Arc::new(DynamoLockTables::new(client.clone())), &cfg).await;
    let t = &report.sources[0];
    assert_eq!(t.counts.locks_held, 0);
    assert_eq!(t.counts.unreadable, 3);
    assert!(t.unreadable.iter().all(|u| u.reason.contains("Info has no lock ID")), "{:?}", t.unreadable);
    assert_eq!(report.planned_deletes, 0);
    assert_eq!(snapshot(&client, "locks").await, before, "never written to");
}

#[tokio::test]
async fn a_dead_heartbeat_is_deleted_at_once_unless_a_heartbeat_lands_before_the_delete() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    let beat = |at: i64| aws_sdk_dynamodb::types::AttributeValue::N(at.to_string());
    let silent = chrono::Utc::now().timestamp() - 20 * 60;
    let seed = |key: &'static str| {
        let c = client.clone();
        async move {
            let info = put_lock(&c, "locks", key, key, Duration::from_secs(15 * 60)).await;
            put_item(&c, "locks", &[("LockID", s(key)), ("Info", s(&info)), ("Heartbeat", beat(silent))]).await;
        }
    };
    let (dead, resumed) = ("tfstate/dead/terraform.tfstate", "tfstate/resumed/terraform.tfstate");
    seed(dead).await;
    seed(resumed).await;
    // The resumed job's wrapper heartbeats just before the reaper's delete of its lock.
    let c = client.clone();
    let store = Arc::new(before_write(Arc::new(DynamoLockTables::new(client.clone())), move |table, key| {
        let c = c.clone();
        async move {
            if key.contains("resumed") {
                c.update_item()
                    .table_name(table)
                    .key("LockID", s(&key))
                    .update_expression("SET Heartbeat = :now")
                    .expression_attribute_values(":now", beat(chrono::Utc::now().timestamp()))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }));
    // A 2h window: age alone would keep both 15-minute-old locks.
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("STALE_AFTER", "2h"), ("DELETE_AFTER", "2h")]);
    let report = run_with(store, &cfg).await;
    assert_eq!(lock(&report, "locks", dead).action, ActionTaken::Deleted, "silence decides, not age");
    assert_eq!(
        lock(&report, "locks", resumed).action,
        ActionTaken::Changed,
        "the delete is conditioned on the heartbeat read"
    );
    assert!(get_item(&client, "locks", dead).await.is_none());
    assert!(get_item(&client, "locks", resumed).await.is_some(), "the resumed holder keeps its lock");
}
