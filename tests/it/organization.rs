//! One reaper for an AWS Organization: lock tables found by their key
//! schema in every `ACTIVE` member account in scope and every region asked
//! for, each account through its member role, against a local organisation
//! in moto (Organizations, STS and DynamoDB over loopback). Nested OUs, a
//! closed account, a skipped OU, non-lock tables beside lock tables with
//! usual and unusual names, and an account whose role cannot be assumed
//! (`tools/moto_server.py`'s `MOTO_UNASSUMABLE_ROLES`).

use std::process::Command;

use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::common::*;

pub(crate) const ROLE_NAME: &str = "tf-lock-reaper-access";
const KEY: &str = "tfstate/app/terraform.tfstate";

pub(crate) fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{ROLE_NAME}")
}

/// The moto SDK config in `region`, as `account`'s member role (`None`: the
/// management account's own credentials).
async fn sdk_as(moto: &Moto, region: &str, account: Option<&str>) -> SdkConfig {
    let base = moto.sdk().await;
    let mut conf = base.to_builder();
    conf.set_region(Some(Region::new(region.to_string())));
    if let Some(account) = account {
        let provider =
            aws_config::sts::AssumeRoleProvider::builder(role(account)).session_name("setup").configure(&base);
        conf.set_credentials_provider(Some(SharedCredentialsProvider::new(provider.build().await)));
    }
    conf.build()
}

pub(crate) async fn dynamo_as(moto: &Moto, region: &str, account: Option<&str>) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_as(moto, region, account).await)
}

/// A lock table named `table` in `account` and `region`, holding an orphan.
pub(crate) async fn orphan(moto: &Moto, region: &str, account: Option<&str>, table: &str, id: &str) {
    let c = dynamo_as(moto, region, account).await;
    create_lock_table(&c, table).await;
    put_lock(&c, table, KEY, id, hours(10)).await;
}

async fn s3_as(moto: &Moto, account: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_as(moto, "us-east-1", Some(account)).await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A bucket in `account` (tagged when `tag` is given) holding a lockfile
/// orphan at each of `keys`.
pub(crate) async fn lockfile_bucket(
    moto: &Moto,
    account: &str,
    bucket: &str,
    tag: Option<(&str, &str)>,
    keys: &[&str],
) {
    let s3 = s3_as(moto, account).await;
    s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
    if let Some((k, v)) = tag {
        let tags = aws_sdk_s3::types::Tagging::builder()
            .tag_set(aws_sdk_s3::types::Tag::builder().key(k).value(v).build().unwrap())
            .build()
            .unwrap();
        s3.put_bucket_tagging().bucket(bucket).tagging(tags).send().await.expect("tag bucket");
    }
    for key in keys {
        let path = format!("{bucket}/{}", key.trim_end_matches(".tflock"));
        let body = info_json(&format!("file-{bucket}-{key}"), &path, chrono::Utc::now() - chrono::Duration::hours(10));
        put_object_stored(moto, &s3, bucket, key, &body, chrono::Duration::hours(10)).await;
    }
}

async fn has_object(moto: &Moto, account: &str, bucket: &str, key: &str) -> bool {
    s3_as(moto, account).await.head_object().bucket(bucket).key(key).send().await.is_ok()
}

async fn holds(moto: &Moto, region: &str, account: Option<&str>, table: &str) -> bool {
    get_item(&dynamo_as(moto, region, account).await, table, KEY).await.is_some()
}

/// The organisation: management 123456789012 under the root;
/// `prod` ─ A, E, and `legacy` (nested) ─ B, C (closed); `sandbox` ─ D.
pub(crate) struct Org {
    pub(crate) root: String,
    pub(crate) sandbox: String,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) c: String,
    pub(crate) d: String,
    pub(crate) e: String,
}

/// A new organisation (all features) in moto; its client, as the management account.
async fn new_organisation(moto: &Moto) -> aws_sdk_organizations::Client {
    let orgs = aws_sdk_organizations::Client::new(&moto.sdk().await);
    orgs.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organisation");
    orgs
}

