//! Recognising what was pasted, in any mix: Terraform's or OpenTofu's lock
//! error (0.12 to 1.15: with or without colours, the `│` box, CI log
//! prefixes), DynamoDB JSON as `aws dynamodb get-item`/`scan` print it, a
//! bare LockInfo document (an item's `Info` or a `.tflock` body), `aws
//! s3api head-object` output, a `backend "s3"` block, `*.tfbackend` or
//! `-backend-config` lines, and the digest-mismatch error. Every parser is
//! total: any text gives parts or nothing, never a panic.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::lock::{AttrValue, RawItem};

/// Bytes of input read; the rest is ignored (and said).
pub const INPUT_CAP: usize = 8 * 1024 * 1024;
/// Parts of one kind kept; more are counted.
pub const PARTS_CAP: usize = 200;

/// A lock as Terraform's error prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorLock {
    pub id: String,
    pub path: String,
    pub operation: String,
    pub who: String,
    pub version: String,
    pub created: Option<DateTime<Utc>>,
    pub created_text: String,
    pub info: String,
    /// Which lock the error was about: `ConditionalCheckFailedException`
    /// (table) or `StatusCode: 412` (lockfile), when the error says.
    pub kind: Option<ErrorKind>,
    /// OpenTofu writes its name in the error.
    pub opentofu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Table,
    Lockfile,
}

/// A digest mismatch as Terraform reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestMismatch {
    /// The value Terraform says to store (the state S3 holds).
    pub calculated: Option<String>,
    /// The value the table holds, when the message says it.
    pub stored: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// `backend "s3"` settings as pasted (a block, a `.tfbackend`, or
/// `-backend-config` lines merged over it). Credentials are noted, never kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendSettings {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub region: Option<String>,
    pub dynamodb_table: Option<String>,
    pub use_lockfile: Option<bool>,
    pub workspace_key_prefix: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub s3_endpoint: Option<String>,
    /// The names of credential settings that were pasted (their values are dropped).
    pub credentials: Vec<String>,
    /// The block's lines as pasted, credentials masked: the base of the diff.
    pub block_lines: Vec<String>,
}

/// Everything recognised in one paste.
#[derive(Debug, Default)]
pub struct Parts {
    pub errors: Vec<ErrorLock>,
    /// DynamoDB items (from `Item`, `Items`, or a bare item).
    pub items: Vec<RawItem>,
    /// Bare LockInfo documents: an `Info` string or a `.tflock` body.
    pub infos: Vec<String>,
    /// ETags from `head-object` (or `get-object`) output.
    pub etags: Vec<String>,
    pub backend: Option<BackendSettings>,
    pub digest: Option<DigestMismatch>,
    /// Parts past [`PARTS_CAP`], and whether the input was cut at [`INPUT_CAP`].
    pub dropped: usize,
    pub truncated: bool,
    /// `AKIA…`/`ASIA…` keys seen anywhere: masked wherever they would show.
    pub access_keys: Vec<String>,
}

impl Parts {
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
            && self.items.is_empty()
            && self.infos.is_empty()
            && self.etags.is_empty()
            && self.backend.is_none()
            && self.digest.is_none()
    }
}

