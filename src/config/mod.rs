//! Configuration from environment variables, validated whole: every bad
//! variable is reported at once, so one run shows the user everything to
//! fix. The catalogue of variables is [`variables::VARIABLES`]; the
//! notification settings, the reader and the AWS naming rules have rooms of
//! their own.

mod discovery;
mod doctor;
pub(crate) mod document;
pub(crate) mod error;
mod exec;
mod heartbeat;
pub(crate) mod naming;
pub(crate) mod notify;
pub(crate) mod reader;
mod sources;
pub(crate) mod variables;

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::discovery::read_org;
use crate::config::heartbeat::{read_heartbeat, Role, TERRAFORM_ATTRIBUTES};
use crate::config::notify::NotifyConfig;
use crate::config::reader::{parse_positive_duration, Reader, DURATION_HINT};
use crate::config::sources::{read_roles, read_sources};
use crate::domain::decision::Action;
use crate::domain::policy::{Exclusions, Override, Policy};
use crate::domain::source::SourceAddress;

pub use crate::config::discovery::{DiscoverySettings, OrgDiscovery};
pub use crate::config::doctor::DoctorSettings;
pub use crate::config::error::{ConfigError, Problem};
pub use crate::config::exec::ExecSettings;
pub use crate::config::sources::AssumeRole;
pub use crate::config::variables::{default_of, CLI_VARIABLES, VARIABLES};

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsSinkKind {
    Emf,
    Api,
    None,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub tables: Vec<SourceAddress>,
    pub buckets: Vec<SourceAddress>,
    pub policy: Policy,
    pub action: Action,
    pub dry_run: bool,
    pub ttl_after: Option<Duration>,
    pub ttl_attribute: String,
    /// Where `exec` writes its heartbeat on a lock item (`HEARTBEAT_ATTRIBUTE`).
    pub heartbeat_attribute: String,
    /// `RELEASE_DEAD_HEARTBEATS`: delete a dead holder's lock in every `ACTION`.
    pub release_dead_heartbeats: bool,
    pub max_deletes_per_run: usize,
    pub scan_segments: i32,
    pub run_budget: Duration,
    pub metrics_namespace: String,
    pub metrics_sink: MetricsSinkKind,
    pub notify: NotifyConfig,
    /// `ASSUME_ROLES`: the role per account the reaper reads and writes
    /// that account's sources with.
    pub assume_roles: Vec<AssumeRole>,
    pub assume_role_external_id: Option<String>,
    /// Sources scanned at once (`SOURCE_CONCURRENCY`).
    pub source_concurrency: usize,
    /// Lock tables to discover across an AWS Organization, besides the
    /// explicit sources.
    pub organization: Option<OrgDiscovery>,
    /// `SOURCES_URI`: `(bucket, key)` of the sources document, already
    /// merged into this configuration.
    pub sources_document: Option<(String, String)>,
    /// How long a warm Lambda container keeps what discovery and the
    /// sources document gave (`DISCOVER_EVERY`).
    pub discover_every: Duration,
}

/// Defaults that differ between entrypoints.
#[derive(Debug, Clone, Copy)]
pub struct EntrypointDefaults {
    pub metrics_sink: MetricsSinkKind,
}

/// `ACTION` and what it needs.
struct ActionSettings {
    action: Action,
    dry_run: bool,
    delete_after: Option<Duration>,
    ttl_after: Option<Duration>,
    ttl_attribute: String,
}

