//! Where a lock source lives, typed once when the configuration is read
//! and carried as it is through the ports to the adapters: its kind, its
//! name, the key prefix of a bucket source, and the region and account
//! when they are not the reaper's own. Its `Display` is the address string
//! the report, alert keys, metrics and fix commands show:
//! - a table: its bare name (the reaper's own account and region), or its
//!   ARN `arn:<partition>:dynamodb:<region>:<account>:table/<name>`;
//! - a bucket: `bucket`, `bucket@<region>` or `bucket@<region>:<account>`.
//!
//! Pure parsing over plain strings.

use std::fmt;

use serde::Serialize;

/// Where locks live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A DynamoDB lock table (`dynamodb_table`).
    Table,
    /// `<key>.tflock` objects in a state bucket (`use_lockfile = true`).
    Bucket,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Table => "table",
            SourceKind::Bucket => "bucket",
        }
    }
}

/// A table or bucket, located.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceAddress {
    pub kind: SourceKind,
    /// The table or bucket name, bare.
    pub name: String,
    /// The key prefix a bucket source lists under; empty for the whole
    /// bucket (and for every table).
    pub prefix: String,
    /// `None`: the reaper's own region.
    pub region: Option<String>,
    /// `None`: the reaper's own account (or whatever its credentials reach).
    pub account: Option<String>,
    /// The partition of a table given by ARN (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: Option<String>,
}

/// Why a `LOCK_TABLES` or `LOCK_BUCKETS` entry is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("a table ARN has the form arn:aws:dynamodb:<region>:<12-digit account>:table/<name>")]
    TableArn,
    #[error("{0:?} is not a region name (e.g. eu-west-1)")]
    Region(String),
    #[error("{0:?} is not a 12-digit account ID")]
    Account(String),
}

/// An AWS region name: `eu-west-1`, `us-gov-west-1`, `cn-north-1`, …
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts.last().is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// A 12-digit AWS account ID.
pub fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())
}

impl SourceAddress {
    /// In the reaper's own account and region.
    pub fn own(kind: SourceKind, name: &str) -> Self {
        SourceAddress {
            kind,
            name: name.to_string(),
            prefix: String::new(),
            region: None,
            account: None,
            partition: None,
        }
    }

    /// A `LOCK_TABLES` entry: a bare name, or a table ARN.
    pub fn table(entry: &str) -> Result<SourceAddress, AddressError> {
        let Some(rest) = entry.strip_prefix("arn:") else { return Ok(SourceAddress::own(SourceKind::Table, entry)) };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else { return Err(AddressError::TableArn) };
        let name = resource.strip_prefix("table/").filter(|n| !n.is_empty() && !n.contains('/'));
        match name {
            Some(name)
                if partition.starts_with("aws")
                    && service == "dynamodb"
                    && valid_region(region)
                    && valid_account(account) =>
            {
                Ok(SourceAddress {
                    region: Some(region.to_string()),
                    account: Some(account.to_string()),
                    partition: Some(partition.to_string()),
                    ..SourceAddress::own(SourceKind::Table, name)
                })
            }
            _ => Err(AddressError::TableArn),
        }
    }

    /// A `LOCK_BUCKETS` entry, `bucket[/prefix][@region[:account]]`; the
    /// bucket name itself is checked by the configuration.
    pub fn bucket(entry: &str) -> Result<SourceAddress, AddressError> {
        let (path, location) = match entry.rsplit_once('@') {
            Some((p, l)) => (p, Some(l)),
            None => (entry, None),
        };
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let own = SourceAddress { prefix: prefix.to_string(), ..SourceAddress::own(SourceKind::Bucket, bucket) };
        let Some(location) = location else { return Ok(own) };
        let (region, account) = match location.split_once(':') {
            Some((r, a)) => (r, Some(a)),
            None => (location, None),
        };
        if !valid_region(region) {
            return Err(AddressError::Region(region.to_string()));
        }
        if let Some(a) = account.filter(|a| !valid_account(a)) {
            return Err(AddressError::Account(a.to_string()));
        }
        Ok(SourceAddress { region: Some(region.to_string()), account: account.map(str::to_string), ..own })
    }

    /// The source as configured (a bucket with its prefix,
    /// `bucket/prefix@region`): the report's and the metrics' name for it.
    pub fn label(&self) -> String {
        if self.prefix.is_empty() {
            return self.to_string();
        }
        let mut label = self.path();
        self.push_location(&mut label);
        label
    }

