//! Terraform's own word on its lock: the lines it writes to its log
//! (`TF_LOG_CORE=INFO` or `TF_LOG=INFO`/`DEBUG`/`TRACE` as text,
//! `TF_LOG=JSON` as one JSON object a line), parsed. Checked with real
//! Terraform 1.0.3, 1.6.6, 1.9.8, 1.10.5 and 1.15.5:
//!
//! ```text
//! 1.10+:  … [INFO]  backend-s3: Locked remote state (DynamoDB only): tf_backend.lock.id=<ID> …
//!           tf_backend.lock.path=<bucket>/<key> … tf_backend.s3.bucket=<bucket> tf_backend.s3.path=<key>
//!         … [INFO]  backend-s3: Attempting to unlock remote state (DynamoDB only)...: tf_backend.lock.id=<ID> …
//!         … [INFO]  backend-s3: Unlocked remote state (DynamoDB only): tf_backend.lock.id=<ID> …
//! 1.6–1.9: … [INFO]  backend-s3: Locking remote state: tf_backend.lock.id=<ID> … (before the attempt)
//!         … [INFO]  backend-s3: Unlocking remote state: tf_backend.lock.id=<ID> …
//! all:    … [INFO]  Terraform version: 1.9.8
//! ```
//!
//! Terraform ≤ 1.5 logs nothing about its lock at INFO, and OpenTofu
//! (1.10–1.12) logs none of these lines: its `Lock` returns silently.

use serde_json::Value;

/// What one log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// A Terraform (or OpenTofu) process started: `Terraform version: X`.
    Started(Release),
    /// A line about a lock.
    Lock(LockLine),
}

/// A line about a lock: what happened, the lock ID and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLine {
    pub event: LockEvent,
    pub id: String,
    /// `tf_backend.lock.path`: `<bucket>/<state key>`, the table item's `LockID`.
    pub lock_path: Option<String>,
    /// `tf_backend.s3.bucket`.
    pub bucket: Option<String>,
    /// `tf_backend.s3.path`: the state key (with the workspace prefix).
    pub state_key: Option<String>,
}

impl LockLine {
    /// `<bucket>/<state key>`, from the line's LockID or its bucket and key.
    pub fn lock_path(&self) -> Option<String> {
        self.lock_path.clone().or_else(|| Some(format!("{}/{}", self.bucket.as_ref()?, self.state_key.as_ref()?)))
    }
}

/// What a lock line says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// 1.6–1.9 `Locking remote state` or 1.10+ `Attempting to lock remote
    /// state`, written *before* the attempt: the ID
    /// is this run's, and it holds the lock only if the lock carries it (a
    /// run that loses the race logs the same line with its own ID).
    Locking,
    /// 1.10+ `Locked remote state`: the lock is held.
    Locked,
    /// `Attempting to unlock` (1.10+) or `Unlocking remote state` (1.6–1.9):
    /// Terraform began releasing it.
    Unlocking,
    /// 1.10+ `Unlocked remote state`.
    Unlocked,
}

/// Which program and release wrote a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub product: Product,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Terraform,
    OpenTofu,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.product {
            Product::Terraform => "Terraform",
            Product::OpenTofu => "OpenTofu",
        };
        write!(f, "{name} {}", self.version)
    }
}

impl Release {
    /// Why this release's lock cannot be identified from its log, or `None`
    /// when it logs the ID of the lock it takes (Terraform 1.6 and later).
    pub fn unidentifiable(&self) -> Option<String> {
        match self.product {
            Product::OpenTofu => Some(format!("{self} does not log the ID of the lock it takes")),
            Product::Terraform => match major_minor(&self.version) {
                Some(v) if v >= (1, 6) => None,
                Some(_) => Some(format!("{self} does not log the ID of the lock it takes (1.6 and later do)")),
                None => Some(format!("Terraform version {:?} is not one this tool knows", self.version)),
            },
        }
    }
}

/// `1.9.8` → `(1, 9)`; `1.10.0-beta1` → `(1, 10)`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

const BACKEND: &str = "backend-s3";

