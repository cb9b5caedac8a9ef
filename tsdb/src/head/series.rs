//! One in-memory series: its interned labels, the open XOR chunk being appended to, and its
//! completed chunks.
//!
//! Follows Prometheus's `memSeries`: a chunk is cut after [`SAMPLES_PER_CHUNK`] samples, or
//! when a sample crosses the next multiple of the chunk range (so chunks never straddle a
//! block boundary when blocks are aligned to that range, and cutting a block rarely has to
//! re-encode). Unlike Prometheus, the first chunk of each chunk-range window holds between
//! half and one and a half times that many samples, depending on the series id
//! ([`first_chunk_samples`]), so that series created together do not fill and cut their
//! chunks in step. A cut chunk is sealed in memory, then written to the head's chunk files and
//! swapped for its place there in the series' packed [`ChunkList`]
//! ([`SeriesData::heap_chunks`], [`SeriesData::swap_to_disk`]); readers turn places into
//! chunks through a [`FileReader`].
//!
//! Edge cases decided: the first sample of a series is always accepted (subject to the head's
//! minimum valid time); `last` is the last *accepted* sample, updated when a commit validates
//! a sample and before the WAL write, so that a batch holding several samples of one series is
//! checked in order; a failed WAL write puts it back.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use super::chunk_files::FileReader;
use super::chunk_list::{ChunkList, ChunkPlace};
use super::symbols::Symbols;
use crate::Result;
use crate::chunk::{DiskChunk, XorAppender, XorChunk};
use crate::storage::{ChunkData, ChunkMeta};

/// Samples after which the open chunk is cut (Prometheus's default).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A series in the head.
///
/// In declared order (`repr(C)`), as a commit reads it: the WAL flag, the lock and the last
/// sample within the first 32 bytes, so that validating a sample touches one cache line of
/// the series most of the time, not two (each commit visits every series of a scrape, and
/// most are no longer in the CPU's caches).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct MemSeries {
    /// Whether the series record is in the WAL (set under the WAL lock).
    pub(crate) logged: AtomicBool,
    /// Samples.
    pub(crate) data: Mutex<SeriesData>,
    /// (name, value) symbol ids, sorted by name.
    pub(crate) labels: Box<[(u32, u32)]>,
}

// The head holds one per active series: 152 bytes, with the labels and chunks elsewhere
// (malloc hands out 160 for 144 to 152).
const _: () = assert!(std::mem::size_of::<MemSeries>() <= 152);
const _: () = assert!(std::mem::offset_of!(MemSeries, data) == 8);

impl MemSeries {
    /// The series' labels as (name, value) strings, sorted by name.
    pub(crate) fn label_strs<'a>(
        &'a self,
        symbols: &'a Symbols,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.labels
            .iter()
            .map(|&(n, v)| (symbols.get(n), symbols.get(v)))
    }
}

/// The samples of a series; in declared order (`repr(C)`): what a commit reads first.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct SeriesData {
    /// The last accepted sample.
    pub(crate) last: LastSample,
    /// The chunk being appended to.
    pub(crate) open: Option<OpenChunk>,
    /// Completed chunks in memory, oldest first: sealed and not yet written to the chunk files
    /// (a failed write leaves them here), or re-encoded by a truncation. Usually none.
    pub(crate) in_memory: Box<[ChunkMeta]>,
    /// Completed chunks in the chunk files.
    pub(crate) on_disk: ChunkList,
}

/// The last accepted sample of a series: timestamp and value bits, in 16 bytes (an
/// `Option<(i64, u64)>` takes 24, which made every series 8 bytes bigger). A timestamp of
/// `i64::MIN` stands for none: a sample at that instant (292 million years BC) is therefore
/// never accepted, whatever the series holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastSample {
    t: i64,
    bits: u64,
}

impl Default for LastSample {
    fn default() -> Self {
        LastSample {
            t: i64::MIN,
            bits: 0,
        }
    }
}

