//! Loki's push validation: label and line limits, the accepted time window, and the
//! partial-success result.
//!
//! Follows the limits of Loki's configuration reference
//! (<https://grafana.com/docs/loki/latest/configure/#limits_config>) with Loki 3.x defaults
//! (see [`PushLimits::default`]) and its documented behaviour that each stream and each entry
//! is checked on its own: the good part of a push is stored and the response is still 400,
//! naming what was rejected.
//!
//! Edge cases decided:
//!
//! * A stream is rejected whole (all its entries) for a label problem: no labels, too many,
//!   a name that is not `[a-zA-Z_][a-zA-Z0-9_]*`, a name or value too long (in bytes), a
//!   repeated name, an unparsable protobuf label string. Otherwise each entry is checked:
//!   older than `now - reject_old_samples_max_age`, newer than `now + creation_grace_period`,
//!   line over `max_line_size` (or cut to it on a character boundary with
//!   `max_line_size_truncate`), too many or too large structured metadata.
//! * A limit of 0 means "no limit", as in Loki.
//! * Streams with the same label set are merged, whatever the key order they were written
//!   in. Within the push, an exact duplicate (same stream, timestamp and line; metadata is
//!   not compared) is kept once, the first one pushed. Accepted entries come out sorted by
//!   timestamp, then line; out-of-order input is fine.
//! * Empty lines are accepted. Loki ≥ 3.0's automatic `service_name` label is *not* added.
//! * The result keeps at most [`MAX_REJECTION_DETAILS`] rejections in detail (the response
//!   stays small whatever is pushed) and counts all of them.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use sightline_core::config::LogLimitsConfig;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;

use super::label_text::format_label_text;
use super::{Entry, LabelTextError, MalformedLabels, PushRequest, PushStream, abbreviate};
use crate::error::Error;

/// How many rejections a [`ValidatedPush`] keeps in detail; the rest are only counted.
pub const MAX_REJECTION_DETAILS: usize = 100;

/// Validation limits, named after Loki's `limits_config` keys, with Loki's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLimits {
    /// `max_line_size`: most bytes in a line (default 256 KiB; 0 = no limit).
    pub max_line_size: usize,
    /// `max_line_size_truncate`: cut longer lines to `max_line_size` instead of rejecting
    /// them (default off).
    pub max_line_size_truncate: bool,
    /// `max_label_names_per_series`: most labels per stream (default 15).
    pub max_label_names_per_series: usize,
    /// `max_label_name_length`: most bytes in a label name (default 1024).
    pub max_label_name_length: usize,
    /// `max_label_value_length`: most bytes in a label value (default 2048).
    pub max_label_value_length: usize,
    /// `max_structured_metadata_entries_count`: most metadata pairs per entry (default 128).
    pub max_structured_metadata_entries_count: usize,
    /// `max_structured_metadata_size`: most bytes of metadata names and values per entry
    /// (default 64 KiB).
    pub max_structured_metadata_size: usize,
    /// `reject_old_samples`: reject entries older than `reject_old_samples_max_age` (default
    /// on).
    pub reject_old_samples: bool,
    /// `reject_old_samples_max_age` (default 168h).
    pub reject_old_samples_max_age: Duration,
    /// `creation_grace_period`: how far in the future an entry may be (default 10m).
    pub creation_grace_period: Duration,
}

impl PushLimits {
    /// The limits the `limits.logs` section sets.
    pub fn from_config(config: &LogLimitsConfig) -> PushLimits {
        PushLimits {
            max_line_size: usize::try_from(config.max_line_size.bytes()).unwrap_or(usize::MAX),
            max_line_size_truncate: config.max_line_size_truncate,
            max_label_names_per_series: config.max_label_names_per_series,
            max_label_name_length: config.max_label_name_length,
            max_label_value_length: config.max_label_value_length,
            max_structured_metadata_entries_count: config.max_structured_metadata_entries_count,
            max_structured_metadata_size: usize::try_from(
                config.max_structured_metadata_size.bytes(),
            )
            .unwrap_or(usize::MAX),
            reject_old_samples: config.reject_old_samples,
            reject_old_samples_max_age: config.reject_old_samples_max_age,
            creation_grace_period: config.creation_grace_period,
        }
    }
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            max_line_size: 256 << 10,
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_structured_metadata_entries_count: 128,
            max_structured_metadata_size: 64 << 10,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(168 * 3600),
            creation_grace_period: Duration::from_secs(600),
        }
    }
}

