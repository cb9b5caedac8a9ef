//! Compaction of finished days into day blocks, and retention (by age, by size, and by
//! series matcher).
//!
//! Exact semantics, with `now` the time passed in (milliseconds) and ages in milliseconds:
//!
//! - **Age of a series.** The first entry of [`RetentionPolicy::overrides`] whose matchers all
//!   match the series' labels gives its age; a series no override matches has
//!   [`RetentionPolicy::max_age`]. An age of zero means "keep forever".
//! - **Expiry is per block.** The data of series `s` in a block expires once the block's
//!   whole range is older than `s`'s age: `block.maxt <= now − age(s)`. Day blocks thus
//!   expire a whole UTC day at a time, and 2 h blocks of a day not yet compacted 2 h at a
//!   time. Nothing is ever cut inside a block's time range.
//! - **[`BlockStore::apply_retention`]**, per block:
//!   - every series expired (the block is older than the longest age in the policy): the
//!     block is dropped; when that empties its day, the day's column family is dropped and
//!     its files are deleted at once; otherwise the block's range is range-deleted and that
//!     range compacted so the space comes back;
//!   - some series expired (the block is older than the shortest age): the block is
//!     rewritten with only the series whose age still covers it — e.g. with
//!     `max_age = 7d` and `{job="node"}` kept 30 d, days 8–30 keep only `job="node"`; with
//!     `{__name__=~"apiserver_.*"}` kept 2 d, days 3–7 lose those series. A rewrite only
//!     happens when the postings index shows a series to drop, so a second run is a no-op;
//!   - then, while [`RetentionPolicy::max_size_bytes`] (0 = no limit) is exceeded by
//!     [`BlockStore::disk_usage`], the oldest day is dropped whole — never the day holding
//!     the newest block.
//! - **[`BlockStore::compact`]** merges all blocks of each UTC day that has ended by `now`
//!   (`day end <= now`) and has more than one block, or a block not yet compacted, into one
//!   day block spanning the union of their ranges. Series expired by the rules above are left
//!   out of the day block, which is where overrides usually take effect. The new block and the
//!   removal of its sources are one atomic batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, ReadOptions, WriteBatch};
use sightline_core::config::MetricsStorageConfig;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;

use super::codec::{self, SeriesEntry};
use super::keys;
use super::{BlockMeta, BlockStore};
use crate::Result;

/// How long series are kept, and how much disk the blocks may use.
#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    /// Age of series no override matches (zero = forever).
    pub max_age: Duration,
    /// Largest [`BlockStore::disk_usage`] in bytes; the oldest days are dropped beyond it.
    /// 0 = no limit.
    pub max_size_bytes: u64,
    /// Per-series ages: the first entry whose matchers all match a series gives its age.
    pub overrides: Vec<(Vec<Matcher>, Duration)>,
}

impl RetentionPolicy {
    /// The age of a series with these labels, in milliseconds (`None` = forever).
    fn age_of(&self, labels: &Labels) -> Option<i64> {
        let age = self
            .overrides
            .iter()
            .find(|(matchers, _)| {
                matchers
                    .iter()
                    .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
            })
            .map_or(self.max_age, |(_, age)| *age);
        ms(age)
    }

    fn ages(&self) -> impl Iterator<Item = Option<i64>> + '_ {
        std::iter::once(ms(self.max_age)).chain(self.overrides.iter().map(|(_, age)| ms(*age)))
    }

    /// Whether a block ending at `maxt` is expired for a series of age `age`.
    fn expired(maxt: i64, age: Option<i64>, now: i64) -> bool {
        age.is_some_and(|age| maxt <= now.saturating_sub(age))
    }

    /// True when no series at all can still be kept in a block ending at `maxt`.
    fn all_expired(&self, maxt: i64, now: i64) -> bool {
        self.ages().all(|age| Self::expired(maxt, age, now))
    }

    /// True when some series may be expired in a block ending at `maxt`.
    fn any_expired(&self, maxt: i64, now: i64) -> bool {
        self.ages().any(|age| Self::expired(maxt, age, now))
    }

    fn keeps(&self, labels: &Labels, maxt: i64, now: i64) -> bool {
        !Self::expired(maxt, self.age_of(labels), now)
    }
}

