//! The read API the LogQL engine builds on: streams by matchers over a time range, and a
//! stream's chunks in a range — listed by their keys, without reading a line, and without
//! those the [line index](super::line_index) rules out — each read on its own, lines only
//! when asked for.
//!
//! Time ranges are `[start_ns, end_ns)`. Heads are read too (a copy taken with the listing),
//! so what a push acknowledged is visible at once.

use std::collections::{BTreeSet, HashSet};

use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;

use super::codec::{self, ColumnEntry};
use super::directory::StoredChunk;
use super::head::Head;
use super::keys::Layout;
use super::{LogStore, Required, column, corrupt, keys, line_template, rocks};
use crate::error::Error;
use crate::push::Entry;

/// The order entries are returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// A stream that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    /// The stream's id in this store.
    pub id: u64,
    /// Its labels.
    pub labels: Labels,
}

/// A stream's entries in a range, and how many chunks were read and skipped to find them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPage {
    /// The entries, in the requested direction, at most the requested limit.
    pub entries: Vec<Entry>,
    /// Chunks decoded.
    pub chunks_read: usize,
    /// Chunks skipped because their time range is outside the requested one or (with
    /// [`LogStore::entries_containing`]) the line index rules them out.
    pub chunks_skipped: usize,
}

fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
}

/// The days that overlap `[start_ns, end_ns)`.
fn days(start_ns: i64, end_ns: i64) -> std::ops::RangeInclusive<i32> {
    keys::day_of(start_ns)..=keys::day_of(end_ns.saturating_sub(1))
}

