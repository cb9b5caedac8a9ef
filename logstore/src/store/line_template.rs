//! Line columns as templates and numbers, so that zstd at a fast level packs them smaller.
//!
//! Log lines repeat their text and vary in their numbers. A fast zstd level finds the
//! repeated text, but codes random digits as text, with a match or a literal run around
//! each. Before a chunk's line column is packed, each run of ASCII digits leaves its line
//! for a number column — one varint per run, in a column per run length, so that runs of
//! one kind (octets, ports, durations) sit together — and the line keeps a marker that
//! says how many digits the run had (its leading zeros come back from that). A run that
//! spells a field of the entry's own timestamp (its year, second, milliseconds, Unix
//! seconds…), as most log lines do, becomes a reference to that field and costs no number.
//! This is the idea of CLP (Rodrigues et al., OSDI 2021) in its simplest form; on the
//! 2 GiB log benchmark's lines, chunked as the store chunks them, it packs to about a sixth
//! fewer bytes than zstd over the plain lines at the same level, and leaves zstd less to do
//! (docs/BENCHMARKS.md).
//!
//! The template is the lines with their markers, each line ended by [`LINE_END`]. Markers
//! are the bytes 0xF5–0xFF, which UTF-8 text never holds; a line that is not UTF-8 still
//! comes back as it was, its marker bytes escaped.
//!
//! A stored line column of this layout is: a varint (the packed template's length), the
//! packed template, the packed numbers. The numbers are [`MAX_RUN`] varint lengths (one
//! per run length) followed by those columns back to back.

use chrono::{DateTime, Datelike, Timelike};
use prost::encoding::{decode_varint, encode_varint};

use super::codec::{self, Corrupt};
use super::column::{self, Packer};
use crate::error::Error;

/// The longest run one number holds: 18 digits always fit a `u64`; a longer run is split.
const MAX_RUN: usize = 18;
/// Escapes the next byte, a marker byte that is part of the line (never in UTF-8).
const ESCAPE: u8 = 0xF5;
/// Ends a line.
const LINE_END: u8 = 0xF6;
/// A run that spells a field of the entry's timestamp; the next byte is the field's index.
const TIME_FIELD: u8 = 0xF7;
/// A run of 8 to 18 digits; the next byte is its length.
const LONG_RUN: u8 = 0xF8;
/// A run of 1 to 7 digits: `SHORT_RUN + length - 1`.
const SHORT_RUN: u8 = 0xF9;
/// The longest run [`SHORT_RUN`] codes.
const SHORT_RUN_MAX: usize = (0xFF - SHORT_RUN) as usize + 1;

/// What a chunk's line column is corrupt as.
const WHAT: &str = "chunk line template";

/// Splits lines into a template and number columns; its buffers are kept between chunks.
#[derive(Default)]
pub(crate) struct LineSplitter {
    template: Vec<u8>,
    /// Varints of the runs of each length (index: length - 1).
    numbers: [Vec<u8>; MAX_RUN],
    /// The number columns joined behind their lengths, ready to pack.
    joined_numbers: Vec<u8>,
    fields: TimeFields,
}

impl LineSplitter {
    /// Forgets the lines split so far (keeping the buffers).
    pub(crate) fn clear(&mut self) {
        self.template.clear();
        self.numbers.iter_mut().for_each(Vec::clear);
    }

    /// Adds the next line, whose entry's timestamp is `timestamp_ns`.
    pub(crate) fn push(&mut self, timestamp_ns: i64, line: &[u8]) {
        let fields = self.fields.at(timestamp_ns);
        let mut rest = line;
        while let Some(at) = rest
            .iter()
            .position(|byte| byte.is_ascii_digit() || *byte >= ESCAPE)
        {
            self.template.extend_from_slice(&rest[..at]);
            rest = &rest[at..];
            if rest[0] >= ESCAPE {
                self.template.extend([ESCAPE, rest[0]]);
                rest = &rest[1..];
                continue;
            }
            let run = rest
                .iter()
                .take(MAX_RUN)
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            let value = rest[..run]
                .iter()
                .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
            rest = &rest[run..];
            if let Some(field) = fields.iter().position(|&(digits, field_value)| {
                usize::from(digits) == run && field_value == value
            }) {
                self.template.extend([TIME_FIELD, field as u8]);
                continue;
            }
            if run <= SHORT_RUN_MAX {
                self.template.push(SHORT_RUN + (run - 1) as u8);
            } else {
                self.template.extend([LONG_RUN, run as u8]);
            }
            encode_varint(value, &mut self.numbers[run - 1]);
        }
        self.template.extend_from_slice(rest);
        self.template.push(LINE_END);
    }