impl Config {
    /// Parse and validate the whole configuration from a variable map.
    pub fn from_vars(vars: &HashMap<String, String>, defaults: EntrypointDefaults) -> Result<Config, ConfigError> {
        let mut r = Reader::new(vars);
        let (tables, buckets) = read_sources(&mut r);
        let organization = read_org(&mut r);
        let sources_document = r.get("SOURCES_URI").and_then(|uri| {
            let parsed = document::parse_uri(uri);
            if parsed.is_none() {
                r.problem("SOURCES_URI", uri, "s3://<bucket>/<key> of a JSON sources document");
            }
            parsed
        });
        let discover_every = r.duration_or_default("DISCOVER_EVERY");
        let (stale_after, overrides, exclusions) = read_windows(&mut r);
        let a = read_action(&mut r);
        let hb = read_heartbeat(&mut r, &a.ttl_attribute, Role::Reaper);
        let release_dead_heartbeats = r.choice_or_default("RELEASE_DEAD_HEARTBEATS", BOOLEANS);
        let policy =
            Policy { stale_after, overrides, exclusions, delete_after: a.delete_after, heartbeat: hb.timeouts };
        let longest_window = policy.all_windows().max().unwrap_or(stale_after);
        check_threshold(&mut r, "DELETE_AFTER", a.delete_after, a.action == Action::Delete, "delete", longest_window);
        check_threshold(&mut r, "TTL_AFTER", a.ttl_after, a.action == Action::Ttl, "ttl", longest_window);
        let max_deletes_per_run = r.integer_or_default("MAX_DELETES_PER_RUN", 0usize, 10_000);
        let scan_segments = r.integer_or_default("SCAN_SEGMENTS", 1i32, 1000);
        let source_concurrency = r.integer_or_default("SOURCE_CONCURRENCY", 1usize, 64);
        let (assume_roles, assume_role_external_id) = read_roles(&mut r);
        let run_budget = r.duration_or_default("RUN_BUDGET");
        let (metrics_namespace, metrics_sink) = read_metrics(&mut r, defaults);
        let notify = notify::read(&mut r);
        r.finish()?;
        Ok(Config {
            tables,
            buckets,
            policy,
            action: a.action,
            dry_run: a.dry_run,
            ttl_after: a.ttl_after,
            ttl_attribute: a.ttl_attribute,
            heartbeat_attribute: hb.attribute,
            release_dead_heartbeats,
            max_deletes_per_run,
            scan_segments,
            run_budget,
            metrics_namespace,
            metrics_sink,
            notify,
            assume_roles,
            assume_role_external_id,
            source_concurrency,
            organization,
            sources_document,
            discover_every,
        })
    }
}

impl Config {
    /// The configuration from `vars` and the sources document at `uri`
    /// (its text): the document's entries merged in, a bad one named with it.
    pub(crate) fn with_sources_document(
        vars: &HashMap<String, String>,
        uri: &str,
        text: &str,
        defaults: EntrypointDefaults,
    ) -> Result<Config, ConfigError> {
        let merged = document::merge(vars, uri, text)?;
        Config::from_vars(&merged.vars, defaults).map_err(|e| merged.name_the_document(e))
    }

    /// This configuration with discovered tables and member roles added:
    /// sources already listed stay as they are (no duplicates), and a role
    /// `ASSUME_ROLES` gives an account wins over the discovered one.
    pub(crate) fn with_discovered(
        mut self,
        tables: &[SourceAddress],
        buckets: &[SourceAddress],
        roles: &[AssumeRole],
    ) -> Config {
        append_new(&mut self.tables, tables, SourceAddress::clone);
        append_new(&mut self.buckets, buckets, SourceAddress::clone);
        append_new(&mut self.assume_roles, roles, |r| r.account.clone());
        self
    }
}

/// Append the items of `more` whose key `list` does not hold yet, in order.
/// Through a set, not `contains` on the list: an organisation has thousands.
fn append_new<T: Clone, K: std::hash::Hash + Eq>(list: &mut Vec<T>, more: &[T], key: impl Fn(&T) -> K) {
    let mut known: std::collections::HashSet<K> = list.iter().map(&key).collect();
    list.extend(more.iter().filter(|item| known.insert(key(item))).cloned());
}

/// `STALE_AFTER`, `STALE_AFTER_OVERRIDES` and `EXCLUDE`.
fn read_windows(r: &mut Reader<'_>) -> (Duration, Vec<Override>, Exclusions) {
    let stale_after = r.duration_or_default("STALE_AFTER");
    let mut overrides = Vec::new();
    for entry in r.list("STALE_AFTER_OVERRIDES") {
        let parsed = entry.split_once('=').and_then(|(glob, dur)| {
            let glob = glob.trim();
            let window = parse_positive_duration(dur).ok()?;
            (!glob.is_empty()).then(|| Override::new(glob, window).ok()).flatten()
        });
        match parsed {
            Some(o) => overrides.push(o),
            None => r.problem(
                "STALE_AFTER_OVERRIDES",
                &entry,
                format!("comma-separated glob=duration pairs, e.g. tfstate/prod/*=6h, with {DURATION_HINT}"),
            ),
        }
    }
    let exclude = r.list("EXCLUDE");
    let exclusions = match Exclusions::new(&exclude) {
        Ok(e) => e,
        Err(e) => {
            r.problem("EXCLUDE", &exclude.join(","), format!("comma-separated globs ({e})"));
            Exclusions::none()
        }
    };
    (stale_after, overrides, exclusions)
}

/// How a switch may be written.
const BOOLEANS: &[(&str, bool)] =
    &[("true", true), ("false", false), ("1", true), ("0", false), ("yes", true), ("no", false)];

