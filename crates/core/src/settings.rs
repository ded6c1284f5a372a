//! Settings read once at start: each area reads its own `SQS_PUSH_*` variables through
//! [`setting`] and friends, one line a setting, and a bad value is an error naming its variable.
//!
//! Not for: values that change while running, or secrets (they come from the Lambda role).

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// Where settings come from: the process environment, or a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A configuration value that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// A whole number within `range`, or `None` when the variable is not set.
pub fn setting<T>(
    lookup: Lookup<'_>,
    variable: &'static str,
    range: RangeInclusive<T>,
) -> Result<Option<T>, ConfigError>
where
    T: FromStr + PartialOrd + Display,
{
    let Some(raw) = lookup(variable) else {
        return Ok(None);
    };
    match raw.parse::<T>() {
        Ok(value) if range.contains(&value) => Ok(Some(value)),
        _ => Err(ConfigError {
            variable,
            problem: format!(
                "must be a whole number from {} to {}, not {raw:?}",
                range.start(),
                range.end()
            ),
        }),
    }
}

/// A value that must be set and not empty.
pub fn required(lookup: Lookup<'_>, variable: &'static str) -> Result<String, ConfigError> {
    lookup(variable)
        .filter(|value| !value.is_empty())
        .ok_or(ConfigError {
            variable,
            problem: "is required".to_string(),
        })
}

/// A value that is not empty, or `None` when it is unset or empty.
pub fn text(lookup: Lookup<'_>, variable: &'static str) -> Option<String> {
    lookup(variable).filter(|value| !value.is_empty())
}

/// A value parsed by its own `FromStr`, whose error (a `String`) says what is accepted.
pub fn parsed<T>(lookup: Lookup<'_>, variable: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr<Err = String>,
{
    lookup(variable)
        .map(|raw| {
            raw.parse()
                .map_err(|problem| ConfigError { variable, problem })
        })
        .transpose()
}

/// A switch: `true`/`1` or `false`/`0`/empty, or `None` when the variable is not set.
pub fn flag(lookup: Lookup<'_>, variable: &'static str) -> Result<Option<bool>, ConfigError> {
    let Some(raw) = lookup(variable) else {
        return Ok(None);
    };
    match raw.as_str() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" | "" => Ok(Some(false)),
        _ => Err(ConfigError {
            variable,
            problem: format!("must be true or false, not {raw:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::DispatchSettings;

    fn only(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |asked| (asked == name).then(|| value.to_string())
    }

    #[test]
    fn a_number_outside_its_range_names_the_variable_and_the_range() {
        let lookup = only("SQS_PUSH_N", "65");
        let error = setting::<u32>(&lookup, "SQS_PUSH_N", 1..=64).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config SQS_PUSH_N: must be a whole number from 1 to 64, not \"65\""
        );
        assert_eq!(setting::<u32>(&lookup, "SQS_PUSH_M", 1..=64), Ok(None));
        let lookup = only("SQS_PUSH_N", "64");
        assert_eq!(setting::<u32>(&lookup, "SQS_PUSH_N", 1..=64), Ok(Some(64)));
        for bad in ["-1", " 5", "5.0", "lots", ""] {
            let lookup = move |_: &str| Some(bad.to_string());
            assert!(
                setting::<u64>(&lookup, "SQS_PUSH_N", 0..=10).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_flag_is_true_false_or_an_error_naming_the_variable() {
        for (raw, expected) in [("true", true), ("1", true), ("false", false), ("", false)] {
            let lookup = move |_: &str| Some(raw.to_string());
            assert_eq!(flag(&lookup, "SQS_PUSH_F"), Ok(Some(expected)), "{raw:?}");
        }
        let lookup = only("SQS_PUSH_F", "yes");
        assert_eq!(
            flag(&lookup, "SQS_PUSH_F").unwrap_err().variable,
            "SQS_PUSH_F"
        );
    }

    #[test]
    fn dispatch_reads_its_own_settings_and_a_direct_limit_bounds_the_reported_urls() {
        let lookup = only("SQS_PUSH_DIRECT_LIMIT", "7");
        let settings = DispatchSettings::from_lookup(&lookup).unwrap();
        assert_eq!((settings.direct_limit, settings.report_urls_up_to), (7, 7));
        let defaults = DispatchSettings::default();
        let settings = DispatchSettings::from_lookup(&|_: &str| None).unwrap();
        assert_eq!(settings.scan_page, defaults.scan_page);
        let lookup = only("SQS_PUSH_SCAN_PAGE", "0");
        let error = DispatchSettings::from_lookup(&lookup).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_SCAN_PAGE");
    }
}
