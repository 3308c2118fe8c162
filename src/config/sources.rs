//! The lock sources and the roles to reach them: `LOCK_TABLES`,
//! `LOCK_BUCKETS` (`bucket[/prefix][@region[:account]]`), `ASSUME_ROLES`
//! and `ASSUME_ROLE_EXTERNAL_ID`, read the same way by every command.

use crate::config::naming::{valid_bucket_name, valid_table_name};
use crate::config::reader::Reader;
use crate::domain::source::SourceAddress;

/// One `LOCK_BUCKETS` entry: `bucket[/prefix][@region[:account]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub bucket: String,
    /// Key prefix to list under; empty for the whole bucket.
    pub prefix: String,
    /// `None`: the reaper's own region.
    pub region: Option<String>,
    /// `None`: the reaper's own account (or a bucket policy shares it).
    pub account: Option<String>,
}

impl BucketSpec {
    /// In the reaper's own account and region.
    pub fn own(bucket: &str, prefix: &str) -> Self {
        BucketSpec { bucket: bucket.to_string(), prefix: prefix.to_string(), region: None, account: None }
    }

    /// `bucket`, `bucket@region` or `bucket@region:account`: what the lock
    /// sources port is given, and the lockfiles' `source`.
    pub fn address(&self) -> String {
        match (&self.region, &self.account) {
            (Some(r), Some(a)) => format!("{}@{r}:{a}", self.bucket),
            (Some(r), None) => format!("{}@{r}", self.bucket),
            _ => self.bucket.clone(),
        }
    }

    /// The entry as configured (`bucket/prefix@region`): the source's name.
    pub fn name(&self) -> String {
        let at = self.address();
        let (bucket, location) = at.split_once('@').map_or((at.as_str(), None), |(b, l)| (b, Some(l)));
        let mut name = bucket.to_string();
        if !self.prefix.is_empty() {
            name = format!("{name}/{}", self.prefix);
        }
        match location {
            Some(l) => format!("{name}@{l}"),
            None => name,
        }
    }

    pub fn parse(entry: &str) -> Result<BucketSpec, String> {
        let (path, location) = match entry.rsplit_once('@') {
            Some((p, l)) => (p, Some(l)),
            None => (entry, None),
        };
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if !valid_bucket_name(bucket) {
            return Err(format!("{bucket:?} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, . -)"));
        }
        let at = SourceAddress::bucket(bucket, location)?;
        Ok(BucketSpec {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region: at.region,
            account: at.account,
        })
    }
}

/// One `ASSUME_ROLES` entry: the role the reaper assumes for `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: String,
    pub account: String,
}

/// `LOCK_TABLES` and `LOCK_BUCKETS`: at least one source between them.
pub(crate) fn read_sources(r: &mut Reader<'_>) -> (Vec<String>, Vec<BucketSpec>) {
    let (tables, buckets) = read_source_lists(r);
    if tables.is_empty() && r.get("LOCK_BUCKETS").is_none() {
        r.problem(
            "LOCK_TABLES",
            "",
            "at least one DynamoDB table name, comma-separated (or lockfile buckets in LOCK_BUCKETS)",
        );
    }
    (tables, buckets)
}

/// `LOCK_TABLES` and `LOCK_BUCKETS`, each entry checked; either may be empty.
pub(crate) fn read_source_lists(r: &mut Reader<'_>) -> (Vec<String>, Vec<BucketSpec>) {
    let tables = r.list("LOCK_TABLES");
    let mut buckets: Vec<BucketSpec> = Vec::new();
    for entry in r.list("LOCK_BUCKETS") {
        match BucketSpec::parse(&entry) {
            Ok(b) if buckets.contains(&b) => r.problem("LOCK_BUCKETS", &entry, "each bucket source once (a duplicate)"),
            Ok(b) => buckets.push(b),
            Err(why) => r.problem(
                "LOCK_BUCKETS",
                &entry,
                format!("comma-separated `bucket[/prefix][@region[:account]]` entries: {why}"),
            ),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &tables {
        match SourceAddress::table(t) {
            Err(why) => r.problem("LOCK_TABLES", t, why),
            Ok(_) if !valid_table_name(t) => r.problem(
                "LOCK_TABLES",
                t,
                "DynamoDB table names of 3-255 characters from a-z, A-Z, 0-9, _ - . (or a table ARN)",
            ),
            Ok(address) if !seen.insert(address.clone()) => {
                r.problem("LOCK_TABLES", t, "each table once (a duplicate)")
            }
            Ok(_) => {}
        }
    }
    (tables, buckets)
}

/// `ASSUME_ROLES` (at most one role per account) and `ASSUME_ROLE_EXTERNAL_ID`.
pub(crate) fn read_roles(r: &mut Reader<'_>) -> (Vec<AssumeRole>, Option<String>) {
    let mut roles: Vec<AssumeRole> = Vec::new();
    for arn in r.list("ASSUME_ROLES") {
        let account = arn.split(':').nth(4).unwrap_or_default().to_string();
        let valid = arn.starts_with("arn:aws")
            && arn.split(':').nth(2) == Some("iam")
            && arn.split(':').nth(3) == Some("")
            && crate::domain::source::valid_account(&account)
            && arn.split(':').nth(5).is_some_and(|res| res.starts_with("role/") && res.len() > 5);
        if !valid {
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