/// Why a stream or an entry was rejected. Stream-level reasons reject all entries of the
/// stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The stream has no labels (stream-level).
    NoLabels,
    /// A label name appears twice (stream-level).
    DuplicateLabelName {
        /// The repeated name.
        name: String,
    },
    /// The protobuf label string does not parse (stream-level).
    UnparsableLabels {
        /// Why.
        error: LabelTextError,
    },
    /// More labels than `max_label_names_per_series` (stream-level).
    TooManyLabels {
        /// Labels in the stream.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*` (stream-level).
    InvalidLabelName {
        /// The name (cut to a readable length).
        name: String,
    },
    /// A label name is longer than `max_label_name_length` (stream-level).
    LabelNameTooLong {
        /// The name (cut to a readable length).
        name: String,
        /// Its length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value is longer than `max_label_value_length` (stream-level).
    LabelValueTooLong {
        /// The label's name (cut to a readable length).
        name: String,
        /// The value's length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The entry is older than `now - reject_old_samples_max_age`.
    TooOld {
        /// The entry's timestamp.
        timestamp_ns: i64,
        /// The oldest timestamp accepted.
        oldest_ns: i64,
        /// `reject_old_samples_max_age`.
        max_age: Duration,
    },
    /// The entry is newer than `now + creation_grace_period`.
    TooNew {
        /// The entry's timestamp.
        timestamp_ns: i64,
        /// The newest timestamp accepted.
        newest_ns: i64,
        /// `creation_grace_period`.
        grace: Duration,
    },
    /// The line is longer than `max_line_size` and truncation is off.
    LineTooLong {
        /// The entry's timestamp.
        timestamp_ns: i64,
        /// The line's length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// More structured-metadata pairs than `max_structured_metadata_entries_count`.
    TooManyMetadataEntries {
        /// The entry's timestamp.
        timestamp_ns: i64,
        /// Pairs in the entry.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Structured metadata larger than `max_structured_metadata_size`.
    MetadataTooLarge {
        /// The entry's timestamp.
        timestamp_ns: i64,
        /// Bytes of names and values.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl RejectReason {
    /// True for reasons that reject a whole stream rather than one entry.
    pub fn is_stream_level(&self) -> bool {
        matches!(
            self,
            RejectReason::NoLabels
                | RejectReason::DuplicateLabelName { .. }
                | RejectReason::UnparsableLabels { .. }
                | RejectReason::TooManyLabels { .. }
                | RejectReason::InvalidLabelName { .. }
                | RejectReason::LabelNameTooLong { .. }
                | RejectReason::LabelValueTooLong { .. }
        )
    }
}

/// The predicate of "stream '{…}' …".
impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NoLabels => {
                f.write_str("has no labels: every stream needs at least one label pair")
            }
            RejectReason::DuplicateLabelName { name } => {
                write!(f, "has the label name '{name}' more than once")
            }
            RejectReason::UnparsableLabels { error } => {
                write!(f, "has a label string that cannot be parsed: {error}")
            }
            RejectReason::TooManyLabels { count, limit } => write!(
                f,
                "has {count} label names, more than the limit of {limit} \
                 (max_label_names_per_series)"
            ),
            RejectReason::InvalidLabelName { name } => write!(
                f,
                "has an invalid label name '{name}': names must match [a-zA-Z_][a-zA-Z0-9_]*"
            ),
            RejectReason::LabelNameTooLong {
                name,
                length,
                limit,
            } => write!(
                f,
                "has a label name of {length} bytes, longer than the limit of {limit} \
                 (max_label_name_length): '{name}'"
            ),
            RejectReason::LabelValueTooLong {
                name,
                length,
                limit,
            } => write!(
                f,
                "has a value of {length} bytes for label '{name}', longer than the limit of \
                 {limit} (max_label_value_length)"
            ),
            RejectReason::TooOld {
                timestamp_ns,
                oldest_ns,
                max_age,
            } => write!(
                f,
                "has an entry too old: {} is before {}, the oldest accepted \
                 (reject_old_samples_max_age {max_age})",
                Rfc3339(*timestamp_ns),
                Rfc3339(*oldest_ns)
            ),
            RejectReason::TooNew {
                timestamp_ns,
                newest_ns,
                grace,
            } => write!(
                f,
                "has an entry too far in the future: {} is after {}, the newest accepted \
                 (creation_grace_period {grace})",
                Rfc3339(*timestamp_ns),
                Rfc3339(*newest_ns)
            ),
            RejectReason::LineTooLong {
                timestamp_ns,
                length,
                limit,
            } => write!(
                f,
                "has an entry at {} with a line of {length} bytes, longer than the limit of \
                 {limit} (max_line_size; max_line_size_truncate keeps the first {limit} bytes)",
                Rfc3339(*timestamp_ns)
            ),
            RejectReason::TooManyMetadataEntries {
                timestamp_ns,
                count,
                limit,
            } => write!(
                f,
                "has an entry at {} with {count} structured metadata pairs, more than the \
                 limit of {limit} (max_structured_metadata_entries_count)",
                Rfc3339(*timestamp_ns)
            ),
            RejectReason::MetadataTooLarge {
                timestamp_ns,
                size,
                limit,
            } => write!(
                f,
                "has an entry at {} with {size} bytes of structured metadata, more than the \
                 limit of {limit} (max_structured_metadata_size)",
                Rfc3339(*timestamp_ns)
            ),
        }
    }
}

/// One rejected stream or entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stream's labels as text (`{app="x"}`), cut to a readable length.
    pub stream: String,
    /// Why.
    pub reason: RejectReason,
    /// How many entries this rejection dropped (all of the stream's for a stream-level
    /// reason, else 1).
    pub entries: usize,
}

/// `stream '{app="x"}' has an entry too old: …`.
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream '{}' {}", self.stream, self.reason)?;
        if self.reason.is_stream_level() {
            match self.entries {
                1 => f.write_str(" (1 entry rejected)")?,
                n => write!(f, " ({n} entries rejected)")?,
            }
        }
        Ok(())
    }
}

