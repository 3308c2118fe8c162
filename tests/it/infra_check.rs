//! `terraform validate` and the evaluation half of `terraform plan` for
//! `infra/`, its submodules and every example, offline (no provider can be
//! installed here): `common::tfcheck` parses the HCL with `hcl-rs` and
//! walks the expressions' traversals.
//!
//! - every reference is declared (`var`, `local`, `module` and its outputs,
//!   `data`, resources, `each`/`count` where they are in scope), every
//!   `module` argument is an input of the module it calls, and every
//!   required input is given;
//! - every local, `count`, `for_each`, `dynamic` block, argument, variable
//!   validation, precondition and output evaluates, for each module's
//!   defaults and for the inputs each example gives (through to the
//!   modules it calls), with Terraform's types: a wrong type, a missing
//!   attribute, a `for_each` over a list, or a `for_each` key known only
//!   after apply fails here, not at a user's plan.
//!
//! Each check is also shown to fail on a planted error of its class.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::tfcheck::{plan, undeclared, warnings, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The root module, each module under `infra/modules/`, each example.
fn module_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("infra")];
    for parent in ["infra/modules", "examples"] {
        let mut found: Vec<PathBuf> =
            std::fs::read_dir(root.join(parent)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        found.sort();
        dirs.extend(found);
    }
    dirs
}

fn all_undeclared(root: &Path) -> Vec<String> {
    module_dirs(root).iter().flat_map(|d| undeclared(d).unwrap_or_else(|e| vec![e])).collect()
}

/// Each module planned with its defaults, each example (strictly: its
/// preconditions must hold) with what it gives the modules it calls.
fn all_plan_problems(root: &Path) -> Vec<String> {
    module_dirs(root)
        .iter()
        .flat_map(|d| {
            let strict = d.starts_with(root.join("examples"));
            plan(d, BTreeMap::new(), strict).unwrap_or_else(|e| vec![e])
        })
        .collect()
}

#[test]
fn every_reference_in_the_modules_and_examples_is_declared() {
    let dirs = module_dirs(&repo());
    assert!(dirs.len() >= 6, "the root module, two submodules and three examples: {dirs:?}");
    let problems = all_undeclared(&repo());
    assert!(problems.is_empty(), "undeclared references:\n{}", problems.join("\n"));
}

#[test]
fn every_module_and_example_evaluates_as_terraform_would_plan_it() {
    let problems = all_plan_problems(&repo());
    assert!(problems.is_empty(), "what terraform plan would refuse:\n{}", problems.join("\n"));
}

/// The root module with every kind of source and channel given as known
/// values, so each `for_each` and `dynamic` block runs over real elements
/// (an example's inputs are partly known only at plan).
#[test]
fn the_module_plans_with_every_kind_of_source_and_channel() {
    let inputs = |json: serde_json::Value| -> BTreeMap<String, Value> {
        let Value::Map(m) = Value::from_json(&json) else { panic!("an object") };
        m
    };
    let listed = inputs(serde_json::json!({
        "lambda_zip_path": "build/tf-lock-reaper-lambda-arm64.zip",
        "lock_tables": ["terraform-state-locks", "arn:aws:dynamodb:us-east-1:111111111111:table/locks"],
        "lock_buckets": ["tfstate", "tfstate-shared/teams/", "tfstate-b/x/@us-east-1:111111111111"],
        "assume_role_arns": ["arn:aws:iam::111111111111:role/tf-lock-reaper-access"],
        "sources_uri": "s3://tf-lock-reaper-config/sources.json",
        "action": "delete",
        "pagerduty_routing_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pd-AbCdEf",
        "slack_channel": { "workspace_id": "T0123", "channel_id": "C0123" },
        "metrics_sink": "api",
        "enable_xray": true,
        "per_source_alarms": true,
    }));
    let discovered = inputs(serde_json::json!({
        "lambda_s3_object": { "bucket": "releases", "key": "tf-lock-reaper-lambda-arm64.zip" },
        "organization": {
            "organization_id": "o-abcdefghij",
            "accounts": ["all"],
            "member_role_name": "tf-lock-reaper-access",
            "role_arn": "arn:aws:iam::999999999999:role/org-reader",
            "tables": ["terraform-*"],
            "buckets": ["tag:tf-lock-reaper=lockfiles", "tfstate-*/teams/"],
        },
        "action": "ttl",
        "dry_run": true,
    }));
    for given in [listed, discovered] {
        let problems = plan(&repo().join("infra"), given.clone(), true).unwrap();
        assert!(problems.is_empty(), "{given:?}:\n{}", problems.join("\n"));
    }
}

/// `check "organization_memory"`: `terraform plan` warns when an
/// organisation's cold pass, projected at the memory size given, would
/// take more than a third of the timeout in CPU alone; the defaults (512 MB
/// with an organisation) and every example plan without a warning.
#[test]
fn too_little_memory_for_an_organisation_is_a_plan_warning() {
    let with = |extra: serde_json::Value| -> BTreeMap<String, Value> {
        let mut json = serde_json::json!({
            "lambda_zip_path": "build/tf-lock-reaper-lambda-arm64.zip",
            "organization": { "organization_id": "o-abcdefghij", "accounts": ["all"], "member_role_name": "tf-lock-reaper-access" },
        });
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        let Value::Map(m) = Value::from_json(&json) else { panic!("an object") };
        m
    };
    let infra = repo().join("infra");
    let warned = warnings(&infra, with(serde_json::json!({ "memory_size": 128 }))).unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    for needle in ["memory_size = 128 MB", "7% of a vCPU", "60 s timeout", "Raise memory_size"] {
        assert!(warned[0].contains(needle), "{needle:?} not in {}", warned[0]);
    }
    for quiet in [
        serde_json::json!({}),
        serde_json::json!({ "memory_size": 256 }),
        serde_json::json!({ "memory_size": 128, "timeout": 300 }),
        serde_json::json!({ "memory_size": 128, "organization": null, "lock_tables": ["locks"] }),
    ] {
        let warned = warnings(&infra, with(quiet.clone())).unwrap();
        assert!(warned.is_empty(), "{quiet}: {warned:?}");
        assert!(plan(&infra, with(quiet.clone()), true).unwrap().is_empty(), "{quiet}");
    }
    for example in module_dirs(&repo()).iter().filter(|d| d.starts_with(repo().join("examples"))) {
        let warned = warnings(example, BTreeMap::new()).unwrap();
        assert!(warned.is_empty(), "{}: {warned:?}", example.display());
    }
}

