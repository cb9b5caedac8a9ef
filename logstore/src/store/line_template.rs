//! Line columns as templates, numbers and hexadecimal ids, so that zstd at a fast level
//! packs them smaller.
//!
//! Log lines repeat their text and vary in their numbers and ids. A fast zstd level finds
//! the repeated text, but codes random digits as text, with a match or a literal run around
//! each. Before a chunk's line column is packed, each run of two or more ASCII digits
//! leaves its line for a number column — one column per run length, so that runs of one kind
//! (octets, ports, durations) sit together, each column in byte planes (all numbers' high
//! bytes, then the next…) so that zstd's literal coder sees bytes of one kind at a time — and
//! the line keeps a marker that says how many digits the run had (its leading zeros come
//! back from that).
//! A run that spells a field of the entry's own timestamp (its year, second, milliseconds,
//! Unix seconds…), as most log lines do, becomes a reference to that field and costs no
//! number. A word of 8 to 255 lowercase hexadecimal digits with both digits and letters (a
//! trace or request id, a hash) leaves for an id column, two digits to a byte. This is the
//! idea of CLP (Rodrigues et al., OSDI 2021) in a simple form. On the 2 GiB log benchmark
//! it packs the lines to about a fifth fewer bytes than zstd over the plain lines at the same
//! level (the whole store a seventh smaller), at the price of a scan over every byte at a
//! cut and a join at every read, which cost more CPU than zstd is spared
//! (docs/BENCHMARKS.md).
//!
//! The template is the lines with their markers, each line ended by [`LINE_END`]. Markers
//! are the bytes 0xF5–0xFF, which UTF-8 text never holds; a line that is not UTF-8 still
//! comes back as it was, its marker bytes escaped.
//!
//! A stored line column of [`Version::V2`] (the one written) is: the packed template and the
//! packed ids, each behind its length as a varint, then the packed numbers: [`MAX_RUN`]
//! varint counts (one per run length), then each length's column in byte planes, the most
//! significant first ([`plane_count`] planes). [`Version::V1`] columns (written before the
//! ids were split) have no ids, their numbers are varints back to back behind their byte
//! lengths, and their short-run markers start at 0xF9.

use std::ops::Range;

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
/// A run too long for a short-run marker; the next byte is its length.
const LONG_RUN: u8 = 0xF8;
/// A hexadecimal id ([`Version::V2`]); the next byte is its length in digits.
const HEX_ID: u8 = 0xF9;
/// The shortest run that leaves the template for a number column (unless it spells a
/// timestamp field): a one-digit run packs smaller as text than as a marker and a number,
/// and joins faster (docs/BENCHMARKS.md).
const MIN_NUMBER_RUN: usize = 2;
/// The lengths of a word that may be a hexadecimal id.
const HEX_ID_LENGTHS: Range<usize> = 8..256;

/// What a chunk's line column is corrupt as.
const WHAT: &str = "chunk line template";

/// The rules a stored line column was split by; its chunk's [layout](super::keys::Layout)
/// tells which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// Digit runs and timestamp fields; numbers as varints (`F`/`N` chunks).
    V1,
    /// Also hexadecimal ids; numbers in byte planes (`G`/`O` chunks, the ones written).
    V2,
}

impl Version {
    /// The marker of a one-digit run: `short_run() + length - 1` for short runs.
    fn short_run(self) -> u8 {
        match self {
            Version::V1 => 0xF9,
            Version::V2 => 0xFA,
        }
    }

    /// The longest run a short-run marker codes.
    fn short_run_max(self) -> usize {
        usize::from(0xFF - self.short_run()) + 1
    }
}

/// Splits lines into a template, number columns and ids ([`Version::V2`]); its buffers are
/// kept between chunks.
#[derive(Default)]
pub(crate) struct LineSplitter {
    template: Vec<u8>,
    /// The runs of each length (index: length - 1).
    numbers: [Vec<u64>; MAX_RUN],
    /// Hexadecimal ids, two digits to a byte (an odd one's last byte padded with zero).
    hex_ids: Vec<u8>,
    /// The number columns joined behind their counts, ready to pack.
    joined_numbers: Vec<u8>,
    fields: TimeFields,
}

impl LineSplitter {
    /// Forgets the lines split so far (keeping the buffers).
    pub(crate) fn clear(&mut self) {
        self.template.clear();
        self.numbers.iter_mut().for_each(Vec::clear);
        self.hex_ids.clear();
    }