/// The outcome of a push as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Nothing was rejected (this includes a push with no streams). Loki answers 204.
    Accepted,
    /// Some entries are accepted, some rejected: store the accepted ones and answer 400.
    PartiallyAccepted,
    /// Everything pushed was rejected: store nothing and answer 400.
    Rejected,
}

/// A validated push: what to store, and what was rejected and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidatedPush {
    /// Accepted streams, one per distinct label set (sorted by labels), entries sorted by
    /// timestamp then line, exact duplicates removed. Never holds a stream without entries.
    pub streams: Vec<PushStream>,
    /// The first [`MAX_REJECTION_DETAILS`] rejections.
    pub rejections: Vec<Rejection>,
    /// All rejections, including those not kept in detail.
    pub rejection_count: usize,
    /// Entries in the push as received.
    pub received_entries: usize,
    /// Entries accepted (after removing duplicates).
    pub accepted_entries: usize,
    /// Bytes accepted ([`Entry::size`]: lines plus structured metadata).
    pub accepted_bytes: usize,
    /// Entries rejected.
    pub rejected_entries: usize,
    /// Bytes rejected ([`Entry::size`]).
    pub rejected_bytes: usize,
    /// Exact duplicates dropped.
    pub duplicate_entries: usize,
    /// Lines cut to `max_line_size` (with `max_line_size_truncate`).
    pub truncated_lines: usize,
}

impl ValidatedPush {
    /// Accepted, partially accepted or rejected.
    pub fn outcome(&self) -> PushOutcome {
        if self.rejection_count == 0 {
            PushOutcome::Accepted
        } else if self.accepted_entries > 0 {
            PushOutcome::PartiallyAccepted
        } else {
            PushOutcome::Rejected
        }
    }