impl LogStore {
    /// The streams matching all `matchers` that have entries stored in a day overlapping
    /// `[start_ns, end_ns)` (days are the granularity: a stream may have no entry in the
    /// exact range). Sorted by labels.
    pub fn streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamRef>, Error> {
        if start_ns >= end_ns {
            return Ok(Vec::new());
        }
        let range = days(start_ns, end_ns);
        let state = self.lock();
        let ids: BTreeSet<u64> = state
            .heads
            .keys()
            .filter(|(_, day)| range.contains(day))
            .map(|(id, _)| *id)
            .chain(state.directory.streams_in(&range))
            .collect();
        let mut streams: Vec<StreamRef> = ids
            .into_iter()
            .filter_map(|id| {
                let labels = state.index.labels.get(&id)?;
                matches_all(matchers, labels).then(|| StreamRef {
                    id,
                    labels: labels.clone(),
                })
            })
            .collect();
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    /// A stream's entries in `[start_ns, end_ns)`, oldest or newest first, at most `limit`
    /// (0 = all). Entries with the same timestamp keep their push order (reversed when
    /// backward).
    pub fn entries(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<EntryPage, Error> {
        self.entries_containing(stream, start_ns, end_ns, direction, limit, &[])
    }

    /// Like [`LogStore::entries`], but skips the chunks that cannot hold a line containing
    /// every one of `literals` (ASCII case-insensitively; see [`LogStore::chunks`]). The page
    /// is not filtered line by line.
    pub fn entries_containing(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        literals: &[&str],
    ) -> Result<EntryPage, Error> {
        let required: Vec<Required> = literals.iter().map(|text| Required::text(text)).collect();
        let list = self.chunks(stream, start_ns, end_ns, &required)?;
        let mut page = EntryPage {
            chunks_skipped: list.skipped,
            ..EntryPage::default()
        };
        for chunk in list.chunks {
            if chunk.is_stored() {
                page.chunks_read += 1;
            }
            let read = self.read_chunk(chunk, true)?;
            page.entries.extend(read.iter()?.map(|entry| Entry {
                timestamp_ns: entry.timestamp_ns,
                line: entry.line.to_owned(),
                metadata: entry.metadata.to_vec(),
            }));
        }
        // Chunks of one stream may overlap (out-of-order pushes): merge by time (stable:
        // chunks are listed oldest first, the head last, each in push order within a
        // timestamp).
        page.entries.sort_by_key(|entry| entry.timestamp_ns);
        if direction == Direction::Backward {
            page.entries.reverse();
        }
        if limit > 0 {
            page.entries.truncate(limit);
        }
        Ok(page)
    }

    /// The pieces holding `stream`'s entries in `[start_ns, end_ns)`: its stored chunks
    /// overlapping the range, oldest first, then a copy of its heads' entries in the range.
    /// Chunks are found in the directory, without reading them; with `required`, those the
    /// line index knows cannot hold a line meeting every requirement are left out.
    ///
    /// For the LogQL engine: pass what every kept line must contain, e.g. the `"needle"` of
    /// `|= "needle"`, or a literal every match of a `|~` regex contains; never literals of
    /// `!=`, `!~` or of one branch of an alternation. Chunks the index has not committed yet
    /// are listed. Texts without three word bytes in a row (see the line index) skip nothing.
    ///
    /// The heads are copied and the chunks listed under one lock, so a head cut into a chunk
    /// meanwhile is seen once.
    pub fn chunks(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        required: &[Required],
    ) -> Result<ChunkList, Error> {
        let mut list = ChunkList::default();
        if start_ns >= end_ns {
            return Ok(list);
        }
        let range = days(start_ns, end_ns);
        let (stored, heads) = {
            let state = self.lock();
            let mut stored: Vec<(i32, Vec<StoredChunk>)> = Vec::new();
            for day in state.days.range(range.clone()) {
                let mut overlapping = Vec::new();
                for chunk in state.directory.chunks(stream, *day) {
                    if chunk.min_ts < end_ns && chunk.max_ts >= start_ns {
                        overlapping.push(chunk.clone());
                    } else {
                        list.skipped += 1;
                    }
                }
                stored.push((*day, overlapping));
            }
            let mut heads = Vec::new();
            for ((id, day), head) in &state.heads {
                if *id == stream && range.contains(day) {
                    heads.extend(copy_head(stream, head, start_ns, end_ns)?);
                }
            }
            (stored, heads)
        };
        for (day, chunks) in stored {
            let ruled_out = if required.is_empty() || chunks.is_empty() {
                HashSet::new()
            } else {
                self.lines.chunks_without(day, stream, required)?
            };
            for chunk in chunks {
                if ruled_out.contains(&chunk.key[..]) {
                    list.skipped += 1;
                    continue;
                }
                list.chunks.push(ChunkRef {
                    stream,
                    min_ts: chunk.min_ts,
                    max_ts: chunk.max_ts,
                    source: ChunkSource::Stored {
                        day,
                        key: chunk.key,
                        start_ns,
                        end_ns,
                    },
                });
            }
        }
        for read in heads {
            let (Some(first), Some(last)) = (read.entries.first(), read.entries.last()) else {
                continue;
            };
            let (min_ts, max_ts) = (first.timestamp_ns, last.timestamp_ns);
            list.chunks.push(ChunkRef {
                stream,
                min_ts,
                max_ts,
                source: ChunkSource::Head(read),
            });
        }
        Ok(list)
    }

    /// A listed piece's entries in the listing's range, oldest first (push order within a
    /// timestamp); its lines only `with_lines` (otherwise only the entry column is read, and
    /// each entry's line is empty but its length known). A chunk whose day retention dropped
    /// since the listing reads as empty.
    pub fn read_chunk(&self, chunk: ChunkRef, with_lines: bool) -> Result<ChunkEntries<'_>, Error> {
        let (day, key, start_ns, end_ns) = match chunk.source {
            ChunkSource::Head(read) => return Ok(read),
            ChunkSource::Stored {
                day,
                key,
                start_ns,
                end_ns,
            } => (day, key, start_ns, end_ns),
        };
        let cf_name = keys::day_cf(day);
        let mut read = ChunkEntries::new(chunk.stream);
        let Some(cf) = self.db.cf_handle(&cf_name) else {
            return Ok(read);
        };
        let place = || format!("a chunk of stream {} in {cf_name}", chunk.stream);
        let get = |key: &[u8]| {
            self.db
                .get_pinned_cf(&cf, key)
                .map_err(rocks(format!("reading {}", place())))
        };
        let layout = Layout::of(&key).ok_or_else(|| corrupt("chunk key", place()))?;
        let Some(stored) = get(&key)? else {
            return Ok(read);
        };
        if layout == Layout::OneValue {
            let mut lines = Vec::new();
            codec::decode_legacy_chunk(&stored, start_ns, end_ns, &mut read.entries, &mut lines)
                .map_err(|e| corrupt(e.what, place()))?;
            read.lines = Lines::Owned(lines);
            return Ok(read);
        }
        let unpacked;
        let column = if layout == Layout::Columns {
            &stored[..]
        } else {
            unpacked = column::unpack(&stored, None, "chunk entry column")
                .map_err(|e| corrupt(e.what, place()))?;
            &unpacked[..]
        };
        // Split lines are joined again with every entry's timestamp.
        let mut every_timestamp = Vec::new();
        let lines_len = codec::decode_entry_column(
            column,
            start_ns,
            end_ns,
            &mut read.entries,
            (with_lines && matches!(layout, Layout::SplitLines(_))).then_some(&mut every_timestamp),
        )
        .map_err(|e| corrupt(e.what, place()))?;
        if with_lines && !read.entries.is_empty() {
            let Some(lines) = get(&keys::lines_key(&key))? else {
                return Err(corrupt("chunk without lines", place()));
            };
            read.lines = match layout {
                Layout::SplitLines(version) => Lines::Owned(
                    line_template::unpack(&lines, &every_timestamp, lines_len, version)
                        .map_err(|e| corrupt(e.what, place()))?,
                ),
                Layout::PackedColumns => Lines::Owned(
                    column::unpack(&lines, Some(lines_len), "chunk line column")
                        .map_err(|e| corrupt(e.what, place()))?,
                ),
                _ if lines.len() == lines_len => Lines::Pinned(lines),
                _ => return Err(corrupt("chunk line column", place())),
            };
        }
        Ok(read)
    }
}

/// A stream's pieces in a range, from [`LogStore::chunks`].
#[derive(Debug, Default)]
pub struct ChunkList {
    /// The pieces to read: stored chunks oldest first, then the heads' copies.
    pub chunks: Vec<ChunkRef>,
    /// Stored chunks left out by their time range or the line index.
    pub skipped: usize,
}

/// A piece of a stream to read with [`LogStore::read_chunk`].
#[derive(Debug)]
pub struct ChunkRef {
    /// The stream.
    pub stream: u64,
    /// Its first entry's timestamp.
    pub min_ts: i64,
    /// Its last entry's timestamp.
    pub max_ts: i64,
    source: ChunkSource,
}

impl ChunkRef {
    /// Whether this is a stored chunk (not a head's copy).
    pub fn is_stored(&self) -> bool {
        matches!(self.source, ChunkSource::Stored { .. })
    }
}

#[derive(Debug)]
enum ChunkSource {
    /// A chunk of a day, by its entry-column (or one-value) key, with the range to read.
    Stored {
        day: i32,
        key: Box<[u8]>,
        start_ns: i64,
        end_ns: i64,
    },
    /// A head's entries in the range, copied when listed.
    Head(ChunkEntries<'static>),
}

/// A piece's entries, oldest first.
#[derive(Debug)]
pub struct ChunkEntries<'a> {
    stream: u64,
    entries: Vec<ColumnEntry>,
    lines: Lines<'a>,
}

/// The lines of a piece as read: none (only the entry column was read), a copy (a head, a
/// packed column unpacked, or a chunk of the first layout), or RocksDB's own buffer (a line
/// column RocksDB compressed).
enum Lines<'a> {
    Unread,
    Owned(Vec<u8>),
    Pinned(rocksdb::DBPinnableSlice<'a>),
}

impl std::fmt::Debug for Lines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes of lines", self.bytes().len())
    }
}

