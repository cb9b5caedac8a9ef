//! The metric store as the appliance runs it: the head in front, persistent blocks behind.
//!
//! Follows Prometheus's head compaction: once a whole block range (2 h by default, so blocks
//! never cross a UTC day) ended at least half a range ago, its data is cut from the head into
//! a block and the head is truncated, so the head holds roughly 1.5 block ranges. Day
//! compaction and retention run on the blocks. Reads merge blocks and head; a chunk present in
//! both (a crash between writing a block and truncating the head) is returned once.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::Result;
use crate::block::{
    BlockMeta, BlockStore, DEFAULT_BLOCK_RANGE_MS, RetentionPolicy, RetentionReport,
};
use crate::head::{Head, HeadOptions};
use crate::storage::MergeQuerier;

const DAY_MS: i64 = 86_400_000;

/// Settings of a [`Db`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// The head's WAL and chunk settings.
    pub head: HeadOptions,
    /// Length of a block in milliseconds; a divisor of a day.
    pub block_range_ms: i64,
    /// What the blocks keep.
    pub retention: RetentionPolicy,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            retention: RetentionPolicy::default(),
        }
    }
}

/// The head and the blocks of one data directory.
pub struct Db {
    head: Arc<Head>,
    blocks: Arc<BlockStore>,
    querier: Arc<MergeQuerier>,
    block_range_ms: i64,
    /// Replaceable at run time (a config reload); read at each compaction.
    retention: RwLock<RetentionPolicy>,
}

impl Db {
    /// Opens `dir`: replays the head's WAL from `dir/wal` and opens the blocks in
    /// `dir/blocks`.
    pub fn open(dir: &Path, options: DbOptions) -> Result<Db> {
        let head = Arc::new(Head::open(dir, options.head)?);
        let blocks = Arc::new(BlockStore::open(dir.join("blocks"))?);
        let querier = Arc::new(MergeQuerier::new(vec![
            Box::new(blocks.clone()),
            Box::new(head.clone()),
        ]));
        if options.block_range_ms <= 0 || DAY_MS % options.block_range_ms != 0 {
            return Err(crate::Error::InvalidBlock {
                mint: 0,
                maxt: options.block_range_ms,
                reason: "the block range must divide a day".into(),
            });
        }
        Ok(Db {
            head,
            blocks,
            querier,
            block_range_ms: options.block_range_ms,
            retention: RwLock::new(options.retention),
        })
    }

    /// The in-memory head, to append to.
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// The persistent blocks.
    pub fn blocks(&self) -> &Arc<BlockStore> {
        &self.blocks
    }

    /// Everything stored, blocks and head merged.
    pub fn querier(&self) -> &Arc<MergeQuerier> {
        &self.querier
    }

    /// Replaces the retention policy; the next [`Db::compact_and_expire`] applies it.
    pub fn set_retention(&self, policy: RetentionPolicy) {
        *self.retention.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Cuts every whole block range that ended at least half a range before `now_ms` from
    /// the head into a block, truncating the head after each; returns the blocks written.
    ///
    /// Blocks end at multiples of the block range. After the range was changed (a restart
    /// with another `block_range`), the first block ends at the next multiple of the new
    /// range, so it may be shorter; no block crosses midnight.
    pub fn cut_blocks(&self, now_ms: i64) -> Result<Vec<BlockMeta>> {
        let range = self.block_range_ms;
        let first = match self.blocks.max_time() {
            Some(end) => Some(end),
            None => self.head.min_time().map(|t| t.div_euclid(range) * range),
        };
        let Some(mut start) = first else {
            return Ok(Vec::new());
        };
        let mut written = Vec::new();
        loop {
            let end = (start.div_euclid(range) + 1) * range;
            if end > now_ms - range / 2 {
                break;
            }
            let series = self.head.series_in_range(start, end)?;
            if !series.is_empty() {
                written.push(self.blocks.write_block(start, end, series)?);
            }
            self.head.truncate_before(end)?;
            start = end;
        }
        Ok(written)
    }

    /// Compacts finished days and applies retention at `now_ms`.
    pub fn compact_and_expire(&self, now_ms: i64) -> Result<RetentionReport> {
        let policy = self
            .retention
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.blocks.compact(now_ms, &policy)?;
        self.blocks.apply_retention(now_ms, &policy)
    }
}

#[cfg(test)]
mod tests {
    use sightline_core::labels::Labels;

    use super::*;
    use crate::storage::Querier;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn old_head_data_moves_to_blocks_and_reads_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        // One sample a minute for 7 hours, starting at a day boundary.
        let start = 1_700_006_400_000 - 1_700_006_400_000 % (24 * HOUR);
        let mut appender = db.head().appender();
        for minute in 0..7 * 60 {
            appender
                .append(&labels, start + minute * 60_000, minute as f64)
                .unwrap();
        }
        appender.commit().unwrap();

        let written = db.cut_blocks(start + 7 * HOUR).unwrap();
        // [0,2h), [2h,4h) and [4h,6h) ended at least an hour (half a range) before 7h.
        assert_eq!(written.len(), 3);
        assert_eq!(db.blocks().max_time(), Some(start + 6 * HOUR));
        let all = db.querier().select(&[], i64::MIN, i64::MAX).unwrap();
        let samples: Vec<(i64, f64)> = all[0].samples(i64::MIN, i64::MAX).collect();
        assert_eq!(
            samples.len(),
            7 * 60,
            "every sample once, from blocks and head together"
        );
        assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));

        drop(db);
        let reopened = Db::open(dir.path(), DbOptions::default()).unwrap();
        let all = reopened.querier().select(&[], i64::MIN, i64::MAX).unwrap();
        assert_eq!(all[0].samples(i64::MIN, i64::MAX).count(), 7 * 60);
        assert!(
            reopened.cut_blocks(start + 7 * HOUR).unwrap().is_empty(),
            "nothing cut twice"
        );
    }
}
