//! Gorilla-style XOR chunks of float samples: `(timestamp ms: i64, value: f64)`.
//!
//! Follows Prometheus's XOR encoding (`tsdb/chunkenc/xor.go`, chunk encoding 1; the Gorilla
//! paper, <https://www.vldb.org/pvldb/vol8/p1816-teller.pdf>) bit for bit, so a chunk written
//! here is a valid Prometheus XOR chunk and vice versa: a 2-byte big-endian sample count, then
//! the first timestamp as a zig-zag varint and the first value as 64 raw bits, the second
//! timestamp as a uvarint delta, and after that delta-of-deltas in buckets of 0/14/17/20/64
//! bits; values are XORed with their predecessor, reusing the previous window of meaningful
//! bits when the new XOR fits in it. The byte layout is in `tsdb/FORMAT.md`.
//!
//! Edge cases decided:
//! - Timestamps must be strictly increasing; [`XorAppender::append`] refuses anything else
//!   with [`Error::OutOfOrderSample`] and leaves the chunk unchanged. Any two `i64`
//!   timestamps are allowed, so a delta can exceed `i64::MAX`: deltas are `u64` and
//!   delta-of-deltas are taken modulo 2⁶⁴ (a wrapped delta-of-delta that does not fit 20
//!   bits goes to the 64-bit bucket), which the decoder undoes with the same wrapping
//!   arithmetic. This is Prometheus's arithmetic, made explicit.
//! - Values are kept bit-exactly: NaN payloads (Prometheus's staleness marker
//!   `0x7ff0000000000002`), `-0.0` and infinities round-trip unchanged.
//! - A chunk holds at most [`MAX_SAMPLES`] (65 535) samples, the limit of its header;
//!   the next append returns [`Error::ChunkFull`].
//! - [`XorChunk::from_bytes`] decodes the whole chunk once and rejects (never panics on)
//!   anything that is not exactly `count` samples with strictly increasing timestamps
//!   followed by at most 7 zero padding bits. It does not insist on the canonical encoding
//!   (e.g. a reused value window whose bits are all zero decodes fine). After that check,
//!   iteration cannot fail, which keeps [`XorIter`] a plain `Iterator`; the price is one
//!   extra decode per chunk read from disk (about the cost of iterating it).

use std::sync::Arc;

use super::bits::{BitReader, BitWriter};
use crate::varint;
use crate::{Error, Result};

/// Bytes before the bit stream: the big-endian `u16` sample count.
const HEADER_LEN: usize = 2;

/// The most samples one chunk can hold (its header counts them in a `u16`).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// `leading` value meaning that no XOR window has been written yet.
const NO_WINDOW: u8 = 0xff;

/// The non-zero delta-of-delta buckets: control bits, their width, and the value width.
/// A value of width `w` holds -(2^(w-1) - 1) ..= 2^(w-1), as in Prometheus's `bitRange`.
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// Whether `dod` fits a delta-of-delta bucket of `width` bits.
fn fits(dod: i64, width: u32) -> bool {
    let half = 1i64 << (width - 1);
    -(half - 1) <= dod && dod <= half
}

/// The sample count in a chunk's header (`None` if there is no complete header).
fn sample_count(bytes: &[u8]) -> Option<u16> {
    bytes
        .first_chunk::<HEADER_LEN>()
        .map(|h| u16::from_be_bytes(*h))
}

