//! Backend block checks: every `terraform { backend "s3" { … } }` in a
//! repository must lock (`dynamodb_table` or `use_lockfile = true`), should
//! use the lockfile Terraform 1.11+ prefers, and should not turn encryption
//! off. Partial configuration in `*.tfbackend` files beside the block is
//! merged in; values left for the command line are reported as unknown.

use hcl::{Body, Expression};

use crate::backend::DEFAULT_WORKSPACE_KEY_PREFIX;
use crate::health::Check;
use crate::lock::LOCKFILE_SUFFIX;

/// The s3 backend settings the checks read, as literal values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings {
    bucket: Option<String>,
    key: Option<String>,
    dynamodb_table: Option<String>,
    use_lockfile: Option<bool>,
    encrypt: Option<bool>,
    workspace_key_prefix: Option<String>,
}

impl Settings {
    fn read(body: &Body) -> Settings {
        let mut s = Settings::default();
        for a in body.attributes() {
            let text = match a.expr() {
                Expression::String(v) => Some(v.clone()),
                _ => None,
            };
            let flag = match a.expr() {
                Expression::Bool(b) => Some(*b),
                Expression::String(v) => v.parse().ok(),
                _ => None,
            };
            match a.key() {
                "bucket" => s.bucket = text,
                "key" => s.key = text,
                "dynamodb_table" => s.dynamodb_table = text,
                "use_lockfile" => s.use_lockfile = flag,
                "encrypt" => s.encrypt = flag,
                "workspace_key_prefix" => s.workspace_key_prefix = text,
                _ => {}
            }
        }
        s
    }

    /// `other` (a `.tfbackend` file) over `self`, as `-backend-config` does.
    fn merged(&self, other: &Settings) -> Settings {
        Settings {
            bucket: other.bucket.clone().or_else(|| self.bucket.clone()),
            key: other.key.clone().or_else(|| self.key.clone()),
            dynamodb_table: other.dynamodb_table.clone().or_else(|| self.dynamodb_table.clone()),
            use_lockfile: other.use_lockfile.or(self.use_lockfile),
            encrypt: other.encrypt.or(self.encrypt),
            workspace_key_prefix: other.workspace_key_prefix.clone().or_else(|| self.workspace_key_prefix.clone()),
        }
    }
}

/// The `backend "s3"` blocks of one file's text, in order.
fn s3_backends(body: &Body) -> Vec<Settings> {
    body.blocks()
        .filter(|b| b.identifier() == "terraform")
        .flat_map(|t| t.body().blocks())
        .filter(|b| b.identifier() == "backend" && b.labels().first().is_some_and(|l| l.as_str() == "s3"))
        .map(|b| Settings::read(b.body()))
        .collect()
}

/// 1-based lines of each `backend "s3"` in the text, in order.
fn backend_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix("backend").is_some_and(|rest| rest.trim_start().starts_with("\"s3\""))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The checks of every s3 backend block in one `.tf` file. `tfbackend`:
/// the `*.tfbackend` files beside it, `(file name, text)`.
pub fn backend_block_checks(path: &str, text: &str, tfbackend: &[(String, String)]) -> Vec<Check> {
    let body = match hcl::parse(text) {
        Ok(b) => b,
        Err(e) => {
            let message = e.to_string().lines().next().unwrap_or_default().to_string();
            return vec![Check::fail(
                path,
                "parse",
                format!("does not parse as HCL: {message}"),
                "fix the syntax (`terraform fmt` shows where)",
            )];
        }
    };
    let blocks = s3_backends(&body);
    let lines = backend_lines(text);
    let mut checks = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let subject = match lines.get(i) {
            Some(line) => format!("{path}:{line}"),
            None => path.to_string(),
        };
        let mut partials: Vec<(Option<&str>, Settings)> = Vec::new();
        for (name, partial) in tfbackend {
            match hcl::parse(partial) {
                Ok(b) => partials.push((Some(name.as_str()), block.merged(&Settings::read(&b)))),
                Err(e) => checks.push(Check::fail(
                    &subject,
                    "parse",
                    format!("{name} does not parse: {}", e.to_string().lines().next().unwrap_or_default()),
                    "fix the syntax of the .tfbackend file (key = \"value\" lines)",
                )),
            }
        }
        if partials.is_empty() {
            partials.push((None, block.clone()));
        }
        for (from, settings) in &partials {
            let subject = match from {
                Some(name) => format!("{subject} with {name}"),
                None => subject.clone(),
            };
            checks.extend(one_configuration(&subject, settings));
        }
    }
    checks
}

