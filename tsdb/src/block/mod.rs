//! Immutable metric blocks persisted in RocksDB, the storage behind the head.
//!
//! The head cuts its chunks into blocks (default range 2 h, [`DEFAULT_BLOCK_RANGE_MS`]) and
//! hands each to [`BlockStore::write_block`]. A block holds its series (labels), a postings
//! index (label name/value → series) and one chunk value per series. Byte layouts are in
//! `tsdb/FORMAT.md`, section "Blocks"; this module follows the roles of Prometheus's block
//! format (<https://github.com/prometheus/prometheus/blob/main/tsdb/docs/format/index.md>)
//! but stores them as RocksDB keys.
//!
//! Decisions:
//!
//! - **One column family per UTC day** (`metrics-YYYY-MM-DD`). Every block lies within one UTC
//!   day (a block that would cross midnight is refused with [`Error::InvalidBlock`]; the head
//!   cuts at multiples of 2 h, which divide the day). Expiring a day drops its column family,
//!   which deletes its SST files at once, without compaction. Within a day each block's data
//!   is one contiguous key range, deleted with one range delete.
//! - **Atomic blocks.** A block is written in batches of a few MiB without the RocksDB WAL,
//!   its meta key in the last batch, then the column family is flushed before
//!   `write_block` returns. A reader lists blocks by their meta keys only, so a crash at any
//!   point leaves either the whole block or no block visible; data keys without a meta (a
//!   crashed write) are range-deleted when the store is next opened. The caller keeps the
//!   head's data (and WAL) until `write_block` has returned.
//! - **Compression** is measured, not assumed (table in `tsdb/FORMAT.md`): chunk values
//!   default to the columnar encoding ([`ChunkEncoding::Columnar`]) and day column families
//!   to zstd, the bottommost level at a higher zstd level with a trained dictionary — 0.50
//!   B/sample at 15 s scrapes and 1.37 at 1 s on the benchmark data, against 3.87 and 4.41
//!   for XOR chunks stored as Prometheus stores them.
//! - **Queries** (the [`Querier`](crate::storage::Querier) implementation) use the postings:
//!   `=` and `=~` with a finite set of literals or prefixes
//!   ([`Matcher::value_patterns`](sightline_core::matcher::Matcher::value_patterns)) read only
//!   those postings keys; other regexes scan the values of one label name. A matcher that
//!   matches the empty string also selects series without the label (Prometheus's
//!   semantics): it is evaluated as "every series minus those whose value does not match".
//!   Label names and values without matchers are answered per block overlapping the range
//!   (as Prometheus does); with matchers, from the selected series whose samples overlap it.
//! - **Compaction and retention** are in [`retention`]: see its docs for the exact rules of
//!   retention overrides.

mod codec;
mod keys;
pub mod retention;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBWithThreadMode, MultiThreaded, Options, ReadOptions, WriteBatch, WriteOptions,
};
use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};

use crate::storage::{ChunkMeta, Querier, SeriesChunks};
use crate::{Error, Result};

pub use codec::ChunkEncoding;
pub use retention::{RetentionPolicy, RetentionReport};

use codec::{MetaValue, SeriesEntry};

/// The default time range of a block cut from the head: 2 hours, in milliseconds.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3_600_000;

/// The format version this build writes and reads (the version key, see `tsdb/FORMAT.md`).
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of puts collected before a write batch is applied.
const BATCH_BYTES: usize = 8 << 20;

type Db = DBWithThreadMode<MultiThreaded>;

/// RocksDB compression of the day column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4 on every level.
    Lz4,
    /// zstd at `level` on every level; the bottommost level (where compaction leaves all
    /// data of a finished day) at `level + 6`, capped at 19, with a dictionary of
    /// `dictionary_bytes` trained per SST file (0 = no dictionary).
    Zstd {
        /// zstd level, 1–19.
        level: i32,
        /// Dictionary size for the bottommost level, in bytes.
        dictionary_bytes: i32,
    },
}

