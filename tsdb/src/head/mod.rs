//! The head: the newest samples of every active series, in memory, behind the write-ahead
//! log.
//!
//! Modelled on Prometheus's `tsdb/head.go`
//! (<https://github.com/prometheus/prometheus/blob/main/tsdb/head.go>):
//! - `series`: one series — interned labels, the open XOR chunk, completed chunks (cut at
//!   120 samples, 60–179 for the first of a chunk range, or at a chunk-range boundary), the
//!   last sample for validation;
//! - `chunk_list`: a series' completed chunks in the chunk files, packed;
//! - `chunk_files`: where completed chunks go out of the heap, read back when needed;
//! - `symbols`: the string table that makes a series' labels 8 bytes per pair;
//! - `postings`: the inverted index answering label matchers;
//! - `appender`: batched appends, WAL first then memory ([`Appender`]);
//! - `querier`: [`Querier`](crate::storage::Querier) over the head;
//! - `checkpoint`: what lets old WAL segments go after [`Head::truncate_before`];
//! - `metrics`, `stats`: `/metrics` and `/api/v1/status/tsdb`.
//!
//! Layout on disk: `<dir>/wal/` holds the WAL segments and at most one
//! `checkpoint.NNNNNNNN` directory; `<dir>/chunks_head/` the chunk files, which start empty
//! at every open (see `tsdb/FORMAT.md`).
//!
//! Start-up ([`Head::open`]) replays the newest checkpoint then the segments after it; damage
//! is truncated or skipped as the [WAL](crate::wal) describes, logged with `tracing::warn!`,
//! counted in `sightline_tsdb_wal_corruptions_total`, and never refuses a start (an unknown
//! segment version is the one error, as in the WAL).
//!
//! Edge cases decided:
//! - A series ref is the series' WAL ref and an index into the head's series table; refs are
//!   never reused while the process runs. A ref whose series was dropped by
//!   [`Head::truncate_before`] is answered with [`Error::UnknownSeriesRef`]: append by labels
//!   again.
//! - Samples older than the head's minimum valid time (the `mint` of the last truncation) are
//!   rejected as out of order, as Prometheus rejects them as out of bounds.
//! - A series created by an appender that is dropped without committing stays in memory with
//!   no samples and is not written to the WAL; it is not dropped by truncation (it may be in
//!   use), a small leak bounded by the number of distinct label sets ever appended.
//! - A series record whose labels already exist under another ref (a series dropped and
//!   re-created while WAL segments naming the old ref were still kept) is mapped onto the
//!   existing series during replay.

mod appender;
mod checkpoint;
mod chunk_files;
mod chunk_list;
mod metrics;
mod postings;
mod querier;
mod series;
mod stats;
mod symbols;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use hashbrown::HashTable;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use sightline_core::labels::Labels;

use crate::storage::ChunkMeta;
use crate::wal::{self, Record, RefSample, RefSeries, ReplayReport, SyncPolicy, WalOptions};
use crate::wal::{WalReader, WalWriter};
use crate::{Error, Result};

pub use appender::{Appender, CommitStats};

/// The series of the newest WAL checkpoint in `wal_dir` (a head directory's `wal`), for
/// readers that follow the WAL (remote write): the series the deleted segments announced.
pub fn checkpoint_series(wal_dir: &std::path::Path) -> crate::Result<Vec<crate::wal::RefSeries>> {
    checkpoint::newest_series(wal_dir)
}
pub use metrics::HeadMetrics;
pub use series::SAMPLES_PER_CHUNK;
pub use stats::{HeadStats, StatEntry};

use chunk_files::{ChunkFiles, FileRegistry};
use series::{MemSeries, SeriesData, Verdict};
use symbols::Symbols;

/// Default chunk range: 2 h, the default block range.
pub const DEFAULT_CHUNK_RANGE_MS: i64 = 2 * 60 * 60 * 1000;

