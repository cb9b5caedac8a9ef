//! The scrape loop's series cache: raw series text → storage reference, plus which series
//! the current and the previous scrape saw, for staleness markers.
//!
//! Decisions:
//! - A line is keyed by a 128-bit hash of its text (two seeded 64-bit foldhash hashes), not by
//!   the text itself. The text is most of what the cache would hold (about 130 bytes a series
//!   on typical targets, plus the allocation); the hash is 16 bytes. Two lines of one target
//!   colliding — odds about n²/2¹²⁹, 10⁻²⁹ for 100k series — would file one line's samples
//!   under the other's series of the same target, nothing worse.
//! - Entries are kept in the order of the previous scrape, and a line is first compared with
//!   the entry at the position after the last one found: targets expose their series in the
//!   same order every time, so the steady state walks the entries sequentially instead of
//!   probing a hash table with a cache miss per sample. The hash table (key → position) is
//!   consulted only when that guess fails; the order is rebuilt at the end of a scrape whose
//!   lines came in another order, or added or lost series.
//! - The table holds positions only (4 bytes a slot) and hashes by the key's first half, which
//!   is already a seeded hash: a `HashMap` from key to position held 24-byte slots, about 40
//!   bytes a series with the table's spare room, for the lookups that miss the guess. An
//!   entry is 32 bytes: key, reference (or [`DROPPED`]), scrape number, flag and the text's
//!   length (was 40).
//! - The expected entry's text length lets the parser skip the label set of a line that
//!   begins with that entry's text ([`SeriesCache::expected_len`], used with
//!   `Parser::next_entry_known`): the text was parsed and validated when the entry was made.
//!   Only while the target answers in the format of the scrape before: a text valid in one
//!   format need not be in the other. Texts longer than 64 KiB keep no length.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use sightline_tsdb::storage::SeriesRef;

use crate::exposition::Format;

/// What a raw series line maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cached {
    /// Stored under this reference.
    Stored(SeriesRef),
    /// Dropped by `metric_relabel_configs`.
    Dropped,
}

/// A line's key: the two seeded hashes of its text.
pub(super) type Key = [u64; 2];

/// [`Entry::series`] of a line dropped by relabeling: no storage reference is `u64::MAX`
/// (the head hands out 32-bit ids).
const DROPPED: SeriesRef = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    /// The storage reference, or [`DROPPED`]: [`Cached`] packed into 8 bytes instead of 16.
    series: SeriesRef,
    /// The scrape number that last saw the series.
    seen_in: u32,
    /// Exposed with its own timestamps: never marked stale.
    explicit_timestamps: bool,
    /// The length of the series text, or 0 when it does not fit.
    text_len: u16,
}

// The length fits in the padding: an entry stays 32 bytes.
const _: () = assert!(std::mem::size_of::<Entry>() == 32);

impl Entry {
    fn cached(&self) -> Cached {
        match self.series {
            DROPPED => Cached::Dropped,
            series => Cached::Stored(series),
        }
    }
}

impl Cached {
    fn packed(self) -> SeriesRef {
        match self {
            Cached::Stored(series) => series,
            Cached::Dropped => DROPPED,
        }
    }
}

/// The hash a key is filed under in the positions table: its first half, a seeded hash.
fn table_hash(key: &Key) -> u64 {
    key[0]
}

/// The table hash of the entry at `position`, for the table's rehashing as it grows.
fn hash_at(entries: &[Entry], position: u32) -> u64 {
    entries
        .get(position as usize)
        .map_or(0, |entry| table_hash(&entry.key))
}

/// Series of one target, keyed by the hash of the text of their line.
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    /// In the order the previous scrape saw them, then the series this scrape added.
    entries: Vec<Entry>,
    /// Positions in `entries`, found by their entry's key.
    positions: HashTable<u32>,
    /// The two seeded hashes that make a line's key.
    keys: (
        foldhash::quality::RandomState,
        foldhash::quality::RandomState,
    ),
    /// Scrape number; `u32` wraps after 136 years of 1 s scrapes.
    scrape: u32,
    /// Where the next line is expected in `entries`.
    cursor: usize,
    /// Length of `entries` when the scrape began: entries from here on are new.
    len_at_begin: usize,
    /// The positions this scrape visited, in order, once it strayed from `entries`' order
    /// (before that, they are `0..cursor`); `None` while it follows that order.
    strayed: Option<Vec<u32>>,
    /// The format of the scrape before this one (or this one, once begun).
    format: Option<Format>,
    /// Whether this scrape's format is the one the entries' texts were parsed in.
    same_format: bool,
}

