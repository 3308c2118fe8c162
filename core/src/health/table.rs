//! Lock table checks: a Terraform lock table (`LockID` (S) the only hash
//! key), TTL on `TTL_ATTRIBUTE`, point-in-time recovery, deletion
//! protection, encryption at rest and billing mode.

use crate::alert::text::shell_quote;
use crate::health::Check;

/// What `DescribeTable` said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableDescription {
    /// `(attribute, HASH|RANGE)`.
    pub key_schema: Vec<(String, String)>,
    /// `(attribute, S|N|B)` of the key attributes.
    pub attribute_types: Vec<(String, String)>,
    pub billing_mode: Option<String>,
    pub deletion_protection: Option<bool>,
    /// `None`: encrypted with an AWS owned key (the default).
    pub sse_type: Option<String>,
}

impl TableDescription {
    /// Terraform's lock table: `LockID` of type `S` is the only key (a hash
    /// key, no range key), whatever the table's name.
    pub fn is_terraform_lock_table(&self) -> bool {
        let lock_id_s = self.attribute_types.iter().any(|(n, ty)| n == "LockID" && ty == "S");
        self.key_schema == [("LockID".to_string(), "HASH".to_string())] && lock_id_s
    }
}

/// What `DescribeTimeToLive` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlDescription {
    /// `ENABLED`, `DISABLED`, `ENABLING`, `DISABLING`.
    pub status: String,
    pub attribute: Option<String>,
}

impl TtlDescription {
    /// TTL deletes items by `attribute`.
    pub fn enabled_on(&self, attribute: &str) -> bool {
        self.status == "ENABLED" && self.attribute.as_deref() == Some(attribute)
    }

    /// `TTL is DISABLED`, `TTL is ENABLED on Expiry, not ExpiresAt`.
    pub fn describe(&self, attribute: &str) -> String {
        match self.attribute.as_deref() {
            Some(a) if a != attribute => format!("TTL is {} on {a}, not {attribute}", self.status),
            _ => format!("TTL is {} on {attribute}", self.status),
        }
    }
}

/// Everything read about one table; each call may fail on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFacts {
    pub description: Result<TableDescription, String>,
    pub ttl: Result<TtlDescription, String>,
    pub point_in_time_recovery: Result<bool, String>,
}

/// What the checks need to know about the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TableExpectations<'a> {
    pub ttl_attribute: &'a str,
    /// `ACTION=ttl` or `TTL_AFTER` set: a TTL is written, so it must work.
    pub ttl_written: bool,
}

/// The command that creates a Terraform lock table.
fn create_table(name: &str) -> String {
    format!(
        "aws dynamodb create-table --table-name {name} --attribute-definitions AttributeName=LockID,AttributeType=S \
--key-schema AttributeName=LockID,KeyType=HASH --billing-mode PAY_PER_REQUEST"
    )
}

/// The command that enables TTL on `attribute` (doctor's fix, and the
/// `ttl-disabled` alert's).
pub fn enable_ttl_command(table: &str, attribute: &str) -> String {
    format!(
        "aws dynamodb update-time-to-live --table-name {} --time-to-live-specification \
            Enabled=true,AttributeName={attribute}",
        shell_quote(table)
    )
}

/// The checks of one table.
pub fn table_checks(table: &str, facts: &TableFacts, expect: TableExpectations<'_>) -> Vec<Check> {
    let subject = format!("table {table}");
    let s = subject.as_str();
    let t = shell_quote(table);
    let d = match &facts.description {
        Ok(d) => d,
        Err(e) => {
            let fix = format!(
                "check the name, region and account, and that your role may dynamodb:DescribeTable; create it \
                with: {}",
                create_table(&t)
            );
            return vec![Check::fail(s, "exists", format!("cannot describe the table: {e}"), fix)];
        }
    };
    let sse = match d.sse_type.as_deref() {
        None => "AWS owned key (the default)".to_string(),
        Some(kind) => format!("{kind} key"),
    };
    vec![
        Check::pass(s, "exists", "the table exists and can be described"),
        key_schema(s, d),
        ttl(s, table, &facts.ttl, expect),
        point_in_time_recovery(s, &t, &facts.point_in_time_recovery),
        deletion_protection(s, &t, d.deletion_protection),
        Check::pass(s, "encryption at rest", sse),
        Check::pass(s, "billing mode", d.billing_mode.clone().unwrap_or_else(|| "PROVISIONED".to_string())),
    ]
}

/// `s`: the subject (`table …`); `t`: the table as the fix commands take it.
fn key_schema(s: &str, d: &TableDescription) -> Check {
    if d.is_terraform_lock_table() {
        return Check::pass(s, "key schema", "LockID (S) is the only hash key: a Terraform lock table");
    }
    let keys: Vec<String> = d.key_schema.iter().map(|(n, k)| format!("{n} ({k})")).collect();
    Check::fail(
        s,
        "key schema",
        format!("key schema is {}, not LockID (S) alone: not a Terraform lock table", keys.join(", ")),
        format!("point dynamodb_table and LOCK_TABLES at a table created with: {}", create_table("<name>")),
    )
}

