//! What the search for lock sources reads from the environment: the CLI
//! given no source looks for lock tables in its own account and region
//! (`DISCOVER_TABLES` narrows it by name).

use std::collections::HashMap;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::reader::Reader;
use crate::domain::discovery::NameFilter;

/// `DISCOVER_TABLES` and the time budget of the search's calls.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    pub tables: NameFilter,
    pub run_budget: Duration,
}

impl DiscoverySettings {
    pub(crate) fn from_vars(vars: &HashMap<String, String>) -> Result<DiscoverySettings, ConfigError> {
        let mut r = Reader::new(vars);
        let patterns = r.list("DISCOVER_TABLES");
        let tables = NameFilter::new(&patterns).unwrap_or_else(|e| {
            r.problem("DISCOVER_TABLES", &patterns.join(","), format!("comma-separated table name globs ({e})"));
            NameFilter::any()
        });
        let run_budget = r.duration_or_default("RUN_BUDGET");
        r.finish()?;
        Ok(DiscoverySettings { tables, run_budget })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_checked_with_the_rest() {
        let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let s = DiscoverySettings::from_vars(&vars(&[("DISCOVER_TABLES", "terraform-*, *-locks")])).unwrap();
        assert_eq!(s.tables.patterns, ["terraform-*", "*-locks"]);
        let e = DiscoverySettings::from_vars(&vars(&[("DISCOVER_TABLES", "a[b"), ("RUN_BUDGET", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("DISCOVER_TABLES=\"a[b\": expected comma-separated table name globs"), "{e}");
        assert!(e.contains("RUN_BUDGET"), "{e}");
    }
}
