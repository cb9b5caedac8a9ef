//! The columnar sample encoding of block chunk values, read piece by piece.
//!
//! It exists because RocksDB compresses what it stores: byte-aligned columns (timestamps as
//! delta-of-delta varints, values as decimal mantissas with a shared exponent, delta-of-delta)
//! leave zstd repetitive bytes to work on, where the XOR bit stream looks like noise to it.
//! Decoding is exact: a value goes into the decimal column only if it decodes back to the same
//! 64 bits, and everything else (NaN staleness markers, ±Inf, −0.0, more than 15–16
//! significant digits) is stored as an exception with its bits. The byte layout is in
//! `tsdb/FORMAT.md`, section "Blocks" (value encoding 2).
//!
//! A value holds all of a series' samples in a block — a whole day once blocks are
//! compacted — so a query over many series must not decode values up front: at 16 bytes a
//! decoded sample, a day of 10,000 series scraped every 15 s is 880 MiB, against a few bytes a
//! sample encoded. [`pieces`] checks a value once and cuts it into [`ColumnarPiece`]s of at
//! most [`PIECE_SAMPLES`] samples that share the encoded bytes; each piece keeps the
//! decoder's state at its first sample, so it decodes on its own when a query reaches it.

use std::sync::Arc;

use crate::varint;

/// Samples in one piece: about two XOR chunks of the head, so that a query holds as little
/// decoded at a time for block data as for head data.
pub const PIECE_SAMPLES: usize = 240;

/// Value column mode: decimal mantissas with one exponent, plus exceptions.
const VALUES_DECIMAL: u8 = 1;
/// Value column mode: XOR with the previous value's bits, byte-aligned.
const VALUES_XOR_BYTES: u8 = 2;

/// Largest mantissa magnitude that converts to `f64` exactly (2⁵³).
const MAX_MANTISSA: i64 = 1 << 53;
/// Largest decimal exponent tried; 10¹⁸ is still an exact `f64`.
const MAX_EXPONENT: usize = 18;
const POW10: [f64; MAX_EXPONENT + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];
/// Header byte of a zero XOR in the XOR-bytes column.
const XOR_ZERO: u8 = 0xff;

/// What is wrong with a value that does not decode.
pub type DecodeError = &'static str;

/// Appends the columnar encoding of `samples` (strictly increasing timestamps) to `out`.
pub(crate) fn encode(samples: &[(i64, f64)], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 3 + 16);
    varint::put_u64(out, samples.len() as u64);
    // Timestamps: t0, first delta, then deltas of deltas, all wrapping.
    let mut prev_t = 0i64;
    let mut prev_delta = 0i64;
    for (i, &(t, _)) in samples.iter().enumerate() {
        match i {
            0 => varint::put_i64(out, t),
            1 => {
                prev_delta = t.wrapping_sub(prev_t);
                varint::put_i64(out, prev_delta);
            }
            _ => {
                let delta = t.wrapping_sub(prev_t);
                varint::put_i64(out, delta.wrapping_sub(prev_delta));
                prev_delta = delta;
            }
        }
        prev_t = t;
    }
    let decimal = encode_decimal_values(samples);
    let xor = encode_xor_bytes_values(samples);
    match decimal {
        Some(decimal) if decimal.len() <= xor.len() => out.extend_from_slice(&decimal),
        _ => out.extend_from_slice(&xor),
    }
}

/// Decodes a whole value into its samples.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, DecodeError> {
    let columns = Columns::parse(bytes)?;
    let mut cursor = columns.start();
    let mut samples = Vec::with_capacity(columns.len);
    for _ in 0..columns.len {
        samples.push(cursor.step(&columns)?);
    }
    columns.check_end(cursor.value.pos)?;
    Ok(samples)
}

