//! Finding lock sources by what they are, not by a list someone keeps:
//! which table names a search may look at (`DISCOVER_TABLES` globs), and
//! what a search found. Whether a table is Terraform's lock table is its key
//! schema (`TableDescription::is_terraform_lock_table`). Pure code.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

/// Name globs that narrow a search; none: every name.
#[derive(Debug, Clone)]
pub struct NameFilter {
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl NameFilter {
    pub fn new(patterns: &[String]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(Glob::new(p)?);
        }
        Ok(NameFilter { patterns: patterns.to_vec(), set: builder.build()? })
    }

    pub fn any() -> Self {
        NameFilter { patterns: Vec::new(), set: GlobSet::empty() }
    }

    pub fn matches(&self, name: &str) -> bool {
        self.patterns.is_empty() || self.set.is_match(name)
    }
}

/// Which buckets hold lockfiles (`DISCOVER_BUCKETS`): name globs, each
/// with an optional key prefix (`tfstate-*/teams/`), or `tag:KEY=VALUE`.
/// None: no bucket is searched.
#[derive(Debug, Clone, Default)]
pub struct BucketFilter {
    pub entries: Vec<String>,
    names: Vec<(GlobSet, String)>,
    tags: Vec<(String, String)>,
}

impl BucketFilter {
    /// The entries, or the first that is neither a glob nor `tag:KEY=VALUE`.
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let mut filter = BucketFilter { entries: entries.to_vec(), ..BucketFilter::default() };
        for e in entries {
            if let Some(tag) = e.strip_prefix("tag:") {
                let (k, v) = tag.split_once('=').filter(|(k, _)| !k.is_empty()).ok_or_else(|| e.clone())?;
                filter.tags.push((k.to_string(), v.to_string()));
                continue;
            }
            let (glob, prefix) = e.split_once('/').unwrap_or((e.as_str(), ""));
            let set =
                GlobSetBuilder::new().add(Glob::new(glob).map_err(|_| e.clone())?).build().map_err(|_| e.clone())?;
            filter.names.push((set, prefix.to_string()));
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a bucket's tags must be read to judge it.
    pub fn needs_tags(&self) -> bool {
        !self.tags.is_empty()
    }

    /// The key prefix to search `bucket` under, when it holds lockfiles:
    /// by name, else (given its tags) by tag.
    pub fn prefix_for(&self, bucket: &str, tags: Option<&[(String, String)]>) -> Option<String> {
        if let Some((_, prefix)) = self.names.iter().find(|(set, _)| set.is_match(bucket)) {
            return Some(prefix.clone());
        }
        let tagged = tags.is_some_and(|t| self.tags.iter().any(|want| t.contains(want)));
        tagged.then(String::new)
    }
}

/// The lock tables one account and region hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundTables {
    /// Tables whose only key is `LockID` (S), sorted.
    pub lock_tables: Vec<String>,
    /// Tables whose name the filter let through and whose keys were read.
    pub examined: usize,
    /// Tables the filter left out (never described).
    pub filtered_out: usize,
    /// A table whose keys could not be read: `table: why`.
    pub errors: Vec<String>,
}

impl FoundTables {
    /// `2 lock tables (terraform-locks, legacy) among 5 tables`.
    pub fn describe(&self) -> String {
        let total = self.examined + self.filtered_out;
        let mut text = format!("{} lock table(s) among {total} table(s)", self.lock_tables.len());
        if !self.lock_tables.is_empty() {
            text.push_str(&format!(": {}", self.lock_tables.join(", ")));
        }
        text
    }
}

/// One account or region that could not be searched: it fails alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryFailure {
    /// `None`: the organisation itself could not be read.
    pub account: Option<String>,
    pub region: Option<String>,
    /// The role assumed there, when one was.
    pub role: Option<String>,
    pub reason: String,
}

