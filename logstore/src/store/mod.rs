//! The log store: WAL, per-stream head chunks, chunks in RocksDB day column families (listed
//! by the in-memory [chunk directory](directory)), the per-day [line index](line_index),
//! retention.
//!
//! A push is written to the [WAL](wal) and applied to the heads under one lock, so the
//! heads see records in sequence order; the caller is answered after the WAL is synced
//! ([`LogStore::push`] returns then). A head holds one stream's entries of one UTC day, in
//! arrival order (out-of-order entries are fine: a head is sorted when it is cut). A head is
//! cut into a chunk when it reaches [`StoreOptions::chunk_target_bytes`], when it is older
//! than [`StoreOptions::max_chunk_age`], idle for [`StoreOptions::chunk_idle`], or when all
//! heads together pass [`StoreOptions::max_head_bytes`] (the largest goes first).
//!
//! Durability without double writes: chunks and index entries go to RocksDB without its WAL,
//! with atomic flush, so that after a crash RocksDB holds a consistent prefix of our writes.
//! Each chunk write records, for its stream and day, the WAL sequence number through which
//! entries are persisted; replay skips those entries, so nothing is stored twice and nothing
//! is lost. WAL segments are deleted only after a RocksDB flush, and only those older than
//! every open head's first record.
//!
//! Edge cases decided:
//!
//! * Out-of-order entries are accepted anywhere within the validation window (Loki ≥ 2.4
//!   accepts them within half the max chunk age behind a stream's newest entry; our chunks
//!   are per day and sorted when cut, so no narrower window is needed). Reads merge
//!   overlapping chunks.
//! * Identical entries pushed in two different pushes are both kept (one push is
//!   deduplicated by validation).
//! * The stream index is global and not expired with the days: a stream's id stays stable.
//! * Retention remembers the first day it kept: entries of older days, replayed from the WAL
//!   after a restart or pushed late, are discarded (as the next retention run would), so a
//!   dropped day does not come back.

mod codec;
mod column;
mod directory;
mod follow;
mod head;
mod keys;
#[doc(hidden)]
pub mod line_codec;
mod line_index;
mod line_template;
mod read;
mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DBWithThreadMode,
    FlushOptions, MultiThreaded, Options, WriteBatch, WriteOptions,
};
use sightline_core::labels::Labels;

use crate::error::Error;
use crate::push::PushStream;
use head::Head;

pub use follow::{WalFollower, WalRecord};
pub(crate) use line_index::starts_json_object;
pub use line_index::{LineParser, Required};
pub use read::{ChunkEntries, ChunkList, ChunkRef, Direction, EntryPage, EntryRef, StreamRef};
pub use wal::WalReplay;

type Db = DBWithThreadMode<MultiThreaded>;

/// Tuning of a [`LogStore`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// Raw bytes (lines and metadata) at which a head is cut; 1.5 MiB.
    pub chunk_target_bytes: usize,
    /// Age (since its first entry arrived) at which a head is cut; 1 h.
    pub max_chunk_age: Duration,
    /// Time without appends after which a head is cut; 30 min (Loki's `chunk_idle_period`).
    pub chunk_idle: Duration,
    /// Raw bytes all heads may hold together before the largest is cut; 24 MiB, ~32 MiB of
    /// heap with their entry lists (the heads are most of the memory used while ingesting,
    /// see docs/BENCHMARKS.md).
    pub max_head_bytes: usize,
    /// Size at which a WAL segment is closed and a new one started; 64 MiB.
    pub wal_segment_bytes: u64,
    /// zstd level of the chunk columns, 1 (fast) to 19 (small); 1: on the log benchmark
    /// both smaller and faster than 3 (docs/BENCHMARKS.md).
    pub compression_level: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            chunk_target_bytes: 1536 << 10,
            max_chunk_age: Duration::from_secs(3600),
            chunk_idle: Duration::from_secs(1800),
            max_head_bytes: 24 << 20,
            wal_segment_bytes: 64 << 20,
            compression_level: 1,
        }
    }
}

/// Counters of a store since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Entries written through [`LogStore::push`].
    pub entries: u64,
    /// Raw bytes (lines and metadata) of those entries.
    pub bytes: u64,
    /// Chunks written to RocksDB.
    pub chunks: u64,
    /// Streams in the index.
    pub streams: u64,
    /// What the WAL replay at open found (records, torn segments).
    pub replay: WalReplay,
    /// Entries the replay applied to heads (not yet in chunks).
    pub replayed_entries: u64,
}

