//! AWS's clock as this machine sees it. Every decision that compares a
//! timestamp another machine wrote (Terraform's `Created`, an `exec`
//! heartbeat, S3's `LastModified`) with "now" takes "now" from AWS's clock:
//! this machine's clock plus the offset measured here, from the `Date`
//! header of responses the SDK already receives (no extra call).
//!
//! A `Date` has whole seconds, and the server wrote it somewhere between
//! the moment the request left and the moment the response arrived. So each
//! response bounds the offset to an interval; the intervals of several
//! responses are intersected (the tightest bound every response allows),
//! and the estimate is the middle of what is left. Pure code: the adapter
//! hands in the header text and its two local timestamps.

use chrono::{DateTime, Duration, Utc};

use crate::age::format_age;

/// An offset beyond this is said out loud: `exec` warns once, the report
/// and `list` print it, `doctor` warns.
pub const CLOCK_OFFSET_WARN_OVER: Duration = Duration::seconds(30);

/// `doctor` passes a clock within this of AWS's.
pub const CLOCK_OFFSET_PASS_WITHIN: Duration = Duration::seconds(5);

/// A response slower than this says too little about when its `Date` was
/// written (the AWS SDKs use the same bound).
const MAX_ROUND_TRIP: Duration = Duration::minutes(15);

/// One response: when this machine sent the request and received the
/// answer (its own clock), and the server's `Date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSample {
    pub sent: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub server_date: DateTime<Utc>,
}

impl DateSample {
    /// A sample from a response's headers: `None` when there is no `Date`
    /// that parses, when an `Age` header says a cache answered (its `Date`
    /// is old), or when the round trip is negative (this clock jumped) or
    /// too slow to say anything.
    pub fn from_headers(
        sent: DateTime<Utc>,
        received: DateTime<Utc>,
        date: Option<&str>,
        age: Option<&str>,
    ) -> Option<DateSample> {
        if age.is_some() {
            return None;
        }
        let server_date = DateTime::parse_from_rfc2822(date?.trim()).ok()?.with_timezone(&Utc);
        let round_trip = received - sent;
        (round_trip >= Duration::zero() && round_trip <= MAX_ROUND_TRIP).then_some(DateSample {
            sent,
            received,
            server_date,
        })
    }

    /// The offsets (AWS minus this machine, milliseconds) this response
    /// allows: the server wrote `Date` (truncated to the second) between
    /// `sent` and `received`.
    fn bounds(&self) -> (i64, i64) {
        let date = self.server_date.timestamp_millis();
        (date - self.received.timestamp_millis(), date + 999 - self.sent.timestamp_millis())
    }
}

/// What the responses so far say about the offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffsetEstimate {
    /// The offsets every sample since the last reset allows, milliseconds.
    bounds: Option<(i64, i64)>,
    samples: u32,
}

impl OffsetEstimate {
    /// Narrow the estimate by one more response. A response that agrees
    /// with none of the earlier ones means this clock was stepped (NTP, a
    /// resumed VM): the estimate starts again from it.
    pub fn add(&mut self, sample: &DateSample) {
        let (lo, hi) = sample.bounds();
        self.bounds = match self.bounds {
            Some((l, h)) if lo.max(l) <= hi.min(h) => {
                self.samples += 1;
                Some((lo.max(l), hi.min(h)))
            }
            _ => {
                self.samples = 1;
                Some((lo, hi))
            }
        };
    }

    /// The best estimate, once one response was measured.
    pub fn offset(&self) -> Option<ClockOffset> {
        self.bounds.map(|(lo, hi)| ClockOffset { millis: lo + (hi - lo) / 2, uncertainty_millis: (hi - lo) / 2 })
    }

    /// How many responses the estimate rests on.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// How far AWS's clock is ahead of this machine's (negative: behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClockOffset {
    /// AWS minus this machine: positive when this machine's clock is behind.
    pub millis: i64,
    /// Half the width of what the responses allow.
    pub uncertainty_millis: i64,
}

impl ClockOffset {
    pub fn zero() -> Self {
        ClockOffset { millis: 0, uncertainty_millis: 0 }
    }

    /// What to add to this machine's time to get AWS's.
    pub fn as_duration(self) -> Duration {
        Duration::milliseconds(self.millis)
    }

    /// Whole seconds, rounded: what the record and reports keep.
    pub fn seconds(self) -> i64 {
        (self.millis as f64 / 1000.0).round() as i64
    }

    /// Whether it is more than `limit` either way.
    pub fn exceeds(self, limit: Duration) -> bool {
        self.millis.unsigned_abs() > limit.num_milliseconds().unsigned_abs()
    }

