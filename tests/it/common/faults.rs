//! A fault-injecting HTTP proxy in front of moto, on loopback: one request
//! per connection, matched by AWS operation (DynamoDB's `X-Amz-Target`, or
//! S3's method and query) and, optionally, by a path fragment. Each matching
//! request takes the next fault queued for it (or a standing one); the rest
//! pass through unchanged.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 500 without forwarding.
    ServerError,
    /// Answer DynamoDB's ThrottlingException without forwarding.
    Throttle,
    /// Forward, let the server act, then close without answering: the
    /// client never learns that the write happened.
    ResetAfterForward,
    /// Forward, and answer this late.
    Slow(Duration),
    /// Accept the request and never answer.
    NeverAnswer,
}

struct Rule {
    operation: String,
    path_contains: Option<String>,
    queued: VecDeque<Fault>,
    standing: Option<Fault>,
}

/// The proxy; it stops accepting when the test process ends.
pub struct FaultProxy {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Every request seen: `<operation> <path> -> <fault or pass>`.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Every request as the IAM action that authorises it and the access
    /// key that signed it: `("s3:GetBucketTagging", "test")`.
    pub calls: Arc<Mutex<Vec<(String, String)>>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (r, l, c) = (Arc::clone(&rules), Arc::clone(&log), Arc::clone(&calls));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (r, l, c) = (Arc::clone(&r), Arc::clone(&l), Arc::clone(&c));
                std::thread::spawn(move || {
                    let _ = serve(client, upstream_port, &r, &l, &c);
                });
            }
        });
        FaultProxy { url, rules, log, calls }
    }

    /// The next requests of `operation` get these faults, in order.
    pub fn queue(&self, operation: &str, faults: &[Fault]) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            path_contains: None,
            queued: faults.iter().copied().collect(),
            standing: None,
        });
    }

    /// Every request of `operation` whose path contains `fragment` gets `fault`.
    pub fn always(&self, operation: &str, fragment: Option<&str>, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            path_contains: fragment.map(str::to_string),
            queued: VecDeque::new(),
            standing: Some(fault),
        });
    }

    pub fn requests(&self, operation: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|l| l.starts_with(&format!("{operation} "))).cloned().collect()
    }
}

/// The AWS operation a request is.
fn operation(method: &str, path: &str, headers: &[(String, String)]) -> String {
    if let Some((_, target)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target")) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let has_key = path.trim_start_matches('/').contains('/');
    match method {
        "GET" if query.contains("list-type=2") => "ListObjectsV2",
        "GET" if has_key => "GetObject",
        "HEAD" => "HeadObject",
        "DELETE" => "DeleteObject",
        "PUT" => "PutObject",
        _ => "Other",
    }
    .to_string()
}

/// The IAM action that authorises a request (AWS's Service Authorization
/// Reference): JSON protocols name the operation in `X-Amz-Target`, query
/// protocols (STS, SNS) in the body's `Action`, S3 in its method, path and
/// query (path-style addressing, as the reaper uses against an endpoint).
fn iam_action(method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> String {
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let scope = credential_scope(headers);
    let service = scope.get(3).copied().unwrap_or("unknown");
    if let Some(target) = header("x-amz-target") {
        return format!("{service}:{}", target.rsplit('.').next().unwrap_or(target));
    }
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return format!("{service}:{action}");
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).count();
    let has = |q: &str| query.split('&').any(|kv| kv == q || kv.starts_with(&format!("{q}=")));
    let action = match (method, segments) {
        ("GET", 0) => "ListAllMyBuckets",
        ("GET", 1) if has("tagging") => "GetBucketTagging",
        ("GET", 1) if has("location") => "GetBucketLocation",
        ("GET", 1) if has("versioning") => "GetBucketVersioning",
        ("GET", 1) if has("lifecycle") => "GetLifecycleConfiguration",
        ("GET", 1) if has("encryption") => "GetEncryptionConfiguration",
        ("GET", 1) if has("publicAccessBlock") => "GetBucketPublicAccessBlock",
        ("GET", 1) => "ListBucket",
        ("GET" | "HEAD", _) if has("tagging") => "GetObjectTagging",
        ("GET" | "HEAD", _) => "GetObject",
        ("PUT", _) if has("tagging") => "PutObjectTagging",
        ("PUT", _) => "PutObject",
        ("DELETE", _) => "DeleteObject",
        _ => "Unknown",
    };
    format!("{service}:{action}")
}

/// The signature's credential scope, `KEY/DATE/REGION/SERVICE/aws4_request`, split at `/`.
fn credential_scope(headers: &[(String, String)]) -> Vec<&str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, a)| a.split("Credential=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or("").split('/').collect())
        .unwrap_or_default()
}

/// The access key that signed a request.
fn access_key(headers: &[(String, String)]) -> String {
    credential_scope(headers).first().copied().unwrap_or("").to_string()
}

fn serve(
    client: TcpStream,
    upstream_port: u16,
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<String>>,
    calls: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let op = operation(method, path, &headers);

    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .filter(|r| r.operation == op && r.path_contains.as_ref().is_none_or(|f| path.contains(f.as_str())))
            .find_map(|r| r.queued.pop_front().or(r.standing))
    };
    log.lock().unwrap().push(format!("{op} {path} -> {fault:?}"));
    calls.lock().unwrap().push((iam_action(method, path, &headers, &body), access_key(&headers)));

    let mut client = client;
    match fault {
        Some(Fault::ServerError) => {
            return client
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Some(Fault::Throttle) => {
            let body = concat!(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","#,
                r#""message":"Rate of requests exceeds the allowed throughput."}"#,
            );
            let head = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-ErrorType: \
                    ThrottlingException\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            client.write_all(head.as_bytes())?;
            return client.write_all(body.as_bytes());
        }
        Some(Fault::NeverAnswer) => {
            std::thread::sleep(Duration::from_secs(600));
            return Ok(());
        }
        _ => {}
    }

    // Forward with `Connection: close`, read the whole answer.
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let mut head = request_line.clone();
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("connection")) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&body)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;

    match fault {
        Some(Fault::ResetAfterForward) => Ok(()), // dropped unanswered
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            client.write_all(&close_after(&answer))
        }
        _ => client.write_all(&close_after(&answer)),
    }
}

/// The server's answer, marked `Connection: close` (this proxy serves one
/// request per connection).
fn close_after(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut out: String =
        head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect::<Vec<_>>().join("\r\n");
    out.push_str("\r\nConnection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&answer[end + 4..]);
    bytes
}