/// Settings of a [`Head`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadOptions {
    /// `storage.wal_sync`: the longest a committed batch stays un-fsynced. Zero fsyncs at the
    /// end of every [`Appender::commit`].
    pub wal_sync: Duration,
    /// WAL segment size in bytes.
    pub segment_size: u64,
    /// Chunks are cut when a sample reaches the next multiple of this many milliseconds, so
    /// that they do not straddle blocks of this range.
    pub chunk_range: i64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            wal_sync: wal::DEFAULT_SYNC_INTERVAL,
            segment_size: wal::DEFAULT_SEGMENT_SIZE,
            chunk_range: DEFAULT_CHUNK_RANGE_MS,
        }
    }
}

/// A series' handle in the head, to cache and pass to [`Appender::append_ref`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(u64);

impl SeriesRef {
    /// The ref as a number (the series' WAL ref).
    pub fn get(self) -> u64 {
        self.0
    }

    fn from_id(id: u32) -> SeriesRef {
        SeriesRef(u64::from(id))
    }

    fn id(self) -> Option<u32> {
        u32::try_from(self.0).ok()
    }
}

/// What [`Head::open`] found while replaying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadReplayReport {
    /// The checkpoint's replay, if there was one.
    pub checkpoint: Option<ReplayReport>,
    /// The checkpoint's minimum time (samples older than it were skipped).
    pub checkpoint_mint: Option<i64>,
    /// The WAL segments' replay.
    pub wal: ReplayReport,
    /// Series in the head after replay.
    pub series: usize,
    /// Samples put back into the head.
    pub samples: u64,
    /// Samples skipped: older than the checkpoint, or rejected as out of order or duplicate.
    pub skipped_samples: u64,
    /// Samples whose series ref no series record announced.
    pub unknown_refs: u64,
    /// Wall time of the replay.
    pub duration: Duration,
}

/// The in-memory head of the metric store. Shared by appenders and queriers (`Arc<Head>`).
#[derive(Debug)]
pub struct Head {
    wal_dir: PathBuf,
    options: HeadOptions,
    state: RwLock<State>,
    wal: Mutex<WalState>,
    /// Where completed chunks are written out of the heap; taken after `state`, before a
    /// series' data.
    chunk_files: Mutex<ChunkFiles>,
    /// The chunk files by number, for reading the chunks the series list.
    chunk_registry: FileRegistry,
    /// Held for a whole [`Head::truncate_before`], so that checkpoints are written one at a
    /// time while the WAL lock is free.
    truncation: Mutex<()>,
    metrics: HeadMetrics,
    min_valid_time: AtomicI64,
    /// Timestamp of the oldest sample held, `i64::MAX` while there is none: kept up to date by
    /// commits and truncations, as Prometheus's head keeps its `minTime`, so that asking for it
    /// (every block maintenance tick, every home page) does not walk every series.
    min_time: AtomicI64,
    replay: HeadReplayReport,
}

/// Series, symbols and postings.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) symbols: Symbols,
    pub(crate) postings: postings::Postings,
    /// Indexed by series id; `None` for dropped (or never used) ids.
    pub(crate) series: Vec<Option<Box<MemSeries>>>,
    /// Ids by the hash of their labels ([`hash_labels`]): bare ids, 4 bytes a slot, rehashed
    /// from each series' interned labels when the table grows (a map from hash to id held
    /// 16-byte slots and a second map for colliding hashes).
    by_labels: HashTable<u32>,
    hasher: RandomState,
    pub(crate) live: usize,
}

#[derive(Debug)]
struct WalState {
    writer: WalWriter,
    every_batch: bool,
    /// Highest sample timestamp written to each segment (`i64::MIN`: none).
    segment_max_t: BTreeMap<u64, i64>,
    series_buf: Vec<RefSeries>,
    samples_buf: Vec<RefSample>,
    newly_logged: Vec<u32>,
}

impl State {
    pub(crate) fn get(&self, id: u32) -> Option<&MemSeries> {
        self.series.get(id as usize).and_then(|s| s.as_deref())
    }

    fn hash(&self, labels: &Labels) -> u64 {
        hash_labels(
            &self.hasher,
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        )
    }

