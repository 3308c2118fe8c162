//! The explain page (`make web` builds it into `target/web/`) in a real
//! browser: Debian's chromium driven by playwright-core (`tests/web/`),
//! served on loopback. For each pasted input the page shows the same
//! commands as `tf-lock-reaper explain --json`; it makes no request after
//! it has loaded and still answers with the network routed to nothing; a
//! pasted credential is never shown; the text area has a label and the
//! answer is a region named "Diagnosis".

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{explain_json, venv_bin};

fn site() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web")
}

/// Serve `target/web` on loopback; the URL.
fn serve() -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", server.server_addr().to_ip().expect("an IP address"));
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let path = request.url().split('?').next().unwrap_or("/").trim_start_matches('/').to_string();
            let path = if path.is_empty() { "index.html".to_string() } else { path };
            let file = site().join(&path);
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("svg") => "image/svg+xml",
                Some("wasm") => "application/wasm",
                _ => "application/octet-stream",
            };
            let response = match std::fs::read(&file) {
                Ok(bytes) if !path.contains("..") => tiny_http::Response::from_data(bytes)
                    .with_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes()).expect("header")),
                _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    url
}

/// `explain --json` of the CLI for the same input.
fn cli_commands(input: &str) -> Vec<String> {
    let answer = explain_json(input, &[]);
    answer["commands"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap().to_string()).collect()
}

const ERROR: &str = "\u{1b}[31m╷\u{1b}[0m
\u{1b}[31m│\u{1b}[0m \u{1b}[1m\u{1b}[31mError: \u{1b}[0mError acquiring the state lock
\u{1b}[31m│\u{1b}[0m Error message: operation error DynamoDB: PutItem, https response error StatusCode: 400,
\u{1b}[31m│\u{1b}[0m RequestID: X, ConditionalCheckFailedException: The conditional request failed
\u{1b}[31m│\u{1b}[0m Lock Info:
\u{1b}[31m│\u{1b}[0m   ID:        db4f693e-8b1b-8e4c-d741-a4c77006cd79
\u{1b}[31m│\u{1b}[0m   Path:      tfstate/prod/terraform.tfstate
\u{1b}[31m│\u{1b}[0m   Operation: OperationTypeApply
\u{1b}[31m│\u{1b}[0m   Who:       root@vm
\u{1b}[31m│\u{1b}[0m   Version:   1.15.5
\u{1b}[31m│\u{1b}[0m   Created:   2026-11-26 11:19:00.883491576 +0000 UTC
\u{1b}[31m│\u{1b}[0m   Info:
\u{1b}[31m╵\u{1b}[0m
terraform {
  backend \"s3\" {
    bucket         = \"tfstate\"
    key            = \"prod/network.tfstate\"
    region         = \"eu-west-1\"
    dynamodb_table = \"terraform-state-locks\"
    access_key     = \"AKIAIOSFODNN7EXAMPLE\"
    secret_key     = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"
  }
}
";

fn cases() -> Vec<String> {
    let info = r#"{"ID":"acc6180d-b64e-dfb1-0af2-ab82bcc48b40","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.15.5","Created":"2026-11-26T11:19:18.379846558Z","Path":"tfstate/staging/net/terraform.tfstate"}"#;
    let item =
        serde_json::json!({"Item": {"LockID": {"S": "tfstate/staging/net/terraform.tfstate"}, "Info": {"S": info}}});
    let lockfile = format!(
        "{info}\n{{\n  \"ETag\": \"\\\"9b2cf535f27731c974343645a3985328\\\"\",\n  \"ContentLength\": 190\n}}\n"
    );
    vec![
        ERROR.to_string(),
        format!(
            "{item:#}\nbucket = \"tfstate\"\nkey = \"staging/net/terraform.tfstate\"\ndynamodb_table = \"locks\"\n"
        ),
        lockfile,
        "backend \"s3\" {\n  bucket = \"tfstate\"\n  key    = \"app.tfstate\"\n}\n".to_string(),
        "nothing to see here".to_string(),
    ]
}

#[test]
fn the_page_answers_as_the_cli_does_offline_and_shows_no_credential() {
    assert!(
        site().join("index.html").exists() && site().join("pkg/tf_lock_reaper_web_bg.wasm").exists(),
        "target/web is not built: run `make web` (make test does)"
    );
    let url = serve();
    let cases = cases();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&cases).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web/explain.mjs");
    let out = Command::new(venv_bin("node")).arg(&script).arg(&url).arg(file.path()).output().expect("run node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(page["label"], "What you have in hand (pasted)", "the text area has a label");
    assert!(page["region"][0] == "region" && page["region"][1].as_str().unwrap().contains("Diagnosis"));
    for (i, input) in cases.iter().enumerate() {
        let shown: Vec<String> =
            page["cases"][i]["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        let cli = if i == cases.len() - 1 { Vec::new() } else { cli_commands(input) };
        assert_eq!(shown, cli, "case {i}: the page's commands vs explain --json's");
    }
    let first = &page["cases"][0];
    assert!(first["scenarios"].as_array().unwrap().iter().any(|s| s == "path-drift"), "{first:#}");
    assert!(first["diff"][0].as_str().unwrap().contains("+    key = \"prod/terraform.tfstate\""), "{first:#}");
    assert!(page["cases"][3]["diff"][0].as_str().unwrap().contains("+  use_lockfile = true"));
    assert!(page["cases"][4]["text"].as_str().unwrap().starts_with("nothing recognised"), "{page:#}");
    // Nothing leaves the page.
    assert_eq!(page["requests_after_load"], serde_json::json!([]), "requests after load: {page:#}");
    let loaded: Vec<&str> = page["requests"].as_array().unwrap().iter().map(|r| r["url"].as_str().unwrap()).collect();
    assert!(loaded.iter().all(|u| u.starts_with(&url)), "only its own origin: {loaded:?}");
    assert_eq!(page["offline"]["commands"], first["commands"], "the page answers with the network cut");
    // A pasted credential is never shown.
    let everything = page.to_string();
    assert!(
        !everything.contains("AKIAIOSFODNN7EXAMPLE") && !everything.contains("wJalrXUtnFEMI"),
        "a credential shown"
    );
    assert!(page["console_errors"].as_array().unwrap().is_empty(), "{page:#}");

    // Figures: the page's transfer size gzipped, and the time to the first diagnosis.
    let mut gz = 0;
    for f in
        ["index.html", "app.js", "style.css", "icon.svg", "pkg/tf_lock_reaper_web.js", "pkg/tf_lock_reaper_web_bg.wasm"]
    {
        let mut child =
            Command::new("gzip").args(["-9", "-c"]).arg(site().join(f)).stdout(Stdio::piped()).spawn().unwrap();
        let mut bytes = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut bytes).unwrap();
        child.wait().unwrap();
        gz += bytes.len();
    }
    eprintln!(
        "the page: {gz} bytes gzipped; loaded and ready in {} ms, first diagnosis at {} ms (headless chromium)",
        page["ready_ms"], page["first_diagnosis_ms"]
    );
}