    /// Packs the lines pushed since [`clear`](Self::clear) into `out` (see the module docs).
    pub(crate) fn pack(&mut self, packer: &mut Packer, out: &mut Vec<u8>) -> Result<(), Error> {
        codec::put_bytes(out, packer.pack(&self.template)?);
        self.joined_numbers.clear();
        for column in &self.numbers {
            encode_varint(column.len() as u64, &mut self.joined_numbers);
        }
        for column in &self.numbers {
            self.joined_numbers.extend_from_slice(column);
        }
        out.extend_from_slice(packer.pack(&self.joined_numbers)?);
        Ok(())
    }
}

/// The lines a [`LineSplitter`] packed into `stored`, back to back; `timestamps` are every
/// entry's of the chunk in order, and the lines must take `lines_len` bytes.
pub(crate) fn unpack(
    mut stored: &[u8],
    timestamps: &[i64],
    lines_len: usize,
) -> Result<Vec<u8>, Corrupt> {
    let template = column::unpack(codec::get_bytes(&mut stored, WHAT)?, None, WHAT)?;
    let numbers = column::unpack(stored, None, WHAT)?;
    // A damaged entry column cannot make this reserve more than a column may hold.
    let reserve = lines_len.min(usize::try_from(column::MAX_UNPACKED_BYTES).unwrap_or(0));
    let mut lines = Vec::with_capacity(reserve);
    join(&template, &numbers, timestamps, &mut lines)?;
    if lines.len() != lines_len {
        return Err(Corrupt { what: WHAT });
    }
    Ok(lines)
}

/// Writes the lines of `template` to `out`, taking their numbers from `numbers`.
fn join(
    mut template: &[u8],
    mut numbers: &[u8],
    timestamps: &[i64],
    out: &mut Vec<u8>,
) -> Result<(), Corrupt> {
    let corrupt = || Corrupt { what: WHAT };
    let mut columns: [&[u8]; MAX_RUN] = [&[]; MAX_RUN];
    let mut lens = [0usize; MAX_RUN];
    for len in &mut lens {
        *len = usize::try_from(codec::get_varint(&mut numbers, WHAT)?).map_err(|_| corrupt())?;
    }
    for (column, len) in columns.iter_mut().zip(lens) {
        if numbers.len() < len {
            return Err(corrupt());
        }
        (*column, numbers) = numbers.split_at(len);
    }
    let mut fields = TimeFields::default();
    // The line being written, by its index in `timestamps`.
    let mut line = 0;
    while let Some(at) = template.iter().position(|byte| *byte >= ESCAPE) {
        out.extend_from_slice(&template[..at]);
        let marker = template[at];
        template = &template[at + 1..];
        let run = match marker {
            LINE_END => {
                line += 1;
                continue;
            }
            ESCAPE | TIME_FIELD | LONG_RUN => {
                let (&operand, rest) = template.split_first().ok_or_else(corrupt)?;
                template = rest;
                match marker {
                    ESCAPE => {
                        out.push(operand);
                        continue;
                    }
                    TIME_FIELD => {
                        let timestamp_ns = *timestamps.get(line).ok_or_else(corrupt)?;
                        let &(digits, value) = fields
                            .at(timestamp_ns)
                            .get(usize::from(operand))
                            .filter(|(digits, _)| *digits > 0)
                            .ok_or_else(corrupt)?;
                        put_digits(out, value, usize::from(digits)).ok_or_else(corrupt)?;
                        continue;
                    }
                    _ => usize::from(operand),
                }
            }
            short => usize::from(short - SHORT_RUN) + 1,
        };
        let column = columns.get_mut(run.wrapping_sub(1)).ok_or_else(corrupt)?;
        let value = decode_varint(column).map_err(|_| corrupt())?;
        put_digits(out, value, run).ok_or_else(corrupt)?;
    }
    if !template.is_empty()
        || line != timestamps.len()
        || columns.iter().any(|column| !column.is_empty())
    {
        return Err(corrupt());
    }
    Ok(())
}

