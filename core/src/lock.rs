//! The lock model: turns one raw lock-table item into exactly one of a
//! Terraform/OpenTofu lock, a digest item, or an unreadable item with the
//! reason why. Pure code over plain data, no AWS types, so it can be tested
//! exhaustively and fuzzed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far in the future (on AWS's clock) a lock's `Created` or heartbeat
/// may lie before it is called out: runners' clocks drift a little. A lock
/// "created" an hour from now is a fast clock or a forged item; the policy
/// flags it and never ages it (`domain::policy`).
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::minutes(5);

/// Hash key of Terraform's lock table.
pub const LOCK_ID_ATTR: &str = "LockID";
/// Attribute holding the LockInfo JSON.
pub const INFO_ATTR: &str = "Info";
/// Suffix of the digest items Terraform keeps beside each lock.
pub const DIGEST_SUFFIX: &str = "-md5";
/// Workspace key prefix Terraform's S3 backend uses by default.
const DEFAULT_WORKSPACE_PREFIX: &str = "env:";

/// A DynamoDB attribute value reduced to what the model needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// String (`S`).
    S(String),
    /// Number (`N`), kept as its decimal text.
    N(String),
    /// Any other type; the string names it (e.g. `"M"`, `"BOOL"`).
    Other(&'static str),
}

impl AttrValue {
    /// DynamoDB's short type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::Other(t) => t,
        }
    }
}

/// One item as read from a lock table.
pub type RawItem = BTreeMap<String, AttrValue>;

/// The LockInfo JSON Terraform and OpenTofu write, parsed in one pass.
/// Unknown fields are ignored.
///
/// Two fields are required, and an `Info` without them is unreadable:
/// - `ID` (a non-empty string): the lock's identity. `force-unlock` takes
///   it, double locks pair by it, and Terraform and OpenTofu always write it,
///   so an item without one was written by something else and is not ours
///   to remove.
/// - `Created`: staleness is measured from it; a lock whose age cannot be
///   read must never be judged stale.
///
/// The rest (`Operation`, `Who`, `Version`, `Path`, `Info`) only informs
/// people: a missing one is listed in [`Lock::missing_fields`], never a
/// reason to reject the lock.
#[derive(Debug, Default, Deserialize)]
struct LockInfoJson<'a> {
    /// Any JSON value, `null` included: a non-string ID is "no lock ID",
    /// not a parse error.
    #[serde(rename = "ID", default, deserialize_with = "present")]
    id: Option<serde_json::Value>,
    #[serde(rename = "Operation", default)]
    operation: Option<String>,
    #[serde(rename = "Info", default)]
    info: Option<String>,
    #[serde(rename = "Who", default)]
    who: Option<String>,
    #[serde(rename = "Version", default)]
    version: Option<String>,
    #[serde(rename = "Created", default, borrow)]
    created: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "Path", default)]
    path: Option<String>,
}

use crate::source::SourceAddress;
pub use crate::source::SourceKind;

/// The object tag `tf-lock-reaper exec` heartbeats a lockfile with (tags
/// change neither the body nor the ETag, so Terraform never notices).
pub const HEARTBEAT_TAG: &str = "tf-lock-reaper-heartbeat";
/// The object tag carrying a lockfile's liveness contract (seconds).
pub const HEARTBEAT_TIMEOUT_TAG: &str = "tf-lock-reaper-heartbeat-timeout";

/// The item attribute beside the heartbeat that carries the holder's
/// liveness contract: the silence (seconds) after which it counts as dead.
/// `Heartbeat` → `HeartbeatTimeout`.
pub fn heartbeat_timeout_attribute(heartbeat_attribute: &str) -> String {
    format!("{heartbeat_attribute}Timeout")
}

/// A liveness contract as written (seconds); `None` when absent, not a
/// whole positive number, or absurd: the lock then names no contract.
pub fn contract_seconds(raw: Option<i64>) -> Option<u64> {
    raw.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0)
}