impl DiscoveryFailure {
    /// `account 222222222222 in eu-west-1 (role arn:…): why`.
    pub fn describe(&self) -> String {
        let mut at = match (&self.account, &self.region) {
            (Some(a), Some(r)) => format!("account {a} in {r}"),
            (Some(a), None) => format!("account {a}"),
            _ => "the organisation".to_string(),
        };
        if let Some(role) = &self.role {
            at.push_str(&format!(" (role {role})"));
        }
        format!("{at}: {}", self.reason)
    }
}

/// What one discovery found, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiscoverySummary {
    /// When it ran (AWS's clock), RFC 3339.
    pub discovered_at: String,
    /// Accounts searched (in scope and `ACTIVE`).
    pub accounts: usize,
    /// Accounts `ORGANIZATION_SKIP` left out.
    pub skipped_accounts: usize,
    /// Accounts in scope that are not `ACTIVE`.
    pub inactive_accounts: usize,
    /// Targets that name nothing in the organisation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_targets: Vec<String>,
    /// (account, region) pairs searched.
    pub searched: usize,
    /// Lock tables found.
    pub tables: usize,
    /// Lockfile buckets found (`DISCOVER_BUCKETS`).
    pub buckets: usize,
    /// Tables seen that are not lock tables (or filtered out by name).
    pub other_tables: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<DiscoveryFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::table::TableDescription;

    fn keys(schema: &[(&str, &str)], types: &[(&str, &str)]) -> TableDescription {
        TableDescription {
            key_schema: schema.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            attribute_types: types.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            ..TableDescription::default()
        }
    }

    #[test]
    fn a_lock_table_is_known_by_its_key_alone() {
        assert!(keys(&[("LockID", "HASH")], &[("LockID", "S")]).is_terraform_lock_table());
        assert!(!keys(&[("LockID", "HASH")], &[("LockID", "N")]).is_terraform_lock_table(), "a number key");
        assert!(!keys(&[("LockID", "HASH"), ("At", "RANGE")], &[("LockID", "S")]).is_terraform_lock_table());
        assert!(!keys(&[("AlertKey", "HASH")], &[("AlertKey", "S")]).is_terraform_lock_table(), "the state table");
        assert!(!keys(&[("lockid", "HASH")], &[("lockid", "S")]).is_terraform_lock_table(), "names are exact");
    }

    #[test]
    fn buckets_by_name_with_a_prefix_or_by_tag() {
        let f = BucketFilter::new(&["tfstate-*/teams/".into(), "tag:tf-lock-reaper=lockfiles".into()]).unwrap();
        assert!(f.needs_tags() && !f.is_empty());
        assert_eq!(f.prefix_for("tfstate-prod", None), Some("teams/".into()), "by name: no tags needed");
        let tagged = [("tf-lock-reaper".to_string(), "lockfiles".to_string())];
        assert_eq!(f.prefix_for("anything", Some(&tagged)), Some(String::new()));
        let other = [("tf-lock-reaper".to_string(), "no".to_string())];
        assert_eq!(f.prefix_for("anything", Some(&other)), None);
        assert_eq!(f.prefix_for("anything", None), None);
        assert!(BucketFilter::new(&[]).unwrap().is_empty());
        assert_eq!(BucketFilter::new(&["tag:=x".into()]).err(), Some("tag:=x".to_string()));
        assert_eq!(BucketFilter::new(&["[a".into()]).err(), Some("[a".to_string()));
    }

    #[test]
    fn globs_narrow_the_search_and_none_let_everything_through() {
        assert!(NameFilter::any().matches("anything"));
        let f = NameFilter::new(&["terraform-*".into(), "*-locks".into()]).unwrap();
        assert!(f.matches("terraform-state") && f.matches("team-a-locks"));
        assert!(!f.matches("orders"));
        assert!(NameFilter::new(&["[".into()]).is_err());
        let found = FoundTables {
            lock_tables: vec!["a".into(), "b".into()],
            examined: 3,
            filtered_out: 2,
            ..Default::default()
        };
        assert_eq!(found.describe(), "2 lock table(s) among 5 table(s): a, b");
    }
}