/// The samples of a value in `[mint, maxt]`, as pieces with their first and last timestamps,
/// in time order. The value is checked up to `maxt` here, so that a corrupt value is reported
/// when it is read rather than cut short while a query runs. Two tight passes, timestamps
/// then values, without converting a value to `f64`: a piece's samples are decoded when
/// iterated.
pub(crate) fn pieces(
    bytes: &[u8],
    mint: i64,
    maxt: i64,
) -> Result<Vec<(i64, i64, ColumnarPiece)>, DecodeError> {
    let columns = Arc::new(Columns::parse(bytes)?);
    // Each piece's first index, the timestamp column's state before it, its first and last
    // timestamps and its length.
    let mut spans: Vec<(usize, DeltaCursor, i64, i64, usize)> = Vec::new();
    let mut time = DeltaCursor::at(columns.times_start);
    for index in 0..columns.len {
        let before = time;
        let t = time.next(&columns.bytes, index)?;
        if index > 0 && t <= before.prev {
            return Err("timestamps not strictly increasing");
        }
        if t < mint {
            continue;
        }
        if t > maxt {
            break;
        }
        match spans.last_mut() {
            Some((.., last, len)) if *len < PIECE_SAMPLES => {
                *last = t;
                *len += 1;
            }
            _ => spans.push((index, before, t, t, 1)),
        }
    }
    // The value column's state before each piece: its values are read up to the last piece.
    let end = spans.last().map_or(0, |&(first, .., len)| first + len);
    let mut value = DeltaCursor::at(columns.values_start);
    let mut spans = spans.into_iter().peekable();
    let mut out = Vec::with_capacity(spans.len());
    for index in 0..end {
        if let Some((first, time, min_time, max_time, len)) =
            spans.next_if(|&(first, ..)| first == index)
        {
            let start = Cursor {
                index: first,
                time,
                value,
                exception: columns.exceptions.partition_point(|&(at, _)| at < first),
            };
            let piece = ColumnarPiece {
                columns: Arc::clone(&columns),
                start,
                len,
            };
            out.push((min_time, max_time, piece));
        }
        columns.next_value(&mut value, index)?;
    }
    if end == columns.len {
        columns.check_end(value.pos)?;
    }
    Ok(out)
}

/// Consecutive samples of a columnar value, decoded when iterated.
#[derive(Debug, Clone)]
pub struct ColumnarPiece {
    /// The whole value, shared by its pieces.
    columns: Arc<Columns>,
    /// The decoder's state before the first sample.
    start: Cursor,
    len: usize,
}

impl ColumnarPiece {
    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.len
    }

    /// The samples in time order.
    pub fn iter(&self) -> ColumnarIter<'_> {
        ColumnarIter {
            columns: &self.columns,
            cursor: self.start,
            remaining: self.len,
        }
    }
}

/// Iterator over the samples of a [`ColumnarPiece`].
#[derive(Debug)]
pub struct ColumnarIter<'a> {
    columns: &'a Columns,
    cursor: Cursor,
    remaining: usize,
}

impl Iterator for ColumnarIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        self.remaining = self.remaining.checked_sub(1)?;
        // `pieces` read these samples once already, so this does not fail; if it did, the
        // piece would end early rather than yield a wrong sample.
        let sample = self.cursor.step(self.columns).ok();
        if sample.is_none() {
            self.remaining = 0;
        }
        sample
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// How the value column is encoded.
#[derive(Debug, Clone, Copy)]
enum ValueColumn {
    /// Mantissas over `10^exponent`.
    Decimal {
        exponent: usize,
    },
    XorBytes,
}

/// A value's bytes and where its columns start.
#[derive(Debug)]
struct Columns {
    bytes: Box<[u8]>,
    len: usize,
    times_start: usize,
    values: ValueColumn,
    values_start: usize,
    /// Decimal mode: indexes of the samples whose value is the given bits (in index order).
    exceptions: Box<[(usize, u64)]>,
}

impl Columns {
    /// Finds the columns of `bytes` and reads the exception list.
    fn parse(bytes: &[u8]) -> Result<Columns, DecodeError> {
        let mut pos = 0;
        let len = usize::try_from(read_uvarint(bytes, &mut pos)?).map_err(|_| "length overflow")?;
        if len > bytes.len() {
            // Every sample takes at least one byte per column.
            return Err("sample count larger than the value");
        }
        let times_start = pos;
        pos = skip_varints(bytes, pos, len)?;
        let mode = *bytes.get(pos).ok_or("value cut short")?;
        pos += 1;
        let (values, values_start, exceptions) = match mode {
            VALUES_DECIMAL => {
                let exponent =
                    usize::try_from(read_uvarint(bytes, &mut pos)?).map_err(|_| "bad exponent")?;
                if exponent > MAX_EXPONENT {
                    return Err("decimal exponent out of range");
                }
                let values_start = pos;
                pos = skip_varints(bytes, pos, len)?;
                let count = read_uvarint(bytes, &mut pos)?;
                let mut exceptions = Vec::new();
                let mut index = 0usize;
                for _ in 0..count {
                    let delta =
                        usize::try_from(read_uvarint(bytes, &mut pos)?).map_err(|_| "bad index")?;
                    index = index.checked_add(delta).ok_or("bad index")?;
                    if index >= len {
                        return Err("exception index out of range");
                    }
                    exceptions.push((index, u64::from_le_bytes(read_array(bytes, &mut pos)?)));
                }
                if pos != bytes.len() {
                    return Err("trailing bytes");
                }
                (ValueColumn::Decimal { exponent }, values_start, exceptions)
            }
            // Its end is known once every value is read: see `check_end`.
            VALUES_XOR_BYTES => (ValueColumn::XorBytes, pos, Vec::new()),
            _ => return Err("unknown value column mode"),
        };
        Ok(Columns {
            bytes: bytes.into(),
            len,
            times_start,
            values,
            values_start,
            exceptions: exceptions.into(),
        })
    }

