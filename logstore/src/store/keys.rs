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
//! * `c` id min_ts max_ts last_seq → chunk: a stream's chunks sorted by first timestamp, with
//!   their time range in the key so a read skips chunks without reading them.
//! * `s` id → (empty): the streams that have entries that day.
//! * `p` name 0x00 value 0x00 id → (empty): the day's postings.

use sightline_core::labels::Labels;

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

/// `c` id: the prefix of a stream's chunks.
pub(crate) fn chunk_prefix(id: u64) -> Vec<u8> {
    let mut key = vec![b'c'];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `c` id min max seq.
pub(crate) fn chunk_key(id: u64, min_ts: i64, max_ts: i64, last_seq: u64) -> Vec<u8> {
    let mut key = chunk_prefix(id);
    key.extend_from_slice(&sortable(min_ts));
    key.extend_from_slice(&sortable(max_ts));
    key.extend_from_slice(&last_seq.to_be_bytes());
    key
}

/// `(min_ts, max_ts)` of a chunk key.
pub(crate) fn chunk_range(key: &[u8]) -> Option<(i64, i64)> {
    if key.len() != 33 {
        return None;
    }
    Some((unsortable(&key[9..17])?, unsortable(&key[17..25])?))
}

/// `s` id.
pub(crate) fn day_stream_key(id: u64) -> Vec<u8> {
    let mut key = vec![b's'];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `p` name 0 value 0: the prefix of a posting list.
pub(crate) fn posting_prefix(name: &str, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + value.len() + 11);
    key.push(b'p');
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key
}

/// `p` name 0 value 0 id.
pub(crate) fn posting_key(name: &str, value: &str, id: u64) -> Vec<u8> {
    let mut key = posting_prefix(name, value);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The stream id at the end of a `s` or `p` key.
pub(crate) fn trailing_id(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[start..].try_into().ok()?))
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
        let key = chunk_key(5, -10, 20, 3);
        assert_eq!(chunk_range(&key), Some((-10, 20)));
        assert!(chunk_key(5, -10, 0, 0) < chunk_key(5, 3, 0, 0));
        assert_eq!(trailing_id(&posting_key("app", "x", 42)), Some(42));
        assert_eq!(parse_stream_key(&stream_key(42)), Some(42));
    }
}
