//! Making untrusted text (anything read from a lock) safe to show: control
//! and invisible characters removed, length capped, shell-quoted.

/// Caps for untrusted text.
pub const FIELD_CAP: usize = 256;
pub const ERROR_CAP: usize = 512;
const SUBJECT_CAP: usize = 99;
pub const SUMMARY_CAP: usize = 1024;

/// Remove control and invisible formatting characters (bidi overrides,
/// zero-width) and cap at `max` characters, marking a cut with `…`.
pub fn clean(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c })
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect();
    cap(&cleaned, max)
}

/// Bidi overrides, zero-width and other invisible formatting characters.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

pub fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An SNS subject: printable ASCII only, under 100 characters.
pub fn subject(s: &str) -> String {
    let ascii: String = s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if ascii.len() <= SUBJECT_CAP {
        ascii
    } else {
        format!("{}...", &ascii[..SUBJECT_CAP - 3])
    }
}

pub use crate::commands::shell_quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_control_and_invisible_characters_and_caps() {
        assert_eq!(clean("a\nb\tc\u{7}d\u{202E}e\u{200B}f", 100), "a b cdef");
        let long = "x".repeat(10_000);
        let c = clean(&long, 256);
        assert_eq!(c.chars().count(), 256);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn subjects_are_short_ascii_single_lines() {
        let s = subject(&format!("Stale lock: {}\n\u{1F525}", "y".repeat(300)));
        assert!(s.len() < 100 && s.is_ascii() && !s.contains('\n'));
    }

    #[test]
    fn shell_quoting_defeats_injection() {
        assert_eq!(shell_quote("abc"), "'abc'");
        assert_eq!(shell_quote("x'; rm -rf / #"), r"'x'\''; rm -rf / #'");
    }
}
