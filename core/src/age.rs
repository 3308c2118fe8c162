//! Durations as people read them in tables, alerts and pages.

/// `3h12m`, `45s`, `2d4h`: coarse enough to read at a glance.
pub fn format_age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(format_age(5), "5s");
        assert_eq!(format_age(65), "1m05s");
        assert_eq!(format_age(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(format_age(2 * 86400 + 4 * 3600), "2d04h");
    }
}
