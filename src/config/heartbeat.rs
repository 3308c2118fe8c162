//! The heartbeat settings `exec` writes by and the reaper judges by:
//! `HEARTBEAT_TIMEOUT` (the liveness contract), its bounds
//! `HEARTBEAT_TIMEOUT_MIN`/`_MAX`, `HEARTBEAT_EVERY`, `HEARTBEAT_ATTRIBUTE`,
//! whether this is a CI job (whose defaults are shorter), and the attributes
//! that are Terraform's, never ours.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::reader::{parse_positive_duration, Reader};
use crate::config::variables::default_of;
use crate::domain::lock::heartbeat_timeout_attribute;
use crate::domain::policy::HeartbeatTimeouts;

/// Who reads the settings: the reaper judges, `exec` writes a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Reaper,
    /// `exec` in CI (the variable that says so) or on a terminal (`None`).
    Exec {
        ci: Option<&'static str>,
    },
}

/// The heartbeat settings.
pub(crate) struct HeartbeatSettings {
    /// `default`: the reaper's for a lock naming no contract; `exec`'s own
    /// contract is [`HeartbeatSettings::contract`].
    pub(crate) timeouts: HeartbeatTimeouts,
    /// The silence after which `exec`'s own lock counts as dead.
    pub(crate) contract: Duration,
    pub(crate) every: Duration,
    pub(crate) attribute: String,
}

/// Terraform's own attributes on a lock item: never ours to write.
pub(crate) const TERRAFORM_ATTRIBUTES: [&str; 3] = ["LockID", "Info", "Digest"];

/// The variables CI services set in every job, as `exec` recognises a CI
/// job: there a runner that goes silent is gone (no laptop lid to reopen),
/// so the defaults are a heartbeat every 15 s and a 90 s contract.
pub(crate) const CI_VARIABLES: [&str; 8] =
    ["CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD", "CODEBUILD_BUILD_ID", "CIRCLECI"];

/// `exec`'s defaults in CI and on a terminal: (heartbeat every, contract).
pub(crate) const CI_DEFAULTS: (Duration, Duration) = (Duration::from_secs(15), Duration::from_secs(90));
pub(crate) const TERMINAL_DEFAULTS: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(600));

/// The CI variable that is set (`CI` must say `true` or `1`; the others
/// anything but empty, `false` or `0`).
pub(crate) fn ci_variable(vars: &HashMap<String, String>) -> Option<&'static str> {
    CI_VARIABLES.into_iter().find(|name| {
        let value = vars.get(*name).map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default();
        match *name {
            "CI" => value == "true" || value == "1",
            _ => !value.is_empty() && value != "false" && value != "0",
        }
    })
}

/// The heartbeat settings. A heartbeat must come several times within the
/// contract, or one slow write would make a live holder look dead: unset,
/// `HEARTBEAT_EVERY` is at most a quarter of it.
pub(crate) fn read_heartbeat(r: &mut Reader<'_>, ttl_attribute: &str, role: Role) -> HeartbeatSettings {
    let (default_every, default_contract) = match role {
        Role::Exec { ci: Some(_) } => CI_DEFAULTS,
        Role::Exec { ci: None } => TERMINAL_DEFAULTS,
        Role::Reaper => (catalogue("HEARTBEAT_EVERY"), catalogue("HEARTBEAT_TIMEOUT")),
    };
    let explicit = r.duration("HEARTBEAT_TIMEOUT");
    let contract = explicit.unwrap_or(default_contract);
    let every = match r.duration("HEARTBEAT_EVERY") {
        Some(every) => {
            if every.saturating_mul(2) > contract {
                r.problem(
                    "HEARTBEAT_EVERY",
                    &humantime::format_duration(every).to_string(),
                    format!(
                        "at most half of HEARTBEAT_TIMEOUT ({}), so one late heartbeat never makes a live holder \
                            look dead",
                        humantime::format_duration(contract)
                    ),
                );
            }
            every
        }
        None => default_every.min(contract / 4).max(Duration::from_secs(1)),
    };
    let min = r.duration_or_default("HEARTBEAT_TIMEOUT_MIN");
    let max = r.duration_or_default("HEARTBEAT_TIMEOUT_MAX");
    if min > max {
        r.problem(
            "HEARTBEAT_TIMEOUT_MIN",
            &humantime::format_duration(min).to_string(),
            format!("at most HEARTBEAT_TIMEOUT_MAX ({})", humantime::format_duration(max)),
        );
    }
    // A lock that names no contract was heartbeated by an `exec` that wrote
    // none: the reaper's HEARTBEAT_TIMEOUT, and for a blocked `exec` the
    // catalogue's, never the short contract of its own job.
    let default = match role {
        Role::Reaper => contract,
        Role::Exec { .. } => catalogue("HEARTBEAT_TIMEOUT"),
    };
    let attribute = r.text_or_default("HEARTBEAT_ATTRIBUTE").to_string();
    let contract_attribute = heartbeat_timeout_attribute(&attribute);
    let taken = |a: &str| TERRAFORM_ATTRIBUTES.contains(&a) || a == ttl_attribute;
    if taken(&attribute) || taken(&contract_attribute) || attribute.is_empty() {
        r.problem(
            "HEARTBEAT_ATTRIBUTE",
            &attribute,
            "an attribute name other than LockID, Info, Digest and TTL_ATTRIBUTE (its contract goes in \
                <name>Timeout, which must not be one of them either)",
        );
    }
    HeartbeatSettings { timeouts: HeartbeatTimeouts { default, min, max }, contract, every, attribute }
}