/// Terminal escapes (CSI, OSC, two-byte) and other control characters
/// removed, the box Terraform 0.15+ draws removed, lines kept.
pub fn clean_text(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            '\r' => {}
            '│' | '╷' | '╵' | '┃' | '╻' | '╹' => out.push(' '),
            c if c.is_control() => {}
            c if crate::alert::text::is_invisible_format(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Everything recognisable in `input`.
pub fn recognise(input: &str) -> Parts {
    let mut parts = Parts::default();
    let input = if input.len() > INPUT_CAP {
        parts.truncated = true;
        let mut end = INPUT_CAP;
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        &input[..end]
    } else {
        input
    };
    let text = clean_text(input);
    parts.access_keys = access_keys(&text);
    let mut consumed = vec![false; text.lines().count()];
    json_documents(&text, &mut parts, &mut consumed);
    lock_errors(&text, &mut parts);
    parts.digest = digest_mismatch(&text);
    parts.backend = backend(&text, &consumed);
    parts
}

/// `AKIA…`/`ASIA…` access key IDs in the text.
fn access_keys(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 20 <= bytes.len() {
        let head = &bytes[i..i + 4];
        if (head == b"AKIA" || head == b"ASIA")
            && bytes[i + 4..i + 20].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            out.push(text[i..i + 20].to_string());
            i += 20;
        } else {
            i += 1;
        }
        if out.len() >= PARTS_CAP {
            break;
        }
    }
    out
}

/// Each JSON document that starts a line: DynamoDB JSON, a LockInfo, or
/// `head-object` output. Lines a document spans are marked consumed.
fn json_documents(text: &str, parts: &mut Parts, consumed: &mut [bool]) {
    let mut offset = 0;
    let line_starts: Vec<usize> =
        std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).filter(|&i| i <= text.len()).collect();
    for (n, &start) in line_starts.iter().enumerate() {
        if start < offset || consumed.get(n).copied().unwrap_or(true) {
            continue;
        }
        let line = &text[start..];
        let trimmed = line.trim_start_matches([' ', '\t']);
        if !trimmed.starts_with('{') {
            continue;
        }
        let at = start + (line.len() - trimmed.len());
        let mut stream = serde_json::Deserializer::from_str(&text[at..]).into_iter::<serde_json::Value>();
        let Some(Ok(value)) = stream.next() else { continue };
        let end = at + stream.byte_offset();
        offset = end;
        for (i, &s) in line_starts.iter().enumerate() {
            if s >= start && s < end {
                if let Some(c) = consumed.get_mut(i) {
                    *c = true;
                }
            }
        }
        classify_json(value, parts);
    }
}

fn classify_json(value: serde_json::Value, parts: &mut Parts) {
    let serde_json::Value::Object(map) = value else { return };
    let push_item = |parts: &mut Parts, item: &serde_json::Value| {
        if let Some(item) = dynamodb_item(item) {
            if parts.items.len() < PARTS_CAP {
                parts.items.push(item);
            } else {
                parts.dropped += 1;
            }
        }
    };
    if let Some(item) = map.get("Item") {
        push_item(parts, item);
    } else if let Some(serde_json::Value::Array(items)) = map.get("Items") {
        for item in items {
            push_item(parts, item);
        }
    } else if map.get("LockID").is_some_and(|v| v.get("S").is_some()) {
        push_item(parts, &serde_json::Value::Object(map));
    } else if let Some(serde_json::Value::String(etag)) = map.get("ETag") {
        parts.etags.push(etag.clone());
    } else if map.get("ID").is_some_and(|v| v.is_string()) && map.contains_key("Created") {
        if parts.infos.len() < PARTS_CAP {
            parts.infos.push(serde_json::Value::Object(map).to_string());
        } else {
            parts.dropped += 1;
        }
    }
}

/// A DynamoDB-JSON item (`{"LockID": {"S": …}, …}`) as the lock model reads it.
fn dynamodb_item(item: &serde_json::Value) -> Option<RawItem> {
    let map = item.as_object()?;
    let mut raw = RawItem::new();
    for (name, value) in map {
        let typed = value.as_object()?;
        let v = match (typed.get("S"), typed.get("N")) {
            (Some(serde_json::Value::String(s)), _) => AttrValue::S(s.clone()),
            (_, Some(serde_json::Value::String(n))) => AttrValue::N(n.clone()),
            _ => AttrValue::Other(match typed.keys().next().map(String::as_str) {
                Some("BOOL") => "BOOL",
                Some("M") => "M",
                Some("L") => "L",
                Some("B") => "B",
                Some("NULL") => "NULL",
                _ => "other",
            }),
        };
        raw.insert(name.clone(), v);
    }
    raw.contains_key("LockID").then_some(raw)
}

/// The value after `label:` on a line, where the label starts a word.
fn field<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let pat = format!("{label}:");
    let mut from = 0;
    while let Some(i) = line[from..].find(&pat) {
        let at = from + i;
        let starts_word = line[..at].chars().next_back().is_none_or(|c| c.is_whitespace());
        if starts_word {
            return Some(line[at + pat.len()..].trim());
        }
        from = at + pat.len();
    }
    None
}