    /// Adds the next line, whose entry's timestamp is `timestamp_ns`.
    pub(crate) fn push(&mut self, timestamp_ns: i64, line: &[u8]) {
        self.fields.at(timestamp_ns);
        let short_run = Version::V2.short_run();
        // Bytes of `line` before `done` are in the template already; the digit or marker
        // search goes on from `from` (short runs between them stay text).
        let mut done = 0;
        let mut from = 0;
        while let Some(offset) = find_digit_or_marker(&line[from..]) {
            let at = from + offset;
            if line[at] >= ESCAPE {
                self.template.extend_from_slice(&line[done..at]);
                self.template.extend_from_slice(&[ESCAPE, line[at]]);
                (done, from) = (at + 1, at + 1);
                continue;
            }
            let (run, value) = digit_run(&line[at..]);
            from = at + run;
            // Only a run with a hexadecimal digit beside it may be part of an id.
            let beside_hex = at
                .checked_sub(1)
                .is_some_and(|before| is_hex_letter(line[before]))
                || line.get(at + run).is_some_and(|after| is_hex_digit(*after));
            if let Some(id) = beside_hex.then(|| hex_id_around(line, done, at)).flatten() {
                self.template.extend_from_slice(&line[done..id.start]);
                self.template.extend_from_slice(&[HEX_ID, id.len() as u8]);
                self.hex_ids.extend(line[id.clone()].chunks(2).map(|pair| {
                    pair.iter()
                        .fold(0, |byte, digit| byte << 4 | hex_value(*digit))
                        << (8 - 4 * pair.len())
                }));
                (done, from) = (id.end, id.end);
                continue;
            }
            let field = self.fields.spelled_by(run, value);
            if field.is_none() && run < MIN_NUMBER_RUN {
                continue;
            }
            self.template.extend_from_slice(&line[done..at]);
            done = from;
            if let Some(field) = field {
                self.template.extend_from_slice(&[TIME_FIELD, field as u8]);
            } else if run <= Version::V2.short_run_max() {
                self.template.push(short_run + (run - 1) as u8);
                self.numbers[run - 1].push(value);
            } else {
                self.template.extend_from_slice(&[LONG_RUN, run as u8]);
                self.numbers[run - 1].push(value);
            }
        }
        self.template.extend_from_slice(&line[done..]);
        self.template.push(LINE_END);
    }

    /// Packs the lines pushed since [`clear`](Self::clear) into `out` (see the module docs).
    pub(crate) fn pack(&mut self, packer: &mut Packer, out: &mut Vec<u8>) -> Result<(), Error> {
        codec::put_bytes(out, packer.pack(&self.template)?);
        codec::put_bytes(out, packer.pack(&self.hex_ids)?);
        self.joined_numbers.clear();
        for column in &self.numbers {
            encode_varint(column.len() as u64, &mut self.joined_numbers);
        }
        for (column, digits) in self.numbers.iter().zip(1..) {
            for plane in (0..plane_count(digits)).rev() {
                let shift = 8 * plane;
                self.joined_numbers
                    .extend(column.iter().map(|value| (value >> shift) as u8));
            }
        }
        out.extend_from_slice(packer.pack(&self.joined_numbers)?);
        Ok(())
    }
}

/// The length of the run of digits `bytes` starts with (at most [`MAX_RUN`]), and its value.
fn digit_run(bytes: &[u8]) -> (usize, u64) {
    let mut value = 0;
    for (len, byte) in bytes.iter().take(MAX_RUN).enumerate() {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return (len, value);
        }
        value = value * 10 + u64::from(digit);
    }
    (bytes.len().min(MAX_RUN), value)
}

/// The first ASCII digit or marker byte in `bytes` (the split's scan).
fn find_digit_or_marker(bytes: &[u8]) -> Option<usize> {
    find_byte(
        bytes,
        |word| digit_bits(word) | marker_bits(word),
        |byte| byte.is_ascii_digit() || byte >= ESCAPE,
    )
}

/// The first marker byte in `bytes` (the join's scan).
fn find_marker(bytes: &[u8]) -> Option<usize> {
    find_byte(bytes, marker_bits, |byte| byte >= ESCAPE)
}

