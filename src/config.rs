//! Configuration from environment variables. Every variable the reaper reads
//! is listed once in [`VARIABLES`]; the README table, the infra wiring test
//! and the parser all derive from that list. Parsing collects every problem
//! before failing, so one run shows the user everything to fix.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::alerts::Severity;
use crate::notify::Secret;
use crate::policy::{Exclusions, Override, Policy};

/// One environment variable the reaper reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// Default as the user would write it; empty when there is none.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every variable the reaper reads, in README order.
pub const VARIABLES: &[Variable] = &[
    Variable { name: "LOCK_TABLES", default: "", meaning: "Comma-separated DynamoDB lock tables to scan (names or table ARNs). At least one of `LOCK_TABLES` and `LOCK_BUCKETS` is required." },
    Variable { name: "LOCK_BUCKETS", default: "", meaning: "Comma-separated state buckets whose `*.tflock` lockfiles to scan (`use_lockfile = true`), each `bucket` or `bucket/prefix`." },
    Variable { name: "STALE_AFTER", default: "2h", meaning: "Apply window: a lock older than this is stale (alerted on, eligible for action)." },
    Variable { name: "STALE_AFTER_OVERRIDES", default: "", meaning: "Per-path windows, `glob=duration` pairs over the state path (LockID; `<bucket>/<key>` for lockfiles), first match wins, e.g. `tfstate/prod/*=6h,*/sandbox/*=30m`. `*` also matches `/`." },
    Variable { name: "EXCLUDE", default: "", meaning: "Comma-separated globs over the state path (LockID; `<bucket>/<key>` for lockfiles): matching locks are reported but never written to." },
    Variable { name: "ACTION", default: "report", meaning: "`report` (write nothing), `ttl` (backfill a TTL attribute on stale locks) or `delete` (delete stale locks older than `DELETE_AFTER`)." },
    Variable { name: "DRY_RUN", default: "false", meaning: "`true` shows what `ttl`/`delete` would do and writes nothing." },
    Variable { name: "DELETE_AFTER", default: "", meaning: "Age at which `ACTION=delete` deletes a stale lock. Required for `delete`; must be at least every stale window." },
    Variable { name: "TTL_AFTER", default: "", meaning: "`ACTION=ttl` sets the TTL attribute to `Created + TTL_AFTER`. Required for `ttl`; must be at least every stale window." },
    Variable { name: "TTL_ATTRIBUTE", default: "ExpiresAt", meaning: "Name of the table's TTL attribute (epoch seconds)." },
    Variable { name: "MAX_DELETES_PER_RUN", default: "5", meaning: "Breaker: a run that would delete more locks than this deletes none and reports the breaker tripped." },
    Variable { name: "SCAN_SEGMENTS", default: "1", meaning: "Parallel Scan segments per table (1-1000)." },
    Variable { name: "RUN_BUDGET", default: "50s", meaning: "Lambda only: time budget when the invocation deadline is unknown (local emulators send one in 1970)." },
    Variable { name: "METRICS_NAMESPACE", default: "TerraformLocks", meaning: "CloudWatch namespace of the metrics." },
    Variable { name: "METRICS_SINK", default: "emf (Lambda), none (CLI)", meaning: "`emf` (Embedded Metric Format lines on stdout), `api` (PutMetricData) or `none`." },
    Variable { name: "SNS_TOPIC_ARN", default: "", meaning: "Publish alerts to this SNS topic (subject, plain-text body, attributes `event`, `severity`, `kind`, `alert_key`, `table` or `bucket`, `lock_id`)." },
    Variable { name: "PAGERDUTY_ROUTING_KEY_SECRET_ARN", default: "", meaning: "Secrets Manager secret holding the PagerDuty Events v2 routing key, bare or as `{\"routing_key\": \"...\"}`; read once per container." },
    Variable { name: "PAGERDUTY_ROUTING_KEY", default: "", meaning: "The routing key itself, for local use (prefer the secret in AWS). Set one of the two, not both." },
    Variable { name: "PAGERDUTY_EVENTS_URL", default: "https://events.pagerduty.com", meaning: "PagerDuty Events API base URL (`/v2/enqueue` and `/v2/change/enqueue` are appended)." },
    Variable { name: "PAGERDUTY_SEVERITY", default: "warning", meaning: "Severity of a stale-lock alert: `critical`, `error`, `warning` or `info`. A lock past `DELETE_AFTER` that is still there is always `critical`." },
    Variable { name: "NOTIFY_STATE_TABLE", default: "", meaning: "DynamoDB table (hash key `AlertKey` (S), TTL on `ExpiresAt`) that makes alerts notify once and resolve; without it the reaper is stateless." },
    Variable { name: "RENOTIFY_AFTER", default: "", meaning: "With a state table: re-send an open alert as a reminder this long after it was last sent. Unset: never remind." },
];

