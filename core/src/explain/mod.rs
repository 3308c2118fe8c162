//! `explain`: from whatever a person has in hand (Terraform's lock error,
//! a lock item, a lockfile and its ETag, the backend block, a digest
//! mismatch), the locks, what is going on (findings, each with its
//! evidence), the commands that fix it ranked safest first
//! (`domain::commands`), and the corrected backend block. Pure: no clock
//! (`now` is given, and the answer says which clock it is), no I/O, so the
//! CLI and the web page answer the same from the same code.

pub mod parts;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::age::format_age;
use crate::backend::{S3Backend, DEFAULT_WORKSPACE_KEY_PREFIX};
use crate::commands::{digest_commands, release_commands, FileHalf, ReleaseTarget, TableHalf};
use crate::lock::{parse_item, parse_lock_info, Item, CLOCK_SKEW_ALLOWANCE, DIGEST_SUFFIX, LOCKFILE_SUFFIX};
use crate::source::{SourceAddress, SourceKind};
use parts::{BackendSettings, ErrorKind, Parts};

/// Locks given commands; the rest are listed and counted.
const COMMANDED_LOCKS: usize = 20;

/// What the answer is judged by.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock ages are read on; `None`: no ages.
    pub now: Option<DateTime<Utc>>,
    /// Which clock `now` is, said in the answer ("this machine's clock").
    pub clock: String,
    /// The apply window: older locks are stale.
    pub stale_after: std::time::Duration,
    /// Mask account IDs in ARNs too (a report to share).
    pub redact: bool,
}

/// The answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Explanation {
    /// Which clock the ages are on, and its reading.
    pub clock: Option<String>,
    pub locks: Vec<ExplainedLock>,
    pub findings: Vec<Finding>,
    /// Ranked safest first, per lock.
    pub commands: Vec<ExplainCommand>,
    /// The backend block as pasted and as it should be, as a diff.
    pub backend_fix: Option<String>,
    /// What was recognised in the paste.
    pub recognised: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExplainedLock {
    pub id: String,
    /// `<bucket>/<state key>`.
    pub path: String,
    /// `table`, `lockfile`, `double` (both halves) or `unknown`.
    pub kind: &'static str,
    pub workspace: String,
    pub who: String,
    pub operation: String,
    pub version: String,
    /// RFC 3339, when readable.
    pub created: Option<String>,
    pub age_seconds: Option<i64>,
    /// Where it was read: `terraform error`, `dynamodb item`, `lock info`.
    pub from: Vec<&'static str>,
    #[serde(skip)]
    info: Option<String>,
    #[serde(skip)]
    etag: Option<String>,
    #[serde(skip)]
    created_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    table: bool,
    #[serde(skip)]
    lockfile: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `stale`, `young`, `clock-ahead`, `path-drift`, `no-locking`,
    /// `dynamodb-table-deprecated`, `digest-mismatch`, `not-a-lock`,
    /// `unreadable`, `credentials-pasted`, `table-unknown`.
    pub scenario: &'static str,
    pub summary: String,
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExplainCommand {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    pub name: &'static str,
    pub command: String,
    pub why: String,
}

/// Nothing in the input was recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nothing recognised: paste Terraform's \"Error acquiring the state lock\" output, a lock item (aws dynamodb \
     get-item or scan), a .tflock body, a backend \"s3\" block, or the digest-mismatch error"
)]
pub struct NothingRecognised;

