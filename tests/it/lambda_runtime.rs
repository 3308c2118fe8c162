//! The Lambda binary end to end: a real HTTP server on 127.0.0.1 speaks the
//! Lambda Runtime API (as `cargo lambda watch` would), hands the binary an
//! event with the 1970 deadline local emulators send, and captures the
//! report it returns; the binary talks to `moto_server` for DynamoDB.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// Serve one invocation of `event`; return what the function posted back.
fn serve_one(server: &tiny_http::Server, event: &str, deadline_ms: u64) -> (String, String) {
    loop {
        let mut req = server.recv_timeout(Duration::from_secs(60)).unwrap().expect("the runtime polled");
        let url = req.url().to_string();
        if url.ends_with("/invocation/next") {
            let resp = tiny_http::Response::from_string(event)
                .with_header("Lambda-Runtime-Aws-Request-Id: req-1".parse::<tiny_http::Header>().unwrap())
                .with_header(format!("Lambda-Runtime-Deadline-Ms: {deadline_ms}").parse::<tiny_http::Header>().unwrap())
                .with_header(
                    "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:tf-lock-reaper"
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
            req.respond(resp).unwrap();
        } else {
            let mut body = String::new();
            req.as_reader().read_to_string(&mut body).unwrap();
            req.respond(tiny_http::Response::from_string("{}").with_status_code(202)).unwrap();
            return (url, body);
        }
    }
}

/// The Lambda binary as the Lambda service starts it, its Runtime API on
/// loopback `port`, against moto, with `env` on top.
fn lambda(moto: &Moto, port: u16, env: &[(&str, &str)]) -> Command {
    lambda_binary(env!("CARGO_BIN_EXE_tf-lock-reaper-lambda").as_ref(), moto, port, env)
}

/// `binary` as the Lambda service starts it (the built `bootstrap` of a release too).
fn lambda_binary(binary: &std::path::Path, moto: &Moto, port: u16, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.envs(moto.env())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "tf-lock-reaper")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tf-lock-reaper")
        .envs(env.iter().copied());
    cmd
}

/// Run the Lambda binary for one invocation of `event` (with the 1970
/// deadline local emulators send) against moto; returns what it posted back
/// and its stdout and stderr.
fn invoke(moto: &Moto, env: &[(&str, &str)], event: &'static str) -> (String, String, String, String) {
    invoke_binary(env!("CARGO_BIN_EXE_tf-lock-reaper-lambda").as_ref(), moto, env, event)
}

