//! The line index: per UTC day, a tantivy index with one document per chunk holding the
//! chunk's key, its stream and every distinct trigram of its lines, so that a read looking
//! for literal substrings (`|= "needle"`, the literal parts of a regex) skips the chunks that
//! lack one of the literals' trigrams.
//!
//! Trigrams are three consecutive word bytes of one line (ASCII letters, digits and `_`, and
//! the bytes of non-ASCII characters) with ASCII letters lowercased, packed into a `u64`
//! term, so the index also serves case-insensitive filters and never needs a tokenizer.
//! Trigrams holding a space or punctuation are neither indexed nor looked up: they cost
//! indexing time for little skipping (indexes written before hold them too, which is
//! harmless). Literals without three word bytes in a row cannot skip anything.
//!
//! A chunk none of whose lines has a backslash and none of whose entries has structured
//! metadata also gets the term [`PLAIN_TERM`]: a value a parser extracts is then in its line
//! as written (see [`Required::parsed`]). A chunk none of whose lines is a JSON object gets
//! [`NO_OBJECT_TERM`]: the `json` parser extracts nothing from it, so a query over streams of
//! mixed formats (`{namespace=~".+"} | json | level="error"`) reads only the JSON ones.
//!
//! The index only ever says "cannot contain": a chunk it does not know (cut after the last
//! commit, or persisted by RocksDB when the index was not committed before a crash) is read.
//! Documents are added when a chunk is cut and committed by [`LineIndex::commit`] (the
//! store's maintenance and flush); each day lives in `index/day-NNNNNN/` and is deleted with
//! the day.
//!
//! One day at a time indexes between commits: tantivy sets aside ~16 MB for a segment being
//! written (its term table, its fast-field table), whatever it is given. The newest day a
//! chunk is cut for is that day; chunks of older days (heads cut late, after midnight) wait
//! for the next commit, which commits the indexing day first and then adds and commits them.
//! A day's writer stays open while its day gets chunks, so tantivy merges its segments.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, Schema, Value};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::keys;
use crate::error::Error;

/// A text every line a query keeps must contain, as a read can hand it to the line index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    /// The line holds at least one of these (ASCII case-insensitively).
    pub texts: Vec<String>,
    /// The texts are values this parser must extract (`| json | level="error"`): a line
    /// that holds one escaped (it has a backslash) or an entry with structured metadata (a
    /// label of the same name) may pass without holding a text as written; a line `json`
    /// extracts from is a JSON object.
    pub parsed: Option<LineParser>,
}

impl Required {
    /// A literal every kept line holds as written (`|= "needle"`).
    pub fn text(text: &str) -> Required {
        Required {
            texts: vec![text.to_owned()],
            parsed: None,
        }
    }
}

/// The parser that extracts a [`Required`] value from a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineParser {
    /// `| json`: only lines that [start a JSON object](starts_json_object) give labels.
    Json,
    /// `| logfmt`.
    Logfmt,
}

/// Whether `line` may be a JSON object: its first byte that is not ASCII whitespace is `{`.
/// The `json` stage parses only such lines, and the index marks chunks with none.
pub(crate) fn starts_json_object(line: &[u8]) -> bool {
    line.trim_ascii_start().first() == Some(&b'{')
}

/// The term of chunks with no backslash in a line and no structured metadata. Trigrams are
/// below `1 << 24`.
const PLAIN_TERM: u64 = 1 << 24;

/// The term of chunks none of whose lines [starts a JSON object](starts_json_object). Its
/// absence says nothing (chunks indexed before it existed lack it too).
const NO_OBJECT_TERM: u64 = PLAIN_TERM + 1;

/// Memory the writer of one day may buffer before it writes a segment: tantivy's minimum
/// (`MEMORY_BUDGET_NUM_BYTES_MIN`, not exported).
const WRITER_MEMORY_BYTES: usize = 15_000_000;

/// Fields of a day's index.
#[derive(Clone, Copy)]
struct Fields {
    /// The chunk's RocksDB key (stored).
    chunk: Field,
    /// The chunk's stream id (indexed).
    stream: Field,
    /// Each distinct trigram of the chunk's lines (indexed).
    gram: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        chunk: builder.add_bytes_field("chunk", STORED),
        stream: builder.add_u64_field("stream", INDEXED),
        gram: builder.add_u64_field("gram", INDEXED),
    };
    (builder.build(), fields)
}

