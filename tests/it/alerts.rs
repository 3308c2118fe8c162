//! Alerts end to end: SNS through `moto_server` (read back from a subscribed
//! SQS queue), PagerDuty Events v2 against a real HTTP receiver on
//! 127.0.0.1, the notify-once state table and Secrets Manager in moto.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::pagerduty::Receiver;
use crate::common::*;
use tf_lock_reaper::adapters::dynamodb_alert_state::DynamoAlertState;
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::adapters::pagerduty::{PagerDutyNotifier, RetryPolicy};
use tf_lock_reaper::adapters::slack::SlackNotifier;
use tf_lock_reaper::adapters::sns::SnsNotifier;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::alert::AlertSettings;
use tf_lock_reaper::domain::metrics::metric_sets;
use tf_lock_reaper::domain::report::Delivery;
use tf_lock_reaper::domain::report::RunReport;
use tf_lock_reaper::fakes::MemoryLockfiles;
use tf_lock_reaper::pipeline::notify::Dispatcher;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::alert_state::AlertState;
use tf_lock_reaper::ports::clock::SystemClock;
use tf_lock_reaper::ports::notifier::Notifier;
use tf_lock_reaper::support::deadline::Deadline;
use tf_lock_reaper::support::secret::Secret;
use tf_lock_reaper::wiring::routing_key_from_secret;

const KEY: &str = "R0UTING-KEY-9f8e7d6c5b4a";

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(&vars(pairs), EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).expect("valid config")
}

fn pagerduty(url: &str) -> Box<dyn Notifier> {
    let fast = RetryPolicy { max_attempts: 4, first_delay: Duration::from_millis(20), budget: Duration::from_secs(5) };
    Box::new(PagerDutyNotifier::new(url, Secret::new(KEY), fast, Box::new(SystemClock)).unwrap())
}

/// moto with the lock table `locks` and the state table `alert-state`, and
/// a PagerDuty receiver. `moto` must stay bound: dropping it stops the server.
struct World {
    moto: Moto,
    pd: Receiver,
    client: aws_sdk_dynamodb::Client,
}

async fn world() -> World {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    create_state_table(&client, "alert-state").await;
    World { moto, pd: Receiver::start(), client }
}

fn dispatcher(notifiers: Vec<Box<dyn Notifier>>, state: Option<(&aws_sdk_dynamodb::Client, &str)>) -> Dispatcher {
    Dispatcher {
        notifiers,
        state: state.map(|(c, t)| Box::new(DynamoAlertState::new(c.clone(), t.to_string())) as Box<dyn AlertState>),
        renotify_after: None,
        settings: AlertSettings::default(),
    }
}

async fn pass(client: &aws_sdk_dynamodb::Client, config: &Config, alerts: &Arc<Dispatcher>) -> RunReport {
    let tables = Arc::new(DynamoLockTables::new(client.clone()));
    Reaper::new(config.clone(), tables, Arc::new(MemoryLockfiles::default()))
        .with_dispatcher(Arc::clone(alerts))
        .run(Deadline::none())
        .await
}

/// An SNS topic `tf-locks` delivering to the SQS queue `alerts`, to read what was published.
async fn topic_to_queue(sdk: &aws_config::SdkConfig) -> (aws_sdk_sns::Client, String, aws_sdk_sqs::Client, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns.create_topic().name("tf-locks").send().await.unwrap().topic_arn.unwrap();
    let queue_url = sqs.create_queue().queue_name("alerts").send().await.unwrap().queue_url.unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:alerts")
        .send()
        .await
        .unwrap();
    (sns, topic, sqs, queue_url)
}

/// Drop fields that move with the clock, so the rest can be compared exactly.
fn without_clock_fields(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(p) = v.get_mut("payload").and_then(|p| p.as_object_mut()) {
        p.remove("timestamp");
        if let Some(d) = p.get_mut("custom_details").and_then(|d| d.as_object_mut()) {
            d.remove("age_seconds");
            d.remove("created");
        }
    }
    v
}

#[tokio::test]
async fn sns_messages_reach_a_subscribed_queue_with_subject_body_and_attributes() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "stale-1", hours(5)).await;

    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns.create_topic().name("tf-locks").send().await.unwrap().topic_arn.unwrap();
    let queue_url = sqs.create_queue().queue_name("alerts").send().await.unwrap().queue_url.unwrap();
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:alerts";
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap();

    let alerts = Arc::new(dispatcher(vec![Box::new(SnsNotifier::new(sns.clone(), topic.clone()))], None));
    let report = pass(&client, &config(&[("LOCK_TABLES", "locks")]), &alerts).await;
    assert_eq!(report.alerts_sent, 1, "{:?}", report.notifications);

    let received = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).send().await.unwrap();
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(envelope["Subject"], "Stale Terraform lock: tfstate/app/terraform.tfstate (5h00m)");
    let body = envelope["Message"].as_str().unwrap();
    for needle in [
        "longer than its apply window of 2h00m (STALE_AFTER)",
        "Table:       locks",
        "State path:  tfstate/app/terraform.tfstate",
        "Lock ID:     stale-1",
        "Who:         ci@runner",
        "Operation:   OperationTypeApply",
        "Version:     1.15.5",
        "terraform force-unlock -force 'stale-1'",
        "tf-lock-reaper unlock 'stale-1' --table 'locks'",
        "--condition-expression 'Info = :info'",
        r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/app/terraform.tfstate"}}'"#,
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    let attr = |name: &str| envelope["MessageAttributes"][name]["Value"].as_str().map(str::to_string);
    assert_eq!(attr("event").as_deref(), Some("trigger"));
    assert_eq!(attr("severity").as_deref(), Some("warning"));
    assert_eq!(attr("table").as_deref(), Some("locks"));
    assert_eq!(attr("lock_id").as_deref(), Some("stale-1"));
    assert_eq!(attr("kind").as_deref(), Some("lock-stale"));
}

