//! The pure parts of the Lambda handler: how an event adjusts the
//! configuration and which deadline a run gets.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::Config;

/// The configuration for one invocation: an event carrying
/// `{"dry_run": true}` forces a dry run. Any other event (EventBridge's
/// scheduled event included) runs as configured; an event can never turn a
/// configured dry run into real writes.
pub fn invocation_config(base: &Config, event: &serde_json::Value) -> Config {
    let mut config = base.clone();
    if event.get("dry_run").and_then(serde_json::Value::as_bool) == Some(true) {
        config.dry_run = true;
    }
    config
}

/// The deadline a run works to. Lambda gives one; local emulators send a
/// deadline in 1970, which means "unknown": fall back to the budget.
pub fn effective_deadline(lambda_deadline: SystemTime, now: DateTime<Utc>, budget: Duration) -> DateTime<Utc> {
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
    use crate::config::{EntrypointDefaults, MetricsSinkKind};
    use std::collections::HashMap;

    fn base() -> Config {
        let vars: HashMap<String, String> = [("LOCK_TABLES".to_string(), "locks".to_string())].into();
        Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::Emf }).unwrap()
    }

    #[test]
    fn dry_run_event_forces_dry_run() {
        assert!(invocation_config(&base(), &serde_json::json!({"dry_run": true})).dry_run);
        assert!(!invocation_config(&base(), &serde_json::json!({"dry_run": "yes"})).dry_run);
        let scheduled = serde_json::json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","detail":{}});
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
}