/// What to do with stale locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Report,
    Ttl,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Ttl => "ttl",
            Action::Delete => "delete",
        }
    }
}

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
    pub tables: Vec<String>,
    pub buckets: Vec<BucketSpec>,
    pub policy: Policy,
    pub action: Action,
    pub dry_run: bool,
    pub ttl_after: Option<Duration>,
    pub ttl_attribute: String,
    pub max_deletes_per_run: usize,
    pub scan_segments: i32,
    pub run_budget: Duration,
    pub metrics_namespace: String,
    pub metrics_sink: MetricsSinkKind,
    pub notify: NotifyConfig,
}

/// One `LOCK_BUCKETS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub bucket: String,
    /// Key prefix to list under; empty for the whole bucket.
    pub prefix: String,
}

impl BucketSpec {
    /// `bucket` or `bucket/prefix`, as configured: the source's name.
    pub fn name(&self) -> String {
        if self.prefix.is_empty() {
            self.bucket.clone()
        } else {
            format!("{}/{}", self.bucket, self.prefix)
        }
    }

    pub fn parse(entry: &str) -> Option<BucketSpec> {
        let (bucket, prefix) = entry.split_once('/').unwrap_or((entry, ""));
        valid_bucket_name(bucket).then(|| BucketSpec { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
}

/// S3 general purpose bucket naming rules (the parts that matter here).
fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Where the PagerDuty routing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingKeySource {
    Plain(Secret),
    /// Read from Secrets Manager by the entrypoint, once per container.
    SecretArn(String),
}

/// PagerDuty settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    pub routing_key: RoutingKeySource,
    pub events_url: String,
}

/// Notification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub sns_topic_arn: Option<String>,
    pub pagerduty: Option<PagerDutyConfig>,
    pub severity: Severity,
    pub state_table: Option<String>,
    pub renotify_after: Option<Duration>,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: String,
    pub value: String,
    pub expected: String,
}

/// Every bad variable found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  {}={:?}: expected {}", p.variable, p.value, p.expected)?;
        }
        Ok(())
    }
}

/// Defaults that differ between entrypoints.
#[derive(Debug, Clone, Copy)]
pub struct EntrypointDefaults {
    pub metrics_sink: MetricsSinkKind,
}

const DURATION_HINT: &str = "a duration such as 90m, 2h or 1d";

/// Reads variables and records problems; each getter returns a usable
/// fallback so parsing can go on and report everything at once.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    /// The trimmed value, `None` when unset or empty (Terraform modules pass
    /// empty strings for unset optional inputs).
    fn get(&self, name: &str) -> Option<&'a str> {
        debug_assert!(VARIABLES.iter().any(|v| v.name == name), "{name} missing from VARIABLES");
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn problem(&mut self, variable: &str, value: &str, expected: impl Into<String>) {
        self.problems.push(Problem {
            variable: variable.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        });
    }

    fn duration(&mut self, name: &str) -> Option<Duration> {
        let raw = self.get(name)?;
        match parse_positive_duration(raw) {
            Ok(d) => Some(d),
            Err(expected) => {
                self.problem(name, raw, expected);
                None
            }
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(split_list).unwrap_or_default()
    }

    fn integer<T: std::str::FromStr + PartialOrd + Copy + fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problem(name, raw, format!("a whole number from {min} to {max}"));
                default
            }
        }
    }

    fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        let lower = raw.to_ascii_lowercase();
        match choices.iter().find(|(k, _)| *k == lower) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
                self.problem(name, raw, format!("one of {}", names.join(", ")));
                default
            }
        }
    }
}

