//! RocksDB key layout of the log store.
//!
//! The default column family holds what outlives days:
//!
//! * `l` labels → stream id (8 bytes big-endian); `i` id → labels: the stream index.
//! * `m` day (4 bytes) id → the WAL sequence number through which the stream's entries of
//!   that day are in chunks (the replay skips what is already persisted).
//! * `x` → the first day retention has not dropped (4 bytes big-endian, signed).
//!
//! Each UTC day is one column family, `day-NNNNNN` (days since the Unix epoch), so retention
//! drops a day whole:
//!
//! * `G` id min_ts max_ts last_seq → a chunk's entry column (timestamps, line lengths,
//!   metadata), [packed](super::column) by the store: a stream's chunks sorted by first
//!   timestamp, with their time range in the key: the [chunk directory](super::directory)
//!   is loaded from these keys.
//! * `O` id min_ts max_ts last_seq → the chunk's line column, split into a template,
//!   numbers and hexadecimal ids ([`line_template`](super::line_template), version 2) and
//!   packed.
//! * `F`, `N` → the same two columns, the lines split by version 1 (no ids; stores written
//!   before the ids were split; read until retention drops them).
//! * `E`, `T` → the same two columns, the lines packed back to back (stores written before
//!   the lines were split; read until retention drops them).
//! * `e`, `t` → the same two columns as RocksDB compressed them (stores written before the
//!   store packed its columns).
//! * `c` id min_ts max_ts last_seq → a chunk in the first, one-value layout (stores written
//!   before the two columns; read until retention drops them).
//! * `s` id and `p` name 0x00 value 0x00 id → (empty): the streams and postings of the day,
//!   written by the first layout only (the directory answers which streams a day has).

use sightline_core::labels::Labels;

use super::line_template;

/// Nanoseconds in a UTC day.
pub(crate) const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Key of the first day retention has not dropped.
pub(crate) const DROPPED_BEFORE_KEY: &[u8] = b"x";

/// Prefix of day column family names.
pub(crate) const DAY_PREFIX: &str = "day-";

/// The UTC day (days since the epoch) of a timestamp.
pub(crate) fn day_of(timestamp_ns: i64) -> i32 {
    timestamp_ns.div_euclid(DAY_NS) as i32
}

/// The column family of a day.
pub(crate) fn day_cf(day: i32) -> String {
    format!("{DAY_PREFIX}{day:06}")
}

/// The day a column family name stands for, if it is a day's.
pub(crate) fn parse_day_cf(name: &str) -> Option<i32> {
    name.strip_prefix(DAY_PREFIX)?.parse().ok()
}

/// An i64 as 8 bytes that sort like the numbers.
fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(array) ^ (1 << 63)) as i64)
}

/// `l` labels.
pub(crate) fn labels_key(labels: &Labels) -> Vec<u8> {
    let mut key = vec![b'l'];
    super::codec::put_labels(&mut key, labels);
    key
}

/// `i` id.
pub(crate) fn stream_key(id: u64) -> Vec<u8> {
    let mut key = vec![b'i'];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The id in a `i` key.
pub(crate) fn parse_stream_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.strip_prefix(b"i")?.try_into().ok()?))
}

