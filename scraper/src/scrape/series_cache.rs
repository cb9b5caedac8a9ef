//! The scrape loop's series cache: raw series text → storage reference, plus which series
//! the current and the previous scrape saw, for staleness markers.

use std::collections::HashMap;

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
    added_in: u64,
    /// The scrape number that last saw the series.
    seen_in: u64,
    /// Exposed with its own timestamps: never marked stale.
    explicit_timestamps: bool,
}

/// Series of one target, keyed by the text of their line.
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    entries: HashMap<Box<str>, Entry>,
    scrape: u64,
}

impl SeriesCache {
    /// Starts a new scrape: series seen from now on count as present.
    pub(super) fn begin_scrape(&mut self) {
        self.scrape += 1;
    }

    /// What the series of this line maps to, if it is known.
    pub(super) fn get(&self, series: &str) -> Option<Cached> {
        self.entries.get(series).map(|entry| entry.cached)
    }

    /// Records that a known series was seen in this scrape.
    pub(super) fn seen(&mut self, series: &str, explicit_timestamps: bool) {
        if let Some(entry) = self.entries.get_mut(series) {
            entry.seen_in = self.scrape;
            entry.explicit_timestamps = explicit_timestamps;
        }
    }

    /// Records a series and what it maps to; true when it was not seen in the previous scrape.
    pub(super) fn insert(
        &mut self,
        series: &str,
        cached: Cached,
        explicit_timestamps: bool,
    ) -> bool {
        let previous = self
            .entries
            .get(series)
            .map(|entry| (entry.added_in, entry.seen_in));
        self.entries.insert(
            series.into(),
            Entry {
                cached,
                added_in: previous.map_or(self.scrape, |(added_in, _)| added_in),
                seen_in: self.scrape,
                explicit_timestamps,
            },
        );
        previous.is_none_or(|(_, seen_in)| seen_in + 1 < self.scrape)
    }

    /// Treats every series as unseen in this scrape (a failed scrape, or a target going away),
    /// and forgets the series this scrape added: their samples were never committed.
    pub(super) fn mark_all_unseen(&mut self) {
        let current = self.scrape;
        self.entries.retain(|_, entry| entry.added_in != current);
        self.scrape += 1;
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