    /// The response body for a push with rejections, Loki-style: one line per rejection
    /// (at most [`MAX_REJECTION_DETAILS`]), then a summary line. `None` if nothing was
    /// rejected.
    pub fn message(&self) -> Option<String> {
        use fmt::Write as _;
        if self.rejection_count == 0 {
            return None;
        }
        let mut message = String::new();
        for rejection in &self.rejections {
            let _ = writeln!(message, "{rejection}");
        }
        let hidden = self.rejection_count - self.rejections.len();
        if hidden > 0 {
            let _ = writeln!(message, "... and {hidden} more rejections");
        }
        let _ = write!(
            message,
            "{} {} rejected, {} accepted",
            self.rejected_entries,
            if self.rejected_entries == 1 {
                "entry"
            } else {
                "entries"
            },
            self.accepted_entries
        );
        Some(message)
    }

    /// The error to answer with when something was rejected (kind `BadRequest`), or `None`.
    /// The accepted streams are still to be stored.
    pub fn error(&self) -> Option<Error> {
        self.message().map(|message| Error::Rejected {
            accepted_entries: self.accepted_entries,
            rejected_entries: self.rejected_entries,
            message,
        })
    }

    fn reject(&mut self, stream: impl FnOnce() -> String, reason: RejectReason, entries: &[Entry]) {
        self.rejection_count += 1;
        self.rejected_entries += entries.len();
        self.rejected_bytes += entries.iter().map(Entry::size).sum::<usize>();
        if self.rejections.len() < MAX_REJECTION_DETAILS {
            self.rejections.push(Rejection {
                stream: stream(),
                reason,
                entries: entries.len(),
            });
        }
    }
}

/// Validates a decoded push against `limits`, with `now` as the current time.
pub fn validate(request: PushRequest, limits: &PushLimits, now: SystemTime) -> ValidatedPush {
    let now_ns = unix_ns(now);
    let oldest_ns = if limits.reject_old_samples {
        now_ns.saturating_sub(duration_ns(limits.reject_old_samples_max_age))
    } else {
        i64::MIN
    };
    let newest_ns = now_ns.saturating_add(duration_ns(limits.creation_grace_period));
    let mut push = ValidatedPush {
        streams: Vec::with_capacity(request.streams.len()),
        ..ValidatedPush::default()
    };
    for stream in request.streams {
        push.received_entries += stream.entries.len();
        if let Some(reason) = check_labels(&stream, limits) {
            let text = match &stream.malformed_labels {
                Some(MalformedLabels::Unparsable { text, .. }) => text.clone(),
                _ => stream_text(&stream.labels),
            };
            push.reject(|| text, reason, &stream.entries);
            continue;
        }
        let PushStream {
            labels,
            mut entries,
            malformed_labels,
        } = stream;
        entries.retain_mut(|entry| {
            let reason = if entry.timestamp_ns < oldest_ns {
                Some(RejectReason::TooOld {
                    timestamp_ns: entry.timestamp_ns,
                    oldest_ns,
                    max_age: limits.reject_old_samples_max_age,
                })
            } else if entry.timestamp_ns > newest_ns {
                Some(RejectReason::TooNew {
                    timestamp_ns: entry.timestamp_ns,
                    newest_ns,
                    grace: limits.creation_grace_period,
                })
            } else {
                check_entry(entry, limits, &mut push.truncated_lines)
            };
            match reason {
                None => true,
                Some(reason) => {
                    push.reject(|| stream_text(&labels), reason, std::slice::from_ref(entry));
                    false
                }
            }
        });
        if !entries.is_empty() {
            push.streams.push(PushStream {
                labels,
                malformed_labels,
                entries,
            });
        }
    }
    push.duplicate_entries = merge_and_dedup(&mut push.streams);
    for stream in &push.streams {
        push.accepted_entries += stream.entries.len();
        push.accepted_bytes += stream.entries.iter().map(Entry::size).sum::<usize>();
    }
    push
}