/// The first byte of `bytes` that `is_wanted`, looked for eight bytes at a time:
/// `wanted_bits` of a word (eight bytes, the first the least significant) sets the high bit
/// of the first wanted byte, and of no byte before it.
fn find_byte(
    bytes: &[u8],
    wanted_bits: impl Fn(u64) -> u64,
    is_wanted: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    for (index, word) in words.by_ref().enumerate() {
        let Ok(word_bytes) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let bits = wanted_bits(u64::from_le_bytes(word_bytes));
        if bits != 0 {
            return Some(index * 8 + bits.trailing_zeros() as usize / 8);
        }
    }
    let rest = words.remainder();
    rest.iter()
        .position(|byte| is_wanted(*byte))
        .map(|offset| bytes.len() - rest.len() + offset)
}

/// Eight 1 bits, one in each byte of a word.
const BYTE_ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The high bit of each byte of a word.
const BYTE_HIGH_BITS: u64 = BYTE_ONES * 0x80;

/// The high bits of a word's ASCII digits: a byte below 10 once '0' is xored away (a byte
/// that borrows sets its high bit; one whose high bit was set already is left out). The
/// borrow may run on into the bytes above a digit, so only the lowest bit is sure to be one.
fn digit_bits(word: u64) -> u64 {
    let xored = word ^ (BYTE_ONES * u64::from(b'0'));
    xored.wrapping_sub(BYTE_ONES * 10) & !xored & BYTE_HIGH_BITS
}

/// The high bits of a word's marker bytes (0xF5 or more), exactly: the byte's high bit set,
/// and its low seven bits reaching 0x75 (adding 0x0B carries into the high bit, never into
/// the next byte).
fn marker_bits(word: u64) -> u64 {
    let carry = BYTE_ONES * u64::from(0x80 - (ESCAPE & 0x7F));
    ((word & !BYTE_HIGH_BITS) + carry) & word & BYTE_HIGH_BITS
}

/// The hexadecimal id the digit at `at` is part of, if it is one: a whole word (no letter
/// or digit around it) of [`HEX_ID_LENGTHS`] lowercase hexadecimal digits holding a letter,
/// starting at or after `from` (what is before is in the template already).
fn hex_id_around(line: &[u8], from: usize, at: usize) -> Option<Range<usize>> {
    let start = at
        - line[from..at]
            .iter()
            .rev()
            .take_while(|byte| is_hex_digit(**byte))
            .count();
    let end = at
        + line[at..]
            .iter()
            .take_while(|byte| is_hex_digit(**byte))
            .count();
    let is_word_edge = |byte: Option<&u8>| !byte.is_some_and(u8::is_ascii_alphanumeric);
    let id = start..end;
    (HEX_ID_LENGTHS.contains(&id.len())
        && is_word_edge(start.checked_sub(1).and_then(|before| line.get(before)))
        && is_word_edge(line.get(end))
        && line[id.clone()].iter().any(|byte| is_hex_letter(*byte)))
    .then_some(id)
}

/// Whether `byte` is a lowercase hexadecimal digit.
fn is_hex_digit(byte: u8) -> bool {
    byte.is_ascii_digit() || is_hex_letter(byte)
}

/// Whether `byte` is a lowercase hexadecimal letter (a–f).
fn is_hex_letter(byte: u8) -> bool {
    (b'a'..=b'f').contains(&byte)
}

/// The value of a lowercase hexadecimal digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

/// How many bytes (planes) a number of `digits` decimal digits takes at most.
const fn plane_count(digits: u32) -> u32 {
    (10u64.pow(digits) - 1).ilog2() / 8 + 1
}

/// The lines a [`LineSplitter`] packed into `stored` by `version`'s rules, back to back;
/// `timestamps` are every entry's of the chunk in order, and the lines must take
/// `lines_len` bytes.
pub(crate) fn unpack(
    mut stored: &[u8],
    timestamps: &[i64],
    lines_len: usize,
    version: Version,
) -> Result<Vec<u8>, Corrupt> {
    let template = column::unpack(codec::get_bytes(&mut stored, WHAT)?, None, WHAT)?;
    let hex_ids = match version {
        Version::V1 => Vec::new(),
        Version::V2 => column::unpack(codec::get_bytes(&mut stored, WHAT)?, None, WHAT)?,
    };
    let numbers = column::unpack(stored, None, WHAT)?;
    // A damaged entry column cannot make this reserve more than a column may hold.
    let reserve = lines_len.min(usize::try_from(column::MAX_UNPACKED_BYTES).unwrap_or(0));
    let mut lines = Vec::with_capacity(reserve);
    let parts = Parts {
        hex_ids: &hex_ids,
        numbers: NumberColumns::new(&numbers, version)?,
        timestamps,
        version,
    };
    parts.join(&template, &mut lines)?;
    if lines.len() != lines_len {
        return Err(Corrupt { what: WHAT });
    }
    Ok(lines)
}

