//! What the search for lock sources reads from the environment: an AWS
//! Organization's member accounts and regions (`ORGANIZATION_*`,
//! `MEMBER_ROLE_NAME`, `DISCOVER_*`), and the CLI given no source, which
//! looks in its own account and region (`DISCOVER_TABLES` narrows both by
//! name).

use std::collections::HashMap;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::reader::Reader;
use crate::config::sources::valid_role_arn;
use crate::domain::discovery::{BucketFilter, NameFilter};
use crate::domain::organization::valid_org_id;
use crate::domain::source::valid_region;

/// Discovery across an AWS Organization (`ORGANIZATION_ACCOUNTS` set).
#[derive(Debug, Clone)]
pub struct OrgDiscovery {
    /// `all`, or root, OU and account IDs.
    pub accounts: Vec<String>,
    pub skip: Vec<String>,
    pub organization_role_arn: Option<String>,
    pub member_role_name: String,
    /// Empty: the reaper's own region.
    pub regions: Vec<String>,
    pub tables: NameFilter,
    /// Lockfile buckets to find (`DISCOVER_BUCKETS`); empty: none.
    pub buckets: BucketFilter,
}

/// `DISCOVER_TABLES`, checked.
fn read_table_filter(r: &mut Reader<'_>) -> NameFilter {
    let patterns = r.list("DISCOVER_TABLES");
    NameFilter::new(&patterns).unwrap_or_else(|e| {
        r.problem("DISCOVER_TABLES", &patterns.join(","), format!("comma-separated table name globs ({e})"));
        NameFilter::any()
    })
}

/// `ORGANIZATION_ACCOUNTS` and what goes with it; `None` when it is unset
/// (then the variables that only make sense with it are problems).
pub(crate) fn read_org(r: &mut Reader<'_>) -> Option<OrgDiscovery> {
    let accounts = r.list("ORGANIZATION_ACCOUNTS");
    for a in accounts.iter().filter(|a| *a != "all" && !valid_org_id(a)) {
        r.problem(
            "ORGANIZATION_ACCOUNTS",
            a,
            "`all`, or comma-separated root (r-…), OU (ou-…-…) and 12-digit account IDs",
        );
    }
    let skip = r.list("ORGANIZATION_SKIP");
    for s in skip.iter().filter(|s| !valid_org_id(s)) {
        r.problem("ORGANIZATION_SKIP", s, "comma-separated OU (ou-…-…) and 12-digit account IDs");
    }
    let organization_role_arn = r.get("ORGANIZATION_ROLE_ARN").map(str::to_string);
    if let Some(arn) = organization_role_arn.as_deref().filter(|a| !valid_role_arn(a)) {
        r.problem("ORGANIZATION_ROLE_ARN", arn, "a role ARN: arn:aws:iam::<12-digit account>:role/<name>");
    }
    let member_role_name = r.get("MEMBER_ROLE_NAME").map(str::to_string);
    let valid_name =
        |n: &str| (1..=64).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if let Some(name) = member_role_name.as_deref().filter(|n| !valid_name(n)) {
        r.problem("MEMBER_ROLE_NAME", name, "an IAM role name (1-64 characters: letters, digits and +=,.@_-)");
    }
    let regions = r.list("DISCOVER_REGIONS");
    for region in regions.iter().filter(|g| !valid_region(g)) {
        r.problem("DISCOVER_REGIONS", region, "comma-separated region names, e.g. eu-west-1,us-east-1");
    }
    let tables = read_table_filter(r);
    let bucket_entries = r.list("DISCOVER_BUCKETS");
    let buckets = BucketFilter::new(&bucket_entries).unwrap_or_else(|bad| {
        r.problem(
            "DISCOVER_BUCKETS",
            &bad,
            "comma-separated bucket name globs, each with an optional /key-prefix, or tag:KEY=VALUE",
        );
        BucketFilter::default()
    });
    if accounts.is_empty() {
        for (name, set) in [
            ("ORGANIZATION_SKIP", !skip.is_empty()),
            ("ORGANIZATION_ROLE_ARN", organization_role_arn.is_some()),
            ("MEMBER_ROLE_NAME", member_role_name.is_some()),
            ("DISCOVER_BUCKETS", !buckets.is_empty()),
        ] {
            if set {
                let value = r.get(name).unwrap_or_default().to_string();
                r.problem(name, &value, "to be set only with ORGANIZATION_ACCOUNTS");
            }
        }
        return None;
    }
    let Some(member_role_name) = member_role_name else {
        r.problem(
            "MEMBER_ROLE_NAME",
            "",
            "the role to assume in each member account (required with ORGANIZATION_ACCOUNTS)",
        );
        return None;
    };
    Some(OrgDiscovery { accounts, skip, organization_role_arn, member_role_name, regions, tables, buckets })
}