/// `ACTION`, `DRY_RUN`, `DELETE_AFTER`, `TTL_AFTER` and `TTL_ATTRIBUTE`.
fn read_action(r: &mut Reader<'_>) -> ActionSettings {
    let action = r.choice_or_default("ACTION", &Action::ALL.map(|a| (a.as_str(), a)));
    let dry_run = r.choice_or_default("DRY_RUN", BOOLEANS);
    let delete_after = r.duration("DELETE_AFTER");
    let ttl_after = r.duration("TTL_AFTER");
    let ttl_attribute = r.text_or_default("TTL_ATTRIBUTE").to_string();
    if TERRAFORM_ATTRIBUTES.contains(&ttl_attribute.as_str()) {
        r.problem(
            "TTL_ATTRIBUTE",
            &ttl_attribute,
            "an attribute name other than LockID, Info and Digest (Terraform owns those)",
        );
    }
    ActionSettings { action, dry_run, delete_after, ttl_after, ttl_attribute }
}

/// `METRICS_NAMESPACE` and `METRICS_SINK`.
fn read_metrics(r: &mut Reader<'_>, defaults: EntrypointDefaults) -> (String, MetricsSinkKind) {
    let namespace = r.text_or_default("METRICS_NAMESPACE").to_string();
    if namespace.len() > 255 || namespace.starts_with(':') || namespace.starts_with("AWS/") {
        r.problem(
            "METRICS_NAMESPACE",
            &namespace,
            "a CloudWatch namespace of at most 255 characters, not starting with AWS/ or ':'",
        );
    }
    let sink = r.choice(
        "METRICS_SINK",
        defaults.metrics_sink,
        &[("emf", MetricsSinkKind::Emf), ("api", MetricsSinkKind::Api), ("none", MetricsSinkKind::None)],
    );
    (namespace, sink)
}