impl SeriesCache {
    /// Starts a new scrape of a body in `format`: series seen from now on count as present.
    pub(super) fn begin_scrape(&mut self, format: Format) {
        self.same_format = self.format == Some(format);
        self.format = Some(format);
        self.scrape = self.scrape.wrapping_add(1);
        self.cursor = 0;
        self.len_at_begin = self.entries.len();
        self.strayed = None;
    }

    /// The key of a series text.
    pub(super) fn key(&self, series: &str) -> Key {
        [self.keys.0.hash_one(series), self.keys.1.hash_one(series)]
    }

    /// The text length of the series expected next (the one after the last found), when a
    /// line beginning with it may skip its label set.
    pub(super) fn expected_len(&self) -> Option<usize> {
        let entry = self.entries.get(self.cursor).filter(|_| self.same_format)?;
        (entry.text_len > 0).then_some(usize::from(entry.text_len))
    }

    /// Whether `key` is the series expected next.
    pub(super) fn is_expected(&self, key: &Key) -> bool {
        self.entries
            .get(self.cursor)
            .is_some_and(|entry| entry.key == *key)
    }

    /// Records that this scrape saw the entry at `position`.
    fn visit(&mut self, position: usize) {
        if self.strayed.is_none() && position != self.cursor {
            // Until now the visits were exactly 0..cursor.
            self.strayed = Some((0..self.cursor as u32).collect());
        }
        if let Some(visits) = &mut self.strayed {
            visits.push(position as u32);
        }
        self.cursor = position + 1;
    }

    /// The position of `key`: the expected one when it matches, else the table's answer.
    fn position(&self, key: &Key) -> Option<usize> {
        if self.is_expected(key) {
            return Some(self.cursor);
        }
        self.positions
            .find(table_hash(key), |&p| {
                self.entries.get(p as usize).is_some_and(|e| e.key == *key)
            })
            .map(|&p| p as usize)
    }

    /// What the series of this line maps to, if it is known; a known series counts as seen
    /// in this scrape.
    pub(super) fn lookup(&mut self, series: &str, explicit_timestamps: bool) -> Option<Cached> {
        self.lookup_key(self.key(series), explicit_timestamps)
    }

    /// [`lookup`](Self::lookup) by a key already computed.
    pub(super) fn lookup_key(&mut self, key: Key, explicit_timestamps: bool) -> Option<Cached> {
        let position = self.position(&key)?;
        self.visit(position);
        let entry = self.entries.get_mut(position)?;
        entry.seen_in = self.scrape;
        entry.explicit_timestamps = explicit_timestamps;
        Some(entry.cached())
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
        let entry = Entry {
            key,
            series: cached.packed(),
            seen_in: self.scrape,
            explicit_timestamps,
            text_len: u16::try_from(series.len()).unwrap_or(0),
        };
        if let Some(position) = self.position(&key) {
            if let Some(existing) = self.entries.get_mut(position) {
                *existing = entry;
            }
            // Usually the line `lookup` just visited, whose stored ref the head had dropped.
            if position + 1 != self.cursor {
                self.visit(position);
            }
            return false;
        }
        let position = self.entries.len();
        self.entries.push(entry);
        let entries = &self.entries;
        self.positions
            .insert_unique(table_hash(&key), position as u32, |&p| hash_at(entries, p));
        self.visit(position);
        true
    }

    /// Treats every series as unseen in this scrape (a failed scrape, or a target going away),
    /// and forgets the series this scrape added: their samples were never committed.
    pub(super) fn mark_all_unseen(&mut self) {
        let first_new = self.len_at_begin;
        for (position, entry) in self.entries.drain(first_new..).enumerate() {
            let position = (first_new + position) as u32;
            if let Ok(slot) = self
                .positions
                .find_entry(table_hash(&entry.key), |&p| p == position)
            {
                slot.remove();
            }
        }
        self.scrape = self.scrape.wrapping_add(1);
        self.strayed = Some(Vec::new());
    }

