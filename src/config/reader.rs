//! Reading variables while collecting every problem: each getter returns a
//! usable fallback so parsing goes on and reports everything at once.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::config::error::{ConfigError, Problem};
use crate::config::variables::{default_of, CLI_VARIABLES, VARIABLES};

pub(crate) const DURATION_HINT: &str = "a duration such as 90m, 2h or 1d";

/// Reads variables and records problems; each getter returns a usable
/// fallback so parsing can go on and report everything at once.
pub(crate) struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(vars: &'a HashMap<String, String>) -> Self {
        Reader { vars, problems: Vec::new() }
    }

    /// Every problem found, or nothing wrong.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: self.problems })
        }
    }

    /// The trimmed value, `None` when unset or empty (Terraform modules pass
    /// empty strings for unset optional inputs).
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        debug_assert!(VARIABLES.iter().chain(CLI_VARIABLES).any(|v| v.name == name), "{name} missing from VARIABLES");
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub(crate) fn problem(&mut self, variable: &str, value: &str, expected: impl Into<String>) {
        self.problems.push(Problem {
            variable: variable.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        });
    }

    pub(crate) fn duration(&mut self, name: &str) -> Option<Duration> {
        let raw = self.get(name)?;
        match parse_positive_duration(raw) {
            Ok(d) => Some(d),
            Err(expected) => {
                self.problem(name, raw, expected);
                None
            }
        }
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(split_list).unwrap_or_default()
    }

    pub(crate) fn integer<T: std::str::FromStr + PartialOrd + Copy + fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problem(name, raw, format!("a whole number from {min} to {max}"));
                default
            }
        }
    }

    /// The value, else the catalogue's default.
    pub(crate) fn text_or_default(&self, name: &str) -> &'a str {
        self.get(name).unwrap_or(default_of(name))
    }

    /// A positive duration, else the catalogue's default (which the
    /// catalogue test proves parses).
    pub(crate) fn duration_or_default(&mut self, name: &str) -> Duration {
        self.duration(name).unwrap_or_else(|| {
            parse_positive_duration(default_of(name)).expect("the catalogue's duration defaults parse (tested)")
        })
    }

    /// A whole number in `min..=max`, else the catalogue's default.
    pub(crate) fn integer_or_default<T>(&mut self, name: &str, min: T, max: T) -> T
    where
        T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
        <T as std::str::FromStr>::Err: fmt::Debug,
    {
        let default = default_of(name).parse::<T>().expect("the catalogue's integer defaults parse (tested)");
        self.integer(name, default, min, max)
    }

    /// One of `choices`, else the one the catalogue's default names.
    pub(crate) fn choice_or_default<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> T {
        let default = choices
            .iter()
            .find(|(k, _)| *k == default_of(name))
            .map(|(_, v)| *v)
            .expect("the catalogue's default is one of the choices (tested)");
        self.choice(name, default, choices)
    }

    pub(crate) fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        let lower = raw.to_ascii_lowercase();
        match choices.iter().find(|(k, _)| *k == lower) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
                self.problem(name, raw, format!("one of {}", names.join(", ")));
                default
            }
        }
    }
}

/// A duration as users write it (`90m`, `2h`, `1d`, `1h30m`), greater than zero.
pub(crate) fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{DURATION_HINT}, greater than zero")),
        Err(_) => Err(DURATION_HINT.to_string()),
    }
}

/// Comma-separated, trimmed, empty entries dropped.
pub(crate) fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
