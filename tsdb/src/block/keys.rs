//! Key layout of the block store (see `tsdb/FORMAT.md`, "Blocks").
//!
//! In each day's column family, block metas sort first (`0x00 | id`) and each block's data is
//! one contiguous range (`0x01 | id | …`), so a block is deleted with one range delete and a
//! day by dropping its column family.

/// Key in the default column family holding the store's format version.
pub(crate) const VERSION_KEY: &[u8] = b"sightline.blocks.version";
/// Prefix of day column family names: `metrics-YYYY-MM-DD`.
pub(crate) const PARTITION_PREFIX: &str = "metrics-";

pub(crate) const META: u8 = 0x00;
pub(crate) const DATA: u8 = 0x01;

pub(crate) const KIND_NAME: u8 = b'n';
pub(crate) const KIND_POSTINGS: u8 = b'p';
pub(crate) const KIND_SERIES: u8 = b's';
pub(crate) const KIND_CHUNKS: u8 = b'c';

/// Milliseconds in a UTC day.
pub(crate) const DAY_MS: i64 = 86_400_000;

pub(crate) fn meta(id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(META);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Start of block `id`'s data range.
pub(crate) fn data_start(id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(DATA);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// End (exclusive) of block `id`'s data range.
pub(crate) fn data_end(id: u64) -> Vec<u8> {
    match id.checked_add(1) {
        Some(next) => data_start(next),
        None => vec![DATA + 1],
    }
}

/// `0x01 | id | kind`: prefix of one kind of key within a block.
pub(crate) fn kind_prefix(id: u64, kind: u8) -> Vec<u8> {
    let mut key = data_start(id);
    key.push(kind);
    key
}

pub(crate) fn series(id: u64, series_ref: u32) -> Vec<u8> {
    let mut key = kind_prefix(id, KIND_SERIES);
    key.extend_from_slice(&series_ref.to_be_bytes());
    key
}

pub(crate) fn chunks(id: u64, series_ref: u32) -> Vec<u8> {
    let mut key = kind_prefix(id, KIND_CHUNKS);
    key.extend_from_slice(&series_ref.to_be_bytes());
    key
}

pub(crate) fn name(id: u64, name: &str) -> Vec<u8> {
    let mut key = kind_prefix(id, KIND_NAME);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `0x01 | id | 'p' | len(name):u16 | name`: prefix of every postings key of a label name.
/// Names longer than 65 535 bytes are cut (Prometheus label names are short identifiers).
pub(crate) fn postings_prefix(id: u64, name: &str) -> Vec<u8> {
    let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
    let mut key = kind_prefix(id, KIND_POSTINGS);
    key.extend_from_slice(&(name.len() as u16).to_be_bytes());
    key.extend_from_slice(name);
    key
}

pub(crate) fn postings(id: u64, name: &str, value: &str) -> Vec<u8> {
    let mut key = postings_prefix(id, name);
    key.extend_from_slice(value.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is
/// none (a prefix of only `0xff` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The series ref at the end of a series or chunks key.
pub(crate) fn series_ref(key: &[u8]) -> Option<u32> {
    let tail = key.get(key.len().checked_sub(4)?..)?;
    Some(u32::from_be_bytes(tail.try_into().ok()?))
}

/// Block id of a meta or data key.
pub(crate) fn block_id(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// The UTC day number (days since 1970-01-01) of a timestamp in milliseconds.
pub(crate) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS)
}

/// Column family name of a UTC day: `metrics-YYYY-MM-DD`.
pub(crate) fn partition_name(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{PARTITION_PREFIX}{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names() {
        assert_eq!(partition_name(0), "metrics-1970-01-01");
        assert_eq!(
            partition_name(day_of(1_763_769_600_000)),
            "metrics-2025-11-22"
        );
        assert_eq!(partition_name(-1), "metrics-1969-12-31");
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
