//! The commands a person pastes to release a lock or fix a digest, ranked
//! safest first, each with why. Every AWS CLI write is conditional, so a
//! lock taken again between the alert and the paste is refused, never
//! deleted: the table item on its exact `Info` (or, from Terraform's error
//! alone, on its lock ID, which Terraform makes per acquisition), the
//! lockfile on its ETag (S3 honours `If-Match` on DeleteObject since
//! 2025-09). `terraform force-unlock` deletes unconditionally after its own
//! read, so it comes last. One source for alerts, `unlock`, `explain` and
//! the web page. Every value is shell-quoted.

use serde::Serialize;

use crate::source::SourceAddress;

/// The table half of a lock: where, its `LockID`, and its exact `Info`
/// when it was read (alerts, a pasted item), else only the ID is known.
#[derive(Debug, Clone)]
pub struct TableHalf<'a> {
    pub at: &'a SourceAddress,
    pub lock_key: &'a str,
    pub info: Option<&'a str>,
}

/// The lockfile half: bucket, object key, and its ETag when known.
#[derive(Debug, Clone)]
pub struct FileHalf<'a> {
    pub at: &'a SourceAddress,
    pub key: &'a str,
    pub etag: Option<&'a str>,
}

/// One lock to release, as far as it is known.
#[derive(Debug, Clone)]
pub struct ReleaseTarget<'a> {
    /// `Info.ID`.
    pub id: &'a str,
    pub table: Option<TableHalf<'a>>,
    pub lockfile: Option<FileHalf<'a>>,
    /// A custom endpoint the backend names (`endpoints.dynamodb` / `.s3`).
    pub dynamodb_endpoint: Option<&'a str>,
    pub s3_endpoint: Option<&'a str>,
}

/// One command to paste, and why it is where it is in the ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// Stable name: `tf_lock_reaper_unlock`, `aws_cli`, `aws_cli_lockfile`,
    /// `aws_cli_lockfile_etag`, `aws_cli_digest`, `terraform_force_unlock`.
    pub name: &'static str,
    pub command: String,
    pub why: String,
}

/// The names [`release_commands`] gives, in its order (safest first), for
/// readers of a keyed copy of them (a page's `custom_details`).
pub const RANKING: &[&str] =
    &["tf_lock_reaper_unlock", "aws_cli", "aws_cli_lockfile", "aws_cli_lockfile_etag", "terraform_force_unlock"];

/// Single-quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `aws`, with `--region` for a source outside the default region and
/// `--endpoint-url` for a custom endpoint.
fn aws(at: &SourceAddress, endpoint: Option<&str>) -> String {
    let mut out = "aws".to_string();
    if let Some(region) = &at.region {
        out.push_str(&format!(" --region {}", shell_quote(region)));
    }
    if let Some(url) = endpoint {
        out.push_str(&format!(" --endpoint-url {}", shell_quote(url)));
    }
    out
}