/// `invoke`, of another build of the Lambda binary.
pub(crate) fn invoke_binary(
    binary: &std::path::Path,
    moto: &Moto,
    env: &[(&str, &str)],
    event: &'static str,
) -> (String, String, String, String) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let mut child = lambda_binary(binary, moto, port, env)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let got = serve_one(&server, event, 600_000);
        tx.send(got).unwrap();
        server // keep the socket open until the child is gone
    });
    let (url, body) = rx.recv_timeout(Duration::from_secs(90)).expect("the function answered");
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    drop(handle.join());
    (
        url,
        body,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_event_with_dry_run_returns_the_report_and_emits_emf() {
    let moto = Moto::start();
    let client = moto.dynamo().await;
    create_lock_table(&client, "locks").await;
    put_lock(&client, "locks", "tfstate/app/terraform.tfstate", "stale-1", hours(5)).await;
    let before = snapshot(&client, "locks").await;

    // An EventBridge Scheduler event carrying dry_run, with the emulator's 1970 deadline.
    let event = r#"{"source":"tf-lock-reaper.schedule","dry_run":true}"#;
    let env = [("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "3h")];
    let (url, body, stdout, stderr) = invoke(&moto, &env, event);

    assert_eq!(url, "/2018-06-01/runtime/invocation/req-1/response", "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["partial"], false, "a 1970 deadline means unknown, not expired");
    assert_eq!(report["sources"][0]["locks"][0]["action"], "dry-run");
    assert_eq!(snapshot(&client, "locks").await, before, "dry run wrote nothing");

    let emf: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 2, "EMF is the Lambda's default sink: {stdout}");
    assert_eq!(emf[0]["StaleLocks"], 1.0);
    let log = stderr.lines().find(|l| l.contains("run finished")).unwrap_or_else(|| panic!("no run log: {stderr}"));
    let log: serde_json::Value = serde_json::from_str(log).expect("JSON logs under AWS_LAMBDA_LOG_FORMAT=JSON");
    assert_eq!(log["ok"], true);
    assert_eq!(report["totals"]["sources"], 1);
    // Each source with something to report has its line in the log, past the summary's cap too.
    let line = stderr.lines().find(|l| l.contains("source report")).unwrap_or_else(|| panic!("{stderr}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!((line["source"].as_str(), line["stale"].as_u64()), (Some("locks"), Some(1)), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_one_structured_error_line_and_a_readable_summary() {
    let moto = Moto::start();
    let (_, body, _, stderr) = invoke(&moto, &[("LOCK_TABLES", "no-such-table")], r#"{"source":"aws.scheduler"}"#);
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["sources"][0]["error_kind"], "not-found");
    let text = summary["sources"][0]["scan_error"].as_str().unwrap();
    assert!(
        text.starts_with("Scan on table no-such-table failed: table no-such-table does not exist in region us-east-1"),
        "{text}"
    );
    let errors: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "one error line per failure: {stderr}");
    assert_eq!(errors[0]["error_kind"], "not-found");
    for noise in ["DispatchFailure", "ServiceError {", "ErrorMetadata", "\u{1b}["] {
        assert!(!stderr.contains(noise) && !body.contains(noise), "{noise} in {stderr}");
    }
}

#[test]
fn configuration_errors_stop_the_container_with_every_problem_logged() {
    let out = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper-lambda"))
        .env_clear()
        .env("LOCK_TABLES", "locks")
        .env("STALE_AFTER", "forever")
        .env("ACTION", "delete")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STALE_AFTER") && stderr.contains("DELETE_AFTER"), "{stderr}");
}

/// A warm container serving one invocation after another: each `go` on
/// the channel lets one more invocation through; its posted body comes back.
fn warm_container(
    moto: &Moto,
    env: &[(&str, &str)],
) -> (mpsc::Sender<()>, mpsc::Receiver<String>, std::process::Child) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let child = lambda(moto, port, env).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let (go, gate) = mpsc::channel::<()>();
    let (tx, bodies) = mpsc::channel();
    std::thread::spawn(move || {
        while gate.recv().is_ok() {
            let (_, body) = serve_one(&server, r#"{"source":"aws.scheduler"}"#, 600_000);
            if tx.send(body).is_err() {
                break;
            }
        }
    });
    (go, bodies, child)
}

/// `DISCOVER_EVERY`: a warm container discovers once, keeps what it found
/// for that long (a table created meanwhile is not seen, and nothing is
/// listed again), then discovers afresh. Each table holds a stale lock, so
/// the summary lists it (it lists only sources with something to report).
#[tokio::test(flavor = "multi_thread")]
async fn a_warm_container_discovers_once_per_discover_every() {
    let moto = Moto::start();
    let orgs = aws_sdk_organizations::Client::new(&moto.sdk().await);
    orgs.create_organization().send().await.expect("create organisation");
    let client = moto.dynamo().await;
    create_lock_table(&client, "first-locks").await;
    put_lock(&client, "first-locks", "tfstate/a/terraform.tfstate", "stale-a", hours(5)).await;
    let env =
        [("ORGANIZATION_ACCOUNTS", "all"), ("MEMBER_ROLE_NAME", "tf-lock-reaper-access"), ("DISCOVER_EVERY", "4s")];
    let (go, bodies, mut child) = warm_container(&moto, &env);
    let invoke = || {
        go.send(()).unwrap();
        let body = bodies.recv_timeout(Duration::from_secs(90)).expect("the function answered");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names: Vec<String> =
            v["sources"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(v["totals"]["sources"], names.len(), "every source here has something to report: {v:#}");
        (v["discovery"]["discovered_at"].as_str().unwrap_or_default().to_string(), names)
    };
    let (first_at, first) = invoke();
    assert_eq!(first, ["first-locks"]);
    create_lock_table(&client, "second-locks").await;
    put_lock(&client, "second-locks", "tfstate/b/terraform.tfstate", "stale-b", hours(5)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (again_at, again) = invoke();
    assert_eq!((again_at.as_str(), again.as_slice()), (first_at.as_str(), first.as_slice()), "kept, not listed again");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (later_at, later) = invoke();
    assert_ne!(later_at, first_at, "discovered afresh");
    assert_eq!(later, ["first-locks", "second-locks"]);
    drop(go);
    let _ = child.kill();
    let _ = child.wait();
}
