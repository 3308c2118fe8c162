//! A clock that only moves when told, and may be told it is off from AWS's.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::clock::ClockOffset;
use crate::ports::clock::Clock;
use crate::support::sync::locked;

/// A clock that stands still until moved.
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
    aws_offset: Mutex<Option<ClockOffset>>,
}

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        FixedClock { now: Mutex::new(now), aws_offset: Mutex::new(None) }
    }

    pub fn advance(&self, by: chrono::Duration) {
        *locked(&self.now) += by;
    }

    /// This machine's clock is `by` ahead of AWS's (negative: behind), as
    /// its responses would have measured it.
    pub fn set_ahead_of_aws(&self, by: chrono::Duration) {
        *locked(&self.aws_offset) = Some(ClockOffset { millis: -by.num_milliseconds(), uncertainty_millis: 500 });
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *locked(&self.now)
    }

    fn aws_offset(&self) -> Option<ClockOffset> {
        *locked(&self.aws_offset)
    }
}