/// How blocks are stored. The defaults are the measured best; the others exist to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStoreOptions {
    /// Encoding of chunk values.
    pub encoding: ChunkEncoding,
    /// RocksDB compression of day column families.
    pub compression: Compression,
    /// RocksDB data block size in bytes (larger compresses better, costs more per point read).
    pub block_size: usize,
}

impl Default for BlockStoreOptions {
    fn default() -> Self {
        BlockStoreOptions {
            encoding: ChunkEncoding::Columnar,
            compression: Compression::Zstd {
                level: 3,
                dictionary_bytes: 16 << 10,
            },
            block_size: 32 << 10,
        }
    }
}

/// What the store knows about one block without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    /// Unique id within the store, increasing in write order.
    pub id: u64,
    /// Start of the block's time range, inclusive, in milliseconds.
    pub mint: i64,
    /// End of the block's time range, exclusive, in milliseconds.
    pub maxt: i64,
    /// Number of series.
    pub num_series: u64,
    /// Number of samples.
    pub num_samples: u64,
    /// True for a block written by compaction or retention (a day block, or a rewrite).
    pub compacted: bool,
    /// Bytes of encoded chunk, series and postings values, before RocksDB compression.
    pub encoded_bytes: u64,
    /// The column family (UTC day partition) that holds the block: `metrics-YYYY-MM-DD`.
    pub partition: String,
}

impl BlockMeta {
    /// The meta of block `id` in `partition` as read back from its stored value.
    fn from_stored(id: u64, partition: String, stored: MetaValue) -> BlockMeta {
        BlockMeta {
            id,
            mint: stored.mint,
            maxt: stored.maxt,
            num_series: stored.num_series,
            num_samples: stored.num_samples,
            compacted: stored.compacted,
            encoded_bytes: stored.encoded_bytes,
            partition,
        }
    }

    /// What is stored under the block's meta key (its id and partition are in the key).
    fn stored(&self) -> MetaValue {
        MetaValue {
            mint: self.mint,
            maxt: self.maxt,
            num_series: self.num_series,
            num_samples: self.num_samples,
            compacted: self.compacted,
            encoded_bytes: self.encoded_bytes,
        }
    }

    /// The block's UTC day number (days since 1970-01-01).
    pub fn day(&self) -> i64 {
        keys::day_of(self.mint)
    }

    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.mint <= maxt && self.maxt > mint
    }
}