/// `DISCOVER_TABLES` and the time budget of the search's calls.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    pub tables: NameFilter,
    pub run_budget: Duration,
}

impl DiscoverySettings {
    pub(crate) fn from_vars(vars: &HashMap<String, String>) -> Result<DiscoverySettings, ConfigError> {
        let mut r = Reader::new(vars);
        let tables = read_table_filter(&mut r);
        let run_budget = r.duration_or_default("RUN_BUDGET");
        r.finish()?;
        Ok(DiscoverySettings { tables, run_budget })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(pairs: &[(&str, &str)]) -> Result<Option<OrgDiscovery>, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut r = Reader::new(&vars);
        let org = read_org(&mut r);
        r.finish().map(|()| org)
    }

    #[test]
    fn an_organisation_is_read_whole_and_every_mistake_listed() {
        let o = org(&[
            ("ORGANIZATION_ACCOUNTS", "ou-ab12-cdef3456, 123456789012"),
            ("ORGANIZATION_SKIP", "ou-ab12-sandbox1"),
            ("MEMBER_ROLE_NAME", "tf-lock-reaper-access"),
            ("DISCOVER_REGIONS", "eu-west-1,us-east-1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.accounts, ["ou-ab12-cdef3456", "123456789012"]);
        assert_eq!(o.regions.len(), 2);
        assert!(org(&[]).unwrap().is_none());
        let e = org(&[
            ("ORGANIZATION_ACCOUNTS", "all,ou-nope,12"),
            ("ORGANIZATION_SKIP", "sandbox"),
            ("ORGANIZATION_ROLE_ARN", "reader"),
            ("DISCOVER_REGIONS", "mars"),
        ])
        .unwrap_err()
        .to_string();
        for needle in [
            "ORGANIZATION_ACCOUNTS=\"ou-nope\"",
            "ORGANIZATION_ACCOUNTS=\"12\"",
            "ORGANIZATION_SKIP=\"sandbox\"",
            "ORGANIZATION_ROLE_ARN=\"reader\"",
            "DISCOVER_REGIONS=\"mars\"",
            "MEMBER_ROLE_NAME=\"\": expected the role to assume in each member account",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        let e = org(&[("MEMBER_ROLE_NAME", "r")]).unwrap_err().to_string();
        assert!(e.contains("MEMBER_ROLE_NAME=\"r\": expected to be set only with ORGANIZATION_ACCOUNTS"), "{e}");
    }

    #[test]
    fn globs_are_checked_with_the_rest() {
        let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let s = DiscoverySettings::from_vars(&vars(&[("DISCOVER_TABLES", "terraform-*, *-locks")])).unwrap();
        assert_eq!(s.tables.patterns, ["terraform-*", "*-locks"]);
        let e = DiscoverySettings::from_vars(&vars(&[("DISCOVER_TABLES", "a[b"), ("RUN_BUDGET", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("DISCOVER_TABLES=\"a[b\": expected comma-separated table name globs"), "{e}");
        assert!(e.contains("RUN_BUDGET"), "{e}");
    }
}
