//! Named time intervals (`time_intervals:` and the deprecated top-level
//! `mute_time_intervals:`), which routes use to mute or to activate themselves.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#time_interval>: an
//! interval is a list of periods and contains an instant when any period does; a period
//! contains it when every field it sets does (`times`, `weekdays`, `days_of_month`, `months`,
//! `years`), each field being a list of ranges of which one must match, evaluated in the
//! period's `location` (UTC when unset).
//!
//! Edge cases decided here, as Alertmanager decides them:
//! - `times` are `HH:MM` from `00:00` to `24:00`; a range includes its start minute and
//!   excludes its end, and must not cross midnight (`22:00`–`06:00` is an error: write two
//!   ranges).
//! - Weekday ranges run Sunday to Saturday (`sunday:saturday` is the whole week;
//!   `saturday:sunday` is an error: write `saturday` and `sunday`). Names are
//!   case-insensitive.
//! - `days_of_month` may count back from the month's end (`-1` is the last day). A range
//!   that starts from the end must end so too (`-1:5` is an error); one that is empty in a
//!   28-day month is an error (`5:1`, `-1:-3`, `20:-10`). At evaluation a range is clamped to
//!   the month, and one that starts after the month's end (`31` in April) matches nothing.
//! - `months` take names or numbers 1–12; `years` are positive.
//! - `location: Local` means UTC: the appliance runs in containers, where the local zone is
//!   UTC anyway, and a config should not change meaning with the host. Any IANA name works
//!   (`Europe/Berlin`); the zone database is compiled in.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::Deserializer;
use sightline_core::yaml::{self, Check};

/// A named interval: a list of periods.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The periods; the interval contains an instant when any of them does.
    #[serde(default)]
    pub time_intervals: Vec<TimePeriod>,
}

impl Check for TimeInterval {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a time interval needs a name".to_owned());
        }
        Ok(())
    }
}

impl TimeInterval {
    /// Whether the instant `at` (in any zone) falls in the interval.
    pub fn contains<Z: TimeZone>(&self, at: &DateTime<Z>) -> bool {
        self.time_intervals.iter().any(|period| period.contains(at))
    }
}

/// One period: every field that is set must contain the instant.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimePeriod {
    /// Ranges of the time of day.
    #[serde(default)]
    pub times: Vec<TimeRange>,
    /// Ranges of weekdays.
    #[serde(default, deserialize_with = "weekday_ranges")]
    pub weekdays: Vec<InclusiveRange>,
    /// Ranges of days of the month, negative counting back from its end.
    #[serde(default, deserialize_with = "day_ranges")]
    pub days_of_month: Vec<InclusiveRange>,
    /// Ranges of months, 1 to 12.
    #[serde(default, deserialize_with = "month_ranges")]
    pub months: Vec<InclusiveRange>,
    /// Ranges of years.
    #[serde(default, deserialize_with = "year_ranges")]
    pub years: Vec<InclusiveRange>,
    /// The zone the fields are read in; UTC when unset.
    #[serde(default, deserialize_with = "location")]
    pub location: Option<Tz>,
}

impl TimePeriod {
    /// Whether the instant `at` (in any zone) falls in this period, read in its location.
    pub fn contains<Z: TimeZone>(&self, at: &DateTime<Z>) -> bool {
        let local = at.with_timezone(&self.location.unwrap_or(Tz::UTC));
        let minute = local.hour() * 60 + local.minute();
        let in_times = self.times.is_empty()
            || self
                .times
                .iter()
                .any(|range| range.start_minute <= minute && minute < range.end_minute);
        let weekday = i32::try_from(local.weekday().num_days_from_sunday()).unwrap_or(0);
        let in_weekdays =
            self.weekdays.is_empty() || self.weekdays.iter().any(|range| range.contains(weekday));
        let in_days = self.days_of_month.is_empty() || {
            let length = days_in_month(local.year(), local.month());
            let day = i32::try_from(local.day()).unwrap_or(0);
            self.days_of_month.iter().any(|range| {
                let resolve = |d: i32| if d < 0 { length + d + 1 } else { d };
                let (begin, end) = (resolve(range.begin), resolve(range.end));
                if begin > length {
                    return false;
                }
                (begin.clamp(1, length)..=end.clamp(1, length)).contains(&day)
            })
        };
        let month = i32::try_from(local.month()).unwrap_or(0);
        let in_months =
            self.months.is_empty() || self.months.iter().any(|range| range.contains(month));
        let in_years =
            self.years.is_empty() || self.years.iter().any(|range| range.contains(local.year()));
        in_times && in_weekdays && in_days && in_months && in_years
    }
}

fn days_in_month(year: i32, month: u32) -> i32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(31, |last| i32::try_from(last.day()).unwrap_or(31))
}