/// Writes `value` in exactly `digits` decimal digits (leading zeros included); `None` if it
/// does not fit.
fn put_digits(out: &mut Vec<u8>, mut value: u64, digits: usize) -> Option<()> {
    let mut text = [b'0'; 20];
    let start = text.len().checked_sub(digits)?;
    for digit in text[start..].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    (value == 0).then(|| out.extend_from_slice(&text[start..]))
}

/// How many fields of a timestamp a line may spell.
const FIELD_COUNT: usize = 15;

/// The fields of one timestamp a log line may spell, each as (digits, value): the year,
/// month, day, hour, minute and second as two digits (the year four), milli-, micro- and
/// nanoseconds as 3, 6 and 9, `MMDD` (klog), Unix seconds and milliseconds, the 12-hour
/// hour, and month and day without a leading zero. Digits 0: the field does not apply.
#[derive(Default)]
struct TimeFields {
    /// The second (since the epoch) the calendar fields are of.
    second: Option<i64>,
    fields: [(u8, u64); FIELD_COUNT],
}

impl TimeFields {
    /// The fields of `timestamp_ns` (UTC); the calendar ones are worked out once a second.
    fn at(&mut self, timestamp_ns: i64) -> &[(u8, u64); FIELD_COUNT] {
        let second = timestamp_ns.div_euclid(1_000_000_000);
        let nanos = timestamp_ns.rem_euclid(1_000_000_000) as u64;
        if self.second != Some(second) {
            self.second = Some(second);
            self.fields = calendar_fields(second);
        }
        self.fields[6] = (3, nanos / 1_000_000);
        self.fields[7] = (6, nanos / 1_000);
        self.fields[8] = (9, nanos);
        self.fields[11] = u64::try_from(second)
            .ok()
            .and_then(|second| second.checked_mul(1000))
            .map_or((0, 0), |millis| natural(millis + nanos / 1_000_000));
        &self.fields
    }
}

/// The fields of [`TimeFields`] that change once a second (the sub-second ones are zero).
fn calendar_fields(second: i64) -> [(u8, u64); FIELD_COUNT] {
    let mut fields = [(0, 0); FIELD_COUNT];
    let Some(time) = DateTime::from_timestamp(second, 0) else {
        return fields;
    };
    let (month, day, hour) = (time.month(), time.day(), time.hour());
    if let Ok(year @ 0..=9999) = u64::try_from(time.year()) {
        fields[0] = (4, year);
    }
    fields[1] = (2, month.into());
    fields[2] = (2, day.into());
    fields[3] = (2, hour.into());
    fields[4] = (2, time.minute().into());
    fields[5] = (2, time.second().into());
    fields[9] = (4, (month * 100 + day).into());
    if let Ok(second) = u64::try_from(second) {
        fields[10] = natural(second);
    }
    fields[12] = (2, (if hour % 12 == 0 { 12 } else { hour % 12 }).into());
    fields[13] = natural(month.into());
    fields[14] = natural(day.into());
    fields
}

