//! The metric store as the appliance runs it: the head in front, persistent blocks behind.
//!
//! Follows Prometheus's head compaction: once a whole block range (2 h by default, so blocks
//! never cross a UTC day) ended at least half a range ago, its data is cut from the head into
//! a block and the head is truncated, so the head holds roughly 1.5 block ranges. Day
//! compaction and retention run on the blocks. Reads merge blocks and head; a chunk present in
//! both (a crash between writing a block and truncating the head) is returned once.

use std::path::Path;
use std::sync::Arc;

use crate::Result;
use crate::block::{
    BlockMeta, BlockStore, DEFAULT_BLOCK_RANGE_MS, RetentionPolicy, RetentionReport,
};
use crate::head::{Head, HeadOptions};
use crate::storage::MergeQuerier;

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
    options: DbOptions,
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
        Ok(Db {
            head,
            blocks,
            querier,
            options,
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

    /// Cuts every whole block range that ended at least half a range before `now_ms` from
    /// the head into a block, truncating the head after each; returns the blocks written.
    pub fn cut_blocks(&self, now_ms: i64) -> Result<Vec<BlockMeta>> {
        let range = self.options.block_range_ms;
        let first = match self.blocks.max_time() {
            Some(end) => Some(end),
            None => self
                .head
                .stats(0)
                .min_time
                .map(|t| t.div_euclid(range) * range),
        };
        let Some(mut start) = first else {
            return Ok(Vec::new());
        };
        let mut written = Vec::new();
        while start + range <= now_ms - range / 2 {
            let end = start + range;
            let series = self.head.series_in_range(start, end);
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
        self.blocks.compact(now_ms, &self.options.retention)?;
        self.blocks.apply_retention(now_ms, &self.options.retention)
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
