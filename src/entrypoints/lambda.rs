//! The scheduled Lambda (`provided.al2023`): configuration is parsed and
//! adapters are built once per container; each invocation is one pass. An
//! event carrying `{"dry_run": true}` forces a dry run.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::config::{Config, EntrypointDefaults, MetricsSinkKind};
use crate::domain::discovery::{DiscoveryFailure, DiscoverySummary};
use crate::domain::report::summary::{has_something_to_report, RunSummary};
use crate::support::deadline::Deadline;
use crate::wiring::{discover, load_config, sdk_config, Adapters, RouteClients, WiringError};

/// Built once per container, shared by every invocation.
pub struct Container {
    /// The environment, to read the sources document again.
    vars: HashMap<String, String>,
    config: Config,
    adapters: Adapters,
    /// With `ORGANIZATION_ACCOUNTS`: the last discovery, kept for
    /// `DISCOVER_EVERY` in this warm container.
    discovered: tokio::sync::Mutex<Option<Discovery>>,
}

/// One discovery and the pass's view of it.
#[derive(Clone)]
struct Discovery {
    at: Instant,
    /// The configuration with the sources document, before discovery.
    base: Config,
    config: Config,
    adapters: Adapters,
    summary: Option<DiscoverySummary>,
}

const LAMBDA: EntrypointDefaults = EntrypointDefaults { metrics_sink: MetricsSinkKind::Emf };

impl Container {
    /// Parse the environment and build the adapters (reading the PagerDuty
    /// routing key secret, once).
    pub async fn from_env() -> Result<Container, WiringError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let config = load_config(&vars, LAMBDA).await?;
        let clients = RouteClients::new(&sdk_config(config.run_budget).await);
        let adapters = Adapters::for_run(&config, &clients, true).await?;
        Ok(Container { vars, config, adapters, discovered: tokio::sync::Mutex::new(None) })
    }

    /// The configuration and adapters of this pass: as configured, or with
    /// the sources document read again and the sources discovered across
    /// the organisation, once the last time is `DISCOVER_EVERY` old (a cold
    /// start reads and discovers afresh). A document that cannot be read
    /// keeps the last one, and says so as a discovery failure.
    async fn current(&self) -> (Config, Adapters, Option<DiscoverySummary>) {
        if self.config.organization.is_none() && self.config.sources_document.is_none() {
            return (self.config.clone(), self.adapters.clone(), None);
        }
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached.as_ref().filter(|d| d.at.elapsed() < self.config.discover_every) {
            return (d.config.clone(), d.adapters.clone(), d.summary.clone());
        }
        let mut failures = Vec::new();
        let base = match (&self.config.sources_document, cached.as_ref()) {
            // Read at start: fresh.
            (_, None) => self.config.clone(),
            (None, Some(_)) => self.config.clone(),
            (Some(_), Some(last)) => match load_config(&self.vars, LAMBDA).await {
                Ok(config) => config,
                Err(e) => {
                    tracing::error!(error = %e, "the sources document could not be read again; keeping the last one");
                    failures.push(DiscoveryFailure { account: None, region: None, role: None, reason: e.to_string() });
                    last.base.clone()
                }
            },
        };
        let found = discover(&base, &self.adapters.clients).await;
        let config = match &found {
            Some(f) => base.clone().with_discovered(&f.tables, &f.buckets, &f.roles),
            None => base.clone(),
        };
        let mut summary = found.map(|f| f.summary);
        if !failures.is_empty() {
            summary.get_or_insert_with(DiscoverySummary::default).failures.extend(failures);
        }
        let adapters = self.adapters.with_sources(&config).await;
        tracing::info!(
            tables = config.tables.len(),
            buckets = config.buckets.len(),
            failures = summary.as_ref().map_or(0, |s| s.failures.len()),
            "sources refreshed"
        );
        let d = Discovery { at: Instant::now(), base, config, adapters, summary };
        *cached = Some(d.clone());
        (d.config, d.adapters, d.summary)
    }

    /// One invocation: one pass, and its bounded summary as the result
    /// (serialized once, by the runtime; under 256 KB whatever the table
    /// size, where Lambda refuses a result over 6 MB).
    ///
    /// A pass that met errors (a source unreadable, a write or a delivery
    /// failed) still returns `Ok(report)`: the pass itself ran, and an `Err`
    /// would make Lambda retry the whole pass (the DLQ and the `Errors`
    /// alarm are for invocations that could not run at all). Those failures
    /// surface as the `ScanErrors`, `ActionErrors` and `AlertErrors` metrics
    /// and their alarms, as `scan-failed` alerts, and as `ok: false` in the
    /// returned report.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<RunSummary, lambda_runtime::Error> {
        let (base, adapters, discovery) = self.current().await;
        let config = invocation_config(&base, &event.payload);
        let deadline = effective_deadline(event.context.deadline(), Utc::now(), config.run_budget);
        let report = adapters
            .reaper(config)
            .with_discovery(discovery)
            .keeping_only_what_matters()
            .run(Deadline::at(deadline))
            .await;

        // The summary lists 25 sources at most: each source with something
        // to report gets its line in the log, where nothing is left out.
        for s in report.sources.iter().filter(|s| has_something_to_report(s)) {
            let c = &s.counts;
            tracing::info!(
                kind = s.kind.as_str(),
                source = %s.name,
                locks_held = c.locks_held,
                stale = c.stale,
                dead_heartbeats = c.dead_heartbeats,
                unreadable = c.unreadable,
                deleted = c.deleted,
                changed = c.changed,
                gone = c.gone,
                ttl_backfilled = c.ttl_backfilled,
                errors = c.errors,
                oldest_lock_age_seconds = s.oldest_lock_age_seconds,
                error_kind = s.error_kind.map(|k| k.as_str()),
                scan_error = s.scan_error.as_deref(),
                "source report"
            );
        }
        tracing::info!(
            ok = report.ok,
            partial = report.partial,
            breaker_tripped = report.breaker_tripped,
            duration_ms = report.duration_ms,
            "run finished"
        );
        Ok(report.summary())
    }
}