fn one_configuration(subject: &str, s: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    let lockfile = s.use_lockfile == Some(true);
    // Bucket or key missing from the files: they come from the command line.
    let partial = s.bucket.is_none() || s.key.is_none();
    checks.push(match (&s.dynamodb_table, lockfile) {
        (None, false) if partial => Check::warn(
            subject,
            "locking",
            "no dynamodb_table or use_lockfile in the files (a partial configuration): unless -backend-config sets \
                one, every run is unlocked",
            "add `use_lockfile = true` to the backend block",
        ),
        (None, false) => Check::fail(
            subject,
            "locking",
            "neither dynamodb_table nor use_lockfile = true: concurrent runs can corrupt this state",
            "add `use_lockfile = true` to the backend block (Terraform >= 1.10)",
        ),
        (Some(t), false) => Check::warn(
            subject,
            "locking",
            format!("dynamodb_table = {t:?} without use_lockfile: deprecated since Terraform 1.11"),
            "add `use_lockfile = true` beside dynamodb_table (double locking) while every runner upgrades, then \
                remove dynamodb_table",
        ),
        (Some(t), true) => Check::pass(subject, "locking", format!("double locking: lockfile and table {t}")),
        (None, true) => Check::pass(subject, "locking", "S3 lockfile (use_lockfile = true)"),
    });
    if s.encrypt == Some(false) {
        checks.push(Check::warn(
            subject,
            "encrypt",
            "encrypt = false: state is written without server-side encryption",
            "set `encrypt = true` (or remove the line) in the backend block",
        ));
    }
    let (bucket, key) =
        (s.bucket.as_deref().unwrap_or("<bucket: unknown>"), s.key.as_deref().unwrap_or("<key: unknown>"));
    let prefix = s.workspace_key_prefix.as_deref().unwrap_or(DEFAULT_WORKSPACE_KEY_PREFIX);
    let mut at = Vec::new();
    if let Some(t) = &s.dynamodb_table {
        at.push(format!("LockID {bucket}/{key} in table {t}"));
    }
    if lockfile {
        at.push(format!("lockfile s3://{bucket}/{key}{LOCKFILE_SUFFIX}"));
    }
    if !at.is_empty() {
        checks.push(Check::pass(
            subject,
            "lock location",
            format!("{} (default workspace; workspace ws: {prefix}/ws/{key})", at.join(", ")),
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn tf(backend: &str) -> String {
        format!("terraform {{\n  required_version = \">= 1.10\"\n  backend \"s3\" {{\n{backend}\n  }}\n}}\n")
    }

    fn locking(checks: &[Check]) -> &Check {
        checks.iter().find(|c| c.check == "locking").unwrap()
    }

    #[test]
    fn each_locking_setup() {
        let none = backend_block_checks("a/main.tf", &tf("bucket = \"b\"\nkey = \"k\""), &[]);
        assert_eq!(locking(&none).status, Status::Fail);
        assert_eq!(locking(&none).subject, "a/main.tf:3", "file and line");
        let table =
            backend_block_checks("main.tf", &tf("bucket = \"b\"\nkey = \"k\"\ndynamodb_table = \"locks\""), &[]);
        assert_eq!(locking(&table).status, Status::Warn);
        assert!(locking(&table).fix.as_deref().unwrap().contains("use_lockfile = true"));
        let file = backend_block_checks("main.tf", &tf("bucket = \"b\"\nkey = \"k\"\nuse_lockfile = true"), &[]);
        assert_eq!(locking(&file).status, Status::Pass);
        let loc = file.iter().find(|c| c.check == "lock location").unwrap();
        assert!(loc.why.contains("lockfile s3://b/k.tflock"), "{}", loc.why);
        let both = tf("bucket = \"b\"\nkey = \"k\"\nuse_lockfile = true\ndynamodb_table = \"locks\"\nencrypt = false");
        let both = backend_block_checks("main.tf", &both, &[]);
        assert_eq!(locking(&both).status, Status::Pass);
        assert!(both.iter().any(|c| c.check == "encrypt" && c.status == Status::Warn));
        assert!(both.iter().any(|c| c.why.contains("LockID b/k in table locks")));
    }

    #[test]
    fn a_custom_workspace_key_prefix_is_reported() {
        let text = tf("bucket = \"b\"\nkey = \"net.tfstate\"\nuse_lockfile = true\nworkspace_key_prefix = \"teams\"");
        let checks = backend_block_checks("main.tf", &text, &[]);
        assert!(checks.iter().any(|c| c.why.contains("workspace ws: teams/ws/net.tfstate")), "{checks:#?}");
    }

    #[test]
    fn a_partial_configuration_reads_its_tfbackend_files() {
        let text = tf("key = \"app.tfstate\"");
        let alone = backend_block_checks("main.tf", &text, &[]);
        assert_eq!(locking(&alone).status, Status::Warn, "unknown, not a failure: {alone:#?}");
        let prod = (
            "prod.tfbackend".to_string(),
            "bucket = \"prod-state\"\ndynamodb_table = \"locks\"\nuse_lockfile = true\n".to_string(),
        );
        let checks = backend_block_checks("main.tf", &text, &[prod]);
        assert_eq!(locking(&checks).status, Status::Pass);
        assert_eq!(locking(&checks).subject, "main.tf:3 with prod.tfbackend");
        assert!(checks.iter().any(|c| c.why.contains("LockID prod-state/app.tfstate")));
    }

    #[test]
    fn a_file_that_does_not_parse_is_reported_not_a_panic() {
        let checks = backend_block_checks("bad/main.tf", "terraform { backend \"s3\" { bucket = ", &[]);
        assert_eq!(checks.len(), 1);
        assert_eq!((checks[0].status, checks[0].subject.as_str()), (Status::Fail, "bad/main.tf"));
        assert!(checks[0].why.starts_with("does not parse as HCL"), "{}", checks[0].why);
    }

    #[test]
    fn files_without_an_s3_backend_have_no_checks() {
        assert!(backend_block_checks("x.tf", "resource \"terraform_data\" \"a\" {}\n", &[]).is_empty());
        assert!(backend_block_checks("x.tf", "terraform {\n  backend \"local\" {}\n}\n", &[]).is_empty());
    }
}