impl From<Option<(i64, u64)>> for LastSample {
    fn from(sample: Option<(i64, u64)>) -> Self {
        sample.map_or_else(LastSample::default, |(t, bits)| LastSample { t, bits })
    }
}

/// The chunk being appended to. Its newest timestamp is the appender's.
#[derive(Debug)]
pub(crate) struct OpenChunk {
    pub(crate) appender: XorAppender,
    pub(crate) min_time: i64,
}

impl OpenChunk {
    /// Timestamp of the newest sample (`min_time` while the chunk is empty).
    pub(crate) fn max_time(&self) -> i64 {
        self.appender.last_timestamp().unwrap_or(self.min_time)
    }

    /// The buffer size to start the next chunk with: a quarter of what this chunk's bytes per
    /// sample make a full chunk. The buffer then grows by quarters (the chunk's bit writer
    /// does that), so the open chunk of every series stays within
    /// about a quarter of its contents: reserving the whole chunk up front would hold a full
    /// chunk's bytes per series from its first sample on (double the memory of a head whose
    /// chunks were just cut), and a doubling buffer up to half of it unused.
    fn next_capacity(&self) -> usize {
        let bytes = self.appender.encoded_len();
        let samples = self.appender.num_samples().max(1);
        bytes * SAMPLES_PER_CHUNK / samples / 4
    }

    /// A snapshot of the open chunk as an immutable chunk (copies its bytes).
    pub(crate) fn snapshot(&self) -> ChunkMeta {
        ChunkMeta {
            min_time: self.min_time,
            max_time: self.max_time(),
            chunk: self.appender.clone().finish().into(),
        }
    }
}

/// What [`SeriesData::append`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Appended {
    /// The sample is in the open chunk.
    pub(crate) stored: bool,
    /// A chunk was sealed first: the series has a chunk to write to the chunk files.
    pub(crate) sealed: bool,
}

/// Why a sample was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Stored.
    Accepted,
    /// Same timestamp and bit-identical value as the last sample: dropped silently.
    ExactDuplicate,
    /// Same timestamp as the last sample, different value.
    Duplicate,
    /// Older than the last sample, or than the head's minimum valid time.
    OutOfOrder,
}

impl SeriesData {
    /// Checks `(t, v)` against the last accepted sample and the head's minimum valid time,
    /// and on acceptance records it as the last.
    pub(crate) fn validate(&mut self, t: i64, bits: u64, min_valid: i64) -> Verdict {
        if t < min_valid || t == i64::MIN {
            return Verdict::OutOfOrder;
        }
        let last = self.last;
        if t < last.t {
            Verdict::OutOfOrder
        } else if t == last.t {
            if bits == last.bits {
                Verdict::ExactDuplicate
            } else {
                Verdict::Duplicate
            }
        } else {
            self.last = LastSample { t, bits };
            Verdict::Accepted
        }
    }

    /// Appends a validated sample to the open chunk of series `id`, cutting it first when
    /// full ([`SeriesData::chunk_is_full`]) or when `t` reaches the next multiple of
    /// `chunk_range`. The sample is dropped (`stored` false) only if the chunk refuses it,
    /// which validation rules out.
    pub(crate) fn append(&mut self, t: i64, v: f64, chunk_range: i64, id: u32) -> Appended {
        let cut = match &self.open {
            None => true,
            Some(open) => {
                t >= chunk_end(open.min_time, chunk_range)
                    || self.chunk_is_full(open, chunk_range, id)
            }
        };
        let mut capacity = 32;
        let mut sealed = false;
        if cut {
            capacity = self
                .open
                .as_ref()
                .map_or(capacity, OpenChunk::next_capacity);
            sealed = self.cut();
        }
        let open = self.open.get_or_insert_with(|| OpenChunk {
            appender: XorAppender::with_capacity(capacity),
            min_time: t,
        });
        Appended {
            stored: open.appender.append(t, v).is_ok(),
            sealed,
        }
    }

