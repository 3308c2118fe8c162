//! `doctor`'s clock check: this machine's clock against AWS's, as measured
//! from the responses of the other checks (no call of its own).

use crate::clock::{ClockOffset, CLOCK_OFFSET_PASS_WITHIN, CLOCK_OFFSET_WARN_OVER};
use crate::health::Check;

const SUBJECT: &str = "this machine";

/// PASS within 5 s of AWS, PASS with the offset up to 30 s, WARN beyond;
/// `None` when no AWS response was measured (only backend blocks checked).
pub fn clock_check(offset: Option<ClockOffset>) -> Option<Check> {
    let o = offset?;
    let corrected = "tf-lock-reaper judges ages and heartbeats, and exec writes heartbeats, in AWS time, so it \
corrects for this";
    Some(if o.seconds() == 0 {
        Check::pass(SUBJECT, "clock", o.describe())
    } else if !o.exceeds(CLOCK_OFFSET_PASS_WITHIN) {
        Check::pass(SUBJECT, "clock", format!("{} (within 5s)", o.describe()))
    } else if !o.exceeds(CLOCK_OFFSET_WARN_OVER) {
        Check::pass(SUBJECT, "clock", format!("{}; {corrected}", o.describe()))
    } else {
        Check::warn(
            SUBJECT,
            "clock",
            format!(
                "{}; {corrected}, but Terraform's own Created times on this machine are off by as much",
                o.describe()
            ),
            "sync the clock with NTP (`timedatectl set-ntp true`, or `chronyc makestep`)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn at(millis: i64) -> Option<Check> {
        clock_check(Some(ClockOffset { millis, uncertainty_millis: 300 }))
    }

    #[test]
    fn within_five_seconds_passes_beyond_thirty_warns() {
        assert_eq!(clock_check(None), None, "nothing measured, nothing said");
        assert_eq!(at(300).unwrap().why, "this machine's clock agrees with AWS (within 1s)");
        let close = at(-1_200).unwrap();
        assert_eq!(close.status, Status::Pass);
        assert_eq!(close.why, "this machine's clock is 1s ahead of AWS (within 5s)");
        let drifting = at(12_000).unwrap();
        assert_eq!(drifting.status, Status::Pass);
        assert!(
            drifting.why.starts_with("this machine's clock is 12s behind AWS; tf-lock-reaper judges"),
            "{drifting:?}"
        );
        let off = at(898_000).unwrap();
        assert_eq!(off.status, Status::Warn);
        assert!(off.why.starts_with("this machine's clock is 14m58s behind AWS;"), "{off:?}");
        assert!(off.fix.unwrap().contains("NTP"));
        assert_eq!(at(-31_000).unwrap().status, Status::Warn);
        assert_eq!(at(30_000).unwrap().status, Status::Pass, "30s itself is not beyond");
    }
}