/// `m` day id.
pub(crate) fn marker_key(day: i32, id: u64) -> Vec<u8> {
    let mut key = vec![b'm'];
    key.extend_from_slice(&((day as u32) ^ (1 << 31)).to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `(day, id)` of a `m` key.
pub(crate) fn parse_marker_key(key: &[u8]) -> Option<(i32, u64)> {
    let rest = key.strip_prefix(b"m")?;
    if rest.len() != 12 {
        return None;
    }
    let day = (u32::from_be_bytes(rest[..4].try_into().ok()?) ^ (1 << 31)) as i32;
    Some((day, u64::from_be_bytes(rest[4..].try_into().ok()?)))
}

/// The first marker key of `day` and the first of the day after.
pub(crate) fn marker_range(day: i32) -> (Vec<u8>, Vec<u8>) {
    (marker_key(day, 0), marker_key(day.saturating_add(1), 0))
}

/// How a stored chunk is laid out, told by the first byte of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `c`: one value holding entries and lines (the first layout).
    OneValue,
    /// `e` and `t`: an entry column and a line column, compressed by RocksDB.
    Columns,
    /// `E` and `T`: the two columns packed by the store.
    PackedColumns,
    /// `F` and `N` (version 1), `G` and `O` (version 2): the two columns packed by the
    /// store, the lines split into a template and numbers (and, from version 2, ids).
    SplitLines(line_template::Version),
}

impl Layout {
    /// Every layout, with the prefix byte of its chunk (or entry-column) keys.
    pub(crate) const ALL: [(u8, Layout); 5] = [
        (b'c', Layout::OneValue),
        (b'e', Layout::Columns),
        (b'E', Layout::PackedColumns),
        (b'F', Layout::SplitLines(line_template::Version::V1)),
        (b'G', Layout::SplitLines(line_template::Version::V2)),
    ];

    /// The layout of a chunk's key (its entry-column key, or its one value's).
    pub(crate) fn of(key: &[u8]) -> Option<Layout> {
        let first = key.first()?;
        Layout::ALL
            .iter()
            .find(|(prefix, _)| prefix == first)
            .map(|(_, layout)| *layout)
    }
}

/// `G` id min max seq: a chunk's packed entry column (the layout chunks are written in).
pub(crate) fn entries_key(id: u64, min_ts: i64, max_ts: i64, last_seq: u64) -> Vec<u8> {
    let mut key = vec![b'G'];
    key.extend_from_slice(&id.to_be_bytes());
    key.extend_from_slice(&sortable(min_ts));
    key.extend_from_slice(&sortable(max_ts));
    key.extend_from_slice(&last_seq.to_be_bytes());
    key
}

/// The line-column key of the chunk whose entry-column key is `entries_key` (of any
/// column layout).
pub(crate) fn lines_key(entries_key: &[u8]) -> Vec<u8> {
    let mut key = entries_key.to_vec();
    if let Some(kind) = key.first_mut() {
        *kind = match *kind {
            b'e' => b't',
            b'E' => b'T',
            b'F' => b'N',
            b'G' => b'O',
            other => other,
        };
    }
    key
}

/// `(stream, min_ts, max_ts)` of a chunk key (of any layout or column).
pub(crate) fn parse_chunk_key(key: &[u8]) -> Option<(u64, i64, i64)> {
    if key.len() != 33 {
        return None;
    }
    Some((
        u64::from_be_bytes(key[1..9].try_into().ok()?),
        unsortable(&key[9..17])?,
        unsortable(&key[17..25])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(DAY_NS), 1);
        assert_eq!(parse_day_cf(&day_cf(20_413)), Some(20_413));
        assert_eq!(parse_marker_key(&marker_key(-3, 7)), Some((-3, 7)));
        assert!(marker_key(-1, 9) < marker_key(0, 0));
        let key = entries_key(5, -10, 20, 3);
        assert_eq!(parse_chunk_key(&key), Some((5, -10, 20)));
        assert_eq!(parse_chunk_key(&lines_key(&key)), Some((5, -10, 20)));
        assert_eq!(
            Layout::of(&key),
            Some(Layout::SplitLines(line_template::Version::V2))
        );
        assert_eq!(lines_key(&key)[0], b'O');
        for (prefix, lines_prefix, layout) in [
            (b'F', b'N', Layout::SplitLines(line_template::Version::V1)),
            (b'E', b'T', Layout::PackedColumns),
            (b'e', b't', Layout::Columns),
        ] {
            let mut old = key.clone();
            old[0] = prefix;
            assert_eq!(lines_key(&old)[0], lines_prefix);
            assert_eq!(Layout::of(&old), Some(layout));
        }
        assert_eq!(Layout::of(b"p"), None);
        assert!(entries_key(5, -10, 0, 0) < entries_key(5, 3, 0, 0));
        assert_eq!(parse_stream_key(&stream_key(42)), Some(42));
    }
}