    /// The decoder's state before the first sample.
    fn start(&self) -> Cursor {
        Cursor {
            index: 0,
            time: DeltaCursor::at(self.times_start),
            value: DeltaCursor::at(self.values_start),
            exception: 0,
        }
    }

    /// Reads the `index`-th entry of the value column: a mantissa, or a value's bits.
    #[inline]
    fn next_value(&self, cursor: &mut DeltaCursor, index: usize) -> Result<i64, DecodeError> {
        match self.values {
            ValueColumn::Decimal { .. } => cursor.next(&self.bytes, index),
            ValueColumn::XorBytes => {
                let bits = if index == 0 {
                    u64::from_le_bytes(read_array(&self.bytes, &mut cursor.pos)?)
                } else {
                    let header = *self.bytes.get(cursor.pos).ok_or("value cut short")?;
                    cursor.pos += 1;
                    if header == XOR_ZERO {
                        cursor.prev as u64
                    } else {
                        let lead = usize::from(header >> 4);
                        let trail = usize::from(header & 0x0f);
                        if lead + trail >= 8 {
                            return Err("bad XOR header");
                        }
                        let end = cursor.pos + 8 - lead - trail;
                        let middle = self.bytes.get(cursor.pos..end).ok_or("value cut short")?;
                        let mut be = [0u8; 8];
                        be[lead..8 - trail].copy_from_slice(middle);
                        cursor.pos = end;
                        cursor.prev as u64 ^ u64::from_be_bytes(be)
                    }
                };
                cursor.prev = bits as i64;
                Ok(bits as i64)
            }
        }
    }

    /// The `index`-th value from its value column entry; `exception` is the first exception
    /// not yet passed, and moves past those of `index`.
    #[inline]
    fn value(&self, entry: i64, index: usize, exception: &mut usize) -> f64 {
        match self.values {
            ValueColumn::Decimal { exponent } => {
                let mut value = from_decimal(entry, exponent);
                // An index may be listed more than once; the last one holds.
                while let Some(&(at, bits)) = self.exceptions.get(*exception)
                    && at == index
                {
                    value = f64::from_bits(bits);
                    *exception += 1;
                }
                value
            }
            ValueColumn::XorBytes => f64::from_bits(entry as u64),
        }
    }

    /// Checks that reading every value ended exactly at the end of the value.
    fn check_end(&self, value_pos: usize) -> Result<(), DecodeError> {
        match self.values {
            ValueColumn::XorBytes if value_pos != self.bytes.len() => Err("trailing bytes"),
            _ => Ok(()),
        }
    }
}

/// Where a decoder is in a value: the next sample's index, the state of both columns and the
/// first exception at or after `index`.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    index: usize,
    time: DeltaCursor,
    value: DeltaCursor,
    exception: usize,
}

impl Cursor {
    /// Decodes the next sample and moves past it.
    #[inline]
    fn step(&mut self, columns: &Columns) -> Result<(i64, f64), DecodeError> {
        let index = self.index;
        let prev_t = self.time.prev;
        let t = self.time.next(&columns.bytes, index)?;
        if index > 0 && t <= prev_t {
            return Err("timestamps not strictly increasing");
        }
        let entry = columns.next_value(&mut self.value, index)?;
        let value = columns.value(entry, index, &mut self.exception);
        self.index += 1;
        Ok((t, value))
    }
}

/// A position in a delta-of-delta column (the XOR-bytes column keeps the previous value's
/// bits in `prev`): the first number is stored as is, the second as a delta, the rest as
/// deltas of deltas, all wrapping.
#[derive(Debug, Clone, Copy)]
struct DeltaCursor {
    pos: usize,
    prev: i64,
    delta: i64,
}