impl Lines<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Lines::Unread => &[],
            Lines::Owned(bytes) => bytes,
            Lines::Pinned(slice) => slice,
        }
    }
}

/// One entry as read: its line borrows from the chunk.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// Nanoseconds since the epoch.
    pub timestamp_ns: i64,
    /// The line; empty when the chunk was read without lines.
    pub line: &'a str,
    /// The line's length in bytes, read or not.
    pub line_len: usize,
    /// Structured metadata.
    pub metadata: &'a [(String, String)],
}

impl EntryRef<'_> {
    /// The bytes the entry counts for, as [`Entry::size`], whether its line was read or not.
    pub fn size(&self) -> usize {
        self.line_len + crate::push::metadata_size(self.metadata)
    }
}

impl ChunkEntries<'_> {
    fn new(stream: u64) -> Self {
        ChunkEntries {
            stream,
            entries: Vec::new(),
            lines: Lines::Unread,
        }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of lines held (0 when read without lines).
    pub fn line_bytes(&self) -> usize {
        self.lines.bytes().len()
    }

    /// Heap bytes the piece holds: its decoded entries and its lines.
    pub fn held_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<ColumnEntry>()
            + self
                .entries
                .iter()
                .map(|e| crate::push::metadata_size(&e.metadata))
                .sum::<usize>()
            + self.line_bytes()
    }

    /// The entries, oldest first; an error if the lines are not UTF-8 (damage: every line
    /// was checked when pushed).
    pub fn iter(&self) -> Result<impl Iterator<Item = EntryRef<'_>>, Error> {
        let text = std::str::from_utf8(self.lines.bytes())
            .map_err(|_| corrupt("chunk line", format!("a chunk of stream {}", self.stream)))?;
        Ok(self.entries.iter().map(move |entry| EntryRef {
            timestamp_ns: entry.timestamp_ns,
            line: text.get(entry.line.clone()).unwrap_or(""),
            line_len: entry.line.len(),
            metadata: &entry.metadata,
        }))
    }
}

