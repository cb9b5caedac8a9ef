//! How pages print numbers, sizes, durations and times: short, with units, and the same on
//! every page.

use std::time::Duration;

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", significant(value), UNITS[unit])
}

/// A count with a decimal suffix: `950`, `12.3k`, `4.5M`.
pub(crate) fn count(n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let (value, suffix) = match n.abs() {
        a if a >= 1e9 => (n / 1e9, "G"),
        a if a >= 1e6 => (n / 1e6, "M"),
        a if a >= 1e3 => (n / 1e3, "k"),
        _ => (n, ""),
    };
    format!("{}{suffix}", significant(value))
}

/// Three significant digits at most, without trailing zeros: `1.5`, `12.3`, `512`.
fn significant(value: f64) -> String {
    let decimals = match value.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration as people read it: `850µs`, `12.5ms`, `3.2s`, `4m 10s`, `2h 5m`, `7d`.
pub(crate) fn duration(d: Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds < 0.001 {
        format!("{}µs", d.as_micros())
    } else if seconds < 1.0 {
        format!("{}ms", significant(seconds * 1000.0))
    } else if seconds < 60.0 {
        format!("{}s", significant(seconds))
    } else {
        let total = d.as_secs();
        let (days, hours, minutes, secs) = (
            total / 86_400,
            total % 86_400 / 3600,
            total % 3600 / 60,
            total % 60,
        );
        match (days, hours, minutes) {
            (0, 0, _) if secs == 0 => format!("{minutes}m"),
            (0, 0, _) => format!("{minutes}m {secs}s"),
            (0, _, 0) => format!("{hours}h"),
            (0, _, _) => format!("{hours}h {minutes}m"),
            (_, 0, _) => format!("{days}d"),
            _ => format!("{days}d {hours}h"),
        }
    }
}

/// How long before `now_ms` the time `ms` was: `12s ago`, `3m ago`; `never` for `None`.
pub(crate) fn ago(now_ms: i64, ms: Option<i64>) -> String {
    match ms {
        None => "never".to_owned(),
        Some(ms) if ms > now_ms => "just now".to_owned(),
        Some(ms) => {
            let elapsed = Duration::from_millis(u64::try_from(now_ms - ms).unwrap_or(0));
            format!("{} ago", duration(Duration::from_secs(elapsed.as_secs())))
        }
    }
}

/// A UTC time as RFC 3339 to the second: `2026-12-05T15:04:05Z`.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A label matcher as the silence form reads it: `name="value"`, the value JSON-quoted.
pub(crate) fn matcher(name: &str, op: &str, value: &str) -> String {
    format!("{name}{op}{}", serde_json::Value::from(value))
}

/// Matchers that select exactly `labels`, comma-separated.
pub(crate) fn equality_matchers(labels: &sightline_core::labels::Labels) -> String {
    labels
        .iter()
        .map(|label| matcher(&label.name, "=", &label.value))
        .collect::<Vec<_>>()
        .join(",")
}

/// The wall clock in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    sightline_alerting::notifier::service::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_and_durations_read_short() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5 GiB");
        assert_eq!(count(950.0), "950");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(4_500_000.0), "4.5M");
        assert_eq!(count(0.25), "0.25");
        assert_eq!(duration(Duration::from_micros(850)), "850µs");
        assert_eq!(duration(Duration::from_micros(12_500)), "12.5ms");
        assert_eq!(duration(Duration::from_millis(3_200)), "3.2s");
        assert_eq!(duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(duration(Duration::from_secs(7_500)), "2h 5m");
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(ago(10_000, Some(7_000)), "3s ago");
        assert_eq!(ago(10_000, None), "never");
        assert_eq!(time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(matcher("job", "=~", "a\"b"), r#"job=~"a\"b""#);
    }
}