/// `DELETE_AFTER`/`TTL_AFTER`: required by their action, and never shorter
/// than a stale window (or a lock still inside its apply window could go).
fn check_threshold(
    r: &mut Reader<'_>,
    name: &str,
    value: Option<Duration>,
    required: bool,
    action: &str,
    longest_window: Duration,
) {
    match value {
        None if required && r.get(name).is_none() => {
            r.problem(name, "", format!("{DURATION_HINT}: ACTION={action} needs it"));
        }
        Some(d) if d < longest_window => r.problem(
            name,
            &humantime::format_duration(d).to_string(),
            format!(
                "at least the longest stale window ({}) from STALE_AFTER/STALE_AFTER_OVERRIDES",
                humantime::format_duration(longest_window)
            ),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    pub(super) fn cli() -> EntrypointDefaults {
        EntrypointDefaults { metrics_sink: MetricsSinkKind::None }
    }

    /// The catalogue is the one home of defaults: each one, given
    /// explicitly, is accepted and changes nothing, for the scheduled pass
    /// and for `exec`; and the domain's own copies agree with it.
    #[test]
    fn every_catalogue_default_is_what_the_code_uses() {
        let base = [("LOCK_TABLES", "locks")];
        let without = format!("{:?}", Config::from_vars(&vars(&base), cli()).unwrap());
        for v in VARIABLES.iter().filter(|v| !v.default.is_empty() && v.name != "METRICS_SINK") {
            let with = Config::from_vars(&vars(&[base[0], (v.name, v.default)]), cli())
                .unwrap_or_else(|e| panic!("{}={:?} (its catalogue default) is refused: {e}", v.name, v.default));
            assert_eq!(
                format!("{with:?}"),
                without,
                "{}: the catalogue says {:?}, the code uses another",
                v.name,
                v.default
            );
        }
        let exec_without = format!("{:?}", ExecSettings::from_vars(&vars(&[])).unwrap());
        for name in ["HEARTBEAT_EVERY", "HEARTBEAT_TIMEOUT", "HEARTBEAT_ATTRIBUTE", "TTL_ATTRIBUTE", "RUN_BUDGET"] {
            let with = ExecSettings::from_vars(&vars(&[(name, default_of(name))])).unwrap();
            assert_eq!(format!("{with:?}"), exec_without, "{name}");
        }
        let sink = |kind: MetricsSinkKind| serde_json::to_value(kind).unwrap().as_str().unwrap().to_string();
        let (lambda, cli_sink) = (sink(MetricsSinkKind::Emf), sink(cli().metrics_sink));
        assert_eq!(default_of("METRICS_SINK"), format!("{lambda} (Lambda), {cli_sink} (CLI)"));
        let alerts = crate::domain::alert::AlertSettings::default();
        assert_eq!(alerts.group_over.to_string(), default_of("ALERT_GROUP_OVER"));
        assert_eq!(alerts.severity.as_str(), default_of("PAGERDUTY_SEVERITY"));
    }

    #[test]
    fn the_jobs_record_index_must_be_an_absolute_directory() {
        let read = |value: &str| ExecSettings::from_vars(&vars(&[("TF_LOCK_REAPER_JOB_RECORDS", value)]));
        assert_eq!(read("/runner/_temp/locks").unwrap().job_records, Some("/runner/_temp/locks".into()));
        assert_eq!(read("").unwrap().job_records, None, "empty is unset");
        let err = read("locks").unwrap_err().to_string();
        assert!(err.contains("TF_LOCK_REAPER_JOB_RECORDS") && err.contains("an absolute directory path"), "{err}");
    }

    fn labels(sources: &[SourceAddress]) -> Vec<String> {
        sources.iter().map(SourceAddress::label).collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(&vars(&[("LOCK_TABLES", "locks")]), cli()).unwrap();
        assert_eq!(labels(&c.tables), ["locks"]);
        assert_eq!(c.policy.stale_after, Duration::from_secs(7200));
        assert_eq!(c.action, Action::Report);
        assert!(!c.dry_run);
        assert_eq!(c.ttl_attribute, "ExpiresAt");
        assert_eq!(c.max_deletes_per_run, 5);
        assert_eq!(c.scan_segments, 1);
        assert_eq!(c.metrics_namespace, "TerraformLocks");
        assert_eq!(c.metrics_sink, MetricsSinkKind::None);
        let lambda = EntrypointDefaults { metrics_sink: MetricsSinkKind::Emf };
        assert_eq!(
            Config::from_vars(&vars(&[("LOCK_TABLES", "locks")]), lambda).unwrap().metrics_sink,
            MetricsSinkKind::Emf
        );
    }

    #[test]
    fn full_configuration() {
        let c = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", " a-locks , b.locks ,"),
                ("STALE_AFTER", "90m"),
                ("STALE_AFTER_OVERRIDES", "tfstate/prod/*=6h,*/sandbox/*=30m"),
                ("EXCLUDE", "tfstate/pinned/*"),
                ("ACTION", "DELETE"),
                ("DRY_RUN", "true"),
                ("DELETE_AFTER", "1d"),
                ("MAX_DELETES_PER_RUN", "2"),
                ("SCAN_SEGMENTS", "4"),
                ("METRICS_SINK", "api"),
            ]),
            cli(),
        )
        .unwrap();
        assert_eq!(labels(&c.tables), ["a-locks", "b.locks"]);
        assert_eq!(c.policy.overrides.len(), 2);
        assert_eq!(c.policy.overrides[1].window, Duration::from_secs(1800));
        assert_eq!(c.action, Action::Delete);
        assert!(c.dry_run);
        assert_eq!(c.policy.delete_after, Some(Duration::from_secs(86400)));
        assert_eq!(c.scan_segments, 4);
        assert_eq!(c.metrics_sink, MetricsSinkKind::Api);
    }

    #[test]
    fn sources_in_other_regions_and_accounts_and_their_mistakes() {
        let ok = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks,arn:aws:dynamodb:eu-west-1:111111111111:table/locks"),
                ("LOCK_BUCKETS", "tfstate/teams@eu-west-1:111111111111,other@us-east-2"),
                ("ASSUME_ROLES", "arn:aws:iam::111111111111:role/tf-lock-reaper-access"),
                ("ASSUME_ROLE_EXTERNAL_ID", "ext-1"),
                ("SOURCE_CONCURRENCY", "4"),
            ]),
            cli(),
        )
        .unwrap();
        assert_eq!(ok.buckets[0].label(), "tfstate/teams@eu-west-1:111111111111");
        assert_eq!(ok.buckets[0].to_string(), "tfstate@eu-west-1:111111111111");
        assert_eq!(ok.buckets[1].region.as_deref(), Some("us-east-2"));
        assert_eq!(
            ok.assume_roles.iter().find(|r| r.account == "111111111111").map(|r| r.arn.as_str()),
            Some("arn:aws:iam::111111111111:role/tf-lock-reaper-access")
        );
        assert_eq!((ok.source_concurrency, ok.assume_role_external_id.as_deref()), (4, Some("ext-1")));

        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks,arn:aws:dynamodb:eu-west-1:1111:table/x,locks"),
                ("LOCK_BUCKETS", "tfstate@ireland,tfstate@eu-west-1:12,b1b@eu-west-1,b1b@eu-west-1"),
                (
                    "ASSUME_ROLES",
                    concat!(
                        "arn:aws:iam::111111111111:user/me,",
                        "arn:aws:iam::222222222222:role/a,arn:aws:iam::222222222222:role/b",
                    ),
                ),
                ("SOURCE_CONCURRENCY", "0"),
            ]),
            cli(),
        )
        .unwrap_err();
        let text = err.to_string();
        for want in [
            "arn:aws:dynamodb:<region>:<12-digit account>:table/<name>",
            "each table once (a duplicate)",
            "\"ireland\" is not a region name",
            "\"12\" is not a 12-digit account ID",
            "each bucket source once (a duplicate)",
            "arn:aws:iam::<12-digit account>:role/<name>",
            "at most one role per account (222222222222 has two)",
            "SOURCE_CONCURRENCY",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn every_bad_variable_is_listed_at_once() {
        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "ok-table,x"),
                ("STALE_AFTER", "two hours"),
                ("STALE_AFTER_OVERRIDES", "tfstate/prod/*=6h,nonsense"),
                ("EXCLUDE", "a[b"),
                ("ACTION", "destroy"),
                ("DRY_RUN", "maybe"),
                ("TTL_AFTER", "0s"),
                ("MAX_DELETES_PER_RUN", "-1"),
                ("SCAN_SEGMENTS", "0"),
                ("METRICS_SINK", "statsd"),
                ("TTL_ATTRIBUTE", "Info"),
            ]),
            cli(),
        )
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        for want in [
            "LOCK_TABLES",
            "STALE_AFTER",
            "STALE_AFTER_OVERRIDES",
            "EXCLUDE",
            "ACTION",
            "DRY_RUN",
            "TTL_AFTER",
            "MAX_DELETES_PER_RUN",
            "SCAN_SEGMENTS",
            "METRICS_SINK",
            "TTL_ATTRIBUTE",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let text = err.to_string();
        assert!(text.contains("STALE_AFTER=\"two hours\": expected a duration such as 90m, 2h or 1d"), "{text}");
        assert!(text.contains("ACTION=\"destroy\": expected one of report, ttl, delete"), "{text}");
        assert!(text.contains("LOCK_TABLES=\"x\""), "{text}");
    }

    #[test]
    fn lock_buckets() {
        let c = Config::from_vars(&vars(&[("LOCK_BUCKETS", "tfstate, other-state/teams/a")]), cli()).unwrap();
        assert!(c.tables.is_empty());
        assert_eq!(c.buckets[0], SourceAddress::own(crate::domain::lock::SourceKind::Bucket, "tfstate"));
        assert_eq!(c.buckets[1].prefix, "teams/a");
        assert_eq!(c.buckets[1].label(), "other-state/teams/a");
        let err = Config::from_vars(&vars(&[("LOCK_BUCKETS", "Bad_Bucket,ok-bucket,-x/y")]), cli()).unwrap_err();
        let bad: Vec<&str> = err.problems.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(bad, ["Bad_Bucket", "-x/y"]);
        assert!(err.problems.iter().all(|p| p.variable == "LOCK_BUCKETS"));
    }

    #[test]
    fn missing_tables_is_an_error() {
        let err = Config::from_vars(&vars(&[]), cli()).unwrap_err();
        assert_eq!(err.problems[0].variable, "LOCK_TABLES");
    }

    #[test]
    fn actions_need_their_threshold() {
        let err = Config::from_vars(&vars(&[("LOCK_TABLES", "locks"), ("ACTION", "delete")]), cli()).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].variable, "DELETE_AFTER");
        assert!(err.problems[0].expected.contains("ACTION=delete needs it"));
        let err = Config::from_vars(&vars(&[("LOCK_TABLES", "locks"), ("ACTION", "ttl")]), cli()).unwrap_err();
        assert_eq!(err.problems[0].variable, "TTL_AFTER");
    }

    #[test]
    fn thresholds_must_cover_every_window() {
        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("ACTION", "delete"),
                ("STALE_AFTER_OVERRIDES", "tfstate/prod/*=6h"),
                ("DELETE_AFTER", "3h"),
                ("TTL_AFTER", "1h"),
            ]),
            cli(),
        )
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, vec!["DELETE_AFTER", "TTL_AFTER"]);
        assert!(err.problems[0].expected.contains("6h"));
    }

    #[test]
    fn every_variable_read_is_documented() {
        // `Reader::get` debug-asserts membership; this makes sure the list has no duplicates.
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
