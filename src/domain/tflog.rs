//! Terraform's own word on its lock: the `backend-s3` lines it writes to
//! its log (`TF_LOG_CORE=INFO`, `TF_LOG_PATH`), parsed. Checked with
//! Terraform 1.15.5:
//!
//! ```text
//! … [INFO]  backend-s3: Locked remote state (S3 Native and DynamoDB): tf_backend.lock.id=<ID> … tf_backend.lock.path=<bucket>/<key> …
//! … [INFO]  backend-s3: Attempting to unlock remote state (S3 Native and DynamoDB)...: tf_backend.lock.id=<ID> …
//! … [INFO]  backend-s3: Unlocked remote state (S3 Native and DynamoDB): tf_backend.lock.id=<ID> …
//! ```
//!
//! OpenTofu (1.10-1.12) logs none of these: its `Lock` returns silently.

/// What one log line says about the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockEvent {
    /// Terraform holds the lock with this ID (at `path`, `<bucket>/<key>`).
    Locked { id: String, path: Option<String> },
    /// Terraform began releasing the lock: never restore it from now on.
    Unlocking { id: String },
    /// Terraform released the lock.
    Unlocked { id: String },
}

const BACKEND: &str = "backend-s3: ";

/// The lock event on one log line, if any.
pub fn parse_line(line: &str) -> Option<LockEvent> {
    let (_, message) = line.split_once(BACKEND)?;
    let field = |name: &str| {
        message.split_whitespace().find_map(|w| w.strip_prefix(name)).map(|v| v.trim_matches('"').to_string())
    };
    let id = field("tf_backend.lock.id=").filter(|id| !id.is_empty())?;
    if message.starts_with("Locked remote state") {
        Some(LockEvent::Locked { id, path: field("tf_backend.lock.path=") })
    } else if message.starts_with("Attempting to unlock remote state") {
        Some(LockEvent::Unlocking { id })
    } else if message.starts_with("Unlocked remote state") {
        Some(LockEvent::Unlocked { id })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKED: &str = r#"2026-11-27T12:10:57.051Z [INFO]  backend-s3: Locked remote state (S3 Native and DynamoDB): tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.lock.info="" tf_backend.lock.operation=OperationTypeApply tf_backend.lock.path=tfstate/prod/terraform.tfstate tf_backend.lock.version=1.15.5 tf_backend.lock.who=root@vm tf_backend.operation=Lock tf_backend.req_id=3631d4eb-c12e-190a-762b-6facd1ade054 tf_backend.s3.bucket=tfstate tf_backend.s3.path=prod/terraform.tfstate"#;
    const ATTEMPT_LOCK: &str = r#"2026-11-27T12:10:57.022Z [INFO]  backend-s3: Attempting to lock remote state (S3 Native and DynamoDB)...: tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.lock.info="" tf_backend.lock.path=tfstate/prod/terraform.tfstate"#;
    const UNLOCKING: &str = r#"2026-11-27T12:10:57.110Z [INFO]  backend-s3: Attempting to unlock remote state (S3 Native and DynamoDB)...: tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.operation=Unlock"#;
    const UNLOCKED: &str = r#"2026-11-27T12:10:57.134Z [INFO]  backend-s3: Unlocked remote state (DynamoDB): tf_backend.lock.id=c02d5c62-ecbb-1c96-7e93-c0355d82eaf7 tf_backend.operation=Unlock"#;
    const ID: &str = "c02d5c62-ecbb-1c96-7e93-c0355d82eaf7";

    #[test]
    fn the_lines_terraform_1_15_writes() {
        assert_eq!(
            parse_line(LOCKED),
            Some(LockEvent::Locked { id: ID.into(), path: Some("tfstate/prod/terraform.tfstate".into()) })
        );
        assert_eq!(parse_line(UNLOCKING), Some(LockEvent::Unlocking { id: ID.into() }));
        assert_eq!(parse_line(UNLOCKED), Some(LockEvent::Unlocked { id: ID.into() }));
    }

    #[test]
    fn an_attempt_is_not_a_lock_and_other_lines_say_nothing() {
        assert_eq!(parse_line(ATTEMPT_LOCK), None, "trying to lock is not holding it");
        assert_eq!(parse_line("2026-11-27T12:10:57Z [INFO]  Terraform version: 1.15.5"), None);
        assert_eq!(parse_line("backend-s3: Locked remote state (DynamoDB): tf_backend.lock.id="), None);
        assert_eq!(parse_line(""), None);
    }
}