/// The commands that release `t`, safest first.
pub fn release_commands(t: &ReleaseTarget<'_>) -> Vec<Command> {
    let mut out = Vec::new();
    let mut reaper = format!("tf-lock-reaper unlock {}", shell_quote(t.id));
    if let Some(table) = &t.table {
        reaper.push_str(&format!(" --table {}", shell_quote(&table.at.to_string())));
    }
    if let Some(file) = &t.lockfile {
        reaper.push_str(&format!(" --bucket {}", shell_quote(&file.at.to_string())));
    }
    out.push(Command {
        name: "tf_lock_reaper_unlock",
        command: reaper,
        why: "finds the lock by its ID wherever it is (a changed backend key included), then deletes each half only \
              if it is unchanged: the item on its exact Info, the lockfile on its ETag"
            .into(),
    });
    if let Some(table) = &t.table {
        let key = serde_json::json!({"LockID": {"S": table.lock_key}}).to_string();
        let (condition, values, why) = match table.info {
            Some(info) => (
                "Info = :info",
                serde_json::json!({":info": {"S": info}}).to_string(),
                "deletes only this exact lock: if it was released and taken again, DynamoDB refuses \
                 (ConditionalCheckFailedException) and nothing is deleted",
            ),
            None => (
                "contains(Info, :id)",
                serde_json::json!({":id": {"S": format!("\"ID\":\"{}\"", t.id)}}).to_string(),
                "deletes only a lock with this ID (Terraform makes a new ID for every lock it takes): if it was \
                 released and taken again, DynamoDB refuses (ConditionalCheckFailedException)",
            ),
        };
        out.push(Command {
            name: "aws_cli",
            command: format!(
                "{} dynamodb delete-item --table-name {} --key {} --condition-expression {} \
                 --expression-attribute-values {}",
                aws(table.at, t.dynamodb_endpoint),
                shell_quote(&table.at.name),
                shell_quote(&key),
                shell_quote(condition),
                shell_quote(&values)
            ),
            why: why.into(),
        });
    }
    if let Some(file) = &t.lockfile {
        let aws = aws(file.at, t.s3_endpoint);
        let (bucket, key) = (shell_quote(&file.at.name), shell_quote(file.key));
        match file.etag {
            Some(etag) => out.push(Command {
                name: "aws_cli_lockfile",
                command: format!("{aws} s3api delete-object --bucket {bucket} --key {key} --if-match {}", shell_quote(etag)),
                why: "deletes only this exact lockfile: if it was replaced, S3 refuses (412 PreconditionFailed) and \
                      nothing is deleted; needs s3:GetObject as well as s3:DeleteObject"
                    .into(),
            }),
            None => out.push(Command {
                name: "aws_cli_lockfile_etag",
                command: format!("{aws} s3api head-object --bucket {bucket} --key {key}"),
                why: format!(
                    "reads the lockfile's ETag: check its ID is {} (aws s3api get-object … /dev/stdout), then delete it \
                     with `s3api delete-object … --if-match <ETag>`, which S3 refuses if the file was replaced (or \
                     paste the head-object output into `tf-lock-reaper explain`)",
                    t.id
                ),
            }),
        }
    }
    out.push(Command {
        name: "terraform_force_unlock",
        command: format!("terraform force-unlock -force {}", shell_quote(t.id)),
        why: "last: not conditional (Terraform reads the lock, compares the ID, then deletes without a condition, so \
              a lock taken in between can go), and it reaches only the lock of the backend configured in the current \
              directory (after a key change, not the old one)"
            .into(),
    });
    out
}

