//! Errors a person reads: for each failure that can be produced locally, the
//! exact readable line the CLI prints, from a real failure (moto over
//! loopback, a closed port, a proxy that throttles or never answers, an
//! empty credential chain), and never an SDK Debug chain or a colour code.
//! Access denied, expired tokens and clock skew, which nothing local
//! produces, are tested on the classifier with `aws-smithy-mocks` in
//! `src/adapters/aws_error.rs`.

use std::process::{Command, Output, Stdio};

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;

/// What no default output may contain.
const DEBUG_NOISE: [&str; 5] = ["DispatchFailure", "ServiceError {", "ErrorMetadata", "\u{1b}[", "ConnectorError"];

fn reaper(env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tf-lock-reaper")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_clean(out: &Output) {
    let (stdout, stderr) = text(out);
    for noise in DEBUG_NOISE {
        assert!(!stdout.contains(noise) && !stderr.contains(noise), "{noise:?} in the output:\n{stdout}\n{stderr}");
    }
}

/// The line about `source` in `list`'s output.
fn line_about<'a>(stdout: &'a str, source: &str) -> &'a str {
    stdout.lines().find(|l| l.starts_with(source)).unwrap_or_else(|| panic!("no line for {source} in:\n{stdout}"))
}

fn env_with(moto: &Moto, endpoint: &str) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), endpoint.into()));
    env
}

#[test]
fn no_credentials_is_said_once_with_the_providers_tried_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (config, credentials) = (dir.path().join("config"), dir.path().join("credentials"));
    std::fs::write(&config, "").unwrap();
    std::fs::write(&credentials, "").unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        // The chain never tries the instance metadata address: loopback only.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = reaper(&env, &["list", "--table", "locks", "--table", "other-locks", "--bucket", "tfstate"]);
    assert_eq!(out.status.code(), Some(2));
    let (stdout, stderr) = text(&out);
    assert!(stdout.is_empty(), "no source was read: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "said once for the whole run: {stderr}");
    assert!(
        stderr.starts_with(
            "error: no AWS credentials found (tried environment variables, the web identity token, \
            the shared config and credentials files"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("set AWS_PROFILE, run `aws sso login`"), "{stderr}");
    assert_clean(&out);
}

#[tokio::test]
async fn a_missing_table_and_a_missing_bucket_name_the_region() {
    let moto = Moto::start();
    let out = reaper(&moto.env(), &["list", "--table", "no-such-table", "--bucket", "no-such-bucket"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = text(&out);
    assert_eq!(
        line_about(&stdout, "table no-such-table"),
        "table no-such-table: SCAN FAILED: Scan on table no-such-table failed: table no-such-table does not exist \
            in region us-east-1 for the account of the credentials in use; a wrong AWS_REGION (or account) is the \
            usual cause"
    );
    assert_eq!(
        line_about(&stdout, "bucket no-such-bucket"),
        "bucket no-such-bucket: SCAN FAILED: ListObjectsV2 on bucket no-such-bucket failed: bucket no-such-bucket \
            does not exist in region us-east-1 for the account of the credentials in use; a wrong AWS_REGION (or \
            account) is the usual cause"
    );
    assert!(stderr.is_empty(), "the failure is shown once, not again as a log line: {stderr}");
    assert_clean(&out);

    // The JSON report carries the kind next to the text.
    let out = reaper(&moto.env(), &["list", "--table", "no-such-table", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["error_kind"], "not-found");
}

#[test]
fn a_closed_port_is_unreachable_with_host_and_port() {
    let moto = Moto::start();
    let port = closed_port();
    let out = reaper(&env_with(&moto, &format!("http://127.0.0.1:{port}")), &["list", "--table", "locks"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    assert_eq!(
        line_about(&stdout, "table locks"),
        format!(
            "table locks: SCAN FAILED: Scan on table locks failed: cannot reach 127.0.0.1:{port} (connection \
            refused); check AWS_ENDPOINT_URL, AWS_REGION and the network path"
        )
    );
    assert_clean(&out);
    // The full chain is there on request, on stderr.
    let out = reaper(&env_with(&moto, &format!("http://127.0.0.1:{port}")), &["-v", "list", "--table", "locks"]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("AWS call failed") && stderr.contains("DispatchFailure"), "{stderr}");
}

#[test]
fn a_server_that_never_answers_times_out_and_says_which_timeout() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port);
    proxy.always("Scan", None, Fault::NeverAnswer);
    let mut env = env_with(&moto, &proxy.url);
    env.push(("RUN_BUDGET".into(), "4s".into()));
    let out = reaper(&env, &["list", "--table", "locks"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    let line = line_about(&stdout, "table locks");
    let host = proxy.url.trim_start_matches("http://");
    assert!(
        line.starts_with(&format!(
            "table locks: SCAN FAILED: Scan on table locks failed: no answer from {host} within the per-"
        )),
        "{line}"
    );
    // RUN_BUDGET=4s: 1s per attempt, 2s per operation; the line names the one that ran out.
    assert!(
        line.contains("per-attempt timeout of 1s (derived from RUN_BUDGET)")
            || line.contains("per-operation timeout of 2s (derived from RUN_BUDGET)"),
        "{line}"
    );
    assert!(line.ends_with("; check the network path or raise RUN_BUDGET"), "{line}");
    assert_clean(&out);
}

#[tokio::test]
async fn throttling_after_every_retry_says_so() {
    let moto = Moto::start();
    create_lock_table(&moto.dynamo().await, "locks").await;
    let proxy = FaultProxy::start(moto.port);
    proxy.always("Scan", None, Fault::Throttle);
    let out = reaper(&env_with(&moto, &proxy.url), &["list", "--table", "locks"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    assert_eq!(
        line_about(&stdout, "table locks"),
        "table locks: SCAN FAILED: Scan on table locks failed: throttled after all retries (ThrottlingException); \
            lower SCAN_SEGMENTS or run less often"
    );
    assert!(proxy.requests("Scan").len() >= 3, "the SDK retried first");
    assert_clean(&out);
}