/// What a template's markers take their values from.
struct Parts<'a> {
    hex_ids: &'a [u8],
    numbers: NumberColumns<'a>,
    timestamps: &'a [i64],
    version: Version,
}

impl Parts<'_> {
    /// Writes the lines of `template` to `out`, each marker replaced by its value; every
    /// part must be used up.
    fn join(mut self, mut template: &[u8], out: &mut Vec<u8>) -> Result<(), Corrupt> {
        let corrupt = || Corrupt { what: WHAT };
        let mut fields = TimeFields::default();
        // The line being written, by its index in `timestamps`.
        let mut line = 0;
        while let Some(at) = find_marker(template) {
            out.extend_from_slice(&template[..at]);
            let marker = template[at];
            template = &template[at + 1..];
            if marker == LINE_END {
                line += 1;
                continue;
            }
            let takes_operand = matches!(marker, ESCAPE | TIME_FIELD | LONG_RUN)
                || (marker == HEX_ID && self.version == Version::V2);
            if !takes_operand {
                let run = usize::from(marker - self.version.short_run()) + 1;
                put_digits(out, self.numbers.next(run)?, run).ok_or_else(corrupt)?;
                continue;
            }
            let (&operand, rest) = template.split_first().ok_or_else(corrupt)?;
            template = rest;
            match marker {
                ESCAPE => out.push(operand),
                TIME_FIELD => {
                    let timestamp_ns = *self.timestamps.get(line).ok_or_else(corrupt)?;
                    let &(digits, value) = fields
                        .at(timestamp_ns)
                        .get(usize::from(operand))
                        .filter(|(digits, _)| *digits > 0)
                        .ok_or_else(corrupt)?;
                    put_digits(out, value, usize::from(digits)).ok_or_else(corrupt)?;
                }
                LONG_RUN => {
                    let run = usize::from(operand);
                    put_digits(out, self.numbers.next(run)?, run).ok_or_else(corrupt)?;
                }
                _ => self.put_hex_id(out, usize::from(operand))?,
            }
        }
        if !template.is_empty()
            || line != self.timestamps.len()
            || !self.hex_ids.is_empty()
            || !self.numbers.all_read()
        {
            return Err(corrupt());
        }
        Ok(())
    }

    /// Writes the next hexadecimal id, of `digits` digits, to `out`.
    fn put_hex_id(&mut self, out: &mut Vec<u8>, digits: usize) -> Result<(), Corrupt> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let corrupt = || Corrupt { what: WHAT };
        if self.hex_ids.len() < digits.div_ceil(2) {
            return Err(corrupt());
        }
        let (id, rest) = self.hex_ids.split_at(digits.div_ceil(2));
        self.hex_ids = rest;
        for byte in id {
            out.extend([HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        }
        if digits % 2 == 1 {
            // The padding nibble must be zero, as written.
            if out.pop() != Some(b'0') {
                return Err(corrupt());
            }
        }
        Ok(())
    }
}

/// A stored line column's number columns, read a run at a time.
struct NumberColumns<'a> {
    /// The columns by run length (index: length - 1).
    columns: [NumberColumn<'a>; MAX_RUN],
    version: Version,
}

/// One run length's numbers: varints back to back ([`Version::V1`]), or `count` numbers in
/// byte planes ([`Version::V2`]).
#[derive(Default, Clone, Copy)]
struct NumberColumn<'a> {
    bytes: &'a [u8],
    /// How many numbers the planes hold (planes only).
    count: usize,
    /// How many planes there are (planes only).
    planes: usize,
    /// The next number's index (planes only).
    next: usize,
}