/// Builds an XOR chunk one sample at a time.
///
/// Appending allocates nothing besides growing the chunk's byte vector. The appender keeps
/// the state needed for the next sample (last timestamp, value, delta and XOR window), about
/// 40 bytes next to the bytes themselves.
#[derive(Clone, Debug)]
pub struct XorAppender {
    w: BitWriter,
    num_samples: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::with_capacity(32)
    }

    /// An empty chunk whose buffer starts with room for `bytes` encoded bytes (header
    /// included): a good guess saves the buffer's regrowth and its unused tail.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut bytes = Vec::with_capacity(bytes.max(HEADER_LEN));
        bytes.extend_from_slice(&[0; HEADER_LEN]);
        XorAppender {
            w: BitWriter::new(bytes),
            num_samples: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Appends a sample.
    ///
    /// Fails, leaving the chunk unchanged, with [`Error::ChunkFull`] when the chunk holds
    /// [`MAX_SAMPLES`] samples and with [`Error::OutOfOrderSample`] when `t` is not after the
    /// last sample's timestamp.
    pub fn append(&mut self, t: i64, v: f64) -> Result<()> {
        let v = v.to_bits();
        if self.num_samples == 0 {
            varint::encode_i64(t, |b| self.w.write_byte(b));
            self.w.write_bits(v, 64);
        } else {
            if usize::from(self.num_samples) == MAX_SAMPLES {
                return Err(Error::ChunkFull { max: MAX_SAMPLES });
            }
            if t <= self.t {
                return Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last: self.t,
                });
            }
            // `t > self.t`, so the true difference is in 1..=u64::MAX and the wrapping
            // subtraction, read as unsigned, is exact.
            let t_delta = t.wrapping_sub(self.t) as u64;
            if self.num_samples == 1 {
                varint::encode_u64(t_delta, |b| self.w.write_byte(b));
            } else {
                self.write_dod(t_delta.wrapping_sub(self.t_delta) as i64);
            }
            self.t_delta = t_delta;
            self.write_value(v);
        }
        self.t = t;
        self.v = v;
        self.num_samples += 1;
        Ok(())
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.write_bit(false);
            return;
        }
        for (control, control_width, width) in DOD_BUCKETS {
            if fits(dod, width) {
                self.w.write_bits(control, control_width);
                self.w.write_bits(dod as u64, width);
                return;
            }
        }
        self.w.write_bits(0b1111, 4);
        self.w.write_bits(dod as u64, 64);
    }

    fn write_value(&mut self, v: u64) {
        let xor = v ^ self.v;
        if xor == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // The leading-zero field has 5 bits: more than 31 leading zeros are written as 31,
        // the extra zeros becoming part of the meaningful bits.
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(xor >> self.trailing, width);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.write_bit(true);
            self.w.write_bits(u64::from(leading), 5);
            let width = 64 - u32::from(leading) - u32::from(trailing);
            // 64 meaningful bits do not fit the 6-bit field and are written as 0; a real
            // width of 0 cannot occur since `xor != 0`.
            self.w.write_bits(u64::from(width), 6);
            self.w.write_bits(xor >> trailing, width);
        }
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num_samples)
    }

    /// Timestamp of the last sample appended; `None` while the chunk is empty.
    pub fn last_timestamp(&self) -> Option<i64> {
        (self.num_samples > 0).then_some(self.t)
    }

    /// The last sample appended as `(timestamp, value bits)`; `None` while the chunk is empty.
    pub(crate) fn last_sample(&self) -> Option<(i64, u64)> {
        (self.num_samples > 0).then_some((self.t, self.v))
    }

    /// The chunk's encoded bytes so far, header included.
    ///
    /// The header's sample count is written here and by [`finish`](Self::finish), not by
    /// every append: the header sits at the front of the buffer and the newest bits at its
    /// end, two cache lines for most of a chunk's life, and the head appends to one chunk per
    /// series in a scrape, each mostly out of the CPU's caches by then.
    pub fn bytes(&mut self) -> &[u8] {
        self.write_header();
        self.w.bytes()
    }

    /// Length in bytes of the chunk encoded so far, header included.
    pub fn encoded_len(&self) -> usize {
        self.w.bytes().len()
    }

    /// Iterates the samples appended so far.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter {
            d: Decoder::counted(self.w.bytes(), self.num_samples),
        }
    }

    /// Seals the chunk into one allocation of exactly its bytes (plus the shared count).
    pub fn finish(mut self) -> XorChunk {
        self.write_header();
        XorChunk {
            bytes: Arc::from(self.w.into_bytes()),
        }
    }

    fn write_header(&mut self) {
        self.w.bytes_mut()[..HEADER_LEN].copy_from_slice(&self.num_samples.to_be_bytes());
    }
}

/// A sealed, validated XOR chunk. Cloning shares the bytes: the head's completed chunks are
/// handed to queries and blocks without copying, in one allocation per chunk (no separate
/// shared box around an owned buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XorChunk {
    bytes: Arc<[u8]>,
}

