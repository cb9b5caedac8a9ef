//! The read API the LogQL engine builds on: streams by matchers over a time range, and a
//! stream's entries in either direction, skipping chunks outside the range by their keys and,
//! given required literals, chunks the [line index](super::line_index) rules out.
//!
//! Time ranges are `[start_ns, end_ns)`. Heads are read too, so what a push acknowledged is
//! visible at once.

use std::collections::{BTreeSet, HashSet};

use rocksdb::{Direction as ScanDirection, IteratorMode};
use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};

use super::{LogStore, codec, corrupt, keys, rocks};
use crate::error::Error;
use crate::push::Entry;

/// The order entries are returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// A stream that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    /// The stream's id in this store.
    pub id: u64,
    /// Its labels.
    pub labels: Labels,
}

/// A stream's entries in a range, and how many chunks were read and skipped to find them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPage {
    /// The entries, in the requested direction, at most the requested limit.
    pub entries: Vec<Entry>,
    /// Chunks decoded.
    pub chunks_read: usize,
    /// Chunks skipped because their time range is outside the requested one or (with
    /// [`LogStore::entries_containing`]) the line index rules them out.
    pub chunks_skipped: usize,
}

fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
}

/// The days that overlap `[start_ns, end_ns)`.
fn days(start_ns: i64, end_ns: i64) -> std::ops::RangeInclusive<i32> {
    keys::day_of(start_ns)..=keys::day_of(end_ns.saturating_sub(1))
}

impl LogStore {
    /// The streams matching all `matchers` that have entries stored in a day overlapping
    /// `[start_ns, end_ns)` (days are the granularity: a stream may have no entry in the
    /// exact range). Sorted by labels.
    pub fn streams(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamRef>, Error> {
        if start_ns >= end_ns {
            return Ok(Vec::new());
        }
        let range = days(start_ns, end_ns);
        let mut ids = BTreeSet::new();
        {
            let state = self.lock();
            ids.extend(
                state
                    .heads
                    .keys()
                    .filter(|(_, day)| range.contains(day))
                    .map(|(id, _)| *id),
            );
        }
        let equalities: Vec<&Matcher> = matchers
            .iter()
            .filter(|m| m.op() == MatchOp::Equal && !m.value().is_empty())
            .collect();
        for name in self.day_names() {
            let Some(day) = keys::parse_day_cf(&name) else {
                continue;
            };
            if !range.contains(&day) {
                continue;
            }
            let mut candidates: Option<BTreeSet<u64>> = None;
            for matcher in &equalities {
                let found = self.scan_ids(
                    &name,
                    &keys::posting_prefix(matcher.name(), matcher.value()),
                )?;
                candidates = Some(match candidates {
                    None => found,
                    Some(previous) => previous.intersection(&found).copied().collect(),
                });
            }
            match candidates {
                Some(found) => ids.extend(found),
                None => ids.extend(self.scan_ids(&name, b"s")?),
            }
        }
        let state = self.lock();
        let mut streams: Vec<StreamRef> = ids
            .into_iter()
            .filter_map(|id| {
                let labels = state.index.labels.get(&id)?;
                matches_all(matchers, labels).then(|| StreamRef {
                    id,
                    labels: labels.clone(),
                })
            })
            .collect();
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    /// The ids at the end of every key with `prefix` in a day column family.
    fn scan_ids(&self, name: &str, prefix: &[u8]) -> Result<BTreeSet<u64>, Error> {
        let mut ids = BTreeSet::new();
        let Some(cf) = self.db.cf_handle(name) else {
            return Ok(ids);
        };
        for item in self.db.prefix_iterator_cf(&cf, prefix) {
            let (key, _) = item.map_err(rocks(format!("reading postings of {name}")))?;
            if !key.starts_with(prefix) {
                break;
            }
            ids.insert(keys::trailing_id(&key).ok_or_else(|| corrupt("posting key", name))?);
        }
        Ok(ids)
    }

    /// A stream's entries in `[start_ns, end_ns)`, oldest or newest first, at most `limit`
    /// (0 = all). Entries with the same timestamp keep their push order (reversed when
    /// backward).
    pub fn entries(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<EntryPage, Error> {
        self.entries_containing(stream, start_ns, end_ns, direction, limit, &[])
    }

    /// Like [`LogStore::entries`], but skips the chunks that cannot hold a line containing
    /// every one of `literals` (ASCII case-insensitively), as the line index knows them.
    ///
    /// For the LogQL engine: pass the literals every returned line must contain, e.g. the
    /// `"needle"` of `|= "needle"`, or a literal every match of a `|~` regex contains (for
    /// `(?i)` regexes too); never literals of `!=`, `!~` or of one branch of an alternation.
    /// The page is not filtered line by line: the engine still applies its filters to the
    /// entries, which come from the chunks that may match (and from every chunk the index
    /// has not committed yet, and the heads). Literals shorter than three bytes skip nothing.
    pub fn entries_containing(
        &self,
        stream: u64,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        literals: &[&str],
    ) -> Result<EntryPage, Error> {
        let mut page = EntryPage::default();
        if start_ns >= end_ns {
            return Ok(page);
        }
        let range = days(start_ns, end_ns);
        let prefix = keys::chunk_prefix(stream);
        for name in self.day_names() {
            let Some(day) = keys::parse_day_cf(&name) else {
                continue;
            };
            if !range.contains(&day) {
                continue;
            }
            let Some(cf) = self.db.cf_handle(&name) else {
                continue;
            };
            let ruled_out = if literals.is_empty() {
                HashSet::new()
            } else {
                self.lines.chunks_without(day, stream, literals)?
            };
            let iter = self
                .db
                .iterator_cf(&cf, IteratorMode::From(&prefix, ScanDirection::Forward));
            for item in iter {
                let (key, value) = item.map_err(rocks(format!("reading chunks of {name}")))?;
                if !key.starts_with(&prefix) {
                    break;
                }
                let (min_ts, max_ts) =
                    keys::chunk_range(&key).ok_or_else(|| corrupt("chunk key", name.clone()))?;
                if min_ts >= end_ns {
                    // Chunks are sorted by first timestamp: none after this one overlaps.
                    page.chunks_skipped += 1;
                    break;
                }
                if max_ts < start_ns || ruled_out.contains(&key[..]) {
                    page.chunks_skipped += 1;
                    continue;
                }
                codec::decode_chunk(&value, start_ns, end_ns, &mut page.entries).map_err(|e| {
                    corrupt(e.what, format!("a chunk of stream {stream} in {name}"))
                })?;
                page.chunks_read += 1;
            }
        }
        {
            let state = self.lock();
            let heads = state
                .heads
                .iter()
                .filter(|((id, day), _)| *id == stream && range.contains(day));
            for (_, head) in heads {
                for (ts, offset, len) in &head.entries {
                    if *ts >= start_ns && *ts < end_ns {
                        let body = &head.data[*offset as usize..(*offset + *len) as usize];
                        page.entries
                            .push(codec::decode_entry(body, *ts).map_err(|e| {
                                corrupt(e.what, format!("the head of stream {stream}"))
                            })?);
                    }
                }
            }
        }
        // Chunks of one stream may overlap (out-of-order pushes): merge by time.
        page.entries.sort_by_key(|entry| entry.timestamp_ns);
        // (stable: chunks are read oldest first and each is in push order within a timestamp)
        if direction == Direction::Backward {
            page.entries.reverse();
        }
        if limit > 0 {
            page.entries.truncate(limit);
        }
        Ok(page)
    }
}