/// The persistent block store: one RocksDB database in one directory.
pub struct BlockStore {
    db: Db,
    path: PathBuf,
    options: BlockStoreOptions,
    /// Visible blocks, sorted by `(mint, id)`.
    blocks: RwLock<Vec<BlockMeta>>,
    /// Serialises writers (block writes, compaction, retention) and holds the next block id.
    writer: Mutex<u64>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BlockStore {
    /// Opens (creating if needed) the store in `dir` with the default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<BlockStore> {
        BlockStore::open_with(dir, BlockStoreOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`. Options apply to what is written from
    /// now on; blocks already stored keep their encoding (each value records it).
    ///
    /// Fails with [`Error::UnsupportedBlockVersion`] if the store was written by a newer
    /// format; removes what a crashed block write left behind.
    pub fn open_with(dir: impl AsRef<Path>, options: BlockStoreOptions) -> Result<BlockStore> {
        let path = dir.as_ref().to_path_buf();
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        // RocksDB's info log is chatty; the appliance logs through `tracing`.
        db_options.set_log_level(rocksdb::LogLevel::Warn);
        db_options.set_keep_log_file_num(2);
        db_options.set_max_log_file_size(1 << 20);
        // RocksDB preallocates 4 MiB for each MANIFEST; its edits here are a few KiB.
        db_options.set_manifest_preallocation_size(64 << 10);
        // Block writes bypass the WAL (a block is flushed before it is acknowledged), so the
        // WAL only ever holds the version key and deletes: keep it small.
        db_options.set_max_total_wal_size(16 << 20);
        let names = match Db::list_cf(&db_options, &path) {
            Ok(names) => names,
            Err(_) => vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_owned()],
        };
        let descriptors = names.iter().map(|name| {
            let cf_options = if name.starts_with(keys::PARTITION_PREFIX) {
                partition_options(&options)
            } else {
                Options::default()
            };
            ColumnFamilyDescriptor::new(name, cf_options)
        });
        let db = Db::open_cf_descriptors(&db_options, &path, descriptors).map_err(|source| {
            Error::RocksDb {
                action: "opening".into(),
                path: path.clone(),
                source,
            }
        })?;
        let store = BlockStore {
            db,
            path,
            options,
            blocks: RwLock::new(Vec::new()),
            writer: Mutex::new(1),
        };
        store.check_version()?;
        let blocks = store.load_blocks(&names)?;
        let next_id = blocks.iter().map(|b| b.id + 1).max().unwrap_or(1);
        *store.blocks.write().unwrap_or_else(|e| e.into_inner()) = blocks;
        *store.writer.lock().unwrap_or_else(|e| e.into_inner()) = next_id;
        Ok(store)
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every visible block, sorted by start time then id.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The end (exclusive) of the newest block's range, or `None` for an empty store: the
    /// head keeps everything from here on.
    pub fn max_time(&self) -> Option<i64> {
        self.blocks().iter().map(|b| b.maxt).max()
    }

    /// Bytes of live SST files of all day partitions (what retention's size limit counts).
    pub fn disk_usage(&self) -> Result<u64> {
        let mut total = 0;
        for name in self.partitions() {
            if let Some(cf) = self.db.cf_handle(&name) {
                total += self
                    .db
                    .property_int_value_cf(&cf, "rocksdb.live-sst-files-size")
                    .map_err(|source| self.rocks_error(format!("reading size of {name}"), source))?
                    .unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Writes one immutable block covering `[mint, maxt)` (milliseconds; within one UTC day)
    /// from `series`: labels and their chunks, every chunk within the range. Series may come
    /// in any order; chunks of repeated labels are merged; series without samples are skipped.
    ///
    /// Returns once the block is durable; it is then visible to queries.
    pub fn write_block(
        &self,
        mint: i64,
        maxt: i64,
        series: impl IntoIterator<Item = (Labels, Vec<ChunkMeta>)>,
    ) -> Result<BlockMeta> {
        let invalid = |reason: String| Error::InvalidBlock { mint, maxt, reason };
        if mint >= maxt {
            return Err(invalid("the range is empty".into()));
        }
        if keys::day_of(mint) != keys::day_of(maxt - 1) {
            return Err(invalid(
                "the range crosses a UTC day boundary: cut blocks at multiples of 2 h".into(),
            ));
        }
        let mut by_labels: BTreeMap<Labels, Vec<ChunkMeta>> = BTreeMap::new();
        for (labels, chunks) in series {
            for chunk in &chunks {
                if chunk.min_time < mint || chunk.max_time >= maxt {
                    return Err(invalid(format!(
                        "series {labels} has a chunk [{}, {}] outside the block",
                        chunk.min_time, chunk.max_time
                    )));
                }
            }
            by_labels.entry(labels).or_default().extend(chunks);
        }
        let mut next_id = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut writer = self.begin(&mut next_id, mint, maxt, false)?;
        let (id, partition) = (writer.id, writer.partition.clone());
        let result = (|| {
            for (labels, mut chunks) in by_labels {
                chunks.sort_by_key(|c| c.min_time);
                // The head's chunks on disk are read here, one series at a time.
                for chunk in &mut chunks {
                    chunk.chunk = chunk.chunk.loaded()?;
                }
                let num_samples: usize = chunks.iter().map(|c| c.chunk.num_samples()).sum();
                let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
                    continue;
                };
                if num_samples == 0 {
                    continue;
                }
                let (min_time, max_time) = (
                    first.min_time,
                    chunks
                        .iter()
                        .map(|c| c.max_time)
                        .max()
                        .unwrap_or(last.max_time),
                );
                let value = codec::encode_chunks(self.options.encoding, &chunks);
                writer.add_series(
                    SeriesEntry {
                        labels,
                        min_time,
                        max_time,
                        num_samples: num_samples as u64,
                    },
                    value,
                )?;
            }
            self.commit(writer, &[])
        })();
        if result.is_err() {
            self.discard(&partition, id);
        }
        result
    }

    /// Best-effort removal of a block write that failed before its meta was written (what
    /// is left would otherwise wait for the next open).
    fn discard(&self, partition: &str, id: u64) {
        if let Some(cf) = self.db.cf_handle(partition) {
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(&cf, keys::data_start(id), keys::data_end(id));
            if let Err(error) = self.db.write(batch) {
                tracing::warn!(%partition, block = id, %error, "could not remove a failed block write");
            }
        }
    }

    fn partitions(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.blocks().into_iter().map(|b| b.partition).collect();
        if let Ok(all) = Db::list_cf(&Options::default(), &self.path) {
            names.extend(
                all.into_iter()
                    .filter(|n| n.starts_with(keys::PARTITION_PREFIX)),
            );
        }
        names.into_iter().collect()
    }

    fn rocks_error(&self, action: String, source: rocksdb::Error) -> Error {
        Error::RocksDb {
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(meta: &BlockMeta, reason: impl Into<String>) -> Error {
        Error::CorruptBlock {
            partition: meta.partition.clone(),
            block: meta.id,
            reason: reason.into(),
        }
    }

    fn check_version(&self) -> Result<()> {
        let found = self
            .db
            .get(keys::VERSION_KEY)
            .map_err(|source| self.rocks_error("reading the format version".into(), source))?;
        match found {
            None => {
                let mut sync = WriteOptions::default();
                sync.set_sync(true);
                self.db
                    .put_opt(keys::VERSION_KEY, FORMAT_VERSION.to_be_bytes(), &sync)
                    .map_err(|source| self.rocks_error("writing the format version".into(), source))
            }
            Some(bytes) => {
                let version = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if version == FORMAT_VERSION {
                    Ok(())
                } else {
                    Err(Error::UnsupportedBlockVersion {
                        path: self.path.clone(),
                        version,
                        supported: FORMAT_VERSION,
                    })
                }
            }
        }
    }

    /// Reads every block meta; range-deletes data of blocks without one (crashed writes)
    /// and drops partitions left with nothing.
    fn load_blocks(&self, names: &[String]) -> Result<Vec<BlockMeta>> {
        let mut blocks = Vec::new();
        for name in names
            .iter()
            .filter(|n| n.starts_with(keys::PARTITION_PREFIX))
        {
            let Some(cf) = self.db.cf_handle(name) else {
                continue;
            };
            let mut metas = Vec::new();
            self.scan(&cf, &[keys::META], |key, value| {
                let id = keys::block_id(key).unwrap_or(0);
                let meta = codec::decode_meta(value).map_err(|reason| Error::CorruptBlock {
                    partition: name.clone(),
                    block: id,
                    reason: reason.into(),
                })?;
                metas.push(BlockMeta::from_stored(id, name.clone(), meta));
                Ok(true)
            })?;
            let known: BTreeSet<u64> = metas.iter().map(|m| m.id).collect();
            // Find data ranges of blocks without a meta: seek from block to block.
            let mut orphans = Vec::new();
            let mut it = self.db.raw_iterator_cf(&cf);
            it.seek([keys::DATA]);
            while let Some(key) = it.key() {
                let Some(id) = keys::block_id(key).filter(|_| key.first() == Some(&keys::DATA))
                else {
                    break;
                };
                if !known.contains(&id) {
                    orphans.push(id);
                }
                it.seek(keys::data_end(id));
            }
            it.status()
                .map_err(|source| self.rocks_error(format!("listing blocks of {name}"), source))?;
            drop(it);
            if !orphans.is_empty() {
                tracing::warn!(
                    partition = %name,
                    blocks = ?orphans,
                    "removing data of block writes that did not complete"
                );
                let mut batch = WriteBatch::default();
                for &id in &orphans {
                    batch.delete_range_cf(&cf, keys::data_start(id), keys::data_end(id));
                }
                self.write_synced(batch)?;
            }
            if metas.is_empty() {
                drop(cf);
                self.db.drop_cf(name).map_err(|source| {
                    self.rocks_error(format!("dropping empty partition {name}"), source)
                })?;
            }
            blocks.extend(metas);
        }
        blocks.sort_by_key(|b| (b.mint, b.id));
        Ok(blocks)
    }

    /// Calls `f` on each key/value starting with `prefix` until it returns `false`.
    fn scan(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut read = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut it = self.db.raw_iterator_cf_opt(cf, read);
        it.seek(prefix);
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if !key.starts_with(prefix) || !f(key, value)? {
                break;
            }
            it.next();
        }
        it.status()
            .map_err(|source| self.rocks_error("reading blocks".into(), source))
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db
            .write_opt(batch, &sync)
            .map_err(|source| self.rocks_error("writing a batch".into(), source))
    }

    fn partition(&self, day: i64) -> Result<Arc<BoundColumnFamily<'_>>> {
        let name = keys::partition_name(day);
        if let Some(cf) = self.db.cf_handle(&name) {
            return Ok(cf);
        }
        self.db
            .create_cf(&name, &partition_options(&self.options))
            .map_err(|source| self.rocks_error(format!("creating partition {name}"), source))?;
        self.db.cf_handle(&name).ok_or_else(|| Error::CorruptBlock {
            partition: name,
            block: 0,
            reason: "column family vanished after creation".into(),
        })
    }

    /// Starts a block; the caller holds the writer lock (`next_id`).
    fn begin(
        &self,
        next_id: &mut u64,
        mint: i64,
        maxt: i64,
        compacted: bool,
    ) -> Result<BlockWriter<'_>> {
        let day = keys::day_of(mint);
        let cf = self.partition(day)?;
        let id = *next_id;
        *next_id += 1;
        Ok(BlockWriter {
            store: self,
            cf,
            partition: keys::partition_name(day),
            id,
            mint,
            maxt,
            compacted,
            batch: WriteBatch::default(),
            postings: BTreeMap::new(),
            next_ref: 0,
            num_samples: 0,
            encoded_bytes: 0,
        })
    }

    /// Writes the block's postings and meta, with `replaces` (blocks of the same partition)
    /// deleted in the same last batch, then flushes.
    fn commit(&self, mut writer: BlockWriter<'_>, replaces: &[BlockMeta]) -> Result<BlockMeta> {
        let id = writer.id;
        let postings = std::mem::take(&mut writer.postings);
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for ((name, value), refs) in &postings {
            names.insert(name);
            let encoded = codec::encode_postings(refs);
            writer.encoded_bytes += encoded.len() as u64;
            writer
                .batch
                .put_cf(&writer.cf, keys::postings(id, name, value), encoded);
            writer.maybe_apply()?;
        }
        for name in names {
            writer.batch.put_cf(&writer.cf, keys::name(id, name), []);
        }
        let meta = BlockMeta {
            id,
            mint: writer.mint,
            maxt: writer.maxt,
            num_series: u64::from(writer.next_ref),
            num_samples: writer.num_samples,
            compacted: writer.compacted,
            encoded_bytes: writer.encoded_bytes,
            partition: writer.partition.clone(),
        };
        if meta.num_series == 0 {
            // Nothing to store; the block's batch only held nothing visible.
            writer
                .batch
                .delete_range_cf(&writer.cf, keys::data_start(id), keys::data_end(id));
        } else {
            writer.batch.put_cf(
                &writer.cf,
                keys::meta(id),
                codec::encode_meta(&meta.stored()),
            );
        }
        for old in replaces {
            writer.batch.delete_cf(&writer.cf, keys::meta(old.id));
            writer.batch.delete_range_cf(
                &writer.cf,
                keys::data_start(old.id),
                keys::data_end(old.id),
            );
        }
        writer.apply()?;
        self.db.flush_cf(&writer.cf).map_err(|source| {
            self.rocks_error(format!("flushing block {id} to {}", meta.partition), source)
        })?;
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        blocks.retain(|b| !replaces.iter().any(|old| old.id == b.id));
        if meta.num_series > 0 {
            blocks.push(meta.clone());
        }
        blocks.sort_by_key(|b| (b.mint, b.id));
        Ok(meta)
    }

    /// The blocks overlapping `[mint, maxt]` (inclusive).
    fn blocks_in(&self, mint: i64, maxt: i64) -> Vec<BlockMeta> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|b| b.overlaps(mint, maxt))
            .cloned()
            .collect()
    }

    fn cf(&self, meta: &BlockMeta) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(&meta.partition)
            .ok_or_else(|| Self::corrupt(meta, "partition was dropped during the query"))
    }

    fn postings_of(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        key: &[u8],
    ) -> Result<Vec<u32>> {
        match self
            .db
            .get_pinned_cf(cf, key)
            .map_err(|source| self.rocks_error("reading postings".into(), source))?
        {
            Some(value) => codec::decode_postings(&value).map_err(|r| Self::corrupt(meta, r)),
            None => Ok(Vec::new()),
        }
    }

    /// Union of the postings of the values of `name` for which `wanted` holds. With
    /// `patterns`, only keys those patterns can reach are read.
    fn postings_where(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        name: &str,
        patterns: Option<&[sightline_core::matcher::ValuePattern]>,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<u32>> {
        let prefix = keys::postings_prefix(meta.id, name);
        let mut lists = Vec::new();
        match patterns {
            Some(patterns) => {
                for pattern in patterns {
                    let mut key = prefix.clone();
                    key.extend_from_slice(pattern.literal.as_bytes());
                    if pattern.any_suffix {
                        self.scan_values(cf, meta, prefix.len(), &key, wanted, &mut lists)?;
                    } else if wanted(&pattern.literal) {
                        let list = self.postings_of(cf, meta, &key)?;
                        if !list.is_empty() {
                            lists.push(list);
                        }
                    }
                }
            }
            None => self.scan_values(cf, meta, prefix.len(), &prefix, wanted, &mut lists)?,
        }
        Ok(union(lists))
    }

    /// Pushes onto `lists` the postings of keys under `scan_prefix` whose value (the key
    /// after `value_at` bytes) `wanted` accepts.
    fn scan_values(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        value_at: usize,
        scan_prefix: &[u8],
        wanted: &dyn Fn(&str) -> bool,
        lists: &mut Vec<Vec<u32>>,
    ) -> Result<()> {
        self.scan(cf, scan_prefix, |key, value| {
            let text = std::str::from_utf8(&key[value_at..]).unwrap_or("");
            if wanted(text) {
                lists.push(codec::decode_postings(value).map_err(|r| Self::corrupt(meta, r))?);
            }
            Ok(true)
        })
    }

    /// Series refs of the block matching every matcher, sorted.
    fn select_refs(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        matchers: &[Matcher],
    ) -> Result<Vec<u32>> {
        let mut result: Option<Vec<u32>> = None;
        let mut subtract: Vec<Vec<u32>> = Vec::new();
        // Positive matchers first: they narrow fastest.
        let mut ordered: Vec<&Matcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| (m.matches_empty(), m.value_patterns().is_none()));
        for matcher in ordered {
            if !matcher.matches_empty() {
                let refs = self.postings_where(
                    cf,
                    meta,
                    matcher.name(),
                    matcher.value_patterns(),
                    &|v| matcher.matches(v),
                )?;
                result = Some(match result {
                    None => refs,
                    Some(acc) => intersect(&acc, &refs),
                });
                if result.as_ref().is_some_and(Vec::is_empty) {
                    return Ok(Vec::new());
                }
            } else {
                // Matches the empty string: every series except those with a value that
                // does not match. For `!=`/`!~` the excluded values are the positive form's.
                let inverse = match matcher.op() {
                    MatchOp::NotEqual => {
                        Matcher::new(MatchOp::Equal, matcher.name(), matcher.value()).ok()
                    }
                    MatchOp::NotRegex => {
                        Matcher::new(MatchOp::Regex, matcher.name(), matcher.value()).ok()
                    }
                    MatchOp::Equal | MatchOp::Regex => None,
                };
                let patterns = inverse.as_ref().and_then(Matcher::value_patterns);
                let excluded = self
                    .postings_where(cf, meta, matcher.name(), patterns, &|v| !matcher.matches(v))?;
                if !excluded.is_empty() {
                    subtract.push(excluded);
                }
            }
        }
        let mut refs = match result {
            Some(refs) => refs,
            None => (0..u32::try_from(meta.num_series).unwrap_or(u32::MAX)).collect(),
        };
        for excluded in subtract {
            refs = difference(&refs, &excluded);
        }
        Ok(refs)
    }

    /// Series entries of `refs`, in ref order.
    fn series_entries(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        refs: &[u32],
    ) -> Result<Vec<SeriesEntry>> {
        if refs.len() as u64 == meta.num_series {
            // Every series: one scan beats point reads.
            let mut out = Vec::with_capacity(refs.len());
            self.scan(
                cf,
                &keys::kind_prefix(meta.id, keys::KIND_SERIES),
                |_, value| {
                    out.push(codec::decode_series(value).map_err(|r| Self::corrupt(meta, r))?);
                    Ok(true)
                },
            )?;
            return Ok(out);
        }
        let keys: Vec<Vec<u8>> = refs.iter().map(|&r| keys::series(meta.id, r)).collect();
        let mut out = Vec::with_capacity(refs.len());
        for value in self.db.batched_multi_get_cf(cf, &keys, true) {
            let value =
                value.map_err(|source| self.rocks_error("reading series".into(), source))?;
            let value =
                value.ok_or_else(|| Self::corrupt(meta, "postings name a missing series"))?;
            out.push(codec::decode_series(&value).map_err(|r| Self::corrupt(meta, r))?);
        }
        Ok(out)
    }

    /// Chunk values of `refs`, decoded to the chunks holding samples in `[mint, maxt]`.
    fn chunks_of(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        refs: &[u32],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Vec<ChunkMeta>>> {
        let keys: Vec<Vec<u8>> = refs.iter().map(|&r| keys::chunks(meta.id, r)).collect();
        let mut out = Vec::with_capacity(refs.len());
        for value in self.db.batched_multi_get_cf(cf, &keys, true) {
            let value =
                value.map_err(|source| self.rocks_error("reading chunks".into(), source))?;
            let value = value.ok_or_else(|| Self::corrupt(meta, "series without chunks"))?;
            out.push(codec::decode_chunks(&value, mint, maxt).map_err(|r| Self::corrupt(meta, r))?);
        }
        Ok(out)
    }

    /// Selected series of one block whose samples overlap `[mint, maxt]`, with their refs.
    fn selected(
        &self,
        cf: &Arc<BoundColumnFamily<'_>>,
        meta: &BlockMeta,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(u32, SeriesEntry)>> {
        let refs = self.select_refs(cf, meta, matchers)?;
        let entries = self.series_entries(cf, meta, &refs)?;
        Ok(refs
            .into_iter()
            .zip(entries)
            .filter(|(_, e)| e.max_time >= mint && e.min_time <= maxt)
            .collect())
    }
}

/// Options of a day column family.
fn partition_options(options: &BlockStoreOptions) -> Options {
    let mut cf = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_size(options.block_size);
    cf.set_block_based_table_factory(&table);
    match options.compression {
        Compression::None => {
            cf.set_compression_type(DBCompressionType::None);
            cf.set_bottommost_compression_type(DBCompressionType::None);
        }
        Compression::Lz4 => {
            cf.set_compression_type(DBCompressionType::Lz4);
            cf.set_bottommost_compression_type(DBCompressionType::Lz4);
        }
        Compression::Zstd {
            level,
            dictionary_bytes,
        } => {
            cf.set_compression_type(DBCompressionType::Zstd);
            cf.set_compression_options(-14, level, 0, 0);
            cf.set_bottommost_compression_type(DBCompressionType::Zstd);
            cf.set_bottommost_compression_options(
                -14,
                (level + 6).min(19),
                0,
                dictionary_bytes,
                true,
            );
            if dictionary_bytes > 0 {
                cf.set_bottommost_zstd_max_train_bytes(dictionary_bytes * 100, true);
            }
        }
    }
    cf
}

/// Accumulates one block's batches.
struct BlockWriter<'a> {
    store: &'a BlockStore,
    cf: Arc<BoundColumnFamily<'a>>,
    partition: String,
    id: u64,
    mint: i64,
    maxt: i64,
    compacted: bool,
    batch: WriteBatch,
    postings: BTreeMap<(String, String), Vec<u32>>,
    next_ref: u32,
    num_samples: u64,
    encoded_bytes: u64,
}

impl BlockWriter<'_> {
    /// Adds the next series; series must come in label order.
    fn add_series(&mut self, entry: SeriesEntry, chunk_value: Vec<u8>) -> Result<()> {
        let series_ref = self.next_ref;
        self.next_ref = self
            .next_ref
            .checked_add(1)
            .ok_or_else(|| Error::InvalidBlock {
                mint: self.mint,
                maxt: self.maxt,
                reason: "more than 2^32 series".into(),
            })?;
        for label in &entry.labels {
            self.postings
                .entry((label.name.clone(), label.value.clone()))
                .or_default()
                .push(series_ref);
        }
        self.num_samples += entry.num_samples;
        let series_value = codec::encode_series(&entry);
        self.encoded_bytes += (series_value.len() + chunk_value.len()) as u64;
        self.batch
            .put_cf(&self.cf, keys::series(self.id, series_ref), series_value);
        self.batch
            .put_cf(&self.cf, keys::chunks(self.id, series_ref), chunk_value);
        self.maybe_apply()
    }

    fn maybe_apply(&mut self) -> Result<()> {
        if self.batch.size_in_bytes() >= BATCH_BYTES {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let mut no_wal = WriteOptions::default();
        no_wal.disable_wal(true);
        self.store.db.write_opt(batch, &no_wal).map_err(|source| {
            self.store.rocks_error(
                format!("writing block {} to {}", self.id, self.partition),
                source,
            )
        })
    }
}

fn union(mut lists: Vec<Vec<u32>>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            let mut all: Vec<u32> = lists.concat();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            !(j < b.len() && b[j] == x)
        })
        .collect()
}

impl Querier for BlockStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>> {
        let mut by_labels: BTreeMap<Labels, Vec<ChunkMeta>> = BTreeMap::new();
        for meta in self.blocks_in(mint, maxt) {
            let cf = self.cf(&meta)?;
            let selected = self.selected(&cf, &meta, matchers, mint, maxt)?;
            let refs: Vec<u32> = selected.iter().map(|(r, _)| *r).collect();
            let chunks = self.chunks_of(&cf, &meta, &refs, mint, maxt)?;
            for ((_, entry), chunks) in selected.into_iter().zip(chunks) {
                if chunks.is_empty() {
                    continue;
                }
                by_labels.entry(entry.labels).or_default().extend(chunks);
            }
        }
        let mut out = Vec::with_capacity(by_labels.len());
        for (labels, mut chunks) in by_labels {
            chunks.sort_by_key(|c| c.min_time);
            let series = SeriesChunks { labels, chunks };
            if series.samples(mint, maxt).next().is_some() {
                out.push(series);
            }
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for meta in self.blocks_in(mint, maxt) {
            let cf = self.cf(&meta)?;
            if matchers.is_empty() {
                let prefix = keys::kind_prefix(meta.id, keys::KIND_NAME);
                self.scan(&cf, &prefix, |key, _| {
                    names.insert(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
                    Ok(true)
                })?;
            } else {
                for (_, entry) in self.selected(&cf, &meta, matchers, mint, maxt)? {
                    names.extend(entry.labels.iter().map(|l| l.name.clone()));
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        for meta in self.blocks_in(mint, maxt) {
            let cf = self.cf(&meta)?;
            if matchers.is_empty() {
                let prefix = keys::postings_prefix(meta.id, name);
                self.scan(&cf, &prefix, |key, _| {
                    values.insert(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
                    Ok(true)
                })?;
            } else {
                for (_, entry) in self.selected(&cf, &meta, matchers, mint, maxt)? {
                    if let Some(value) = entry.labels.get(name) {
                        values.insert(value.to_owned());
                    }
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}
