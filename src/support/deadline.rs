//! The run's deadline, and the one rule every write and delivery obeys: none
//! starts when less than [`WRITE_MARGIN`] is left.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// No write or delivery starts when less than this remains before the
/// deadline: the call itself, metrics and the report still need time.
pub(crate) const WRITE_MARGIN: Duration = Duration::from_secs(5);

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

    /// How long a source's scan may take from `at`: until the deadline less
    /// two write margins, so acting, notifying and reporting still fit.
    /// `None` without a deadline.
    pub(crate) fn scan_budget(self, at: DateTime<Utc>) -> Option<Duration> {
        let d = self.0?;
        let margin = chrono::Duration::from_std(WRITE_MARGIN * 2).unwrap_or_default();
        Some((d - margin - at).to_std().unwrap_or(Duration::ZERO))
    }

    /// Whether a write (or delivery) may start at `at`: at least
    /// [`WRITE_MARGIN`] must remain.
    pub(crate) fn leaves_time_for_a_write(self, at: DateTime<Utc>) -> bool {
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

    #[test]
    fn a_scan_leaves_two_margins() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        assert_eq!(Deadline::none().scan_budget(now), None);
        assert_eq!(Deadline::at(now + chrono::Duration::seconds(30)).scan_budget(now), Some(Duration::from_secs(20)));
        assert_eq!(Deadline::at(now + chrono::Duration::seconds(3)).scan_budget(now), Some(Duration::ZERO));
    }
}