/// Explain `input`.
pub fn explain(input: &str, o: &Options) -> Result<Explanation, NothingRecognised> {
    let parts = parts::recognise(input);
    if parts.is_empty() {
        return Err(NothingRecognised);
    }
    let mut e = Explanation {
        clock: o.now.map(|n| format!("{} ({})", o.clock, n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
        ..Explanation::default()
    };
    e.recognised = recognised(&parts);
    let backend = parts.backend.as_ref();
    let table_name = backend.and_then(|b| b.dynamodb_table.clone());
    let table_at = SourceAddress::own(SourceKind::Table, table_name.as_deref().unwrap_or("lock-table"));
    gather_locks(&parts, &table_at, &mut e);
    resolve_kinds(&mut e, &parts);
    for lock in &mut e.locks {
        lock.age_seconds = o.now.zip(lock.created_at).map(|(now, c)| (now - c).num_seconds());
    }
    let backend_s3 = backend.and_then(s3_backend);
    for lock in &e.locks {
        lock_findings(lock, o, backend_s3.as_ref(), &mut e.findings);
    }
    if let Some(b) = backend {
        e.backend_fix = backend_findings(b, &e.locks, &mut e.findings);
    }
    commands(&parts, &table_name, &mut e);
    scrub(&mut e, &parts.access_keys, o.redact);
    Ok(e)
}

fn recognised(p: &Parts) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |n: usize, what: &str| {
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    };
    say(p.errors.len(), "Terraform lock error(s)");
    say(p.items.len(), "DynamoDB item(s)");
    say(p.infos.len(), "lock info document(s) (an Info, or a .tflock body)");
    say(p.etags.len(), "ETag(s) (head-object)");
    say(usize::from(p.backend.is_some()), "backend configuration");
    say(usize::from(p.digest.is_some()), "digest-mismatch error");
    say(p.dropped, "more part(s), past the limit, not read");
    if p.truncated {
        out.push(format!("the input was cut at {} MB", parts::INPUT_CAP / (1024 * 1024)));
    }
    out
}

/// One lock per ID, from every part that shows it.
fn gather_locks(p: &Parts, table_at: &SourceAddress, e: &mut Explanation) {
    let add = |e: &mut Explanation, l: ExplainedLock| match e.locks.iter_mut().find(|x| x.id == l.id) {
        Some(x) => {
            for f in l.from {
                if !x.from.contains(&f) {
                    x.from.push(f);
                }
            }
            x.table |= l.table;
            x.lockfile |= l.lockfile;
            x.info = x.info.take().or(l.info);
            for (mine, theirs) in [
                (&mut x.path, l.path),
                (&mut x.who, l.who),
                (&mut x.operation, l.operation),
                (&mut x.version, l.version),
            ] {
                if mine.is_empty() {
                    *mine = theirs;
                }
            }
            x.created_at = x.created_at.or(l.created_at);
        }
        None => e.locks.push(l),
    };
    for err in &p.errors {
        add(
            e,
            ExplainedLock {
                id: err.id.clone(),
                path: err.path.clone(),
                who: err.who.clone(),
                operation: err.operation.clone(),
                version: err.version.clone(),
                created_at: err.created,
                from: vec!["terraform error"],
                table: err.kind == Some(ErrorKind::Table),
                lockfile: err.kind == Some(ErrorKind::Lockfile),
                ..ExplainedLock::default()
            },
        );
    }
    for raw in &p.items {
        match parse_item(table_at, raw.clone(), "ExpiresAt") {
            Item::Lock(l) => add(
                e,
                ExplainedLock {
                    id: l.id.clone(),
                    path: l.lock_key.clone(),
                    who: l.who.clone(),
                    operation: l.operation.clone(),
                    version: l.version.clone(),
                    created_at: Some(l.created),
                    from: vec!["dynamodb item"],
                    info: Some(l.raw_info.clone()),
                    table: true,
                    ..ExplainedLock::default()
                },
            ),
            Item::Digest(key) => e.findings.push(Finding {
                scenario: "not-a-lock",
                summary: format!("{key} is a digest item, not a lock: never delete it"),
                evidence: vec![format!(
                    "its LockID ends in {DIGEST_SUFFIX}: Terraform keeps the state's checksum there (a lock has an Info \
                     attribute); deleting it makes Terraform fail its next read"
                )],
                lock_id: None,
            }),
            Item::Unreadable(u) => e.findings.push(Finding {
                scenario: "unreadable",
                summary: format!(
                    "the item {} is not a lock Terraform wrote: leave it alone",
                    u.lock_key.as_deref().unwrap_or("(no LockID)")
                ),
                evidence: vec![u.reason],
                lock_id: None,
            }),
        }
    }
    let anywhere = SourceAddress::own(SourceKind::Bucket, "bucket");
    for info in &p.infos {
        match parse_lock_info(&anywhere, "", info) {
            Ok(l) => add(
                e,
                ExplainedLock {
                    id: l.id.clone(),
                    path: l.path.clone(),
                    who: l.who.clone(),
                    operation: l.operation.clone(),
                    version: l.version.clone(),
                    created_at: Some(l.created),
                    from: vec!["lock info"],
                    info: Some(info.clone()),
                    ..ExplainedLock::default()
                },
            ),
            Err(reason) => e.findings.push(Finding {
                scenario: "unreadable",
                summary: "a lock info document that is not one Terraform wrote".into(),
                evidence: vec![reason],
                lock_id: None,
            }),
        }
    }
    for l in &mut e.locks {
        l.created = l.created_at.map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        l.workspace = workspace(&l.path);
    }
}

/// `default`, or the workspace of a `<bucket>/env:/<ws>/<key>` path.
fn workspace(path: &str) -> String {
    crate::lock::workspace_of(path).unwrap_or_else(|| "default".into())
}

/// Table, lockfile or both: from the error, the item, an ETag, the backend.
fn resolve_kinds(e: &mut Explanation, p: &Parts) {
    let b = p.backend.as_ref();
    let (has_table, has_file) =
        (b.is_some_and(|b| b.dynamodb_table.is_some()), b.is_some_and(|b| b.use_lockfile == Some(true)));
    let single = e.locks.len() == 1;
    for l in &mut e.locks {
        if !l.table && !l.lockfile {
            if single && !p.etags.is_empty() {
                l.lockfile = true;
            } else {
                l.table = has_table;
                l.lockfile = has_file;
            }
        }
        // Terraform takes the lockfile first: its error about the table means the file was free. An
        // item or a body alone, under a backend that takes both, is likely one half of two.
        if !l.from.contains(&"terraform error") && has_table && has_file {
            l.table = true;
            l.lockfile = true;
        }
        if l.lockfile && single {
            l.etag = p.etags.last().cloned();
        }
        l.kind = match (l.table, l.lockfile) {
            (true, true) => "double",
            (true, false) => "table",
            (false, true) => "lockfile",
            (false, false) => "unknown",
        };
    }
}

/// The backend as the lock model reads it, when bucket and key are known.
fn s3_backend(b: &BackendSettings) -> Option<S3Backend> {
    Some(S3Backend {
        bucket: b.bucket.clone()?,
        key: b.key.clone()?,
        dynamodb_table: b.dynamodb_table.clone(),
        use_lockfile: b.use_lockfile == Some(true),
        workspace_key_prefix: b.workspace_key_prefix.clone().unwrap_or_else(|| DEFAULT_WORKSPACE_KEY_PREFIX.into()),
        connection: Default::default(),
    })
}

fn lock_findings(l: &ExplainedLock, o: &Options, backend: Option<&S3Backend>, out: &mut Vec<Finding>) {
    let window = o.stale_after.as_secs();
    let who = if l.who.is_empty() { "someone".to_string() } else { l.who.clone() };
    let mut finding = |scenario, summary: String, evidence: Vec<String>| {
        out.push(Finding { scenario, summary, evidence, lock_id: Some(l.id.clone()) })
    };
    match (l.age_seconds, &l.created) {
        (Some(age), Some(created)) if age < -CLOCK_SKEW_ALLOWANCE.num_seconds() => finding(
            "clock-ahead",
            format!(
                "the lock was created {} in the future: the writer's clock, or this one, is wrong",
                format_age(age.unsigned_abs())
            ),
            vec![format!("Created {created}; {}", o.clock)],
        ),
        (Some(age), Some(created)) if age >= window as i64 => finding(
            "stale",
            format!(
                "held for {} by {who} ({}), longer than the {} window: most likely its runner crashed or was killed",
                format_age(age as u64),
                if l.operation.is_empty() { "unknown operation" } else { &l.operation },
                format_age(window)
            ),
            vec![
                format!("Created {created}; {}", o.clock),
                "check no apply for this state is still running (the CI job of that runner) before releasing it".into(),
            ],
        ),
        (Some(age), Some(created)) => finding(
            "young",
            format!(
                "taken {} ago by {who}: an apply may still be running; wait, or give Terraform -lock-timeout=10m",
                format_age(age.max(0) as u64)
            ),
            vec![format!("Created {created}; within the {} window ({})", format_age(window), o.clock)],
        ),
        _ => {}
    }
    if let Some(b) = backend {
        if !l.path.is_empty() && b.workspace_of(&l.path).is_none() {
            let expected = format!("{}/{}", b.bucket, b.key);
            finding(
                "path-drift",
                format!(
                    "the lock is on {}, but the backend's state is {expected}: the backend key changed, and terraform \
                     force-unlock from this configuration cannot reach the old lock",
                    l.path
                ),
                vec![
                    format!("lock Path {}", l.path),
                    format!("backend bucket {} key {}", b.bucket, b.key),
                    "either restore the old key in the backend block (the diff below), or run terraform init \
                     -migrate-state to the new key and release the old lock with the commands below"
                        .into(),
                ],
            );
        }
    }
}

/// The backend's findings, and its fixed block as a diff when one applies.
fn backend_findings(b: &BackendSettings, locks: &[ExplainedLock], findings: &mut Vec<Finding>) -> Option<String> {
    let mut fix: Option<(String, String)> = None; // (line to replace or "", new line)
    if b.dynamodb_table.is_none() && b.use_lockfile != Some(true) {
        findings.push(Finding {
            scenario: "no-locking",
            summary: "the backend takes no lock: two runs can write the state at once and corrupt it".into(),
            evidence: vec!["neither use_lockfile = true nor dynamodb_table is set".into()],
            lock_id: None,
        });
        fix = Some((String::new(), "use_lockfile = true".into()));
    } else if b.dynamodb_table.is_some() && b.use_lockfile != Some(true) {
        findings.push(Finding {
            scenario: "dynamodb-table-deprecated",
            summary:
                "Terraform 1.11+ deprecates dynamodb_table: add use_lockfile = true (with both set, runs take both \
                      locks, so old and new configurations stay safe during the move; OpenTofu keeps both)"
                    .into(),
            evidence: vec![format!(
                "dynamodb_table = {:?}, use_lockfile unset",
                b.dynamodb_table.as_deref().unwrap_or("")
            )],
            lock_id: None,
        });
    }
    if !b.credentials.is_empty() {
        findings.push(Finding {
            scenario: "credentials-pasted",
            summary: "the backend configuration holds credentials: they are not shown here; rotate them if this text \
                      was shared, and use a profile or the environment instead"
                .into(),
            evidence: vec![format!("settings: {}", b.credentials.join(", "))],
            lock_id: None,
        });
    }
    // Drift: put the lock's key back.
    if let (Some(bucket), Some(key)) = (&b.bucket, &b.key) {
        let drifted = locks.iter().find(|l| {
            l.path.starts_with(&format!("{bucket}/"))
                && s3_backend(b).is_some_and(|s| s.workspace_of(&l.path).is_none())
        });
        if let Some(l) = drifted {
            let old_key = l.path[bucket.len() + 1..].to_string();
            let old_key = match crate::lock::workspace_of(&l.path) {
                Some(ws) => old_key
                    .strip_prefix(&format!("{}/{ws}/", b.workspace_key_prefix.as_deref().unwrap_or("env:")))
                    .map(str::to_string)
                    .unwrap_or(old_key),
                None => old_key,
            };
            fix = Some((format!("key = {key:?}"), format!("key = {old_key:?}")));
        }
    }
    fix.map(|(old, new)| diff(b, &old, &new))
}

/// The backend block as pasted (credentials masked) against the fixed one:
/// `old` replaced by `new`, or `new` added before the closing brace.
fn diff(b: &BackendSettings, old: &str, new: &str) -> String {
    let lines: Vec<String> = if b.block_lines.is_empty() {
        let mut l = vec!["backend \"s3\" {".to_string()];
        for (k, v) in
            [("bucket", &b.bucket), ("key", &b.key), ("region", &b.region), ("dynamodb_table", &b.dynamodb_table)]
        {
            if let Some(v) = v {
                l.push(format!("  {k} = {v:?}"));
            }
        }
        l.push("}".into());
        l
    } else {
        b.block_lines.clone()
    };
    let mut out = vec!["--- backend \"s3\" (as pasted)".to_string(), "+++ backend \"s3\" (fixed)".to_string()];
    let indent =
        lines.get(1).map(|l| l.chars().take_while(|c| c.is_whitespace()).collect()).unwrap_or_else(|| "  ".to_string());
    let normal = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut done = false;
    for (i, line) in lines.iter().enumerate() {
        if !old.is_empty() && !done && normal(line).starts_with(&normal(old)) {
            out.push(format!("-{line}"));
            out.push(format!("+{indent}{new}"));
            done = true;
        } else if old.is_empty() && !done && i == lines.len() - 1 {
            out.push(format!("+{indent}{new}"));
            out.push(format!(" {line}"));
            done = true;
        } else {
            out.push(format!(" {line}"));
        }
    }
    out.join("\n")
}

/// The ranked commands for each lock, and for a digest mismatch.
fn commands(p: &Parts, table_name: &Option<String>, e: &mut Explanation) {
    let b = p.backend.as_ref();
    let region = b.and_then(|b| b.region.clone());
    let place =
        |kind: SourceKind, name: &str| SourceAddress { region: region.clone(), ..SourceAddress::own(kind, name) };
    let mut table_unknown = false;
    for l in e.locks.iter().take(COMMANDED_LOCKS) {
        let table_at = table_name.as_deref().map(|t| place(SourceKind::Table, t));
        let (bucket, key) = match l.path.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                (bucket.to_string(), format!("{key}{LOCKFILE_SUFFIX}"))
            }
            _ => (String::new(), String::new()),
        };
        let bucket_at = place(SourceKind::Bucket, &bucket);
        // An Info with control characters cannot be pasted exactly: pin the ID instead.
        let info = l.info.as_deref().filter(|i| !i.chars().any(char::is_control));
        let target = ReleaseTarget {
            id: &l.id,
            table: match (&table_at, l.table) {
                (Some(at), true) => Some(TableHalf { at, lock_key: &l.path, info }),
                _ => None,
            },
            lockfile: (l.lockfile && !bucket.is_empty()).then(|| FileHalf {
                at: &bucket_at,
                key: &key,
                etag: l.etag.as_deref(),
            }),
            dynamodb_endpoint: b.and_then(|b| b.dynamodb_endpoint.as_deref()),
            s3_endpoint: b.and_then(|b| b.s3_endpoint.as_deref()),
        };
        table_unknown |= l.table && table_at.is_none();
        for c in release_commands(&target) {
            e.commands.push(ExplainCommand {
                lock_id: Some(l.id.clone()),
                name: c.name,
                command: c.command,
                why: c.why,
            });
        }
    }
    if table_unknown {
        e.findings.push(Finding {
            scenario: "table-unknown",
            summary:
                "the lock table's name is not in what was pasted: add the backend block (dynamodb_table) for the aws \
                      dynamodb command; tf-lock-reaper unlock finds the lock in the account's lock tables by itself"
                    .into(),
            evidence: vec!["a table lock, and no dynamodb_table".into()],
            lock_id: None,
        });
    }
    if let Some(d) = &p.digest {
        let bucket = d.bucket.clone().or_else(|| b.and_then(|b| b.bucket.clone()));
        let key = d.key.clone().or_else(|| b.and_then(|b| b.key.clone()));
        let mut evidence = Vec::new();
        evidence.extend(d.calculated.as_ref().map(|c| format!("the state in S3 has checksum {c}")));
        evidence.extend(d.stored.as_ref().map(|s| format!("the table holds {s}")));
        e.findings.push(Finding {
            scenario: "digest-mismatch",
            summary: "the state's checksum in the lock table does not match the state in S3: a write was interrupted, \
                      or S3 is slow to show the last one; wait a minute and retry before changing anything"
                .into(),
            evidence,
            lock_id: None,
        });
        if let (Some(table), Some(bucket), Some(key), Some(calculated)) = (table_name, bucket, key, &d.calculated) {
            let at = place(SourceKind::Table, table);
            let digest_key = format!("{bucket}/{key}{DIGEST_SUFFIX}");
            let endpoint = b.and_then(|b| b.dynamodb_endpoint.as_deref());
            for c in digest_commands(&at, &digest_key, calculated, d.stored.as_deref(), endpoint) {
                e.commands.push(ExplainCommand { lock_id: None, name: c.name, command: c.command, why: c.why });
            }
        }
    }
}