fn catalogue(name: &str) -> Duration {
    parse_positive_duration(default_of(name)).expect("the catalogue's duration defaults parse (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn read(pairs: &[(&str, &str)], role: Role) -> Result<HeartbeatSettings, crate::config::ConfigError> {
        let vars = vars(pairs);
        let mut r = Reader::new(&vars);
        let hb = read_heartbeat(&mut r, "ExpiresAt", role);
        r.finish().map(|()| hb)
    }

    #[test]
    fn ci_is_recognised_by_the_variables_ci_services_set() {
        assert_eq!(ci_variable(&vars(&[])), None);
        assert_eq!(ci_variable(&vars(&[("CI", "true")])), Some("CI"));
        assert_eq!(ci_variable(&vars(&[("CI", "false")])), None);
        assert_eq!(ci_variable(&vars(&[("CI", "")])), None);
        assert_eq!(ci_variable(&vars(&[("GITHUB_ACTIONS", "true")])), Some("GITHUB_ACTIONS"));
        assert_eq!(ci_variable(&vars(&[("JENKINS_URL", "https://ci.example.com/")])), Some("JENKINS_URL"));
        assert_eq!(ci_variable(&vars(&[("TF_BUILD", "True")])), Some("TF_BUILD"));
        assert_eq!(ci_variable(&vars(&[("CODEBUILD_BUILD_ID", "proj:1234")])), Some("CODEBUILD_BUILD_ID"));
        for name in CI_VARIABLES {
            assert!(ci_variable(&vars(&[(name, "1")])).is_some(), "{name}");
        }
    }

    #[test]
    fn exec_writes_the_ci_or_terminal_contract_unless_told() {
        let ci = read(&[], Role::Exec { ci: Some("CI") }).unwrap();
        assert_eq!((ci.every, ci.contract), CI_DEFAULTS);
        let terminal = read(&[], Role::Exec { ci: None }).unwrap();
        assert_eq!((terminal.every, terminal.contract), TERMINAL_DEFAULTS);
        // A lock naming no contract is judged by the catalogue's 10m, not by this job's 90s.
        assert_eq!(ci.timeouts.default, Duration::from_secs(600));
        assert_eq!((ci.timeouts.min, ci.timeouts.max), (Duration::from_secs(60), Duration::from_secs(3600)));
        // HEARTBEAT_TIMEOUT sets the contract; unset, the heartbeat comes at least four times within it.
        let told = read(&[("HEARTBEAT_TIMEOUT", "40s")], Role::Exec { ci: Some("CI") }).unwrap();
        assert_eq!((told.every, told.contract), (Duration::from_secs(10), Duration::from_secs(40)));
        let long = read(&[("HEARTBEAT_TIMEOUT", "20m")], Role::Exec { ci: None }).unwrap();
        assert_eq!((long.every, long.contract), (Duration::from_secs(30), Duration::from_secs(1200)));
        let tiny = read(&[("HEARTBEAT_TIMEOUT", "2s")], Role::Exec { ci: None }).unwrap();
        assert_eq!(tiny.every, Duration::from_secs(1));
    }

    #[test]
    fn the_reaper_keeps_its_default_and_checks_the_bounds() {
        let reaper = read(&[], Role::Reaper).unwrap();
        assert_eq!(reaper.timeouts.default, Duration::from_secs(600));
        let e = read(&[("HEARTBEAT_TIMEOUT_MIN", "2h"), ("HEARTBEAT_EVERY", "10m")], Role::Reaper)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("HEARTBEAT_TIMEOUT_MIN") && e.contains("at most HEARTBEAT_TIMEOUT_MAX (1h)"), "{e}");
        assert!(e.contains("HEARTBEAT_EVERY") && e.contains("at most half of HEARTBEAT_TIMEOUT (10m)"), "{e}");
        assert!(read(&[("HEARTBEAT_ATTRIBUTE", "Expires")], Role::Reaper).is_ok(), "ExpiresTimeout is no TTL");
        assert!(read(&[("HEARTBEAT_ATTRIBUTE", "Info")], Role::Reaper).is_err());
    }
}