impl XorChunk {
    /// Takes encoded bytes (as returned by [`XorChunk::bytes`] or Prometheus), checking that
    /// they decode completely; see the module doc for what is checked.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::CorruptChunk {
                sample: 0,
                reason: "shorter than the 2-byte header",
            });
        }
        let mut d = Decoder::new(&bytes);
        let corrupt = |d: &Decoder<'_>, reason| Error::CorruptChunk {
            sample: usize::from(d.read),
            reason,
        };
        loop {
            match d.next_sample() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(reason) => return Err(corrupt(&d, reason)),
            }
        }
        d.check_end().map_err(|reason| corrupt(&d, reason))?;
        Ok(XorChunk {
            bytes: Arc::from(bytes),
        })
    }

    /// Takes bytes this process encoded (the head reads them back from its chunk files)
    /// without checking them again; bytes that do not decode end the iteration early.
    pub(crate) fn from_own_bytes(bytes: Vec<u8>) -> Self {
        XorChunk {
            bytes: Arc::from(bytes),
        }
    }

    /// The encoded bytes (header included).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The samples of chunk bytes that may go on after the header's count: a Prometheus head
    /// chunk read while it grows (remote read's streamed answers) has its count written
    /// before its newest bits. Reads the counted samples and ignores what follows; fails
    /// (never panics) when the bytes do not hold them.
    pub fn decode_counted(bytes: &[u8]) -> Result<Vec<(i64, f64)>> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::CorruptChunk {
                sample: 0,
                reason: "shorter than the 2-byte header",
            });
        }
        let mut d = Decoder::new(bytes);
        let mut samples = Vec::with_capacity(usize::from(d.total));
        loop {
            match d.next_sample() {
                Ok(Some((t, v))) => samples.push((t, f64::from_bits(v))),
                Ok(None) => return Ok(samples),
                Err(reason) => {
                    return Err(Error::CorruptChunk {
                        sample: usize::from(d.read),
                        reason,
                    });
                }
            }
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        sample_count(&self.bytes).map_or(0, usize::from)
    }

    /// Iterates the samples in timestamp order.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(&self.bytes)
    }

    /// Whether `other` is this very chunk (a clone of it), not just equal bytes.
    pub(crate) fn is_same(&self, other: &XorChunk) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes)
    }
}

impl<'a> IntoIterator for &'a XorChunk {
    type Item = (i64, f64);
    type IntoIter = XorIter<'a>;

    fn into_iter(self) -> XorIter<'a> {
        self.iter()
    }
}

/// Iterator over a chunk's samples, `(timestamp ms, value)` in timestamp order.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    d: Decoder<'a>,
}

impl<'a> XorIter<'a> {
    /// Iterates chunk bytes written by an [`XorAppender`] or checked by
    /// [`XorChunk::from_bytes`]; other bytes end the iteration where they stop decoding.
    fn new(bytes: &'a [u8]) -> Self {
        XorIter {
            d: Decoder::new(bytes),
        }
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match self.d.next_sample() {
            Ok(sample) => sample.map(|(t, v)| (t, f64::from_bits(v))),
            // Unreachable for validated or self-written bytes; stop rather than panic.
            Err(_) => {
                self.d.read = self.d.total;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.d.total - self.d.read);
        (left, Some(left))
    }
}

/// Decoding state shared by iteration and validation.
#[derive(Clone, Debug)]
struct Decoder<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> Decoder<'a> {
    /// Decodes the number of samples the header counts.
    fn new(bytes: &'a [u8]) -> Self {
        Self::counted(bytes, sample_count(bytes).unwrap_or(0))
    }