#[tokio::test]
async fn pagerduty_pages_once_per_lock_and_resolves_after_unlock() {
    let World { moto, pd, client } = world().await;
    let info = put_lock(&client, "locks", "tfstate/env:/staging/app/terraform.tfstate", "stale-1", hours(3)).await;
    put_lock(&client, "locks", "tfstate/fresh/terraform.tfstate", "fresh-1", Duration::from_secs(60)).await;
    let alerts = Arc::new(dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state"))));
    let cfg = config(&[("LOCK_TABLES", "locks")]);

    for _ in 0..3 {
        let report = pass(&client, &cfg, &alerts).await;
        assert_eq!(report.alert_errors, 0, "{:?}", report.notifications);
    }
    let triggers = pd.actions("trigger");
    assert_eq!(triggers.len(), 1, "three runs, one page: {:#?}", pd.requests());
    let dedup = triggers[0]["dedup_key"].as_str().unwrap().to_string();
    let key = "tfstate/env:/staging/app/terraform.tfstate";
    let expected = serde_json::json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": dedup,
        "client": "tf-lock-reaper",
        "payload": {
            "summary": format!("Stale Terraform lock on {key} held 3h00m (window 2h00m (STALE_AFTER)) by ci@runner \
                (OperationTypeApply, lock ID stale-1) in locks"),
            "source": "locks",
            "severity": "warning",
            "component": key,
            "group": "staging",
            "class": "terraform-state-lock",
            "custom_details": {
                "table": "locks",
                "state_path": key,
                "workspace": "staging",
                "lock_id": "stale-1",
                "who": "ci@runner",
                "operation": "OperationTypeApply",
                "terraform_version": "1.15.5",
                "info": "",
                "liveness": "no heartbeat",
                "age": "3h00m",
                "stale_window": "2h00m (STALE_AFTER)",
                "commands": {
                    "terraform_force_unlock": "terraform force-unlock -force 'stale-1'",
                    "tf_lock_reaper_unlock": "tf-lock-reaper unlock 'stale-1' --table 'locks'",
                    // Conditional on the exact Info: a lock taken again is refused, never deleted.
                    "aws_cli": format!(
                        r#"aws dynamodb delete-item --table-name 'locks' --key '{{"LockID":{{"S":"{key}"}}}}' --condition-expression 'Info = :info' --expression-attribute-values '{}'"#,
                        serde_json::json!({":info": {"S": info}})
                    ),
                },
                "runbook": "https://tf-lock-reaper.github.io/tf-lock-reaper/runbook.html#lock-stale",
            },
        },
        // The alert kind's runbook section, linked on the incident.
        "links": [{
            "href": "https://tf-lock-reaper.github.io/tf-lock-reaper/runbook.html#lock-stale",
            "text": "Runbook: lock-stale",
        }],
    });
    assert_eq!(without_clock_fields(triggers[0].clone()), expected);
    assert!(dedup.starts_with("tflr-") && dedup.len() <= 255);
    let ts = triggers[0]["payload"]["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");

    // On-call releases it with the CLI; the next run resolves the incident once.
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .args(["unlock", "stale-1", "--table", "locks", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    pass(&client, &cfg, &alerts).await;
    pass(&client, &cfg, &alerts).await;
    let resolves = pd.actions("resolve");
    assert_eq!(resolves, vec![serde_json::json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": dedup})]);
    assert_eq!(pd.actions("trigger").len(), 1);
}

#[tokio::test]
async fn pagerduty_429_and_503_are_retried_and_sent_once() {
    let World { moto: _moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    pd.respond_with(&[429, 503]);
    let report =
        pass(&client, &config(&[("LOCK_TABLES", "locks")]), &Arc::new(dispatcher(vec![pagerduty(&pd.url)], None)))
            .await;
    assert_eq!(pd.actions("trigger").len(), 3, "two refusals, then accepted");
    assert_eq!((report.alerts_sent, report.alert_errors), (1, 0));
    assert_eq!(report.notifications[0].outcome, Delivery::Sent);
}

#[tokio::test]
async fn pagerduty_400_is_not_retried_is_counted_and_retried_next_run() {
    let World { moto: _moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    let alerts = Arc::new(dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state"))));
    let cfg = config(&[("LOCK_TABLES", "locks")]);
    pd.respond_with(&[400]);
    let report = pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.requests().len(), 1, "400 is never retried");
    assert_eq!((report.alerts_sent, report.alert_errors), (0, 1));
    assert!(!report.ok);
    let failed = &report.notifications[0];
    assert_eq!(failed.outcome, Delivery::Failed);
    let detail = failed.detail.as_deref().unwrap();
    assert!(detail.contains("400") && !detail.contains(KEY), "{detail}");
    let run_line = metric_sets(&report).pop().unwrap();
    assert!(run_line.values.iter().any(|(n, v, _)| *n == "AlertErrors" && *v == 1.0));
    assert_eq!(report.sources[0].counts.stale, 1, "the scan and report went on");
    // The undelivered page was not recorded as open: the next run pages.
    let report = pass(&client, &cfg, &alerts).await;
    assert_eq!(report.alerts_sent, 1);
    assert_eq!(pd.actions("trigger").len(), 2);
}

#[tokio::test]
async fn two_overlapping_runs_page_exactly_once() {
    let World { moto: _moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    put_lock(&client, "locks", "tfstate/b/terraform.tfstate", "b", hours(4)).await;
    let cfg = config(&[("LOCK_TABLES", "locks")]);
    let first = Arc::new(dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state"))));
    let second = Arc::new(dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state"))));
    let (r1, r2) = tokio::join!(pass(&client, &cfg, &first), pass(&client, &cfg, &second));
    assert_eq!(r1.alerts_sent + r2.alerts_sent, 2, "{:?} {:?}", r1.notifications, r2.notifications);
    let mut ids: Vec<String> = pd
        .actions("trigger")
        .iter()
        .map(|t| t["payload"]["custom_details"]["lock_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"], "one trigger per lock across both runs");
}

#[tokio::test]
async fn stateless_mode_pages_every_run_and_resolves_what_it_deleted() {
    let World { moto: _moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    let alerts = Arc::new(dispatcher(vec![pagerduty(&pd.url)], None));
    pass(&client, &config(&[("LOCK_TABLES", "locks")]), &alerts).await;
    pass(&client, &config(&[("LOCK_TABLES", "locks")]), &alerts).await;
    let triggers = pd.actions("trigger");
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[0]["dedup_key"], triggers[1]["dedup_key"], "same dedup_key: one incident");
    pd.clear();
    let report =
        pass(&client, &config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "2h")]), &alerts)
            .await;
    assert_eq!(report.sources[0].counts.deleted, 1);
    let changes: Vec<_> = pd.requests().into_iter().filter(|r| r.path == "/v2/change/enqueue").collect();
    assert_eq!(changes.len(), 1, "the deletion is a change event, not a page");
    let summary = changes[0].body["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Deleted stale Terraform lock on tfstate/a/terraform.tfstate (held 3h00m"),
        "{summary}"
    );
    assert_eq!(pd.actions("resolve").len(), 1);
    assert_eq!(pd.actions("resolve")[0]["dedup_key"], triggers[0]["dedup_key"]);
    assert!(pd.actions("trigger").is_empty());
}

#[tokio::test]
async fn a_lock_past_delete_after_that_stays_is_critical_and_reminders_follow_renotify_after() {
    let World { moto: _moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(7)).await;
    let mut reminding = dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state")));
    // Whole seconds in the state table: a window of several seconds keeps two
    // passes on a busy machine inside it (1 s could fall on a second boundary).
    reminding.renotify_after = Some(Duration::from_secs(5));
    let alerts = Arc::new(reminding);
    // Report mode: DELETE_AFTER passed but nothing deletes it.
    let cfg = config(&[("LOCK_TABLES", "locks"), ("DELETE_AFTER", "6h")]);
    pass(&client, &cfg, &alerts).await;
    pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.actions("trigger").len(), 1);
    assert_eq!(pd.actions("trigger")[0]["payload"]["severity"], "critical");
    tokio::time::sleep(Duration::from_millis(6100)).await;
    pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.actions("trigger").len(), 2, "a reminder after RENOTIFY_AFTER");
}

#[tokio::test]
async fn table_and_item_problems_alert_and_resolve_when_cleared() {
    let World { moto: _moto, pd, client } = world().await;
    put_item(&client, "locks", &[("LockID", s("tfstate/junk/terraform.tfstate")), ("Info", s("{oops"))]).await;
    let alerts = Arc::new(dispatcher(vec![pagerduty(&pd.url)], Some((&client, "alert-state"))));
    let cfg = config(&[("LOCK_TABLES", "locks,later-table")]);
    pass(&client, &cfg, &alerts).await;
    let summaries: Vec<String> =
        pd.actions("trigger").iter().map(|t| t["payload"]["summary"].as_str().unwrap().to_string()).collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    assert!(summaries.iter().any(|s| s.starts_with("tf-lock-reaper cannot read lock table later-table")));
    assert!(summaries.iter().any(|s| s == "1 unreadable item(s) in lock table locks"));
    pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.actions("trigger").len(), 2, "no repeat");
    // Both conditions clear.
    create_lock_table(&client, "later-table").await;
    client.delete_item().table_name("locks").key("LockID", s("tfstate/junk/terraform.tfstate")).send().await.unwrap();
    pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.actions("resolve").len(), 2);
}