/// A copy of `head`'s entries of `stream` within `[start_ns, end_ns)`, sorted, with their
/// lines; `None` when it has none there.
fn copy_head(
    stream: u64,
    head: &Head,
    start_ns: i64,
    end_ns: i64,
) -> Result<Option<ChunkEntries<'static>>, Error> {
    let within = head.sorted_within(start_ns, end_ns);
    if within.is_empty() {
        return Ok(None);
    }
    let mut read = ChunkEntries::new(stream);
    let mut lines = Vec::new();
    for entry in &within {
        codec::push_body(
            head.body(entry),
            entry.timestamp_ns,
            &mut read.entries,
            &mut lines,
        )
        .map_err(|e| corrupt(e.what, format!("the head of stream {stream}")))?;
    }
    read.lines = Lines::Owned(lines);
    Ok(Some(read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::PushStream;
    use crate::store::StoreOptions;
    use prost::encoding::encode_varint;

    const T: i64 = 1_700_000_000_000_000_000;

    fn entry(timestamp_ns: i64, line: &str) -> Entry {
        Entry {
            timestamp_ns,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    /// A chunk in the first layout, as stores before the two-column layout wrote them.
    fn legacy_chunk(entries: &[Entry]) -> Vec<u8> {
        let mut chunk = Vec::new();
        encode_varint(entries.len() as u64, &mut chunk);
        let mut previous = 0i64;
        for entry in entries {
            let delta = entry.timestamp_ns - previous;
            encode_varint(((delta << 1) ^ (delta >> 63)) as u64, &mut chunk);
            previous = entry.timestamp_ns;
            codec::put_entry_body(&mut chunk, entry);
        }
        chunk
    }

    /// A chunk's two columns as RocksDB compressed them (before the store packed them).
    fn unpacked_columns(entries: &[Entry]) -> (Vec<u8>, Vec<u8>) {
        let bodies: Vec<Vec<u8>> = entries
            .iter()
            .map(|entry| {
                let mut body = Vec::new();
                codec::put_entry_body(&mut body, entry);
                body
            })
            .collect();
        let (mut entry_column, mut line_column) = (Vec::new(), Vec::new());
        codec::encode_columns(
            entries
                .iter()
                .zip(&bodies)
                .map(|(entry, body)| (entry.timestamp_ns, &body[..])),
            &mut entry_column,
            |_, line| line_column.extend_from_slice(line),
        )
        .expect("encode");
        (entry_column, line_column)
    }

    /// Pushes `entries` to stream `{app="api"}`.
    fn push_api(store: &LogStore, entries: Vec<Entry>) {
        let stream = PushStream {
            labels: Labels::from_pairs([("app", "api")]),
            entries,
            ..PushStream::default()
        };
        store.push(&[stream]).expect("push");
    }

    /// A store in `dir` holding `entries` of `{app="api"}` in a chunk, and that stream's id.
    fn store_with_chunk(dir: &std::path::Path, entries: Vec<Entry>) -> (LogStore, u64) {
        let store = LogStore::open(dir, StoreOptions::default()).expect("open");
        push_api(&store, entries);
        store.flush().expect("flush");
        let id = store.streams(&[], T, T + 100).expect("streams")[0].id;
        (store, id)
    }

    #[test]
    fn a_head_whose_chunk_cannot_be_written_stays_readable_and_is_cut_later() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LogStore::open(dir.path(), StoreOptions::default()).expect("open");
        push_api(
            &store,
            vec![entry(T + 10, "kept"), entry(T + 20, "also kept")],
        );
        // A column family of the day's name that the store does not know: creating the
        // day fails, as it would on a full disk.
        let day = keys::day_of(T);
        store
            .db
            .create_cf(keys::day_cf(day), &rocksdb::Options::default())
            .expect("column family");
        let error = store.flush().expect_err("the cut fails");
        assert!(error.to_string().contains("creating day-"), "{error}");
        let id = store.streams(&[], T, T + 100).expect("streams")[0].id;
        let read = |store: &LogStore| {
            let page = store
                .entries(id, T, T + 100, Direction::Forward, 0)
                .expect("entries");
            let lines: Vec<String> = page.entries.iter().map(|e| e.line.clone()).collect();
            (lines, page.chunks_read)
        };
        // Read from the head (no stored chunk read).
        assert_eq!(read(&store), (vec!["kept".into(), "also kept".into()], 0));
        assert_eq!(store.lock().heads.len(), 1);
        // Once the day can be created, the next cut writes the head, once.
        store.db.drop_cf(&keys::day_cf(day)).expect("drop");
        store.flush().expect("flush");
        assert!(store.lock().heads.is_empty());
        assert_eq!(store.lock().head_bytes, 0);
        assert_eq!(read(&store), (vec!["kept".into(), "also kept".into()], 1));
        assert_eq!(store.lock().directory.chunks(id, day).len(), 1);
    }

    #[test]
    fn a_damaged_packed_column_is_an_error_naming_it_and_the_store_keeps_serving() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, id) =
            store_with_chunk(dir.path(), vec![entry(T + 10, "one"), entry(T + 20, "two")]);
        let day = keys::day_of(T);
        let key = store.lock().directory.chunks(id, day)[0].key.clone();
        assert_eq!(
            Layout::of(&key),
            Some(Layout::SplitLines(line_template::Version::V2))
        );
        let cf = store.db.cf_handle(&keys::day_cf(day)).expect("day");
        store
            .db
            .put_cf(&cf, keys::lines_key(&key), b"not a zstd frame")
            .expect("put");
        drop(cf);
        let error = store
            .entries(id, T, T + 100, Direction::Forward, 0)
            .expect_err("damaged");
        assert!(error.to_string().contains("chunk line template"), "{error}");
        // The entry column still reads (a count needs no lines), and new pushes are stored.
        let list = store.chunks(id, T, T + 100, &[]).expect("list");
        let counted: usize = list
            .chunks
            .into_iter()
            .map(|chunk| store.read_chunk(chunk, false).expect("entries").len())
            .sum();
        assert_eq!(counted, 2);
        push_api(&store, vec![entry(T + 30, "three")]);
    }

    #[test]
    fn chunks_of_older_layouts_are_listed_at_open_and_read_with_the_new_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, id) = store_with_chunk(dir.path(), vec![entry(T + 30, "new")]);
        let day = keys::day_of(T);
        let old = [entry(T + 10, "old one"), entry(T + 20, "old two")];
        let mut key = keys::entries_key(id, T + 10, T + 20, 1);
        key[0] = b'c';
        let cf = store.db.cf_handle(&keys::day_cf(day)).expect("day");
        store.db.put_cf(&cf, &key, legacy_chunk(&old)).expect("put");
        let columns = [entry(T + 40, "columns one"), entry(T + 50, "columns two")];
        let (entry_column, line_column) = unpacked_columns(&columns);
        let mut key = keys::entries_key(id, T + 40, T + 50, 2);
        key[0] = b'e';
        store.db.put_cf(&cf, &key, &entry_column).expect("put");
        store
            .db
            .put_cf(&cf, keys::lines_key(&key), &line_column)
            .expect("put");
        // The same columns packed, lines not split (`E`, `T`).
        let packed = [entry(T + 60, "packed one"), entry(T + 70, "packed two")];
        let (entry_column, line_column) = unpacked_columns(&packed);
        let mut key = keys::entries_key(id, T + 60, T + 70, 3);
        key[0] = b'E';
        let mut packer = column::Packer::new(1);
        let entry_column = packer.pack(&entry_column).expect("pack").to_vec();
        store.db.put_cf(&cf, &key, entry_column).expect("put");
        let line_column = packer.pack(&line_column).expect("pack").to_vec();
        store
            .db
            .put_cf(&cf, keys::lines_key(&key), line_column)
            .expect("put");
        // Lines split by the first version (`F`, `N`): short runs from 0xF9, varint numbers.
        let split = [entry(T + 80, "split 42"), entry(T + 90, "split 7")];
        let (entry_column, _) = unpacked_columns(&split);
        let mut key = keys::entries_key(id, T + 80, T + 90, 4);
        key[0] = b'F';
        let entry_column = packer.pack(&entry_column).expect("pack").to_vec();
        store.db.put_cf(&cf, &key, entry_column).expect("put");
        let mut line_column = Vec::new();
        codec::put_bytes(
            &mut line_column,
            packer.pack(b"split \xFA\xF6split \xF9\xF6").expect("pack"),
        );
        let mut numbers = vec![1, 1];
        numbers.resize(18, 0);
        numbers.extend([7, 42]);
        line_column.extend_from_slice(packer.pack(&numbers).expect("pack"));
        store
            .db
            .put_cf(&cf, keys::lines_key(&key), line_column)
            .expect("put");
        drop(cf);
        drop(store);
        let store = LogStore::open(dir.path(), StoreOptions::default()).expect("reopen");
        let page = store
            .entries(id, T, T + 100, Direction::Forward, 0)
            .expect("entries");
        let lines: Vec<&str> = page.entries.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "old one",
                "old two",
                "new",
                "columns one",
                "columns two",
                "packed one",
                "packed two",
                "split 42",
                "split 7"
            ]
        );
        assert_eq!(page.chunks_read, 5);
        let page = store
            .entries(id, T + 15, T + 25, Direction::Forward, 0)
            .expect("entries");
        assert_eq!(page.entries, [entry(T + 20, "old two")]);
        assert_eq!((page.chunks_read, page.chunks_skipped), (1, 4));
        let page = store
            .entries(id, T + 35, T + 45, Direction::Forward, 0)
            .expect("entries");
        assert_eq!(page.entries, [entry(T + 40, "columns one")]);
        // The listing keeps time order across layouts (the layout byte is not compared).
        let day_chunks = store.lock().directory.chunks(id, day).to_vec();
        let firsts: Vec<i64> = day_chunks.iter().map(|c| c.min_ts - T).collect();
        assert_eq!(firsts, [10, 30, 40, 60, 80]);
    }
}