/// A range of minutes of the day, `start_minute` included, `end_minute` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Minutes after midnight where the range starts (0–1439).
    pub start_minute: u32,
    /// Minutes after midnight where it ends (1–1440).
    pub end_minute: u32,
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start_time: Option<String>,
            end_time: Option<String>,
        }
        impl Check for Raw {
            fn check(&self) -> Result<(), String> {
                self.range().map(|_| ())
            }
        }
        impl Raw {
            fn range(&self) -> Result<TimeRange, String> {
                let (Some(start), Some(end)) = (&self.start_time, &self.end_time) else {
                    return Err("a time range needs both start_time and end_time".to_owned());
                };
                let (start_minute, end_minute) = (minute_of_day(start)?, minute_of_day(end)?);
                if start_minute >= end_minute {
                    return Err(format!(
                        "start_time {start} is not before end_time {end}; a range cannot \
                         cross midnight, write two ranges (up to 24:00 and from 00:00)"
                    ));
                }
                Ok(TimeRange {
                    start_minute,
                    end_minute,
                })
            }
        }
        let raw: Raw = yaml::checked(deserializer)?;
        raw.range().map_err(serde::de::Error::custom)
    }
}

/// `HH:MM`, `00:00` to `24:00`.
fn minute_of_day(text: &str) -> Result<u32, String> {
    let bad = || format!("time {text:?} is not HH:MM between 00:00 and 24:00");
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(bad());
    }
    let hours: u32 = hours.parse().map_err(|_| bad())?;
    let minutes: u32 = minutes.parse().map_err(|_| bad())?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes != 0) {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

/// An inclusive range of integers (weekdays 0 = Sunday to 6, days of the month, months 1–12,
/// years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InclusiveRange {
    /// The first value in the range.
    pub begin: i32,
    /// The last value in the range.
    pub end: i32,
}

impl InclusiveRange {
    /// Whether `value` is in the range.
    pub fn contains(&self, value: i32) -> bool {
        self.begin <= value && value <= self.end
    }
}

impl fmt::Display for InclusiveRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.begin, self.end)
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Reads `a` or `a:b` with `one` reading each end.
fn range_of(
    text: &str,
    one: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let text = text.trim();
    let (begin, end) = match text.split_once(':') {
        Some((begin, end)) => (one(begin.trim())?, one(end.trim())?),
        None => {
            let value = one(text)?;
            (value, value)
        }
    };
    Ok(InclusiveRange { begin, end })
}

fn ranges<'de, D: Deserializer<'de>>(
    deserializer: D,
    parse: fn(&str) -> Result<InclusiveRange, String>,
) -> Result<Vec<InclusiveRange>, D::Error> {
    // Each element is read as a string (YAML's `1` or `2024` too) at its own position, with
    // the field's parser carried by a seed.
    struct Element(InclusiveRange);
    struct Seq(fn(&str) -> Result<InclusiveRange, String>);
    impl<'de> serde::de::Visitor<'de> for Seq {
        type Value = Vec<InclusiveRange>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of ranges")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Element(range)) = seq.next_element_seed(ElementSeed(self.0))? {
                out.push(range);
            }
            Ok(out)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    struct ElementSeed(fn(&str) -> Result<InclusiveRange, String>);
    impl<'de> serde::de::DeserializeSeed<'de> for ElementSeed {
        type Value = Element;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
            yaml::from_string(d, "a value or a range such as a:b", self.0).map(Element)
        }
    }
    deserializer.deserialize_seq(Seq(parse))
}

fn ordered(range: InclusiveRange, what: &str, text: &str) -> Result<InclusiveRange, String> {
    if range.begin > range.end {
        return Err(format!("{what} range {text:?} ends before it starts"));
    }
    Ok(range)
}

fn weekday_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |text| {
        let range = range_of(text, |name| {
            WEEKDAYS
                .iter()
                .position(|day| day.eq_ignore_ascii_case(name))
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| format!("{name:?} is not a weekday (monday … sunday)"))
        })?;
        if range.begin > range.end {
            return Err(format!(
                "weekday range {text:?} ends before it starts: weeks run sunday to saturday, \
                 so split it in two"
            ));
        }
        Ok(range)
    })
}

fn day_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |text| {
        let range = range_of(text, |day| match day.parse::<i32>() {
            Ok(day) if day != 0 && (-31..=31).contains(&day) => Ok(day),
            _ => Err(format!(
                "{day:?} is not a day of the month (1 to 31, or -1 to -31 from the end)"
            )),
        })?;
        if range.begin < 0 && range.end > 0 {
            return Err(format!(
                "day of month range {text:?} starts counting from the month's end, so it must \
                 end so too (a negative end day)"
            ));
        }
        // Checked in the shortest month, 28 days: a range empty there may be empty anywhere.
        let resolve = |d: i32| if d < 0 { 28 + d } else { d };
        if resolve(range.begin) > resolve(range.end) {
            return Err(format!("day of month range {text:?} ends before it starts"));
        }
        Ok(range)
    })
}