/// A number attribute read as epoch seconds (`ExpiresAt`, `Heartbeat`);
/// `None` when absent or not a number.
pub fn epoch_attribute(item: &RawItem, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttrValue::N(n)) => n.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v as i64),
        _ => None,
    }
}

/// Suffix of S3 native lockfiles.
pub const LOCKFILE_SUFFIX: &str = ".tflock";

/// A readable lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `source.kind`, kept beside it for the report's readers.
    pub kind: SourceKind,
    /// Where the lock lives: the table, or the bucket for lockfiles.
    pub source: SourceAddress,
    /// The item's `LockID` (`<bucket>/<key>`), or the lockfile's object key.
    pub lock_key: String,
    /// `<bucket>/<state key>`: the LockID for tables, the bucket and the key
    /// without `.tflock` for lockfiles. Policy globs and pairing use it.
    pub state_path: String,
    /// The lockfile object's ETag as read (lockfiles only).
    pub etag: Option<String>,
    /// `Info.ID`: what `terraform force-unlock` takes.
    pub id: String,
    pub operation: String,
    /// `Info.Info`: free text some tools put there.
    pub info_text: String,
    pub who: String,
    pub version: String,
    pub created: DateTime<Utc>,
    /// S3's `LastModified` of a lockfile: when AWS stored it, on AWS's
    /// clock (tables have no server-side timestamp). The age counts from
    /// the later of this and `created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<DateTime<Utc>>,
    pub path: String,
    /// Workspace name when the state path is `<bucket>/env:/<ws>/<key>`.
    pub workspace: Option<String>,
    /// The exact `Info` string as read: the condition of every write.
    pub raw_info: String,
    /// The TTL attribute's value (epoch seconds) if the item already has one.
    pub expires_at: Option<i64>,
    /// The last heartbeat (epoch seconds) `tf-lock-reaper exec` wrote on the
    /// lock (`HEARTBEAT_ATTRIBUTE` on an item, [`HEARTBEAT_TAG`] on a
    /// lockfile); `None` for a lock nobody heartbeats.
    pub heartbeat: Option<i64>,
    /// The silence (seconds) after which the holder counts as dead, as
    /// `exec` wrote it beside the heartbeat; `None`: no contract named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<u64>,
    /// Informative LockInfo fields the writer left out (see `LockInfoJson`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_fields: Vec<&'static str>,
}

/// An item that is not a lock and not a digest, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub source: SourceAddress,
    /// The `LockID` if the item has a string one.
    pub lock_key: Option<String>,
    pub reason: String,
}

/// What one item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Boxed: a lock is much larger than the other variants.
    Lock(Box<Lock>),
    /// A `-md5` digest item; carries its `LockID`.
    Digest(String),
    Unreadable(Unreadable),
}

/// Classify one lock-table item. `ttl_attribute` names the TTL attribute so
/// the lock records whether it already has one. No clock is read: whether
/// `Created` lies in the future is the policy's question, on AWS's clock.
pub fn parse_item(source: &SourceAddress, mut item: RawItem, ttl_attribute: &str) -> Item {
    // The item is consumed: its strings move into the lock, uncopied.
    let lock_key = match item.remove(LOCK_ID_ATTR) {
        Some(AttrValue::S(s)) => s,
        Some(other) => {
            return unreadable(source, None, format!("LockID is of type {}, expected a string", other.type_name()))
        }
        None => return unreadable(source, None, "no LockID attribute".to_string()),
    };
    // Digest items sit beside every state; they are never locks, whatever they hold.
    if lock_key.ends_with(DIGEST_SUFFIX) {
        return Item::Digest(lock_key);
    }
    let raw_info = match item.remove(INFO_ATTR) {
        Some(AttrValue::S(s)) => s,
        Some(other) => {
            return unreadable(
                source,
                Some(lock_key),
                format!("Info is of type {}, expected a string", other.type_name()),
            )
        }
        None => return unreadable(source, Some(lock_key), "no Info attribute".to_string()),
    };
    let expires_at = epoch_attribute(&item, ttl_attribute);
    match lock_from_info(&raw_info) {
        Ok(fields) => {
            let mut lock = fields.into_lock(source, lock_key, raw_info);
            lock.expires_at = expires_at;
            Item::Lock(Box::new(lock))
        }
        Err(reason) => unreadable(source, Some(lock_key), reason),
    }
}