/// The open indexes.
#[derive(Default)]
struct Days {
    open: HashMap<i32, Day>,
    /// The day whose writer has a segment being written (documents not yet committed).
    indexing: Option<i32>,
    /// Documents of days older than the indexing one, added at the next commit.
    waiting: Vec<(i32, TantivyDocument)>,
}

/// One day's open index.
struct Day {
    index: Index,
    /// Opened by the first search after a commit and dropped at the next: a reader maps its
    /// segments' files, and kept across commits it held the pages of segments merged away
    /// (~9 MB of resident memory during the 2 GiB push, docs/BENCHMARKS.md).
    reader: Option<IndexReader>,
    /// Present while chunks are being added; dropped after a commit with nothing new.
    writer: Option<IndexWriter>,
    /// Documents added since the last commit.
    pending: usize,
}

impl Day {
    /// A searcher of what was last committed, opening the reader if the last commit
    /// dropped it.
    fn searcher(&mut self, day: i32) -> Result<Searcher, Error> {
        if let Some(reader) = &self.reader {
            return Ok(reader.searcher());
        }
        let reader: IndexReader = self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_error(format!("reading the line index of day {day}")))?;
        Ok(self.reader.insert(reader).searcher())
    }
}

/// Distinct trigrams of lines: a bit per possible trigram, cleared after each chunk.
struct GramSet {
    bits: Vec<u64>,
    touched: Vec<u32>,
}

impl GramSet {
    fn new() -> GramSet {
        GramSet {
            bits: vec![0; (1 << 24) / 64],
            touched: Vec::new(),
        }
    }

    fn insert(&mut self, gram: u32) {
        let word = (gram / 64) as usize;
        let bit = 1u64 << (gram % 64);
        if self.bits[word] == 0 {
            self.touched.push(word as u32);
        }
        self.bits[word] |= bit;
    }

    /// Every trigram inserted since the last drain; clears the set.
    fn drain(&mut self, mut each: impl FnMut(u32)) {
        for word in self.touched.drain(..) {
            let mut bits = std::mem::take(&mut self.bits[word as usize]);
            while bits != 0 {
                each(word * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
    }
}

/// Per byte: its ASCII-lowercased value, or 0 for a byte that is not a word byte (see the
/// module docs; 0 itself is not one).
static WORD_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 1usize;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
            table[byte] = b.to_ascii_lowercase();
        }
        byte += 1;
    }
    table
};

/// The trigrams of `text`: each run of three word bytes, ASCII letters lowercased, in order.
fn trigrams(text: &[u8], mut each: impl FnMut(u32)) {
    let mut window = 0u32;
    let mut run = 0u32;
    for byte in text {
        let word = WORD_BYTES[usize::from(*byte)];
        if word == 0 {
            run = 0;
            continue;
        }
        window = ((window << 8) | u32::from(word)) & 0x00ff_ffff;
        run += 1;
        if run >= 3 {
            each(window);
        }
    }
}

fn index_error(action: impl Into<String>) -> impl FnOnce(tantivy::TantivyError) -> Error {
    let action = action.into();
    move |source| Error::LineIndex { action, source }
}

/// The line indexes of a store, one per day, under `dir`.
pub(crate) struct LineIndex {
    dir: PathBuf,
    schema: Schema,
    fields: Fields,
    days: Mutex<Days>,
    grams: Mutex<GramSet>,
}

impl LineIndex {
    /// The line indexes under `dir` (created when the first chunk is added).
    pub(crate) fn new(dir: PathBuf) -> LineIndex {
        let (schema, fields) = schema();
        LineIndex {
            dir,
            schema,
            fields,
            days: Mutex::new(Days::default()),
            grams: Mutex::new(GramSet::new()),
        }
    }

    fn day_dir(&self, day: i32) -> PathBuf {
        self.dir.join(keys::day_cf(day))
    }