    /// Decodes `total` samples whatever the header says (an open chunk's header is written
    /// only when its bytes are taken).
    fn counted(bytes: &'a [u8], total: u16) -> Self {
        Decoder {
            r: BitReader::new(bytes.get(HEADER_LEN..).unwrap_or_default()),
            total,
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// The next sample as `(timestamp, value bits)`, `None` after the last one.
    fn next_sample(&mut self) -> Result<Option<(i64, u64)>, &'static str> {
        if self.read == self.total {
            return Ok(None);
        }
        match self.read {
            0 => {
                let r = &mut self.r;
                self.t = varint::decode_i64(|| r.read_byte()).ok_or("bad first timestamp")?;
                self.v = self.r.read_bits(64).ok_or("truncated first value")?;
            }
            1 => {
                let r = &mut self.r;
                let t_delta = varint::decode_u64(|| r.read_byte()).ok_or("bad timestamp delta")?;
                self.advance(t_delta)?;
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.advance(self.t_delta.wrapping_add(dod as u64))?;
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok(Some((self.t, self.v)))
    }

    fn advance(&mut self, t_delta: u64) -> Result<(), &'static str> {
        if t_delta == 0 {
            return Err("timestamp does not increase");
        }
        self.t = self
            .t
            .checked_add_unsigned(t_delta)
            .ok_or("timestamp overflows i64")?;
        self.t_delta = t_delta;
        Ok(())
    }

    fn read_dod(&mut self) -> Result<i64, &'static str> {
        const TRUNCATED: &str = "truncated timestamp";
        let mut ones = 0;
        while ones < 4 && self.r.read_bit().ok_or(TRUNCATED)? {
            ones += 1;
        }
        let width = match ones {
            0 => return Ok(0),
            1..=3 => DOD_BUCKETS[ones - 1].2,
            _ => return Ok(self.r.read_bits(64).ok_or(TRUNCATED)? as i64),
        };
        let raw = self.r.read_bits(width).ok_or(TRUNCATED)? as i64;
        // Values above 2^(width-1) are negative numbers in two's complement.
        Ok(if raw > 1 << (width - 1) {
            raw - (1 << width)
        } else {
            raw
        })
    }

    fn read_value(&mut self) -> Result<(), &'static str> {
        const TRUNCATED: &str = "truncated value";
        if !self.r.read_bit().ok_or(TRUNCATED)? {
            return Ok(());
        }
        if self.r.read_bit().ok_or(TRUNCATED)? {
            let leading = self.r.read_bits(5).ok_or(TRUNCATED)? as u8;
            let width = match self.r.read_bits(6).ok_or(TRUNCATED)? as u8 {
                0 => 64,
                n => n,
            };
            if leading + width > 64 {
                return Err("value window wider than 64 bits");
            }
            self.leading = leading;
            self.trailing = 64 - leading - width;
        } else if self.leading == NO_WINDOW {
            return Err("value window reused before one was set");
        }
        let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.read_bits(width).ok_or(TRUNCATED)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }

    /// After the last sample: only zero padding up to the byte boundary may remain.
    fn check_end(&mut self) -> Result<(), &'static str> {
        let rest = self.r.remaining();
        if rest >= 8 {
            return Err("bytes after the last sample");
        }
        if self.r.read_bits(rest as u32) != Some(0) {
            return Err("non-zero padding after the last sample");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Prometheus's staleness marker.
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn counted_samples_decode_with_a_growing_tail_after_them() {
        let mut app = XorAppender::new();
        for t in 0..30 {
            app.append(1_000 * t, t as f64 * 1.5).unwrap();
        }
        let mut bytes = app.bytes().to_vec();
        // The header says 25: the rest is what a writer appended after the count was read.
        bytes[..2].copy_from_slice(&25u16.to_be_bytes());
        assert!(XorChunk::from_bytes(bytes.clone()).is_err());
        let samples = XorChunk::decode_counted(&bytes).unwrap();
        assert_eq!(samples.len(), 25);
        assert_eq!(samples[24], (24_000, 36.0));
        bytes[..2].copy_from_slice(&40u16.to_be_bytes());
        assert!(XorChunk::decode_counted(&bytes).is_err());
        assert!(XorChunk::decode_counted(&[1]).is_err());
    }

    fn encode(samples: &[(i64, u64)]) -> XorAppender {
        let mut app = XorAppender::new();
        for &(t, v) in samples {
            app.append(t, f64::from_bits(v)).unwrap();
        }
        app
    }

    fn decode(iter: XorIter<'_>) -> Vec<(i64, u64)> {
        iter.map(|(t, v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn golden_bytes_follow_prometheus_layout() {
        let mut app = encode(&[
            (1000, 1f64.to_bits()),
            (2000, 1f64.to_bits()),
            (3000, 2f64.to_bits()),
            (4001, 2f64.to_bits()),
        ]);
        #[rustfmt::skip]
        let expected = [
            0x00, 0x04,                                     // 4 samples
            0xd0, 0x0f,                                     // t0 = 1000 (zig-zag varint)
            0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // v0 = 1.0
            0xe8, 0x07,                                     // t1 - t0 = 1000 (uvarint)
            // v1 same: 0 | dod 0: 0 | v2: 1 1 00001 001011 11111111111 (xor 0x7ff << 52)
            // | dod 1: 10 00000000000001 | v3 same: 0 | zero padding
            0x30, 0x97, 0xff, 0xe0, 0x00, 0x40,
        ];
        assert_eq!(app.bytes(), expected);
        let chunk = XorChunk::from_bytes(expected.to_vec()).unwrap();
        assert_eq!(chunk.num_samples(), 4);
        assert_eq!(decode(chunk.iter()), decode(app.iter()));
    }

    #[test]
    fn empty_chunk() {
        let mut app = XorAppender::new();
        assert_eq!(app.bytes(), [0, 0]);
        assert_eq!(app.iter().next(), None);
        let chunk = app.finish();
        assert_eq!(XorChunk::from_bytes(vec![0, 0]).unwrap(), chunk);
        assert_eq!(chunk.num_samples(), 0);
        assert_eq!(chunk.iter().count(), 0);
    }

    #[test]
    fn rejects_out_of_order_and_duplicate_timestamps_unchanged() {
        let mut app = encode(&[(10, 0), (20, 0)]);
        let before = app.bytes().to_vec();
        for t in [20, 19, i64::MIN] {
            let err = app.append(t, 1.0).unwrap_err();
            assert!(
                matches!(err, Error::OutOfOrderSample { timestamp, last: 20 } if timestamp == t)
            );
        }
        assert_eq!(app.bytes(), before);
        app.append(21, 1.0).unwrap();
        assert_eq!(decode(app.iter()), [(10, 0), (20, 0), (21, 1f64.to_bits())]);
    }

    #[test]
    fn full_chunk_is_refused() {
        let mut app = XorAppender::new();
        for t in 0..MAX_SAMPLES as i64 {
            app.append(t * 15_000, 1.0).unwrap();
        }
        assert!(matches!(
            app.append(i64::MAX, 1.0),
            Err(Error::ChunkFull { max: MAX_SAMPLES })
        ));
        let chunk = XorChunk::from_bytes(app.finish().bytes().to_vec()).unwrap();
        assert_eq!(chunk.num_samples(), MAX_SAMPLES);
        assert_eq!(chunk.iter().size_hint(), (MAX_SAMPLES, Some(MAX_SAMPLES)));
    }

    #[test]
    fn extreme_timestamps_and_special_values() {
        let samples = [
            (i64::MIN, STALE_NAN),
            (i64::MIN + 1, f64::NAN.to_bits()),
            (-1, (-0f64).to_bits()),
            (0, f64::INFINITY.to_bits()),
            (i64::MAX - 1, f64::NEG_INFINITY.to_bits()),
            (i64::MAX, 0x7ff8_dead_beef_0001),
        ];
        let mut app = encode(&samples);
        assert_eq!(decode(app.iter()), samples);
        let chunk = XorChunk::from_bytes(app.bytes().to_vec()).unwrap();
        assert_eq!(decode(chunk.iter()), samples);
    }

    #[test]
    fn delta_of_delta_bucket_boundaries() {
        let mut dods = vec![0, 1, -1];
        for width in [14, 17, 20] {
            let half = 1i64 << (width - 1);
            dods.extend([half, half + 1, -(half - 1), -half]);
        }
        let (mut t, mut delta) = (0i64, 10_000_000i64);
        let mut samples = vec![(t, 0)];
        for dod in dods {
            // Each delta-of-delta followed by its opposite, so the delta stays positive.
            for d in [dod, -dod] {
                delta += d;
                t += delta;
                samples.push((t, 0));
            }
        }
        let app = encode(&samples);
        assert_eq!(decode(app.iter()), samples);
    }

    #[test]
    fn regular_scrapes_cost_two_bits_per_sample() {
        let samples: Vec<_> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42f64.to_bits()))
            .collect();
        let mut app = encode(&samples);
        // Header, t0 (6-byte varint), v0, t1 delta (2-byte uvarint), v1 unchanged (1 bit),
        // then 2 bits per sample (dod 0, value unchanged): 0.4 bytes per sample.
        assert_eq!(
            app.bytes().len(),
            2 + 6 + 8 + 2 + (1 + 118 * 2usize).div_ceil(8)
        );
    }

    #[test]
    fn every_truncation_and_trailing_garbage_is_an_error() {
        let samples: Vec<_> = (0..50)
            .map(|i| (i * 1000 + i * i, (i as f64 * 1.5).to_bits()))
            .collect();
        let bytes = encode(&samples).bytes().to_vec();
        for len in 0..bytes.len() {
            assert!(
                XorChunk::from_bytes(bytes[..len].to_vec()).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            XorChunk::from_bytes(extra),
            Err(Error::CorruptChunk {
                sample: 50,
                reason: "bytes after the last sample"
            })
        ));
        let mut padded = bytes.clone();
        *padded.last_mut().unwrap() |= 1;
        assert!(XorChunk::from_bytes(padded).is_err());
    }

    #[test]
    fn rejects_window_reuse_before_a_window() {
        // Two samples; the second value claims "changed, reuse window" (bits 1 0).
        let mut bytes = encode(&[(0, 0), (1, 0)]).bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] = 0b1000_0000;
        assert!(matches!(
            XorChunk::from_bytes(bytes),
            Err(Error::CorruptChunk {
                sample: 1,
                reason: "value window reused before one was set"
            })
        ));
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        let start = prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            (i64::MAX - 1_000_000)..=i64::MAX,
            -1_000_000i64..1_000_000,
            1_600_000_000_000i64..1_800_000_000_000,
        ];
        let gap = prop_oneof![
            4 => Just(15_000u64),
            4 => 14_000u64..16_000,
            2 => 1u64..10,
            2 => 1u64..(1 << 21),
            1 => 1u64..(1 << 40),
            1 => 1u64..=u64::MAX,
        ];
        (start, vec(gap, 0..200)).prop_map(|(start, gaps)| {
            let mut t = start;
            let mut out = vec![t];
            for gap in gaps {
                // Skip gaps that would pass i64::MAX; the rest stay strictly increasing.
                if let Some(next) = t.checked_add_unsigned(gap) {
                    t = next;
                    out.push(t);
                }
            }
            out
        })
    }