/// Logging as `lambda_runtime`'s own subscriber sets it up: the level from
/// `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), else
/// `RUST_LOG`, else info; JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`; no
/// timestamps (CloudWatch stamps every line). Logs go to stderr: stdout
/// carries the EMF metric lines.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(level.as_deref(), rust_log.as_deref()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// The log filter directive: `AWS_LAMBDA_LOG_LEVEL` wins over `RUST_LOG`.
/// Lambda's `FATAL` has no tracing level: it means errors only.
pub(crate) fn log_filter(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> String {
    let set = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    match (set(aws_lambda_log_level), set(rust_log)) {
        (Some(level), _) if level.eq_ignore_ascii_case("fatal") => "error".to_string(),
        (Some(level), _) => level.to_ascii_lowercase(),
        (None, Some(directives)) => directives,
        (None, None) => "info".to_string(),
    }
}

/// The configuration for one invocation: an event carrying
/// `{"dry_run": true}` forces a dry run. Any other event (EventBridge's
/// scheduled event included) runs as configured; an event can never turn a
/// configured dry run into real writes.
pub(crate) fn invocation_config(base: &Config, event: &serde_json::Value) -> Config {
    let mut config = base.clone();
    if event.get("dry_run").and_then(serde_json::Value::as_bool) == Some(true) {
        config.dry_run = true;
    }
    config
}

/// The deadline a run works to. Lambda gives one; local emulators send a
/// deadline in 1970, which means "unknown": fall back to the budget.
pub(crate) fn effective_deadline(lambda_deadline: SystemTime, now: DateTime<Utc>, budget: Duration) -> DateTime<Utc> {
    let given: DateTime<Utc> = lambda_deadline.into();
    if given > now {
        given
    } else {
        now + chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::seconds(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        let vars: HashMap<String, String> = [("LOCK_TABLES".to_string(), "locks".to_string())].into();
        Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::Emf }).unwrap()
    }

    #[test]
    fn dry_run_event_forces_dry_run() {
        assert!(invocation_config(&base(), &serde_json::json!({"dry_run": true})).dry_run);
        assert!(!invocation_config(&base(), &serde_json::json!({"dry_run": "yes"})).dry_run);
        let scheduled = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}
        });
        assert!(!invocation_config(&base(), &scheduled).dry_run);
        let mut dry = base();
        dry.dry_run = true;
        assert!(
            invocation_config(&dry, &serde_json::json!({"dry_run": false})).dry_run,
            "an event cannot undo a configured dry run"
        );
    }

    #[test]
    fn past_deadline_falls_back_to_budget() {
        let now = Utc::now();
        let emulator = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(effective_deadline(emulator, now, Duration::from_secs(30)), now + chrono::Duration::seconds(30));
        let real = SystemTime::from(now + chrono::Duration::seconds(900));
        assert_eq!(effective_deadline(real, now, Duration::from_secs(30)), now + chrono::Duration::seconds(900));
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log() {
        assert_eq!(log_filter(Some("DEBUG"), Some("warn")), "debug");
        assert_eq!(log_filter(Some("FATAL"), None), "error");
        assert_eq!(log_filter(None, Some("tf_lock_reaper=trace")), "tf_lock_reaper=trace");
        assert_eq!(log_filter(Some(" "), None), "info");
        assert_eq!(log_filter(None, None), "info");
    }
}