/// The policy `storage.metrics` configures: `retention`, `retention_size` and
/// `retention_overrides`, in order.
impl From<&MetricsStorageConfig> for RetentionPolicy {
    fn from(config: &MetricsStorageConfig) -> Self {
        RetentionPolicy {
            max_age: config.retention,
            max_size_bytes: config.retention_size.bytes(),
            overrides: config
                .retention_overrides
                .iter()
                .map(|o| (o.matchers.matchers().to_vec(), o.retention))
                .collect(),
        }
    }
}

fn ms(age: Duration) -> Option<i64> {
    (!age.is_zero()).then(|| i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// What [`BlockStore::apply_retention`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Blocks removed whole (by age or size).
    pub blocks_dropped: usize,
    /// Day partitions (column families) dropped.
    pub partitions_dropped: usize,
    /// Blocks rewritten without their expired series.
    pub blocks_rewritten: usize,
    /// Series left out of rewritten blocks.
    pub series_dropped: u64,
}

impl BlockStore {
    /// Merges the blocks of each UTC day that ended by `now_ms` into one day block, leaving
    /// out series that `policy` expires (see the [module docs](self)). Returns the day
    /// blocks written.
    pub fn compact(&self, now_ms: i64, policy: &RetentionPolicy) -> Result<Vec<BlockMeta>> {
        let mut next_id = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_day: BTreeMap<i64, Vec<BlockMeta>> = BTreeMap::new();
        for block in self.blocks() {
            by_day.entry(block.day()).or_default().push(block);
        }
        let mut written = Vec::new();
        for (day, sources) in by_day {
            let day_end = (day + 1).saturating_mul(keys::DAY_MS);
            if day_end > now_ms || (sources.len() == 1 && sources[0].compacted) {
                continue;
            }
            let mint = sources.iter().map(|b| b.mint).min().unwrap_or(day_end);
            let maxt = sources.iter().map(|b| b.maxt).max().unwrap_or(day_end);
            let keep = |labels: &Labels| policy.keeps(labels, maxt, now_ms);
            let (meta, _) = self.merge(&mut next_id, &sources, mint, maxt, &keep)?;
            self.reclaim(&sources)?;
            written.extend(meta);
        }
        Ok(written)
    }

    /// Drops and rewrites blocks as `policy` says at `now_ms` (see the
    /// [module docs](self)), and returns what it did.
    pub fn apply_retention(
        &self,
        now_ms: i64,
        policy: &RetentionPolicy,
    ) -> Result<RetentionReport> {
        let mut next_id = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = RetentionReport::default();
        let blocks = self.blocks();
        let mut drop_whole = Vec::new();
        for block in &blocks {
            if policy.all_expired(block.maxt, now_ms) {
                drop_whole.push(block.clone());
            } else if policy.any_expired(block.maxt, now_ms)
                && self.has_expired_series(block, policy, now_ms)?
            {
                let keep = |labels: &Labels| policy.keeps(labels, block.maxt, now_ms);
                let (meta, dropped) = self.merge(
                    &mut next_id,
                    std::slice::from_ref(block),
                    block.mint,
                    block.maxt,
                    &keep,
                )?;
                report.series_dropped += dropped;
                if meta.is_some() {
                    report.blocks_rewritten += 1;
                } else {
                    report.blocks_dropped += 1;
                }
                self.reclaim(std::slice::from_ref(block))?;
            }
        }
        self.drop_blocks(&drop_whole, &mut report)?;
        if policy.max_size_bytes > 0 {
            loop {
                let blocks = self.blocks();
                let newest_day = blocks.iter().max_by_key(|b| b.maxt).map(BlockMeta::day);
                let Some(oldest_day) = blocks.first().map(BlockMeta::day) else {
                    break;
                };
                if Some(oldest_day) == newest_day || self.disk_usage()? <= policy.max_size_bytes {
                    break;
                }
                let day: Vec<BlockMeta> = blocks
                    .into_iter()
                    .filter(|b| b.day() == oldest_day)
                    .collect();
                self.drop_blocks(&day, &mut report)?;
            }
        }
        Ok(report)
    }

    /// Whether any series in `block` is expired, answered from the postings of the
    /// overrides' matchers (and of the default age, which needs reading the series).
    fn has_expired_series(
        &self,
        block: &BlockMeta,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<bool> {
        let cf = self.cf(block)?;
        let default_expired = RetentionPolicy::expired(block.maxt, ms(policy.max_age), now_ms);
        if !default_expired {
            // Only series of an expired override can go; most blocks have none.
            let mut any = false;
            for (matchers, age) in &policy.overrides {
                if RetentionPolicy::expired(block.maxt, ms(*age), now_ms)
                    && !self.select_refs(&cf, block, matchers)?.is_empty()
                {
                    any = true;
                    break;
                }
            }
            if !any {
                return Ok(false);
            }
        }
        // Confirm with the first-match rule over the series themselves.
        let mut expired = false;
        self.scan(
            &cf,
            &keys::kind_prefix(block.id, keys::KIND_SERIES),
            |_, value| {
                let entry = codec::decode_series(value).map_err(|r| Self::corrupt(block, r))?;
                expired = !policy.keeps(&entry.labels, block.maxt, now_ms);
                Ok(!expired)
            },
        )?;
        Ok(expired)
    }

    /// Removes blocks whole: a partition left empty is dropped, otherwise the blocks' ranges
    /// are deleted and compacted.
    fn drop_blocks(&self, blocks: &[BlockMeta], report: &mut RetentionReport) -> Result<()> {
        let mut by_partition: BTreeMap<String, Vec<&BlockMeta>> = BTreeMap::new();
        for block in blocks {
            by_partition
                .entry(block.partition.clone())
                .or_default()
                .push(block);
        }
        for (partition, dropped) in by_partition {
            let remaining = self
                .blocks()
                .iter()
                .filter(|b| b.partition == partition && !dropped.iter().any(|d| d.id == b.id))
                .count();
            // Hide the blocks from queries first.
            self.blocks
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|b| !dropped.iter().any(|d| d.id == b.id));
            report.blocks_dropped += dropped.len();
            if remaining == 0 {
                self.db.drop_cf(&partition).map_err(|source| {
                    self.rocks_error(format!("dropping partition {partition}"), source)
                })?;
                report.partitions_dropped += 1;
                tracing::info!(%partition, "retention dropped a day of metric blocks");
            } else if let Some(cf) = self.db.cf_handle(&partition) {
                let mut batch = WriteBatch::default();
                for block in &dropped {
                    batch.delete_cf(&cf, keys::meta(block.id));
                    batch.delete_range_cf(
                        &cf,
                        keys::data_start(block.id),
                        keys::data_end(block.id),
                    );
                }
                self.write_synced(batch)?;
                drop(cf);
                let owned: Vec<BlockMeta> = dropped.into_iter().cloned().collect();
                self.reclaim(&owned)?;
            }
        }
        Ok(())
    }

    /// Compacts every day partition fully: all blocks move to RocksDB's bottommost level,
    /// with its stronger compression and dictionary. RocksDB does this on its own once four
    /// blocks wait in level 0, and [`BlockStore::compact`] does it when a day ends; this
    /// forces it, for tools and benchmarks that measure the settled size.
    pub fn compact_partitions(&self) -> Result<()> {
        self.reclaim(&self.blocks())
    }

    /// Compacts the partitions of removed blocks so their space comes back (and what
    /// remains moves to the bottommost level, with its stronger compression).
    fn reclaim(&self, removed: &[BlockMeta]) -> Result<()> {
        let partitions: std::collections::BTreeSet<&str> =
            removed.iter().map(|b| b.partition.as_str()).collect();
        for partition in partitions {
            if let Some(cf) = self.db.cf_handle(partition) {
                self.db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
        Ok(())
    }

    /// Writes one block from the series of `sources` (same partition) that `keep` accepts,
    /// replacing the sources atomically. Returns the new block (`None` if no series was
    /// kept; the sources are then deleted) and how many series were left out.
    pub(super) fn merge(
        &self,
        next_id: &mut u64,
        sources: &[BlockMeta],
        mint: i64,
        maxt: i64,
        keep: &dyn Fn(&Labels) -> bool,
    ) -> Result<(Option<BlockMeta>, u64)> {
        let Some(first) = sources.first() else {
            return Ok((None, 0));
        };
        let cf = self.cf(first)?;
        let mut cursors = Vec::with_capacity(sources.len());
        for source in sources {
            cursors.push(Cursor::new(self, &cf, source)?);
        }
        let writer = self.begin(next_id, mint, maxt, true)?;
        let (id, partition) = (writer.id, writer.partition.clone());
        let result = self.merge_into(writer, cursors, &cf, sources, keep);
        if result.is_err() {
            self.discard(&partition, id);
        }
        result
    }

    /// The body of [`merge`](Self::merge): streams the cursors' series into `writer`.
    fn merge_into<'a>(
        &'a self,
        mut writer: super::BlockWriter<'a>,
        mut cursors: Vec<Cursor<'a>>,
        cf: &Arc<BoundColumnFamily<'a>>,
        sources: &[BlockMeta],
        keep: &dyn Fn(&Labels) -> bool,
    ) -> Result<(Option<BlockMeta>, u64)> {
        let mut dropped = 0u64;
        // The smallest labels among the cursors' current series, until all are exhausted.
        while let Some(labels) = cursors
            .iter()
            .filter_map(|c| c.current.as_ref().map(|(_, e)| &e.labels))
            .min()
            .cloned()
        {
            let mut parts: Vec<(i64, Vec<(i64, f64)>)> = Vec::new();
            for cursor in &mut cursors {
                if let Some((series_ref, _)) = cursor.current.take_if(|(_, e)| e.labels == labels) {
                    if keep(&labels) {
                        let value = self
                            .db
                            .get_pinned_cf(cf, keys::chunks(cursor.meta.id, series_ref))
                            .map_err(|source| self.rocks_error("reading chunks".into(), source))?
                            .ok_or_else(|| Self::corrupt(cursor.meta, "series without chunks"))?;
                        let samples = codec::decode_samples(&value)
                            .map_err(|r| Self::corrupt(cursor.meta, r))?;
                        parts.push((cursor.meta.mint, samples));
                    }
                    cursor.advance()?;
                }
            }
            if !keep(&labels) {
                dropped += 1;
                continue;
            }
            parts.sort_by_key(|(block_mint, _)| *block_mint);
            let mut samples: Vec<(i64, f64)> = parts.into_iter().flat_map(|(_, s)| s).collect();
            // Blocks of one day do not overlap unless the head re-cut replayed data; keep the
            // first sample at each timestamp.
            samples.sort_by_key(|&(t, _)| t);
            samples.dedup_by_key(|&mut (t, _)| t);
            let (Some(&(min_time, _)), Some(&(max_time, _))) = (samples.first(), samples.last())
            else {
                continue;
            };
            let value = codec::encode_samples(self.options.encoding, &samples);
            writer.add_series(
                SeriesEntry {
                    labels,
                    min_time,
                    max_time,
                    num_samples: samples.len() as u64,
                },
                value,
            )?;
        }
        drop(cursors);
        let kept = writer.next_ref > 0;
        let meta = self.commit(writer, sources)?;
        Ok((kept.then_some(meta), dropped))
    }
}

/// Walks a block's series entries in ref (= label) order.
struct Cursor<'a> {
    meta: &'a BlockMeta,
    it: rocksdb::DBRawIteratorWithThreadMode<'a, super::Db>,
    current: Option<(u32, SeriesEntry)>,
}

impl<'a> Cursor<'a> {
    fn new(
        store: &'a BlockStore,
        cf: &Arc<BoundColumnFamily<'a>>,
        meta: &'a BlockMeta,
    ) -> Result<Self> {
        let prefix = keys::kind_prefix(meta.id, keys::KIND_SERIES);
        let mut read = ReadOptions::default();
        if let Some(end) = keys::prefix_end(&prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut it = store.db.raw_iterator_cf_opt(cf, read);
        it.seek(&prefix);
        let mut cursor = Cursor {
            meta,
            it,
            current: None,
        };
        cursor.load()?;
        Ok(cursor)
    }

    fn load(&mut self) -> Result<()> {
        self.current = match (self.it.key(), self.it.value()) {
            (Some(key), Some(value)) => {
                let series_ref = keys::series_ref(key)
                    .ok_or_else(|| BlockStore::corrupt(self.meta, "short series key"))?;
                let entry =
                    codec::decode_series(value).map_err(|r| BlockStore::corrupt(self.meta, r))?;
                Some((series_ref, entry))
            }
            _ => {
                self.it
                    .status()
                    .map_err(|source| crate::Error::CorruptBlock {
                        partition: self.meta.partition.clone(),
                        block: self.meta.id,
                        reason: format!("reading series: {source}"),
                    })?;
                None
            }
        };
        Ok(())
    }

    fn advance(&mut self) -> Result<()> {
        self.it.next();
        self.load()
    }
}
