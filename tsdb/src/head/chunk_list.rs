//! A series' completed chunks in the head's chunk files, packed into bytes: 12–14 bytes a
//! chunk instead of a 40-byte [`ChunkMeta`](crate::storage::ChunkMeta) in a vector.
//!
//! Why: at a 1 s scrape a series completes a chunk every 2 minutes, so a head spanning 2–3 h
//! lists 60–90 chunks per series; as `ChunkMeta`s that is 2.4–3.6 KiB per series, more than
//! everything else a series holds (Prometheus keeps 32 bytes per chunk of its head's chunk
//! files). Packed, it is 0.8–1.2 KiB.
//!
//! Encoding: the chunks newest first, so that the newest, which appends look at, is decoded
//! without the rest; per chunk, as LEB128 varints (`crate::varint`): the file number's
//! difference from the newer chunk's (zig-zag; the newest chunk's from 0), the offset, the
//! length, the sample count, the gap from this chunk's last timestamp to the newer chunk's
//! first (zig-zag; the newest chunk's last timestamp itself), and the span from the first
//! timestamp to the last. A push re-encodes the list (a series pushes a chunk every few
//! minutes and holds at most a few hundred); reading is sequential, which suits every reader:
//! queries and block cuts take a time range's chunks, truncation drops the oldest.

use crate::varint;

/// Where a completed chunk is in the chunk files, and the time it spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkPlace {
    /// The chunk file's number.
    pub(crate) file: u32,
    /// Byte offset in the file.
    pub(crate) offset: u32,
    /// Length in bytes.
    pub(crate) len: u16,
    /// Number of samples.
    pub(crate) samples: u16,
    /// Timestamp of the first sample.
    pub(crate) min_time: i64,
    /// Timestamp of the last sample.
    pub(crate) max_time: i64,
}

/// A series' chunks in the chunk files, newest first, packed; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct ChunkList {
    /// The encoded chunks: a boxed slice, sized to fit (a vector's spare room would be most
    /// of what it holds).
    bytes: Box<[u8]>,
}

impl ChunkList {
    /// Adds `place` in time order: chunks of a series do not overlap, and `place` is nearly
    /// always the newest.
    pub(crate) fn push(&mut self, place: ChunkPlace) {
        let mut places: Vec<ChunkPlace> = self.iter().collect();
        let at = places.partition_point(|listed| listed.max_time > place.max_time);
        places.insert(at, place);
        self.bytes = encode(&places);
    }

    /// The chunks, newest first.
    pub(crate) fn iter(&self) -> ChunkPlaces<'_> {
        ChunkPlaces {
            bytes: &self.bytes,
            newer: None,
        }
    }

    /// The newest chunk, decoded alone.
    pub(crate) fn newest(&self) -> Option<ChunkPlace> {
        self.iter().next()
    }

    /// Keeps the chunks `keep` accepts.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&ChunkPlace) -> bool) {
        let places: Vec<ChunkPlace> = self.iter().filter(keep).collect();
        self.bytes = encode(&places);
    }
}

/// The encoding of `places`, newest first.
fn encode(places: &[ChunkPlace]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(places.len() * 14);
    let mut newer: Option<&ChunkPlace> = None;
    for place in places {
        let (file, start) = newer.map_or((0, 0), |n| (n.file, n.min_time));
        varint::put_i64(&mut out, i64::from(place.file) - i64::from(file));
        varint::put_u64(&mut out, u64::from(place.offset));
        varint::put_u64(&mut out, u64::from(place.len));
        varint::put_u64(&mut out, u64::from(place.samples));
        varint::put_i64(&mut out, start.wrapping_sub(place.max_time));
        varint::put_u64(&mut out, place.max_time.wrapping_sub(place.min_time) as u64);
        newer = Some(place);
    }
    out.into_boxed_slice()
}

/// Iterator over a [`ChunkList`], newest first.
#[derive(Debug)]
pub(crate) struct ChunkPlaces<'a> {
    bytes: &'a [u8],
    newer: Option<ChunkPlace>,
}

impl ChunkPlaces<'_> {
    fn next_byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn decode(&mut self) -> Option<ChunkPlace> {
        let (file, start) = self.newer.map_or((0, 0), |n| (n.file, n.min_time));
        let file_delta = varint::decode_i64(|| self.next_byte())?;
        let offset = varint::decode_u64(|| self.next_byte())?;
        let len = varint::decode_u64(|| self.next_byte())?;
        let samples = varint::decode_u64(|| self.next_byte())?;
        let gap = varint::decode_i64(|| self.next_byte())?;
        let span = varint::decode_u64(|| self.next_byte())?;
        let max_time = start.wrapping_sub(gap);
        Some(ChunkPlace {
            file: u32::try_from(i64::from(file).checked_add(file_delta)?).ok()?,
            offset: u32::try_from(offset).ok()?,
            len: u16::try_from(len).ok()?,
            samples: u16::try_from(samples).ok()?,
            min_time: max_time.wrapping_sub(span as i64),
            max_time,
        })
    }
}

impl Iterator for ChunkPlaces<'_> {
    type Item = ChunkPlace;

    fn next(&mut self) -> Option<ChunkPlace> {
        if self.bytes.is_empty() {
            return None;
        }
        // The bytes are only ever written by `encode`, so a decode cannot fail; if it did,
        // the list would end there rather than be misread.
        let place = self.decode();
        if place.is_none() {
            self.bytes = &[];
        }
        self.newer = place;
        place
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(file: u32, offset: u32, min_time: i64, max_time: i64) -> ChunkPlace {
        ChunkPlace {
            file,
            offset,
            len: 180,
            samples: 120,
            min_time,
            max_time,
        }
    }

    #[test]
    fn places_round_trip_newest_first_and_the_oldest_are_dropped() {
        let places = [
            place(1, 0, -5_000, 114_000),
            place(1, 20_000_000, 115_000, 234_000),
            place(3, 4_000, 235_000, 235_000),
            place(2, u32::MAX, 1_700_000_000_000, 1_700_000_119_000),
        ];
        let mut list = ChunkList::default();
        assert_eq!(list.newest(), None);
        // The third one out of order, as a chunk a truncation re-encoded is written.
        for p in [places[0], places[1], places[3], places[2]] {
            list.push(p);
        }
        let newest_first: Vec<ChunkPlace> = places.iter().rev().copied().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), newest_first);
        assert_eq!(list.newest(), Some(places[3]));
        list.retain(|p| p.max_time >= 200_000);
        assert_eq!(list.iter().collect::<Vec<_>>(), newest_first[..3]);
        list.retain(|_| false);
        assert_eq!(list.iter().count(), 0);
        assert_eq!(list.newest(), None);

        let extremes = [
            place(0, 1, i64::MAX, i64::MAX),
            place(7, 2, i64::MIN, i64::MIN),
        ];
        for p in extremes {
            list.push(p);
        }
        assert_eq!(list.iter().collect::<Vec<_>>(), extremes);
    }

    #[test]
    fn a_chunk_of_a_1s_scrape_takes_at_most_14_bytes() {
        let mut list = ChunkList::default();
        let start = 1_700_000_000_000;
        for i in 0..90u32 {
            let min_time = start + i64::from(i) * 120_000;
            list.push(place(
                1 + i / 6,
                (i % 6) * 20_000_000,
                min_time,
                min_time + 119_000,
            ));
        }
        assert_eq!(list.iter().count(), 90);
        assert!(list.bytes.len() <= 90 * 14, "{} bytes", list.bytes.len());
    }
}