fn month_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |text| {
        let range = range_of(text, |month| {
            if let Ok(number) = month.parse::<i32>() {
                return if (1..=12).contains(&number) {
                    Ok(number)
                } else {
                    Err(format!("{month:?} is not a month (1 to 12)"))
                };
            }
            MONTHS
                .iter()
                .position(|name| name.eq_ignore_ascii_case(month))
                .and_then(|i| i32::try_from(i + 1).ok())
                .ok_or_else(|| format!("{month:?} is not a month (january … december or 1 to 12)"))
        })?;
        ordered(range, "month", text)
    })
}

fn year_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |text| {
        let range = range_of(text, |year| match year.parse::<i32>() {
            Ok(year) if year > 0 => Ok(year),
            _ => Err(format!("{year:?} is not a year")),
        })?;
        ordered(range, "year", text)
    })
}

fn location<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
    yaml::from_string(d, "a time zone name such as Europe/Berlin", |name| {
        if name == "Local" || name == "UTC" || name.is_empty() {
            return Ok(Some(Tz::UTC));
        }
        Tz::from_str(name).map(Some).map_err(|_| {
            format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::path::Path;

    fn period(text: &str) -> Result<TimePeriod, String> {
        yaml::from_str(Path::new("t.yml"), text).map_err(|e| e.to_string())
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn weekday_ranges_and_times() {
        let p = period(
            "weekdays: ['monday:friday']\ntimes: [{start_time: '09:00', end_time: '17:00'}]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.contains(&at("2026-11-20T09:00:00Z"))); // Friday
        assert!(!p.contains(&at("2026-11-20T17:00:00Z")));
        assert!(!p.contains(&at("2026-11-21T10:00:00Z"))); // Saturday
        let whole = period("weekdays: ['Sunday:saturday']\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(whole.contains(&at("2026-11-22T00:00:00Z")));
    }

    #[test]
    fn errors_point_at_the_value() {
        let e = period("weekdays: ['saturday:sunday']\n")
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("t.yml:1:12: weekdays[0]: weekday range"),
            "{e}"
        );
        let e = period("times:\n  - start_time: '22:00'\n    end_time: '06:00'\n")
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("t.yml:2:5: times[0]: start_time 22:00 is not before"),
            "{e}"
        );
        let e = period("days_of_month: ['0']\n").err().unwrap_or_default();
        assert!(e.contains("is not a day of the month"), "{e}");
        let e = period("location: Mars/Base\n").err().unwrap_or_default();
        assert!(
            e.starts_with("t.yml:1:11: location: unknown time zone"),
            "{e}"
        );
        let e = period("times: [{start_time: '9:00', end_time: '10:00'}]\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("is not HH:MM"), "{e}");
    }

    #[test]
    fn negative_days_of_month() {
        let last_week = period("days_of_month: ['-7:-1']\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(last_week.contains(&at("2026-02-28T12:00:00Z")));
        assert!(last_week.contains(&at("2026-02-22T12:00:00Z")));
        assert!(!last_week.contains(&at("2026-02-21T12:00:00Z")));
        assert!(last_week.contains(&at("2026-01-25T12:00:00Z")));
        let mixed = period("days_of_month: ['15:-1']\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(mixed.contains(&at("2026-04-30T00:00:00Z")));
        let thirty_first = period("days_of_month: ['31']\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(!thirty_first.contains(&at("2026-04-30T00:00:00Z")));
        assert!(period("days_of_month: ['-1:5']\n").is_err());
        assert!(period("days_of_month: ['20:-10']\n").is_err());
        assert!(period("days_of_month: ['10:-10']\n").is_ok());
    }

    #[test]
    fn location_moves_the_day_and_hour() {
        let p = period(
            "location: Europe/Berlin\nweekdays: [saturday]\n\
             times: [{start_time: '00:00', end_time: '01:00'}]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // 23:30 UTC on Friday is 00:30 on Saturday in Berlin (CET, UTC+1).
        assert!(p.contains(&at("2026-11-20T23:30:00Z")));
        assert!(!p.contains(&at("2026-11-21T23:30:00Z")));
        // Summer time: UTC+2.
        assert!(p.contains(&at("2026-07-24T22:30:00Z")));
    }

    #[test]
    fn months_and_years() {
        let p = period("months: ['december:february', 'june']\n");
        assert!(p.is_err());
        let p = period("months: ['november', '1:2']\nyears: ['2026:2027']\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.contains(&at("2026-11-22T00:00:00Z")));
        assert!(p.contains(&at("2027-02-01T00:00:00Z")));
        assert!(!p.contains(&at("2028-01-01T00:00:00Z")));
        assert!(!p.contains(&at("2026-10-01T00:00:00Z")));
    }
}