    /// Whether `open` holds all the samples it takes: [`SAMPLES_PER_CHUNK`], or
    /// [`first_chunk_samples`] when it is the series' first chunk in its chunk-range window.
    fn chunk_is_full(&self, open: &OpenChunk, chunk_range: i64, id: u32) -> bool {
        let samples = open.appender.num_samples();
        if samples < SAMPLES_PER_CHUNK / 2 {
            return false;
        }
        let window_end = chunk_end(open.min_time, chunk_range);
        let first_in_window = self
            .newest_completed_end()
            .is_none_or(|previous| chunk_end(previous, chunk_range) != window_end);
        let limit = if first_in_window {
            first_chunk_samples(id)
        } else {
            SAMPLES_PER_CHUNK
        };
        samples >= limit
    }

    /// Seals the open chunk, if it holds samples, into the completed chunks; returns whether
    /// it did.
    pub(crate) fn cut(&mut self) -> bool {
        let Some(open) = self.open.take() else {
            return false;
        };
        if open.appender.num_samples() > 0 {
            let mut chunks = std::mem::take(&mut self.in_memory).into_vec();
            chunks.push(ChunkMeta {
                min_time: open.min_time,
                max_time: open.max_time(),
                chunk: open.appender.finish().into(),
            });
            self.in_memory = chunks.into_boxed_slice();
            return true;
        }
        false
    }

    /// The sealed chunks still in memory, with their newest timestamps: what is to be written
    /// to the chunk files.
    pub(crate) fn heap_chunks(&self) -> impl Iterator<Item = (&XorChunk, i64)> {
        self.in_memory.iter().filter_map(|c| match &c.chunk {
            ChunkData::Xor(chunk) => Some((chunk, c.max_time)),
            _ => None,
        })
    }

    /// Replaces the sealed chunk `heap` with `on_disk`, its copy in a chunk file; false when
    /// the series no longer holds `heap` (truncated meanwhile).
    pub(crate) fn swap_to_disk(&mut self, heap: &XorChunk, on_disk: DiskChunk) -> bool {
        let held = self
            .in_memory
            .iter()
            .position(|c| matches!(&c.chunk, ChunkData::Xor(chunk) if chunk.is_same(heap)));
        let Some(at) = held else {
            return false;
        };
        let mut chunks = std::mem::take(&mut self.in_memory).into_vec();
        let sealed = chunks.remove(at);
        self.in_memory = chunks.into_boxed_slice();
        self.on_disk.push(ChunkPlace {
            file: on_disk.file.number,
            offset: on_disk.offset,
            len: on_disk.len,
            samples: on_disk.samples,
            min_time: sealed.min_time,
            max_time: sealed.max_time,
        });
        true
    }

    /// The newest timestamp of the completed chunks.
    fn newest_completed_end(&self) -> Option<i64> {
        let in_memory = self.in_memory.iter().map(|c| c.max_time).max();
        let on_disk = self.on_disk.newest().map(|p| p.max_time);
        in_memory.max(on_disk)
    }

    /// Timestamp of the oldest sample held (the oldest chunk on disk is the last listed).
    pub(crate) fn min_time(&self) -> Option<i64> {
        let on_disk = self.on_disk.iter().last().map(|p| p.min_time);
        let in_memory = self.in_memory.first().map(|c| c.min_time);
        let open = self.open.as_ref().map(|o| o.min_time);
        [on_disk, in_memory, open].into_iter().flatten().min()
    }

    /// Timestamp of the newest sample held.
    pub(crate) fn max_time(&self) -> Option<i64> {
        self.open
            .as_ref()
            .map(OpenChunk::max_time)
            .or_else(|| self.newest_completed_end())
    }

    /// The newest stored sample as `(timestamp, value bits)`: what `last` is between commits,
    /// so a commit whose WAL write failed puts it back from here. When no chunk is open the
    /// newest completed one is read; if that read fails, its newest timestamp is known anyway
    /// and the value reads as 0 (only the exact-duplicate check looks at it).
    pub(crate) fn newest_stored(&self, files: &mut FileReader) -> Option<(i64, u64)> {
        if let Some(sample) = self.open.as_ref().and_then(|o| o.appender.last_sample()) {
            return Some(sample);
        }
        let end = self.newest_completed_end()?;
        let newest = self.completed(end, i64::MAX, files).pop()?;
        let value = newest.chunk.iter().last().map_or(0, |(_, v)| v.to_bits());
        Some((newest.max_time, value))
    }