    fn lock_days(&self) -> MutexGuard<'_, Days> {
        self.days.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open index of `day`, opening or (when `create`) creating it; `None` when it does
    /// not exist and `create` is false.
    fn open_day<'a>(
        &self,
        days: &'a mut HashMap<i32, Day>,
        day: i32,
        create: bool,
    ) -> Result<Option<&'a mut Day>, Error> {
        if let std::collections::hash_map::Entry::Vacant(slot) = days.entry(day) {
            let dir = self.day_dir(day);
            let index = if dir.join("meta.json").exists() {
                Index::open_in_dir(&dir)
                    .map_err(index_error(format!("opening {}", dir.display())))?
            } else if create {
                std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                    action: "creating the line index directory".into(),
                    path: dir.clone(),
                    source,
                })?;
                Index::create_in_dir(&dir, self.schema.clone())
                    .map_err(index_error(format!("creating {}", dir.display())))?
            } else {
                return Ok(None);
            };
            slot.insert(Day {
                index,
                reader: None,
                writer: None,
                pending: 0,
            });
        }
        Ok(days.get_mut(&day))
    }

    /// Adds a chunk: its key, stream, the lines it holds and whether an entry has
    /// structured metadata.
    pub(crate) fn add<'a>(
        &self,
        day: i32,
        stream: u64,
        chunk_key: &[u8],
        lines: impl Iterator<Item = &'a [u8]>,
        has_metadata: bool,
    ) -> Result<(), Error> {
        let mut doc = TantivyDocument::new();
        doc.add_bytes(self.fields.chunk, chunk_key);
        doc.add_u64(self.fields.stream, stream);
        let mut escaped = false;
        let mut object = false;
        {
            let mut grams = self.grams.lock().unwrap_or_else(|e| e.into_inner());
            for line in lines {
                escaped = escaped || memchr::memchr(b'\\', line).is_some();
                object = object || starts_json_object(line);
                trigrams(line, |gram| grams.insert(gram));
            }
            grams.drain(|gram| doc.add_u64(self.fields.gram, u64::from(gram)));
        }
        if !escaped && !has_metadata {
            doc.add_u64(self.fields.gram, PLAIN_TERM);
        }
        if !object {
            doc.add_u64(self.fields.gram, NO_OBJECT_TERM);
        }
        let mut days = self.lock_days();
        match days.indexing {
            Some(indexing) if indexing > day => days.waiting.push((day, doc)),
            Some(indexing) if indexing == day => self.index(&mut days.open, day, doc)?,
            indexing => {
                if let Some(older) = indexing {
                    self.commit_day(&mut days.open, older)?;
                }
                days.indexing = Some(day);
                self.index(&mut days.open, day, doc)?;
            }
        }
        Ok(())
    }

    /// Adds a document to `day`'s index, opening its writer if needed.
    fn index(
        &self,
        open: &mut HashMap<i32, Day>,
        day: i32,
        doc: TantivyDocument,
    ) -> Result<(), Error> {
        let Some(open) = self.open_day(open, day, true)? else {
            return Ok(());
        };
        if open.writer.is_none() {
            let writer = open
                .index
                .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
                .map_err(index_error(format!("writing the line index of day {day}")))?;
            open.writer = Some(writer);
        }
        if let Some(writer) = &open.writer {
            writer
                .add_document(doc)
                .map_err(index_error(format!("indexing a chunk of day {day}")))?;
            open.pending += 1;
        }
        Ok(())
    }

    /// Commits what `day`'s writer was given since its last commit and lets reads see it.
    fn commit_day(&self, open: &mut HashMap<i32, Day>, day: i32) -> Result<(), Error> {
        let Some(open) = open.get_mut(&day) else {
            return Ok(());
        };
        if open.pending == 0 {
            return Ok(());
        }
        if let Some(writer) = &mut open.writer {
            writer.commit().map_err(index_error(format!(
                "committing the line index of day {day}"
            )))?;
            open.reader = None;
        }
        open.pending = 0;
        Ok(())
    }

    /// Commits what was added, so reads can skip those chunks: the indexing day's chunks,
    /// then those of older days that waited, one day at a time. Closes the writers of days
    /// that got nothing since the last commit.
    pub(crate) fn commit(&self) -> Result<(), Error> {
        let mut days = self.lock_days();
        let days = &mut *days;
        for (day, open) in days.open.iter_mut() {
            if open.pending == 0 && !days.waiting.iter().any(|(waiting, _)| waiting == day) {
                open.writer = None;
            }
        }
        if let Some(indexing) = days.indexing.take() {
            self.commit_day(&mut days.open, indexing)?;
        }
        let mut waiting = std::mem::take(&mut days.waiting);
        waiting.sort_by_key(|(day, _)| *day);
        let mut previous = None;
        for (day, doc) in waiting {
            if let Some(done) = previous.filter(|done| *done != day) {
                self.commit_day(&mut days.open, done)?;
            }
            previous = Some(day);
            self.index(&mut days.open, day, doc)?;
        }
        if let Some(done) = previous {
            self.commit_day(&mut days.open, done)?;
        }
        Ok(())
    }

    /// The keys of `stream`'s chunks of `day` that the index knows and that cannot hold a
    /// line meeting every one of `required`: they lack a trigram of each of its texts (and,
    /// for parsed values, are plain; for `json`, or have no JSON object).
    pub(crate) fn chunks_without(
        &self,
        day: i32,
        stream: u64,
        required: &[Required],
    ) -> Result<HashSet<Vec<u8>>, Error> {
        let term = |field: Field, value: u64| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_u64(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let gram = |value: u64| term(self.fields.gram, value);
        let stream_term = || term(self.fields.stream, stream);
        // Per requirement, the chunks that may meet it; a requirement the index cannot
        // narrow (a text without a trigram, unless `json` must parse it) is left out.
        let mut conditions = Vec::new();
        'requirements: for requirement in required {
            if requirement.texts.is_empty() {
                continue;
            }
            let mut any_of: Vec<Box<dyn Query>> = Vec::new();
            for text in &requirement.texts {
                let mut grams = Vec::new();
                trigrams(text.as_bytes(), |gram| grams.push(u64::from(gram)));
                grams.sort_unstable();
                grams.dedup();
                let mut may_hold: Vec<(Occur, Box<dyn Query>)> =
                    grams.into_iter().map(|g| (Occur::Must, gram(g))).collect();
                if requirement.parsed == Some(LineParser::Json) {
                    may_hold.push((Occur::MustNot, gram(NO_OBJECT_TERM)));
                }
                if may_hold.is_empty() {
                    continue 'requirements;
                }
                may_hold.push((Occur::Must, stream_term()));
                any_of.push(Box::new(BooleanQuery::new(may_hold)));
            }
            if requirement.parsed.is_some() {
                any_of.push(Box::new(BooleanQuery::new(vec![
                    (Occur::Must, stream_term()),
                    (Occur::MustNot, gram(PLAIN_TERM)),
                ])));
            }
            conditions.push(Box::new(BooleanQuery::union(any_of)) as Box<dyn Query>);
        }
        if conditions.is_empty() {
            return Ok(HashSet::new());
        }
        let searcher = {
            let mut days = self.lock_days();
            let Some(open) = self.open_day(&mut days.open, day, false)? else {
                return Ok(HashSet::new());
            };
            open.searcher(day)?
        };
        conditions.push(stream_term());
        let action = || format!("searching the line index of day {day}");
        let known = searcher
            .search(&*stream_term(), &DocSetCollector)
            .map_err(index_error(action()))?;
        let possible = searcher
            .search(&BooleanQuery::intersection(conditions), &DocSetCollector)
            .map_err(index_error(action()))?;
        let mut without = HashSet::new();
        for address in known.difference(&possible) {
            let doc: TantivyDocument = searcher.doc(*address).map_err(index_error(action()))?;
            if let Some(key) = doc.get_first(self.fields.chunk).and_then(|v| v.as_bytes()) {
                without.insert(key.to_vec());
            }
        }
        Ok(without)
    }

    /// Deletes a day's index (its writer, reader and waiting documents first).
    pub(crate) fn drop_day(&self, day: i32) -> Result<(), Error> {
        {
            let mut days = self.lock_days();
            days.open.remove(&day);
            if days.indexing == Some(day) {
                days.indexing = None;
            }
            days.waiting.retain(|(waiting, _)| *waiting != day);
        }
        let dir = self.day_dir(day);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                action: "deleting a day's line index".into(),
                path: dir,
                source,
            }),
        }
    }

    /// Bytes of a day's index files.
    pub(crate) fn day_size(&self, day: i32) -> u64 {
        dir_bytes(&self.day_dir(day))
    }

    /// Bytes of every day's index files.
    pub(crate) fn size(&self) -> u64 {
        dir_bytes(&self.dir)
    }
}

