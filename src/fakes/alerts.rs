//! The notify-once state and a notifier, in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::alert::{Message, OpenAlert, Severity};
use crate::ports::alert_state::{AlertState, StateError};
use crate::ports::notifier::{Notifier, NotifyError};
use crate::support::deadline::Deadline;
use crate::support::sync::locked;

/// The notify-once state in memory, with the same conditional semantics as
/// the DynamoDB table.
#[derive(Default)]
pub struct MemoryAlertState {
    pub open: Mutex<BTreeMap<String, OpenAlert>>,
    /// Make every call fail.
    pub fail: bool,
}

impl MemoryAlertState {
    pub fn keys(&self) -> Vec<String> {
        locked(&self.open).keys().cloned().collect()
    }

    fn check(&self) -> Result<(), StateError> {
        if self.fail {
            Err(StateError("AccessDeniedException: not authorized".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AlertState for MemoryAlertState {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        self.check()?;
        Ok(locked(&self.open).values().cloned().collect())
    }

    async fn claim(&self, alert: &OpenAlert) -> Result<bool, StateError> {
        self.check()?;
        let mut open = locked(&self.open);
        if open.contains_key(&alert.key) {
            return Ok(false);
        }
        open.insert(alert.key.clone(), alert.clone());
        Ok(true)
    }

    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        self.check()?;
        match locked(&self.open).get_mut(key) {
            Some(a) if a.last_notified_at == expected => {
                a.last_notified_at = now;
                a.severity = severity;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError> {
        self.check()?;
        if let Some(a) = locked(&self.open).get_mut(key) {
            a.count = Some(count);
            a.summary = summary.to_string();
        }
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), StateError> {
        self.check()?;
        locked(&self.open).remove(key);
        Ok(())
    }
}

/// A channel that records every message it is given.
#[derive(Default)]
pub struct RecordingNotifier {
    pub sent: Mutex<Vec<Message>>,
    /// Make every delivery fail.
    pub fail: bool,
}

impl RecordingNotifier {
    pub fn sent(&self) -> Vec<Message> {
        locked(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn channel(&self) -> &'static str {
        "memory"
    }

    async fn send(&self, message: &Message, _deadline: Deadline) -> Result<(), NotifyError> {
        if self.fail {
            return Err(NotifyError("channel down".into()));
        }
        locked(&self.sent).push(message.clone());
        Ok(())
    }
}
