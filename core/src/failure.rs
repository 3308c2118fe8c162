//! What kind of failure a call met, as scripts and metrics see it: a stable
//! name next to every readable error text in the report.

use serde::Serialize;

/// The kind of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No credentials, or expired or invalid ones, or a clock too far off.
    Credentials,
    AccessDenied,
    NotFound,
    /// Connection refused, DNS or TLS failure.
    Unreachable,
    /// Still throttled after the SDK's retries.
    Throttled,
    Timeout,
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Credentials => "credentials",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Other => "other",
        }
    }
}