    /// Whether a sample lies in `[mint, maxt]`, judged by chunk bounds: the open chunk
    /// answers for recent ranges without the chunk list being decoded.
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let inside = |min: i64, max: i64| min <= maxt && max >= mint;
        self.open
            .as_ref()
            .is_some_and(|o| inside(o.min_time, o.max_time()))
            || self
                .in_memory
                .iter()
                .any(|c| inside(c.min_time, c.max_time))
            || self
                .on_disk
                .iter()
                .take_while(|p| p.max_time >= mint)
                .any(|p| p.min_time <= maxt)
    }

    /// The completed chunks overlapping `[mint, maxt]`, in memory and on disk, oldest first
    /// (those on disk not read yet).
    fn completed(&self, mint: i64, maxt: i64, files: &mut FileReader) -> Vec<ChunkMeta> {
        let overlaps = |min: i64, max: i64| min <= maxt && max >= mint;
        let mut chunks: Vec<ChunkMeta> = self
            .on_disk
            .iter()
            .take_while(|p| p.max_time >= mint)
            .filter(|p| overlaps(p.min_time, p.max_time))
            .filter_map(|p| files.chunk(&p))
            .collect();
        chunks.extend(
            self.in_memory
                .iter()
                .filter(|c| overlaps(c.min_time, c.max_time))
                .cloned(),
        );
        chunks.sort_by_key(|c| c.min_time);
        chunks
    }

    /// Chunks overlapping `[mint, maxt]` (the open one as a snapshot), oldest first.
    pub(crate) fn chunks_in(&self, mint: i64, maxt: i64, files: &mut FileReader) -> Vec<ChunkMeta> {
        let mut out = self.completed(mint, maxt, files);
        if let Some(open) = &self.open
            && open.min_time <= maxt
            && open.max_time() >= mint
        {
            out.push(open.snapshot());
        }
        out
    }

    /// Chunks holding exactly the samples with `mint <= t < maxt`: chunks inside the range are
    /// shared, chunks straddling a bound are re-encoded with the samples inside (read from
    /// disk if need be: the error of a failed read is returned).
    pub(crate) fn chunks_within(
        &self,
        mint: i64,
        maxt: i64,
        files: &mut FileReader,
    ) -> Result<Vec<ChunkMeta>> {
        let mut within = Vec::new();
        for c in self.chunks_in(mint, maxt, files) {
            if c.min_time >= maxt || c.max_time < mint {
                continue;
            }
            if c.min_time >= mint && c.max_time < maxt {
                within.push(c);
            } else if let Some(part) = reencode(&c.chunk.loaded()?, |t| t >= mint && t < maxt) {
                within.push(part);
            }
        }
        Ok(within)
    }

    /// Drops samples older than `mint`: whole chunks, and the older part of a chunk that
    /// straddles `mint` (re-encoded into memory; if it cannot be read from disk it is kept
    /// whole, older samples too, with a warning). Returns the timestamp of the oldest sample
    /// left, `None` when none is.
    pub(crate) fn truncate_before(&mut self, mint: i64, files: &mut FileReader) -> Option<i64> {
        let mut straddling: Vec<ChunkMeta> = Vec::new();
        self.on_disk.retain(|p| {
            if p.max_time < mint {
                return false;
            }
            if p.min_time >= mint {
                return true;
            }
            match files.chunk(p) {
                Some(chunk) => {
                    straddling.push(chunk);
                    false
                }
                None => true,
            }
        });
        let mut chunks = std::mem::take(&mut self.in_memory).into_vec();
        chunks.retain(|c| c.max_time >= mint);
        chunks.extend(straddling);
        for chunk in &mut chunks {
            if chunk.min_time >= mint {
                continue;
            }
            match chunk.chunk.loaded() {
                Ok(loaded) => match reencode(&loaded, |t| t >= mint) {
                    Some(meta) => *chunk = meta,
                    // No sample at or after `mint` after all: dropped below.
                    None => chunk.max_time = i64::MIN,
                },
                Err(e) => tracing::warn!(error = %e, "a head chunk could not be truncated"),
            }
        }
        chunks.retain(|c| c.max_time >= mint);
        chunks.sort_by_key(|c| c.min_time);
        self.in_memory = chunks.into_boxed_slice();
        if let Some(open) = &mut self.open {
            let max_time = open.max_time();
            if max_time < mint {
                self.open = None;
            } else if open.min_time < mint {
                let mut appender = XorAppender::new();
                let mut min_time = None;
                for (t, v) in open.appender.iter().filter(|&(t, _)| t >= mint) {
                    if appender.append(t, v).is_ok() {
                        min_time.get_or_insert(t);
                    }
                }
                open.appender = appender;
                open.min_time = min_time.unwrap_or(max_time);
            }
        }
        self.min_time()
    }

    /// Number of chunks, the open one included.
    pub(crate) fn chunk_count(&self) -> usize {
        self.on_disk.iter().count() + self.in_memory.len() + usize::from(self.open.is_some())
    }
}