/// Streams by labels and by id.
#[derive(Default)]
struct StreamIndex {
    ids: HashMap<Labels, u64>,
    labels: HashMap<u64, Labels>,
    next_id: u64,
}

struct State {
    index: StreamIndex,
    heads: HashMap<(u64, i32), Head>,
    head_bytes: usize,
    /// A cut's entry and line columns and their packed form, kept between cuts so that each
    /// cut does not allocate (and free) buffers the size of a chunk.
    cut_columns: CutColumns,
    /// A push's WAL record, kept between pushes for the same reason.
    wal_record: Vec<u8>,
    /// Per (stream, day), the WAL sequence through which entries are persisted; only used
    /// while replaying.
    replay_markers: HashMap<(u64, i32), u64>,
    /// Chunks written since open.
    chunks_written: u64,
    /// Every stored chunk's key and range.
    directory: directory::Directory,
    /// The block cache the day column families share (here because days are created where
    /// heads are cut).
    day_cache: Cache,
    /// The days that have a column family.
    days: std::collections::BTreeSet<i32>,
    /// Every day before this one was dropped by retention: entries for them (from a replayed
    /// WAL or a late push) are discarded, as the next retention run would.
    dropped_before: i32,
}

/// A cut's buffers: a chunk's entry column, its lines split and packed, and the packer.
struct CutColumns {
    entries: Vec<u8>,
    lines: line_template::LineSplitter,
    packed_lines: Vec<u8>,
    packer: column::Packer,
}

impl CutColumns {
    fn new(compression_level: i32) -> CutColumns {
        CutColumns {
            entries: Vec::new(),
            lines: line_template::LineSplitter::default(),
            packed_lines: Vec::new(),
            packer: column::Packer::new(compression_level),
        }
    }
}

/// A log store in one directory: `wal/`, `index/` (the line index) and the RocksDB files.
pub struct LogStore {
    db: Db,
    lines: line_index::LineIndex,
    path: PathBuf,
    options: StoreOptions,
    wal: wal::Wal,
    wal_holds: follow::WalHolds,
    state: Mutex<State>,
    entries: AtomicU64,
    bytes: AtomicU64,
    replay: WalReplay,
    replayed_entries: u64,
}

fn rocks(action: impl Into<String>) -> impl FnOnce(rocksdb::Error) -> Error {
    let action = action.into();
    move |source| Error::RocksDb { action, source }
}

fn corrupt(what: &'static str, place: impl Into<String>) -> Error {
    Error::Corrupt {
        what,
        place: place.into(),
    }
}

fn no_wal() -> WriteOptions {
    let mut write = WriteOptions::default();
    write.disable_wal(true);
    write
}