impl DeltaCursor {
    fn at(pos: usize) -> DeltaCursor {
        DeltaCursor {
            pos,
            prev: 0,
            delta: 0,
        }
    }

    /// Reads the column's `index`-th number.
    #[inline]
    fn next(&mut self, bytes: &[u8], index: usize) -> Result<i64, DecodeError> {
        let field = read_varint(bytes, &mut self.pos)?;
        let number = match index {
            0 => field,
            1 => {
                self.delta = field;
                self.prev.wrapping_add(field)
            }
            _ => {
                self.delta = self.delta.wrapping_add(field);
                self.prev.wrapping_add(self.delta)
            }
        };
        self.prev = number;
        Ok(number)
    }
}

fn read_uvarint(bytes: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    varint::decode_u64(|| {
        let byte = bytes.get(*pos).copied();
        *pos += 1;
        byte
    })
    .ok_or("bad varint")
}

/// A zig-zag varint; one byte (a delta of delta of zero, the common case) without a loop.
/// Its own rather than a slice reader shared with the block codec's `Reader`: this is the
/// decoding loop's hot path, and such a shared reader in `varint` measured slower in the
/// block bench (0.97 against 0.80 ms for the week of one series, run back to back).
#[inline]
fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    let unsigned = match bytes.get(*pos) {
        Some(&byte) if byte < 0x80 => {
            *pos += 1;
            u64::from(byte)
        }
        _ => read_uvarint(bytes, pos)?,
    };
    Ok(varint::zigzag(unsigned))
}

fn read_array(bytes: &[u8], pos: &mut usize) -> Result<[u8; 8], DecodeError> {
    let end = pos.checked_add(8).ok_or("length overflow")?;
    let slice = bytes.get(*pos..end).ok_or("value cut short")?;
    *pos = end;
    let mut array = [0u8; 8];
    array.copy_from_slice(slice);
    Ok(array)
}

/// The position after `count` varints from `pos` (each ends at a byte below 0x80).
fn skip_varints(bytes: &[u8], pos: usize, count: usize) -> Result<usize, DecodeError> {
    if count == 0 {
        return Ok(pos);
    }
    let mut seen = 0;
    for (offset, &byte) in bytes.get(pos..).unwrap_or_default().iter().enumerate() {
        if byte < 0x80 {
            seen += 1;
            if seen == count {
                return Ok(pos + offset + 1);
            }
        }
    }
    Err("value cut short")
}

/// `v` as `m / 10^e` with the smallest `e`, if that decodes back to the same bits.
fn to_decimal(v: f64) -> Option<(i64, usize)> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    for (e, pow) in POW10.iter().enumerate() {
        let scaled = (v * pow).round();
        if scaled.abs() > MAX_MANTISSA as f64 {
            return None;
        }
        let m = scaled as i64;
        if from_decimal(m, e).to_bits() == v.to_bits() {
            return Some((m, e));
        }
    }
    None
}

/// `m / 10^e`: one correctly rounded IEEE division of two exact operands.
#[inline]
fn from_decimal(m: i64, e: usize) -> f64 {
    m as f64 / POW10[e]
}

/// The decimal value column, or `None` when too many values are exceptions for it to pay.
fn encode_decimal_values(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let decimals: Vec<Option<(i64, usize)>> = samples.iter().map(|&(_, v)| to_decimal(v)).collect();
    let exponent = decimals
        .iter()
        .flatten()
        .map(|&(_, e)| e)
        .max()
        .unwrap_or(0);
    let mut mantissas = Vec::with_capacity(samples.len());
    let mut exceptions: Vec<(usize, u64)> = Vec::new();
    for (i, (decimal, &(_, v))) in decimals.iter().zip(samples).enumerate() {
        let scaled = decimal.and_then(|(m, e)| {
            let m = m.checked_mul(10i64.checked_pow(u32::try_from(exponent - e).ok()?)?)?;
            (m.abs() <= MAX_MANTISSA && from_decimal(m, exponent).to_bits() == v.to_bits())
                .then_some(m)
        });
        match scaled {
            Some(m) => mantissas.push(m),
            None => {
                // Repeat the previous mantissa so the delta-of-delta stream stays smooth.
                mantissas.push(mantissas.last().copied().unwrap_or(0));
                exceptions.push((i, v.to_bits()));
            }
        }
        if exceptions.len() * 4 > samples.len().max(8) {
            return None;
        }
    }
    let mut out = Vec::with_capacity(samples.len() * 2 + 8);
    out.push(VALUES_DECIMAL);
    varint::put_u64(&mut out, exponent as u64);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &m) in mantissas.iter().enumerate() {
        match i {
            0 => varint::put_i64(&mut out, m),
            1 => {
                prev_delta = m - prev;
                varint::put_i64(&mut out, prev_delta);
            }
            _ => {
                let delta = m - prev;
                varint::put_i64(&mut out, delta - prev_delta);
                prev_delta = delta;
            }
        }
        prev = m;
    }
    varint::put_u64(&mut out, exceptions.len() as u64);
    let mut prev_index = 0usize;
    for (index, bits) in exceptions {
        varint::put_u64(&mut out, (index - prev_index) as u64);
        out.extend_from_slice(&bits.to_le_bytes());
        prev_index = index;
    }
    Some(out)
}

