//! Durations written the way Prometheus writes them: `30s`, `1h30m`, `7d`, `2w`, `1y`, `500ms`.
//!
//! Follows `model.ParseDuration` of github.com/prometheus/common: units `y` (365 d), `w`, `d`,
//! `h`, `m`, `s`, `ms`, each at most once and largest first; a lone `0` is zero; no sign, no
//! fraction, no spaces. Display writes the shortest equivalent form, as Prometheus does, so a
//! value survives a round trip through config and API output.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A non-negative duration with millisecond resolution, parsed from Prometheus syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// Units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration(std::time::Duration::from_millis(millis))
    }

    /// The duration as the standard library type.
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds, the resolution Prometheus works in.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// True for the zero duration (often meaning "off" or "every time").
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a string is not a Prometheus duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {input:?} (use e.g. 30s, 5m, 1h30m, 7d)")]
pub struct ParseDurationError {
    input: String,
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseDurationError {
            input: input.to_owned(),
        };
        if input == "0" {
            return Ok(Duration::default());
        }
        if input.is_empty() {
            return Err(invalid());
        }
        let mut rest = input;
        let mut total: u64 = 0;
        // Index into UNITS of the next unit allowed: units must appear largest first, once.
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let position = UNITS[next_unit..]
                .iter()
                .position(|(name, _)| *name == unit)
                .ok_or_else(invalid)?;
            let millis_per_unit = UNITS[next_unit + position].1;
            next_unit += position + 1;
            total = number
                .checked_mul(millis_per_unit)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(invalid)?;
        }
        Ok(Duration::from_millis(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (name, unit) in UNITS {
            if millis >= unit {
                write!(f, "{}{name}", millis / unit)?;
                millis %= unit;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m or 7d")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            // YAML reads a bare `0` as an integer; Prometheus accepts it as zero.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "not a valid duration string: \"{v}\" (a unit is required, e.g. {v}s)"
                    )))
                }
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_forms() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("30s", 30_000),
            ("1h30m", 5_400_000),
            ("7d", 7 * 86_400_000),
            ("2w", 14 * 86_400_000),
            ("1y", 365 * 86_400_000),
            ("1d2h3m4s5ms", 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5),
        ];
        for (text, millis) in cases {
            assert_eq!(
                text.parse::<Duration>().map(Duration::as_millis),
                Ok(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for text in [
            "",
            "5",
            "1.5h",
            "-1s",
            "1m1h",
            "1s1s",
            "1x",
            "h",
            " 1s",
            "1s ",
            "99999999999999999999y",
        ] {
            assert!(
                text.parse::<Duration>().is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn displays_shortest_form() {
        for (millis, text) in [
            (0, "0s"),
            (90 * 60_000, "1h30m"),
            (7 * 86_400_000, "1w"),
            (1_500, "1s500ms"),
        ] {
            assert_eq!(Duration::from_millis(millis).to_string(), text);
            assert_eq!(
                text.parse::<Duration>().map(Duration::as_millis),
                Ok(millis)
            );
        }
    }
}
