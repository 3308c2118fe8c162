//! Clocks, behind a trait so tests can fix or move time. Two readings: this
//! machine's clock (deadlines, durations) and AWS's (every comparison with a
//! timestamp another machine wrote), which is this machine's clock plus the
//! offset measured from AWS's responses (`domain::clock`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::domain::clock::{ClockOffset, DateSample, OffsetEstimate};
use crate::support::sync::locked;

/// Wall clock.
pub trait Clock: Send + Sync {
    /// This machine's clock: deadlines and durations.
    fn now(&self) -> DateTime<Utc>;

    /// How far AWS's clock is ahead of this one, as measured so far; `None`
    /// before the first response (then AWS's clock is taken as this one).
    fn aws_offset(&self) -> Option<ClockOffset> {
        None
    }

    /// AWS's clock: what Terraform's `Created`, heartbeats and S3's
    /// `LastModified` are judged against, and what heartbeats are written in.
    fn aws_now(&self) -> DateTime<Utc> {
        self.to_aws(self.now())
    }

    /// A moment read earlier on this machine's clock, in AWS's time as
    /// measured now (the offset is known only once a response arrived).
    fn to_aws(&self, local: DateTime<Utc>) -> DateTime<Utc> {
        local + self.aws_offset().map_or(Duration::zero(), ClockOffset::as_duration)
    }
}

/// This machine's clock, uncorrected (retry backoff, PagerDuty timestamps).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The offset from AWS measured from the responses of every SDK client it
/// is attached to (`adapters::clock_probe`): one per process.
#[derive(Debug, Default)]
pub struct AwsOffset(Mutex<OffsetEstimate>);

impl AwsOffset {
    pub fn record(&self, sample: &DateSample) {
        locked(&self.0).add(sample);
    }

    pub fn estimate(&self) -> Option<ClockOffset> {
        locked(&self.0).offset()
    }
}

/// This machine's clock corrected by the offset measured from AWS.
#[derive(Clone, Default)]
pub struct AwsClock {
    offset: Arc<AwsOffset>,
}

impl AwsClock {
    pub fn new(offset: Arc<AwsOffset>) -> Self {
        AwsClock { offset }
    }

    /// The measurement the SDK clients feed.
    pub fn offset(&self) -> &Arc<AwsOffset> {
        &self.offset
    }
}

impl Clock for AwsClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn aws_offset(&self) -> Option<ClockOffset> {
        self.offset.estimate()
    }
}