impl LogStore {
    /// Opens (creating if needed) the store in `dir` and replays its WAL.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<LogStore, Error> {
        let path = dir.as_ref().to_path_buf();
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        // Writes skip RocksDB's WAL; atomic flush keeps the column families consistent.
        db_options.set_atomic_flush(true);
        db_options.set_log_level(rocksdb::LogLevel::Warn);
        db_options.set_keep_log_file_num(2);
        db_options.set_max_log_file_size(1 << 20);
        // RocksDB preallocates 4 MiB for each MANIFEST; its edits here are a few KiB.
        db_options.set_manifest_preallocation_size(64 << 10);
        // Memtables of all column families together: chunks pass through them once, on their
        // way to a table file, packed (~14 MiB of raw lines).
        db_options.set_db_write_buffer_size(DAY_WRITE_BUFFER_BYTES);
        let names = Db::list_cf(&db_options, &path)
            .unwrap_or_else(|_| vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned()]);
        let day_cache = Cache::new_lru_cache(DAY_CACHE_BYTES);
        let descriptors = names.iter().map(|name| {
            let cf_options = if keys::parse_day_cf(name).is_some() {
                day_options(&day_cache)
            } else {
                Options::default()
            };
            ColumnFamilyDescriptor::new(name, cf_options)
        });
        let db = Db::open_cf_descriptors(&db_options, &path, descriptors)
            .map_err(rocks(format!("opening {}", path.display())))?;
        let days: std::collections::BTreeSet<i32> = names
            .iter()
            .filter_map(|name| keys::parse_day_cf(name))
            .collect();
        let mut state = State {
            index: load_index(&db)?,
            heads: HashMap::new(),
            head_bytes: 0,
            cut_columns: CutColumns::new(options.compression_level),
            wal_record: Vec::new(),
            replay_markers: load_markers(&db)?,
            dropped_before: load_dropped_before(&db)?,
            chunks_written: 0,
            directory: directory::Directory::load(&db, days.iter().copied())?,
            days,
            day_cache,
        };
        let lines = line_index::LineIndex::new(path.join("index"));
        let mut replayed_entries = 0u64;
        let wal_dir = path.join("wal");
        let (wal, replay) = wal::Wal::open(&wal_dir, options.wal_segment_bytes, |seq, payload| {
            let streams = codec::decode_push(payload).map_err(|e| {
                corrupt(e.what, format!("WAL record {seq} in {}", wal_dir.display()))
            })?;
            let now = Instant::now();
            replayed_entries += apply(&db, &lines, &options, &mut state, seq, &streams, now)?;
            Ok(())
        })?;
        state.replay_markers = HashMap::new();
        if replay.torn_segments > 0 {
            tracing::warn!(
                segments = replay.torn_segments,
                bytes = replay.torn_bytes,
                "log WAL replay cut torn records"
            );
        }
        Ok(LogStore {
            db,
            lines,
            path,
            options,
            wal,
            wal_holds: follow::WalHolds::default(),
            state: Mutex::new(state),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            replay,
            replayed_entries,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores validated streams; returns once they are in the synced WAL.
    pub fn push(&self, streams: &[PushStream]) -> Result<(), Error> {
        if streams.iter().all(|s| s.entries.is_empty()) {
            return Ok(());
        }
        let seq = {
            let mut state = self.lock();
            state.wal_record.clear();
            codec::encode_push(streams, &mut state.wal_record);
            let seq = self.wal.append(&state.wal_record)?;
            apply(
                &self.db,
                &self.lines,
                &self.options,
                &mut state,
                seq,
                streams,
                Instant::now(),
            )?;
            seq
        };
        let (entries, bytes) = streams
            .iter()
            .flat_map(|s| &s.entries)
            .fold((0, 0), |(n, b), e| (n + 1, b + e.size() as u64));
        self.entries.fetch_add(entries, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.wal.sync_through(seq)
    }

    /// Cuts heads that are too old or idle (or over the memory budget), then deletes the WAL
    /// segments no head needs any more. Call it periodically.
    pub fn maintain(&self) -> Result<(), Error> {
        let now = Instant::now();
        let options = &self.options;
        self.cut_where(|head| {
            now.duration_since(head.created) >= options.max_chunk_age
                || now.duration_since(head.last_append) >= options.chunk_idle
        })?;
        self.lines.commit()?;
        self.truncate_wal()
    }

    /// Cuts every head and persists everything, so that the WAL holds nothing needed (what
    /// Loki's `POST /flush` does), and deletes the WAL segments (the current one is closed
    /// for that).
    pub fn flush(&self) -> Result<(), Error> {
        self.cut_where(|_| true)?;
        self.lines.commit()?;
        self.wal.rotate()?;
        self.flush_rocksdb()?;
        self.truncate_wal()
    }

    fn cut_where(&self, mut due: impl FnMut(&Head) -> bool) -> Result<(), Error> {
        let mut state = self.lock();
        let keys: Vec<(u64, i32)> = state
            .heads
            .iter()
            .filter(|(_, head)| due(head))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            cut(&self.db, &self.lines, &mut state, key)?;
        }
        Ok(())
    }

    /// Follows the WAL from record `from` (`None`: from the next push on), keeping what is
    /// not yet [released](WalFollower::release_before) from deletion as long as it takes at
    /// most `max_backlog_bytes` of segments. Take it before the first [`maintain`](Self::maintain)
    /// so that nothing it still needs is deleted first.
    pub fn follow_wal(&self, from: Option<u64>, max_backlog_bytes: u64) -> WalFollower {
        // A saved position past the WAL's end (a data directory restored from an older
        // copy) would wait for records that never come: start at the end instead.
        let next = self.wal.next_seq();
        let from = from.map_or(next, |from| from.min(next));
        let hold = self.wal_holds.add(from, max_backlog_bytes);
        WalFollower::new(wal::WalReader::new(&self.path.join("wal"), from), hold)
    }

    /// The sequence number the next push's WAL record gets.
    pub fn wal_next_seq(&self) -> u64 {
        self.wal.next_seq()
    }

    /// Flushes RocksDB and deletes the WAL segments older than every open head and every
    /// follower's hold.
    fn truncate_wal(&self) -> Result<(), Error> {
        let heads_from = {
            let state = self.lock();
            state
                .heads
                .values()
                .map(|head| head.first_seq)
                .min()
                .unwrap_or_else(|| self.wal.next_seq())
        };
        let keep_from = self
            .wal_holds
            .floor(&self.wal)
            .map_or(heads_from, |held| held.min(heads_from));
        if !self.wal.has_segments_before(keep_from) {
            return Ok(());
        }
        self.flush_rocksdb()?;
        let deleted = self.wal.truncate_before(keep_from)?;
        tracing::debug!(deleted, keep_from, "log WAL segments deleted");
        Ok(())
    }

    /// Flushes every column family's memtable to disk (atomically).
    fn flush_rocksdb(&self) -> Result<(), Error> {
        let names = self.day_names();
        let handles: Vec<_> = names
            .iter()
            .filter_map(|name| self.db.cf_handle(name))
            .collect();
        let default = self
            .db
            .cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
            .ok_or_else(|| {
                corrupt(
                    "missing default column family",
                    self.path.display().to_string(),
                )
            })?;
        let mut all: Vec<&_> = handles.iter().collect();
        all.push(&default);
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        self.db
            .flush_cfs_opt(&all, &flush)
            .map_err(rocks("flushing memtables"))
    }

    /// Drops every UTC day that ends at or before `now_ns - retention`, heads included;
    /// returns the days dropped.
    pub fn expire(&self, now_ns: i64, retention: Duration) -> Result<Vec<i32>, Error> {
        let retention_ns = i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX);
        let first_kept = keys::day_of(now_ns.saturating_sub(retention_ns));
        let mut dropped = Vec::new();
        let mut state = self.lock();
        let expired_heads: Vec<(u64, i32)> = state
            .heads
            .keys()
            .filter(|(_, day)| *day < first_kept)
            .copied()
            .collect();
        for key in expired_heads {
            drop_head(&mut state, key);
        }
        let expired_days: Vec<i32> = state.days.range(..first_kept).copied().collect();
        for day in expired_days {
            self.drop_day(&mut state, day)?;
            dropped.push(day);
        }
        let moved = self.raise_dropped_before(&mut state, first_kept)?;
        drop(state);
        if !dropped.is_empty() || moved {
            self.flush_rocksdb()?;
        }
        Ok(dropped)
    }

    /// Drops the oldest UTC days, whole, while the stored days (RocksDB's table files, the
    /// part of [`LogStore::disk_usage`] that dropping days frees; the WAL is bounded by its
    /// segment size and truncation) take more than `max_bytes`. The newest day that has
    /// chunks is never dropped (it is the one being written), so a single day larger than
    /// the limit stays. Returns the days dropped.
    pub fn expire_to_size(&self, max_bytes: u64) -> Result<Vec<i32>, Error> {
        let mut dropped = Vec::new();
        let mut usage = self.table_usage()?;
        let mut state = self.lock();
        while usage > max_bytes && state.days.len() > 1 {
            let Some(oldest) = state.days.first().copied() else {
                break;
            };
            let size = self.day_size(oldest)?;
            let heads: Vec<(u64, i32)> = state
                .heads
                .keys()
                .filter(|(_, day)| *day == oldest)
                .copied()
                .collect();
            for key in heads {
                drop_head(&mut state, key);
            }
            self.drop_day(&mut state, oldest)?;
            self.raise_dropped_before(&mut state, oldest.saturating_add(1))?;
            usage = usage.saturating_sub(size);
            dropped.push(oldest);
        }
        drop(state);
        if !dropped.is_empty() {
            self.flush_rocksdb()?;
        }
        Ok(dropped)
    }

    /// Records that every day before `day` is dropped; true when that moved the mark (the
    /// caller flushes RocksDB to persist it).
    fn raise_dropped_before(&self, state: &mut State, day: i32) -> Result<bool, Error> {
        if day <= state.dropped_before {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.put(keys::DROPPED_BEFORE_KEY, day.to_be_bytes());
        self.db
            .write_opt(batch, &no_wal())
            .map_err(rocks("recording the dropped days"))?;
        state.dropped_before = day;
        Ok(true)
    }

    /// Bytes of a day's table files, as RocksDB counts them, and of its line index.
    fn day_size(&self, day: i32) -> Result<u64, Error> {
        let name = keys::day_cf(day);
        let Some(cf) = self.db.cf_handle(&name) else {
            return Ok(0);
        };
        let size = self
            .db
            .property_int_value_cf(&cf, "rocksdb.total-sst-files-size")
            .map_err(rocks(format!("reading the size of {name}")))?;
        Ok(size.unwrap_or(0) + self.lines.day_size(day))
    }

    /// Drops a day's column family (its files go with it), its line index and its WAL
    /// markers.
    fn drop_day(&self, state: &mut State, day: i32) -> Result<(), Error> {
        let name = keys::day_cf(day);
        let (from, to) = keys::marker_range(day);
        let mut batch = WriteBatch::default();
        batch.delete_range(from, to);
        self.db
            .write_opt(batch, &no_wal())
            .map_err(rocks(format!("deleting markers of {name}")))?;
        self.db
            .drop_cf(&name)
            .map_err(rocks(format!("dropping {name}")))?;
        self.lines.drop_day(day)?;
        tracing::info!(day = %name, "log retention dropped a day");
        state.days.remove(&day);
        state.directory.drop_day(day);
        Ok(())
    }

    /// Bytes the store holds on disk: RocksDB's table files (`*.sst`: chunks and indexes,
    /// counted from the directory, so files of a dropped day that linger would count), the
    /// line index and the log WAL. RocksDB's small bookkeeping files (manifest, options, info
    /// log) are not counted.
    pub fn disk_usage(&self) -> Result<u64, Error> {
        Ok(self.table_usage()? + dir_size(&self.path.join("wal"), &|_| true)?)
    }

    /// Bytes of RocksDB's table files (`*.sst`) in the store's directory and of the line
    /// index: what dropping days frees.
    fn table_usage(&self) -> Result<u64, Error> {
        let tables = dir_size(&self.path, &|path| {
            path.extension().is_some_and(|ext| ext == "sst")
        })?;
        Ok(tables + self.lines.size())
    }

    /// The oldest UTC day that holds chunks (days since the Unix epoch), `None` when none
    /// does: what retention drops next.
    pub fn oldest_day(&self) -> Option<i32> {
        self.lock().days.first().copied()
    }

    /// Bytes of the line index (all days).
    pub fn line_index_usage(&self) -> u64 {
        self.lines.size()
    }

    /// Counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        let state = self.lock();
        StoreStats {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            chunks: state.chunks_written,
            streams: state.index.labels.len() as u64,
            replay: self.replay,
            replayed_entries: self.replayed_entries,
        }
    }

    /// The day column families that exist, ascending.
    fn day_names(&self) -> Vec<String> {
        self.lock()
            .days
            .iter()
            .map(|day| keys::day_cf(*day))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes of the files directly in `dir` that `keep` selects.
fn dir_size(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<u64, Error> {
    let listing = std::fs::read_dir(dir).map_err(|source| Error::Io {
        action: "listing".into(),
        path: dir.to_owned(),
        source,
    })?;
    Ok(listing
        .flatten()
        .filter(|item| keep(&item.path()))
        .map(|item| item.metadata().map_or(0, |meta| meta.len()))
        .sum())
}

/// The block cache of all day column families: a read pins the chunk column it gets from
/// the cache while it unpacks it (or, for a column RocksDB compressed, instead of copying it
/// out), so the cache must hold what the reader threads of a few queries read at once (a
/// line column RocksDB compressed is up to ~1.5 MiB).
const DAY_CACHE_BYTES: usize = 8 << 20;

/// Memtable bytes of the day column families (and of all together): packed chunks, so
/// ~14 MiB of raw lines go to a table file at a time.
const DAY_WRITE_BUFFER_BYTES: usize = 2 << 20;

/// Options of a day column family: chunks are large values read whole, by key.
fn day_options(cache: &Cache) -> Options {
    let mut cf = Options::default();
    // A day has a table file per flush (never compacted, see below): a read by key checks
    // each file's filter instead of decompressing a block of each.
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(cache);
    cf.set_block_based_table_factory(&table);
    cf.set_write_buffer_size(DAY_WRITE_BUFFER_BYTES);
    // Chunks are written once and never updated: compacting would only rewrite them. A day's
    // files stay as flushed until retention drops the day, so the L0 file count must not
    // stall writes.
    cf.set_disable_auto_compactions(true);
    cf.set_level_zero_slowdown_writes_trigger(1 << 20);
    cf.set_level_zero_stop_writes_trigger(1 << 20);
    // Chunks are [packed](column) when cut. Table files written before by a RocksDB that
    // compressed them still read: each block says how it was compressed.
    cf.set_compression_type(DBCompressionType::None);
    cf.set_bottommost_compression_type(DBCompressionType::None);
    cf
}

fn load_index(db: &Db) -> Result<StreamIndex, Error> {
    let mut index = StreamIndex {
        next_id: 1,
        ..StreamIndex::default()
    };
    for item in db.prefix_iterator(b"i") {
        let (key, value) = item.map_err(rocks("reading the stream index"))?;
        if !key.starts_with(b"i") {
            break;
        }
        let id = keys::parse_stream_key(&key).ok_or_else(|| corrupt("stream key", "index"))?;
        let labels = codec::get_labels(&mut &value[..])
            .map_err(|e| corrupt(e.what, format!("stream {id}")))?;
        index.next_id = index.next_id.max(id + 1);
        index.ids.insert(labels.clone(), id);
        index.labels.insert(id, labels);
    }
    Ok(index)
}

fn load_dropped_before(db: &Db) -> Result<i32, Error> {
    let Some(value) = db
        .get(keys::DROPPED_BEFORE_KEY)
        .map_err(rocks("reading the dropped days"))?
    else {
        return Ok(i32::MIN);
    };
    let day: [u8; 4] = value
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("dropped-days mark", "index"))?;
    Ok(i32::from_be_bytes(day))
}

fn load_markers(db: &Db) -> Result<HashMap<(u64, i32), u64>, Error> {
    let mut markers = HashMap::new();
    for item in db.prefix_iterator(b"m") {
        let (key, value) = item.map_err(rocks("reading WAL markers"))?;
        if !key.starts_with(b"m") {
            break;
        }
        let (day, id) =
            keys::parse_marker_key(&key).ok_or_else(|| corrupt("marker key", "index"))?;
        let seq: [u8; 8] = value
            .as_ref()
            .try_into()
            .map_err(|_| corrupt("marker value", format!("stream {id}")))?;
        markers.insert((id, day), u64::from_be_bytes(seq));
    }
    Ok(markers)
}

/// The id of a stream, creating it (in memory and RocksDB) if new.
fn stream_id(db: &Db, index: &mut StreamIndex, labels: &Labels) -> Result<u64, Error> {
    if let Some(id) = index.ids.get(labels) {
        return Ok(*id);
    }
    let id = index.next_id;
    let mut encoded = Vec::new();
    codec::put_labels(&mut encoded, labels);
    let mut batch = WriteBatch::default();
    batch.put(keys::labels_key(labels), id.to_be_bytes());
    batch.put(keys::stream_key(id), encoded);
    db.write_opt(batch, &no_wal())
        .map_err(rocks("adding a stream to the index"))?;
    index.next_id += 1;
    index.ids.insert(labels.clone(), id);
    index.labels.insert(id, labels.clone());
    Ok(id)
}

/// Appends the entries of WAL record `seq` to the heads, cutting heads that grow full;
/// returns how many entries were applied (replay skips persisted ones).
fn apply(
    db: &Db,
    lines: &line_index::LineIndex,
    options: &StoreOptions,
    state: &mut State,
    seq: u64,
    streams: &[PushStream],
    now: Instant,
) -> Result<u64, Error> {
    let mut applied = 0;
    for stream in streams {
        let id = stream_id(db, &mut state.index, &stream.labels)?;
        for entry in &stream.entries {
            let day = keys::day_of(entry.timestamp_ns);
            if day < state.dropped_before {
                continue;
            }
            if state
                .replay_markers
                .get(&(id, day))
                .is_some_and(|through| seq <= *through)
            {
                continue;
            }
            let head = state
                .heads
                .entry((id, day))
                .or_insert_with(|| Head::new(seq, now));
            let len = head.append(entry, seq, now);
            let full = head.bytes() >= options.chunk_target_bytes;
            state.head_bytes += len;
            applied += 1;
            if full {
                cut(db, lines, state, (id, day))?;
            }
        }
    }
    while state.head_bytes > options.max_head_bytes {
        let Some(largest) = state
            .heads
            .iter()
            .max_by_key(|(_, head)| head.bytes())
            .map(|(key, _)| *key)
        else {
            break;
        };
        cut(db, lines, state, largest)?;
    }
    Ok(applied)
}

/// Forgets a head without persisting it (its day is being dropped).
fn drop_head(state: &mut State, key: (u64, i32)) {
    if let Some(head) = state.heads.remove(&key) {
        state.head_bytes -= head.bytes();
    }
}

/// Writes a head as a chunk (its two columns and WAL marker) and removes it, and adds the
/// chunk to the line index. A head whose chunk could not be written stays (its entries are
/// still read, and the WAL records holding them are kept), so a later cut tries again.
fn cut(
    db: &Db,
    lines: &line_index::LineIndex,
    state: &mut State,
    key: (u64, i32),
) -> Result<(), Error> {
    let Some(mut head) = state.heads.remove(&key) else {
        return Ok(());
    };
    head.sort();
    let chunk_key = match write_chunk(db, state, key, &head) {
        Ok(chunk_key) => chunk_key,
        Err(error) => {
            state.heads.insert(key, head);
            return Err(error);
        }
    };
    state.head_bytes -= head.bytes();
    state.chunks_written += 1;
    let (id, day) = key;
    state.directory.add(
        id,
        day,
        directory::StoredChunk {
            min_ts: head.min_ts,
            max_ts: head.max_ts,
            key: chunk_key.clone().into_boxed_slice(),
        },
    );
    let entries = head.entries();
    lines.add(
        day,
        id,
        &chunk_key,
        entries
            .iter()
            .filter_map(|entry| codec::entry_line(head.body(entry)).ok()),
        entries
            .iter()
            .any(|entry| codec::has_metadata(head.body(entry))),
    )?;
    Ok(())
}

/// Writes a sorted head's chunk and WAL marker to its day's column family (created if it is
/// the day's first); returns the chunk's key.
fn write_chunk(
    db: &Db,
    state: &mut State,
    (id, day): (u64, i32),
    head: &Head,
) -> Result<Vec<u8>, Error> {
    let name = keys::day_cf(day);
    if !state.days.contains(&day) {
        db.create_cf(&name, &day_options(&state.day_cache))
            .map_err(rocks(format!("creating {name}")))?;
        state.days.insert(day);
    }
    let cf = db
        .cf_handle(&name)
        .ok_or_else(|| corrupt("column family vanished", name.clone()))?;
    let columns = &mut state.cut_columns;
    columns.entries.clear();
    columns.lines.clear();
    codec::encode_columns(
        head.entries()
            .iter()
            .map(|entry| (entry.timestamp_ns, head.body(entry))),
        &mut columns.entries,
        |timestamp_ns, line| columns.lines.push(timestamp_ns, line),
    )
    .map_err(|e| corrupt(e.what, format!("the head of stream {id}")))?;
    columns.packed_lines.clear();
    columns
        .lines
        .pack(&mut columns.packer, &mut columns.packed_lines)?;
    let chunk_key = keys::entries_key(id, head.min_ts, head.max_ts, head.last_seq);
    let mut batch = WriteBatch::default();
    batch.put_cf(&cf, keys::lines_key(&chunk_key), &columns.packed_lines);
    batch.put_cf(&cf, &chunk_key, columns.packer.pack(&columns.entries)?);
    batch.put(keys::marker_key(day, id), head.last_seq.to_be_bytes());
    db.write_opt(batch, &no_wal())
        .map_err(rocks(format!("writing a chunk to {name}")))?;
    Ok(chunk_key)
}
