//! A head: one stream's entries of one UTC day that are not in a chunk yet, as encoded
//! bodies ([`codec::put_entry_body`]) in arrival order.
//!
//! Bodies live in blocks, never straddling two: a head's first block has
//! [`FIRST_BLOCK_BYTES`], each next one twice as many up to [`BLOCK_BYTES`] (a body that
//! does not fit one gets a block of its own size). So a head grows without copying what it
//! holds, a quiet stream holds one small block, and the allocator sees blocks of five sizes
//! instead of buffers of every size up to a chunk: growing one buffer per head left most of
//! the store's resident memory as free space the allocator could not hand back.

use std::time::Instant;

use super::codec;
use crate::push::Entry;

/// Bytes of a head's first block.
const FIRST_BLOCK_BYTES: usize = 4 << 10;

/// Bytes of a block from a head's fifth on (the first's doubled four times).
const BLOCK_BYTES: usize = 64 << 10;

/// Where an entry's body is, and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HeadEntry {
    /// The entry's timestamp (first, so that entries sort by time, then arrival).
    pub(super) timestamp_ns: i64,
    block: u32,
    offset: u32,
    len: u32,
}

/// One stream's unpersisted entries of one day.
pub(super) struct Head {
    blocks: Vec<Vec<u8>>,
    entries: Vec<HeadEntry>,
    /// Bytes of the bodies.
    bytes: usize,
    pub(super) min_ts: i64,
    pub(super) max_ts: i64,
    /// WAL sequence of the first and the last record with an entry here.
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) created: Instant,
    pub(super) last_append: Instant,
}

impl Head {
    /// An empty head opened by WAL record `seq` at `now`.
    pub(super) fn new(seq: u64, now: Instant) -> Head {
        Head {
            blocks: Vec::new(),
            entries: Vec::new(),
            bytes: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            first_seq: seq,
            last_seq: seq,
            created: now,
            last_append: now,
        }
    }

    /// Appends `entry` from WAL record `seq`; returns the bytes its body takes.
    pub(super) fn append(&mut self, entry: &Entry, seq: u64, now: Instant) -> usize {
        // The body: the line and metadata, each length a varint of at most 10 bytes.
        let most = entry.size() + 10 * (2 + 2 * entry.metadata.len());
        let fits = self
            .blocks
            .last()
            .is_some_and(|block| block.capacity() - block.len() >= most);
        if !fits {
            let size = (FIRST_BLOCK_BYTES << self.blocks.len().min(4)).min(BLOCK_BYTES);
            self.blocks.push(Vec::with_capacity(size.max(most)));
        }
        let block_index = self.blocks.len() - 1;
        let block = &mut self.blocks[block_index];
        let offset = block.len();
        codec::put_entry_body(block, entry);
        let len = block.len() - offset;
        if self.entries.len() == self.entries.capacity() {
            // By a quarter, not doubling: spare capacity is resident memory.
            self.entries.reserve_exact((self.entries.len() / 4).max(64));
        }
        self.entries.push(HeadEntry {
            timestamp_ns: entry.timestamp_ns,
            block: block_index as u32,
            offset: offset as u32,
            len: len as u32,
        });
        self.bytes += len;
        self.min_ts = self.min_ts.min(entry.timestamp_ns);
        self.max_ts = self.max_ts.max(entry.timestamp_ns);
        self.last_seq = seq;
        self.last_append = now;
        len
    }

    /// Bytes of the bodies held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The body of `entry`, one of this head's.
    pub(super) fn body(&self, entry: &HeadEntry) -> &[u8] {
        let start = entry.offset as usize;
        &self.blocks[entry.block as usize][start..start + entry.len as usize]
    }

    /// Sorts the entries by timestamp, then arrival (as a chunk holds them).
    pub(super) fn sort(&mut self) {
        self.entries.sort_unstable();
    }

    /// The entries, in arrival order or as [`Head::sort`] left them.
    pub(super) fn entries(&self) -> &[HeadEntry] {
        &self.entries
    }

    /// The entries with timestamps in `[start_ns, end_ns)`, sorted by timestamp, then
    /// arrival.
    pub(super) fn sorted_within(&self, start_ns: i64, end_ns: i64) -> Vec<HeadEntry> {
        let mut within: Vec<HeadEntry> = self
            .entries
            .iter()
            .filter(|entry| entry.timestamp_ns >= start_ns && entry.timestamp_ns < end_ns)
            .copied()
            .collect();
        within.sort_unstable();
        within
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp_ns: i64, line: String) -> Entry {
        Entry {
            timestamp_ns,
            line,
            metadata: Vec::new(),
        }
    }

    #[test]
    fn bodies_stay_whole_across_blocks_and_sort_by_time_then_arrival() {
        let now = Instant::now();
        let mut head = Head::new(1, now);
        let big = "x".repeat(BLOCK_BYTES * 2);
        let lines: Vec<(i64, String)> = (0..2000)
            .map(|i| {
                (
                    i64::from(i % 7),
                    format!("line {i} {}", "y".repeat(i as usize % 90)),
                )
            })
            .chain([(3, big.clone()), (1, "after the big one".to_owned())])
            .collect();
        let mut bytes = 0;
        for (ts, line) in &lines {
            bytes += head.append(&entry(*ts, line.clone()), 2, now);
        }
        assert_eq!(head.bytes(), bytes);
        let sizes: Vec<usize> = head.blocks.iter().map(Vec::capacity).collect();
        assert_eq!(sizes[..5], [4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10]);
        assert!(sizes.contains(&(big.len() + 10 * 2)), "{sizes:?}");
        assert_eq!((head.min_ts, head.max_ts, head.last_seq), (0, 6, 2));
        let mut expected: Vec<(i64, usize)> = lines
            .iter()
            .enumerate()
            .map(|(arrival, (ts, _))| (*ts, arrival))
            .collect();
        expected.sort_unstable();
        let within = head.sorted_within(1, 4);
        head.sort();
        let sorted = head.entries();
        let read = |entries: &[HeadEntry]| -> Vec<(i64, Vec<u8>)> {
            entries
                .iter()
                .map(|e| {
                    let line = codec::entry_line(head.body(e)).map(<[u8]>::to_vec);
                    (e.timestamp_ns, line.unwrap_or_default())
                })
                .collect()
        };
        let want: Vec<(i64, Vec<u8>)> = expected
            .iter()
            .map(|(ts, arrival)| (*ts, lines[*arrival].1.clone().into_bytes()))
            .collect();
        assert_eq!(read(sorted), want);
        let want_within: Vec<(i64, Vec<u8>)> = want
            .into_iter()
            .filter(|(ts, _)| (1..4).contains(ts))
            .collect();
        assert_eq!(read(&within), want_within);
    }
}