/// A duration as users write it (`90m`, `2h`, `1d`, `1h30m`), greater than zero.
pub fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{DURATION_HINT}, greater than zero")),
        Err(_) => Err(DURATION_HINT.to_string()),
    }
}

/// Comma-separated, trimmed, empty entries dropped.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl Config {
    /// Parse and validate the whole configuration from a variable map.
    pub fn from_vars(vars: &HashMap<String, String>, defaults: EntrypointDefaults) -> Result<Config, ConfigError> {
        let mut r = Reader { vars, problems: Vec::new() };

        let tables = r.list("LOCK_TABLES");
        let mut buckets = Vec::new();
        for entry in r.list("LOCK_BUCKETS") {
            match BucketSpec::parse(&entry) {
                Some(b) => buckets.push(b),
                None => r.problem(
                    "LOCK_BUCKETS",
                    &entry,
                    "comma-separated `bucket` or `bucket/prefix` entries with valid S3 bucket names (3-63 characters: a-z, 0-9, . -)",
                ),
            }
        }
        if tables.is_empty() && r.get("LOCK_BUCKETS").is_none() {
            r.problem(
                "LOCK_TABLES",
                "",
                "at least one DynamoDB table name, comma-separated (or lockfile buckets in LOCK_BUCKETS)",
            );
        }
        for t in &tables {
            if !valid_table_name(t) {
                r.problem(
                    "LOCK_TABLES",
                    t,
                    "DynamoDB table names of 3-255 characters from a-z, A-Z, 0-9, _ - . (or a table ARN)",
                );
            }
        }

        let stale_after = r.duration("STALE_AFTER").unwrap_or(Duration::from_secs(2 * 3600));

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

        let action = r.choice(
            "ACTION",
            Action::Report,
            &[("report", Action::Report), ("ttl", Action::Ttl), ("delete", Action::Delete)],
        );
        let dry_run = r.choice(
            "DRY_RUN",
            false,
            &[("true", true), ("false", false), ("1", true), ("0", false), ("yes", true), ("no", false)],
        );
        let delete_after = r.duration("DELETE_AFTER");
        let ttl_after = r.duration("TTL_AFTER");
        let ttl_attribute = r.get("TTL_ATTRIBUTE").unwrap_or("ExpiresAt").to_string();
        if ttl_attribute == "LockID" || ttl_attribute == "Info" || ttl_attribute == "Digest" {
            r.problem(
                "TTL_ATTRIBUTE",
                &ttl_attribute,
                "an attribute name other than LockID, Info and Digest (Terraform owns those)",
            );
        }

        let policy = Policy { stale_after, overrides, exclusions, delete_after };
        let longest_window = policy.all_windows().max().unwrap_or(stale_after);
        check_threshold(&mut r, "DELETE_AFTER", delete_after, action == Action::Delete, "delete", longest_window);
        check_threshold(&mut r, "TTL_AFTER", ttl_after, action == Action::Ttl, "ttl", longest_window);

        let max_deletes_per_run = r.integer("MAX_DELETES_PER_RUN", 5usize, 0, 10_000);
        let scan_segments = r.integer("SCAN_SEGMENTS", 1i32, 1, 1000);
        let run_budget = r.duration("RUN_BUDGET").unwrap_or(Duration::from_secs(50));
        let metrics_namespace = r.get("METRICS_NAMESPACE").unwrap_or("TerraformLocks").to_string();
        if metrics_namespace.len() > 255 || metrics_namespace.starts_with(':') || metrics_namespace.starts_with("AWS/")
        {
            r.problem(
                "METRICS_NAMESPACE",
                &metrics_namespace,
                "a CloudWatch namespace of at most 255 characters, not starting with AWS/ or ':'",
            );
        }
        let metrics_sink = r.choice(
            "METRICS_SINK",
            defaults.metrics_sink,
            &[("emf", MetricsSinkKind::Emf), ("api", MetricsSinkKind::Api), ("none", MetricsSinkKind::None)],
        );

        let notify = notify_config(&mut r);

        if !r.problems.is_empty() {
            return Err(ConfigError { problems: r.problems });
        }
        Ok(Config {
            tables,
            buckets,
            policy,
            action,
            dry_run,
            ttl_after,
            ttl_attribute,
            max_deletes_per_run,
            scan_segments,
            run_budget,
            metrics_namespace,
            metrics_sink,
            notify,
        })
    }
}

