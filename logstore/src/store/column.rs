//! Chunk columns compressed by the store (zstd) before they go to RocksDB.
//!
//! RocksDB compressing them itself would hold them raw in its memtables (a write buffer of
//! raw lines per day being written) and copy each value of up to ~1.5 MB several times over
//! while it builds and compresses a table block at a flush; packed here, the memtables and
//! the flush buffers hold the compressed bytes, about a seventh of that. The day column
//! families do not compress again (see `day_options`).
//!
//! A packed column is one zstd frame that records its content size, so a read allocates
//! exactly what the column takes. The frame has no checksum of its own: RocksDB's block
//! checksums already guard the stored bytes.

use zstd_safe::CCtx;

use super::codec::Corrupt;
use crate::error::Error;

/// The most a packed column may unpack to, so that a damaged frame header cannot make a
/// read allocate more: a column holds a chunk's target size plus at most one entry, and an
/// entry is smaller than the WAL record it came in.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 2 * super::wal::MAX_RECORD_BYTES as u64;

/// Packs columns at one zstd level, reusing its compression context and output buffer.
pub(crate) struct Packer {
    context: CCtx<'static>,
    level: i32,
    /// Output space, as large as the largest column yet needed; only grown, so it is zeroed
    /// once, not at every cut.
    out: Vec<u8>,
}

impl Packer {
    /// A packer at zstd `level` (1 fast … 19 small).
    pub(crate) fn new(level: i32) -> Packer {
        Packer {
            context: CCtx::create(),
            level,
            out: Vec::new(),
        }
    }

    /// `column` compressed (valid until the next call).
    pub(crate) fn pack(&mut self, column: &[u8]) -> Result<&[u8], Error> {
        let bound = zstd_safe::compress_bound(column.len());
        if self.out.len() < bound {
            self.out.resize(bound, 0);
        }
        match self.context.compress(&mut self.out[..], column, self.level) {
            Ok(written) => Ok(&self.out[..written]),
            Err(code) => Err(Error::Pack {
                reason: zstd_safe::get_error_name(code),
            }),
        }
    }
}

/// The column a [`Packer`] packed; with `expected_len`, it must be that long.
pub(crate) fn unpack(
    packed: &[u8],
    expected_len: Option<usize>,
    what: &'static str,
) -> Result<Vec<u8>, Corrupt> {
    let corrupt = || Corrupt { what };
    let len = zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .filter(|len| *len <= MAX_UNPACKED_BYTES)
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(corrupt)?;
    if expected_len.is_some_and(|expected| expected != len) {
        return Err(corrupt());
    }
    let mut column = vec![0; len];
    match zstd_safe::decompress(&mut column[..], packed) {
        Ok(written) if written == len => Ok(column),
        _ => Err(corrupt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_and_damage_is_an_error() {
        let mut packer = Packer::new(1);
        let column: Vec<u8> = b"level=info msg=\"GET /api 200\"\n".repeat(500);
        let packed = packer.pack(&column).unwrap().to_vec();
        assert!(packed.len() < column.len() / 20, "{} bytes", packed.len());
        assert_eq!(unpack(&packed, None, "test").unwrap(), column);
        assert_eq!(unpack(&packed, Some(column.len()), "test").unwrap(), column);
        // The packer is reused; an empty column packs too.
        let empty = packer.pack(b"").unwrap().to_vec();
        assert_eq!(unpack(&empty, Some(0), "test").unwrap(), b"");
        assert_eq!(packer.pack(&column).unwrap(), packed);
        let what = Corrupt { what: "test" };
        assert_eq!(
            unpack(&packed, Some(column.len() + 1), "test"),
            Err(what.clone())
        );
        assert_eq!(
            unpack(&packed[..packed.len() - 3], None, "test"),
            Err(what.clone())
        );
        assert_eq!(unpack(b"not zstd", None, "test"), Err(what.clone()));
        assert_eq!(unpack(b"", None, "test"), Err(what));
    }
}
