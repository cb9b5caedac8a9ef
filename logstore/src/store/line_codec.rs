//! The line column's codec as a cut packs and a read unpacks it, reachable from
//! `benches/line_codec.rs`, which measures the split and the join against zstd over the plain
//! lines (the store before the split). Not an API: the store's own callers use
//! [`line_template`] and [`column`] directly.

use super::{column, line_template};
use crate::error::Error;

const PLACE: &str = "the line codec bench";

/// Packs a chunk's lines, split ([`LineCodec::pack_split`]) or plain
/// ([`LineCodec::pack_plain`]), keeping its buffers and zstd context between chunks.
pub struct LineCodec {
    splitter: line_template::LineSplitter,
    packer: column::Packer,
    plain: Vec<u8>,
}

impl LineCodec {
    /// A codec packing at zstd `level`, as [`StoreOptions::compression_level`](super::StoreOptions).
    pub fn new(level: i32) -> LineCodec {
        LineCodec {
            splitter: line_template::LineSplitter::default(),
            packer: column::Packer::new(level),
            plain: Vec::new(),
        }
    }

    /// Writes `entries` (timestamp in ns, line) to `out` as a cut writes a chunk's lines.
    pub fn pack_split<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (i64, &'a [u8])>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.splitter.clear();
        for (timestamp_ns, line) in entries {
            self.splitter.push(timestamp_ns, line);
        }
        out.clear();
        self.splitter.pack(&mut self.packer, out)
    }

    /// Writes the lines of `entries` back to back, packed with zstd alone, to `out`.
    pub fn pack_plain<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (i64, &'a [u8])>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.plain.clear();
        for (_, line) in entries {
            self.plain.extend_from_slice(line);
        }
        out.clear();
        out.extend_from_slice(self.packer.pack(&self.plain)?);
        Ok(())
    }
}

/// The lines [`LineCodec::pack_split`] wrote to `stored`, back to back (`lines_len` bytes);
/// `timestamps` are every entry's, in order.
pub fn unpack_split(stored: &[u8], timestamps: &[i64], lines_len: usize) -> Result<Vec<u8>, Error> {
    line_template::unpack(stored, timestamps, lines_len, line_template::Version::V2)
        .map_err(|e| super::corrupt(e.what, PLACE))
}

/// The lines [`LineCodec::pack_plain`] wrote to `stored` (`lines_len` bytes).
pub fn unpack_plain(stored: &[u8], lines_len: usize) -> Result<Vec<u8>, Error> {
    column::unpack(stored, Some(lines_len), "chunk line column")
        .map_err(|e| super::corrupt(e.what, PLACE))
}