/// Samples in series `id`'s first chunk of a chunk-range window: from half to one and a half
/// times [`SAMPLES_PER_CHUNK`], by id. Series created together (every series of a target,
/// every target after a start) and scraped at one interval would otherwise fill and cut their
/// chunks in step: every open chunk full at the same moment — the head's memory peak, twice
/// the average — and every cut chunk written in the same second. Spread, the open chunks are
/// about half full at any time. Ids are handed out in sequence, so consecutive series get
/// consecutive lengths.
fn first_chunk_samples(id: u32) -> usize {
    SAMPLES_PER_CHUNK / 2 + id as usize % SAMPLES_PER_CHUNK
}

/// The end (exclusive) of the chunk-range window `t` falls in.
fn chunk_end(t: i64, chunk_range: i64) -> i64 {
    let range = chunk_range.max(1);
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

/// A chunk with the samples of `chunk` whose timestamps `keep` accepts; `None` if none.
pub(crate) fn reencode(chunk: &ChunkData, keep: impl Fn(i64) -> bool) -> Option<ChunkMeta> {
    let mut appender = XorAppender::new();
    let (mut min, mut max) = (None, 0);
    for (t, v) in chunk.iter().filter(|&(t, _)| keep(t)) {
        if appender.append(t, v).is_ok() {
            min.get_or_insert(t);
            max = t;
        }
    }
    Some(ChunkMeta {
        min_time: min?,
        max_time: max,
        chunk: appender.finish().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::chunk_files::{ChunkFiles, FileRegistry};

    #[test]
    fn cuts_by_count_and_by_range_boundary() {
        // Series 0's first chunk of a window takes 60 samples, the next ones 120; the window
        // boundary at 1,000 cuts a chunk of 100 and starts another first chunk.
        let mut s = SeriesData::default();
        let mut cut_at = Vec::new();
        for t in 0..1_100 {
            assert_eq!(s.validate(t, 0, i64::MIN), Verdict::Accepted);
            let appended = s.append(t, t as f64, 1_000, 0);
            assert!(appended.stored);
            if appended.sealed {
                cut_at.push(t);
            }
        }
        assert_eq!(
            cut_at,
            [60, 180, 300, 420, 540, 660, 780, 900, 1_000, 1_060]
        );
        let lengths: Vec<usize> = s.in_memory.iter().map(|c| c.chunk.num_samples()).collect();
        assert_eq!(lengths, [60, 120, 120, 120, 120, 120, 120, 120, 100, 60]);
        let mut s = SeriesData::default();
        for t in [10, 90, 100, 150] {
            s.append(t, 1.0, 100, 0);
        }
        assert_eq!(s.in_memory.len(), 1);
        assert_eq!((s.in_memory[0].min_time, s.in_memory[0].max_time), (10, 90));
        let registry = FileRegistry::default();
        let mut files = registry.reader();
        let within = s.chunks_within(50, 120, &mut files).unwrap();
        let samples: Vec<i64> = within
            .iter()
            .flat_map(|c| c.chunk.iter())
            .map(|s| s.0)
            .collect();
        assert_eq!(samples, [90, 100]);
        assert!(s.truncate_before(95, &mut files).is_some());
        assert_eq!(s.min_time(), Some(100));
        assert!(s.truncate_before(200, &mut files).is_none());
    }

    #[test]
    fn series_created_together_cut_their_chunks_at_different_samples() {
        let first_cuts: Vec<i64> = (0..SAMPLES_PER_CHUNK as u32)
            .map(|id| {
                let mut s = SeriesData::default();
                (0..300)
                    .find(|&t| s.append(t, 1.0, 1_000_000, id).sealed)
                    .unwrap_or(-1)
            })
            .collect();
        let expected: Vec<i64> = (60..180).collect();
        assert_eq!(first_cuts, expected);
    }

    #[test]
    fn a_chunk_on_disk_straddling_the_truncation_is_cut_in_memory_and_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = ChunkFiles::open(dir.path().join("chunks_head")).unwrap();
        let registry = files.registry().clone();
        let write_sealed = |s: &mut SeriesData, files: &mut ChunkFiles| {
            let heap: Vec<(XorChunk, i64)> = s.heap_chunks().map(|(c, t)| (c.clone(), t)).collect();
            for ((chunk, _), disk) in heap.iter().zip(files.write(&heap).unwrap()) {
                assert!(s.swap_to_disk(chunk, disk));
            }
        };
        let spans = |s: &SeriesData| -> Vec<(i64, i64)> {
            s.on_disk.iter().map(|p| (p.min_time, p.max_time)).collect()
        };
        let mut s = SeriesData::default();
        for t in 0..320 {
            s.validate(t, 0, i64::MIN);
            s.append(t, t as f64, 1_000_000, 0);
        }
        write_sealed(&mut s, &mut files);
        assert_eq!(spans(&s), [(180, 299), (60, 179), (0, 59)], "newest first");
        assert!(s.in_memory.is_empty());

        assert!(s.truncate_before(100, &mut registry.reader()).is_some());
        assert_eq!(spans(&s), [(180, 299)]);
        let cut: Vec<(i64, i64)> = s
            .in_memory
            .iter()
            .map(|c| (c.min_time, c.max_time))
            .collect();
        assert_eq!(cut, [(100, 179)]);
        write_sealed(&mut s, &mut files);
        assert_eq!(spans(&s), [(180, 299), (100, 179)], "listed in time order");

        let samples: Vec<i64> = s
            .chunks_in(i64::MIN, i64::MAX, &mut registry.reader())
            .iter()
            .flat_map(|c| c.chunk.iter().map(|(t, _)| t))
            .collect();
        assert_eq!(samples, (100..320).collect::<Vec<_>>());
        assert_eq!((s.min_time(), s.max_time()), (Some(100), Some(319)));
        assert!(s.overlaps(150, 160) && !s.overlaps(0, 99) && !s.overlaps(320, 400));
        assert_eq!(s.chunk_count(), 3);
    }

    #[test]
    fn validation() {
        let mut s = SeriesData::default();
        assert_eq!(s.validate(10, 1, 0), Verdict::Accepted);
        assert_eq!(s.validate(10, 1, 0), Verdict::ExactDuplicate);
        assert_eq!(s.validate(10, 2, 0), Verdict::Duplicate);
        assert_eq!(s.validate(9, 2, 0), Verdict::OutOfOrder);
        assert_eq!(s.validate(11, 2, 20), Verdict::OutOfOrder);
        assert_eq!(s.validate(11, 2, 0), Verdict::Accepted);
        let mut s = SeriesData::default();
        assert_eq!(s.validate(i64::MIN, 0, i64::MIN), Verdict::OutOfOrder);
        assert_eq!(s.validate(i64::MIN + 1, 0, i64::MIN), Verdict::Accepted);
    }
}
