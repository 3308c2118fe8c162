//! The run's deadline, and the one rule every write and delivery obeys: none
//! starts when less than [`WRITE_MARGIN`] is left.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// No write or delivery starts when less than this remains before the
/// deadline: the call itself, metrics and the report still need time.
pub const WRITE_MARGIN: Duration = Duration::from_secs(5);

/// When the run must be done; `none()` for the CLI, which has no deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline(Option<DateTime<Utc>>);

impl Deadline {
    /// No deadline: everything may start.
    pub fn none() -> Self {
        Deadline(None)
    }

    pub fn at(at: DateTime<Utc>) -> Self {
        Deadline(Some(at))
    }

    /// Whether a write (or delivery) may start at `at`: at least
    /// [`WRITE_MARGIN`] must remain.
    pub fn leaves_time_for_a_write(self, at: DateTime<Utc>) -> bool {
        let margin = chrono::Duration::from_std(WRITE_MARGIN).unwrap_or_default();
        self.0.is_none_or(|d| at + margin <= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_write_needs_the_margin() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        assert!(Deadline::none().leaves_time_for_a_write(now));
        assert!(Deadline::at(now + chrono::Duration::seconds(5)).leaves_time_for_a_write(now));
        assert!(!Deadline::at(now + chrono::Duration::seconds(4)).leaves_time_for_a_write(now));
        assert!(!Deadline::at(now - chrono::Duration::seconds(1)).leaves_time_for_a_write(now));
    }
}