impl<'a> NumberColumns<'a> {
    /// The columns of `numbers`, an unpacked number part of `version`.
    fn new(mut numbers: &'a [u8], version: Version) -> Result<Self, Corrupt> {
        let corrupt = || Corrupt { what: WHAT };
        // V1 gives each column's byte length, V2 its count of numbers.
        let mut sizes = [0; MAX_RUN];
        for size in &mut sizes {
            *size =
                usize::try_from(codec::get_varint(&mut numbers, WHAT)?).map_err(|_| corrupt())?;
        }
        let mut columns = [NumberColumn::default(); MAX_RUN];
        for ((column, size), digits) in columns.iter_mut().zip(sizes).zip(1..) {
            let len = match version {
                Version::V1 => size,
                Version::V2 => {
                    column.count = size;
                    column.planes = plane_count(digits) as usize;
                    size.checked_mul(column.planes).ok_or_else(corrupt)?
                }
            };
            if numbers.len() < len {
                return Err(corrupt());
            }
            (column.bytes, numbers) = numbers.split_at(len);
        }
        if !numbers.is_empty() {
            return Err(corrupt());
        }
        Ok(NumberColumns { columns, version })
    }

    /// The next number of `digits` digits.
    fn next(&mut self, digits: usize) -> Result<u64, Corrupt> {
        let corrupt = || Corrupt { what: WHAT };
        let column = self
            .columns
            .get_mut(digits.wrapping_sub(1))
            .ok_or_else(corrupt)?;
        match self.version {
            Version::V1 => decode_varint(&mut column.bytes).map_err(|_| corrupt()),
            Version::V2 => {
                if column.next == column.count {
                    return Err(corrupt());
                }
                let value = (0..column.planes).fold(0u64, |value, plane| {
                    value << 8 | u64::from(column.bytes[plane * column.count + column.next])
                });
                column.next += 1;
                Ok(value)
            }
        }
    }

    /// Whether every number was read.
    fn all_read(&self) -> bool {
        self.columns.iter().all(|column| match self.version {
            Version::V1 => column.bytes.is_empty(),
            Version::V2 => column.next == column.count,
        })
    }
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
    /// The timestamp the fields are of.
    timestamp_ns: Option<i64>,
    /// The second (since the epoch) the calendar fields are of.
    second: Option<i64>,
    fields: [(u8, u64); FIELD_COUNT],
    /// Which runs may spell a field: see [`FieldFilter`].
    filter: FieldFilter,
    /// The filter of the calendar fields alone.
    calendar_filter: FieldFilter,
}

/// Rules out most runs that spell no field with a bit test or two.
#[derive(Default, Clone, Copy)]
struct FieldFilter {
    /// Bit `d` set: some field has `d` digits.
    lengths: u32,
    /// Bit `v` of `[d - 1]` set: some field of `d` digits (1 or 2) is `v`.
    short_values: [u128; 2],
}

impl FieldFilter {
    /// Lets a field of `digits` digits that is `value` through.
    fn add(&mut self, (digits, value): (u8, u64)) {
        self.lengths |= 1 << digits;
        if let Some(values) = self
            .short_values
            .get_mut(usize::from(digits).wrapping_sub(1))
        {
            *values |= 1u128.checked_shl(value as u32).unwrap_or(0);
        }
    }

    /// Whether a run of `digits` digits that reads `value` may spell a field.
    fn passes(&self, digits: usize, value: u64) -> bool {
        match self.short_values.get(digits.wrapping_sub(1)) {
            Some(values) => value < 128 && values >> value & 1 == 1,
            None => self.lengths.checked_shr(digits as u32).unwrap_or(0) & 1 == 1,
        }
    }
}

impl TimeFields {
    /// The fields of `timestamp_ns` (UTC); the calendar ones are worked out once a second.
    fn at(&mut self, timestamp_ns: i64) -> &[(u8, u64); FIELD_COUNT] {
        if self.timestamp_ns == Some(timestamp_ns) {
            return &self.fields;
        }
        self.timestamp_ns = Some(timestamp_ns);
        let second = timestamp_ns.div_euclid(1_000_000_000);
        let nanos = timestamp_ns.rem_euclid(1_000_000_000) as u64;
        if self.second != Some(second) {
            self.second = Some(second);
            self.fields = calendar_fields(second);
            self.calendar_filter = FieldFilter::default();
            self.fields
                .iter()
                .for_each(|field| self.calendar_filter.add(*field));
        }
        self.fields[6] = (3, nanos / 1_000_000);
        self.fields[7] = (6, nanos / 1_000);
        self.fields[8] = (9, nanos);
        self.fields[11] = u64::try_from(second)
            .ok()
            .and_then(|second| second.checked_mul(1000))
            .map_or((0, 0), |millis| natural(millis + nanos / 1_000_000));
        self.filter = self.calendar_filter;
        for field in [6, 7, 8, 11] {
            self.filter.add(self.fields[field]);
        }
        &self.fields
    }

