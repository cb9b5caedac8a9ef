//! What the LogQL engine reads through: a stream reader, so that the engine never names a
//! chunk and tests or benchmarks can feed it from memory. [`LogStore`] implements it.

use sightline_core::matcher::Matcher;

use crate::Error;
use crate::store::{Direction, EntryPage, LogStore, StreamRef};

/// Texts a line must contain to pass a query's leading line filters: every inner list must
/// have one member in the line. A reader with a line index may use them to skip chunks whose
/// lines cannot match; the engine filters every line itself regardless.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHints {
    /// Conjunction of disjunctions of substrings.
    pub required: Vec<Vec<String>>,
}

/// Streams and their entries, as the engine needs them.
pub trait StreamReader: Sync {
    /// Streams matching every matcher with data in `[start_ns, end_ns)`, sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamRef>, Error>;

    /// A stream's entries in `[start_ns, end_ns)` in `direction`, at most `limit` (0 = all).
    /// `hints` may be used to skip chunks that cannot hold a matching line (see
    /// [`LineHints`]); entries that are returned anyway are filtered by the engine.
    fn read(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        hints: &LineHints,
    ) -> Result<EntryPage, Error>;
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

    fn read(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        hints: &LineHints,
    ) -> Result<EntryPage, Error> {
        // The line index answers conjunctions: a hint with alternatives (an `or` chain) is
        // left to the engine's own filtering.
        let literals: Vec<&str> = hints
            .required
            .iter()
            .filter_map(|any_of| match any_of.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            })
            .collect();
        self.entries_containing(stream, start_ns, end_ns, direction, limit, &literals)
    }
}