/// A copy of `infra/` and `examples/` to plant errors in.
fn copy_of_the_modules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
        assert!(status.success());
    };
    copy(&repo().join("infra"), dir.path());
    copy(&repo().join("examples"), dir.path());
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut old = std::fs::read_to_string(path).unwrap();
    old.push_str(text);
    std::fs::write(path, old).unwrap();
}

fn assert_found(problems: &[String], needles: &[&str]) {
    for needle in needles {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_reference_check_fails_on_planted_undeclared_names_and_module_inputs() {
    let copy = copy_of_the_modules();
    let root = copy.path();
    assert!(all_undeclared(root).is_empty(), "the copy starts clean");
    // An undeclared local and variable in the root module, a removed output
    // the example still reads, a resource that does not exist, `each` without for_each.
    edit(&root.join("infra/iam.tf"), "actions   = local.lock_table_actions", "actions   = local.lock_table_actionz");
    edit(
        &root.join("infra/lambda.tf"),
        "retention_in_days = var.log_retention_days",
        "retention_in_days = var.log_retention",
    );
    edit(&root.join("infra/outputs.tf"), "output \"dashboard_name\"", "output \"dashboard\"");
    edit(
        &root.join("infra/alarms.tf"),
        "aws_lambda_function.this.function_name }",
        "aws_lambda_function.that.function_name }",
    );
    append(&root.join("infra/alarms.tf"), "\nlocals {\n  planted = each.key\n}\n");
    // An example passing an input the module does not have, and a submodule call missing a required one.
    edit(
        &root.join("examples/complete/main.tf"),
        "architecture    = \"arm64\"",
        "architecture    = \"arm64\"\n  architecturez   = \"arm64\"",
    );
    edit(&root.join("examples/organization/main.tf"), "  organizational_unit_ids = var.workload_ou_ids\n", "");
    let problems = all_undeclared(root);
    assert_found(
        &problems,
        &[
            "local.lock_table_actionz is not declared",
            "var.log_retention is not declared",
            "module.tf_lock_reaper.dashboard_name: ",
            "has no output \"dashboard_name\"",
            "aws_lambda_function.that is not declared",
            "each.* is used where no each is in scope",
            "architecturez is not an input of",
            "the required input organizational_unit_ids of",
        ],
    );
    eprintln!("planted, and found:\n{}", problems.join("\n"));
}

#[test]
fn the_offline_plan_fails_on_planted_type_errors_missing_attributes_and_unplannable_for_each() {
    let copy = copy_of_the_modules();
    let root = copy.path();
    assert!(all_plan_problems(root).is_empty(), "the copy starts clean");
    // `for_each` over a list (a tuple) instead of a map or set.
    edit(
        &root.join("infra/modules/member-access-stackset/main.tf"),
        "for_each       = toset(var.regions)",
        "for_each       = var.regions",
    );
    // A dynamic block reading an attribute its elements do not have.
    edit(
        &root.join("infra/iam.tf"),
        "resources = [\"arn:${local.partition}:s3:::${statement.value.bucket}\"]",
        "resources = [\"arn:${local.partition}:s3:::${statement.value.bucket_name}\"]",
    );
    // An example giving a list where the module wants a string, and an
    // object attribute the type does not declare.
    edit(&root.join("examples/complete/main.tf"), "delete_after          = \"6h\"", "delete_after          = [\"6h\"]");
    edit(
        &root.join("examples/organization/main.tf"),
        "member_role_name = \"tf-lock-reaper-access\"",
        "member_role_name = \"tf-lock-reaper-access\"\n    member_role      = \"x\"",
    );
    // A for_each keyed by a bucket's computed ID: known only after apply (per-source alarms on).
    edit(
        &root.join("examples/complete/main.tf"),
        "lock_buckets = [aws_s3_bucket.state.bucket]",
        "lock_buckets = [aws_s3_bucket.state.id]\n  per_source_alarms = true",
    );
    // A local whose conditional mixes a list and a string; a precondition an example fails.
    append(&root.join("infra/locals.tf"), "\nlocals {\n  mixed = var.dry_run ? [] : \"none\"\n}\n");
    edit(
        &root.join("examples/multi-account/main.tf"),
        "source = \"../../infra\"",
        "source = \"../../infra\"\n  lambda_s3_object = { bucket = \"b\", key = \"k\" }",
    );
    let problems = all_plan_problems(root);
    assert_found(
        &problems,
        &[
            "aws_cloudformation_stack_set_instance.member_access: for_each over a list",
            "no attribute \"bucket_name\"",
            "var.delete_after: a string required, got a list",
            "no attribute \"member_role\" in the type",
            "aws_cloudwatch_metric_alarm.per_source: for_each keys depend on values known only after apply",
            "local.mixed: the results of",
            "precondition fails: Set exactly one of lambda_zip_path",
        ],
    );
    eprintln!("planted, and found:\n{}", problems.join("\n"));
}
