//! [`Querier`] over the head: label matchers through the postings index, then time-range
//! filtering by chunk bounds.
//!
//! Follows Prometheus's `PostingsForMatchers` (`tsdb/querier.go`): matchers that do not match
//! the empty string are intersected first; those that do (`a=""`, `a!="x"`, `a!~"x"`) are
//! subtracted as "series whose value does not match"; with no intersecting matcher the start
//! set is every series. The open chunk is returned as a snapshot copy, so a query never holds
//! a series lock while the caller decodes; completed chunks on disk are read into memory
//! together, after the head's lock is let go.

use std::collections::BTreeSet;

use sightline_core::matcher::Matcher;

use super::postings::{intersect, subtract};
use super::{Head, State, lock};

use crate::Result;
use crate::chunk::disk::load_all;
use crate::storage::{Querier, SeriesChunks};

impl State {
    /// Ids of the series matching every matcher, ascending (no time filtering).
    pub(crate) fn select_ids(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut positive: Option<Vec<u32>> = None;
        let mut negatives = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                negatives.push(self.postings.not_matching(m));
            } else {
                let ids = self.postings.matching(m);
                match &mut positive {
                    None => positive = Some(ids),
                    Some(acc) => intersect(acc, &ids),
                }
            }
            if positive.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut ids = positive.unwrap_or_else(|| self.all_ids());
        for negative in &negatives {
            subtract(&mut ids, negative);
        }
        ids
    }

    /// `select_ids` keeping only series with a sample in `[mint, maxt]`.
    fn select_ids_in(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<u32> {
        let mut ids = self.select_ids(matchers);
        ids.retain(|&id| {
            self.get(id)
                .is_some_and(|s| lock(&s.data).overlaps(mint, maxt))
        });
        ids
    }
}

impl State {
    /// Whether any of `ids` has a sample in `[mint, maxt]`.
    fn any_in(&self, ids: &[u32], mint: i64, maxt: i64) -> bool {
        ids.iter().any(|&id| {
            self.get(id)
                .is_some_and(|s| lock(&s.data).overlaps(mint, maxt))
        })
    }
}

impl Querier for Head {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>> {
        let state = self.read();
        let mut files = self.chunk_registry.reader();
        let ids = state.select_ids(matchers);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(series) = state.get(id) else {
                continue;
            };
            let chunks = lock(&series.data).chunks_in(mint, maxt, &mut files);
            if !chunks.is_empty() {
                out.push(SeriesChunks {
                    labels: state.labels_of(series),
                    chunks,
                });
            }
        }
        drop(state);
        load_all(
            out.iter_mut()
                .flat_map(|s| s.chunks.iter_mut().map(|c| &mut c.chunk)),
        )?;
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        let state = self.read();
        if matchers.is_empty() {
            // Usually the first series of the first value answers for the whole name.
            return Ok(state
                .postings
                .names()
                .filter(|name| {
                    state
                        .postings
                        .values(name)
                        .any(|(_, ids)| state.any_in(ids, mint, maxt))
                })
                .map(str::to_owned)
                .collect());
        }
        let mut names = BTreeSet::new();
        for id in state.select_ids_in(matchers, mint, maxt) {
            if let Some(series) = state.get(id) {
                names.extend(series.labels.iter().map(|&(n, _)| n));
            }
        }
        let mut out: Vec<String> = names
            .into_iter()
            .map(|n| state.symbols.get(n).to_owned())
            .collect();
        out.sort();
        Ok(out)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let state = self.read();
        if matchers.is_empty() {
            return Ok(state
                .postings
                .values(name)
                .filter(|(_, ids)| state.any_in(ids, mint, maxt))
                .map(|(v, _)| v.to_owned())
                .collect());
        }
        let mut values = BTreeSet::new();
        for id in state.select_ids_in(matchers, mint, maxt) {
            if let Some(series) = state.get(id)
                && let Ok(at) = series
                    .labels
                    .binary_search_by(|&(n, _)| state.symbols.get(n).cmp(name))
            {
                values.insert(series.labels[at].1);
            }
        }
        let mut out: Vec<String> = values
            .into_iter()
            .map(|v| state.symbols.get(v).to_owned())
            .collect();
        out.sort();
        Ok(out)
    }
}