fn ttl(s: &str, table: &str, ttl: &Result<TtlDescription, String>, expect: TableExpectations<'_>) -> Check {
    let attr = expect.ttl_attribute;
    let fix = enable_ttl_command(table, attr);
    match ttl {
        Ok(ttl) if ttl.enabled_on(attr) => Check::pass(s, "ttl", ttl.describe(attr)),
        Ok(ttl) if expect.ttl_written => Check::fail(
            s,
            "ttl",
            format!("{}, yet TTL values are written (ACTION=ttl or TTL_AFTER): they do nothing", ttl.describe(attr)),
            fix,
        ),
        Ok(ttl) => Check::warn(s, "ttl", format!("{}: no backstop for locks nobody clears", ttl.describe(attr)), fix),
        Err(e) => {
            Check::warn(s, "ttl", format!("cannot read the TTL setting: {e}"), "allow dynamodb:DescribeTimeToLive")
        }
    }
}

fn point_in_time_recovery(s: &str, t: &str, enabled: &Result<bool, String>) -> Check {
    match enabled {
        Ok(true) => Check::pass(s, "point-in-time recovery", "enabled"),
        Ok(false) => Check::warn(
            s,
            "point-in-time recovery",
            "off: a table deleted or damaged by mistake cannot be restored",
            format!(
                "aws dynamodb update-continuous-backups --table-name {t} --point-in-time-recovery-specification \
                PointInTimeRecoveryEnabled=true"
            ),
        ),
        Err(e) => Check::warn(
            s,
            "point-in-time recovery",
            format!("cannot read it: {e}"),
            "allow dynamodb:DescribeContinuousBackups",
        ),
    }
}

fn deletion_protection(s: &str, t: &str, enabled: Option<bool>) -> Check {
    match enabled {
        Some(true) => Check::pass(s, "deletion protection", "enabled"),
        _ => Check::warn(
            s,
            "deletion protection",
            "off: one delete-table call stops every pipeline",
            format!("aws dynamodb update-table --table-name {t} --deletion-protection-enabled"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn healthy() -> TableFacts {
        TableFacts {
            description: Ok(TableDescription {
                key_schema: vec![("LockID".into(), "HASH".into())],
                attribute_types: vec![("LockID".into(), "S".into())],
                billing_mode: Some("PAY_PER_REQUEST".into()),
                deletion_protection: Some(true),
                sse_type: None,
            }),
            ttl: Ok(TtlDescription { status: "ENABLED".into(), attribute: Some("ExpiresAt".into()) }),
            point_in_time_recovery: Ok(true),
        }
    }

    const EXPECT: TableExpectations<'static> = TableExpectations { ttl_attribute: "ExpiresAt", ttl_written: true };

    fn status(checks: &[Check], name: &str) -> Status {
        checks.iter().find(|c| c.check == name).map(|c| c.status).unwrap()
    }

    #[test]
    fn a_healthy_table_passes_everything() {
        let checks = table_checks("locks", &healthy(), EXPECT);
        assert!(checks.iter().all(|c| c.status == Status::Pass), "{checks:#?}");
    }

    #[test]
    fn ttl_disabled_fails_only_when_ttl_is_written() {
        let mut f = healthy();
        f.ttl = Ok(TtlDescription { status: "DISABLED".into(), attribute: None });
        let written = table_checks("locks", &f, EXPECT);
        let c = written.iter().find(|c| c.check == "ttl").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.as_deref().unwrap().contains("update-time-to-live --table-name 'locks'"));
        let report_only = table_checks("locks", &f, TableExpectations { ttl_written: false, ..EXPECT });
        assert_eq!(status(&report_only, "ttl"), Status::Warn);
        f.ttl = Ok(TtlDescription { status: "ENABLED".into(), attribute: Some("Expiry".into()) });
        let other = table_checks("locks", &f, EXPECT);
        assert_eq!(status(&other, "ttl"), Status::Fail, "enabled on another attribute does nothing for ours");
    }

    #[test]
    fn a_wrong_key_schema_is_not_a_lock_table() {
        let mut f = healthy();
        f.description.as_mut().unwrap().key_schema = vec![("id".into(), "HASH".into()), ("ts".into(), "RANGE".into())];
        let checks = table_checks("locks", &f, EXPECT);
        assert_eq!(status(&checks, "key schema"), Status::Fail);
    }

    #[test]
    fn a_missing_table_is_one_failure_with_the_fix() {
        let f = TableFacts { description: Err("ResourceNotFoundException".into()), ..healthy() };
        let checks = table_checks("locks", &f, EXPECT);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].fix.as_deref().unwrap().contains("create-table"));
    }

    #[test]
    fn pitr_and_deletion_protection_off_are_warnings() {
        let mut f = healthy();
        f.point_in_time_recovery = Ok(false);
        f.description.as_mut().unwrap().deletion_protection = Some(false);
        let checks = table_checks("locks", &f, EXPECT);
        assert_eq!(status(&checks, "point-in-time recovery"), Status::Warn);
        assert_eq!(status(&checks, "deletion protection"), Status::Warn);
    }
}
