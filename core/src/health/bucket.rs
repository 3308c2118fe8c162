//! State bucket checks: versioning, a lifecycle rule for noncurrent
//! versions, default encryption, Block Public Access, and (for lockfile
//! sources) that `*.tflock` objects can be listed.

use crate::alert::text::shell_quote;
use crate::health::Check;
use crate::source::SourceAddress;

/// Everything read about one bucket; each call may fail on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFacts {
    /// `Enabled`, `Suspended`, or `None` when versioning was never enabled.
    pub versioning: Result<Option<String>, String>,
    /// A lifecycle rule expires noncurrent versions.
    pub noncurrent_expiry: Result<bool, String>,
    /// The default encryption algorithm (`AES256`, `aws:kms`, …), if any.
    pub encryption: Result<Option<String>, String>,
    /// The four Block Public Access settings (BlockPublicAcls,
    /// IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets); `None`
    /// when the bucket has no configuration.
    pub public_access_block: Result<Option<[bool; 4]>, String>,
    /// How many `*.tflock` objects are listed under the source's prefix.
    pub lockfiles: Result<usize, String>,
}

/// The checks of one bucket source, named by its address
/// (`bucket@region:account` elsewhere); fixes use the bare bucket name (and
/// the region, when it is not the reaper's own).
pub fn bucket_checks(source: &SourceAddress, facts: &BucketFacts) -> Vec<Check> {
    let subject = format!("bucket {source}");
    let s = subject.as_str();
    let b = match &source.region {
        Some(region) => format!("{} --region {region}", shell_quote(&source.name)),
        None => shell_quote(&source.name),
    };
    vec![
        versioning(s, &b, &facts.versioning),
        noncurrent_versions(s, &b, &facts.noncurrent_expiry),
        encryption(s, &b, &facts.encryption),
        public_access_block(s, &b, &facts.public_access_block),
        lockfiles(s, &source.prefix, &facts.lockfiles),
    ]
}

/// `s`: the subject (`bucket …`); `b`: the bucket as the fix commands take it.
fn versioning(s: &str, b: &str, status: &Result<Option<String>, String>) -> Check {
    let fix = format!("aws s3api put-bucket-versioning --bucket {b} --versioning-configuration Status=Enabled");
    match status {
        Ok(Some(v)) if v == "Enabled" => Check::pass(s, "versioning", "Enabled: a bad state write can be rolled back"),
        Ok(Some(v)) => Check::fail(s, "versioning", format!("{v}: a corrupted state write is permanent"), fix),
        Ok(None) => Check::fail(s, "versioning", "never enabled: a corrupted state write is permanent", fix),
        Err(e) => Check::fail(
            s,
            "versioning",
            format!("cannot read it: {e}"),
            "allow s3:GetBucketVersioning, or check the bucket name",
        ),
    }
}

fn noncurrent_versions(s: &str, b: &str, expiry: &Result<bool, String>) -> Check {
    match expiry {
        Ok(true) => Check::pass(s, "noncurrent versions", "a lifecycle rule expires them"),
        Ok(false) => Check::warn(
            s,
            "noncurrent versions",
            "no lifecycle rule expires noncurrent versions: they are kept forever",
            format!(
                concat!(
                    "aws s3api put-bucket-lifecycle-configuration --bucket {} --lifecycle-configuration ",
                    r#"'{{"Rules":[{{"ID":"expire-old-state","Status":"Enabled","Filter":{{}},"#,
                    r#""NoncurrentVersionExpiration":{{"NoncurrentDays":90,"NewerNoncurrentVersions":10}}}}]}}'"#
                ),
                b
            ),
        ),
        Err(e) => {
            let why = format!("cannot read the lifecycle: {e}");
            Check::warn(s, "noncurrent versions", why, "allow s3:GetLifecycleConfiguration")
        }
    }
}