pub(crate) async fn organisation(moto: &Moto) -> Org {
    let orgs = new_organisation(moto).await;
    let root = orgs.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string();
    let ou = |parent: String, name: &'static str| {
        let orgs = orgs.clone();
        async move {
            let out = orgs.create_organizational_unit().parent_id(parent).name(name).send().await.unwrap();
            out.organizational_unit().unwrap().id().unwrap().to_string()
        }
    };
    let prod = ou(root.clone(), "prod").await;
    let legacy = ou(prod.clone(), "legacy").await;
    let sandbox = ou(root.clone(), "sandbox").await;
    let mut ids = Vec::new();
    for (name, parent) in [("a", &prod), ("b", &legacy), ("c", &legacy), ("d", &sandbox), ("e", &prod)] {
        let out = orgs
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("create account");
        let id = out.create_account_status().unwrap().account_id().unwrap().to_string();
        orgs.move_account().account_id(&id).source_parent_id(&root).destination_parent_id(parent).send().await.unwrap();
        ids.push(id);
    }
    let [a, b, c, d, e] = <[String; 5]>::try_from(ids).unwrap();
    Org { root, sandbox, a, b, c, d, e }
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_tables_are_discovered_across_the_organisation_and_only_those_in_scope_are_reaped() {
    let moto = Moto::start();
    let org = organisation(&moto).await;
    // E's member role cannot be assumed (not deployed there, or trusts someone else).
    moto.refuse_assume_role(&role(&org.e));

    orphan(&moto, "us-east-1", None, "own-locks", "own").await; // the management account, its own credentials
    orphan(&moto, "us-east-1", Some(&org.a), "terraform-state-locks", "a-east").await;
    orphan(&moto, "eu-west-1", Some(&org.a), "a-name-nobody-would-guess", "a-west").await;
    orphan(&moto, "us-east-1", Some(&org.b), "locks", "b-nested").await;
    orphan(&moto, "us-east-1", Some(&org.c), "locks", "c-closed").await;
    orphan(&moto, "us-east-1", Some(&org.d), "locks", "d-skipped").await;
    let a = dynamo_as(&moto, "us-east-1", Some(&org.a)).await;
    create_table(&a, "orders", "OrderId").await;
    put_item(&a, "orders", &[("OrderId", s(KEY)), ("Info", s("{}"))]).await;
    let orders = snapshot(&a, "orders").await;
    // Lockfile buckets: one tagged in A, one matched by name (under a prefix) in B, one neither.
    lockfile_bucket(
        &moto,
        &org.a,
        "a-team-state",
        Some(("tf-lock-reaper", "lockfiles")),
        &["app/terraform.tfstate.tflock"],
    )
    .await;
    lockfile_bucket(&moto, &org.a, "a-logs", None, &["app/terraform.tfstate.tflock"]).await;
    let in_prefix = "teams/x/terraform.tfstate.tflock";
    let outside = "other/terraform.tfstate.tflock";
    lockfile_bucket(&moto, &org.b, "tfstate-b-shared", None, &[in_prefix, outside]).await;
    let orgs = aws_sdk_organizations::Client::new(&moto.sdk().await);
    orgs.close_account().account_id(&org.c).send().await.expect("close account C");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"));
    cmd.envs(moto.env())
        .env("ORGANIZATION_ACCOUNTS", &org.root)
        .env("ORGANIZATION_SKIP", &org.sandbox)
        .env("MEMBER_ROLE_NAME", ROLE_NAME)
        .env("DISCOVER_REGIONS", "us-east-1,eu-west-1")
        .env("DISCOVER_BUCKETS", "tag:tf-lock-reaper=lockfiles,tfstate-b-*/teams/")
        // An explicit source beside the discovered ones: scanned once.
        .env("LOCK_TABLES", "own-locks")
        .env("STALE_AFTER", "1h")
        .env("DELETE_AFTER", "1h")
        .env("MAX_DELETES_PER_RUN", "20")
        .args(["run", "--action", "delete", "--no-notify", "--json"]);
    let out = cmd.output().expect("run the reaper");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(out.status.code(), Some(1), "an account that could not be searched is an error:\n{text}");

    let d = &report["discovery"];
    assert_eq!(d["accounts"], 4, "management, A, B, E (C closed, D skipped):\n{text}");
    assert_eq!((d["skipped_accounts"].as_u64(), d["inactive_accounts"].as_u64()), (Some(1), Some(1)), "{text}");
    assert_eq!(d["searched"], 8, "4 accounts × 2 regions:\n{text}");
    assert_eq!(d["tables"], 4, "{text}");
    assert_eq!(d["buckets"], 2, "the tagged bucket and the one matched by name:\n{text}");
    let failures = d["failures"].as_array().unwrap();
    assert!(!failures.is_empty() && failures.iter().all(|f| f["account"] == org.e.as_str()), "{text}");
    assert_eq!(failures[0]["role"], role(&org.e).as_str(), "the failure names the role:\n{text}");

    let names: Vec<&str> = report["sources"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "own-locks").count(), 1, "explicit and discovered, once: {names:?}");
    assert!(names.contains(&format!("arn:aws:dynamodb:eu-west-1:{}:table/a-name-nobody-would-guess", org.a).as_str()));
    assert!(names.iter().all(|n| !n.ends_with("/orders")), "not a lock table: {names:?}");

    // Every orphan in scope is reaped; nothing out of scope is touched.
    assert!(!holds(&moto, "us-east-1", None, "own-locks").await, "{text}");
    assert!(!holds(&moto, "us-east-1", Some(&org.a), "terraform-state-locks").await, "{text}");
    assert!(!holds(&moto, "eu-west-1", Some(&org.a), "a-name-nobody-would-guess").await, "{text}");
    assert!(!holds(&moto, "us-east-1", Some(&org.b), "locks").await, "a nested OU counts:\n{text}");
    assert!(holds(&moto, "us-east-1", Some(&org.c), "locks").await, "a closed account is never searched");
    assert!(holds(&moto, "us-east-1", Some(&org.d), "locks").await, "a skipped OU is never searched");
    assert_eq!(snapshot(&a, "orders").await, orders, "a table that is not a lock table is never read or written");
    assert!(!has_object(&moto, &org.a, "a-team-state", "app/terraform.tfstate.tflock").await, "tagged: reaped\n{text}");
    assert!(!has_object(&moto, &org.b, "tfstate-b-shared", in_prefix).await, "by name, in its prefix: reaped\n{text}");
    assert!(has_object(&moto, &org.b, "tfstate-b-shared", outside).await, "outside the prefix: never touched");
    assert!(has_object(&moto, &org.a, "a-logs", "app/terraform.tfstate.tflock").await, "neither: never touched");
    assert!(names.contains(&format!("tfstate-b-shared/teams/@us-east-1:{}", org.b).as_str()), "{names:?}");

    // `doctor` checks the discovered tables and buckets like listed ones (the same settings as flags).
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .args(["doctor", "--json", "--organization-accounts", &org.root, "--organization-skip", &org.sandbox])
        .args(["--member-role-name", ROLE_NAME, "--discover-regions", "us-east-1,eu-west-1"])
        .args(["--discover-buckets", "tfstate-b-*/teams/"])
        .output()
        .unwrap();
    let doctor = String::from_utf8_lossy(&out.stdout);
    let west = format!("arn:aws:dynamodb:eu-west-1:{}:table/a-name-nobody-would-guess", org.a);
    assert!(doctor.contains(&west) && doctor.contains("tfstate-b-shared"), "{doctor}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("discovery: 4 lock table(s) and 1 lockfile bucket(s)"));
}

