//! Byte sizes written the way Prometheus writes them: `512KiB`, `10MB`, `1GiB`, `0`.
//!
//! Follows `units.Base2Bytes` of github.com/alecthomas/units, which Prometheus uses for
//! `body_size_limit` and `--storage.tsdb.retention.size`: every unit is a power of 1024, so
//! `KB` and `KiB` mean the same. A plain integer is a number of bytes.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes, parsed from Prometheus's base-2 unit syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// Unit suffixes from largest to smallest with their multipliers.
const UNITS: [(&str, u64); 13] = [
    ("EiB", 1 << 60),
    ("EB", 1 << 60),
    ("PiB", 1 << 50),
    ("PB", 1 << 50),
    ("TiB", 1 << 40),
    ("TB", 1 << 40),
    ("GiB", 1 << 30),
    ("GB", 1 << 30),
    ("MiB", 1 << 20),
    ("MB", 1 << 20),
    ("KiB", 1 << 10),
    ("KB", 1 << 10),
    ("B", 1),
];

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a string is not a byte size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid size: {input:?} (use e.g. 512KiB, 10MB, 1GiB)")]
pub struct ParseByteSizeError {
    input: String,
}

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseByteSizeError {
            input: input.to_owned(),
        };
        if let Ok(bytes) = input.parse::<u64>() {
            return Ok(ByteSize(bytes));
        }
        let (number, multiplier) = UNITS
            .iter()
            .find_map(|(suffix, multiplier)| Some((input.strip_suffix(suffix)?, *multiplier)))
            .ok_or_else(invalid)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let number: u64 = number.parse().map_err(|_| invalid())?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = UNITS
            .iter()
            .filter(|(suffix, _)| suffix.ends_with("iB") || *suffix == "B")
            .find(|(_, multiplier)| self.0 != 0 && self.0.is_multiple_of(*multiplier));
        match unit {
            Some((suffix, multiplier)) => write!(f, "{}{suffix}", self.0 / multiplier),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByteSizeVisitor;
        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 512KiB, 10MB or 1GiB")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base2_units() {
        for (text, bytes) in [
            ("0", 0),
            ("100", 100),
            ("100B", 100),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("10MB", 10 << 20),
            ("32MiB", 32 << 20),
            ("2GiB", 2 << 30),
            ("1TB", 1 << 40),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_sizes() {
        for text in [
            "",
            "MB",
            "1.5MB",
            "-1MB",
            "1 MB",
            "1mb",
            "1XB",
            "99999999999EiB",
        ] {
            assert!(
                text.parse::<ByteSize>().is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn displays_largest_exact_unit() {
        for (bytes, text) in [
            (0, "0B"),
            (1536, "1536B"),
            (1 << 20, "1MiB"),
            (32 << 20, "32MiB"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)));
        }
    }
}