fn encryption(s: &str, b: &str, algorithm: &Result<Option<String>, String>) -> Check {
    match algorithm {
        Ok(Some(alg)) => Check::pass(s, "default encryption", alg.clone()),
        Ok(None) => Check::warn(
            s,
            "default encryption",
            "no default encryption configured",
            format!(
                concat!(
                    "aws s3api put-bucket-encryption --bucket {} --server-side-encryption-configuration ",
                    r#"'{{"Rules":[{{"ApplyServerSideEncryptionByDefault":{{"SSEAlgorithm":"aws:kms"}},"#,
                    r#""BucketKeyEnabled":true}}]}}'"#
                ),
                b
            ),
        ),
        Err(e) => {
            Check::warn(s, "default encryption", format!("cannot read it: {e}"), "allow s3:GetEncryptionConfiguration")
        }
    }
}

fn public_access_block(s: &str, b: &str, settings: &Result<Option<[bool; 4]>, String>) -> Check {
    let fix = format!(
        "aws s3api put-public-access-block --bucket {b} --public-access-block-configuration \
        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    );
    match settings {
        Ok(Some(all)) if all.iter().all(|on| *on) => Check::pass(s, "block public access", "all four settings on"),
        Ok(Some(all)) => {
            let names = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"];
            let off: Vec<&str> = names.iter().zip(all).filter(|(_, on)| !**on).map(|(n, _)| *n).collect();
            let why = format!("{} off: state (with its secrets) could be made public", off.join(", "));
            Check::fail(s, "block public access", why, fix)
        }
        Ok(None) => {
            Check::fail(s, "block public access", "not configured: state (with its secrets) could be made public", fix)
        }
        Err(e) => {
            Check::fail(s, "block public access", format!("cannot read it: {e}"), "allow s3:GetBucketPublicAccessBlock")
        }
    }
}

fn lockfiles(s: &str, prefix: &str, listed: &Result<usize, String>) -> Check {
    let under = if prefix.is_empty() { String::new() } else { format!(" under {prefix}") };
    match listed {
        Ok(n) => Check::pass(s, "lockfiles", format!("*.tflock objects can be listed{under} ({n} now)")),
        Err(e) => Check::fail(
            s,
            "lockfiles",
            format!("cannot list *.tflock objects{under}: {e}"),
            "allow s3:ListBucket on the bucket and s3:GetObject on its *.tflock objects",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn healthy() -> BucketFacts {
        BucketFacts {
            versioning: Ok(Some("Enabled".into())),
            noncurrent_expiry: Ok(true),
            encryption: Ok(Some("aws:kms".into())),
            public_access_block: Ok(Some([true; 4])),
            lockfiles: Ok(2),
        }
    }

    fn tfstate() -> SourceAddress {
        SourceAddress::bucket("tfstate").unwrap()
    }

    fn teams() -> SourceAddress {
        SourceAddress::bucket("tfstate/teams/").unwrap()
    }

    fn check(checks: &[Check], name: &str) -> Check {
        checks.iter().find(|c| c.check == name).cloned().unwrap()
    }

    #[test]
    fn a_healthy_bucket_passes() {
        let checks = bucket_checks(&teams(), &healthy());
        assert!(checks.iter().all(|c| c.status == Status::Pass), "{checks:#?}");
    }

    #[test]
    fn versioning_suspended_or_never_enabled_fails_with_the_fix() {
        for v in [Some("Suspended".to_string()), None] {
            let f = BucketFacts { versioning: Ok(v), ..healthy() };
            let c = check(&bucket_checks(&tfstate(), &f), "versioning");
            assert_eq!(c.status, Status::Fail);
            assert!(c.fix.unwrap().contains("put-bucket-versioning --bucket 'tfstate'"));
        }
    }

    #[test]
    fn public_access_not_blocked_fails_naming_what_is_off() {
        let f = BucketFacts { public_access_block: Ok(Some([true, true, false, true])), ..healthy() };
        let c = check(&bucket_checks(&tfstate(), &f), "block public access");
        assert_eq!(c.status, Status::Fail);
        assert!(c.why.starts_with("BlockPublicPolicy off"), "{}", c.why);
        let none = BucketFacts { public_access_block: Ok(None), ..healthy() };
        assert_eq!(check(&bucket_checks(&tfstate(), &none), "block public access").status, Status::Fail);
    }

    #[test]
    fn no_lifecycle_is_a_warning() {
        let f = BucketFacts { noncurrent_expiry: Ok(false), ..healthy() };
        assert_eq!(check(&bucket_checks(&tfstate(), &f), "noncurrent versions").status, Status::Warn);
    }
}
