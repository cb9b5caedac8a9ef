//! What the LogQL engine reads through: a stream reader, so that the engine never names a
//! key or a file. [`LogStore`] implements it.

use sightline_core::matcher::Matcher;

use crate::Error;
use crate::store::{ChunkEntries, ChunkList, ChunkRef, LogStore, Required, StreamRef};

/// What a line must contain to pass a query's pipeline, for one stream: every requirement
/// met. A reader with a line index may use them to skip chunks whose lines cannot match; the
/// engine filters every line itself regardless.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHints {
    /// Every requirement must be met.
    pub required: Vec<Required>,
}

/// Streams and their entries, as the engine needs them: a stream is read piece by piece
/// (chunks, and the head), each piece listed with its time range before any is read, so
/// the engine can read pieces in parallel, in time order, or stop early.
pub trait StreamReader: Sync {
    /// Streams matching every matcher with data in `[start_ns, end_ns)`, sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamRef>, Error>;

    /// A stream's pieces with entries in `[start_ns, end_ns)`. `hints` may be used to leave
    /// out pieces that cannot hold a matching line (see [`LineHints`]); entries that are
    /// read anyway are filtered by the engine.
    fn chunks(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        hints: &LineHints,
    ) -> Result<ChunkList, Error>;

    /// A listed piece's entries in the listing's range, oldest first; lines only
    /// `with_lines`.
    fn read_chunk(&self, chunk: ChunkRef, with_lines: bool) -> Result<ChunkEntries<'_>, Error>;
}

impl StreamReader for LogStore {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamRef>, Error> {
        self.streams(matchers, start_ns, end_ns)
    }

    fn chunks(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        hints: &LineHints,
    ) -> Result<ChunkList, Error> {
        LogStore::chunks(self, stream, start_ns, end_ns, &hints.required)
    }

    fn read_chunk(&self, chunk: ChunkRef, with_lines: bool) -> Result<ChunkEntries<'_>, Error> {
        LogStore::read_chunk(self, chunk, with_lines)
    }
}