/// Parse a LockInfo JSON document (a table item's `Info`, or a lockfile's
/// body) into a lock, or the reason it is not one.
pub fn parse_lock_info(source: &SourceAddress, lock_key: &str, raw_info: &str) -> Result<Lock, String> {
    lock_from_info(raw_info).map(|f| f.into_lock(source, lock_key.to_string(), raw_info.to_string()))
}

/// What a LockInfo document says, checked; the lock is made from it by
/// [`InfoFields::into_lock`] with the key and text moved in.
struct InfoFields {
    id: String,
    operation: String,
    info_text: String,
    who: String,
    version: String,
    created: DateTime<Utc>,
    path: String,
    missing_fields: Vec<&'static str>,
}

impl InfoFields {
    fn into_lock(self, source: &SourceAddress, lock_key: String, raw_info: String) -> Lock {
        Lock {
            kind: source.kind,
            source: source.clone(),
            state_path: lock_key.clone(),
            workspace: workspace_of(&lock_key),
            lock_key,
            etag: None,
            id: self.id,
            operation: self.operation,
            info_text: self.info_text,
            who: self.who,
            version: self.version,
            created: self.created,
            stored_at: None,
            path: self.path,
            missing_fields: self.missing_fields,
            raw_info,
            expires_at: None,
            heartbeat: None,
            heartbeat_timeout: None,
        }
    }
}

fn lock_from_info(raw_info: &str) -> Result<InfoFields, String> {
    if !raw_info.trim_start().starts_with('{') {
        // Only the error path looks twice: is it JSON at all?
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(raw_info) {
            Ok(_) => "Info is JSON but not an object".to_string(),
            Err(e) => format!("Info is not JSON: {e}"),
        });
    }
    let json: LockInfoJson<'_> = serde_json::from_str(raw_info).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("Info has a field of the wrong type: {e}"),
        _ => format!("Info is not JSON: {e}"),
    })?;
    let id = match json.id {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => id,
        Some(serde_json::Value::String(_)) => return Err("Info has no lock ID (ID is empty)".to_string()),
        Some(other) => return Err(format!("Info has no lock ID (ID is {}, not a string)", json_type(&other))),
        None => return Err("Info has no lock ID (no ID field)".to_string()),
    };
    let created_text =
        json.created.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| "Info has no Created timestamp".to_string())?;
    let created = DateTime::parse_from_rfc3339(created_text)
        .map_err(|e| format!("Info.Created {created_text:?} is not an RFC 3339 timestamp: {e}"))?
        .with_timezone(&Utc);
    let mut missing_fields = Vec::new();
    let mut field = |name: &'static str, value: Option<String>| {
        value.unwrap_or_else(|| {
            missing_fields.push(name);
            String::new()
        })
    };
    let operation = field("Operation", json.operation);
    let who = field("Who", json.who);
    let version = field("Version", json.version);
    let path = field("Path", json.path);
    let info_text = json.info.unwrap_or_default();
    Ok(InfoFields { id, operation, info_text, who, version, created, path, missing_fields })
}

/// Classify one `.tflock` object's body: a lock, or unreadable with the
/// reason. The ETag is kept: it is the condition of the delete. The state
/// path uses the bare bucket name of `source`.
pub fn parse_lockfile(source: &SourceAddress, key: &str, etag: &str, body: &str) -> Item {
    match parse_lock_info(source, key, body) {
        Ok(mut lock) => {
            let state_key = key.strip_suffix(LOCKFILE_SUFFIX).unwrap_or(key);
            lock.state_path = format!("{}/{state_key}", source.name);
            lock.workspace = workspace_of(&lock.state_path);
            lock.etag = Some(etag.to_string());
            Item::Lock(Box::new(lock))
        }
        Err(reason) => unreadable(source, Some(key.to_string()), reason),
    }
}