fn notify_config(r: &mut Reader<'_>) -> NotifyConfig {
    let sns_topic_arn = r.get("SNS_TOPIC_ARN").map(str::to_string);
    if let Some(arn) = &sns_topic_arn {
        if !valid_arn(arn, "sns", None) {
            r.problem(
                "SNS_TOPIC_ARN",
                arn,
                "an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:terraform-locks",
            );
        }
    }
    let plain = r.get("PAGERDUTY_ROUTING_KEY");
    let secret_arn = r.get("PAGERDUTY_ROUTING_KEY_SECRET_ARN");
    if let Some(arn) = secret_arn {
        if !valid_arn(arn, "secretsmanager", Some("secret")) {
            r.problem(
                "PAGERDUTY_ROUTING_KEY_SECRET_ARN",
                arn,
                "a Secrets Manager secret ARN such as arn:aws:secretsmanager:us-east-1:123456789012:secret:pagerduty-AbCdEf",
            );
        }
    }
    let routing_key = match (plain, secret_arn) {
        (Some(_), Some(_)) => {
            r.problem(
                "PAGERDUTY_ROUTING_KEY",
                "<redacted>",
                "unset when PAGERDUTY_ROUTING_KEY_SECRET_ARN is set (use one of the two)",
            );
            None
        }
        (Some(key), None) => Some(RoutingKeySource::Plain(Secret::new(key))),
        (None, Some(arn)) => Some(RoutingKeySource::SecretArn(arn.to_string())),
        (None, None) => None,
    };
    let events_url = r.get("PAGERDUTY_EVENTS_URL").unwrap_or("https://events.pagerduty.com").to_string();
    let url_ok = reqwest::Url::parse(&events_url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none());
    if !url_ok {
        r.problem("PAGERDUTY_EVENTS_URL", &events_url, "an http(s) base URL such as https://events.pagerduty.com");
    }
    let severity = r.choice(
        "PAGERDUTY_SEVERITY",
        Severity::Warning,
        &[
            ("critical", Severity::Critical),
            ("error", Severity::Error),
            ("warning", Severity::Warning),
            ("info", Severity::Info),
        ],
    );
    let state_table = r.get("NOTIFY_STATE_TABLE").map(str::to_string);
    if let Some(t) = &state_table {
        if !valid_table_name(t) {
            r.problem("NOTIFY_STATE_TABLE", t, "a DynamoDB table name of 3-255 characters from a-z, A-Z, 0-9, _ - .");
        }
    }
    let renotify_after = r.duration("RENOTIFY_AFTER");
    NotifyConfig {
        sns_topic_arn,
        pagerduty: routing_key.map(|routing_key| PagerDutyConfig { routing_key, events_url }),
        severity,
        state_table,
        renotify_after,
    }
}

/// `arn:<partition>:<service>:<region>:<12-digit account>:<resource>`, where
/// the resource starts with `<resource_type>:` when one is given.
fn valid_arn(arn: &str, service: &str, resource_type: Option<&str>) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, svc, region, account, resource] = parts[..] else {
        return false;
    };
    let resource_ok = match resource_type {
        Some(t) => resource.strip_prefix(t).and_then(|r| r.strip_prefix(':')).is_some_and(|n| !n.is_empty()),
        None => !resource.is_empty() && !resource.contains(':'),
    };
    prefix == "arn"
        && partition.starts_with("aws")
        && svc == service
        && !region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource_ok
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

