//! The chunk directory: every stored chunk's key and time range, in memory.
//!
//! Reads list a stream's chunks from here instead of iterating RocksDB. Day column families
//! are never compacted, so a day has one table file per flush (hundreds on a busy day), and
//! an iterator seeks in each of them, decompressing a block of each just to find where the
//! stream's keys are not — the lines of other streams' chunks, ~1.5 MB each. The directory
//! is a few dozen bytes per chunk, loaded from the keys at open and kept with the writes
//! (under the store's lock, so a listing sees a cut head either as the head or as its chunk).

use std::collections::HashMap;

use rocksdb::{Direction as ScanDirection, IteratorMode, ReadOptions};

use super::{Db, corrupt, keys, rocks};
use crate::error::Error;

/// A stored chunk, as a read finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredChunk {
    /// Its first entry's timestamp.
    pub min_ts: i64,
    /// Its last entry's timestamp.
    pub max_ts: i64,
    /// Its entry-column key (or its one value's), which tells its [layout](keys::Layout).
    pub key: Box<[u8]>,
}

/// Per stream and day, the stored chunks by first timestamp (key order without the layout
/// byte, so chunks of two layouts in one day, written before and after an upgrade, sort
/// together).
#[derive(Debug, Default)]
pub(crate) struct Directory {
    chunks: HashMap<(u64, i32), Vec<StoredChunk>>,
}

impl Directory {
    /// Reads the chunk keys of `days` (their column families must be open).
    pub(crate) fn load(db: &Db, days: impl IntoIterator<Item = i32>) -> Result<Directory, Error> {
        let mut directory = Directory::default();
        for day in days {
            let name = keys::day_cf(day);
            let Some(cf) = db.cf_handle(&name) else {
                continue;
            };
            for (prefix, _) in keys::Layout::ALL {
                let mut options = ReadOptions::default();
                options.fill_cache(false);
                // Without a bound, each table file's iterator steps past its last key of the
                // prefix into the next block (a line column, up to a chunk's size) and holds it
                // until the listing ends: a day's files together held hundreds of MB at open.
                options.set_iterate_upper_bound([prefix + 1]);
                let iter = db.iterator_cf_opt(
                    &cf,
                    options,
                    IteratorMode::From(&[prefix], ScanDirection::Forward),
                );
                for item in iter {
                    let (key, _) = item.map_err(rocks(format!("listing the chunks of {name}")))?;
                    if key.first() != Some(&prefix) {
                        break;
                    }
                    let (stream, min_ts, max_ts) = keys::parse_chunk_key(&key)
                        .ok_or_else(|| corrupt("chunk key", name.clone()))?;
                    directory.add(
                        stream,
                        day,
                        StoredChunk {
                            min_ts,
                            max_ts,
                            key,
                        },
                    );
                }
            }
        }
        Ok(directory)
    }

    /// Records a chunk just written.
    pub(crate) fn add(&mut self, stream: u64, day: i32, chunk: StoredChunk) {
        let chunks = self.chunks.entry((stream, day)).or_default();
        let at = chunks.partition_point(|c| c.key.get(1..) <= chunk.key.get(1..));
        chunks.insert(at, chunk);
    }

    /// A stream's chunks of a day, by first timestamp.
    pub(crate) fn chunks(&self, stream: u64, day: i32) -> &[StoredChunk] {
        self.chunks.get(&(stream, day)).map_or(&[], Vec::as_slice)
    }

    /// The streams with chunks in a day of `days`.
    pub(crate) fn streams_in<'a>(
        &'a self,
        days: &'a std::ops::RangeInclusive<i32>,
    ) -> impl Iterator<Item = u64> + 'a {
        self.chunks
            .keys()
            .filter(move |(_, day)| days.contains(day))
            .map(|(stream, _)| *stream)
    }

    /// Forgets a dropped day.
    pub(crate) fn drop_day(&mut self, day: i32) {
        self.chunks.retain(|(_, d), _| *d != day);
    }
}