fn encode_xor_bytes_values(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 7 + 8);
    out.push(VALUES_XOR_BYTES);
    let mut prev = 0u64;
    for (i, &(_, v)) in samples.iter().enumerate() {
        let bits = v.to_bits();
        if i == 0 {
            out.extend_from_slice(&bits.to_le_bytes());
        } else {
            let x = bits ^ prev;
            if x == 0 {
                out.push(XOR_ZERO);
            } else {
                let lead = x.leading_zeros() / 8;
                let trail = x.trailing_zeros() / 8;
                out.push(((lead as u8) << 4) | trail as u8);
                let be = x.to_be_bytes();
                out.extend_from_slice(&be[lead as usize..(8 - trail) as usize]);
            }
        }
        prev = bits;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(samples, &mut out);
        out
    }

    fn bits(samples: impl IntoIterator<Item = (i64, f64)>) -> Vec<(i64, u64)> {
        samples.into_iter().map(|(t, v)| (t, v.to_bits())).collect()
    }

    fn read(pieces: &[(i64, i64, ColumnarPiece)]) -> Vec<(i64, u64)> {
        bits(pieces.iter().flat_map(|(_, _, piece)| piece.iter()))
    }

    #[test]
    fn exceptions_at_piece_edges_stay_with_their_samples() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples: Vec<(i64, f64)> = (0..1000i64)
            .map(|i| {
                let exception = [0, 239, 240, 241, 479, 999].contains(&i);
                (i * 15_000, if exception { stale } else { i as f64 / 4.0 })
            })
            .collect();
        let bytes = encoded(&samples);
        let all = pieces(&bytes, i64::MIN, i64::MAX).unwrap();
        let sizes: Vec<usize> = all.iter().map(|(_, _, p)| p.num_samples()).collect();
        assert_eq!(sizes, [240, 240, 240, 240, 40]);
        assert_eq!(read(&all), bits(samples.clone()));
        let middle = pieces(&bytes, 241 * 15_000, 481 * 15_000).unwrap();
        let bounds: Vec<(i64, i64)> = middle
            .iter()
            .map(|&(first, last, _)| (first, last))
            .collect();
        assert_eq!(
            bounds,
            [(241 * 15_000, 480 * 15_000), (481 * 15_000, 481 * 15_000)]
        );
        assert_eq!(read(&middle), bits(samples[241..=481].to_vec()));
    }

    #[test]
    fn values_without_a_decimal_form_read_back_from_any_piece() {
        let samples: Vec<(i64, f64)> = (0..700i64)
            .map(|i| (i * 1_000 + i % 7, (i as f64).sin() * 1e-3))
            .collect();
        let bytes = encoded(&samples);
        let columns = Columns::parse(&bytes).unwrap();
        assert!(matches!(columns.values, ValueColumn::XorBytes));
        let tail = pieces(&bytes, samples[500].0, i64::MAX).unwrap();
        assert_eq!(read(&tail), bits(samples[500..].to_vec()));
    }

    #[test]
    fn a_damaged_value_is_refused_when_read() {
        let samples: Vec<(i64, f64)> = (0..500).map(|i| (i * 1_000, i as f64 * 0.5)).collect();
        let bytes = encoded(&samples);
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                pieces(&bytes[..cut], i64::MIN, i64::MAX).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            pieces(&longer, i64::MIN, i64::MAX).unwrap_err(),
            "trailing bytes"
        );
        let repeated = encoded(&[(5, 1.0), (5, 2.0)]);
        assert_eq!(
            pieces(&repeated, i64::MIN, i64::MAX).unwrap_err(),
            "timestamps not strictly increasing"
        );
    }
}