/// Every `Lock Info:` block, with the error line before it.
fn lock_errors(text: &str, parts: &mut Parts) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].contains("Lock Info:") {
            i += 1;
            continue;
        }
        let context = lines[i.saturating_sub(25)..i].join("\n");
        let mut lock = ErrorLock {
            kind: if context.contains("ConditionalCheckFailed") {
                Some(ErrorKind::Table)
            } else if context.contains("StatusCode: 412") || context.contains("PreconditionFailed") {
                Some(ErrorKind::Lockfile)
            } else {
                None
            },
            opentofu: context.contains("OpenTofu") || context.contains("tofu "),
            ..ErrorLock::default()
        };
        let mut j = i + 1;
        let mut seen = 0;
        while j < lines.len() && j <= i + 12 && !lines[j].contains("Lock Info:") {
            let line = lines[j];
            let mut hit = |slot: &mut String, label: &str| {
                if slot.is_empty() {
                    if let Some(v) = field(line, label) {
                        *slot = v.chars().take(512).collect();
                        seen += 1;
                    }
                }
            };
            hit(&mut lock.id, "ID");
            hit(&mut lock.path, "Path");
            hit(&mut lock.operation, "Operation");
            hit(&mut lock.who, "Who");
            hit(&mut lock.version, "Version");
            hit(&mut lock.created_text, "Created");
            if !line.contains("Lock Info:") {
                hit(&mut lock.info, "Info");
            }
            j += 1;
        }
        lock.created = go_time(&lock.created_text);
        if !lock.id.is_empty() && seen >= 2 {
            if parts.errors.len() < PARTS_CAP {
                parts.errors.push(lock);
            } else {
                parts.dropped += 1;
            }
        }
        i = j;
    }
}

/// Go's `time.Time` format (`2024-11-14 03:22:11.408742 +0000 UTC`), or RFC 3339.
pub fn go_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    // Drop the zone abbreviation and a monotonic-clock suffix (`m=+0.01`).
    let mut words: Vec<&str> = text.split_whitespace().take_while(|w| !w.starts_with("m=")).collect();
    if words.len() == 4 && words[3].chars().all(|c| c.is_ascii_alphabetic()) {
        words.pop();
    }
    let joined = words.join(" ");
    if let Ok(t) = DateTime::parse_from_str(&joined, "%Y-%m-%d %H:%M:%S%.f %z") {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&joined, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// The digest-mismatch error's values.
fn digest_mismatch(text: &str) -> Option<DigestMismatch> {
    if !text.contains("does not have the expected content") && !text.contains("Digest value") {
        return None;
    }
    let hex = |s: &str| -> Option<String> {
        let word: String = s.trim().chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (word.len() == 32).then_some(word)
    };
    let mut d = DigestMismatch::default();
    for line in text.lines() {
        if let Some(i) = line.find("following value:") {
            d.calculated = d.calculated.take().or_else(|| hex(&line[i + "following value:".len()..]));
        }
        if let Some(v) = field(line, "Calculated checksum") {
            d.calculated = d.calculated.take().or_else(|| hex(v));
        }
        if let Some(v) = field(line, "Stored checksum") {
            d.stored = d.stored.take().or_else(|| hex(v));
        }
        if let Some(v) = field(line, "Bucket") {
            d.bucket.get_or_insert_with(|| v.chars().take(256).collect());
        }
        if let Some(v) = field(line, "Key") {
            d.key.get_or_insert_with(|| v.chars().take(1024).collect());
        }
    }
    // "…following value:" may end a line, the value on the next.
    if d.calculated.is_none() {
        if let Some(i) = text.find("following value:") {
            d.calculated = hex(&text[i + "following value:".len()..]);
        }
    }
    Some(d)
}

/// Settings whose values are secrets: noted, never kept or shown.
const CREDENTIALS: &[&str] =
    &["access_key", "secret_key", "token", "session_token", "external_id", "web_identity_token", "sts_endpoint_secret"];

/// The `backend "s3"` block, then `.tfbackend` / `-backend-config` lines over it.
fn backend(text: &str, consumed: &[bool]) -> Option<BackendSettings> {
    let block = block_backend(text);
    let block_lines = block.as_ref().map_or(0..0, |(_, lines)| lines.clone());
    let mut settings = block.map(|(s, _)| s);
    let mut found_lines = false;
    let mut lines_settings = BackendSettings::default();
    for (n, line) in text.lines().enumerate() {
        if consumed.get(n).copied().unwrap_or(false) || block_lines.contains(&n) {
            continue;
        }
        for (k, v) in backend_config_pairs(line) {
            found_lines |= apply(&mut lines_settings, &k, &v);
        }
    }
    if !found_lines {
        return settings;
    }
    let base = settings.get_or_insert_with(BackendSettings::default);
    let o = lines_settings;
    macro_rules! over {
        ($($f:ident),*) => { $( if o.$f.is_some() { base.$f = o.$f.clone(); } )* };
    }
    over!(bucket, key, region, dynamodb_table, use_lockfile, workspace_key_prefix, dynamodb_endpoint, s3_endpoint);
    for c in o.credentials {
        if !base.credentials.contains(&c) {
            base.credentials.push(c);
        }
    }
    settings
}

/// `key = value`, `-backend-config=key=value` or `-backend-config="key=value"`
/// pairs on one line (outside a block).
fn backend_config_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    if line.contains("backend-config") {
        for token in line.split_whitespace() {
            let token = token.trim_start_matches('-');
            let Some(rest) = token.strip_prefix("backend-config") else { continue };
            let rest = unquote(rest.trim_start_matches(['=', ' ']));
            if let Some((k, v)) = rest.split_once('=') {
                out.push((k.trim().to_string(), unquote(v)));
            }
        }
        return out;
    }
    // A literal value only: `region = var.region` in a provider block is not the backend's.
    if let Some((k, v)) = line.split_once('=') {
        let (k, v) = (k.trim(), v.trim());
        let literal = v.starts_with('"') || v == "true" || v == "false";
        if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') && literal {
            out.push((k.to_string(), unquote(v)));
        }
    }
    out
}

