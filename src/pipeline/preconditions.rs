//! The reaper's own preconditions, checked before it relies on them: with
//! `ACTION=ttl`, TTL must be enabled on `TTL_ATTRIBUTE`, or every TTL it
//! writes does nothing. Checked once per container (once per CLI run) and
//! again after [`RECHECK_AFTER`], so a fix resolves its alert without a
//! cold start; an unanswered check is retried on the next run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::domain::report::TtlCheck;
use crate::domain::source::SourceAddress;
use crate::ports::inspect::TableInspector;
use crate::support::sync::locked;

/// How long a TTL answer is trusted.
pub(crate) const RECHECK_AFTER: Duration = Duration::hours(1);

/// The TTL precondition of every table, remembered between runs.
pub struct TtlPrecondition {
    inspector: Arc<dyn TableInspector>,
    attribute: String,
    checked: Mutex<HashMap<SourceAddress, (DateTime<Utc>, TtlCheck)>>,
}

impl TtlPrecondition {
    pub fn new(inspector: Arc<dyn TableInspector>, attribute: &str) -> Self {
        TtlPrecondition { inspector, attribute: attribute.to_string(), checked: Mutex::new(HashMap::new()) }
    }

    /// Whether TTL is enabled on the attribute of `table`, as of `now`.
    pub(crate) async fn check(&self, table: &SourceAddress, now: DateTime<Utc>) -> TtlCheck {
        let remembered = self.remembered().get(table).filter(|(at, _)| now - *at < RECHECK_AFTER).cloned();
        if let Some((_, check)) = remembered {
            return check;
        }
        let check = match self.inspector.ttl(table).await {
            Ok(ttl) if ttl.enabled_on(&self.attribute) => TtlCheck::Enabled,
            Ok(ttl) => TtlCheck::Disabled { detail: ttl.describe(&self.attribute), attribute: self.attribute.clone() },
            Err(e) => TtlCheck::Unknown { error: e.message },
        };
        if !matches!(check, TtlCheck::Unknown { .. }) {
            self.remembered().insert(table.clone(), (now, check.clone()));
        }
        check
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<SourceAddress, (DateTime<Utc>, TtlCheck)>> {
        locked(&self.checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::ErrorKind;
    use crate::domain::health::table::{TableFacts, TtlDescription};
    use crate::ports::SourceError;

    /// Answers with the status it holds, counting the calls.
    struct Ttl(Mutex<(Option<&'static str>, usize)>);

    #[async_trait::async_trait]
    impl TableInspector for Ttl {
        async fn table_facts(&self, _: &SourceAddress) -> TableFacts {
            unreachable!("the precondition reads only the TTL")
        }
        async fn ttl(&self, _: &SourceAddress) -> Result<TtlDescription, SourceError> {
            let mut s = self.0.lock().unwrap();
            s.1 += 1;
            match s.0 {
                Some(status) => Ok(TtlDescription { status: status.into(), attribute: Some("ExpiresAt".into()) }),
                None => Err(SourceError::new(ErrorKind::Throttled, "throttled")),
            }
        }
    }

    #[tokio::test]
    async fn checked_once_then_again_after_an_hour_and_failures_are_retried() {
        let inspector = Arc::new(Ttl(Mutex::new((Some("DISABLED"), 0))));
        let p = TtlPrecondition::new(inspector.clone(), "ExpiresAt");
        let t0 = Utc::now();
        let locks = SourceAddress::own(crate::domain::lock::SourceKind::Table, "locks");
        assert!(matches!(p.check(&locks, t0).await, TtlCheck::Disabled { .. }));
        inspector.0.lock().unwrap().0 = Some("ENABLED");
        assert!(matches!(p.check(&locks, t0 + Duration::minutes(59)).await, TtlCheck::Disabled { .. }), "remembered");
        assert_eq!(inspector.0.lock().unwrap().1, 1, "one call per container");
        assert_eq!(p.check(&locks, t0 + Duration::minutes(61)).await, TtlCheck::Enabled, "rechecked after an hour");
        inspector.0.lock().unwrap().0 = None;
        let fresh = TtlPrecondition::new(inspector.clone(), "ExpiresAt");
        assert!(matches!(fresh.check(&locks, t0).await, TtlCheck::Unknown { .. }));
        inspector.0.lock().unwrap().0 = Some("ENABLED");
        assert_eq!(fresh.check(&locks, t0).await, TtlCheck::Enabled, "an unanswered check is retried at once");
    }
}
