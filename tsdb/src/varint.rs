//! Variable-length integers, byte-compatible with Go's `encoding/binary` `PutUvarint` /
//! `PutVarint` (LEB128; signed values zig-zag encoded), as used by Prometheus's XOR chunks.
//!
//! Spec: <https://pkg.go.dev/encoding/binary#PutUvarint>.
//!
//! Edge cases decided: a decoder accepts at most [`MAX_LEN`] bytes and rejects a tenth byte
//! greater than 1 (it would overflow 64 bits), exactly as Go's `ReadUvarint`; non-minimal
//! encodings (e.g. `0x80 0x00`) are accepted, as in Go. Bytes come from and go to closures so
//! the same code serves byte slices (WAL) and the bit stream of a chunk.

/// The longest encoding of a 64-bit value.
pub(crate) const MAX_LEN: usize = 10;

/// Emits the unsigned LEB128 encoding of `x`, least significant group first.
pub(crate) fn encode_u64(mut x: u64, mut emit: impl FnMut(u8)) {
    while x >= 0x80 {
        emit((x as u8) | 0x80);
        x >>= 7;
    }
    emit(x as u8);
}

/// Emits the zig-zag LEB128 encoding of `x` (small magnitudes, either sign, stay short).
pub(crate) fn encode_i64(x: i64, emit: impl FnMut(u8)) {
    encode_u64(((x << 1) ^ (x >> 63)) as u64, emit);
}

/// Decodes an unsigned value, pulling bytes from `next`; `None` when `next` runs dry or the
/// encoding is longer than 64 bits.
#[inline]
pub(crate) fn decode_u64(mut next: impl FnMut() -> Option<u8>) -> Option<u64> {
    let mut x = 0u64;
    for i in 0..MAX_LEN {
        let b = next()?;
        if b < 0x80 {
            if i == MAX_LEN - 1 && b > 1 {
                return None;
            }
            return Some(x | (u64::from(b) << (7 * i)));
        }
        x |= u64::from(b & 0x7f) << (7 * i);
    }
    None
}

/// Decodes a zig-zag signed value; see [`decode_u64`].
pub(crate) fn decode_i64(next: impl FnMut() -> Option<u8>) -> Option<i64> {
    decode_u64(next).map(zigzag)
}

/// The signed value of a zig-zag encoded one.
#[inline]
pub(crate) fn zigzag(ux: u64) -> i64 {
    ((ux >> 1) as i64) ^ -((ux & 1) as i64)
}

/// Appends the encoding of `x` to `out`.
pub(crate) fn put_u64(out: &mut Vec<u8>, x: u64) {
    encode_u64(x, |b| out.push(b));
}

/// Appends the zig-zag encoding of `x` to `out`.
pub(crate) fn put_i64(out: &mut Vec<u8>, x: i64) {
    encode_i64(x, |b| out.push(b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc_u(x: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_u64(x, |b| out.push(b));
        out
    }

    fn enc_i(x: i64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_i64(x, |b| out.push(b));
        out
    }

    fn dec<T>(bytes: &[u8], f: impl Fn(&mut dyn FnMut() -> Option<u8>) -> Option<T>) -> Option<T> {
        let mut it = bytes.iter().copied();
        f(&mut || it.next())
    }

    #[test]
    fn matches_go_encoding() {
        // Values checked against Go's binary.PutUvarint / PutVarint.
        assert_eq!(enc_u(0), [0x00]);
        assert_eq!(enc_u(300), [0xac, 0x02]);
        assert_eq!(
            enc_u(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(enc_i(-1), [0x01]);
        assert_eq!(enc_i(1), [0x02]);
        assert_eq!(enc_i(1000), [0xd0, 0x0f]);
        assert_eq!(enc_i(i64::MIN).len(), MAX_LEN);
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(dec(&overflow, |n| decode_u64(n)), None);
        assert_eq!(dec(&[0x80; 11], |n| decode_u64(n)), None);
        assert_eq!(dec(&[0x80, 0x80], |n| decode_u64(n)), None);
        assert_eq!(dec(&[], |n| decode_u64(n)), None);
        assert_eq!(dec(&[0x80, 0x00], |n| decode_u64(n)), Some(0));
    }

    proptest! {
        #[test]
        fn unsigned_round_trip(x: u64) {
            let bytes = enc_u(x);
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(dec(&bytes, |n| decode_u64(n)), Some(x));
        }

        #[test]
        fn signed_round_trip(x: i64) {
            let bytes = enc_i(x);
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(dec(&bytes, |n| decode_i64(n)), Some(x));
        }

        #[test]
        fn put_appends_the_encoding(a: i64, b: u64) {
            let mut out = Vec::new();
            put_i64(&mut out, a);
            put_u64(&mut out, b);
            let mut expected = enc_i(a);
            expected.extend(enc_u(b));
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = dec(&bytes, |n| decode_u64(n));
            let _ = dec(&bytes, |n| decode_i64(n));
        }
    }
}