/// One setting into `s`; whether the name is an s3 backend setting.
fn apply(s: &mut BackendSettings, key: &str, value: &str) -> bool {
    let v = Some(value.chars().take(1024).collect::<String>());
    match key {
        "bucket" => s.bucket = v,
        "key" => s.key = v,
        "region" => s.region = v,
        "dynamodb_table" => s.dynamodb_table = v,
        "use_lockfile" => s.use_lockfile = value.parse().ok(),
        "workspace_key_prefix" => s.workspace_key_prefix = v,
        "dynamodb_endpoint" => s.dynamodb_endpoint = v,
        "endpoint" => s.s3_endpoint = v,
        k if CREDENTIALS.contains(&k) => {
            if !s.credentials.iter().any(|c| c == k) {
                s.credentials.push(k.to_string());
            }
        }
        _ => return false,
    }
    true
}

/// The first `backend "s3" { … }` block in the text, and the lines it spans.
fn block_backend(text: &str) -> Option<(BackendSettings, std::ops::Range<usize>)> {
    let start = text.find("backend \"s3\"")?;
    let open = start + text[start..].find('{')?;
    let close = matching_brace(text, open)?;
    let block_text = &text[start..=close];
    let body: hcl::Body = hcl::parse(block_text).ok()?;
    let block = body.blocks().find(|b| b.identifier() == "backend")?;
    let mut s = BackendSettings::default();
    for a in block.body().attributes() {
        let value = match a.expr() {
            hcl::Expression::String(v) => v.clone(),
            hcl::Expression::Bool(b) => b.to_string(),
            _ => continue,
        };
        apply(&mut s, a.key(), &value);
    }
    for b in block.body().blocks() {
        if b.identifier() == "assume_role" || b.identifier() == "assume_role_with_web_identity" {
            s.credentials.push(b.identifier().to_string());
        }
    }
    // `endpoints = { dynamodb = "…", s3 = "…" }`
    if let Some(hcl::Expression::Object(map)) =
        block.body().attributes().find(|a| a.key() == "endpoints").map(|a| a.expr())
    {
        for (k, v) in map {
            let (hcl::ObjectKey::Identifier(k), hcl::Expression::String(v)) = (k, v) else { continue };
            match k.as_str() {
                "dynamodb" => s.dynamodb_endpoint = Some(v.clone()),
                "s3" => s.s3_endpoint = Some(v.clone()),
                _ => {}
            }
        }
    }
    s.block_lines = block_text
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            if CREDENTIALS.contains(&key) {
                let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
                format!("{indent}{key} = \"<redacted>\"")
            } else {
                l.trim_end().to_string()
            }
        })
        .collect();
    let first = text[..start].matches('\n').count();
    let last = first + block_text.matches('\n').count();
    Some((s, first..last + 1))
}

/// The `}` closing the `{` at `open`, skipping strings; bounded by the text.
fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[open..].char_indices() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}