    /// The index of the field (of the last [`at`](Self::at)) a run of `digits` digits
    /// that reads `value` spells, if any; most runs are ruled out by a bit test.
    fn spelled_by(&self, digits: usize, value: u64) -> Option<usize> {
        if !self.filter.passes(digits, value) {
            return None;
        }
        self.fields.iter().position(|&(field_digits, field_value)| {
            usize::from(field_digits) == digits && field_value == value
        })
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

    /// The stored line column of `lines`, and the template's length before packing.
    fn split(lines: &[(i64, Vec<u8>)]) -> (Vec<u8>, usize) {
        let mut splitter = LineSplitter::default();
        let mut packer = Packer::new(1);
        // A splitter's buffers from an earlier chunk do not leak into the next.
        splitter.push(0, b"an earlier chunk 123 0123456789abcdef");
        splitter.clear();
        for (timestamp_ns, line) in lines {
            splitter.push(*timestamp_ns, line);
        }
        let mut stored = Vec::new();
        splitter.pack(&mut packer, &mut stored).expect("pack");
        (stored, splitter.template.len())
    }

    fn round_trip(lines: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let lines_len = lines.iter().map(|(_, line)| line.len()).sum();
        let timestamps: Vec<i64> = lines.iter().map(|(ts, _)| *ts).collect();
        unpack(&split(lines).0, &timestamps, lines_len, Version::V2).expect("unpack")
    }

    fn joined(lines: &[(i64, Vec<u8>)]) -> Vec<u8> {
        lines.iter().flat_map(|(_, line)| line.clone()).collect()
    }

    fn at_t(lines: &[&str]) -> Vec<(i64, Vec<u8>)> {
        lines
            .iter()
            .map(|line| (T, line.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn lines_come_back_and_their_timestamps_cost_no_numbers() {
        let lines = at_t(&[
            "I1206 09:33:22.281001       1 acme.go:233] re-queuing",
            "ts=2025-12-06T09:33:22.281Z caller=head.go:1133 duration=38.81ms",
            "[Nest] 7  - 12/06/2025, 09:33:22 AM     LOG took 0471.49ms",
            "1:M 06 Dec 2025 09:33:22.281 * 100 changes in 300 seconds",
            "epoch 1765013602 and 1765013602281",
            "a long run 12345678901234567890123456789 and 0000 and 007 and 1234567",
            "",
            "no digits at all, ünïcödé and a tab\t",
        ]);
        assert_eq!(round_trip(&lines), joined(&lines));
        let mut splitter = LineSplitter::default();
        splitter.push(T, lines[0].1.as_slice());
        // Only 233 is a number: the one-digit run stays text.
        let mut numbers = vec![Vec::new(); MAX_RUN];
        numbers[2] = vec![233];
        assert_eq!(splitter.numbers.to_vec(), numbers);
        splitter.clear();
        splitter.push(T, lines[4].1.as_slice());
        assert!(splitter.numbers.iter().all(Vec::is_empty));
    }

    #[test]
    fn hexadecimal_ids_are_packed_two_digits_to_a_byte() {
        let lines = at_t(&[
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
            "odd 0123456789abcde, at the end: 12ab34cd56ef",
        ]);
        assert_eq!(round_trip(&lines), joined(&lines));
        let mut splitter = LineSplitter::default();
        splitter.push(T, lines[0].1.as_slice());
        assert_eq!(splitter.template, b"trace_id=\xF9\x20 span \xF9\x10\xF6");
        assert_eq!(splitter.hex_ids[..3], [0x4b, 0xf9, 0x2f]);
        assert_eq!(splitter.hex_ids.len(), 24);
        assert!(splitter.numbers.iter().all(Vec::is_empty));
        splitter.clear();
        splitter.push(T, lines[1].1.as_slice());
        assert_eq!(splitter.hex_ids.len(), 8 + 6);
        assert_eq!(
            splitter.hex_ids[7], 0xe0,
            "an odd id's last digit is padded"
        );
        // Not ids: too short, no letter, no digit (a word), upper case, or part of a
        // longer word; their digit runs are numbers as before.
        for line in [
            "ab12cd3",
            "1234567890123",
            "deadbeefcafe",
            "ABCDEF0123456789",
            "x0123456789abcdef",
            "0123456789abcdefx",
            "v0123456789abcdef0",
        ] {
            let lines = at_t(&[line]);
            assert_eq!(round_trip(&lines), joined(&lines));
            splitter.clear();
            splitter.push(T, line.as_bytes());
            assert!(splitter.hex_ids.is_empty(), "{line}");
        }
    }

    #[test]
    fn numbers_are_stored_in_byte_planes_by_run_length() {
        let lines = at_t(&["at 12345 and 54321, 7"]);
        let (stored, _) = split(&lines);
        let mut stored = &stored[..];
        codec::get_bytes(&mut stored, WHAT).expect("template");
        codec::get_bytes(&mut stored, WHAT).expect("ids");
        let numbers = column::unpack(stored, None, WHAT).expect("numbers");
        let mut expected = vec![0, 0, 0, 0, 2];
        expected.resize(MAX_RUN, 0);
        // 12345 (0x003039) and 54321 (0x00D431) by plane, high bytes first; 7 stays text.
        expected.extend([0x00, 0x00, 0x30, 0xD4, 0x39, 0x31]);
        assert_eq!(numbers, expected);
    }

    #[test]
    fn version_1_columns_still_read() {
        // "id 42 at 2025\n" and "x 12345678" as the first version wrote them: short runs
        // from 0xF9, numbers as varints behind their columns' byte lengths, no ids.
        let template = b"id \xFA at \xF7\x00\xF6x \xF8\x08\xF6";
        let mut numbers = vec![0, 1];
        numbers.resize(7, 0);
        numbers.push(4);
        numbers.resize(MAX_RUN, 0);
        numbers.push(42);
        encode_varint(12_345_678, &mut numbers);
        let mut packer = Packer::new(1);
        let mut stored = Vec::new();
        codec::put_bytes(&mut stored, packer.pack(template).expect("pack"));
        stored.extend_from_slice(packer.pack(&numbers).expect("pack"));
        let lines = unpack(&stored, &[T, T], 23, Version::V1).expect("unpack");
        assert_eq!(lines, b"id 42 at 2025x 12345678");
        assert!(unpack(&stored, &[T, T], 23, Version::V2).is_err());
    }

    #[test]
    fn marker_bytes_in_a_line_are_escaped() {
        let lines = vec![
            (T, vec![b'a', 0xF5, 0xF6, b'1', 0xFF, b'2']),
            (-1, vec![0xF7, 0xF8, 0xF9, 0xFA]),
        ];
        assert_eq!(round_trip(&lines), joined(&lines));
    }

    /// The line a V2 template joins to, one entry at `T`, with `hex_ids` and `numbers`.
    fn join_parts(template: &[u8], hex_ids: &[u8], numbers: &[u8]) -> Result<Vec<u8>, Corrupt> {
        let parts = Parts {
            hex_ids,
            numbers: NumberColumns::new(numbers, Version::V2)?,
            timestamps: &[T],
            version: Version::V2,
        };
        let mut out = Vec::new();
        parts.join(template, &mut out)?;
        Ok(out)
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let lines = at_t(&["status=200 took 15ms at 09:33:22 id 0123456789abcdef"]);
        let (stored, _) = split(&lines);
        let len = lines[0].1.len();
        assert!(unpack(&stored, &[T], len, Version::V2).is_ok());
        let corrupt = Err(Corrupt { what: WHAT });
        assert_eq!(unpack(&stored, &[T], len + 1, Version::V2), corrupt);
        assert_eq!(
            unpack(&stored, &[], len, Version::V2),
            corrupt,
            "a timestamp missing"
        );
        assert_eq!(
            unpack(&stored[..stored.len() - 1], &[T], len, Version::V2),
            corrupt
        );
        assert_eq!(unpack(&[0xFF], &[T], len, Version::V2), corrupt);
        // Templates that point past their numbers, ids or fields, or end inside a marker.
        let no_numbers = [0u8; MAX_RUN];
        for template in [
            &[0xFA, LINE_END][..],
            &[TIME_FIELD, 99, LINE_END],
            &[LONG_RUN],
            &[LONG_RUN, 0, LINE_END],
            &[LONG_RUN, 19, LINE_END],
            &[HEX_ID, 8, LINE_END],
            &[HEX_ID],
        ] {
            assert_eq!(join_parts(template, &[], &no_numbers), corrupt);
        }
        // A number too large for its run; a count past the column's bytes; parts left over.
        let mut one_number = vec![1u8];
        one_number.extend([0; MAX_RUN - 1]);
        assert_eq!(
            join_parts(&[0xFA, LINE_END], &[], &[&one_number[..], &[10]].concat()),
            corrupt
        );
        assert_eq!(join_parts(&[0xFA, LINE_END], &[], &one_number), corrupt);
        assert_eq!(
            join_parts(&[LINE_END], &[], &[&one_number[..], &[1]].concat()),
            corrupt
        );
        assert_eq!(join_parts(&[LINE_END], &[0xAB], &no_numbers), corrupt);
        // An odd id whose padding nibble is not zero; and, well formed, the same id and a number.
        let odd_id = [0x01, 0x23, 0x45, 0x67, 0x80];
        assert_eq!(
            join_parts(
                &[HEX_ID, 9, LINE_END],
                &[0x01, 0x23, 0x45, 0x67, 0x8F],
                &no_numbers
            ),
            corrupt
        );
        assert_eq!(
            join_parts(&[HEX_ID, 9, LINE_END], &odd_id, &no_numbers),
            Ok(b"012345678".to_vec())
        );
        assert_eq!(
            join_parts(&[0xFA, LINE_END], &[], &[&one_number[..], &[7]].concat()),
            Ok(b"7".to_vec())
        );
    }

    #[test]
    fn numbers_are_written_with_their_leading_zeros_or_not_at_all() {
        let written = |value, digits| {
            let mut out = Vec::new();
            put_digits(&mut out, value, digits).map(|()| String::from_utf8(out).expect("ascii"))
        };
        assert_eq!(written(0, 1).as_deref(), Some("0"));
        assert_eq!(written(7, 3).as_deref(), Some("007"));
        assert_eq!(written(12_345, 5).as_deref(), Some("12345"));
        assert_eq!(written(1_234, 6).as_deref(), Some("001234"));
        assert_eq!(
            written(999_999_999_999_999_999, 18).as_deref(),
            Some("999999999999999999")
        );
        assert_eq!(written(100, 2), None);
        assert_eq!(written(10, 1), None);
        assert_eq!(written(1, 21), None);
    }

    #[test]
    fn the_word_scans_find_what_a_byte_scan_finds() {
        let is_digit_or_marker = |byte: &u8| byte.is_ascii_digit() || *byte >= ESCAPE;
        for filler in [b'x', b'/', b':', 0x7F, 0x80, 0xF4] {
            for byte in 0..=u8::MAX {
                for at in 0..20 {
                    let mut bytes = vec![filler; 20];
                    bytes[at] = byte;
                    let first = bytes.iter().position(is_digit_or_marker);
                    assert_eq!(find_digit_or_marker(&bytes), first, "{bytes:x?}");
                    let first = bytes.iter().position(|byte| *byte >= ESCAPE);
                    assert_eq!(find_marker(&bytes), first, "{bytes:x?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn the_word_scan_agrees_with_a_byte_scan(
            bytes in prop::collection::vec(any::<u8>(), 0..40)
        ) {
            let first = bytes.iter().position(|byte| byte.is_ascii_digit() || *byte >= ESCAPE);
            prop_assert_eq!(find_digit_or_marker(&bytes), first);
            let first = bytes.iter().position(|byte| *byte >= ESCAPE);
            prop_assert_eq!(find_marker(&bytes), first);
        }

        #[test]
        fn any_lines_come_back(
            lines in prop::collection::vec(
                (
                    any::<i64>(),
                    prop::collection::vec(
                        prop_oneof![
                            4 => b'0'..=b'9',
                            3 => b'a'..=b'f',
                            1 => any::<u8>(),
                            1 => Just(b' '),
                        ],
                        0..80,
                    ),
                ),
                0..20,
            )
        ) {
            prop_assert_eq!(round_trip(&lines), joined(&lines));
        }
    }
}