/// What one log line says, if anything we follow.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let line = line.trim_end_matches('\r');
    if line.starts_with('{') {
        return parse_json(line);
    }
    let (_, after_level) = line.split_once("[INFO]")?;
    let message = after_level.trim_start();
    if let Some(release) = started(message) {
        return Some(LogLine::Started(release));
    }
    let message = message.strip_prefix(BACKEND)?.strip_prefix(": ")?;
    let fields = text_fields(message);
    let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    lock_line(message, field).map(LogLine::Lock)
}

/// `TF_LOG=JSON`: `{"@message":"Locked remote state (DynamoDB only)","@module":"backend-s3","tf_backend.lock.id":…}`.
fn parse_json(line: &str) -> Option<LogLine> {
    let value: Value = serde_json::from_str(line).ok()?;
    let message = value.get("@message")?.as_str()?;
    if value.get("@module").and_then(Value::as_str) != Some(BACKEND) {
        return started(message).map(LogLine::Started);
    }
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    lock_line(message, field).map(LogLine::Lock)
}

fn started(message: &str) -> Option<Release> {
    let (product, version) = if let Some(v) = message.strip_prefix("Terraform version: ") {
        (Product::Terraform, v)
    } else {
        (Product::OpenTofu, message.strip_prefix("OpenTofu version: ")?)
    };
    let version = version.split_whitespace().next()?.to_string();
    Some(Release { product, version })
}

fn lock_line(message: &str, field: impl Fn(&str) -> Option<String>) -> Option<LockLine> {
    let event = if message.starts_with("Locked remote state") {
        LockEvent::Locked
    } else if message.starts_with("Locking remote state") || message.starts_with("Attempting to lock remote state") {
        // 1.6–1.9 `Locking`, 1.10+ `Attempting to lock`: this run's own lock
        // ID, before the attempt. A run blocked by another lock logs this and
        // never `Locked`.
        LockEvent::Locking
    } else if message.starts_with("Attempting to unlock remote state") || message.starts_with("Unlocking remote state")
    {
        LockEvent::Unlocking
    } else if message.starts_with("Unlocked remote state") {
        LockEvent::Unlocked
    } else {
        return None;
    };
    let some = |v: Option<String>| v.filter(|v| !v.is_empty());
    Some(LockLine {
        event,
        id: some(field("tf_backend.lock.id"))?,
        lock_path: some(field("tf_backend.lock.path")),
        bucket: some(field("tf_backend.s3.bucket")),
        state_key: some(field("tf_backend.s3.path")),
    })
}