    fn matches_labels(&self, series: &MemSeries, labels: &Labels) -> bool {
        series.labels.len() == labels.len()
            && series
                .labels
                .iter()
                .zip(labels)
                .all(|(&(n, v), l)| self.symbols.get(n) == l.name && self.symbols.get(v) == l.value)
    }

    fn find(&self, hash: u64, labels: &Labels) -> Option<u32> {
        self.by_labels
            .find(hash, |&id| {
                self.get(id).is_some_and(|s| self.matches_labels(s, labels))
            })
            .copied()
    }

    /// Adds a series at `id` (which must be free).
    fn insert(&mut self, id: u32, hash: u64, labels: &Labels, logged: bool) {
        let mut pairs = Vec::with_capacity(labels.len());
        for label in labels {
            let name = self.symbols.intern(&label.name);
            let value = self.symbols.intern(&label.value);
            if let (Some(n), Some(v)) = (self.symbols.get_arc(name), self.symbols.get_arc(value)) {
                let (n, v) = (Arc::clone(n), Arc::clone(v));
                self.postings.add(&n, &v, id);
            }
            pairs.push((name, value));
        }
        let slot = id as usize;
        if self.series.len() <= slot {
            self.series.resize_with(slot + 1, || None);
        }
        self.series[slot] = Some(Box::new(MemSeries {
            labels: pairs.into_boxed_slice(),
            logged: AtomicBool::new(logged),
            data: Mutex::new(SeriesData::default()),
        }));
        let State {
            by_labels,
            series,
            symbols,
            hasher,
            ..
        } = self;
        by_labels.insert_unique(hash, id, |&other| {
            series
                .get(other as usize)
                .and_then(Option::as_deref)
                .map_or(0, |s| hash_labels(hasher, s.label_strs(symbols)))
        });
        self.live += 1;
    }

    /// Drops series `id` from the table and the index (symbols are freed separately).
    fn remove(&mut self, id: u32) {
        let Some(series) = self.series.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        for (name, value) in series.label_strs(&self.symbols) {
            self.postings.remove(name, value, id);
        }
        let hash = hash_labels(&self.hasher, series.label_strs(&self.symbols));
        if let Ok(entry) = self.by_labels.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        self.live -= 1;
    }

    /// Frees symbols no live series uses.
    fn collect_symbols(&mut self) {
        let mut used = vec![false; self.symbols.capacity()];
        for series in self.series.iter().flatten() {
            for &(n, v) in series.labels.iter() {
                for id in [n, v] {
                    if let Some(slot) = used.get_mut(id as usize) {
                        *slot = true;
                    }
                }
            }
        }
        self.symbols.retain(&used);
    }

    /// Timestamp of the oldest sample of any series (walks every series' chunks: for a
    /// [`Head::min_time`] to start from after a replay).
    fn oldest_sample(&self) -> Option<i64> {
        self.series
            .iter()
            .flatten()
            .filter_map(|series| lock(&series.data).min_time())
            .min()
    }

    /// A series' labels as a [`Labels`] value.
    pub(crate) fn labels_of(&self, series: &MemSeries) -> Labels {
        Labels::from_pairs(series.label_strs(&self.symbols))
    }

    /// Ids of live series, ascending.
    pub(crate) fn all_ids(&self) -> Vec<u32> {
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(id, _)| id as u32)
            .collect()
    }

    fn next_id(&self) -> Result<u32> {
        u32::try_from(self.series.len()).map_err(|_| Error::SeriesRefsExhausted)
    }

    /// Writes the completed chunks that series `ids` hold in memory to `files`, and swaps them
    /// for their copies there. A failed write (a full disk) leaves them in memory, where the
    /// series' next cut finds them again; it is logged.
    fn write_sealed_chunks(&self, files: &mut ChunkFiles, ids: impl IntoIterator<Item = u32>) {
        let mut owners = Vec::new();
        let mut chunks = Vec::new();
        for id in ids {
            if let Some(series) = self.get(id) {
                for (chunk, max_time) in lock(&series.data).heap_chunks() {
                    owners.push(id);
                    chunks.push((chunk.clone(), max_time));
                }
            }
        }
        if chunks.is_empty() {
            return;
        }
        match files.write(&chunks) {
            Ok(on_disk) => {
                for ((id, (heap, _)), on_disk) in owners.into_iter().zip(&chunks).zip(on_disk) {
                    if let Some(series) = self.get(id) {
                        lock(&series.data).swap_to_disk(heap, on_disk);
                    }
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                chunks = chunks.len(),
                "could not write completed head chunks to disk; they stay in memory"
            ),
        }
    }
}