/// Bytes of the files under `dir`, recursively; 0 when it does not exist.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return 0;
    };
    listing
        .flatten()
        .map(|item| match item.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&item.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_chunk(index: &LineIndex, day: i32, key: &[u8], line: &str) {
        index
            .add(day, 7, key, std::iter::once(line.as_bytes()), false)
            .unwrap();
    }

    /// Chunks of `day` that the index rules out for `|= "needle"`.
    fn without_needle(index: &LineIndex, day: i32) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = index
            .chunks_without(day, 7, &[Required::text("needle")])
            .unwrap()
            .into_iter()
            .collect();
        keys.sort();
        keys
    }

    /// Days with uncommitted documents in their writer.
    fn pending_days(index: &LineIndex) -> Vec<i32> {
        let days = index.lock_days();
        let mut pending: Vec<i32> = days
            .open
            .iter()
            .filter(|(_, open)| open.pending > 0)
            .map(|(day, _)| *day)
            .collect();
        pending.sort_unstable();
        pending
    }

    #[test]
    fn a_commit_lets_go_of_the_reader_and_the_next_search_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = LineIndex::new(dir.path().to_owned());
        let has_reader = |index: &LineIndex| index.lock_days().open[&10].reader.is_some();
        add_chunk(&index, 10, b"a1", "nothing");
        index.commit().unwrap();
        assert!(!has_reader(&index));
        assert_eq!(without_needle(&index, 10), [b"a1".to_vec()]);
        assert!(has_reader(&index));
        add_chunk(&index, 10, b"a2", "nothing again");
        // Until the commit, searches keep the reader and see what it saw.
        assert_eq!(without_needle(&index, 10), [b"a1".to_vec()]);
        index.commit().unwrap();
        assert!(!has_reader(&index));
        assert_eq!(without_needle(&index, 10), [b"a1".to_vec(), b"a2".to_vec()]);
    }

    #[test]
    fn one_day_indexes_at_a_time_and_older_days_wait_for_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = LineIndex::new(dir.path().to_owned());
        add_chunk(&index, 10, b"a1", "a needle here");
        add_chunk(&index, 10, b"a2", "nothing");
        assert_eq!(pending_days(&index), [10]);
        // A newer day takes over: day 10's chunks are committed on the way.
        add_chunk(&index, 11, b"b1", "nothing either");
        assert_eq!(pending_days(&index), [11]);
        assert_eq!(without_needle(&index, 10), [b"a2".to_vec()]);
        // A chunk of the older day cut late waits; reads do not know it yet (so read it).
        add_chunk(&index, 10, b"a3", "still nothing");
        assert_eq!(pending_days(&index), [11]);
        assert_eq!(index.lock_days().waiting.len(), 1);
        assert_eq!(without_needle(&index, 10), [b"a2".to_vec()]);
        assert!(without_needle(&index, 11).is_empty());
        // The commit writes both days, one after the other.
        index.commit().unwrap();
        assert!(pending_days(&index).is_empty());
        assert!(index.lock_days().waiting.is_empty());
        assert_eq!(without_needle(&index, 10), [b"a2".to_vec(), b"a3".to_vec()]);
        assert_eq!(without_needle(&index, 11), [b"b1".to_vec()]);
        // Writers of days that got nothing since are closed at the next commit.
        add_chunk(&index, 11, b"b2", "more");
        index.commit().unwrap();
        let writers = |index: &LineIndex| {
            let days = index.lock_days();
            let mut open: Vec<i32> = days
                .open
                .iter()
                .filter(|(_, open)| open.writer.is_some())
                .map(|(day, _)| *day)
                .collect();
            open.sort_unstable();
            open
        };
        assert_eq!(writers(&index), [11]);
        // Waiting chunks go with their day.
        add_chunk(&index, 12, b"c1", "x");
        add_chunk(&index, 11, b"b3", "y");
        index.drop_day(11).unwrap();
        assert!(index.lock_days().waiting.is_empty());
        index.commit().unwrap();
        assert!(without_needle(&index, 11).is_empty());
        assert_eq!(without_needle(&index, 12), [b"c1".to_vec()]);
    }

    #[test]
    fn trigrams_are_lowercased_word_runs_and_distinct_per_chunk() {
        let mut found = Vec::new();
        trigrams(b"AbCd", |g| found.push(g));
        assert_eq!(found, [0x0061_6263, 0x0062_6364]);
        // Only runs of word bytes: "ab c_d" has one, "c_d".
        found.clear();
        trigrams("ab c_d é".as_bytes(), |g| found.push(g));
        assert_eq!(found, [0x0063_5f64]);
        found.clear();
        trigrams("aé".as_bytes(), |g| found.push(g));
        assert_eq!(found, [0x0061_c3a9]);
        let mut set = GramSet::new();
        for line in [&b"abcabc"[..], b"ab", b"bca"] {
            trigrams(line, |g| set.insert(g));
        }
        let mut drained = Vec::new();
        set.drain(|g| drained.push(g));
        drained.sort_unstable();
        assert_eq!(drained, [0x0061_6263, 0x0062_6361, 0x0063_6162]);
        let mut again = Vec::new();
        set.drain(|g| again.push(g));
        assert!(again.is_empty());
    }
}
