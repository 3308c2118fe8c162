//! The health checks behind `tf-lock-reaper doctor`: can the backend be
//! trusted? Each check is a plain function from facts (what AWS or the HCL
//! said) to PASS / WARN / FAIL with one line of why and, for WARN and FAIL,
//! the exact fix. Gathering the facts is `crate::doctor`'s job.

pub mod backend_block;
pub mod bucket;
pub mod clock;
pub mod table;

use std::fmt::Write as _;

use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `table locks`, `bucket tfstate`, `stacks/net/main.tf:3`.
    pub subject: String,
    /// Short name of the check, e.g. `versioning`.
    pub check: &'static str,
    pub status: Status,
    /// One line: why.
    pub why: String,
    /// For WARN and FAIL: the exact fix (a command or the HCL to add).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(subject: &str, check: &'static str, why: impl Into<String>) -> Check {
        Check { subject: subject.to_string(), check, status: Status::Pass, why: why.into(), fix: None }
    }

    pub fn warn(subject: &str, check: &'static str, why: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { subject: subject.to_string(), check, status: Status::Warn, why: why.into(), fix: Some(fix.into()) }
    }

    pub fn fail(subject: &str, check: &'static str, why: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { subject: subject.to_string(), check, status: Status::Fail, why: why.into(), fix: Some(fix.into()) }
    }
}

/// Every check of one `doctor` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub passed: usize,
    pub warnings: usize,
    pub failures: usize,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    pub fn new(checks: Vec<Check>) -> DoctorReport {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let (passed, warnings, failures) = (count(Status::Pass), count(Status::Warn), count(Status::Fail));
        DoctorReport { ok: failures == 0, passed, warnings, failures, checks }
    }

    /// One line per check, the fix indented below WARN and FAIL, a summary.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mut subject = "";
        for c in &self.checks {
            if c.subject != subject {
                subject = &c.subject;
                let _ = writeln!(out, "{subject}");
            }
            let _ = writeln!(out, "  {:<4}  {:<22} {}", c.status.as_str(), c.check, c.why);
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let _ = writeln!(out, "        {:<22} {line}", if i == 0 { "fix:" } else { "" });
                }
            }
        }
        let _ = writeln!(out, "\n{} passed, {} warning(s), {} failure(s)", self.passed, self.warnings, self.failures);
        out
    }
}