/// Every string of the answer without control characters, with pasted
/// access keys masked, and with `redact` account IDs in ARNs masked too.
fn scrub(e: &mut Explanation, keys: &[String], redact: bool) {
    let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut f = |s: &mut String| {
        let mut out: String = s.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
        for k in &keys {
            out = out.replace(k, &format!("{}****************", &k[..4]));
        }
        if redact {
            out = mask_accounts(&out);
        }
        *s = out;
    };
    e.clock.iter_mut().for_each(&mut f);
    e.backend_fix.iter_mut().for_each(&mut f);
    e.recognised.iter_mut().for_each(&mut f);
    for l in &mut e.locks {
        for s in [&mut l.id, &mut l.path, &mut l.who, &mut l.operation, &mut l.version, &mut l.workspace] {
            f(s);
        }
    }
    for x in &mut e.findings {
        f(&mut x.summary);
        x.evidence.iter_mut().for_each(&mut f);
        x.lock_id.iter_mut().for_each(&mut f);
    }
    for c in &mut e.commands {
        f(&mut c.command);
        f(&mut c.why);
        c.lock_id.iter_mut().for_each(&mut f);
    }
}

/// `arn:aws:…:123456789012:…` → the account as `************`.
pub fn mask_accounts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("arn:") {
        out.push_str(&rest[..i]);
        let arn_end =
            rest[i..].find(|c: char| c.is_whitespace() || c == '\'' || c == '"').map_or(rest.len(), |e| i + e);
        let arn = &rest[i..arn_end];
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        if fields.len() == 6 && fields[4].len() == 12 && fields[4].chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&[fields[0], fields[1], fields[2], fields[3], "************", fields[5]].join(":"));
        } else {
            out.push_str(arn);
        }
        rest = &rest[arn_end..];
    }
    out.push_str(rest);
    out
}

