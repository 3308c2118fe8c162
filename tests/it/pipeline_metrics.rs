//! The pipeline with in-memory fakes and a fixed clock (deadline
//! behaviour, error handling), and both metrics sinks: EMF lines and
//! `PutMetricData`. PutMetricData is tested with `aws-smithy-mocks` because
//! moto 5.2.5 does not speak CloudWatch's Smithy RPC v2 CBOR protocol.

use std::sync::Arc;

use crate::common::vars;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
use aws_smithy_mocks::{mock, mock_client};
use chrono::{DateTime, TimeZone, Utc};
use tf_lock_reaper::adapters::cloudwatch::ApiSink;
use tf_lock_reaper::adapters::emf::EmfSink;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::decision::ActionTaken;
use tf_lock_reaper::domain::metrics::metric_sets;
use tf_lock_reaper::fakes::{lock_item, FixedClock, MemoryLockTables, MemoryLockfiles};
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::metrics::{MetricsSink, NoMetrics};
use tf_lock_reaper::support::deadline::Deadline;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn delete_config() -> Config {
    Config::from_vars(
        &vars(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")]),
        EntrypointDefaults { metrics_sink: MetricsSinkKind::None },
    )
    .unwrap()
}

/// One stale lock in memory, `ACTION=delete`, a fixed clock.
struct Fixture {
    store: Arc<MemoryLockTables>,
    config: Config,
    clock: Arc<FixedClock>,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with_store(MemoryLockTables::default())
    }

    fn with_store(store: MemoryLockTables) -> Self {
        let key = "tfstate/a/terraform.tfstate";
        store.put("locks", lock_item(key, &format!(r#"{{"ID":"{key}-id","Created":"2026-11-26T00:00:00Z"}}"#)));
        Fixture { store: Arc::new(store), config: delete_config(), clock: Arc::new(FixedClock::at(now())) }
    }

    fn reaper(&self, metrics: Arc<dyn MetricsSink>) -> Reaper {
        Reaper::new(self.config.clone(), self.store.clone(), Arc::new(MemoryLockfiles::default()))
            .with_metrics(metrics)
            .with_clock(self.clock.clone())
    }
}

#[tokio::test]
async fn no_write_starts_when_the_deadline_is_near_and_the_run_is_partial() {
    let fx = Fixture::new();
    let reaper = fx.reaper(Arc::new(NoMetrics));
    let report = reaper.run(Deadline::at(now() + chrono::Duration::seconds(2))).await;
    assert!(report.partial);
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Deadline);
    assert!(fx.store.writes().is_empty(), "no write may start");
    // With time to spare the same pass deletes.
    let report = reaper.run(Deadline::at(now() + chrono::Duration::seconds(60))).await;
    assert!(!report.partial);
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Deleted);
    assert_eq!(fx.store.writes().len(), 1);
}

#[tokio::test]
async fn a_failed_write_is_an_error_in_the_report() {
    let fx = Fixture::with_store(MemoryLockTables::failing_writes());
    let report = fx.reaper(Arc::new(NoMetrics)).run(Deadline::none()).await;
    assert!(!report.ok);
    let lock = &report.sources[0].locks[0];
    assert_eq!(lock.action, ActionTaken::Error);
    assert!(lock.detail.as_deref().unwrap().contains("AccessDeniedException"));
    assert_eq!(report.sources[0].counts.errors, 1);
}

#[tokio::test]
async fn emf_lines_carry_every_metric_per_table() {
    let fx = Fixture::new();
    let sink = Arc::new(EmfSink::new(Vec::<u8>::new()));
    let report = fx.reaper(sink.clone()).run(Deadline::none()).await;
    assert!(report.ok);
    let sink = Arc::try_unwrap(sink).ok().expect("the reaper is gone");
    let out = String::from_utf8(sink.into_inner()).unwrap();
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 2, "one per table plus the run line: {out}");
    let table = &lines[0];
    let directive = &table["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "TerraformLocks");
    assert_eq!(directive["Dimensions"], serde_json::json!([["TableName"]]));
    assert_eq!(table["_aws"]["Timestamp"], now().timestamp_millis());
    assert_eq!(table["TableName"], "locks");
    let names: Vec<&str> =
        directive["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
    for name in [
        "LocksHeld",
        "StaleLocks",
        "OldestLockAgeSeconds",
        "UnreadableItems",
        "LocksDeleted",
        "LocksChanged",
        "TtlBackfilled",
        "ActionErrors",
        "BreakerTripped",
        "ScanErrors",
        "HeartbeatLocks",
        "DeadHeartbeats",
    ] {
        assert!(names.contains(&name), "{name} missing");
        assert!(table[name].is_number(), "{name} has no value");
    }
    assert_eq!(table["LocksHeld"], 1.0);
    assert_eq!(table["StaleLocks"], 1.0);
    assert_eq!(table["LocksDeleted"], 1.0);
    assert_eq!(table["OldestLockAgeSeconds"], 12.0 * 3600.0);
    assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
    for name in ["RunDurationMs", "AlertsSent", "AlertErrors"] {
        assert!(lines[1][name].is_number(), "{name} missing from the run line");
    }
    // Totals with no dimension, which the module's alarms watch (discovered sources included).
    let run_metrics: Vec<&str> = lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    for (name, total) in [("StaleLocks", 1.0), ("BreakerTripped", 0.0), ("ScanErrors", 0.0), ("UnreadableItems", 0.0)] {
        assert!(run_metrics.contains(&name), "{name} has no run-wide metric: {run_metrics:?}");
        assert_eq!(lines[1][name], total, "run-wide {name}");
    }
}

#[tokio::test]
async fn put_metric_data_sends_the_same_metrics() {
    let fx = Fixture::new();
    let report = fx.reaper(Arc::new(NoMetrics)).run(Deadline::none()).await;

    let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
        .match_requests(|req| {
            let data = req.metric_data();
            let stale = data.iter().find(|d| d.metric_name() == Some("StaleLocks"));
            req.namespace() == Some("TerraformLocks")
                && data.len() == 19
                && data.iter().any(|d| {
                    d.metric_name() == Some("StaleLocks") && d.dimensions().is_empty() && d.value() == Some(1.0)
                })
                && stale.is_some_and(|d| {
                    d.value() == Some(1.0)
                        && d.dimensions()
                            .iter()
                            .any(|dim| dim.name() == Some("TableName") && dim.value() == Some("locks"))
                })
                && data.iter().any(|d| d.metric_name() == Some("RunDurationMs") && d.dimensions().is_empty())
        })
        .then_output(|| PutMetricDataOutput::builder().build());
    let client = mock_client!(aws_sdk_cloudwatch, [&rule]);
    let sink = ApiSink::new(client);
    sink.publish("TerraformLocks", now(), &metric_sets(&report)).await.expect("PutMetricData accepted");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn put_metric_data_failure_is_reported_not_fatal() {
    let fx = Fixture::new();
    let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from("bad"),
        )
    });
    let client = mock_client!(aws_sdk_cloudwatch, [&rule]);
    let sink = Arc::new(ApiSink::new(client));
    let err = sink.publish("TerraformLocks", now(), &[]).await;
    assert!(err.is_ok(), "nothing to send, no call");
    let report = fx.reaper(sink.clone()).run(Deadline::none()).await;
    assert!(report.ok, "metrics failures never fail the run itself");
    assert_eq!(report.sources[0].counts.deleted, 1);
    assert_eq!(rule.num_calls(), 1);
}
