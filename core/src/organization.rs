//! An AWS Organization as the reaper sees it: the tree of roots, OUs and
//! accounts, which accounts a configuration puts in scope
//! (`ORGANIZATION_ACCOUNTS`, `ORGANIZATION_SKIP`, OUs counted recursively,
//! `ACTIVE` accounts only), and the ARNs discovery builds (the member role
//! of an account, a found table). Pure code over plain data.

use std::collections::{BTreeSet, HashMap};

/// One member account as Organizations lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, …
    pub status: String,
}

/// Roots, OUs and accounts, each with its parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgTree {
    /// Child (OU or account ID) → parent (root or OU ID).
    pub parent: HashMap<String, String>,
    pub accounts: Vec<OrgAccount>,
}

/// What `ORGANIZATION_ACCOUNTS` and `ORGANIZATION_SKIP` leave to look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Account IDs to search, sorted.
    pub accounts: Vec<String>,
    /// Accounts under a target left out by `ORGANIZATION_SKIP`.
    pub skipped: usize,
    /// Accounts under a target that are not `ACTIVE` (closed, suspended).
    pub inactive: usize,
    /// Targets that name nothing in the organisation (a typo, a moved OU).
    pub unknown_targets: Vec<String>,
}

impl OrgTree {
    /// The account or OU and every ancestor up to its root.
    fn lineage<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let mut next = Some(id);
        std::iter::from_fn(move || {
            let current = next?;
            next = self.parent.get(current).map(String::as_str);
            Some(current)
        })
    }

    fn knows(&self, id: &str) -> bool {
        self.parent.contains_key(id) || self.parent.values().any(|p| p == id)
    }

    /// The accounts `targets` (`all`, or root, OU and account IDs) name,
    /// minus those `skip` names (OU or account IDs), recursively.
    pub fn scope(&self, targets: &[String], skip: &[String]) -> Scope {
        let all = targets.iter().any(|t| t == "all");
        let targeted: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        let skipped: BTreeSet<&str> = skip.iter().map(String::as_str).collect();
        let mut scope = Scope {
            unknown_targets: targets.iter().filter(|t| *t != "all" && !self.knows(t)).cloned().collect(),
            ..Scope::default()
        };
        for account in &self.accounts {
            if !(all || self.lineage(&account.id).any(|id| targeted.contains(id))) {
                continue;
            }
            if self.lineage(&account.id).any(|id| skipped.contains(id)) {
                scope.skipped += 1;
            } else if account.status != "ACTIVE" {
                scope.inactive += 1;
            } else {
                scope.accounts.push(account.id.clone());
            }
        }
        scope.accounts.sort();
        scope
    }
}

/// `arn:<partition>:iam::<account>:role/<name>`: the role discovery assumes
/// in a member account.
pub fn member_role_arn(partition: &str, account: &str, role_name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{role_name}")
}

/// `arn:<partition>:dynamodb:<region>:<account>:table/<name>`.
pub fn table_arn(partition: &str, region: &str, account: &str, table: &str) -> String {
    format!("arn:{partition}:dynamodb:{region}:{account}:table/{table}")
}

/// An `ORGANIZATION_ACCOUNTS` / `ORGANIZATION_SKIP` entry: a root
/// (`r-…`), an OU (`ou-…-…`) or a 12-digit account ID.
pub fn valid_org_id(id: &str) -> bool {
    let tail_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if let Some(rest) = id.strip_prefix("ou-") {
        let parts: Vec<&str> = rest.split('-').collect();
        return parts.len() == 2 && parts.iter().all(|p| tail_ok(p));
    }
    id.strip_prefix("r-").is_some_and(tail_ok) || crate::source::valid_account(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// r-root ─┬─ 111111111111 (management)
    ///         ├─ ou-root-prod ─┬─ 222222222222
    ///         │                └─ ou-root-legacy ── 333333333333, 444444444444 (closed)
    ///         └─ ou-root-sandbox ── 555555555555
    fn tree() -> OrgTree {
        let edges = [
            ("111111111111", "r-root"),
            ("ou-root-prod", "r-root"),
            ("222222222222", "ou-root-prod"),
            ("ou-root-legacy", "ou-root-prod"),
            ("333333333333", "ou-root-legacy"),
            ("444444444444", "ou-root-legacy"),
            ("ou-root-sandbox", "r-root"),
            ("555555555555", "ou-root-sandbox"),
        ];
        let account =
            |id: &str, status: &str| OrgAccount { id: id.into(), name: format!("acct-{id}"), status: status.into() };
        OrgTree {
            parent: edges.iter().map(|(c, p)| (c.to_string(), p.to_string())).collect(),
            accounts: vec![
                account("111111111111", "ACTIVE"),
                account("222222222222", "ACTIVE"),
                account("333333333333", "ACTIVE"),
                account("444444444444", "SUSPENDED"),
                account("555555555555", "ACTIVE"),
            ],
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ous_count_recursively_and_only_active_accounts_are_in_scope() {
        let s = tree().scope(&ids(&["ou-root-prod"]), &[]);
        assert_eq!(s.accounts, ids(&["222222222222", "333333333333"]));
        assert_eq!((s.skipped, s.inactive), (0, 1), "the closed account is counted, not searched");
        let all = tree().scope(&ids(&["all"]), &[]);
        assert_eq!(all.accounts.len(), 4);
        assert_eq!(tree().scope(&ids(&["r-root"]), &[]).accounts, all.accounts);
    }

    #[test]
    fn skips_reach_down_the_tree_and_unknown_targets_are_named() {
        let s = tree().scope(&ids(&["all"]), &ids(&["ou-root-legacy", "555555555555"]));
        assert_eq!(s.accounts, ids(&["111111111111", "222222222222"]));
        assert_eq!(s.skipped, 3, "333…, the closed 444… under the skipped OU, and 555…");
        let s = tree().scope(&ids(&["222222222222", "ou-root-gone"]), &[]);
        assert_eq!(s.accounts, ids(&["222222222222"]));
        assert_eq!(s.unknown_targets, ids(&["ou-root-gone"]));
    }

    #[test]
    fn ids_and_arns() {
        for ok in ["r-ab12", "ou-ab12-cdef3456", "123456789012"] {
            assert!(valid_org_id(ok), "{ok}");
        }
        for bad in ["ou-ab12", "r-", "12345", "OU-AB12-CD34", "all"] {
            assert!(!valid_org_id(bad), "{bad}");
        }
        assert_eq!(member_role_arn("aws", "222222222222", "reaper"), "arn:aws:iam::222222222222:role/reaper");
        assert_eq!(
            table_arn("aws", "eu-west-1", "222222222222", "t"),
            "arn:aws:dynamodb:eu-west-1:222222222222:table/t"
        );
    }
}