#[tokio::test]
async fn hostile_lock_fields_stay_valid_json_and_capped() {
    let World { moto: _moto, pd, client } = world().await;
    let who = format!("evil\"}},\"routing_key\":\"x\n\r\t\u{7}\u{1b}[31m\u{202e}{}", "A".repeat(10_000));
    let id = "x'; rm -rf / #";
    let created = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let info = serde_json::json!({
        "ID": id,
        "Operation": "OperationTypeApply",
        "Who": who,
        "Created": created,
        "Info": "line1\nline2",
    })
    .to_string();
    put_item(&client, "locks", &[("LockID", s("tfstate/a\"b/terraform.tfstate")), ("Info", s(&info))]).await;
    let sqs_free = Arc::new(dispatcher(vec![pagerduty(&pd.url)], None));
    let report = pass(&client, &config(&[("LOCK_TABLES", "locks")]), &sqs_free).await;
    assert_eq!(report.alerts_sent, 1, "{:?}", report.notifications);
    let t = &pd.actions("trigger")[0];
    assert_eq!(t["routing_key"], KEY, "the hostile Who did not inject a field");
    let d = &t["payload"]["custom_details"];
    let who_sent = d["who"].as_str().unwrap();
    assert!(who_sent.chars().count() <= 256, "capped");
    assert!(!who_sent.chars().any(|c| c.is_control() || c == '\u{202e}'), "{who_sent:?}");
    assert!(who_sent.starts_with("evil\"},\"routing_key\":\"x"), "quotes survive as data: {who_sent:?}");
    assert!(t["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
    assert_eq!(d["commands"]["terraform_force_unlock"], r"terraform force-unlock -force 'x'\''; rm -rf / #'");
    assert_eq!(d["info"], "line1 line2");
}

#[tokio::test]
async fn routing_key_secret_in_both_shapes_and_bad_configuration_exits_2() {
    let moto = Moto::start();
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk().await);
    let bare = sm.create_secret().name("pd-bare").secret_string(format!("{KEY}\n")).send().await.unwrap().arn.unwrap();
    let json = sm
        .create_secret()
        .name("pd-json")
        .secret_string(format!(r#"{{"routing_key": "{KEY}"}}"#))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let empty = sm.create_secret().name("pd-empty").secret_string("  ").send().await.unwrap().arn.unwrap();
    assert_eq!(routing_key_from_secret(&sm, &bare).await.unwrap().expose(), KEY);
    assert_eq!(routing_key_from_secret(&sm, &json).await.unwrap().expose(), KEY);
    let err = routing_key_from_secret(&sm, &empty).await.unwrap_err();
    assert_eq!(err.problems[0].variable, "PAGERDUTY_ROUTING_KEY_SECRET_ARN");
    assert!(err.to_string().contains("empty"), "{err}");

    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf";
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    for (var, value, needle) in [
        ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", missing, "GetSecretValue failed"),
        ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", empty.as_str(), "empty"),
        ("SNS_TOPIC_ARN", "topic-name", "an SNS topic ARN"),
        ("PAGERDUTY_EVENTS_URL", "not a url", "an http(s) base URL"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"));
        cmd.envs(moto.env()).env(var, value).args(["run", "--table", "locks"]);
        if var == "PAGERDUTY_EVENTS_URL" {
            cmd.env("PAGERDUTY_ROUTING_KEY", KEY);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(var) && stderr.contains(needle), "{var}: {stderr}");
        assert!(!stderr.contains(KEY));
    }
}

#[tokio::test]
async fn no_notify_sends_nothing_from_the_cli() {
    let World { moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("PAGERDUTY_ROUTING_KEY", KEY)
        .env("PAGERDUTY_EVENTS_URL", &pd.url)
        .args(["run", "--table", "locks", "--no-notify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(pd.requests().is_empty(), "--no-notify must not page");
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("PAGERDUTY_ROUTING_KEY", KEY)
        .env("PAGERDUTY_EVENTS_URL", &pd.url)
        .args(["run", "--table", "locks"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(pd.actions("trigger").len(), 1, "without it the CLI notifies like the Lambda");
}

#[tokio::test]
async fn routing_key_never_appears_in_logs_output_or_report() {
    let World { moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    pd.respond_with(&[500, 400]);
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("PAGERDUTY_ROUTING_KEY", KEY)
        .env("PAGERDUTY_EVENTS_URL", &pd.url)
        .env("RUST_LOG", "debug")
        .args(["run", "--table", "locks", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a failed alert fails the run");
    assert_eq!(pd.requests().len(), 2, "500 retried, 400 not");
    assert!(pd.requests().iter().all(|r| r.body["routing_key"] == KEY), "the key was really sent");
    assert!(stderr.contains("PagerDuty"), "the failure is logged: {stderr}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "routing key leaked");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["alert_errors"], 1);
}

/// A first deployment over a backlog of 300 forgotten locks, with SNS (read
/// back from SQS), PagerDuty and the state table: one grouped page and one
/// SNS message, not 300; a second pass pages nobody; 290 released update the
/// group without paging; the last ten released resolve it; three new stale
/// locks then page one by one.
#[tokio::test]
async fn a_backlog_of_300_stale_locks_pages_once_and_resolves_as_a_group() {
    let World { moto, pd, client } = world().await;
    let sdk = moto.sdk().await;
    let (sns, topic, sqs, queue_url) = topic_to_queue(&sdk).await;
    let sns_messages = || async {
        let mut all = Vec::new();
        loop {
            let got = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).send().await.unwrap();
            let batch = got.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            for m in batch {
                sqs.delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                all.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap());
            }
        }
    };
    let keys: Vec<String> = (0..300).map(|i| format!("tfstate/backlog/{i:03}/terraform.tfstate")).collect();
    for (i, k) in keys.iter().enumerate() {
        put_lock(&client, "locks", k, &format!("old-{i:03}"), hours(3 + (i as u64 % 50))).await;
    }
    let notifiers: Vec<Box<dyn Notifier>> =
        vec![Box::new(SnsNotifier::new(sns.clone(), topic.clone())), pagerduty(&pd.url)];
    let alerts = Arc::new(dispatcher(notifiers, Some((&client, "alert-state"))));
    let cfg = config(&[("LOCK_TABLES", "locks")]);

    let report = pass(&client, &cfg, &alerts).await;
    assert_eq!(report.alert_errors, 0, "{:?}", report.notifications);
    let triggers = pd.actions("trigger");
    assert_eq!(triggers.len(), 1, "one grouped page, not 300");
    let group_key = triggers[0]["dedup_key"].as_str().unwrap().to_string();
    let summary = triggers[0]["payload"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("300 stale Terraform locks in lock table locks, oldest held 2d"), "{summary}");
    assert_eq!(triggers[0]["payload"]["custom_details"]["locks"].as_array().unwrap().len(), 20, "the 20 oldest");
    let first = sns_messages().await;
    assert_eq!(first.len(), 1, "one SNS message");
    assert!(first[0]["Message"].as_str().unwrap().contains("tf-lock-reaper unlock"), "{}", first[0]["Message"]);
    assert_eq!(report.sources[0].grouped_alert.as_ref().map(|g| g.covered), Some(300), "the report says so");
    let sets = metric_sets(&report);
    let grouped = sets.iter().flat_map(|s| &s.values).find(|v| v.0 == "GroupedStaleLocks").map(|v| v.1);
    assert_eq!(grouped, Some(300.0), "and the metrics");

    pass(&client, &cfg, &alerts).await;
    assert_eq!(pd.actions("trigger").len(), 1, "a second pass pages nobody");
    assert!(sns_messages().await.is_empty());

    for k in &keys[..290] {
        client.delete_item().table_name("locks").key("LockID", s(k)).send().await.unwrap();
    }
    pass(&client, &cfg, &alerts).await;
    let updates = pd.actions("trigger");
    assert!(updates.iter().all(|t| t["dedup_key"] == group_key.as_str()), "no new incident: {updates:#?}");
    assert!(updates[1..].iter().all(|t| t["payload"]["summary"].as_str().unwrap().starts_with("10 stale")));
    assert!(sns_messages().await.is_empty(), "nothing that pages");

    for k in &keys[290..] {
        client.delete_item().table_name("locks").key("LockID", s(k)).send().await.unwrap();
    }
    pass(&client, &cfg, &alerts).await;
    assert_eq!(
        pd.actions("resolve"),
        vec![serde_json::json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": group_key})]
    );
    let resolved = sns_messages().await;
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0]["Subject"].as_str().unwrap().starts_with("RESOLVED"), "{}", resolved[0]);

    for i in 0..3 {
        put_lock(&client, "locks", &format!("tfstate/new/{i}/terraform.tfstate"), &format!("new-{i}"), hours(3)).await;
    }
    pd.clear();
    pass(&client, &cfg, &alerts).await;
    let fresh = pd.actions("trigger");
    assert_eq!(fresh.len(), 3, "new stale locks page individually");
    assert!(fresh.iter().all(|t| t["dedup_key"] != group_key.as_str()));
    assert_eq!(sns_messages().await.len(), 3);
}

/// A topic and a subscribed SQS queue in moto: what the chat service would
/// receive, read back (and deleted) in order.
struct ChatTopic {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic: String,
    queue_url: String,
}

impl ChatTopic {
    async fn new(moto: &Moto) -> ChatTopic {
        let sdk = moto.sdk().await;
        let (sns, sqs) = (aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
        let topic = sns.create_topic().name("tf-locks-chat").send().await.unwrap().topic_arn.unwrap();
        let queue_url = sqs.create_queue().queue_name("chat").send().await.unwrap().queue_url.unwrap();
        let queue_arn = "arn:aws:sqs:us-east-1:123456789012:chat";
        sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
        ChatTopic { sns, sqs, topic, queue_url }
    }

    fn notifier(&self) -> Box<dyn Notifier> {
        Box::new(SnsNotifier::chat(self.sns.clone(), self.topic.clone()))
    }

    /// The custom notifications published so far (the SNS `Message`, parsed).
    async fn received(&self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        loop {
            let got = self.sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).send().await;
            let batch = got.unwrap().messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            for m in batch {
                let handle = m.receipt_handle().unwrap();
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await.unwrap();
                let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                all.push(serde_json::from_str(envelope["Message"].as_str().unwrap()).expect("the message is JSON"));
            }
        }
    }
}

/// Validate each notification against `tests/chat_notification.schema.json`
/// (Python's `jsonschema`, from the test venv).
fn assert_valid_custom_notifications(notes: &[serde_json::Value]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let lines: String = notes.iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(file.path(), lines).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chat_notification.schema.json");
    let check = "import json, sys, jsonschema\nschema = \
        json.load(open(sys.argv[1]))\njsonschema.Draft202012Validator.check_schema(schema)\nv = \
        jsonschema.Draft202012Validator(schema)\nbad = [(i, e.message) for i, line in enumerate(open(sys.argv[2])) \
        for e in v.iter_errors(json.loads(line))]\nprint(bad)\nsys.exit(1 if bad else 0)";
    let out = Command::new(venv_bin("python")).args(["-c", check, schema]).arg(file.path()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn event_type(n: &serde_json::Value) -> String {
    n["metadata"]["eventType"].as_str().unwrap_or_default().to_string()
}

/// One lock's trigger, reminder, escalation and resolve in one thread;
/// another lock in its own thread; every message valid.
#[tokio::test]
async fn chat_notifications_thread_per_alert_through_trigger_reminder_escalation_and_resolve() {
    let World { moto, pd: _pd, client } = world().await;
    let chat = ChatTopic::new(&moto).await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "app-1", hours(5)).await;
    put_lock(&client, "locks", "tfstate/net/terraform.tfstate", "net-1", hours(3)).await;
    let mut d = dispatcher(vec![chat.notifier()], Some((&client, "alert-state")));
    d.renotify_after = Some(Duration::from_secs(1));
    let alerts = Arc::new(d);
    let window = |delete_after: &str| config(&[("LOCK_TABLES", "locks"), ("DELETE_AFTER", delete_after)]);

    pass(&client, &window("10h"), &alerts).await;
    let triggers = chat.received().await;
    assert_eq!(triggers.len(), 2);
    let app = triggers.iter().find(|n| n["content"]["title"].as_str().unwrap().contains("tfstate/app")).unwrap();
    let net = triggers.iter().find(|n| n["content"]["title"].as_str().unwrap().contains("tfstate/net")).unwrap();
    assert_ne!(app["metadata"]["threadId"], net["metadata"]["threadId"], "two locks, two threads");
    assert_eq!(app["content"]["title"], ":warning: Stale Terraform lock: `tfstate/app/terraform.tfstate`");
    let description = app["content"]["description"].as_str().unwrap();
    for needle in [
        "*Age:* `5h00m`",
        "*Who:* `ci@runner`",
        "*Operation:* `OperationTypeApply`",
        "*Lock ID:* `app-1`",
        "*Table:* `locks`",
    ] {
        assert!(description.contains(needle), "{needle} in {description}");
    }
    assert_eq!(app["content"]["nextSteps"][0], "```tf-lock-reaper unlock 'app-1' --table 'locks'```");
    // Safest first: the conditional aws command before force-unlock.
    assert!(app["content"]["nextSteps"][1].as_str().unwrap().contains("aws dynamodb delete-item --table-name 'locks'"));
    assert!(app["content"]["nextSteps"][1].as_str().unwrap().contains("--condition-expression 'Info = :info'"));
    assert_eq!(app["content"]["nextSteps"][2], "```terraform force-unlock -force 'app-1'```");
    assert_eq!(app["content"]["keywords"], serde_json::json!(["warning", "locks"]));
    assert_eq!(event_type(app), "tf-lock-reaper.lock-stale.trigger");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    pass(&client, &window("10h"), &alerts).await;
    let reminders = chat.received().await;
    assert_eq!(reminders.len(), 2, "a reminder each after RENOTIFY_AFTER");
    let app_thread = app["metadata"]["threadId"].clone();
    assert!(reminders.iter().any(|n| n["metadata"]["threadId"] == app_thread), "the reminder joins the thread");

    // Past DELETE_AFTER and still there: escalated to critical, same thread.
    pass(&client, &window("4h"), &alerts).await;
    let escalated = chat.received().await;
    let app_escalated = escalated.iter().find(|n| n["metadata"]["threadId"] == app_thread).expect("escalation");
    assert!(app_escalated["content"]["title"].as_str().unwrap().starts_with(":rotating_light:"));

    client.delete_item().table_name("locks").key("LockID", s("tfstate/app/terraform.tfstate")).send().await.unwrap();
    pass(&client, &window("10h"), &alerts).await;
    let resolved = chat.received().await;
    let resolve = resolved.iter().find(|n| event_type(n) == "tf-lock-reaper.lock-stale.resolve").expect("resolve");
    assert_eq!(resolve["metadata"]["threadId"], app_thread, "the resolve closes the thread");
    assert!(resolve["content"]["title"].as_str().unwrap().starts_with(":white_check_mark: Resolved"));
    let all: Vec<serde_json::Value> = [triggers, reminders, escalated, resolved].concat();
    assert_valid_custom_notifications(&all);
}

/// Every other event kind arrives as a valid custom notification: deletion
/// notice, scan-failed, unreadable-items, breaker, ttl-disabled, a dead
/// heartbeat, a grouped flood.
#[tokio::test]
async fn every_alert_kind_reaches_the_chat_topic_as_a_valid_custom_notification() {
    let World { moto, pd: _pd, client } = world().await;
    let chat = ChatTopic::new(&moto).await;
    let alerts = Arc::new(dispatcher(vec![chat.notifier()], None));
    let mut all = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();

    // Deleted (a notice), unreadable items, an unreadable table.
    put_lock(&client, "locks", "tfstate/old/terraform.tfstate", "old-1", hours(30)).await;
    put_item(&client, "locks", &[("LockID", s("tfstate/junk/terraform.tfstate")), ("Info", s("{oops"))]).await;
    let cfg = config(&[("LOCK_TABLES", "locks,missing-table"), ("ACTION", "delete"), ("DELETE_AFTER", "24h")]);
    pass(&client, &cfg, &alerts).await;
    // The breaker: more deletes due than MAX_DELETES_PER_RUN.
    create_lock_table(&client, "flood").await;
    for i in 0..12 {
        put_lock(&client, "flood", &format!("tfstate/f{i}/terraform.tfstate"), &format!("f-{i}"), hours(30)).await;
    }
    let cfg = config(&[
        ("LOCK_TABLES", "flood"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "24h"),
        ("MAX_DELETES_PER_RUN", "2"),
    ]);
    pass(&client, &cfg, &alerts).await;
    // TTL not enabled under ACTION=ttl; a dead heartbeat.
    create_lock_table(&client, "ttl-less").await;
    put_lock(&client, "ttl-less", "tfstate/t/terraform.tfstate", "t-1", hours(5)).await;
    let ttl_cfg = config(&[("LOCK_TABLES", "ttl-less"), ("ACTION", "ttl"), ("TTL_AFTER", "3h")]);
    let inspector = Arc::new(tf_lock_reaper::adapters::dynamodb_inspect::DynamoTableInspector::new(client.clone()));
    let precondition = Arc::new(tf_lock_reaper::pipeline::preconditions::TtlPrecondition::new(inspector, "ExpiresAt"));
    Reaper::new(ttl_cfg, Arc::new(DynamoLockTables::new(client.clone())), Arc::new(MemoryLockfiles::default()))
        .with_dispatcher(Arc::clone(&alerts))
        .with_ttl_precondition(precondition)
        .run(Deadline::none())
        .await;
    create_lock_table(&client, "beats").await;
    let created = chrono::Utc::now() - chrono::Duration::minutes(20);
    let beat = (chrono::Utc::now() - chrono::Duration::minutes(15)).timestamp().to_string();
    let info = info_json("hb-1", "tfstate/hb/terraform.tfstate", created);
    put_item(
        &client,
        "beats",
        &[
            ("LockID", s("tfstate/hb/terraform.tfstate")),
            ("Info", s(&info)),
            ("Heartbeat", aws_sdk_dynamodb::types::AttributeValue::N(beat)),
        ],
    )
    .await;
    // Kept, so that it alerts: by default a dead heartbeat is released (and said in an info).
    pass(&client, &config(&[("LOCK_TABLES", "beats"), ("RELEASE_DEAD_HEARTBEATS", "false")]), &alerts).await;

    for n in chat.received().await {
        kinds.insert(event_type(&n));
        all.push(n);
    }
    for kind in [
        "tf-lock-reaper.lock-stale.info",
        "tf-lock-reaper.scan-failed.trigger",
        "tf-lock-reaper.unreadable-items.trigger",
        "tf-lock-reaper.breaker-tripped.trigger",
        "tf-lock-reaper.stale-group.trigger",
        "tf-lock-reaper.ttl-disabled.trigger",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    let dead =
        all.iter().find(|n| n["content"]["title"].as_str().unwrap().contains("Dead Terraform lock")).expect("dead");
    assert!(dead["content"]["description"].as_str().unwrap().contains("*Liveness:* `dead"), "{dead}");
    let group = all.iter().find(|n| event_type(n) == "tf-lock-reaper.stale-group.trigger").unwrap();
    assert!(group["content"]["nextSteps"][0].as_str().unwrap().starts_with("```tf-lock-reaper list --table flood"));
    let ttl = all.iter().find(|n| event_type(n) == "tf-lock-reaper.ttl-disabled.trigger").unwrap();
    assert!(ttl["content"]["nextSteps"][0].as_str().unwrap().contains("update-time-to-live"), "{ttl}");
    assert_valid_custom_notifications(&all);
}

/// 2 KB of markdown, backticks, mentions and control characters in `Who`,
/// `Path`, `Operation` and the LockID: the message still validates, stays
/// within its limits, and its code blocks are intact.
#[tokio::test]
async fn hostile_lock_fields_cannot_break_a_chat_message() {
    let World { moto, pd: _pd, client } = world().await;
    let chat = ChatTopic::new(&moto).await;
    let nasty = |seed: &str| {
        format!("{seed} ```*bold*``` <!channel> [x](http://evil) \u{7}\u{1b}[31m\u{202e}`{}", "`_*~>".repeat(400))
    };
    let lock_id = format!("tfstate/{}/terraform.tfstate", "a`b```c".repeat(100));
    let created = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let info = serde_json::json!({
        "ID": "id```x",
        "Operation": nasty("op"),
        "Who": nasty("who"),
        "Path": nasty("path"),
        "Created": created,
    })
    .to_string();
    put_item(&client, "locks", &[("LockID", s(&lock_id)), ("Info", s(&info))]).await;
    let alerts = Arc::new(dispatcher(vec![chat.notifier()], None));
    let report = pass(&client, &config(&[("LOCK_TABLES", "locks")]), &alerts).await;
    assert_eq!(report.alerts_sent, 1, "{:?}", report.notifications);
    let notes = chat.received().await;
    assert_eq!(notes.len(), 1);
    let text = notes[0].to_string();
    assert!(!text.contains("<!channel>") && !text.contains('\u{202e}') && !text.contains('\u{1b}'), "{text}");
    for line in notes[0]["content"]["description"].as_str().unwrap().lines().filter(|l| l.starts_with('*')) {
        assert_eq!(line.matches('`').count() % 2, 0, "every code span closed: {line}");
    }
    for step in notes[0]["content"]["nextSteps"].as_array().unwrap() {
        let step = step.as_str().unwrap();
        assert_eq!(step.matches("```").count(), 2, "one intact code block: {step}");
    }
    assert_valid_custom_notifications(&notes);
}

fn slack(url: &str) -> Box<dyn Notifier> {
    let fast = RetryPolicy { max_attempts: 4, first_delay: Duration::from_millis(20), budget: Duration::from_secs(5) };
    let timeout = Duration::from_millis(700);
    Box::new(SlackNotifier::new(Secret::new(url), fast, timeout, Box::new(SystemClock)).unwrap())
}

/// The Block Kit a Slack webhook receives: a header, the facts as fields,
/// the fix in a code block, a context line; for a trigger, a deletion
/// notice and a resolve. A 429 with `Retry-After: 1` is waited out and the
/// message delivered once.
#[tokio::test]
async fn slack_webhook_gets_block_kit_and_a_429_is_waited_out() {
    let World { moto: _moto, pd: hook, client } = world().await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "app-1", hours(5)).await;
    put_lock(&client, "locks", "tfstate/old/terraform.tfstate", "old-1", hours(30)).await;
    hook.respond_with(&[429]);
    let alerts =
        Arc::new(dispatcher(vec![slack(&format!("{}/services/T0/B0/x", hook.url))], Some((&client, "alert-state"))));
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "24h")]);
    let started = std::time::Instant::now();
    let report = pass(&client, &cfg, &alerts).await;
    assert_eq!(report.alert_errors, 0, "{:?}", report.notifications);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    let bodies: Vec<serde_json::Value> = hook.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 3, "a deletion notice (429, then again) and a trigger: {bodies:#?}");
    assert_eq!(bodies[0], bodies[1], "the 429'd message, sent again");
    assert_eq!(report.notifications.iter().filter(|n| n.channel == "slack").count(), 2, "delivered once each");
    let trigger = bodies.iter().find(|b| b["text"].as_str().unwrap().starts_with("Stale Terraform lock")).unwrap();
    let blocks = trigger["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], ":warning: Stale Terraform lock: tfstate/app/terraform.tfstate");
    let fields: Vec<&str> =
        blocks[2]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
    assert!(fields.contains(&"*Who*\n`ci@runner`") && fields.contains(&"*Lock ID*\n`app-1`"), "{fields:?}");
    let fix = blocks[3]["text"]["text"].as_str().unwrap();
    assert!(
        fix.starts_with(
            "```tf-lock-reaper unlock 'app-1' --table 'locks'\naws dynamodb delete-item --table-name 'locks'"
        ) && fix.contains("\nterraform force-unlock -force 'app-1'"),
        "{fix}"
    );
    assert!(fix.ends_with("```"));
    assert_eq!(blocks.last().unwrap()["type"], "context");
    let notice = bodies.iter().find(|b| b["text"].as_str().unwrap().starts_with("Deleted")).unwrap();
    assert_eq!(
        notice["blocks"][0]["text"]["text"],
        ":wastebasket: Deleted stale Terraform lock: tfstate/old/terraform.tfstate"
    );

    hook.clear();
    client.delete_item().table_name("locks").key("LockID", s("tfstate/app/terraform.tfstate")).send().await.unwrap();
    pass(&client, &cfg, &alerts).await;
    let resolve = &hook.requests()[0].body;
    assert_eq!(resolve["blocks"][0]["text"]["text"], ":white_check_mark: Resolved: tfstate/app/terraform.tfstate");
}

/// A webhook that never answers: `failed` within the timeout, the pass
/// ends, PagerDuty still gets the page, and the URL (a secret) appears in
/// no output, log or report.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_slack_webhook_fails_alone_and_its_url_never_leaks() {
    let World { moto, pd, client } = world().await;
    put_lock(&client, "locks", "tfstate/a/terraform.tfstate", "a", hours(3)).await;
    // Accepts connections (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "T0SECRET/B0SECRET/XyZsEcReTtOkEn";
    let url = format!("http://{}/services/{token}", silent.local_addr().unwrap());
    let alerts = Arc::new(dispatcher(vec![slack(&url), pagerduty(&pd.url)], None));
    let started = std::time::Instant::now();
    let report = pass(&client, &config(&[("LOCK_TABLES", "locks")]), &alerts).await;
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the timeout and budget");
    let slack_record = report.notifications.iter().find(|n| n.channel == "slack").unwrap();
    assert_eq!(slack_record.outcome, Delivery::Failed);
    assert!(slack_record.detail.as_deref().unwrap().contains("no answer within the timeout"), "{slack_record:?}");
    assert_eq!(pd.actions("trigger").len(), 1, "the other channel still delivered");
    assert!(!serde_json::to_string(&report).unwrap().contains(token));

    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("SLACK_WEBHOOK_URL", &url)
        .env("RUST_LOG", "debug")
        .args(["-v", "run", "--table", "locks", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a failed alert fails the run: {stderr}");
    assert!(stderr.contains("Slack webhook unreachable"), "the failure is said: {stderr}");
    assert!(!stdout.contains(token) && !stderr.contains(token), "the webhook URL leaked:\n{stdout}\n{stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("SLACK_WEBHOOK_URL", format!("http://hooks.example.com/services/{token}"))
        .args(["run", "--table", "locks"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("SLACK_WEBHOOK_URL") && !err.contains(token), "{err}");
}

/// The `id`s of the built runbook page (`make docs`; `make test` builds it).
fn runbook_anchors() -> std::collections::BTreeSet<String> {
    let page = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/docs/runbook.html");
    let html =
        std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}: run `make docs-site`", page.display()));
    crate::common::html_ids(&html)
}

/// Alerts really sent (a stale lock, a source that cannot be read, a
/// tripped breaker), over SNS and to PagerDuty, each carry a link under
/// `RUNBOOK_URL` to a section that exists in the built runbook, and
/// different kinds link to different sections.
#[tokio::test]
async fn every_alert_sent_links_to_its_runbook_section() {
    let World { moto, pd, client } = world().await;
    let sdk = moto.sdk().await;
    for (i, age) in [(1, 9), (2, 10)] {
        put_lock(&client, "locks", &format!("tfstate/app-{i}/terraform.tfstate"), &format!("stale-{i}"), hours(age))
            .await;
    }
    let (sns, topic, sqs, queue_url) = topic_to_queue(&sdk).await;
    let base = "https://runbooks.example.com/tf-lock-reaper/runbook.html";
    let mut d = dispatcher(vec![Box::new(SnsNotifier::new(sns, topic)), pagerduty(&pd.url)], None);
    d.settings.runbook_url = Some(base.to_string());
    let alerts = Arc::new(d);
    // Two locks past DELETE_AFTER with room for one delete: the breaker trips; a missing table cannot be read.
    let cfg = config(&[
        ("LOCK_TABLES", "locks,no-such-table"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "4h"),
        ("MAX_DELETES_PER_RUN", "1"),
    ]);
    let report = pass(&client, &cfg, &alerts).await;
    assert_eq!(report.alert_errors, 0, "{:?}", report.notifications);

    let anchors = runbook_anchors();
    let mut sections = std::collections::BTreeSet::new();
    for trigger in pd.actions("trigger") {
        let href = trigger["links"][0]["href"].as_str().unwrap_or_else(|| panic!("no link: {trigger:#}")).to_string();
        let anchor = href.strip_prefix(&format!("{base}#")).unwrap_or_else(|| panic!("{href} is not under {base}"));
        assert!(anchors.contains(anchor), "{href}: no such section in the built runbook");
        assert_eq!(trigger["payload"]["custom_details"]["runbook"], href.as_str());
        sections.insert(anchor.to_string());
    }
    for kind in ["lock-stale", "scan-failed", "breaker-tripped"] {
        assert!(sections.contains(kind), "a {kind} page linking #{kind}: {sections:?}");
    }
    // Over SNS: every message's text ends with its section's link.
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let got = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).send().await.unwrap();
        for m in got.messages.unwrap_or_default() {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            bodies.push(envelope["Message"].as_str().unwrap().to_string());
        }
        if bodies.len() >= sections.len() {
            break;
        }
    }
    assert!(bodies.len() >= 3, "{bodies:?}");
    for body in &bodies {
        let link = body
            .lines()
            .rev()
            .find_map(|l| l.split(": ").last().filter(|u| u.starts_with(base)))
            .unwrap_or_else(|| panic!("no runbook link:\n{body}"));
        assert!(anchors.contains(link.split('#').nth(1).unwrap()), "{link}");
    }
}
