//! Where a lock source lives: its name, and the region and account when
//! they are not the reaper's own. A source is identified everywhere (the
//! report, alert keys, metrics, fix commands) by its address string:
//! - a table: its bare name (the reaper's own account and region), or its
//!   ARN `arn:<partition>:dynamodb:<region>:<account>:table/<name>`;
//! - a bucket: `bucket`, `bucket@<region>` or `bucket@<region>:<account>`.
//!
//! Pure parsing over plain strings.

use serde::Serialize;

/// A table or bucket, located.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SourceAddress {
    /// The table or bucket name, bare.
    pub name: String,
    /// `None`: the reaper's own region.
    pub region: Option<String>,
    /// `None`: the reaper's own account (or whatever its credentials reach).
    pub account: Option<String>,
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
    pub fn own(name: &str) -> Self {
        SourceAddress { name: name.to_string(), region: None, account: None }
    }

    /// A `LOCK_TABLES` entry: a bare name, or a table ARN.
    pub fn table(entry: &str) -> Result<SourceAddress, String> {
        let Some(rest) = entry.strip_prefix("arn:") else { return Ok(SourceAddress::own(entry)) };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err("a table ARN has the form arn:aws:dynamodb:<region>:<account>:table/<name>".to_string());
        };
        let name = resource.strip_prefix("table/").filter(|n| !n.is_empty() && !n.contains('/'));
        match name {
            Some(name)
                if partition.starts_with("aws")
                    && service == "dynamodb"
                    && valid_region(region)
                    && valid_account(account) =>
            {
                Ok(SourceAddress {
                    name: name.to_string(),
                    region: Some(region.to_string()),
                    account: Some(account.to_string()),
                })
            }
            _ => Err("a table ARN has the form arn:aws:dynamodb:<region>:<12-digit account>:table/<name>".to_string()),
        }
    }

    /// The location part of a `LOCK_BUCKETS` entry, after `@`:
    /// `<region>` or `<region>:<account>`.
    pub fn bucket(name: &str, location: Option<&str>) -> Result<SourceAddress, String> {
        let Some(location) = location else { return Ok(SourceAddress::own(name)) };
        let (region, account) = match location.split_once(':') {
            Some((r, a)) => (r, Some(a)),
            None => (location, None),
        };
        if !valid_region(region) {
            return Err(format!("{region:?} is not a region name (e.g. eu-west-1)"));
        }
        if let Some(a) = account.filter(|a| !valid_account(a)) {
            return Err(format!("{a:?} is not a 12-digit account ID"));
        }
        Ok(SourceAddress {
            name: name.to_string(),
            region: Some(region.to_string()),
            account: account.map(str::to_string),
        })
    }

    /// Read an address string back (see the module docs).
    pub fn parse(kind: crate::domain::lock::SourceKind, address: &str) -> SourceAddress {
        use crate::domain::lock::SourceKind;
        match kind {
            SourceKind::Table => SourceAddress::table(address).unwrap_or_else(|_| SourceAddress::own(address)),
            SourceKind::Bucket => match address.split_once('@') {
                Some((name, location)) => {
                    SourceAddress::bucket(name, Some(location)).unwrap_or_else(|_| SourceAddress::own(address))
                }
                None => SourceAddress::own(address),
            },
        }
    }

    /// In the reaper's own account and region.
    pub fn is_own(&self) -> bool {
        self.region.is_none() && self.account.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lock::SourceKind;

    #[test]
    fn tables_by_name_or_arn() {
        assert_eq!(SourceAddress::table("locks"), Ok(SourceAddress::own("locks")));
        let a = SourceAddress::table("arn:aws:dynamodb:eu-west-1:111111111111:table/locks").unwrap();
        assert_eq!(
            (a.name.as_str(), a.region.as_deref(), a.account.as_deref()),
            ("locks", Some("eu-west-1"), Some("111111111111"))
        );
        for bad in [
            "arn:aws:dynamodb:eu-west-1:1111:table/locks",
            "arn:aws:s3:eu-west-1:111111111111:table/locks",
            "arn:aws:dynamodb:europe:111111111111:table/locks",
            "arn:aws:dynamodb:eu-west-1:111111111111:table/",
            "arn:aws:dynamodb:eu-west-1:111111111111:table/locks/stream/x",
        ] {
            assert!(SourceAddress::table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_with_region_and_account() {
        assert_eq!(SourceAddress::bucket("tfstate", None), Ok(SourceAddress::own("tfstate")));
        let b = SourceAddress::bucket("tfstate", Some("eu-west-1:222222222222")).unwrap();
        assert_eq!((b.region.as_deref(), b.account.as_deref()), (Some("eu-west-1"), Some("222222222222")));
        assert!(SourceAddress::bucket("tfstate", Some("ireland")).unwrap_err().contains("not a region name"));
        assert!(SourceAddress::bucket("tfstate", Some("eu-west-1:12")).unwrap_err().contains("12-digit"));
        assert_eq!(
            SourceAddress::parse(SourceKind::Bucket, "tfstate@us-gov-west-1"),
            SourceAddress { name: "tfstate".into(), region: Some("us-gov-west-1".into()), account: None }
        );
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
