//! `SOURCES_URI`: the sources kept in a document in S3 instead of the
//! function's environment (which Lambda caps at 4 KB), for teams that may
//! not read Organizations. A JSON object with the same entries as the
//! variables, each a string or a list of strings:
//!
//! ```json
//! {"LOCK_TABLES": ["arn:aws:dynamodb:eu-west-1:111111111111:table/locks", "…"],
//!  "LOCK_BUCKETS": ["tfstate@eu-west-1:111111111111"],
//!  "ASSUME_ROLES": ["arn:aws:iam::111111111111:role/tf-lock-reaper-access"]}
//! ```
//!
//! Its lists are added to the environment's; a bad entry is a configuration
//! error like one in the environment, named with the document.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::error::{ConfigError, Problem};

/// The entries a sources document may hold.
pub(crate) const DOCUMENT_ENTRIES: [&str; 7] = [
    "LOCK_TABLES",
    "LOCK_BUCKETS",
    "ASSUME_ROLES",
    "ORGANIZATION_ACCOUNTS",
    "ORGANIZATION_SKIP",
    "ORGANIZATION_ROLE_ARN",
    "MEMBER_ROLE_NAME",
];

/// Entries that are lists: the document's are added to the environment's.
const LISTS: [&str; 5] = ["LOCK_TABLES", "LOCK_BUCKETS", "ASSUME_ROLES", "ORGANIZATION_ACCOUNTS", "ORGANIZATION_SKIP"];

/// The environment with the document's entries merged in, and what came
/// from the document (to name it in problems).
pub(crate) struct Merged {
    pub vars: HashMap<String, String>,
    from_document: Vec<(String, String)>,
    uri: String,
}

/// Merge the document at `uri` (its text) into `vars`. A document that is
/// not a JSON object of known entries is a configuration error naming it.
pub(crate) fn merge(vars: &HashMap<String, String>, uri: &str, text: &str) -> Result<Merged, ConfigError> {
    let problem = |variable: String, value: &str, expected: &str| Problem {
        variable,
        value: value.chars().take(200).collect(),
        expected: expected.to_string(),
    };
    let at = |entry: &str| format!("SOURCES_URI {uri}: {entry}");
    let doc: serde_json::Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(ConfigError {
                problems: vec![problem(
                    format!("SOURCES_URI {uri}"),
                    text,
                    "a JSON object such as {\"LOCK_TABLES\": [\"…\"], \"ASSUME_ROLES\": [\"…\"]}",
                )],
            })
        }
    };
    let mut problems = Vec::new();
    let mut merged = vars.clone();
    let mut from_document = Vec::new();
    for (key, value) in &doc {
        if !DOCUMENT_ENTRIES.contains(&key.as_str()) {
            problems.push(problem(at(key), &value.to_string(), &format!("one of {}", DOCUMENT_ENTRIES.join(", "))));
            continue;
        }
        let entries: Vec<String> = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).map(str::to_string).collect()
            }
            other => {
                problems.push(problem(at(key), &other.to_string(), "a string or a list of strings"));
                continue;
            }
        };
        from_document.extend(entries.iter().map(|e| (key.clone(), e.clone())));
        let current = merged.get(key.as_str()).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let joined = entries.join(",");
        let value = match current {
            Some(env) if LISTS.contains(&key.as_str()) => format!("{env},{joined}"),
            Some(_) => {
                problems.push(problem(
                    at(key),
                    &joined,
                    &format!("{key} in the environment or the document, not both"),
                ));
                continue;
            }
            None => joined,
        };
        merged.insert(key.clone(), value);
    }
    if problems.is_empty() {
        Ok(Merged { vars: merged, from_document, uri: uri.to_string() })
    } else {
        Err(ConfigError { problems })
    }
}

impl Merged {
    /// Problems about entries that came from the document name it.
    pub(crate) fn name_the_document(&self, mut e: ConfigError) -> ConfigError {
        for p in &mut e.problems {
            if self.from_document.iter().any(|(k, v)| *k == p.variable && v.trim() == p.value) {
                p.variable = format!("SOURCES_URI {}: {}", self.uri, p.variable);
            }
        }
        e
    }
}

/// `s3://bucket/key` → `(bucket, key)`.
pub(crate) fn parse_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const URI: &str = "s3://config/tf-lock-reaper/sources.json";

    #[test]
    fn lists_are_added_to_the_environments() {
        let doc = r#"{"LOCK_TABLES": ["a", "b"], "ASSUME_ROLES": "arn:aws:iam::111111111111:role/r"}"#;
        let m = merge(&env(&[("LOCK_TABLES", "own"), ("ACTION", "delete")]), URI, doc).unwrap();
        assert_eq!(m.vars["LOCK_TABLES"], "own,a,b");
        assert_eq!(m.vars["ASSUME_ROLES"], "arn:aws:iam::111111111111:role/r");
        assert_eq!(m.vars["ACTION"], "delete", "the rest of the environment stays");
    }

    #[test]
    fn a_bad_document_is_a_configuration_error_that_names_it() {
        let e = merge(&env(&[]), URI, "LOCK_TABLES=a").err().unwrap().to_string();
        assert!(
            e.contains("SOURCES_URI s3://config/tf-lock-reaper/sources.json=\"LOCK_TABLES=a\": expected a JSON object"),
            "{e}"
        );
        let doc = r#"{"ACTION": "delete", "LOCK_BUCKETS": [1], "MEMBER_ROLE_NAME": "x"}"#;
        let e = merge(&env(&[("MEMBER_ROLE_NAME", "y")]), URI, doc).err().unwrap().to_string();
        for needle in [
            "SOURCES_URI s3://config/tf-lock-reaper/sources.json: ACTION=\"\\\"delete\\\"\": expected one of LOCK_TABLES",
            "LOCK_BUCKETS=\"[1]\": expected a string or a list of strings",
            "MEMBER_ROLE_NAME=\"x\": expected MEMBER_ROLE_NAME in the environment or the document, not both",
            "3 problem(s)",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        assert_eq!(parse_uri(URI), Some(("config".into(), "tf-lock-reaper/sources.json".into())));
        assert_eq!(parse_uri("https://x/y"), None);
        assert_eq!(parse_uri("s3://bucket-only"), None);
    }
}