/// The hash a label set is filed under in [`State::by_labels`], from its (name, value) pairs
/// in order: the same for a [`Labels`] value and for a series' interned labels.
fn hash_labels<'a>(hasher: &RandomState, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut state = hasher.build_hasher();
    for (name, value) in pairs {
        name.hash(&mut state);
        value.hash(&mut state);
    }
    state.finish()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a head lock leaves data that is still consistent sample by
    // sample; keep serving rather than poisoning every later caller.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Head {
    /// Opens the head stored under `dir` (creating it), replaying the WAL into memory.
    pub fn open(dir: impl AsRef<Path>, options: HeadOptions) -> Result<Head> {
        let started = Instant::now();
        let wal_dir = dir.as_ref().join("wal");
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| Error::io("creating WAL directory", &wal_dir, e))?;
        let metrics = HeadMetrics::new().map_err(Error::Metrics)?;
        let mut chunk_files = ChunkFiles::open(dir.as_ref().join("chunks_head"))?;
        let mut state = State::default();
        let mut replay = HeadReplayReport::default();
        let mut max_t = i64::MIN;

        let checkpoint = checkpoint::find(&wal_dir)?;
        let mut mint = i64::MIN;
        if let Some(cp) = &checkpoint {
            checkpoint::delete_segments_through(&wal_dir, cp.segment)?;
            match checkpoint::read_mint(&cp.dir) {
                Some(m) => mint = m,
                None => {
                    tracing::warn!(checkpoint = %cp.dir.display(), "WAL checkpoint's mint file is missing or damaged; replaying all samples");
                    metrics.wal_corruptions.inc();
                }
            }
            replay.checkpoint_mint = Some(mint);
            let report = replay_dir(
                &cp.dir,
                (&mut state, &mut chunk_files),
                (mint, options.chunk_range),
                &mut replay,
                &mut max_t,
            )?;
            metrics
                .wal_corruptions
                .inc_by(report.corruptions.len() as u64);
            replay.checkpoint = Some(report);
        }
        let report = replay_dir(
            &wal_dir,
            (&mut state, &mut chunk_files),
            (mint, options.chunk_range),
            &mut replay,
            &mut max_t,
        )?;
        metrics
            .wal_corruptions
            .inc_by(report.corruptions.len() as u64);
        replay.wal = report;

        let existing = wal::list_segments(&wal_dir)?;
        let sync = SyncPolicy::Interval(if options.wal_sync.is_zero() {
            Duration::MAX
        } else {
            options.wal_sync
        });
        let writer = WalWriter::open(
            &wal_dir,
            WalOptions {
                segment_size: options.segment_size,
                sync,
            },
        )?;
        let segment_max_t = existing.into_iter().map(|seq| (seq, max_t)).collect();

        replay.series = state.live;
        replay.duration = started.elapsed();
        metrics.head_series.set(state.live as i64);
        if !replay.wal.corruptions.is_empty()
            || replay
                .checkpoint
                .as_ref()
                .is_some_and(|c| !c.corruptions.is_empty())
        {
            tracing::warn!(dir = %wal_dir.display(), "WAL replay found damage; see earlier warnings. Data after the damaged places in those segments is lost");
        }
        tracing::info!(
            dir = %wal_dir.display(),
            series = replay.series,
            samples = replay.samples,
            duration_ms = replay.duration.as_millis() as u64,
            "head replayed from WAL"
        );
        let min_time = state.oldest_sample().unwrap_or(i64::MAX);
        Ok(Head {
            wal_dir,
            options,
            state: RwLock::new(state),
            wal: Mutex::new(WalState {
                writer,
                every_batch: options.wal_sync.is_zero(),
                segment_max_t,
                series_buf: Vec::new(),
                samples_buf: Vec::new(),
                newly_logged: Vec::new(),
            }),
            chunk_registry: chunk_files.registry().clone(),
            chunk_files: Mutex::new(chunk_files),
            truncation: Mutex::new(()),
            metrics,
            min_valid_time: AtomicI64::new(mint),
            min_time: AtomicI64::new(min_time),
            replay,
        })
    }

    /// The settings the head was opened with.
    pub fn options(&self) -> &HeadOptions {
        &self.options
    }

    /// The head's metrics, to register with the process registry.
    pub fn metrics(&self) -> &HeadMetrics {
        &self.metrics
    }

    /// What the replay at [`Head::open`] found.
    pub fn replay_report(&self) -> &HeadReplayReport {
        &self.replay
    }

    /// Samples older than this are rejected (the `mint` of the last truncation).
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Relaxed)
    }

    /// Timestamp of the oldest sample in the head; `None` while it holds none.
    pub fn min_time(&self) -> Option<i64> {
        let t = self.min_time.load(Ordering::Relaxed);
        (t != i64::MAX).then_some(t)
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.read().live
    }

    /// A new appender; keep it to reuse its buffers across batches.
    pub fn appender(self: &Arc<Self>) -> Appender {
        Appender::new(Arc::clone(self))
    }

    /// fsyncs the WAL if data is unsynced and the sync interval has passed; returns whether
    /// it synced. Call from a periodic tick (e.g. every 100 ms) so that a quiet head still
    /// syncs within the interval. (Commits also call it.)
    pub fn sync_if_due(&self) -> Result<bool> {
        let mut wal = lock(&self.wal);
        self.sync_if_due_locked(&mut wal)
    }

    /// fsyncs the WAL now.
    pub fn sync(&self) -> Result<()> {
        let mut wal = lock(&self.wal);
        let timer = self.metrics.wal_fsync_duration.start_timer();
        wal.writer.sync()?;
        timer.observe_duration();
        Ok(())
    }

    fn sync_if_due_locked(&self, wal: &mut WalState) -> Result<bool> {
        let now = Instant::now();
        let started = Instant::now();
        let synced = wal.writer.sync_if_due(now)?;
        if synced {
            self.metrics
                .wal_fsync_duration
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(synced)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The ref of the series with `labels`, creating it (not yet in the WAL) if new.
    fn get_or_create(&self, labels: &Labels) -> Result<u32> {
        if labels.is_empty() {
            return Err(Error::EmptyLabels);
        }
        {
            let state = self.read();
            let hash = state.hash(labels);
            if let Some(id) = state.find(hash, labels) {
                return Ok(id);
            }
        }
        let mut state = self.write();
        let hash = state.hash(labels);
        if let Some(id) = state.find(hash, labels) {
            return Ok(id);
        }
        let id = state.next_id()?;
        state.insert(id, hash, labels, false);
        self.metrics.head_series.set(state.live as i64);
        Ok(id)
    }

    /// Every series with its samples `mint <= t < maxt` (note: `maxt` exclusive, so that
    /// adjacent blocks `[a, b)`, `[b, c)` hold each sample once), sorted by labels; series
    /// without samples in the range are left out.
    ///
    /// This is what the block writer consumes to cut a block. Chunks entirely inside the range
    /// are shared with the head (no copy); chunks straddling a bound, including the open chunk,
    /// are re-encoded with just the samples inside. Chunks are in time order and do not
    /// overlap. The head is not changed: call [`Head::truncate_before`] once the block is
    /// durable.
    pub fn series_in_range(&self, mint: i64, maxt: i64) -> Result<Vec<(Labels, Vec<ChunkMeta>)>> {
        let state = self.read();
        let mut files = self.chunk_registry.reader();
        let mut out = Vec::new();
        for series in state.series.iter().flatten() {
            let chunks = lock(&series.data).chunks_within(mint, maxt, &mut files)?;
            if !chunks.is_empty() {
                out.push((state.labels_of(series), chunks));
            }
        }
        drop(state);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drops in-memory samples older than `mint` (after they were persisted in a block),
    /// drops series left without samples, and lets the WAL go: writes a checkpoint of the live
    /// series and deletes the segments whose samples are all older than `mint`.
    ///
    /// Samples older than `mint` are rejected from then on. Commits wait only while the
    /// in-memory samples are dropped; the checkpoint is written with the WAL unlocked, so
    /// appends go on meanwhile (into segments the checkpoint does not replace). Truncations
    /// run one at a time. Returns the number of series dropped.
    pub fn truncate_before(&self, mint: i64) -> Result<usize> {
        self.truncate_before_while(mint, || {})
    }

    /// [`Head::truncate_before`], calling `during_checkpoint` once the checkpoint writer has
    /// taken its first series (a test's window into "a checkpoint is being written").
    fn truncate_before_while(&self, mint: i64, during_checkpoint: impl FnOnce()) -> Result<usize> {
        let _one_at_a_time = lock(&self.truncation);
        let wal = lock(&self.wal);
        self.min_valid_time.fetch_max(mint, Ordering::Relaxed);
        let mut state = self.write();
        let mut files = self.chunk_registry.reader();
        let mut dropped = Vec::new();
        let mut oldest = i64::MAX;
        for (id, slot) in state.series.iter().enumerate() {
            if let Some(series) = slot {
                match lock(&series.data).truncate_before(mint, &mut files) {
                    Some(t) => oldest = oldest.min(t),
                    None if series.logged.load(Ordering::Relaxed) => dropped.push(id as u32),
                    None => {}
                }
            }
        }
        lock(&self.chunk_files).delete_before(mint);
        for &id in &dropped {
            state.remove(id);
        }
        self.min_time.store(oldest, Ordering::Relaxed);
        if !dropped.is_empty() {
            state.collect_symbols();
        }
        self.metrics.head_series.set(state.live as i64);

        // Segments up to `through` are closed (appends go to `current` or later) and hold no
        // sample at or after `mint`; every series they announced that is still alive is in
        // the snapshot below, taken under the WAL lock so that it agrees with them.
        let current = wal.writer.segment();
        let mut through = None;
        for (&seq, &max_t) in &wal.segment_max_t {
            if seq >= current || max_t >= mint {
                break;
            }
            through = Some(seq);
        }
        let Some(through) = through else {
            return Ok(dropped.len());
        };
        let series: Vec<RefSeries> = state
            .series
            .iter()
            .enumerate()
            .filter_map(|(id, s)| Some((id, s.as_deref()?)))
            .filter(|(_, s)| s.logged.load(Ordering::Relaxed))
            .map(|(id, s)| RefSeries {
                series_ref: id as u64,
                labels: s
                    .labels
                    .iter()
                    .map(|&(n, v)| {
                        (
                            state.symbols.get(n).to_owned(),
                            state.symbols.get(v).to_owned(),
                        )
                    })
                    .collect(),
            })
            .collect();
        drop(state);
        drop(wal);
        let mut during_checkpoint = Some(during_checkpoint);
        let series = series.into_iter().inspect(|_| {
            if let Some(call) = during_checkpoint.take() {
                call();
            }
        });
        checkpoint::write(&self.wal_dir, through, mint, series)?;
        lock(&self.wal)
            .segment_max_t
            .retain(|&seq, _| seq > through);
        tracing::info!(
            through,
            mint,
            dropped = dropped.len(),
            "head truncated and WAL checkpointed"
        );
        Ok(dropped.len())
    }

    /// Cardinality statistics for `/api/v1/status/tsdb`, with `limit` entries per top list
    /// (Prometheus uses 10).
    pub fn stats(&self, limit: usize) -> HeadStats {
        HeadStats {
            min_time: self.min_time(),
            ..stats::compute(&self.read(), limit)
        }
    }
}

/// Replays every record of the WAL directory `dir` (a checkpoint or the live segments) into
/// `state`, writing completed chunks to the chunk files as it goes; series refs are
/// renumbered per directory.
fn replay_dir(
    dir: &Path,
    (state, chunk_files): (&mut State, &mut ChunkFiles),
    bounds: (i64, i64),
    replay: &mut HeadReplayReport,
    max_t: &mut i64,
) -> Result<ReplayReport> {
    let mut reader = WalReader::open(dir)?;
    let mut remap = HashMap::new();
    let mut sealed = Vec::new();
    for record in &mut reader {
        apply_record(
            state,
            record?,
            bounds,
            &mut remap,
            replay,
            max_t,
            &mut sealed,
        );
        state.write_sealed_chunks(chunk_files, sealed.drain(..));
    }
    Ok(reader.report().clone())
}

/// Applies one replayed record to the state, noting in `sealed` the series that completed a
/// chunk.
fn apply_record(
    state: &mut State,
    record: Record,
    (mint, chunk_range): (i64, i64),
    remap: &mut HashMap<u64, u32>,
    replay: &mut HeadReplayReport,
    max_t: &mut i64,
    sealed: &mut Vec<u32>,
) {
    match record {
        Record::Series(series) => {
            for s in series {
                let labels = Labels::from_pairs(s.labels);
                let Ok(id) = u32::try_from(s.series_ref) else {
                    tracing::warn!(
                        series_ref = s.series_ref,
                        "WAL series ref out of range; series skipped"
                    );
                    continue;
                };
                if labels.is_empty() {
                    continue;
                }
                let hash = state.hash(&labels);
                match state.find(hash, &labels) {
                    Some(existing) if existing == id => {}
                    Some(existing) => {
                        remap.insert(s.series_ref, existing);
                    }
                    None if state.get(id).is_some() => {
                        tracing::warn!(
                            series_ref = s.series_ref,
                            "WAL series ref reused for other labels; series skipped"
                        );
                    }
                    None => state.insert(id, hash, &labels, true),
                }
            }
        }
        Record::Samples(samples) => {
            for s in samples {
                // Before the ref lookup: samples older than the checkpoint may belong to series
                // it no longer lists.
                if s.timestamp < mint {
                    replay.skipped_samples += 1;
                    continue;
                }
                let id = match remap.get(&s.series_ref) {
                    Some(&id) => Some(id),
                    None => u32::try_from(s.series_ref).ok(),
                };
                let Some((id, series)) = id.and_then(|id| Some((id, state.get(id)?))) else {
                    replay.unknown_refs += 1;
                    continue;
                };
                let mut data = lock(&series.data);
                let appended = (data.validate(s.timestamp, s.value.to_bits(), mint)
                    == Verdict::Accepted)
                    .then(|| data.append(s.timestamp, s.value, chunk_range, id));
                if appended.is_some_and(|a| a.sealed) {
                    sealed.push(id);
                }
                if appended.is_some_and(|a| a.stored) {
                    replay.samples += 1;
                    *max_t = (*max_t).max(s.timestamp);
                } else {
                    replay.skipped_samples += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::storage::Querier as _;

    /// Bytes in the head's chunk files.
    fn chunk_file_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir.join("chunks_head"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn completed_chunks_leave_the_heap_for_the_chunk_files() {
        let dir = tempfile::tempdir().unwrap();
        let options = HeadOptions {
            chunk_range: 1_000_000,
            ..HeadOptions::default()
        };
        let head = Arc::new(Head::open(dir.path(), options).unwrap());
        let labels: Vec<Labels> = (0..50)
            .map(|i| Labels::from_pairs([("__name__", "m".to_owned()), ("i", i.to_string())]))
            .collect();
        assert_eq!(head.min_time(), None, "empty");
        let mut app = head.appender();
        // 300 samples a series: completed chunks of 60–109 and 120 samples, and an open one.
        for t in 0..300 {
            for (i, l) in labels.iter().enumerate() {
                app.append(l, t * 1000, (t * i as i64) as f64).unwrap();
            }
            app.commit().unwrap();
        }
        let in_memory = |head: &Head| {
            let state = head.read();
            let mut kinds = (0, 0);
            for series in state.series.iter().flatten() {
                let data = lock(&series.data);
                kinds.0 += data.in_memory.len();
                kinds.1 += data.on_disk.iter().count();
            }
            kinds
        };
        assert_eq!(
            in_memory(&head),
            (0, 100),
            "every completed chunk is on disk"
        );
        let written = chunk_file_bytes(dir.path());
        assert!(written > 100 * 20, "{written} bytes of chunks");
        let expect = |head: &Head, from: i64| {
            let all = head.select(&[], i64::MIN, i64::MAX).unwrap();
            assert_eq!(all.len(), 50);
            for s in &all {
                let i: i64 = s.labels.get("i").unwrap().parse().unwrap();
                let samples: Vec<(i64, f64)> = s.samples(i64::MIN, i64::MAX).collect();
                let want: Vec<(i64, f64)> =
                    (from..300).map(|t| (t * 1000, (t * i) as f64)).collect();
                assert_eq!(samples, want);
            }
        };
        expect(&head, 0);
        assert_eq!(head.min_time(), Some(0));

        // Truncation drops the chunks on disk that ended before it.
        head.truncate_before(240_000).unwrap();
        assert_eq!(in_memory(&head), (0, 0));
        expect(&head, 240);
        assert_eq!(head.min_time(), Some(240_000));
        assert_eq!(head.stats(0).min_time, Some(240_000));
        drop(app);
        drop(head);

        // A restart empties the directory, and the replay (of every sample: no checkpoint was
        // due) writes the completed chunks again.
        let head = Head::open(dir.path(), options).unwrap();
        expect(&head, 0);
        assert_eq!(head.min_time(), Some(0));
        assert_eq!(
            in_memory(&head),
            (0, 100),
            "replayed completed chunks go to disk too"
        );
        assert_eq!(chunk_file_bytes(dir.path()), written);
    }

    #[test]
    fn appends_complete_while_a_checkpoint_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let options = HeadOptions {
            wal_sync: Duration::ZERO,
            segment_size: 16 * 1024,
            ..HeadOptions::default()
        };
        let head = Arc::new(Head::open(dir.path(), options).unwrap());
        let labels: Vec<Labels> = (0..100)
            .map(|i| Labels::from_pairs([("__name__", "m".to_owned()), ("i", i.to_string())]))
            .collect();
        let mut app = head.appender();
        for t in (0..100_000).step_by(1000) {
            for l in &labels {
                app.append(l, t, t as f64).unwrap();
            }
            app.commit().unwrap();
        }
        let late = Labels::from_pairs([("__name__", "late"), ("i", "x")]);

        let (done, appended) = mpsc::channel();
        let during = || {
            // Runs inside the checkpoint writer: an append that needed the WAL lock held by
            // the truncation would never finish.
            let head = head.clone();
            let late = late.clone();
            std::thread::spawn(move || {
                let mut app = head.appender();
                app.append(&late, 100_000, 7.0).unwrap();
                done.send(app.commit().unwrap()).unwrap();
            });
            let summary = appended
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("an append waited for the checkpoint to finish");
            assert_eq!(summary.appended, 1);
        };
        head.truncate_before_while(60_000, during).unwrap();
        assert!(
            std::fs::read_dir(dir.path().join("wal")).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("checkpoint.")),
            "a checkpoint was written"
        );
        drop(app);
        drop(head);

        // The append made during the checkpoint survives a restart, next to the kept data.
        let head = Head::open(dir.path(), options).unwrap();
        let all = head.select(&[], i64::MIN, i64::MAX).unwrap();
        let late_series = all.iter().find(|s| s.labels == late).unwrap();
        let samples: Vec<(i64, f64)> = late_series.samples(i64::MIN, i64::MAX).collect();
        assert_eq!(samples, [(100_000, 7.0)]);
        assert_eq!(all.len(), 101);
        assert!(
            all.iter()
                .filter(|s| s.labels.metric_name() == Some("m"))
                .all(|s| s.samples(i64::MIN, i64::MAX).count() == 40),
            "60 s .. 99 s of every older series"
        );
    }
}
