//! A clock that only moves when told.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::ports::clock::Clock;
use crate::support::sync::locked;

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(now))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *locked(&self.0) += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *locked(&self.0)
    }
}