    /// `this machine's clock is 14m58s behind AWS` (or `ahead of`), or
    /// `… agrees with AWS` within a second.
    pub fn describe(self) -> String {
        let secs = self.seconds().unsigned_abs();
        if secs == 0 {
            return "this machine's clock agrees with AWS (within 1s)".to_string();
        }
        let way = if self.millis > 0 { "behind" } else { "ahead of" };
        format!("this machine's clock is {} {way} AWS", format_age(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, h, m, s).unwrap() + Duration::milliseconds(ms)
    }

    fn sample(sent: DateTime<Utc>, received: DateTime<Utc>, date: &str) -> DateSample {
        DateSample::from_headers(sent, received, Some(date), None).expect("a usable sample")
    }

    #[test]
    fn a_fast_response_bounds_the_offset_to_about_a_second() {
        // Sent 12:00:00.100 and answered 12:00:00.150 local; AWS said 12:14:58: this clock is 14m58s behind.
        let s = sample(t(12, 0, 0, 100), t(12, 0, 0, 150), "Sat, 05 Dec 2026 12:14:58 GMT");
        let mut e = OffsetEstimate::default();
        e.add(&s);
        let o = e.offset().unwrap();
        assert!((897_850..=898_900).contains(&o.millis), "{o:?}");
        assert!(o.uncertainty_millis <= 525, "{o:?}");
        assert_eq!(o.describe(), "this machine's clock is 14m58s behind AWS");
    }

    #[test]
    fn more_samples_narrow_the_interval_to_the_truth() {
        // The truth: AWS is 2.4 s ahead. Each response is written mid-flight and truncated to the second.
        let truth = 2_400;
        let mut e = OffsetEstimate::default();
        for (i, sent_ms) in [0, 370, 610, 880, 130].iter().enumerate() {
            let sent = t(12, 0, i as u32 * 2, *sent_ms);
            let received = sent + Duration::milliseconds(40);
            let written = sent + Duration::milliseconds(20) + Duration::milliseconds(truth);
            let date = Utc.timestamp_opt(written.timestamp(), 0).unwrap().to_rfc2822().replace("+0000", "GMT");
            e.add(&sample(sent, received, &date));
        }
        let o = e.offset().unwrap();
        assert_eq!(e.samples(), 5);
        assert!((o.millis - truth).abs() <= 100, "{o:?}");
        assert!(o.uncertainty_millis <= 150, "{o:?}");
        assert!(!o.exceeds(CLOCK_OFFSET_WARN_OVER));
    }

    #[test]
    fn a_slow_response_widens_nothing_once_a_fast_one_was_seen() {
        let mut e = OffsetEstimate::default();
        e.add(&sample(t(12, 0, 0, 0), t(12, 0, 0, 50), "Sat, 05 Dec 2026 11:45:00 GMT"));
        let fast = e.offset().unwrap();
        // 20 s in flight: its interval is wide and contains the fast one's.
        e.add(&sample(t(12, 0, 10, 0), t(12, 0, 30, 0), "Sat, 05 Dec 2026 11:45:20 GMT"));
        assert_eq!(e.offset().unwrap(), fast);
        assert!(fast.millis < -899_000 && fast.millis > -901_000, "{fast:?}");
        assert_eq!(fast.describe(), "this machine's clock is 15m00s ahead of AWS");
    }

    #[test]
    fn a_slow_response_alone_still_bounds_the_offset_by_its_round_trip() {
        let mut e = OffsetEstimate::default();
        e.add(&sample(t(12, 0, 0, 0), t(12, 0, 8, 0), "Sat, 05 Dec 2026 12:00:04 GMT"));
        let o = e.offset().unwrap();
        assert!(o.millis.abs() <= 1_000 && o.uncertainty_millis >= 4_000, "{o:?}");
    }

    #[test]
    fn missing_unparsable_or_cached_dates_are_not_samples() {
        let (a, b) = (t(12, 0, 0, 0), t(12, 0, 0, 30));
        assert_eq!(DateSample::from_headers(a, b, None, None), None);
        assert_eq!(DateSample::from_headers(a, b, Some("yesterday"), None), None);
        // A cache answered: its Date is as old as Age says, not now.
        assert_eq!(DateSample::from_headers(a, b, Some("Sat, 05 Dec 2026 11:00:00 GMT"), Some("3600")), None);
        // The clock went backwards during the call, or the call took longer than any measure allows.
        assert_eq!(DateSample::from_headers(b, a, Some("Sat, 05 Dec 2026 12:00:00 GMT"), None), None);
        let slow = a + Duration::minutes(16);
        assert_eq!(DateSample::from_headers(a, slow, Some("Sat, 05 Dec 2026 12:00:00 GMT"), None), None);
        assert_eq!(OffsetEstimate::default().offset(), None);
    }

    #[test]
    fn a_stepped_clock_starts_the_estimate_again() {
        let mut e = OffsetEstimate::default();
        e.add(&sample(t(12, 0, 0, 0), t(12, 0, 0, 50), "Sat, 05 Dec 2026 12:00:00 GMT"));
        e.add(&sample(t(12, 0, 5, 0), t(12, 0, 5, 50), "Sat, 05 Dec 2026 12:00:05 GMT"));
        assert_eq!(e.samples(), 2);
        // NTP stepped this clock back 10 minutes: the old bound disagrees, the new one wins.
        e.add(&sample(t(11, 50, 10, 0), t(11, 50, 10, 50), "Sat, 05 Dec 2026 12:00:10 GMT"));
        assert_eq!(e.samples(), 1);
        let o = e.offset().unwrap();
        assert!((599_000..=601_000).contains(&o.millis), "{o:?}");
    }
}