/// The workspace in a `<bucket>/env:/<ws>/<key>` lock key (default
/// `workspace_key_prefix`). Custom prefixes cannot be told apart from
/// ordinary key paths, so they are not recognised.
pub fn workspace_of(lock_key: &str) -> Option<String> {
    let mut parts = lock_key.splitn(4, '/');
    let _bucket = parts.next()?;
    if parts.next()? != DEFAULT_WORKSPACE_PREFIX {
        return None;
    }
    let ws = parts.next()?;
    // A key must follow the workspace name.
    parts.next().filter(|k| !k.is_empty())?;
    (!ws.is_empty()).then(|| ws.to_string())
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// JSON's name for a value's type, for error messages.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn unreadable(source: &SourceAddress, lock_key: Option<String>, reason: String) -> Item {
    Item::Unreadable(Unreadable { source: source.clone(), lock_key, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn table(name: &str) -> SourceAddress {
        SourceAddress::own(SourceKind::Table, name)
    }

    fn bucket(name: &str) -> SourceAddress {
        SourceAddress::own(SourceKind::Bucket, name)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn item(pairs: &[(&str, AttrValue)]) -> RawItem {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::S(v.to_string())
    }

    /// `Info` as each Terraform release the compatibility matrix runs wrote
    /// it here (1.0.3's `console` lock, 1.6.6 to 1.15.5 applies), and every
    /// `Operation` seen: all parse, whatever the version or operation.
    #[test]
    fn info_from_every_terraform_release_and_operation_parses() {
        let real = [
            concat!(
                r#"{"ID":"9622d63a-d4a7-a9d2-f71a-c242a221d134","Operation":"OperationTypeInvalid","Info":"","#,
                r#""Who":"root@vm","Version":"1.0.3","Created":"2026-11-26T11:44:07.435035966Z","#,
                r#""Path":"tfstate/s103/terraform.tfstate"}"#,
            ),
            concat!(
                r#"{"ID":"c6b8000c-5c87-5af3-c7a6-1d1048e34d6c","Operation":"OperationTypeApply","Info":"","#,
                r#""Who":"root@vm","Version":"1.9.8","Created":"2026-11-26T11:45:05.567123Z","#,
                r#""Path":"tfstate/s198/terraform.tfstate"}"#,
            ),
            concat!(
                r#"{"ID":"db4f693e-8b1b-8e4c-d741-a4c77006cd79","Operation":"OperationTypeApply","Info":"","#,
                r#""Who":"root@vm","Version":"1.15.5","Created":"2026-11-26T11:19:00.883491576Z","#,
                r#""Path":"tfstate/prod/terraform.tfstate"}"#,
            ),
        ];
        for info in real {
            let lock = parse_lock_info(&table("locks"), "k", info).unwrap_or_else(|e| panic!("{e}: {info}"));
            assert!(lock.created < now() && !lock.id.is_empty(), "{info}");
        }
        let ops = ["OperationTypeApply", "OperationTypePlan", "OperationTypeRefresh", "OperationTypeInvalid"];
        for op in ops.into_iter().chain(["taint", "untaint", "state-rm", "init", "migration source state"]) {
            for version in ["1.0.3", "1.6.6", "1.9.8", "1.10.5", "1.15.5"] {
                let info = format!(
                    concat!(
                        r#"{{"ID":"a","Operation":"{op}","Info":"","Who":"ci@runner","Version":"{version}","#,
                        r#""Created":"2026-11-26T10:00:00Z","Path":"b/k"}}"#,
                    ),
                    op = op,
                    version = version
                );
                let lock = parse_lock_info(&table("locks"), "b/k", &info).unwrap_or_else(|e| panic!("{e}: {info}"));
                assert_eq!(lock.operation, op);
            }
        }
    }

    fn lock_item(lock_id: &str, info: &str) -> RawItem {
        item(&[("LockID", s(lock_id)), ("Info", s(info))])
    }

    fn expect_lock(item: Item) -> Lock {
        match item {
            Item::Lock(l) => *l,
            other => panic!("expected a lock, got {other:?}"),
        }
    }

    fn expect_unreadable(item: Item) -> String {
        match item {
            Item::Unreadable(u) => u.reason,
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    /// Verbatim from Terraform 1.15.5 (`apply` against a local DynamoDB).
    const TF_1_15: &str = concat!(
        r#"{"ID":"db4f693e-8b1b-8e4c-d741-a4c77006cd79","Operation":"OperationTypeApply","Info":"","Who":"root@vm","#,
        r#""Version":"1.15.5","Created":"2026-11-26T11:19:00.883491576Z","Path":"tfstate/prod/terraform.tfstate"}"#,
    );
    /// Terraform 0.12 shape: same fields, microsecond fraction.
    const TF_0_12: &str = concat!(
        r#"{"ID":"5f4c1a4e-7c61-2b1e-5b9a-0f0b1d2c3e4f","Operation":"OperationTypeApply","Info":"","#,
        r#""Who":"ci@runner-7","Version":"0.12.31","Created":"2021-03-01T10:00:00.123456Z","#,
        r#""Path":"tfstate/legacy/terraform.tfstate"}"#,
    );
    /// OpenTofu 1.10: same names, plan operation.
    const TOFU: &str = concat!(
        r#"{"ID":"0b0e4a55-2a8f-4c7e-9f8e-1b0d2c3e4f50","Operation":"OperationTypePlan","Info":"","Who":"runner@gha","#,
        r#""Version":"1.10.2","Created":"2026-11-26T09:00:00.5Z","Path":"tfstate/tofu/terraform.tfstate"}"#,
    );

    #[test]
    fn parses_real_terraform_1_15_item() {
        let lock =
            expect_lock(parse_item(&table("locks"), lock_item("tfstate/prod/terraform.tfstate", TF_1_15), "ExpiresAt"));
        assert_eq!(lock.id, "db4f693e-8b1b-8e4c-d741-a4c77006cd79");
        assert_eq!(lock.operation, "OperationTypeApply");
        assert_eq!(lock.who, "root@vm");
        assert_eq!(lock.version, "1.15.5");
        assert_eq!(lock.path, "tfstate/prod/terraform.tfstate");
        assert_eq!(lock.raw_info, TF_1_15, "the exact Info string is kept");
        assert_eq!(
            lock.created,
            Utc.with_ymd_and_hms(2026, 11, 26, 11, 19, 0).unwrap() + Duration::nanoseconds(883_491_576)
        );
        assert_eq!(lock.workspace, None);
        assert_eq!(lock.expires_at, None);
    }

    #[test]
    fn parses_terraform_0_12_and_opentofu() {
        let old =
            expect_lock(parse_item(&table("t"), lock_item("tfstate/legacy/terraform.tfstate", TF_0_12), "ExpiresAt"));
        assert_eq!(old.version, "0.12.31");
        let tofu = expect_lock(parse_item(&table("t"), lock_item("tfstate/tofu/terraform.tfstate", TOFU), "ExpiresAt"));
        assert_eq!(tofu.operation, "OperationTypePlan");
        assert_eq!(tofu.created.timestamp_subsec_millis(), 500);
    }

    #[test]
    fn accepts_zero_to_nine_fraction_digits_and_offsets() {
        for created in [
            "2026-11-26T10:00:00Z",
            "2026-11-26T10:00:00.1Z",
            "2026-11-26T10:00:00.123Z",
            "2026-11-26T10:00:00.123456Z",
            "2026-11-26T10:00:00.123456789Z",
            "2026-11-26T11:00:00+01:00",
            "2026-11-26T05:30:00.5-04:30",
        ] {
            let info = format!(r#"{{"ID":"x","Created":"{created}"}}"#);
            let lock = expect_lock(parse_item(&table("t"), lock_item("b/k", &info), "ExpiresAt"));
            assert_eq!(
                lock.created.timestamp(),
                Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap().timestamp(),
                "{created}"
            );
        }
    }

    #[test]
    fn accepts_unknown_fields() {
        let info = r#"{"ID":"x","Created":"2026-11-26T10:00:00Z","Future":{"a":[1,2]},"Extra":true}"#;
        expect_lock(parse_item(&table("t"), lock_item("b/k", info), "ExpiresAt"));
    }

    #[test]
    fn digest_items_with_and_without_digest_attribute() {
        let with = item(&[
            ("LockID", s("tfstate/prod/terraform.tfstate-md5")),
            ("Digest", s("0cc175b9c0f1b6a831c399e269772661")),
        ]);
        assert_eq!(
            parse_item(&table("t"), with, "ExpiresAt"),
            Item::Digest("tfstate/prod/terraform.tfstate-md5".into())
        );
        // Terragrunt's backend migrate writes -md5 items without Digest.
        let without = item(&[("LockID", s("tfstate/x-md5"))]);
        assert!(matches!(parse_item(&table("t"), without, "ExpiresAt"), Item::Digest(_)));
        // Even a digest key holding something lock-shaped is a digest: never touched.
        let lockish = lock_item("tfstate/x-md5", TF_1_15);
        assert!(matches!(parse_item(&table("t"), lockish, "ExpiresAt"), Item::Digest(_)));
    }

    #[test]
    fn workspaces() {
        let lock = expect_lock(parse_item(
            &table("t"),
            lock_item("tfstate/env:/staging/net/terraform.tfstate", TF_1_15),
            "ExpiresAt",
        ));
        assert_eq!(lock.workspace.as_deref(), Some("staging"));
        assert_eq!(workspace_of("tfstate/env:/dev/terraform.tfstate").as_deref(), Some("dev"));
        assert_eq!(workspace_of("tfstate/prod/terraform.tfstate"), None);
        assert_eq!(workspace_of("tfstate/env:/dev"), None);
        assert_eq!(workspace_of("tfstate/env://k"), None);
        assert_eq!(workspace_of("env:"), None);
    }

    #[test]
    fn malformed_items_are_unreadable_with_reason() {
        let cases: Vec<(RawItem, &str)> = vec![
            (item(&[("Info", s(TF_1_15))]), "no LockID"),
            (item(&[("LockID", AttrValue::N("1".into())), ("Info", s(TF_1_15))]), "LockID is of type N"),
            (item(&[("LockID", s("b/k"))]), "no Info"),
            (item(&[("LockID", s("b/k")), ("Info", AttrValue::Other("M"))]), "Info is of type M"),
            (lock_item("b/k", "not json"), "not JSON"),
            (lock_item("b/k", "[1,2]"), "not an object"),
            (lock_item("b/k", r#"{"ID":"x"}"#), "no Created"),
            (lock_item("b/k", r#"{"ID":"x","Created":""}"#), "no Created"),
            (lock_item("b/k", r#"{"ID":"x","Created":"yesterday"}"#), "not an RFC 3339"),
            (lock_item("b/k", r#"{"ID":"x","Created":"2026-11-26 10:00:00"}"#), "not an RFC 3339"),
            (lock_item("b/k", r#"{"ID":"x","Created":12345}"#), "wrong type"),
            (lock_item("b/k", r#"{"ID":7,"Created":"2026-11-26T10:00:00Z"}"#), "no lock ID (ID is a number"),
            (lock_item("b/k", r#"{"Created":"2026-11-26T10:00:00Z","Who":"x@y"}"#), "no lock ID (no ID field)"),
            (lock_item("b/k", r#"{"ID":"","Created":"2026-11-26T10:00:00Z"}"#), "no lock ID (ID is empty)"),
            (lock_item("b/k", r#"{"ID":"  ","Created":"2026-11-26T10:00:00Z"}"#), "no lock ID (ID is empty)"),
            (lock_item("b/k", r#"{"ID":null,"Created":"2026-11-26T10:00:00Z"}"#), "no lock ID (ID is null"),
            (lock_item("b/k", r#"{"ID":{"a":1},"Created":"2026-11-26T10:00:00Z"}"#), "no lock ID (ID is an object"),
            (lock_item("b/k", r#"{"ID":"x","Created":"2026-11-26T10:00:00Z","Who":5}"#), "wrong type"),
            (lock_item("b/k", r#"{"ID":"x","Created":"2026-11-26T10:00:00Z""#), "not JSON"),
        ];
        for (it, want) in cases {
            let reason = expect_unreadable(parse_item(&table("t"), it, "ExpiresAt"));
            assert!(reason.contains(want), "reason {reason:?} should contain {want:?}");
        }
    }

    #[test]
    fn informative_fields_may_be_missing_and_are_listed() {
        let lock = expect_lock(parse_item(
            &table("t"),
            lock_item("b/k", r#"{"ID":"x","Created":"2026-11-26T10:00:00Z","Who":"a@b"}"#),
            "ExpiresAt",
        ));
        assert_eq!(lock.missing_fields, ["Operation", "Version", "Path"]);
        assert_eq!(lock.who, "a@b");
        let real =
            expect_lock(parse_item(&table("t"), lock_item("tfstate/prod/terraform.tfstate", TF_1_15), "ExpiresAt"));
        assert!(real.missing_fields.is_empty());
    }

    #[test]
    fn a_lockfile_without_an_id_is_unreadable() {
        let body = r#"{"Operation":"OperationTypeApply","Created":"2026-11-26T10:00:00Z","Path":"b/k"}"#;
        let reason = expect_unreadable(parse_lockfile(&bucket("b"), "k.tflock", "e", body));
        assert!(reason.contains("no lock ID"), "{reason}");
    }

    /// Reading a lock never consults a clock: a `Created` far in the future
    /// (a fast runner) is still a lock, which the policy flags on AWS's clock.
    #[test]
    fn a_created_in_the_future_is_still_a_lock() {
        for created in ["2026-11-26T12:04:00Z", "2026-11-26T13:00:00Z", "2099-01-01T00:00:00Z"] {
            let info = format!(r#"{{"ID":"x","Created":"{created}"}}"#);
            expect_lock(parse_item(&table("t"), lock_item("b/k", &info), "ExpiresAt"));
        }
    }

    #[test]
    fn records_existing_ttl_attribute() {
        let mut it = lock_item("b/k", TF_1_15);
        it.insert("ExpiresAt".into(), AttrValue::N("1790000000".into()));
        assert_eq!(expect_lock(parse_item(&table("t"), it.clone(), "ExpiresAt")).expires_at, Some(1_790_000_000));
        assert_eq!(expect_lock(parse_item(&table("t"), it, "OtherTtl")).expires_at, None);
    }

    /// Verbatim lockfile body from Terraform 1.15.5 (`use_lockfile = true`).
    const LOCKFILE: &str = concat!(
        r#"{"ID":"acc6180d-b64e-dfb1-0af2-ab82bcc48b40","Operation":"OperationTypeApply","Info":"","Who":"root@vm","#,
        r#""Version":"1.15.5","Created":"2026-11-26T11:19:18.379846558Z","#,
        r#""Path":"tfstate/staging/net/terraform.tfstate"}"#,
    );

    #[test]
    fn parses_a_real_lockfile_with_its_etag_and_state_path() {
        let lock = expect_lock(parse_lockfile(
            &bucket("tfstate"),
            "staging/net/terraform.tfstate.tflock",
            "\"abc\"",
            LOCKFILE,
        ));
        assert_eq!(lock.kind, SourceKind::Bucket);
        assert_eq!(lock.id, "acc6180d-b64e-dfb1-0af2-ab82bcc48b40");
        assert_eq!(lock.lock_key, "staging/net/terraform.tfstate.tflock");
        assert_eq!(lock.state_path, "tfstate/staging/net/terraform.tfstate");
        assert_eq!(lock.state_path, lock.path, "the body's Path is the state path");
        assert_eq!(lock.etag.as_deref(), Some("\"abc\""));
        let ws = expect_lock(parse_lockfile(&bucket("tfstate"), "env:/dev/app.tfstate.tflock", "e", LOCKFILE));
        assert_eq!(ws.workspace.as_deref(), Some("dev"));
    }

    #[test]
    fn a_lockfile_that_is_not_a_lock_is_unreadable() {
        let reason = expect_unreadable(parse_lockfile(&bucket("b"), "x.tflock", "e", "terraform state, not a lock"));
        assert!(reason.contains("not JSON"));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn attr() -> impl Strategy<Value = AttrValue> {
            prop_oneof![
                any::<String>().prop_map(AttrValue::S),
                any::<String>().prop_map(AttrValue::N),
                Just(AttrValue::Other("M")),
                Just(AttrValue::Other("BOOL")),
            ]
        }

        fn info_like() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                (any::<String>(), any::<String>(), any::<String>()).prop_map(|(id, who, created)| {
                    serde_json::json!({"ID": id, "Who": who, "Created": created}).to_string()
                }),
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})"
                    .prop_map(|c| format!(r#"{{"ID":"x","Created":"{c}"}}"#)),
            ]
        }

        proptest! {
            #[test]
            fn no_info_string_panics(info in info_like(), key in any::<String>()) {
                let _ = parse_item(&table("t"), lock_item(&key, &info), "ExpiresAt");
            }

            #[test]
            fn no_table_item_or_lockfile_makes_classification_panic(
                info in info_like(),
                key in any::<String>(),
                etag in any::<String>(),
            ) {
                let policy = crate::policy::Policy {
                    stale_after: std::time::Duration::from_secs(7200),
                    overrides: vec![
                        crate::policy::Override::new("tfstate/prod/*", std::time::Duration::from_secs(1))
                            .unwrap(),
                    ],
                    exclusions: crate::policy::Exclusions::new(&["*/pinned/*".to_string()]).unwrap(),
                    delete_after: Some(std::time::Duration::from_secs(7200)),
                    heartbeat: crate::policy::HeartbeatTimeouts {
                        default: std::time::Duration::from_secs(600),
                        min: std::time::Duration::from_secs(60),
                        max: std::time::Duration::from_secs(3600),
                    },
                };
                for item in [
                    parse_item(&table("t"), lock_item(&key, &info), "ExpiresAt"),
                    parse_lockfile(&bucket("bucket"), &key, &etag, &info),
                ] {
                    if let Item::Lock(lock) = item {
                        let v = policy.classify(&lock, now());
                        prop_assert!(!v.delete_due || v.stale, "due implies stale");
                    }
                }
            }

            #[test]
            fn an_info_without_a_string_id_is_never_a_lock(
                id in prop_oneof![
                    Just(serde_json::Value::Null),
                    Just(serde_json::json!("")),
                    "[ \t]{1,3}".prop_map(serde_json::Value::String),
                    any::<i64>().prop_map(serde_json::Value::from),
                    any::<bool>().prop_map(serde_json::Value::from),
                    Just(serde_json::json!([1])),
                    Just(serde_json::json!({"ID": "x"})),
                ],
                omit in any::<bool>(),
                who in any::<String>(),
            ) {
                let mut info = serde_json::json!({
                    "Created": "2026-11-26T10:00:00Z",
                    "Who": who,
                    "Operation": "OperationTypeApply",
                });
                if !omit {
                    info["ID"] = id;
                }
                let info = info.to_string();
                for item in [
                    parse_item(&table("t"), lock_item("b/k", &info), "ExpiresAt"),
                    parse_lockfile(&bucket("bucket"), "k.tflock", "e", &info),
                ] {
                    match item {
                        Item::Unreadable(u) => prop_assert!(u.reason.contains("no lock ID"), "{}", u.reason),
                        other => prop_assert!(false, "not unreadable: {other:?}"),
                    }
                }
            }

            #[test]
            fn no_item_shape_panics(map in proptest::collection::btree_map(
                prop_oneof![
                    Just("LockID".to_string()),
                    Just("Info".to_string()),
                    Just("ExpiresAt".to_string()),
                    any::<String>(),
                ],
                attr(), 0..5)) {
                let _ = parse_item(&table("t"), map, "ExpiresAt");
            }
        }
    }
}
