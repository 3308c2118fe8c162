//! The commands that release a lock, as on-call would paste them: the
//! ranked, conditional list of `domain::commands`, keyed by name for the
//! page's `custom_details` and the chat and SNS texts.

use crate::commands::{release_commands, Command, FileHalf, ReleaseTarget, TableHalf};
use crate::lock::{Lock, SourceKind};
use crate::report::HalfRef;

/// The commands that release a lock (both halves of a double lock), safest first.
pub fn ranked_commands(lock: &Lock, paired: Option<&HalfRef>) -> Vec<Command> {
    let mut target =
        ReleaseTarget { id: &lock.id, table: None, lockfile: None, dynamodb_endpoint: None, s3_endpoint: None };
    let halves = std::iter::once((lock.kind, &lock.source, &lock.lock_key, Some(&lock.raw_info), lock.etag.as_ref()))
        .chain(paired.map(|h| (h.kind, &h.source, &h.lock_key, Some(&h.raw_info), h.etag.as_ref())));
    for (kind, at, key, info, etag) in halves {
        match kind {
            SourceKind::Table => {
                target.table =
                    Some(TableHalf { at, lock_key: key, info: info.filter(|i| !i.is_empty()).map(String::as_str) })
            }
            SourceKind::Bucket => target.lockfile = Some(FileHalf { at, key, etag: etag.map(String::as_str) }),
        }
    }
    release_commands(&target)
}

/// The same, as an object of name → command (in ranking order), with the
/// account to run the `aws` commands in when the lock is elsewhere.
pub fn unlock_commands(lock: &Lock, paired: Option<&HalfRef>) -> serde_json::Value {
    let mut commands = serde_json::Map::new();
    for c in ranked_commands(lock, paired) {
        commands.insert(c.name.into(), c.command.into());
    }
    let account = lock.source.account.as_ref().or(paired.and_then(|h| h.source.account.as_ref()));
    if let Some(account) = account {
        commands.insert(
            "credentials".into(),
            format!(
                "run the aws commands with credentials in account {account} (the role ASSUME_ROLES names for it, or \
                    a profile there)"
            )
            .into(),
        );
    }
    serde_json::Value::Object(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceAddress;

    fn lock(kind: SourceKind, source: &str, key: &str) -> Lock {
        let info = r#"{"ID":"id-1","Created":"2026-01-01T00:00:00Z"}"#;
        let at = match kind {
            SourceKind::Table => SourceAddress::table(source),
            SourceKind::Bucket => SourceAddress::bucket(source),
        };
        match kind {
            SourceKind::Table => crate::lock::parse_lock_info(&at.unwrap(), key, info).unwrap(),
            SourceKind::Bucket => match crate::lock::parse_lockfile(&at.unwrap(), key, "\"etag-1\"", info) {
                crate::lock::Item::Lock(l) => *l,
                other => panic!("{other:?}"),
            },
        }
    }

    #[test]
    fn the_table_command_is_conditional_on_the_exact_info() {
        let c = unlock_commands(&lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate"), None);
        assert_eq!(
            c["aws_cli"],
            concat!(
                r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}' "#,
                r#"--condition-expression 'Info = :info' --expression-attribute-values "#,
                r#"'{":info":{"S":"{\"ID\":\"id-1\",\"Created\":\"2026-01-01T00:00:00Z\"}"}}'"#,
            )
        );
        assert_eq!(c["terraform_force_unlock"], "terraform force-unlock -force 'id-1'");
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks'");
        assert!(c.get("aws_cli_lockfile").is_none());
    }

    #[test]
    fn lockfile_and_double_lock_commands_are_conditional_on_each_half() {
        let file = lock(SourceKind::Bucket, "tfstate", "prod/terraform.tfstate.tflock");
        let c = unlock_commands(&file, None);
        assert_eq!(
            c["aws_cli_lockfile"],
            r#"aws s3api delete-object --bucket 'tfstate' --key 'prod/terraform.tfstate.tflock' --if-match '"etag-1"'"#
        );
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --bucket 'tfstate'");
        let table = lock(SourceKind::Table, "locks", "tfstate/prod/terraform.tfstate");
        let c = unlock_commands(&table, Some(&HalfRef::of(&file)));
        assert_eq!(c["tf_lock_reaper_unlock"], "tf-lock-reaper unlock 'id-1' --table 'locks' --bucket 'tfstate'");
        assert!(c["aws_cli"].as_str().unwrap().contains("--condition-expression 'Info = :info'"));
        assert!(c["aws_cli_lockfile"].as_str().unwrap().ends_with(r#"--if-match '"etag-1"'"#));
    }

    #[test]
    fn sources_elsewhere_get_their_region_and_account() {
        let arn = "arn:aws:dynamodb:eu-west-1:111111111111:table/locks";
        let c = unlock_commands(&lock(SourceKind::Table, arn, "tfstate/prod/terraform.tfstate"), None);
        assert!(c["aws_cli"].as_str().unwrap().starts_with(
            r#"aws --region 'eu-west-1' dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}'"#
        ));
        assert!(c["credentials"].as_str().unwrap().contains("account 111111111111"));
        assert_eq!(c["tf_lock_reaper_unlock"], format!("tf-lock-reaper unlock 'id-1' --table '{arn}'"));
        let b = unlock_commands(&lock(SourceKind::Bucket, "tfstate@us-west-2", "app.tflock"), None);
        assert!(b["aws_cli_lockfile"]
            .as_str()
            .unwrap()
            .starts_with("aws --region 'us-west-2' s3api delete-object --bucket 'tfstate' --key 'app.tflock'"));
        assert!(b.get("credentials").is_none());
    }
}