    /// Ends the scrape: forgets series it did not see and returns those that need a staleness
    /// marker.
    pub(super) fn end_scrape(&mut self) -> Vec<SeriesRef> {
        let visits = match self.strayed.take() {
            // Every entry seen, in order: nothing to forget or reorder.
            None if self.cursor == self.entries.len() => {
                self.len_at_begin = self.entries.len();
                // A first scrape grew the vector by doubling: give the unused half back.
                if self.entries.capacity() > self.entries.len() + self.entries.len() / 8 {
                    self.entries.shrink_to_fit();
                }
                return Vec::new();
            }
            None => (0..self.cursor as u32).collect(),
            Some(visits) => visits,
        };
        let current = self.scrape;
        let mut stale = Vec::new();
        for entry in &self.entries {
            if entry.seen_in != current
                && let (Cached::Stored(series), false) = (entry.cached(), entry.explicit_timestamps)
            {
                stale.push(series);
            }
        }
        // The next scrape most likely repeats this one's order. A line seen twice keeps its
        // first place.
        let mut placed = vec![false; self.entries.len()];
        let mut order = Vec::with_capacity(visits.len());
        for position in visits {
            let position = position as usize;
            if let (Some(entry), Some(done)) =
                (self.entries.get(position), placed.get_mut(position))
                && !*done
            {
                *done = true;
                order.push(*entry);
            }
        }
        self.positions.clear();
        self.positions
            .shrink_to(order.len(), |&p| hash_at(&order, p));
        for (position, entry) in order.iter().enumerate() {
            self.positions
                .insert_unique(table_hash(&entry.key), position as u32, |&p| {
                    hash_at(&order, p)
                });
        }
        self.entries = order;
        self.cursor = 0;
        self.len_at_begin = self.entries.len();
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one scrape of `lines` (each stored under the ref of its number) and returns the
    /// refs marked stale and how many lines were new.
    fn scrape(cache: &mut SeriesCache, lines: &[u32], refs: &[SeriesRef]) -> (Vec<u64>, usize) {
        cache.begin_scrape(Format::PrometheusText);
        let mut added = 0;
        for &line in lines {
            let text = format!("m{{n=\"{line}\"}}");
            match cache.lookup(&text, false) {
                Some(Cached::Stored(series)) => assert_eq!(series, refs[line as usize]),
                Some(Cached::Dropped) => panic!("line {line} was never dropped"),
                None => {
                    assert!(cache.insert(&text, Cached::Stored(refs[line as usize]), false));
                    added += 1;
                }
            }
        }
        let mut stale = cache.end_scrape();
        stale.sort_unstable();
        (stale, added)
    }

    /// Storage refs unlike the line numbers, to tell them apart.
    fn refs() -> Vec<SeriesRef> {
        (100..108).collect()
    }

    #[test]
    fn same_order_new_order_added_and_vanished_lines() {
        let refs = refs();
        let r = |n: usize| refs[n];
        let mut cache = SeriesCache::default();
        assert_eq!(scrape(&mut cache, &[0, 1, 2, 3, 4], &refs), (vec![], 5));
        assert!(
            cache.entries.capacity() < 8,
            "the doubling's spare room is given back"
        );
        assert_eq!(scrape(&mut cache, &[0, 1, 2, 3], &refs), (vec![r(4)], 0));
        assert_eq!(scrape(&mut cache, &[0, 1, 2, 3], &refs), (vec![], 0));
        // Reordered, one new line in the middle, one line gone.
        assert_eq!(scrape(&mut cache, &[3, 4, 0, 1], &refs), (vec![r(2)], 1));
        assert_eq!(cache.entries.len(), 4);
        assert_eq!(scrape(&mut cache, &[3, 4, 0, 1], &refs), (vec![], 0));
        // The gone line comes back as new; a line seen twice counts once.
        assert_eq!(scrape(&mut cache, &[3, 2, 2, 4, 0, 1], &refs), (vec![], 1));
        assert_eq!(cache.entries.len(), 5);
        // Trailing lines gone.
        assert_eq!(
            scrape(&mut cache, &[3, 2], &refs),
            (vec![r(0), r(1), r(4)], 0)
        );
        assert_eq!(scrape(&mut cache, &[3, 2], &refs), (vec![], 0));
    }

    #[test]
    fn a_failed_scrape_forgets_its_new_series_and_marks_the_rest_stale() {
        let refs = refs();
        let mut cache = SeriesCache::default();
        scrape(&mut cache, &[0, 1], &refs);
        cache.begin_scrape(Format::PrometheusText);
        assert!(cache.lookup("m{n=\"0\"}", false).is_some());
        assert!(cache.insert("m{n=\"5\"}", Cached::Stored(refs[5]), false));
        cache.mark_all_unseen();
        let mut stale = cache.end_scrape();
        stale.sort_unstable();
        assert_eq!(stale, [refs[0], refs[1]]);
        assert!(cache.entries.is_empty() && cache.positions.is_empty());
        assert_eq!(scrape(&mut cache, &[0, 5], &refs), (vec![], 2));
    }
}
