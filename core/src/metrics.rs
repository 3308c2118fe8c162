//! Metrics as plain data, derived from the run report. A metrics sink
//! (`ports::metrics`) writes them: EMF lines, `PutMetricData`, or nothing.

use crate::lock::SourceKind;
use crate::report::{RunReport, TtlCheck};
use crate::source::SourceAddress;

/// Unit of one metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Values that share one set of dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSet {
    /// Empty for run-wide metrics.
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<(&'static str, f64, Unit)>,
}

/// The dimension that names a source: `TableName` or `Bucket`.
pub fn dimension_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Table => "TableName",
        SourceKind::Bucket => "Bucket",
    }
}

/// A source's dimensions: `TableName` or `Bucket` alone for the reaper's
/// own account and region (so existing alarms keep working), plus
/// `Account` and `Region` for sources elsewhere.
pub fn source_dimensions(at: &SourceAddress) -> Vec<(String, String)> {
    let mut dims = vec![(dimension_name(at.kind).to_string(), at.path())];
    if let Some(account) = &at.account {
        dims.push(("Account".to_string(), account.clone()));
    }
    if let Some(region) = &at.region {
        dims.push(("Region".to_string(), region.clone()));
    }
    dims
}

/// Per-source metrics plus run-wide ones with no dimension (`RunDurationMs`,
/// `AlertsSent`, `AlertErrors`, and the totals over every source of
/// `StaleLocks`, `BreakerTripped`, `ScanErrors` and `UnreadableItems`).
pub fn metric_sets(report: &RunReport) -> Vec<MetricSet> {
    let mut sets: Vec<MetricSet> = report
        .sources
        .iter()
        .map(|t| {
            let c = &t.counts;
            let n = |v: usize| v as f64;
            let mut set = MetricSet {
                dimensions: source_dimensions(&t.address),
                values: vec![
                    ("LocksHeld", n(c.locks_held), Unit::Count),
                    ("StaleLocks", n(c.stale), Unit::Count),
                    ("OldestLockAgeSeconds", t.oldest_lock_age_seconds.unwrap_or(0) as f64, Unit::Seconds),
                    ("UnreadableItems", n(c.unreadable), Unit::Count),
                    // Stale locks this run cleared: a delete whose response
                    // was lost finds its lock gone on the retry, and counts.
                    ("LocksDeleted", n(c.deleted + c.gone), Unit::Count),
                    ("LocksChanged", n(c.changed), Unit::Count),
                    ("TtlBackfilled", n(c.ttl_backfilled), Unit::Count),
                    ("ActionErrors", n(c.errors), Unit::Count),
                    ("BreakerTripped", if report.breaker_tripped { 1.0 } else { 0.0 }, Unit::Count),
                    ("ScanErrors", if t.scan_error.is_some() { 1.0 } else { 0.0 }, Unit::Count),
                    ("HeartbeatLocks", n(c.heartbeat_locks), Unit::Count),
                    ("DeadHeartbeats", n(c.dead_heartbeats), Unit::Count),
                ],
            };
            // With ACTION=ttl, once the TTL setting could be read.
            match t.ttl {
                Some(TtlCheck::Enabled) => set.values.push(("TtlDisabled", 0.0, Unit::Count)),
                Some(TtlCheck::Disabled { .. }) => set.values.push(("TtlDisabled", 1.0, Unit::Count)),
                Some(TtlCheck::Unknown { .. }) | None => {}
            }
            // Stale locks a grouped alert (ALERT_GROUP_OVER) covers this run.
            if let Some(g) = &t.grouped_alert {
                set.values.push(("GroupedStaleLocks", g.covered as f64, Unit::Count));
            }
            set
        })
        .collect();
    // Totals over every source, with no dimension: what the module's alarms
    // watch, so discovered sources (unknown when the module is planned) alarm too.
    let total = |f: &dyn Fn(&crate::report::SourceReport) -> usize| report.sources.iter().map(f).sum::<usize>() as f64;
    let mut run_wide = MetricSet {
        dimensions: Vec::new(),
        values: vec![
            ("RunDurationMs", report.duration_ms as f64, Unit::Milliseconds),
            ("AlertsSent", report.alerts_sent as f64, Unit::Count),
            ("AlertErrors", report.alert_errors as f64, Unit::Count),
            ("StaleLocks", total(&|t| t.counts.stale), Unit::Count),
            ("BreakerTripped", if report.breaker_tripped { 1.0 } else { 0.0 }, Unit::Count),
            ("ScanErrors", total(&|t| usize::from(t.scan_error.is_some())), Unit::Count),
            ("UnreadableItems", total(&|t| t.counts.unreadable), Unit::Count),
        ],
    };
    // With ORGANIZATION_ACCOUNTS: the lock tables discovery found, and the
    // accounts or regions it could not search.
    if let Some(d) = &report.discovery {
        run_wide.values.push(("DiscoveredSources", d.tables as f64, Unit::Count));
        run_wide.values.push(("DiscoveryErrors", d.failures.len() as f64, Unit::Count));
    }
    sets.push(run_wide);
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn own_sources_keep_their_one_dimension_others_add_account_and_region() {
        assert_eq!(source_dimensions(&SourceAddress::table("locks").unwrap()), dims(&[("TableName", "locks")]));
        assert_eq!(
            source_dimensions(&SourceAddress::table("arn:aws:dynamodb:eu-west-1:111111111111:table/locks").unwrap()),
            dims(&[("TableName", "locks"), ("Account", "111111111111"), ("Region", "eu-west-1")])
        );
        assert_eq!(
            source_dimensions(&SourceAddress::bucket("tfstate/teams").unwrap()),
            dims(&[("Bucket", "tfstate/teams")])
        );
        assert_eq!(
            source_dimensions(&SourceAddress::bucket("tfstate/teams@us-west-2").unwrap()),
            dims(&[("Bucket", "tfstate/teams"), ("Region", "us-west-2")])
        );
    }
}