fn check_labels(stream: &PushStream, limits: &PushLimits) -> Option<RejectReason> {
    match &stream.malformed_labels {
        Some(MalformedLabels::Unparsable { error, .. }) => {
            return Some(RejectReason::UnparsableLabels {
                error: error.clone(),
            });
        }
        Some(MalformedLabels::DuplicateName(name)) => {
            return Some(RejectReason::DuplicateLabelName { name: name.clone() });
        }
        None => {}
    }
    let labels = &stream.labels;
    if labels.is_empty() {
        return Some(RejectReason::NoLabels);
    }
    if exceeds(labels.len(), limits.max_label_names_per_series) {
        return Some(RejectReason::TooManyLabels {
            count: labels.len(),
            limit: limits.max_label_names_per_series,
        });
    }
    for label in labels {
        if exceeds(label.name.len(), limits.max_label_name_length) {
            return Some(RejectReason::LabelNameTooLong {
                name: abbreviate(&label.name, 100).into_owned(),
                length: label.name.len(),
                limit: limits.max_label_name_length,
            });
        }
        if !is_valid_label_name(&label.name) {
            return Some(RejectReason::InvalidLabelName {
                name: abbreviate(&label.name, 100).into_owned(),
            });
        }
        if exceeds(label.value.len(), limits.max_label_value_length) {
            return Some(RejectReason::LabelValueTooLong {
                name: abbreviate(&label.name, 100).into_owned(),
                length: label.value.len(),
                limit: limits.max_label_value_length,
            });
        }
    }
    None
}

/// Line and metadata checks; truncates the line when configured to.
fn check_entry(
    entry: &mut Entry,
    limits: &PushLimits,
    truncated: &mut usize,
) -> Option<RejectReason> {
    if exceeds(entry.line.len(), limits.max_line_size) {
        if limits.max_line_size_truncate {
            let mut end = limits.max_line_size;
            while !entry.line.is_char_boundary(end) {
                end -= 1;
            }
            entry.line.truncate(end);
            *truncated += 1;
        } else {
            return Some(RejectReason::LineTooLong {
                timestamp_ns: entry.timestamp_ns,
                length: entry.line.len(),
                limit: limits.max_line_size,
            });
        }
    }
    if exceeds(
        entry.metadata.len(),
        limits.max_structured_metadata_entries_count,
    ) {
        return Some(RejectReason::TooManyMetadataEntries {
            timestamp_ns: entry.timestamp_ns,
            count: entry.metadata.len(),
            limit: limits.max_structured_metadata_entries_count,
        });
    }
    if limits.max_structured_metadata_size > 0 && !entry.metadata.is_empty() {
        let size = entry.metadata_size();
        if size > limits.max_structured_metadata_size {
            return Some(RejectReason::MetadataTooLarge {
                timestamp_ns: entry.timestamp_ns,
                size,
                limit: limits.max_structured_metadata_size,
            });
        }
    }
    None
}

/// `value > limit`, where a limit of 0 means no limit.
fn exceeds(value: usize, limit: usize) -> bool {
    limit > 0 && value > limit
}

/// The classic Prometheus label name rule, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn stream_text(labels: &Labels) -> String {
    let text = format_label_text(labels);
    match abbreviate(&text, 300) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

/// Merges streams with equal labels and drops exact duplicate entries; returns how many
/// were dropped.
fn merge_and_dedup(streams: &mut Vec<PushStream>) -> usize {
    // A stable sort keeps streams of one label set in push order, so the first pushed copy
    // of a duplicate entry is the one kept.
    if !streams.is_sorted_by(|a, b| a.labels < b.labels) {
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut merged: Vec<PushStream> = Vec::with_capacity(streams.len());
        for stream in streams.drain(..) {
            match merged.last_mut() {
                Some(last) if last.labels == stream.labels => {
                    last.entries.extend(stream.entries);
                }
                _ => merged.push(stream),
            }
        }
        *streams = merged;
    }
    let mut dropped = 0;
    for stream in streams.iter_mut() {
        dropped += dedup_entries(&mut stream.entries);
    }
    dropped
}

/// Sorts entries by (timestamp, line) unless already strictly in that order, and removes
/// exact duplicates, keeping the first.
fn dedup_entries(entries: &mut Vec<Entry>) -> usize {
    let order = |a: &Entry, b: &Entry| {
        a.timestamp_ns
            .cmp(&b.timestamp_ns)
            .then_with(|| a.line.cmp(&b.line))
    };
    if entries.is_sorted_by(|a, b| order(a, b).is_lt()) {
        return 0;
    }
    entries.sort_by(order);
    let before = entries.len();
    entries.dedup_by(|later, earlier| {
        later.timestamp_ns == earlier.timestamp_ns && later.line == earlier.line
    });
    before - entries.len()
}

