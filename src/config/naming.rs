//! AWS naming rules the configuration checks: bucket names, table names
//! and ARNs.

/// S3 general purpose bucket naming rules (the parts that matter here).
pub(crate) fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `arn:<partition>:<service>:<region>:<12-digit account>:<resource>`, where
/// the resource starts with `<resource_type>:` when one is given.
pub(crate) fn valid_arn(arn: &str, service: &str, resource_type: Option<&str>) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, svc, region, account, resource] = parts[..] else {
        return false;
    };
    let resource_ok = match resource_type {
        Some(t) => resource.strip_prefix(t).and_then(|r| r.strip_prefix(':')).is_some_and(|n| !n.is_empty()),
        None => !resource.is_empty() && !resource.contains(':'),
    };
    prefix == "arn"
        && partition.starts_with("aws")
        && svc == service
        && !region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource_ok
}

pub(crate) fn valid_table_name(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.contains(":table/");
    }
    (3..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert!(valid_arn("arn:aws:sns:eu-west-1:123456789012:t", "sns", None));
        assert!(valid_arn("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t.fifo", "sns", None));
        assert!(!valid_arn("arn:aws:sns:eu-west-1:12345:t", "sns", None));
        assert!(!valid_arn("arn:aws:sns:eu-west-1:123456789012:", "sns", None));
        assert!(valid_arn(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pd-Ab12Cd",
            "secretsmanager",
            Some("secret")
        ));
        assert!(!valid_arn("arn:aws:secretsmanager:eu-west-1:123456789012:pd", "secretsmanager", Some("secret")));
    }
}
