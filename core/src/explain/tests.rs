//! `explain` on what people paste: Terraform's error in each version's
//! shape, items, lockfiles, backend blocks, digest mismatches; and on
//! anything at all (proptest), never a panic and never an escape byte or a
//! pasted secret in the answer.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 14, 0, 0).unwrap()
}

fn opts() -> Options {
    Options {
        now: Some(now()),
        clock: "the clock --now gave".into(),
        stale_after: std::time::Duration::from_secs(7200),
        redact: false,
    }
}

fn run(input: &str) -> Explanation {
    explain(input, &opts()).unwrap_or_else(|e| panic!("{e}: {input}"))
}

fn scenarios(e: &Explanation) -> Vec<&'static str> {
    e.findings.iter().map(|f| f.scenario).collect()
}

/// Terraform 1.15's error as a CI log shows it: timestamps, colours, the box.
const TF_115_TABLE: &str = "2026-11-26T13:59:58.1234567Z \u{1b}[31m╷\u{1b}[0m\u{1b}[0m
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m \u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mError acquiring the state lock\u{1b}[0m
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m 
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m \u{1b}[0mError message: operation error DynamoDB: PutItem, https response error
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m StatusCode: 400, RequestID: X, ConditionalCheckFailedException: The
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m conditional request failed
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m Lock Info:
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   ID:        db4f693e-8b1b-8e4c-d741-a4c77006cd79
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Path:      tfstate/prod/terraform.tfstate
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Operation: OperationTypeApply
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Who:       root@vm
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Version:   1.15.5
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Created:   2026-11-26 11:19:00.883491576 +0000 UTC
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m   Info:      
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m 
2026-11-26T13:59:58.1234567Z \u{1b}[31m│\u{1b}[0m Terraform acquires a state lock to protect the state from being written
2026-11-26T13:59:58.1234567Z \u{1b}[31m╵\u{1b}[0m\u{1b}[0m
";

/// Terraform 0.12–0.14: no box, tab-indented, another first line.
const TF_012: &str = "Error: Error locking state: Error acquiring the state lock: ConditionalCheckFailedException: The conditional request failed
\tstatus code: 400, request id: 7Q
Lock Info:
  ID:        5c2b1f0e-0000-1111-2222-333344445555
  Path:      tfstate/env:/staging/app/terraform.tfstate
  Operation: OperationTypePlan
  Who:       ci@runner-7
  Version:   0.12.31
  Created:   2026-11-26 13:30:00.1 +0000 UTC
  Info:
";

#[test]
fn terraform_1_15_error_in_a_ci_log_is_a_stale_table_lock_with_conditional_commands() {
    let e = run(TF_115_TABLE);
    assert_eq!(e.locks.len(), 1, "{e:#?}");
    let l = &e.locks[0];
    assert_eq!(
        (l.id.as_str(), l.path.as_str(), l.kind),
        ("db4f693e-8b1b-8e4c-d741-a4c77006cd79", "tfstate/prod/terraform.tfstate", "table")
    );
    assert_eq!(
        (l.who.as_str(), l.operation.as_str(), l.workspace.as_str()),
        ("root@vm", "OperationTypeApply", "default")
    );
    assert_eq!(l.age_seconds, Some(2 * 3600 + 40 * 60 + 59), "{l:?}");
    assert_eq!(scenarios(&e), ["stale", "table-unknown"]);
    let names: Vec<&str> = e.commands.iter().map(|c| c.name).collect();
    assert_eq!(names, ["tf_lock_reaper_unlock", "terraform_force_unlock"], "no table name: no aws command");
    // With the backend block, the conditional delete on the ID, in the backend's region.
    let with_backend = format!(
        "{TF_115_TABLE}\nterraform {{\n  backend \"s3\" {{\n    bucket = \"tfstate\"\n    key = \"prod/terraform.tfstate\"\n    region = \"eu-west-1\"\n    dynamodb_table = \"locks\"\n  }}\n}}\n"
    );
    let e = run(&with_backend);
    let aws = e.commands.iter().find(|c| c.name == "aws_cli").expect("aws_cli");
    assert!(
        aws.command.starts_with("aws --region 'eu-west-1' dynamodb delete-item --table-name 'locks'"),
        "{}",
        aws.command
    );
    assert!(aws.command.contains(r#"'contains(Info, :id)' --expression-attribute-values '{":id":{"S":"\"ID\":\"db4f693e-8b1b-8e4c-d741-a4c77006cd79\""}}'"#));
    assert_eq!(e.commands.last().unwrap().name, "terraform_force_unlock");
    assert!(scenarios(&e).contains(&"dynamodb-table-deprecated"));
    let text = render_text(&e);
    assert!(!text.contains('\u{1b}') && text.contains("commands, safest first"), "{text}");
}

#[test]
fn terraform_0_12_error_with_a_workspace_is_young() {
    let e = run(TF_012);
    let l = &e.locks[0];
    assert_eq!((l.workspace.as_str(), l.version.as_str(), l.kind), ("staging", "0.12.31", "table"));
    assert_eq!(l.age_seconds, Some(1799));
    assert_eq!(scenarios(&e)[0], "young");
}

#[test]
fn a_get_item_output_gives_the_exact_info_condition_and_a_scan_skips_digests() {
    let info = r#"{"ID":"acc6180d-b64e-dfb1-0af2-ab82bcc48b40","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.15.5","Created":"2026-11-26T11:19:18.379846558Z","Path":"tfstate/prod/terraform.tfstate"}"#;
    let get_item =
        serde_json::json!({"Item": {"LockID": {"S": "tfstate/prod/terraform.tfstate"}, "Info": {"S": info}}});
    let backend = "backend \"s3\" {\n  bucket = \"tfstate\"\n  key = \"prod/terraform.tfstate\"\n  dynamodb_table = \"locks\"\n  use_lockfile = true\n}\n";
    let e = run(&format!("{get_item:#}\n{backend}"));
    assert_eq!(e.locks[0].kind, "double", "the backend takes both");
    let aws = e.commands.iter().find(|c| c.name == "aws_cli").unwrap();
    let values = serde_json::json!({":info": {"S": info}}).to_string();
    assert!(
        aws.command
            .ends_with(&format!("--condition-expression 'Info = :info' --expression-attribute-values '{values}'")),
        "{}",
        aws.command
    );
    assert!(e.commands.iter().any(|c| c.name == "aws_cli_lockfile_etag"), "no ETag given: how to read it");
    let scan = serde_json::json!({"Items": [
        {"LockID": {"S": "tfstate/prod/terraform.tfstate-md5"}, "Digest": {"S": "0cc175b9c0f1b6a831c399e269772661"}},
        {"LockID": {"S": "tfstate/prod/terraform.tfstate"}, "Info": {"S": info}},
        {"LockID": {"S": "tfstate/x"}, "Info": {"S": "not json"}},
    ], "Count": 3});
    let e = run(&scan.to_string());
    assert_eq!(e.locks.len(), 1);
    assert_eq!(scenarios(&e), ["not-a-lock", "unreadable", "stale", "table-unknown"]);
}

#[test]
fn a_lockfile_body_with_its_head_object_output_is_deleted_on_its_etag() {
    let body = r#"{"ID":"acc6180d","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.15.5","Created":"2026-11-26T11:19:18Z","Path":"tfstate/staging/net/terraform.tfstate"}"#;
    let head = r#"{
    "AcceptRanges": "bytes",
    "LastModified": "2026-11-26T11:19:18+00:00",
    "ContentLength": 190,
    "ETag": "\"9b2cf535f27731c974343645a3985328\"",
    "ContentType": "binary/octet-stream"
}"#;
    let e = run(&format!("{body}\n{head}\n"));
    assert_eq!(e.locks[0].kind, "lockfile");
    let c = e.commands.iter().find(|c| c.name == "aws_cli_lockfile").expect("the delete on the ETag");
    assert_eq!(
        c.command,
        r#"aws s3api delete-object --bucket 'tfstate' --key 'staging/net/terraform.tfstate.tflock' --if-match '"9b2cf535f27731c974343645a3985328"'"#
    );
}

#[test]
fn path_drift_names_both_keys_and_the_fix_restores_the_old_one() {
    let backend = "terraform {\n  backend \"s3\" {\n    bucket         = \"tfstate\"\n    key            = \"prod/network.tfstate\"\n    dynamodb_table = \"locks\"\n    use_lockfile   = true\n  }\n}\n";
    let e = run(&format!("{TF_115_TABLE}\n{backend}"));
    let drift = e.findings.iter().find(|f| f.scenario == "path-drift").expect("drift");
    assert!(
        drift.summary.contains("tfstate/prod/terraform.tfstate")
            && drift.summary.contains("tfstate/prod/network.tfstate")
    );
    let fix = e.backend_fix.as_deref().expect("a diff");
    assert!(
        fix.contains("-    key            = \"prod/network.tfstate\"")
            && fix.contains("+    key = \"prod/terraform.tfstate\""),
        "{fix}"
    );
}

#[test]
fn no_locking_is_found_and_fixed_with_use_lockfile_and_credentials_never_echo() {
    let backend = "backend \"s3\" {\n  bucket     = \"tfstate\"\n  key        = \"app.tfstate\"\n  access_key = \"AKIAIOSFODNN7EXAMPLE\"\n  secret_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n}\n";
    let e = run(&backend.replace("}\n", "  assume_role {\n    role_arn    = \"arn:aws:iam::123456789012:role/tf\"\n    external_id = \"s3cr3t-ext\"\n  }\n}\n"));
    assert_eq!(scenarios(&e), ["no-locking", "credentials-pasted"]);
    let shown = format!("{}{}", render_text(&e), serde_json::to_string(&e).unwrap());
    assert!(!shown.contains("s3cr3t-ext"), "{shown}");
    let fix = e.backend_fix.as_deref().unwrap();
    assert!(fix.contains("+  use_lockfile = true"), "{fix}");
    let all = format!("{}{}", render_text(&e), serde_json::to_string(&e).unwrap());
    assert!(!all.contains("AKIAIOSFODNN7EXAMPLE") && !all.contains("wJalrXUtnFEMI"), "{all}");
}

#[test]
fn the_digest_mismatch_gives_the_conditional_digest_write() {
    let error = "Error: error loading state: state data in S3 does not have the expected content.\n\nThis may be caused by unusually long delays in S3 processing a previous state\nupdate.  Please wait for a minute or two and try again. If this problem\npersists, and neither S3 nor DynamoDB are experiencing an outage, you may need\nto manually verify the remote state and update the Digest value stored in the\nDynamoDB table to the following value: 9b2cf535f27731c974343645a3985328\n";
    let backend =
        "bucket = \"tfstate\"\nkey = \"prod/terraform.tfstate\"\ndynamodb_table = \"locks\"\nuse_lockfile = true\n";
    let e = run(&format!("{error}\n{backend}"));
    assert_eq!(scenarios(&e), ["digest-mismatch"]);
    let names: Vec<&str> = e.commands.iter().map(|c| c.name).collect();
    assert_eq!(names, ["aws_cli_digest_read", "aws_cli_digest"]);
    assert!(e.commands[1].command.contains(r#"'{"LockID":{"S":"tfstate/prod/terraform.tfstate-md5"}}'"#));
}

#[test]
fn redact_masks_account_ids_and_nothing_recognised_is_an_error() {
    assert_eq!(mask_accounts("x arn:aws:iam::123456789012:role/r y"), "x arn:aws:iam::************:role/r y");
    assert_eq!(explain("hello world\nnothing here", &opts()).unwrap_err(), NothingRecognised);
    assert!(NothingRecognised.to_string().starts_with("nothing recognised: paste Terraform's"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    /// Anything at all: an answer or "nothing recognised", never a panic,
    /// never a control character in the answer.
    #[test]
    fn any_text_is_answered_without_a_panic(input in ".{0,400}") {
        if let Ok(e) = explain(&input, &opts()) {
            let text = render_text(&e);
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        }
    }

    /// Real inputs cut, spliced and sprinkled with bytes: the same.
    #[test]
    fn mutated_real_inputs_are_answered_without_a_panic(
        which in 0usize..3,
        cut in 0usize..2000,
        at in 0usize..2000,
        noise in "[\\x00-\\x7f{}\"│\u{1b}]{0,20}",
    ) {
        let base = [TF_115_TABLE, TF_012, r#"{"Items":[{"LockID":{"S":"a/b"},"Info":{"S":"{\"ID\":\"x\",\"Created\":\"2026-11-26T11:19:18Z\"}"}}]}"#][which];
        let mut s: String = base.chars().take(cut).collect();
        let at = at.min(s.chars().count());
        let byte = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
        s.insert_str(byte, &noise);
        if let Ok(e) = explain(&s, &opts()) {
            let json = serde_json::to_string(&e).unwrap();
            prop_assert!(!json.contains(char::from(27)), "an escape byte in the answer");
        }
    }
}

#[test]
fn deep_nesting_and_megabytes_are_bounded() {
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let _ = explain(&deep, &opts());
    let item = r#"{"LockID":{"S":"tfstate/k"},"Info":{"S":"{\"ID\":\"i\",\"Created\":\"2026-11-26T11:19:18Z\"}"}}"#;
    let big = format!("{{\"Items\":[{}]}}", vec![item; 20_000].join(","));
    assert!(big.len() > 1_000_000);
    let e = explain(&big, &opts()).unwrap();
    assert!(e.commands.len() <= COMMANDED_LOCKS * 5, "{}", e.commands.len());
}
