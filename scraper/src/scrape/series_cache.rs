//! The scrape loop's series cache: raw series text → storage reference, plus which series
//! the current and the previous scrape saw, for staleness markers.
//!
//! Decision: a line is keyed by a 128-bit hash of its text (two seeded 64-bit foldhash
//! hashes), not by the text itself. The text is most of what the cache would hold (about
//! 130 bytes a series on typical targets, plus the allocation); the hash is 16 bytes inside
//! the table. Two lines of one target colliding — odds about n²/2¹²⁹, 10⁻²⁹ for 100k series —
//! would file one line's samples under the other's series of the same target, nothing worse.

use std::collections::HashMap;
use std::hash::BuildHasher;

use sightline_tsdb::storage::SeriesRef;

/// What a raw series line maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cached {
    /// Stored under this reference.
    Stored(SeriesRef),
    /// Dropped by `metric_relabel_configs`.
    Dropped,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    /// The scrape number that first stored the series.
    added_in: u32,
    /// The scrape number that last saw the series.
    seen_in: u32,
    /// Exposed with its own timestamps: never marked stale.
    explicit_timestamps: bool,
}

/// Series of one target, keyed by the hash of the text of their line.
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    entries: HashMap<u128, Entry, foldhash::fast::RandomState>,
    /// The two seeded hashes that make a line's key.
    keys: (
        foldhash::quality::RandomState,
        foldhash::quality::RandomState,
    ),
    /// Scrape number; `u32` wraps after 136 years of 1 s scrapes.
    scrape: u32,
}

impl SeriesCache {
    /// Starts a new scrape: series seen from now on count as present.
    pub(super) fn begin_scrape(&mut self) {
        self.scrape = self.scrape.wrapping_add(1);
    }

    fn key(&self, series: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(series)) << 64) | u128::from(self.keys.1.hash_one(series))
    }

    /// What the series of this line maps to, if it is known; a known series counts as seen
    /// in this scrape.
    pub(super) fn lookup(&mut self, series: &str, explicit_timestamps: bool) -> Option<Cached> {
        let key = self.key(series);
        let entry = self.entries.get_mut(&key)?;
        entry.seen_in = self.scrape;
        entry.explicit_timestamps = explicit_timestamps;
        Some(entry.cached)
    }

    /// Records a series and what it maps to; true when it is new to the cache. Every scrape
    /// ends with [`end_scrape`](Self::end_scrape), which forgets the series it did not see, so
    /// a series the cache holds was in the previous scrape or already counted in this one.
    pub(super) fn insert(
        &mut self,
        series: &str,
        cached: Cached,
        explicit_timestamps: bool,
    ) -> bool {
        let key = self.key(series);
        let scrape = self.scrape;
        let added_in = self.entries.get(&key).map(|entry| entry.added_in);
        self.entries.insert(
            key,
            Entry {
                cached,
                added_in: added_in.unwrap_or(scrape),
                seen_in: scrape,
                explicit_timestamps,
            },
        );
        added_in.is_none()
    }

    /// Treats every series as unseen in this scrape (a failed scrape, or a target going away),
    /// and forgets the series this scrape added: their samples were never committed.
    pub(super) fn mark_all_unseen(&mut self) {
        let current = self.scrape;
        self.entries.retain(|_, entry| entry.added_in != current);
        self.scrape = self.scrape.wrapping_add(1);
    }

    /// Ends the scrape: forgets series it did not see and returns those that need a staleness
    /// marker.
    pub(super) fn end_scrape(&mut self) -> Vec<SeriesRef> {
        let current = self.scrape;
        let mut stale = Vec::new();
        self.entries.retain(|_, entry| {
            if entry.seen_in == current {
                return true;
            }
            if let (Cached::Stored(series), false) = (entry.cached, entry.explicit_timestamps) {
                stale.push(series);
            }
            false
        });
        stale
    }
}