/// `value` written without leading zeros: (its digits, itself).
fn natural(value: u64) -> (u8, u64) {
    (value.checked_ilog10().map_or(1, |log| log as u8 + 1), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2025-12-06T09:33:22.281001051Z
    const T: i64 = 1_765_013_602_281_001_051;

    fn round_trip(lines: &[(i64, Vec<u8>)]) -> (Vec<u8>, usize) {
        let mut splitter = LineSplitter::default();
        let mut packer = Packer::new(1);
        // A splitter's buffers from an earlier chunk do not leak into the next.
        splitter.push(0, b"an earlier chunk 123");
        splitter.clear();
        for (timestamp_ns, line) in lines {
            splitter.push(*timestamp_ns, line);
        }
        let template_len = splitter.template.len();
        let mut stored = Vec::new();
        splitter.pack(&mut packer, &mut stored).expect("pack");
        let lines_len = lines.iter().map(|(_, line)| line.len()).sum();
        let timestamps: Vec<i64> = lines.iter().map(|(ts, _)| *ts).collect();
        (
            unpack(&stored, &timestamps, lines_len).expect("unpack"),
            template_len,
        )
    }

    fn joined(lines: &[(i64, Vec<u8>)]) -> Vec<u8> {
        lines.iter().flat_map(|(_, line)| line.clone()).collect()
    }

    #[test]
    fn lines_come_back_and_their_timestamps_cost_no_numbers() {
        let lines: Vec<(i64, Vec<u8>)> = [
            "I1206 09:33:22.281001       1 acme.go:233] re-queuing",
            "ts=2025-12-06T09:33:22.281Z caller=head.go:1133 duration=38.81ms",
            "[Nest] 7  - 12/06/2025, 09:33:22 AM     LOG took 0471.49ms",
            "1:M 06 Dec 2025 09:33:22.281 * 100 changes in 300 seconds",
            "epoch 1765013602 and 1765013602281",
            "a long run 12345678901234567890123456789 and 0000 and 007",
            "",
            "no digits at all, ünïcödé and a tab\t",
        ]
        .iter()
        .map(|line| (T, line.as_bytes().to_vec()))
        .collect();
        let (back, _) = round_trip(&lines);
        assert_eq!(back, joined(&lines));
        let mut splitter = LineSplitter::default();
        splitter.push(T, lines[0].1.as_slice());
        // Only 1 and 233 are numbers (one and three digits; 233 a two-byte varint).
        let mut numbers = vec![Vec::new(); MAX_RUN];
        numbers[0] = vec![1];
        numbers[2] = vec![233, 1];
        assert_eq!(splitter.numbers.to_vec(), numbers);
        splitter.clear();
        splitter.push(T, lines[4].1.as_slice());
        assert!(splitter.numbers.iter().all(Vec::is_empty));
    }

    #[test]
    fn marker_bytes_in_a_line_are_escaped() {
        let lines = vec![
            (T, vec![b'a', 0xF5, 0xF6, b'1', 0xFF, b'2']),
            (-1, vec![0xF7, 0xF8, 0xF9]),
        ];
        assert_eq!(round_trip(&lines).0, joined(&lines));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let lines = [(T, b"status=200 took 15ms at 09:33:22".to_vec())];
        let mut splitter = LineSplitter::default();
        splitter.push(T, &lines[0].1);
        let mut packer = Packer::new(1);
        let mut stored = Vec::new();
        splitter.pack(&mut packer, &mut stored).expect("pack");
        let len = lines[0].1.len();
        assert!(unpack(&stored, &[T], len).is_ok());
        let corrupt = Err(Corrupt { what: WHAT });
        let bad_join = Err(Corrupt { what: WHAT });
        assert_eq!(unpack(&stored, &[T], len + 1), corrupt);
        assert_eq!(unpack(&stored, &[], len), corrupt, "a timestamp missing");
        assert_eq!(unpack(&stored[..stored.len() - 1], &[T], len), corrupt);
        assert_eq!(unpack(&[0xFF], &[T], len), corrupt);
        // Templates that point past their numbers or fields, or end inside a marker.
        let numbers = [0u8; MAX_RUN];
        for template in [
            &[SHORT_RUN][..],
            &[TIME_FIELD, 99],
            &[LONG_RUN],
            &[LONG_RUN, 0],
        ] {
            let mut out = Vec::new();
            assert_eq!(join(template, &numbers, &[T], &mut out), bad_join);
        }
        // A number too large for its run.
        let mut numbers = vec![1u8];
        numbers.extend([0; MAX_RUN - 1]);
        numbers.push(10);
        let mut out = Vec::new();
        assert_eq!(join(&[SHORT_RUN], &numbers, &[T], &mut out), bad_join);
    }

    proptest! {
        #[test]
        fn any_lines_come_back(
            lines in prop::collection::vec(
                (
                    any::<i64>(),
                    prop::collection::vec(
                        prop_oneof![
                            4 => b'0'..=b'9',
                            1 => any::<u8>(),
                            1 => Just(b' '),
                        ],
                        0..80,
                    ),
                ),
                0..20,
            )
        ) {
            prop_assert_eq!(round_trip(&lines).0, joined(&lines));
        }
    }
}
