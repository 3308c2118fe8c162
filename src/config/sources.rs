//! The lock sources and the roles to reach them: `LOCK_TABLES` (names or
//! ARNs), `LOCK_BUCKETS` (`bucket[/prefix][@region[:account]]`),
//! `ASSUME_ROLES` and `ASSUME_ROLE_EXTERNAL_ID`, read the same way by every
//! command. Each source is typed here, once (`domain::source`).

use crate::config::naming::{valid_bucket_name, valid_table_name};
use crate::config::reader::Reader;
use crate::domain::source::SourceAddress;

/// One `ASSUME_ROLES` entry: the role the reaper assumes for `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: String,
    pub account: String,
}

/// `LOCK_TABLES` and `LOCK_BUCKETS`: at least one source between them, or
/// `ORGANIZATION_ACCOUNTS` to discover them.
pub(crate) fn read_sources(r: &mut Reader<'_>) -> (Vec<SourceAddress>, Vec<SourceAddress>) {
    let (tables, buckets) = read_source_lists(r);
    if r.list("LOCK_TABLES").is_empty() && r.get("LOCK_BUCKETS").is_none() && r.get("ORGANIZATION_ACCOUNTS").is_none() {
        r.problem(
            "LOCK_TABLES",
            "",
            "at least one DynamoDB table name, comma-separated (or lockfile buckets in LOCK_BUCKETS, or \
                ORGANIZATION_ACCOUNTS to discover lock tables)",
        );
    }
    (tables, buckets)
}

/// `LOCK_TABLES` and `LOCK_BUCKETS`, each entry checked; either may be empty.
pub(crate) fn read_source_lists(r: &mut Reader<'_>) -> (Vec<SourceAddress>, Vec<SourceAddress>) {
    let mut buckets: Vec<SourceAddress> = Vec::new();
    for entry in r.list("LOCK_BUCKETS") {
        let parsed = SourceAddress::bucket(&entry).map_err(|e| e.to_string()).and_then(|b| {
            if valid_bucket_name(&b.name) {
                Ok(b)
            } else {
                Err(format!("{:?} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, . -)", b.name))
            }
        });
        match parsed {
            Ok(b) if buckets.contains(&b) => r.problem("LOCK_BUCKETS", &entry, "each bucket source once (a duplicate)"),
            Ok(b) => buckets.push(b),
            Err(why) => r.problem(
                "LOCK_BUCKETS",
                &entry,
                format!("comma-separated `bucket[/prefix][@region[:account]]` entries: {why}"),
            ),
        }
    }
    let mut tables: Vec<SourceAddress> = Vec::new();
    for t in r.list("LOCK_TABLES") {
        match SourceAddress::table(&t) {
            Err(why) => r.problem("LOCK_TABLES", &t, why.to_string()),
            Ok(_) if !valid_table_name(&t) => r.problem(
                "LOCK_TABLES",
                &t,
                "DynamoDB table names of 3-255 characters from a-z, A-Z, 0-9, _ - . (or a table ARN)",
            ),
            Ok(address) if tables.contains(&address) => r.problem("LOCK_TABLES", &t, "each table once (a duplicate)"),
            Ok(address) => tables.push(address),
        }
    }
    (tables, buckets)
}

/// `arn:aws…:iam::<12-digit account>:role/<name>`.
pub(crate) fn valid_role_arn(arn: &str) -> bool {
    let part = |i: usize| arn.split(':').nth(i);
    arn.starts_with("arn:aws")
        && part(2) == Some("iam")
        && part(3) == Some("")
        && crate::domain::source::valid_account(part(4).unwrap_or_default())
        && part(5).is_some_and(|res| res.starts_with("role/") && res.len() > 5)
}

/// `ASSUME_ROLES` (at most one role per account) and `ASSUME_ROLE_EXTERNAL_ID`.
pub(crate) fn read_roles(r: &mut Reader<'_>) -> (Vec<AssumeRole>, Option<String>) {
    let mut roles: Vec<AssumeRole> = Vec::new();
    for arn in r.list("ASSUME_ROLES") {
        let account = arn.split(':').nth(4).unwrap_or_default().to_string();
        if !valid_role_arn(&arn) {
            r.problem("ASSUME_ROLES", &arn, "comma-separated role ARNs: arn:aws:iam::<12-digit account>:role/<name>");
        } else if roles.iter().any(|o| o.account == account) {
            r.problem("ASSUME_ROLES", &arn, format!("at most one role per account ({account} has two)"));
        } else {
            roles.push(AssumeRole { arn, account });
        }
    }
    let external_id = r.get("ASSUME_ROLE_EXTERNAL_ID").map(str::to_string);
    (roles, external_id)
}
