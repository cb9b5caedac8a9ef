//! Durations and byte sizes as LogQL reads them in label filters and `unwrap`.
//!
//! Durations follow Go's `time.ParseDuration` (`1.5h`, `300ms`, `2h45m`, `-1s`, units `ns`,
//! `us`/`µs`, `ms`, `s`, `m`, `h`) plus the `d`, `w`, `y` units of Prometheus ranges (`[1d]`).
//! Byte sizes follow `humanize.ParseBytes` (github.com/dustin/go-humanize), which Loki uses:
//! SI units (`KB` = 1000) and IEC units (`KiB` = 1024), case-insensitive, an optional space,
//! fractions allowed.

/// Seconds in a duration, or `None` when `text` is not one.
pub fn parse_duration_seconds(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_end == 0 {
            return None;
        }
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    Some(if negative { -total } else { total })
}

/// Nanoseconds in a duration (rounded), or `None`.
pub fn parse_duration_ns(text: &str) -> Option<i64> {
    parse_duration_seconds(text).map(|seconds| (seconds * 1e9).round() as i64)
}

/// Bytes in a size, or `None` when `text` is not one.
pub fn parse_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    if number_end == 0 {
        return None;
    }
    let number: f64 = text[..number_end].parse().ok()?;
    let unit = text[number_end..].trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    Some(number * scale)
}

/// A float as Go's `strconv.ParseFloat` reads it (also `Inf`, `NaN`, hex is not needed).
pub fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration_seconds("1.5h"), Some(5400.0));
        assert_eq!(parse_duration_seconds("2h45m"), Some(9900.0));
        assert_eq!(parse_duration_seconds("300ms"), Some(0.3));
        assert_eq!(parse_duration_seconds("1d"), Some(86400.0));
        assert_eq!(parse_duration_seconds("-1s"), Some(-1.0));
        assert_eq!(parse_duration_seconds("10"), None);
        assert_eq!(parse_duration_seconds("1x"), None);
    }

    #[test]
    fn humanize_bytes() {
        assert_eq!(parse_bytes("10KB"), Some(10_000.0));
        assert_eq!(parse_bytes("10KiB"), Some(10_240.0));
        assert_eq!(parse_bytes("1.5 MB"), Some(1_500_000.0));
        assert_eq!(parse_bytes("42"), Some(42.0));
        assert_eq!(parse_bytes("12 parsecs"), None);
    }
}