/// Past the SDK's default of 64 cached credential sets, every member role is
/// still assumed once per process: discovery's clients in two regions and
/// the pass's all share it. (At 64 the SDK evicted, and an organisation of
/// 200 accounts made 646 AssumeRole calls where 200 do.)
#[tokio::test(flavor = "multi_thread")]
async fn each_member_role_is_assumed_once_however_many_accounts() {
    use futures::stream::{self, StreamExt};
    const MEMBERS: usize = 70;
    let moto = Moto::start();
    let orgs = new_organisation(&moto).await;
    let mut members = Vec::new();
    for n in 0..MEMBERS {
        let out = orgs
            .create_account()
            .account_name(format!("member-{n}"))
            .email(format!("m{n}@example.com"))
            .send()
            .await
            .expect("create account");
        members.push(out.create_account_status().unwrap().account_id().unwrap().to_string());
    }
    let moto_ref = &moto;
    stream::iter(&members)
        .for_each_concurrent(8, |account| async move {
            orphan(moto_ref, "eu-west-1", Some(account), "terraform-state-locks", &format!("orphan-{account}")).await;
        })
        .await;

    let (proxy, report) = reported_through_proxy(&moto, &[("ORGANIZATION_ACCOUNTS", "all")]);
    assert_eq!(report["discovery"]["tables"], MEMBERS, "{report:#}");
    let stale: u64 = report["sources"].as_array().unwrap().iter().map(|s| s["counts"]["stale"].as_u64().unwrap()).sum();
    assert_eq!(stale, MEMBERS as u64);
    let calls = proxy.calls.lock().unwrap().clone();
    let assumed = calls.iter().filter(|(action, _)| action == "sts:AssumeRole").count();
    assert_eq!(assumed, MEMBERS, "one AssumeRole per member account");
}

/// `run --action report --json` over the organisation, discovering in two
/// regions, through a recording proxy; `env` on top. The proxy (its
/// `calls`) and the report.
pub(crate) fn reported_through_proxy(
    moto: &Moto,
    env: &[(&str, &str)],
) -> (crate::common::faults::FaultProxy, serde_json::Value) {
    let proxy = crate::common::faults::FaultProxy::start(moto.port);
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("MEMBER_ROLE_NAME", ROLE_NAME)
        .env("DISCOVER_REGIONS", "us-east-1,eu-west-1")
        .env("STALE_AFTER", "1h")
        .envs(env.iter().copied())
        .args(["run", "--action", "report", "--no-notify", "--json"])
        .output()
        .unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (proxy, report)
}
