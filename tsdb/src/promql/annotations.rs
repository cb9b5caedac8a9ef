//! Warning and info annotations: notes about a query's result that are not errors, in the
//! words of Prometheus 3 (`util/annotations/annotations.go`), returned next to the result
//! (`warnings` / `infos` in the HTTP API).
//!
//! Produced for float data where Prometheus produces them: `rate`/`increase` over a metric
//! whose name does not end in `_total`, `_sum`, `_count` or `_bucket`; a quantile outside
//! `[0, 1]` (`histogram_quantile`, `histogram_quantiles`, `quantile`, `quantile_over_time`);
//! a bucket whose `le` label is missing or malformed; buckets `histogram_quantile` had to
//! force monotonic; a `limit_ratio` outside `[-1, 1]`; `sort*` inside a range query.
//!
//! Decided here: annotations are deduplicated by their text without position (as upstream's
//! map is keyed) and kept in the order first seen (upstream's order is a map's, i.e. random).
//! The `(line:column)` suffix is found by searching the annotated expression's canonical text
//! in the query with whitespace ignored, because the parser keeps no source positions; an
//! expression written differently from its canonical form (e.g. `sum(x) by (a)`, single
//! quotes) gets no position suffix.

use std::collections::HashSet;

use super::value::format_value;

/// Whether an annotation is a warning or an info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Warning,
    Info,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    message: String,
    /// The annotated expression's canonical text, located in the query at the end.
    node: String,
}

/// The annotations of one query, collected while it is evaluated.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    entries: Vec<Entry>,
    seen: HashSet<String>,
}

impl Annotations {
    /// Adds a warning about `node`, unless the same text is already there.
    pub fn warn(&mut self, message: String, node: &dyn std::fmt::Display) {
        self.add(Kind::Warning, message, node);
    }

    /// Adds an info about `node`, unless the same text is already there.
    pub fn info(&mut self, message: String, node: &dyn std::fmt::Display) {
        self.add(Kind::Info, message, node);
    }

    fn add(&mut self, kind: Kind, message: String, node: &dyn std::fmt::Display) {
        if self.seen.contains(&message) {
            return;
        }
        self.seen.insert(message.clone());
        self.entries.push(Entry {
            kind,
            message,
            node: node.to_string(),
        });
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The warnings and the infos as Prometheus prints them, with the position of the
    /// annotated expression in `query` where it can be found.
    pub fn into_strings(self, query: &str) -> (Vec<String>, Vec<String>) {
        let (mut warnings, mut infos) = (Vec::new(), Vec::new());
        for entry in self.entries {
            let text = match position(query, &entry.node) {
                Some((line, column)) => format!("{} ({line}:{column})", entry.message),
                None => entry.message,
            };
            match entry.kind {
                Kind::Warning => warnings.push(text),
                Kind::Info => infos.push(text),
            }
        }
        (warnings, infos)
    }
}

/// The 1-based line and byte column where `node` starts in `query`, whitespace ignored.
fn position(query: &str, node: &str) -> Option<(usize, usize)> {
    let (stripped, offsets): (Vec<u8>, Vec<usize>) = query
        .bytes()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .map(|(i, b)| (b, i))
        .unzip();
    let needle: Vec<u8> = node.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if needle.is_empty() {
        return None;
    }
    let at = stripped
        .windows(needle.len())
        .position(|window| window == needle.as_slice())?;
    let start = offsets[at];
    let before = &query.as_bytes()[..start];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Some((line, start - line_start + 1))
}

/// `rate`/`increase` over a metric whose name says it may not be a counter.
pub(crate) fn possible_non_counter(metric_name: &str) -> Option<String> {
    let counter_like = ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|suffix| metric_name.ends_with(suffix));
    (!metric_name.is_empty() && !counter_like).then(|| {
        format!(
            "PromQL info: metric might not be a counter, name does not end in \
             _total/_sum/_count/_bucket: {metric_name:?}"
        )
    })
}

/// A quantile parameter outside `[0, 1]` or NaN.
pub(crate) fn invalid_quantile(q: f64) -> Option<String> {
    (q.is_nan() || !(0.0..=1.0).contains(&q)).then(|| {
        format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            format_value(q)
        )
    })
}

/// A `limit_ratio` parameter outside `[-1, 1]`, capped to `to`.
pub(crate) fn invalid_ratio(ratio: f64, to: f64) -> String {
    format!(
        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
        format_value(ratio),
        format_value(to)
    )
}

/// A classic histogram bucket without a parseable `le` label.
pub(crate) fn bad_bucket_label(metric_name: &str, le: &str) -> String {
    format!(
        "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} \
         for metric name {metric_name:?}"
    )
}

/// Bucket counts `histogram_quantile` had to make monotonic.
pub(crate) fn forced_monotonicity(metric_name: &str) -> String {
    format!(
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see \
         https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
         for metric name {metric_name:?}"
    )
}

/// `sort*` in a range query, whose result is ordered by labels anyway.
pub(crate) fn sort_in_range_query() -> String {
    "PromQL warning: sort is ineffective for range queries since results are always ordered \
     by labels"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_ignore_whitespace_and_count_lines() {
        assert_eq!(position("rate(x[5m])", "x[5m]"), Some((1, 6)));
        assert_eq!(
            position("sum by (le) (\n  rate(x_bucket[5m]))", "rate(x_bucket[5m])"),
            Some((2, 3))
        );
        assert_eq!(position("sum(x) by (a)", "sum by (a) (x)"), None);
    }

    #[test]
    fn texts_follow_prometheus() {
        assert_eq!(possible_non_counter("http_requests_total"), None);
        assert_eq!(possible_non_counter(""), None);
        assert_eq!(
            possible_non_counter("x").as_deref(),
            Some(
                "PromQL info: metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: \"x\""
            )
        );
        assert_eq!(invalid_quantile(0.5), None);
        assert_eq!(
            invalid_quantile(f64::NAN).as_deref(),
            Some("PromQL warning: quantile value should be between 0 and 1, got NaN")
        );
        assert_eq!(
            invalid_quantile(1.01).as_deref(),
            Some("PromQL warning: quantile value should be between 0 and 1, got 1.01")
        );
    }
}
