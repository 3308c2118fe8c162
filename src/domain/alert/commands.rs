//! The exact commands that release a lock, as on-call would paste them.

use crate::domain::alert::text::shell_quote;
use crate::domain::lock::{Lock, SourceKind};
use crate::domain::report::HalfRef;
use crate::domain::source::SourceAddress;

/// The commands that release a lock (both halves of a double lock), exactly
/// as on-call would paste them. Every value from the lock is shell-quoted.
pub(crate) fn unlock_commands(lock: &Lock, paired: Option<&HalfRef>) -> serde_json::Value {
    let (mut table, mut file) = (None, None);
    for (kind, source, key) in std::iter::once((lock.kind, &lock.source, &lock.lock_key))
        .chain(paired.map(|h| (h.kind, &h.source, &h.lock_key)))
    {
        match kind {
            SourceKind::Table => table = Some((source, key)),
            SourceKind::Bucket => file = Some((source, key)),
        }
    }
    let mut reaper = format!("tf-lock-reaper unlock {}", shell_quote(&lock.id));
    let mut commands = serde_json::Map::new();
    commands
        .insert("terraform_force_unlock".into(), format!("terraform force-unlock {}", shell_quote(&lock.id)).into());
    let mut accounts = Vec::new();
    if let Some((t, key)) = table {
        reaper.push_str(&format!(" --table {}", shell_quote(&t.to_string())));
        let at = t;
        accounts.extend(at.account.clone());
        let key_json = serde_json::json!({"LockID": {"S": key}}).to_string();
        commands.insert(
            "aws_cli".into(),
            format!(
                "{} dynamodb delete-item --table-name {} --key {}",
                aws(at),
                shell_quote(&at.name),
                shell_quote(&key_json)
            )
            .into(),
        );
    }
    if let Some((b, key)) = file {
        reaper.push_str(&format!(" --bucket {}", shell_quote(&b.to_string())));
        let at = b;
        accounts.extend(at.account.clone());
        commands.insert(
            "aws_cli_lockfile".into(),
            format!("{} s3api delete-object --bucket {} --key {}", aws(at), shell_quote(&at.name), shell_quote(key))
                .into(),
        );
    }
    if let Some(account) = accounts.first() {
        commands.insert(
            "credentials".into(),
            format!(
                "run the aws commands with credentials in account {account} (the role ASSUME_ROLES names for it, or \
                    a profile there)"
            )
            .into(),
        );
    }
    commands.insert("tf_lock_reaper_unlock".into(), reaper.into());
    serde_json::Value::Object(commands)
}

/// `aws`, with `--region` for a source outside the reaper's own region.
fn aws(at: &SourceAddress) -> String {
    match &at.region {
        Some(region) => format!("aws --region {}", shell_quote(region)),
        None => "aws".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(kind: SourceKind, source: &str, key: &str) -> Lock {
        let info = r#"{"ID":"id-1","Created":"2026-01-01T00:00:00Z"}"#;
        let at = match kind {
            SourceKind::Table => SourceAddress::table(source),
            SourceKind::Bucket => SourceAddress::bucket(source),
        };
        crate::domain::lock::parse_lock_info(&at.unwrap(), key, info).unwrap()
    }

    #[test]
    fn aws_cli_command_has_the_exact_key_json() {
        let c = unlock_commands(&lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate"), None);
        assert_eq!(
            c["aws_cli"],
            r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}'"#
        );
        assert_eq!(c["terraform_force_unlock"], "terraform force-unlock 'id-1'");
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks'");
        assert!(c.get("aws_cli_lockfile").is_none());
    }

    #[test]
    fn lockfile_and_double_lock_commands() {
        let file = lock(SourceKind::Bucket, "tfstate", "prod/terraform.tfstate.tflock");
        let c = unlock_commands(&file, None);
        assert_eq!(
            c["aws_cli_lockfile"],
            "aws s3api delete-object --bucket 'tfstate' --key 'prod/terraform.tfstate.tflock'"
        );
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --bucket 'tfstate'");
        let table = lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate");
        let half = HalfRef {
            kind: SourceKind::Bucket,
            source: SourceAddress::own(SourceKind::Bucket, "tfstate"),
            lock_key: "prod/terraform.tfstate.tflock".into(),
        };
        let c = unlock_commands(&table, Some(&half));
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks' --bucket 'tfstate'");
        assert!(c["aws_cli"].as_str().unwrap().starts_with("aws dynamodb delete-item"));
        assert!(c["aws_cli_lockfile"].as_str().unwrap().starts_with("aws s3api delete-object"));
    }

    #[test]
    fn sources_elsewhere_get_their_region_and_account() {
        let arn = "arn:aws:dynamodb:eu-west-1:111111111111:table/locks";
        let c = unlock_commands(&lock(SourceKind::Table, arn, "tfstate/prod/terraform.tfstate"), None);
        assert_eq!(
            c["aws_cli"],
            concat!(
                r#"aws --region 'eu-west-1' dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/"#,
                r#"prod/terraform.tfstate"}}'"#,
            )
        );
        assert!(c["credentials"].as_str().unwrap().contains("account 111111111111"));
        assert_eq!(c["tf_lock_reaper_unlock"], format!("tf-lock-reaper unlock 'id-1' --table '{arn}'"));
        let b = unlock_commands(&lock(SourceKind::Bucket, "tfstate@us-west-2", "app.tflock"), None);
        assert_eq!(
            b["aws_cli_lockfile"],
            "aws --region 'us-west-2' s3api delete-object --bucket 'tfstate' --key 'app.tflock'"
        );
        assert!(b.get("credentials").is_none());
    }
}