/// hclog's `key=value key="quoted \"value\""` pairs after the message.
fn text_fields(message: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].rsplit(|c: char| c.is_whitespace()).next().unwrap_or_default();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c02d5c62-ecbb-1c96-7e93-c0355d82eaf7";
    const LOCKED: &str = concat!(
        r#"2026-11-27T12:10:57.051Z [INFO]  backend-s3: Locked remote state (S3 Native and DynamoDB): tf_backend.lock"#,
        r#".id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.lock.info="" tf_backend.lock.operation=OperationTypeAp"#,
        r#"ply tf_backend.lock.path=tfstate/prod/terraform.tfstate tf_backend.lock.version=1.15.5 tf_backend.lock.who"#,
        r#"=root@vm tf_backend.operation=Lock tf_backend.req_id=3631d4eb-c12e-190a-762b-6facd1ade054 tf_backend.s3.bu"#,
        r#"cket=tfstate tf_backend.s3.path=prod/terraform.tfstate"#,
    );
    const ATTEMPT_LOCK: &str = concat!(
        r#"2026-11-27T12:10:57.022Z [INFO]  backend-s3: Attempting to lock remote state (S3 Native and DynamoDB)...: "#,
        r#"tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.lock.info="" tf_backend.lock.path=tfsta"#,
        r#"te/prod/terraform.tfstate"#,
    );
    const UNLOCKING: &str = concat!(
        r#"2026-11-27T12:10:57.110Z [INFO]  backend-s3: Attempting to unlock remote state (S3 Native and DynamoDB)..."#,
        r#": tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.operation=Unlock"#,
    );
    const UNLOCKED: &str = concat!(
        r#"2026-11-27T12:10:57.134Z [INFO]  backend-s3: Unlocked remote state (DynamoDB): tf_backend.lock.id=c02d5c62"#,
        r#"-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.operation=Unlock"#,
    );
    /// Terraform 1.9.8, here.
    const LOCKING_19: &str = concat!(
        r#"2026-12-01T15:45:05.567Z [INFO]  backend-s3: Locking remote state: tf_backend.lock.id=c6b8000c-5c87-5af3-c"#,
        r#"7a6-1d1048e34d6c tf_backend.lock.info="" tf_backend.lock.operation=OperationTypeApply tf_backend.lock.path"#,
        r#"=tfstate/s198/terraform.tfstate tf_backend.lock.version=1.9.8 tf_backend.lock.who=root@vm tf_backend.opera"#,
        r#"tion=Lock tf_backend.req_id=d5e0a6f3-241d-3fed-cbcc-8dd8a34341a2 tf_backend.s3.bucket=tfstate tf_backend.s"#,
        r#"3.path=s198/terraform.tfstate"#,
    );
    const UNLOCKING_19: &str = concat!(
        r#"2026-12-01T15:45:05.656Z [INFO]  backend-s3: Unlocking remote state: tf_backend.lock.id=c6b8000c-5c87-5af3"#,
        r#"-c7a6-1d1048e34d6c tf_backend.operation=Unlock tf_backend.req_id=974ae3ab-575b-689b-8d4f-d91cf3f9f39f tf_b"#,
        r#"ackend.s3.bucket=tfstate tf_backend.s3.path=s198/terraform.tfstate"#,
    );
    /// Terraform 1.9.8 and 1.15.5 with `TF_LOG=JSON`, here.
    const LOCKING_19_JSON: &str = concat!(
        r#"{"@level":"info","@message":"Locking remote state","@module":"backend-s3","#,
        r#""@timestamp":"2026-12-01T15:45:04.237242Z","tf_backend.lock.id":"326f31a5-ec11-b657-5509-db05df48c898","#,
        r#""tf_backend.lock.info":"","tf_backend.lock.operation":"OperationTypeApply","#,
        r#""tf_backend.lock.path":"tfstate/s198/terraform.tfstate","tf_backend.lock.version":"1.9.8","#,
        r#""tf_backend.lock.who":"root@vm","tf_backend.operation":"Lock","#,
        r#""tf_backend.req_id":"cd854091-7f7c-304e-0e4b-cb67e16d13a1","tf_backend.s3.bucket":"tfstate","#,
        r#""tf_backend.s3.path":"s198/terraform.tfstate"}"#,
    );
    const UNLOCKED_JSON: &str = concat!(
        r#"{"@level":"info","@message":"Unlocked remote state (DynamoDB only)","@module":"backend-s3","#,
        r#""@timestamp":"2026-12-01T15:45:08.443877Z","tf_backend.lock.id":"c0515f4e-f86c-3839-49e1-38eb51c9f13f","#,
        r#""tf_backend.operation":"Unlock","tf_backend.s3.bucket":"tfstate","#,
        r#""tf_backend.s3.path":"s115/terraform.tfstate"}"#,
    );
    const VERSION_JSON: &str =
        r#"{"@level":"info","@message":"Terraform version: 1.15.5","@timestamp":"2026-12-01T15:45:08.330995Z"}"#;

    fn lock(line: &str) -> LockLine {
        match parse_line(line) {
            Some(LogLine::Lock(l)) => l,
            other => panic!("not a lock line: {other:?}"),
        }
    }

    #[test]
    fn the_lines_terraform_1_10_and_later_write() {
        let locked = lock(LOCKED);
        assert_eq!((locked.event, locked.id.as_str()), (LockEvent::Locked, ID));
        assert_eq!(locked.lock_path.as_deref(), Some("tfstate/prod/terraform.tfstate"));
        assert_eq!(locked.bucket.as_deref(), Some("tfstate"));
        assert_eq!(locked.state_key.as_deref(), Some("prod/terraform.tfstate"));
        assert_eq!(lock(UNLOCKING).event, LockEvent::Unlocking);
        assert_eq!(lock(UNLOCKED).event, LockEvent::Unlocked);
        assert_eq!(lock(UNLOCKED).id, ID);
    }

    #[test]
    fn the_lines_terraform_1_6_to_1_9_write() {
        let locking = lock(LOCKING_19);
        assert_eq!(locking.event, LockEvent::Locking);
        assert_eq!(locking.id, "c6b8000c-5c87-5af3-c7a6-1d1048e34d6c");
        assert_eq!(locking.lock_path().as_deref(), Some("tfstate/s198/terraform.tfstate"));
        let unlocking = lock(UNLOCKING_19);
        assert_eq!(unlocking.event, LockEvent::Unlocking);
        assert_eq!(unlocking.lock_path().as_deref(), Some("tfstate/s198/terraform.tfstate"), "from bucket and key");
    }

    #[test]
    fn json_lines_say_the_same() {
        let locking = lock(LOCKING_19_JSON);
        assert_eq!((locking.event, locking.id.as_str()), (LockEvent::Locking, "326f31a5-ec11-b657-5509-db05df48c898"));
        assert_eq!(locking.lock_path.as_deref(), Some("tfstate/s198/terraform.tfstate"));
        assert_eq!(lock(UNLOCKED_JSON).event, LockEvent::Unlocked);
        assert_eq!(
            parse_line(VERSION_JSON),
            Some(LogLine::Started(Release { product: Product::Terraform, version: "1.15.5".into() }))
        );
        assert_eq!(parse_line(r#"{"@message":"Locked remote state","@module":"other"}"#), None);
        assert_eq!(parse_line("{not json"), None);
    }

    #[test]
    fn an_attempt_names_the_runs_own_id_and_other_lines_say_nothing() {
        // Held only once the lock carries it; a blocked run logs this and never `Locked`.
        let attempt = lock(ATTEMPT_LOCK);
        assert_eq!((attempt.event, attempt.id.as_str()), (LockEvent::Locking, ID));
        assert_eq!(attempt.lock_path().as_deref(), Some("tfstate/prod/terraform.tfstate"));
        assert_eq!(parse_line("2026-11-27T12:10:57Z [INFO]  Go runtime version: go1.22.7"), None);
        assert_eq!(parse_line("x [INFO]  backend-s3: Locked remote state (DynamoDB): tf_backend.lock.id="), None);
        assert_eq!(parse_line("x [DEBUG] backend-s3: Locked remote state: tf_backend.lock.id=a"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn quoted_values_with_spaces_and_escapes() {
        let line = concat!(
            r#"x [INFO]  backend-s3: Locked remote state (DynamoDB only): tf_backend.lock.id=a "#,
            r#"tf_backend.lock.info="ci job \"7\" a=b" tf_backend.s3.bucket=b "#,
            r#"tf_backend.s3.path="my stack/terraform.tfstate""#,
        );
        let l = lock(line);
        assert_eq!(l.state_key.as_deref(), Some("my stack/terraform.tfstate"));
        assert_eq!(l.lock_path().as_deref(), Some("b/my stack/terraform.tfstate"));
    }

    #[test]
    fn versions_that_log_their_lock_id() {
        let release = |line: &str| match parse_line(line) {
            Some(LogLine::Started(r)) => r,
            other => panic!("{other:?}"),
        };
        let v103 = release("2026-12-01T15:43:55.977Z [INFO]  Terraform version: 1.0.3");
        assert_eq!(v103.version, "1.0.3");
        assert!(v103.unidentifiable().unwrap().contains("Terraform 1.0.3 does not log"));
        for ok in ["1.6.6", "1.9.8", "1.10.0-beta1", "1.15.5", "2.0.0"] {
            let r = Release { product: Product::Terraform, version: ok.into() };
            assert_eq!(r.unidentifiable(), None, "{ok}");
        }
        assert!(Release { product: Product::Terraform, version: "1.5.7".into() }.unidentifiable().is_some());
        assert!(Release { product: Product::Terraform, version: "dev".into() }.unidentifiable().is_some());
        let tofu = release("x [INFO]  OpenTofu version: 1.10.2");
        assert!(tofu.unidentifiable().unwrap().contains("OpenTofu 1.10.2"));
    }
}