fn valid_table_name(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.contains(":table/");
    }
    (3..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn cli() -> EntrypointDefaults {
        EntrypointDefaults { metrics_sink: MetricsSinkKind::None }
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(&vars(&[("LOCK_TABLES", "locks")]), cli()).unwrap();
        assert_eq!(c.tables, vec!["locks"]);
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
        assert_eq!(c.tables, vec!["a-locks", "b.locks"]);
        assert_eq!(c.policy.overrides.len(), 2);
        assert_eq!(c.policy.overrides[1].window, Duration::from_secs(1800));
        assert_eq!(c.action, Action::Delete);
        assert!(c.dry_run);
        assert_eq!(c.policy.delete_after, Some(Duration::from_secs(86400)));
        assert_eq!(c.scan_segments, 4);
        assert_eq!(c.metrics_sink, MetricsSinkKind::Api);
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
        assert_eq!(c.buckets[0], BucketSpec { bucket: "tfstate".into(), prefix: String::new() });
        assert_eq!(c.buckets[1].prefix, "teams/a");
        assert_eq!(c.buckets[1].name(), "other-state/teams/a");
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
    fn notification_settings() {
        let c = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:terraform-locks"),
                ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-AbCdEf"),
                ("PAGERDUTY_SEVERITY", "critical"),
                ("NOTIFY_STATE_TABLE", "tf-lock-reaper-alerts"),
                ("RENOTIFY_AFTER", "4h"),
            ]),
            cli(),
        )
        .unwrap();
        let n = c.notify;
        assert_eq!(n.severity, Severity::Critical);
        let pd = n.pagerduty.unwrap();
        assert_eq!(pd.events_url, "https://events.pagerduty.com");
        assert!(matches!(pd.routing_key, RoutingKeySource::SecretArn(_)));
        assert_eq!(n.renotify_after, Some(Duration::from_secs(4 * 3600)));
    }

    #[test]
    fn bad_notification_settings_are_named_and_the_key_is_never_echoed() {
        let err = Config::from_vars(
            &vars(&[
                ("LOCK_TABLES", "locks"),
                ("SNS_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
                ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEYSECRET"),
                ("PAGERDUTY_ROUTING_KEY_SECRET_ARN", "not-an-arn"),
                ("PAGERDUTY_EVENTS_URL", "ftp://x"),
                ("PAGERDUTY_SEVERITY", "loud"),
                ("NOTIFY_STATE_TABLE", "x"),
                ("RENOTIFY_AFTER", "often"),
            ]),
            cli(),
        )
        .unwrap_err();
        let names: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "SNS_TOPIC_ARN",
                "PAGERDUTY_ROUTING_KEY_SECRET_ARN",
                "PAGERDUTY_ROUTING_KEY",
                "PAGERDUTY_EVENTS_URL",
                "PAGERDUTY_SEVERITY",
                "NOTIFY_STATE_TABLE",
                "RENOTIFY_AFTER"
            ]
        );
        assert!(!err.to_string().contains("R0UTINGKEYSECRET"));
        assert!(!format!("{err:?}").contains("R0UTINGKEYSECRET"));
    }

    #[test]
    fn arns() {
        assert!(valid_arn("arn:aws:sns:eu-west-1:123456789012:t", "sns", None));
        assert!(valid_arn("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t.fifo", "sns", None));
        assert!(!valid_arn("arn:aws:sns:eu-west-1:12345:t", "sns", None));
        assert!(!valid_arn("arn:aws:sns:eu-west-1:123456789012:", "sns", None));
        assert!(valid_arn(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pd-Ab12Cd",
            "secretsmanager",
            Some("secret")
        ));
        assert!(!valid_arn("arn:aws:secretsmanager:eu-west-1:123456789012:pd", "secretsmanager", Some("secret")));
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