    /// The name with the prefix of a bucket source (`bucket/prefix`), without
    /// region or account: the `Bucket` or `TableName` metric dimension.
    pub fn path(&self) -> String {
        if self.prefix.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.name, self.prefix)
        }
    }

    /// The name an API call takes: a table in another account reached with
    /// the reaper's own credentials (a resource-based policy) by its ARN,
    /// anything else by its bare name.
    pub fn api_name(&self) -> String {
        match (self.kind, &self.account) {
            (SourceKind::Table, Some(_)) => self.to_string(),
            _ => self.name.clone(),
        }
    }

    /// The same source as seen from inside its own account (a role assumed
    /// there): the bare name reaches it.
    pub fn in_its_account(&self) -> SourceAddress {
        SourceAddress { account: None, partition: None, ..self.clone() }
    }

    /// `@region[:account]` for a bucket elsewhere.
    fn push_location(&self, out: &mut String) {
        match (&self.region, &self.account) {
            (Some(r), Some(a)) => out.push_str(&format!("@{r}:{a}")),
            (Some(r), None) => out.push_str(&format!("@{r}")),
            _ => {}
        }
    }
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.region, &self.account) {
            (SourceKind::Table, Some(region), Some(account)) => {
                let partition = self.partition.as_deref().unwrap_or("aws");
                write!(f, "arn:{partition}:dynamodb:{region}:{account}:table/{}", self.name)
            }
            (SourceKind::Table, ..) => f.write_str(&self.name),
            (SourceKind::Bucket, ..) => {
                let mut s = self.name.clone();
                self.push_location(&mut s);
                f.write_str(&s)
            }
        }
    }
}

/// Reports and alerts show the address string.
impl Serialize for SourceAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_by_name_or_arn() {
        assert_eq!(SourceAddress::table("locks"), Ok(SourceAddress::own(SourceKind::Table, "locks")));
        let arn = "arn:aws:dynamodb:eu-west-1:111111111111:table/locks";
        let a = SourceAddress::table(arn).unwrap();
        assert_eq!(
            (a.name.as_str(), a.region.as_deref(), a.account.as_deref()),
            ("locks", Some("eu-west-1"), Some("111111111111"))
        );
        assert_eq!(
            (a.to_string(), a.api_name(), a.in_its_account().api_name()),
            (arn.into(), arn.into(), "locks".into())
        );
        let gov = "arn:aws-us-gov:dynamodb:us-gov-west-1:111111111111:table/locks";
        assert_eq!(SourceAddress::table(gov).unwrap().to_string(), gov, "the partition is kept");
        for bad in [
            "arn:aws:dynamodb:eu-west-1:1111:table/locks",
            "arn:aws:s3:eu-west-1:111111111111:table/locks",
            "arn:aws:dynamodb:europe:111111111111:table/locks",
            "arn:aws:dynamodb:eu-west-1:111111111111:table/",
            "arn:aws:dynamodb:eu-west-1:111111111111:table/locks/stream/x",
        ] {
            assert_eq!(SourceAddress::table(bad), Err(AddressError::TableArn), "{bad}");
        }
    }

    #[test]
    fn buckets_with_prefix_region_and_account() {
        assert_eq!(SourceAddress::bucket("tfstate"), Ok(SourceAddress::own(SourceKind::Bucket, "tfstate")));
        let b = SourceAddress::bucket("tfstate/teams/a@eu-west-1:222222222222").unwrap();
        assert_eq!(
            (b.name.as_str(), b.prefix.as_str(), b.region.as_deref(), b.account.as_deref()),
            ("tfstate", "teams/a", Some("eu-west-1"), Some("222222222222"))
        );
        assert_eq!(b.to_string(), "tfstate@eu-west-1:222222222222");
        assert_eq!(b.label(), "tfstate/teams/a@eu-west-1:222222222222");
        assert_eq!(b.api_name(), "tfstate", "a bucket is reached by its name");
        assert_eq!(SourceAddress::bucket("tfstate@ireland"), Err(AddressError::Region("ireland".into())));
        assert!(SourceAddress::bucket("tfstate@eu-west-1:12").unwrap_err().to_string().contains("12-digit"));
        let gov = SourceAddress::bucket("tfstate@us-gov-west-1").unwrap();
        assert_eq!((gov.region.as_deref(), gov.account.as_deref()), (Some("us-gov-west-1"), None));
    }

    #[test]
    fn serialized_as_the_address_string() {
        let a = SourceAddress::table("arn:aws:dynamodb:eu-west-1:111111111111:table/locks").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""arn:aws:dynamodb:eu-west-1:111111111111:table/locks""#);
    }

    #[test]
    fn region_names() {
        for ok in ["eu-west-1", "us-east-2", "us-gov-west-1", "cn-north-1", "ap-southeast-4"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["", "eu", "eu-west", "EU-west-1", "eu-west-x", "europe-west-1"] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