    fn value_bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => any::<u64>(),
            2 => prop::sample::select(vec![
                STALE_NAN,
                f64::NAN.to_bits(),
                f64::INFINITY.to_bits(),
                f64::NEG_INFINITY.to_bits(),
                (-0f64).to_bits(),
                0,
                1,
                u64::MAX,
            ]),
            3 => (0u32..8).prop_map(|x| f64::from(x).to_bits()),
            2 => (0f64..1e6).prop_map(f64::to_bits),
        ]
    }

    fn samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
        timestamps().prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), vec(value_bits(), n))
                .prop_map(|(ts, vs)| ts.into_iter().zip(vs).collect::<Vec<_>>())
        })
    }

    proptest! {
        #[test]
        fn round_trip_is_bit_exact(samples in samples()) {
            let mut app = encode(&samples);
            prop_assert_eq!(app.num_samples(), samples.len());
            prop_assert_eq!(decode(app.iter()), samples.clone());
            let chunk = XorChunk::from_bytes(app.bytes().to_vec()).unwrap();
            prop_assert_eq!(chunk.num_samples(), samples.len());
            prop_assert_eq!(decode(chunk.iter()), samples);
            prop_assert_eq!(chunk, app.finish());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
            if let Ok(chunk) = XorChunk::from_bytes(bytes) {
                let decoded: Vec<_> = chunk.iter().collect();
                prop_assert_eq!(decoded.len(), chunk.num_samples());
                prop_assert!(decoded.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }

        #[test]
        fn bit_flips_never_panic(samples in samples(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = encode(&samples).bytes().to_vec();
            let i = flip.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(chunk) = XorChunk::from_bytes(bytes) {
                let decoded: Vec<_> = chunk.iter().collect();
                prop_assert_eq!(decoded.len(), chunk.num_samples());
                prop_assert!(decoded.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
}
