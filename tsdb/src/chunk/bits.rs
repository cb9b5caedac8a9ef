//! Bit-granular writer and reader over bytes, for the XOR chunk encoding.
//!
//! Follows Prometheus's `bstream` (`tsdb/chunkenc/bstream.go`): bits are packed most
//! significant first within each byte, multi-bit values most significant bit first, and the
//! unused low bits of the last byte are zero.
//!
//! Edge cases decided: widths are 0..=64 bits (wider is a caller bug, caught by a debug
//! assertion); the reader never panics: reading past the end returns `None` and consumes
//! nothing.

/// Appends bits to a growing byte vector.
#[derive(Clone, Debug)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Unused (low) bits in the last byte, 0..=7.
    free: u32,
}

impl BitWriter {
    /// Continues after `bytes`, whose last byte is treated as full.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        BitWriter { bytes, free: 0 }
    }

    /// Appends one bit.
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends the low `n` bits of `value` (`n` ≤ 64), most significant first: the free bits
    /// of the last byte first, then whole bytes at once (XOR encoding writes every sample
    /// here, several fields each).
    pub(crate) fn write_bits(&mut self, value: u64, mut n: u32) {
        debug_assert!(n <= 64, "write_bits width {n}");
        if n == 0 {
            return;
        }
        if self.free > 0 {
            let take = n.min(self.free);
            let part = (value >> (n - take)) & ((1 << take) - 1);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (part as u8) << (self.free - take);
            }
            self.free -= take;
            n -= take;
            if n == 0 {
                return;
            }
        }
        // Byte-aligned now: the low `n` bits, moved to the top, are the next bytes.
        let aligned = (value << (64 - n)).to_be_bytes();
        let count = n.div_ceil(8) as usize;
        self.grow_for(count);
        self.bytes.extend_from_slice(&aligned[..count]);
        self.free = count as u32 * 8 - n;
    }

    /// Makes room for `count` more bytes, growing a full buffer by a quarter (at least 16
    /// bytes) instead of doubling it: the head holds one open chunk per series, and a doubled
    /// buffer leaves up to half of it unused until the chunk is sealed — about 250 bytes a
    /// series at the end of a 120-sample chunk.
    fn grow_for(&mut self, count: usize) {
        let capacity = self.bytes.capacity();
        if self.bytes.len() + count > capacity {
            self.bytes.reserve_exact((capacity / 4).max(16).max(count));
        }
    }

    /// Appends 8 bits.
    pub(crate) fn write_byte(&mut self, byte: u8) {
        self.write_bits(u64::from(byte), 8);
    }

    /// The bytes written so far (the last one possibly partial, zero-padded).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Mutable access to the bytes, for patching a fixed-size header in place.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Gives the bytes back.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads bits from a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position of the next bit, counted from the first byte's most significant bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts at the first bit of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// Bits left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_mul(8).saturating_sub(self.pos)
    }

    /// Reads one bit.
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// Reads `n` bits (`n` ≤ 64) as the low bits of a `u64`.
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64, "read_bits width {n}");
        if (n as usize) > self.remaining() {
            return None;
        }
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let avail = 8 - (self.pos % 8) as u32;
            let take = left.min(avail);
            let part = (u64::from(byte) >> (avail - take)) & ((1 << take) - 1);
            out = (out << take) | part;
            self.pos += take as usize;
            left -= take;
        }
        Some(out)
    }

    /// Reads 8 bits.
    pub(crate) fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packs_most_significant_bit_first() {
        let mut w = BitWriter::new(vec![0xaa]);
        w.write_bit(true);
        w.write_bits(0b01, 2);
        w.write_bits(0xfff, 7); // only the low 7 bits count
        assert_eq!(w.bytes(), [0xaa, 0b1011_1111, 0b1100_0000]);
        let mut r = BitReader::new(&w.bytes()[1..]);
        assert_eq!(r.read_bits(3), Some(0b101));
        assert_eq!(r.read_bits(7), Some(0x7f));
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.read_bits(7), None);
        assert_eq!(r.read_bits(6), Some(0));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.read_byte(), None);
    }

    proptest! {
        #[test]
        fn round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..64)) {
            let mut w = BitWriter::new(Vec::new());
            for &(v, n) in &fields {
                w.write_bits(v, n);
            }
            let total: u32 = fields.iter().map(|&(_, n)| n).sum();
            let bytes = w.into_bytes();
            prop_assert_eq!(bytes.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
                prop_assert_eq!(r.read_bits(n), Some(v & mask));
            }
            prop_assert!(r.remaining() < 8);
            prop_assert_eq!(r.read_bits(r.remaining() as u32), Some(0));
        }
    }
}
