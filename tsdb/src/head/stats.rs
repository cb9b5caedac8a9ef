//! Cardinality statistics, the data of Prometheus's `/api/v1/status/tsdb`
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#tsdb-stats>): head series and
//! chunk counts, time range, and the top label names, values and pairs by series count.
//!
//! Edge cases decided: `memory_in_bytes_by_label_name` counts the bytes of each distinct value
//! once, as Prometheus does; ties in a top list are broken by name so the output is stable; an
//! empty head has `min_time`/`max_time` of `None`.

use super::postings::Postings;
use super::{State, lock};
use sightline_core::labels::METRIC_NAME;

/// One entry of a top list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatEntry {
    /// A metric name, label name, or `name=value` pair.
    pub name: String,
    /// The count (series, values or bytes).
    pub value: u64,
}

/// Head statistics, in the shape of Prometheus's `headStats` plus top lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Series in the head.
    pub num_series: u64,
    /// Chunks in the head, open chunks included.
    pub chunk_count: u64,
    /// Oldest sample timestamp (ms).
    pub min_time: Option<i64>,
    /// Newest sample timestamp (ms).
    pub max_time: Option<i64>,
    /// Metric names with the most series.
    pub series_count_by_metric_name: Vec<StatEntry>,
    /// Label names with the most distinct values.
    pub label_value_count_by_label_name: Vec<StatEntry>,
    /// Label names whose distinct values take the most bytes.
    pub memory_in_bytes_by_label_name: Vec<StatEntry>,
    /// `name=value` pairs with the most series.
    pub series_count_by_label_value_pair: Vec<StatEntry>,
}

/// The statistics of `state` with `limit` entries per top list; `min_time` is left to
/// `Head::stats`, which keeps it without walking the series' chunk lists.
pub(crate) fn compute(state: &State, limit: usize) -> HeadStats {
    let mut stats = HeadStats {
        num_series: state.live as u64,
        ..HeadStats::default()
    };
    for series in state.series.iter().flatten() {
        let data = lock(&series.data);
        stats.chunk_count += data.chunk_count() as u64;
        if let Some(t) = data.max_time() {
            stats.max_time = Some(stats.max_time.map_or(t, |m| m.max(t)));
        }
    }
    let postings: &Postings = &state.postings;
    stats.series_count_by_metric_name = top(
        postings
            .values(METRIC_NAME)
            .map(|(v, ids)| (v.to_owned(), ids.len() as u64)),
        limit,
    );
    stats.label_value_count_by_label_name = top(
        postings
            .names()
            .map(|n| (n.to_owned(), postings.value_count(n) as u64)),
        limit,
    );
    stats.memory_in_bytes_by_label_name = top(
        postings.names().map(|n| {
            let bytes: usize = postings.values(n).map(|(v, _)| v.len()).sum();
            (n.to_owned(), bytes as u64)
        }),
        limit,
    );
    let mut pairs: Vec<(String, u64)> = Vec::new();
    for name in postings.names() {
        for (value, ids) in postings.values(name) {
            let count = ids.len() as u64;
            // Only build the string for pairs that can still make the list.
            if pairs.len() < limit || pairs.iter().any(|(_, c)| *c < count) {
                pairs.push((format!("{name}={value}"), count));
                if pairs.len() > 4 * limit.max(1) {
                    pairs = top_pairs(pairs, limit);
                }
            }
        }
    }
    stats.series_count_by_label_value_pair = top(pairs.into_iter(), limit);
    stats
}

fn top_pairs(mut entries: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    entries.truncate(limit);
    entries
}

fn top(entries: impl Iterator<Item = (String, u64)>, limit: usize) -> Vec<StatEntry> {
    top_pairs(entries.collect(), limit)
        .into_iter()
        .map(|(name, value)| StatEntry { name, value })
        .collect()
}