/// The answer as text for a terminal.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    out.push_str(&format!("recognised: {}\n", e.recognised.join("; ")));
    match &e.clock {
        Some(c) => out.push_str(&format!("clock: ages are on {c}\n")),
        None => out.push_str("clock: none given, so no ages\n"),
    }
    for (i, l) in e.locks.iter().enumerate() {
        out.push_str(&format!("\nlock {}: {} lock on {} (workspace {})\n", i + 1, l.kind, l.path, l.workspace));
        out.push_str(&format!("  ID:        {}\n", l.id));
        let who: Vec<&str> = [l.who.as_str(), l.operation.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
        if !who.is_empty() || !l.version.is_empty() {
            let version = if l.version.is_empty() { String::new() } else { format!(" (Terraform {})", l.version) };
            out.push_str(&format!("  who:       {}{version}\n", who.join(" ")));
        }
        if let Some(created) = &l.created {
            let age = l.age_seconds.map(|a| {
                if a >= 0 {
                    format!(", {} ago", format_age(a as u64))
                } else {
                    ", in the future".into()
                }
            });
            out.push_str(&format!("  created:   {created}{}\n", age.unwrap_or_default()));
        }
        out.push_str(&format!("  read from: {}\n", l.from.join(", ")));
    }
    if !e.findings.is_empty() {
        out.push_str("\nfindings:\n");
        for f in &e.findings {
            out.push_str(&format!("  {}: {}\n", f.scenario, f.summary));
            for ev in &f.evidence {
                out.push_str(&format!("      - {ev}\n"));
            }
        }
    }
    if !e.commands.is_empty() {
        out.push_str("\ncommands, safest first:\n");
        for (i, c) in e.commands.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n     ({})\n", i + 1, c.command, c.why));
        }
    }
    if let Some(d) = &e.backend_fix {
        out.push_str("\nbackend fix:\n");
        for line in d.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