/// The write that sets a state's `-md5` digest item to `digest`, on the
/// condition that it still holds `current` (read first, when not known).
pub fn digest_commands(
    table: &SourceAddress,
    digest_key: &str,
    digest: &str,
    current: Option<&str>,
    endpoint: Option<&str>,
) -> Vec<Command> {
    let aws = aws(table, endpoint);
    let key = shell_quote(&serde_json::json!({"LockID": {"S": digest_key}}).to_string());
    let name = shell_quote(&table.name);
    let mut out = Vec::new();
    let current = match current {
        Some(c) => c.to_string(),
        None => {
            out.push(Command {
                name: "aws_cli_digest_read",
                command: format!(
                    "{aws} dynamodb get-item --table-name {name} --key {key} --consistent-read --query Item.Digest.S \
                     --output text"
                ),
                why: "reads the digest the table holds now: the condition of the write below".into(),
            });
            "<the digest read above>".to_string()
        }
    };
    let values = serde_json::json!({":new": {"S": digest}, ":old": {"S": current}}).to_string();
    out.push(Command {
        name: "aws_cli_digest",
        command: format!(
            "{aws} dynamodb update-item --table-name {name} --key {key} --update-expression {} \
             --condition-expression {} --expression-attribute-values {}",
            shell_quote("SET Digest = :new"),
            shell_quote("Digest = :old"),
            shell_quote(&values)
        ),
        why: "sets the digest to the state S3 holds, only if no other run wrote a new one meanwhile; first check \
              that state is the one you want (aws s3 cp s3://<bucket>/<key> -)"
            .into(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> SourceAddress {
        SourceAddress::table(name).unwrap()
    }

    #[test]
    fn a_table_lock_is_released_on_its_exact_info_and_force_unlock_comes_last() {
        let at = table("locks");
        let info = r#"{"ID":"id-1","Who":"o'brien@ci"}"#;
        let t = ReleaseTarget {
            id: "id-1",
            table: Some(TableHalf { at: &at, lock_key: "tfstate/prod/terraform.tfstate", info: Some(info) }),
            lockfile: None,
            dynamodb_endpoint: None,
            s3_endpoint: None,
        };
        let c = release_commands(&t);
        let names: Vec<&str> = c.iter().map(|c| c.name).collect();
        assert_eq!(names, ["tf_lock_reaper_unlock", "aws_cli", "terraform_force_unlock"]);
        let ranked: Vec<&str> = RANKING.iter().copied().filter(|n| names.contains(n)).collect();
        assert_eq!(ranked, names, "RANKING is release_commands' order");
        assert_eq!(c[0].command, "tf-lock-reaper unlock 'id-1' --table 'locks'");
        assert_eq!(
            c[1].command,
            concat!(
                r#"aws dynamodb delete-item --table-name 'locks' --key '{"LockID":{"S":"tfstate/prod/terraform.tfstate"}}' "#,
                r#"--condition-expression 'Info = :info' --expression-attribute-values "#,
                r#"'{":info":{"S":"{\"ID\":\"id-1\",\"Who\":\"o'\''brien@ci\"}"}}'"#
            )
        );
        assert!(
            c[2].command == "terraform force-unlock -force 'id-1'" && c[2].why.starts_with("last: not conditional")
        );
    }

    #[test]
    fn from_the_error_alone_the_table_condition_is_the_lock_id_and_a_lockfile_needs_its_etag_read() {
        let (at, bucket) =
            (table("arn:aws:dynamodb:eu-west-1:111111111111:table/locks"), SourceAddress::bucket("tfstate").unwrap());
        let t = ReleaseTarget {
            id: "db4f693e",
            table: Some(TableHalf { at: &at, lock_key: "tfstate/k", info: None }),
            lockfile: Some(FileHalf { at: &bucket, key: "k.tflock", etag: None }),
            dynamodb_endpoint: Some("http://127.0.0.1:5000"),
            s3_endpoint: None,
        };
        let c = release_commands(&t);
        assert!(c[1].command.starts_with("aws --region 'eu-west-1' --endpoint-url 'http://127.0.0.1:5000' dynamodb"));
        assert!(c[1].command.ends_with(r#"--condition-expression 'contains(Info, :id)' --expression-attribute-values '{":id":{"S":"\"ID\":\"db4f693e\""}}'"#), "{}", c[1].command);
        assert_eq!(c[2].name, "aws_cli_lockfile_etag");
        assert_eq!(c[2].command, "aws s3api head-object --bucket 'tfstate' --key 'k.tflock'");
        let with_etag =
            ReleaseTarget { lockfile: Some(FileHalf { at: &bucket, key: "k.tflock", etag: Some("\"abc\"") }), ..t };
        let c = release_commands(&with_etag);
        assert_eq!(c[2].command, r#"aws s3api delete-object --bucket 'tfstate' --key 'k.tflock' --if-match '"abc"'"#);
        assert_eq!(c.last().map(|c| c.name), Some("terraform_force_unlock"));
    }

    #[test]
    fn the_digest_write_is_conditional_on_the_digest_it_replaces() {
        let at = table("locks");
        let c = digest_commands(&at, "tfstate/k-md5", "abc123", None, None);
        assert_eq!(c[0].name, "aws_cli_digest_read");
        assert!(c[1].command.contains("--condition-expression 'Digest = :old'"), "{}", c[1].command);
        let c = digest_commands(&at, "tfstate/k-md5", "abc123", Some("def456"), None);
        assert_eq!(c.len(), 1);
        assert!(c[0].command.contains(r#"{":new":{"S":"abc123"},":old":{"S":"def456"}}"#), "{}", c[0].command);
    }
}