fn unix_ns(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|ns| -ns)
            .unwrap_or(i64::MIN),
    }
}

fn duration_ns(duration: Duration) -> i64 {
    i64::try_from(duration.as_std().as_nanos()).unwrap_or(i64::MAX)
}

/// A nanosecond Unix timestamp written as RFC 3339 in UTC, with only the fraction digits
/// needed: `2023-11-14T22:13:20.5Z`.
pub struct Rfc3339(pub i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )?;
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn at(ns: i64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64)
    }

    fn entry(timestamp_ns: i64, line: &str) -> Entry {
        Entry {
            timestamp_ns,
            line: line.into(),
            metadata: vec![],
        }
    }

    fn stream(labels: &[(&str, &str)], entries: Vec<Entry>) -> PushStream {
        PushStream {
            labels: Labels::from_pairs(labels.iter().copied()),
            malformed_labels: None,
            entries,
        }
    }

    fn run(streams: Vec<PushStream>, limits: &PushLimits) -> ValidatedPush {
        validate(PushRequest { streams }, limits, at(NOW))
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            Rfc3339(1_700_000_000_000_000_000).to_string(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(Rfc3339(1_500_000_000).to_string(), "1970-01-01T00:00:01.5Z");
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            Rfc3339(951_782_400_000_000_000).to_string(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn label_names() {
        for good in ["a", "_", "A_1", "__name__"] {
            assert!(is_valid_label_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn window_edges() {
        let limits = PushLimits::default();
        let week = 168 * 3600 * 1_000_000_000i64;
        let grace = 600 * 1_000_000_000i64;
        let push = run(
            vec![stream(
                &[("job", "w")],
                vec![
                    entry(NOW - week, "oldest ok"),
                    entry(NOW - week - 1, "too old"),
                    entry(NOW + grace, "newest ok"),
                    entry(NOW + grace + 1, "too new"),
                ],
            )],
            &limits,
        );
        assert_eq!(push.accepted_entries, 2);
        assert_eq!(push.rejected_entries, 2);
        assert_eq!(push.outcome(), PushOutcome::PartiallyAccepted);
        let message = push.message().unwrap_or_default();
        assert!(
            message.contains(
                "stream '{job=\"w\"}' has an entry too old: 2027-01-08T07:59:59.999999999Z"
            ),
            "{message}"
        );
        assert!(
            message.contains("reject_old_samples_max_age 1w"),
            "{message}"
        );
        assert!(message.contains("too far in the future"), "{message}");
        assert!(
            message.ends_with("2 entries rejected, 2 accepted"),
            "{message}"
        );
        let old_off = PushLimits {
            reject_old_samples: false,
            ..PushLimits::default()
        };
        let push = run(
            vec![stream(&[("job", "w")], vec![entry(i64::MIN, "ancient")])],
            &old_off,
        );
        assert_eq!(push.outcome(), PushOutcome::Accepted);
    }

    #[test]
    fn line_size_reject_and_truncate() {
        let limits = PushLimits {
            max_line_size: 4,
            ..PushLimits::default()
        };
        let push = run(
            vec![stream(
                &[("job", "l")],
                vec![entry(NOW, "abcd"), entry(NOW + 1, "abcde")],
            )],
            &limits,
        );
        assert_eq!(push.accepted_entries, 1);
        assert!(matches!(
            push.rejections[0].reason,
            RejectReason::LineTooLong {
                length: 5,
                limit: 4,
                ..
            }
        ));
        let truncate = PushLimits {
            max_line_size_truncate: true,
            ..limits
        };
        let push = run(
            vec![stream(
                &[("job", "l")],
                vec![entry(NOW, "abcde"), entry(NOW + 1, "abcé")],
            )],
            &truncate,
        );
        assert_eq!(push.outcome(), PushOutcome::Accepted);
        assert_eq!(push.truncated_lines, 2);
        let lines: Vec<&str> = push.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["abcd", "abc"]);
    }

    #[test]
    fn stream_level_rejections() {
        let limits = PushLimits {
            max_label_names_per_series: 2,
            max_label_name_length: 5,
            max_label_value_length: 3,
            ..PushLimits::default()
        };
        let cases: Vec<(PushStream, &str)> = vec![
            (stream(&[], vec![entry(NOW, "x")]), "has no labels"),
            (
                stream(&[("a", "1"), ("b", "2"), ("c", "3")], vec![entry(NOW, "x")]),
                "has 3 label names, more than the limit of 2",
            ),
            (
                stream(&[("toolong", "1")], vec![entry(NOW, "x")]),
                "label name of 7 bytes",
            ),
            (
                stream(&[("a-b", "1")], vec![entry(NOW, "x"), entry(NOW, "y")]),
                "invalid label name 'a-b': names must match [a-zA-Z_][a-zA-Z0-9_]* (2 entries rejected)",
            ),
            (
                stream(&[("a", "1234")], vec![entry(NOW, "x")]),
                "value of 4 bytes for label 'a'",
            ),
            (
                PushStream {
                    malformed_labels: Some(MalformedLabels::DuplicateName("a".into())),
                    ..stream(&[("a", "1")], vec![entry(NOW, "x")])
                },
                "has the label name 'a' more than once",
            ),
        ];
        for (input, expected) in cases {
            let push = run(vec![input], &limits);
            assert_eq!(push.outcome(), PushOutcome::Rejected);
            let message = push.message().unwrap_or_default();
            assert!(message.contains(expected), "{message}");
            assert!(push.streams.is_empty());
        }
    }

    #[test]
    fn metadata_limits() {
        let limits = PushLimits {
            max_structured_metadata_entries_count: 1,
            max_structured_metadata_size: 6,
            ..PushLimits::default()
        };
        let with = |pairs: &[(&str, &str)]| Entry {
            metadata: pairs
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect(),
            ..entry(NOW, "x")
        };
        let push = run(
            vec![stream(
                &[("job", "m")],
                vec![
                    with(&[("a", "1"), ("b", "2")]),
                    with(&[("abc", "1234")]),
                    with(&[("abc", "123")]),
                ],
            )],
            &limits,
        );
        assert_eq!(push.accepted_entries, 1);
        assert!(matches!(
            push.rejections[0].reason,
            RejectReason::TooManyMetadataEntries { count: 2, .. }
        ));
        assert!(matches!(
            push.rejections[1].reason,
            RejectReason::MetadataTooLarge { size: 7, .. }
        ));
    }

    #[test]
    fn merges_streams_and_drops_exact_duplicates() {
        let push = run(
            vec![
                stream(
                    &[("b", "2"), ("a", "1")],
                    vec![entry(NOW, "x"), entry(NOW - 5, "y")],
                ),
                stream(&[("z", "1")], vec![entry(NOW, "q")]),
                stream(
                    &[("a", "1"), ("b", "2")],
                    vec![entry(NOW, "x"), entry(NOW, "w")],
                ),
            ],
            &PushLimits::default(),
        );
        assert_eq!(push.outcome(), PushOutcome::Accepted);
        assert_eq!(push.streams.len(), 2);
        assert_eq!(push.duplicate_entries, 1);
        assert_eq!(push.accepted_entries, 4);
        assert_eq!(push.received_entries, 5);
        let lines: Vec<&str> = push.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["y", "w", "x"]);
    }

    #[test]
    fn rejection_details_are_capped() {
        let entries = (0..MAX_REJECTION_DETAILS as i64 + 10)
            .map(|i| entry(i, "old"))
            .collect();
        let push = run(
            vec![stream(&[("job", "c")], entries)],
            &PushLimits::default(),
        );
        assert_eq!(push.rejections.len(), MAX_REJECTION_DETAILS);
        assert_eq!(push.rejection_count, MAX_REJECTION_DETAILS + 10);
        let message = push.message().unwrap_or_default();
        assert!(message.contains("... and 10 more rejections"));
        assert_eq!(
            push.error().map(|e| e.kind()),
            Some(crate::error::ErrorKind::BadRequest)
        );
    }
}
