//! The LogQL evaluator: log queries (streams of entries) and metric queries (instant and
//! range), read through a [`StreamReader`] one piece (chunk or head) at a time, so that no
//! query holds more than a piece per thread and what it keeps.
//!
//! Semantics, from Loki's documentation:
//! - Log queries read `[start, end)`, newest first unless `direction=forward`, and return at
//!   most `limit` entries over all streams, grouped by their labels after the pipeline.
//! - A range aggregation at step time `t` covers the entries in `(t - range - offset,
//!   t - offset]`. Steps run from `start` to `end` inclusive.
//! - Additive functions (`count_over_time`, `rate`, `bytes_*`, `sum_over_time`,
//!   `avg_over_time`, unwrapped `rate`, `absent_over_time`) keep only sums between the step
//!   boundaries, so their memory does not grow with the number of lines; the others keep
//!   the samples of each series.
//! - A sample whose labels carry `__error__` fails the query (add `| __error__=""`).
//! - Limits: entries per log query, series per metric query, samples held, bytes of lines
//!   read, and a deadline, each with an error naming it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sightline_core::config::{LogLimitsConfig, QueryConfig};
use sightline_core::matcher::MatchOp;

use super::ast::{BinOp, Grouping, LogExpr, MetricExpr, RangeOp, Unwrap, VectorMatching, VectorOp};
use super::error::Error;
use super::pipeline::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, LabelSet, Pipeline, group_labels, unwrap_value,
};
use super::source::StreamReader;
use crate::store::{ChunkEntries, ChunkRef, Direction, StreamRef};

/// Limits every query runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most entries a log query may return (Loki's `max_entries_limit_per_query`); 5000.
    pub max_entries: usize,
    /// Most series a metric query may produce (`max_query_series`); 500.
    pub max_series: usize,
    /// Most samples held at once by sample-keeping range functions.
    pub max_samples: usize,
    /// Most bytes of log lines one query may read; 0 = no limit.
    pub max_bytes_read: u64,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Most heap bytes a query may hold, as estimated from what it keeps (series, samples,
    /// lines) and the pieces its threads are reading; 256 MiB.
    pub max_memory: usize,
}

impl QueryLimits {
    /// The limits the configuration sets: `limits.logs` (Loki's names; 0 turns a count off)
    /// and the `query` section's samples, timeout and LogQL memory.
    pub fn from_config(logs: &LogLimitsConfig, query: &QueryConfig) -> QueryLimits {
        let count = |limit: usize| if limit == 0 { usize::MAX } else { limit };
        QueryLimits {
            max_entries: count(logs.max_entries_limit_per_query),
            max_series: count(logs.max_query_series),
            max_samples: query.max_samples,
            max_bytes_read: logs.max_query_bytes_read.bytes(),
            timeout: Duration::from_millis(query.timeout.as_millis()),
            max_memory: usize::try_from(query.max_log_query_memory.bytes()).unwrap_or(usize::MAX),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_entries: 5000,
            max_series: 500,
            max_samples: 50_000_000,
            max_bytes_read: 0,
            timeout: Duration::from_secs(120),
            max_memory: 256 << 20,
        }
    }
}

/// How much a query read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Entries read from storage.
    pub entries_read: u64,
    /// Bytes of lines read.
    pub bytes_read: u64,
    /// Chunks decoded.
    pub chunks_read: u64,
    /// Chunks skipped by their time range (or a line index).
    pub chunks_skipped: u64,
    /// Streams selected.
    pub streams: u64,
}

impl QueryStats {
    /// Adds what another part of the query read.
    fn add(&mut self, other: &QueryStats) {
        self.entries_read += other.entries_read;
        self.bytes_read += other.bytes_read;
        self.chunks_read += other.chunks_read;
        self.chunks_skipped += other.chunks_skipped;
        self.streams += other.streams;
    }
}

/// One stream of a log query's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamResult {
    /// Labels after the pipeline.
    pub labels: LabelSet,
    /// `(timestamp ns, line)` in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// One series of a metric query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    /// Its labels.
    pub labels: LabelSet,
    /// `(timestamp ns, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// What a metric query evaluated to.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricResult {
    /// A number per step (`1 + 1`).
    Scalar(Vec<(i64, f64)>),
    /// Series; for instant queries each has one point, in the order `sort`/`sort_desc` gave.
    Series(Vec<SeriesResult>),
}

/// Evaluates LogQL over a reader.
pub struct Evaluator<'a, R: StreamReader + ?Sized> {
    reader: &'a R,
    limits: QueryLimits,
    deadline: Instant,
    stats: QueryStats,
}

/// Values of series at each step (`None`: no value at that step).
type Matrix = BTreeMap<LabelSet, Vec<Option<f64>>>;

/// An intermediate value.
enum Value {
    Scalar(f64),
    Vector {
        series: Matrix,
        /// Set by `sort` (false) / `sort_desc` (true): instant results come out in value order.
        sort_desc: Option<bool>,
    },
}

fn labels_text(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

impl<'a, R: StreamReader + ?Sized> Evaluator<'a, R> {
    /// An evaluator over `reader` with `limits`; the deadline starts now.
    pub fn new(reader: &'a R, limits: QueryLimits) -> Self {
        let deadline = Instant::now() + limits.timeout;
        Evaluator {
            reader,
            limits,
            deadline,
            stats: QueryStats::default(),
        }
    }

    /// What the queries so far read.
    pub fn stats(&self) -> QueryStats {
        self.stats
    }

    fn check_deadline(&self) -> Result<(), Error> {
        check_deadline(&self.limits, self.deadline)
    }

    /// Counts a piece read on this thread against the limits.
    fn account(&mut self, entries: &ChunkEntries<'_>, stored: bool) -> Result<(), Error> {
        tally(&mut self.stats, entries, stored);
        check_bytes(&self.limits, self.stats.bytes_read)?;
        self.check_deadline()
    }

    /// Every selected stream's pieces in `[start_ns, end_ns)`, with the stream's index and
    /// the piece's place in its stream's listing (chunks oldest first, then the head).
    fn pieces(
        &mut self,
        streams: &[StreamRef],
        stream_labels: &[&LabelSet],
        pipeline: &Pipeline,
        (start_ns, end_ns): (i64, i64),
    ) -> Result<Vec<Piece>, Error> {
        let mut pieces = Vec::new();
        for (stream, (found, labels)) in streams.iter().zip(stream_labels).enumerate() {
            let hints = pipeline.line_hints(labels);
            let list = self.reader.chunks(found.id, start_ns, end_ns, &hints)?;
            self.stats.chunks_skipped += list.skipped as u64;
            pieces.extend(
                list.chunks
                    .into_iter()
                    .enumerate()
                    .map(|(seq, chunk)| Piece {
                        stream,
                        seq: seq as u64,
                        chunk,
                    }),
            );
            self.check_deadline()?;
        }
        Ok(pieces)
    }

    /// A log query over `[start_ns, end_ns)`: at most `limit` entries (0 = the maximum).
    pub fn logs(
        &mut self,
        expr: &LogExpr,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<StreamResult>, Error> {
        if limit > self.limits.max_entries {
            return Err(Error::EntriesLimit {
                requested: limit,
                max: self.limits.max_entries,
            });
        }
        let limit = if limit == 0 {
            self.limits.max_entries
        } else {
            limit
        };
        let pipeline = Pipeline::new(&expr.stages);
        let streams = self.reader.select(&expr.matchers, start_ns, end_ns)?;
        self.stats.streams += streams.len() as u64;
        let stream_labels: Vec<LabelSet> = streams.iter().map(|s| label_set(&s.labels)).collect();
        // Pieces in the direction's order of their nearest entry: once `limit` entries are
        // kept, a piece whose nearest entry comes after the last kept one cannot contribute,
        // nor can any after it.
        let labels: Vec<&LabelSet> = stream_labels.iter().collect();
        let mut pieces = self.pieces(&streams, &labels, &pipeline, (start_ns, end_ns))?;
        match direction {
            Direction::Forward => pieces.sort_by_key(|p| p.chunk.min_ts),
            Direction::Backward => pieces.sort_by_key(|p| std::cmp::Reverse(p.chunk.max_ts)),
        }
        let beyond = |kept: &BinaryHeap<Found>, ts: i64| {
            kept.len() >= limit
                && kept.peek().is_some_and(|last| match direction {
                    Direction::Forward => ts > last.timestamp_ns,
                    Direction::Backward => ts < last.timestamp_ns,
                })
        };
        let mut kept: BinaryHeap<Found> = BinaryHeap::new();
        let mut result_labels: BTreeMap<LabelSet, usize> = BTreeMap::new();
        // Bytes held by what is kept: the lines and the result streams' labels.
        let mut held = 0usize;
        for piece in pieces {
            let nearest = match direction {
                Direction::Forward => piece.chunk.min_ts,
                Direction::Backward => piece.chunk.max_ts,
            };
            if beyond(&kept, nearest) {
                break;
            }
            let stored = piece.chunk.is_stored();
            let entries = self.reader.read_chunk(piece.chunk, true)?;
            self.account(&entries, stored)?;
            check_memory(&self.limits, held + entries.held_bytes())?;
            let labels = &stream_labels[piece.stream];
            for (position, entry) in entries.iter()?.enumerate() {
                if beyond(&kept, entry.timestamp_ns) {
                    continue;
                }
                let Some(processed) =
                    pipeline.process(labels, entry.metadata, entry.timestamp_ns, entry.line)
                else {
                    continue;
                };
                let key = processed.labels.unwrap_or_else(|| labels.clone());
                let next = result_labels.len();
                if !result_labels.contains_key(&key) {
                    held += label_set_bytes(&key);
                }
                let index = *result_labels.entry(key).or_insert(next);
                let order = (piece.seq << 32) | position as u64;
                let rank = match direction {
                    Direction::Forward => (sortable(entry.timestamp_ns), piece.stream, order),
                    Direction::Backward => (!sortable(entry.timestamp_ns), piece.stream, !order),
                };
                let line = processed.line.into_owned();
                held += FOUND_BYTES + line.len();
                check_memory(&self.limits, held)?;
                kept.push(Found {
                    rank,
                    timestamp_ns: entry.timestamp_ns,
                    index,
                    line,
                });
                if kept.len() > limit
                    && let Some(dropped) = kept.pop()
                {
                    held -= FOUND_BYTES + dropped.line.len();
                }
            }
        }
        let found = kept.into_sorted_vec();
        let mut by_index: Vec<Option<StreamResult>> = vec![None; result_labels.len()];
        for (labels, index) in result_labels {
            by_index[index] = Some(StreamResult {
                labels,
                entries: Vec::new(),
            });
        }
        for found in found {
            if let Some(Some(stream)) = by_index.get_mut(found.index) {
                stream.entries.push((found.timestamp_ns, found.line));
            }
        }
        let mut results: Vec<StreamResult> = by_index
            .into_iter()
            .flatten()
            .filter(|s| !s.entries.is_empty())
            .collect();
        results.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(results)
    }

    /// A metric query at the steps `start_ns, start_ns + step_ns, …, ≤ end_ns` (an instant
    /// query: `start_ns == end_ns`).
    pub fn metric(
        &mut self,
        expr: &MetricExpr,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
    ) -> Result<MetricResult, Error> {
        if end_ns < start_ns {
            return Err(Error::Invalid(
                "end timestamp must not be before start time".into(),
            ));
        }
        if step_ns <= 0 && end_ns > start_ns {
            return Err(Error::Invalid(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        let count = if end_ns == start_ns {
            1
        } else {
            ((end_ns - start_ns) / step_ns) as usize + 1
        };
        if count > 11_000 {
            return Err(Error::Invalid(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let steps: Vec<i64> = (0..count)
            .map(|i| start_ns + i as i64 * step_ns.max(0))
            .collect();
        let value = self.eval(expr, &steps)?;
        Ok(match value {
            Value::Scalar(v) => MetricResult::Scalar(steps.iter().map(|t| (*t, v)).collect()),
            Value::Vector { series, sort_desc } => {
                if series.len() > self.limits.max_series {
                    return Err(Error::SeriesLimit {
                        max: self.limits.max_series,
                    });
                }
                let mut out: Vec<SeriesResult> = series
                    .into_iter()
                    .map(|(labels, values)| SeriesResult {
                        labels,
                        points: steps
                            .iter()
                            .zip(values)
                            .filter_map(|(t, v)| v.map(|v| (*t, v)))
                            .collect(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                if let Some(desc) = sort_desc {
                    let first = |s: &SeriesResult| s.points.first().map_or(f64::NAN, |p| p.1);
                    out.sort_by(|a, b| {
                        let order = first(a).total_cmp(&first(b));
                        if desc { order.reverse() } else { order }
                    });
                }
                MetricResult::Series(out)
            }
        })
    }

    fn eval(&mut self, expr: &MetricExpr, steps: &[i64]) -> Result<Value, Error> {
        self.check_deadline()?;
        match expr {
            MetricExpr::Number(n) => Ok(Value::Scalar(*n)),
            MetricExpr::Vector1(n) => Ok(Value::Vector {
                series: [(LabelSet::new(), vec![Some(*n); steps.len()])].into(),
                sort_desc: None,
            }),
            MetricExpr::Paren(inner) => self.eval(inner, steps),
            MetricExpr::Range {
                op,
                log,
                range_ns,
                offset_ns,
                unwrap,
                param,
                grouping,
            } => {
                let series = self.range(
                    *op,
                    log,
                    *range_ns,
                    *offset_ns,
                    unwrap.as_ref(),
                    *param,
                    grouping.as_ref(),
                    steps,
                )?;
                if series.len() > self.limits.max_series {
                    return Err(Error::SeriesLimit {
                        max: self.limits.max_series,
                    });
                }
                Ok(Value::Vector {
                    series,
                    sort_desc: None,
                })
            }
            MetricExpr::Vector {
                op,
                grouping,
                param,
                inner,
            } => {
                // `sum by (…)` over an additive range aggregation groups while counting, so
                // that per-line labels from a parser never become series of their own (and
                // never count against the series limit).
                if *op == VectorOp::Sum
                    && let (
                        Some(outer),
                        MetricExpr::Range {
                            op:
                                range_op @ (RangeOp::Count
                                | RangeOp::Rate
                                | RangeOp::Bytes
                                | RangeOp::BytesRate
                                | RangeOp::Sum),
                            log,
                            range_ns,
                            offset_ns,
                            unwrap,
                            param,
                            grouping: None,
                        },
                    ) = (grouping, inner.as_ref())
                {
                    let series = self.range(
                        *range_op,
                        log,
                        *range_ns,
                        *offset_ns,
                        unwrap.as_ref(),
                        *param,
                        Some(outer),
                        steps,
                    )?;
                    return Ok(Value::Vector {
                        series,
                        sort_desc: None,
                    });
                }
                let Value::Vector { series, .. } = self.eval(inner, steps)? else {
                    return Err(Error::Invalid(format!(
                        "{} needs a vector, not a number",
                        op.name()
                    )));
                };
                let sort_desc = match op {
                    VectorOp::Sort => Some(false),
                    VectorOp::SortDesc => Some(true),
                    _ => None,
                };
                let series = if sort_desc.is_some() {
                    series
                } else {
                    aggregate(*op, grouping.as_ref(), *param, &series, steps.len())
                };
                Ok(Value::Vector { series, sort_desc })
            }
            MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            } => {
                let left = self.eval(lhs, steps)?;
                let right = self.eval(rhs, steps)?;
                binary(
                    *op,
                    *return_bool,
                    matching.as_ref(),
                    left,
                    right,
                    steps.len(),
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        op: RangeOp,
        log: &LogExpr,
        range_ns: i64,
        offset_ns: i64,
        unwrap: Option<&Unwrap>,
        param: Option<f64>,
        grouping: Option<&Grouping>,
        steps: &[i64],
    ) -> Result<Matrix, Error> {
        let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
            return Ok(Matrix::new());
        };
        // Entries in (first - range - offset, last - offset]: the reader's end is exclusive.
        let read_start = first - range_ns - offset_ns + 1;
        let read_end = last - offset_ns + 1;
        let additive = matches!(
            op,
            RangeOp::Count
                | RangeOp::Rate
                | RangeOp::Bytes
                | RangeOp::BytesRate
                | RangeOp::Sum
                | RangeOp::Avg
                | RangeOp::Absent
        );
        // Step window edges, shifted by the offset: a window is (edge[a], edge[b]].
        let mut edges: Vec<i64> = steps
            .iter()
            .flat_map(|t| [t - offset_ns - range_ns, t - offset_ns])
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let pipeline = Pipeline::new(&log.stages);
        let group_names: Option<(bool, BTreeSet<&str>)> =
            grouping.map(|g| (g.without, g.labels.iter().map(String::as_str).collect()));
        let streams = self.reader.select(&log.matchers, read_start, read_end)?;
        self.stats.streams += streams.len() as u64;
        let series_of_streams: Vec<(LabelSet, LabelSet)> = streams
            .iter()
            .map(|s| {
                let labels = label_set(&s.labels);
                let key = match &group_names {
                    Some((without, names)) => group_labels(&labels, *without, names),
                    None => labels.clone(),
                };
                (labels, key)
            })
            .collect();
        let labels: Vec<&LabelSet> = series_of_streams.iter().map(|(l, _)| l).collect();
        let pieces = self.pieces(&streams, &labels, &pipeline, (read_start, read_end))?;
        let fold = RangeFold {
            op,
            unwrap,
            // Without stages a line's text is never looked at: its length is in the entry
            // column, so the lines are not read at all.
            with_lines: !log.stages.is_empty(),
            pipeline,
            additive,
            edges: &edges,
            streams: series_of_streams,
            group_names: group_names.as_ref(),
            limits: &self.limits,
            deadline: self.deadline,
            bytes_read: AtomicU64::new(self.stats.bytes_read),
            samples_held: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        };
        let (accumulators, stats) = fold.run(self.reader, pieces)?;
        self.stats.add(&stats);
        let range_seconds = range_ns as f64 / 1e9;
        if op == RangeOp::Absent {
            let labels: LabelSet = log
                .matchers
                .iter()
                .filter(|m| m.op() == MatchOp::Equal)
                .map(|m| (m.name().to_owned(), m.value().to_owned()))
                .collect();
            let mut values = Vec::with_capacity(steps.len());
            for t in steps {
                let (a, b) = window(&edges, *t, range_ns, offset_ns);
                let any = accumulators.values().any(|acc| match acc {
                    Accumulator::Sums { counts, .. } => counts[a + 1..=b].iter().any(|c| *c > 0),
                    Accumulator::Samples(s) => !s.is_empty(),
                });
                values.push((!any).then_some(1.0));
            }
            if values.iter().all(Option::is_none) {
                return Ok(Matrix::new());
            }
            return Ok([(labels, values)].into());
        }
        let mut matrix = Matrix::new();
        for (labels, accumulator) in accumulators {
            let values: Vec<Option<f64>> = match accumulator {
                Accumulator::Sums { sums, counts } => {
                    let prefix_sums = prefix(&sums);
                    let prefix_counts =
                        prefix(&counts.iter().map(|c| f64::from(*c)).collect::<Vec<_>>());
                    steps
                        .iter()
                        .map(|t| {
                            let (a, b) = window(&edges, *t, range_ns, offset_ns);
                            let n = prefix_counts[b + 1] - prefix_counts[a + 1];
                            if n == 0.0 {
                                return None;
                            }
                            let sum = prefix_sums[b + 1] - prefix_sums[a + 1];
                            Some(match op {
                                RangeOp::Count | RangeOp::Absent => n,
                                RangeOp::Rate | RangeOp::BytesRate => sum / range_seconds,
                                RangeOp::Avg => sum / n,
                                _ => sum,
                            })
                        })
                        .collect()
                }
                Accumulator::Samples(mut samples) => {
                    samples.sort_by_key(|(ts, order, _)| (*ts, *order));
                    let samples: Vec<(i64, f64)> =
                        samples.into_iter().map(|(ts, _, v)| (ts, v)).collect();
                    steps
                        .iter()
                        .map(|t| {
                            let end = t - offset_ns;
                            let start = end - range_ns;
                            let from = samples.partition_point(|s| s.0 <= start);
                            let to = samples.partition_point(|s| s.0 <= end);
                            let window = &samples[from..to];
                            if window.is_empty() {
                                return None;
                            }
                            over_time(op, window, param, start, end)
                        })
                        .collect()
                }
            };
            if values.iter().any(Option::is_some) {
                matrix.insert(labels, values);
            }
        }
        Ok(matrix)
    }
}

/// Per-series state of a range aggregation.
enum Accumulator {
    /// Sums and counts between consecutive window edges.
    Sums { sums: Vec<f64>, counts: Vec<u32> },
    /// Every sample: timestamp, read order (for ties), value.
    Samples(Vec<(i64, u64, f64)>),
}

impl Accumulator {
    /// Adds what another reader thread accumulated for the same series.
    fn merge(&mut self, other: Accumulator) {
        match (self, other) {
            (
                Accumulator::Sums { sums, counts },
                Accumulator::Sums {
                    sums: more_sums,
                    counts: more_counts,
                },
            ) => {
                sums.iter_mut().zip(more_sums).for_each(|(a, b)| *a += b);
                counts
                    .iter_mut()
                    .zip(more_counts)
                    .for_each(|(a, b)| *a += b);
            }
            (Accumulator::Samples(samples), Accumulator::Samples(more)) => samples.extend(more),
            // One query uses one kind for every series.
            _ => {}
        }
    }
}

/// A piece to read, with its stream (an index into the selected streams) and its place in
/// that stream's listing.
struct Piece {
    stream: usize,
    seq: u64,
    chunk: ChunkRef,
}

/// An entry kept by a log query. Ordered by `rank`: smaller is nearer the query's start
/// in its direction, so a max-heap of them holds the farthest on top.
struct Found {
    rank: (u64, usize, u64),
    timestamp_ns: i64,
    index: usize,
    line: String,
}

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// An i64 as a u64 that sorts like it.
fn sortable(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

fn label_set(labels: &sightline_core::labels::Labels) -> LabelSet {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// Counts a piece read into `stats`.
fn tally(stats: &mut QueryStats, entries: &ChunkEntries<'_>, stored: bool) {
    stats.entries_read += entries.len() as u64;
    stats.bytes_read += entries.line_bytes() as u64;
    stats.chunks_read += u64::from(stored);
}

fn check_bytes(limits: &QueryLimits, bytes_read: u64) -> Result<(), Error> {
    if limits.max_bytes_read > 0 && bytes_read > limits.max_bytes_read {
        return Err(Error::BytesLimit {
            max: limits.max_bytes_read,
        });
    }
    Ok(())
}

fn check_memory(limits: &QueryLimits, held: usize) -> Result<(), Error> {
    if held > limits.max_memory {
        return Err(Error::MemoryLimit {
            max: limits.max_memory,
        });
    }
    Ok(())
}

/// Heap bytes of a kept entry besides its line: the heap slot and the line's `String`.
const FOUND_BYTES: usize = std::mem::size_of::<Found>();

/// Heap bytes of a label set, estimated: its texts and a map slot of two `String`s per label.
fn label_set_bytes(labels: &LabelSet) -> usize {
    labels
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2 * std::mem::size_of::<String>())
        .sum()
}

fn check_deadline(limits: &QueryLimits, deadline: Instant) -> Result<(), Error> {
    if Instant::now() > deadline {
        return Err(Error::Timeout {
            seconds: limits.timeout.as_secs(),
        });
    }
    Ok(())
}

/// Most threads one range aggregation reads pieces with.
const MAX_READER_THREADS: usize = 4;

/// A range aggregation's entries folded into series, piece by piece, on as many threads as
/// the machine has cores (up to [`MAX_READER_THREADS`]): pieces are independent, and
/// decompressing lines is most of a query's time.
struct RangeFold<'q> {
    op: RangeOp,
    unwrap: Option<&'q Unwrap>,
    with_lines: bool,
    pipeline: Pipeline,
    additive: bool,
    /// Step window edges: bucket `j` of a series holds `(edges[j-1], edges[j]]`.
    edges: &'q [i64],
    /// Per selected stream: its labels, and its series key when no stage changes labels.
    streams: Vec<(LabelSet, LabelSet)>,
    group_names: Option<&'q (bool, BTreeSet<&'q str>)>,
    limits: &'q QueryLimits,
    deadline: Instant,
    /// Shared by the threads, for the limits.
    bytes_read: AtomicU64,
    samples_held: AtomicUsize,
    /// Heap bytes of the series and samples kept, for `max_memory`.
    held: AtomicUsize,
    /// Set when a thread fails, so that the others stop.
    failed: AtomicBool,
}

/// One reader thread's series and what it read.
#[derive(Default)]
struct Folded {
    accumulators: BTreeMap<LabelSet, Accumulator>,
    stats: QueryStats,
}

impl RangeFold<'_> {
    /// Reads and folds every piece; the series with their accumulators, and what was read.
    fn run<R: StreamReader + ?Sized>(
        &self,
        reader: &R,
        pieces: Vec<Piece>,
    ) -> Result<(BTreeMap<LabelSet, Accumulator>, QueryStats), Error> {
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(MAX_READER_THREADS)
            .min(pieces.len())
            .max(1);
        let queue = Mutex::new(pieces.into_iter().enumerate());
        let work = || {
            let result = self.work(reader, &queue);
            if result.is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
            result
        };
        let results: Vec<Result<Folded, Error>> = if threads == 1 {
            vec![work()]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        let mut merged: BTreeMap<LabelSet, Accumulator> = BTreeMap::new();
        let mut stats = QueryStats::default();
        for folded in results {
            let folded = folded?;
            stats.add(&folded.stats);
            for (labels, accumulator) in folded.accumulators {
                match merged.entry(labels) {
                    Entry::Vacant(slot) => {
                        slot.insert(accumulator);
                    }
                    Entry::Occupied(mut slot) => slot.get_mut().merge(accumulator),
                }
            }
        }
        if merged.len() > self.limits.max_series && self.op != RangeOp::Absent {
            return Err(Error::SeriesLimit {
                max: self.limits.max_series,
            });
        }
        Ok((merged, stats))
    }

    /// One thread: takes pieces from `queue` until it is empty or another thread failed.
    fn work<R: StreamReader + ?Sized>(
        &self,
        reader: &R,
        queue: &Mutex<std::iter::Enumerate<std::vec::IntoIter<Piece>>>,
    ) -> Result<Folded, Error> {
        let mut folded = Folded::default();
        while !self.failed.load(Ordering::Relaxed) {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((index, piece)) = next else {
                break;
            };
            let stored = piece.chunk.is_stored();
            let entries = reader.read_chunk(piece.chunk, self.with_lines)?;
            tally(&mut folded.stats, &entries, stored);
            let total = self
                .bytes_read
                .fetch_add(entries.line_bytes() as u64, Ordering::Relaxed)
                + entries.line_bytes() as u64;
            check_bytes(self.limits, total)?;
            check_deadline(self.limits, self.deadline)?;
            check_memory(
                self.limits,
                self.held.load(Ordering::Relaxed) + entries.held_bytes(),
            )?;
            self.fold(&mut folded.accumulators, piece.stream, index, &entries)?;
        }
        Ok(folded)
    }

    /// Folds one piece's entries (oldest first) into `accumulators`.
    fn fold(
        &self,
        accumulators: &mut BTreeMap<LabelSet, Accumulator>,
        stream: usize,
        piece: usize,
        entries: &ChunkEntries<'_>,
    ) -> Result<(), Error> {
        let (stream_labels, stream_key) = &self.streams[stream];
        // Entries come oldest first: the bucket of each is found by walking the edges once.
        let mut bucket = 0;
        let order = |position: usize| ((piece as u64) << 32) | position as u64;
        if !self.pipeline.changes_labels() && self.unwrap.is_none() {
            // Every entry goes to the stream's series: find it once, not per entry.
            let accumulator = self.series(accumulators, stream_key)?;
            for (position, entry) in entries.iter()?.enumerate() {
                if let Some(processed) = self.pipeline.process(
                    stream_labels,
                    entry.metadata,
                    entry.timestamp_ns,
                    entry.line,
                ) {
                    let value = match self.op {
                        RangeOp::Bytes | RangeOp::BytesRate if self.with_lines => {
                            processed.line.len() as f64
                        }
                        RangeOp::Bytes | RangeOp::BytesRate => entry.line_len as f64,
                        _ => 1.0,
                    };
                    let at = (entry.timestamp_ns, order(position));
                    self.add(accumulator, &mut bucket, at, value)?;
                }
            }
            return Ok(());
        }
        for (position, entry) in entries.iter()?.enumerate() {
            let Some(processed) = self.pipeline.process(
                stream_labels,
                entry.metadata,
                entry.timestamp_ns,
                entry.line,
            ) else {
                continue;
            };
            let mut labels = processed.labels.unwrap_or_else(|| stream_labels.clone());
            let value = match (self.unwrap, self.op) {
                (Some(unwrap), _) => match unwrap_value(unwrap, &mut labels) {
                    Some(value) => value,
                    None => continue,
                },
                (None, RangeOp::Bytes | RangeOp::BytesRate) => processed.line.len() as f64,
                (None, _) => 1.0,
            };
            labels.remove(ERROR_DETAILS_LABEL);
            if let Some(error) = labels.get(ERROR_LABEL) {
                return Err(Error::Pipeline {
                    error: error.clone(),
                    series: labels_text(&labels),
                });
            }
            let key = match self.group_names {
                Some((without, names)) => group_labels(&labels, *without, names),
                None => labels,
            };
            let accumulator = self.series(accumulators, &key)?;
            let at = (entry.timestamp_ns, order(position));
            self.add(accumulator, &mut bucket, at, value)?;
        }
        Ok(())
    }

    /// The accumulator of a series, new if it is the first sample (within the series limit).
    fn series<'m>(
        &self,
        accumulators: &'m mut BTreeMap<LabelSet, Accumulator>,
        key: &LabelSet,
    ) -> Result<&'m mut Accumulator, Error> {
        if !accumulators.contains_key(key) {
            if accumulators.len() >= self.limits.max_series && self.op != RangeOp::Absent {
                return Err(Error::SeriesLimit {
                    max: self.limits.max_series,
                });
            }
            let (fresh, bytes) = if self.additive {
                (
                    Accumulator::Sums {
                        sums: vec![0.0; self.edges.len() + 1],
                        counts: vec![0; self.edges.len() + 1],
                    },
                    (self.edges.len() + 1)
                        * (std::mem::size_of::<f64>() + std::mem::size_of::<u32>()),
                )
            } else {
                (Accumulator::Samples(Vec::new()), 0)
            };
            self.hold(label_set_bytes(key) + bytes)?;
            accumulators.insert(key.clone(), fresh);
        }
        accumulators
            .get_mut(key)
            .ok_or_else(|| Error::Invalid("a series vanished while it was counted".into()))
    }

    /// Counts `bytes` more kept against `max_memory`.
    fn hold(&self, bytes: usize) -> Result<(), Error> {
        let held = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        check_memory(self.limits, held)
    }

    /// Adds a sample `(timestamp, read order)` to a series. `bucket` is the window bucket of
    /// the piece's previous sample: timestamps within a piece never go back.
    fn add(
        &self,
        accumulator: &mut Accumulator,
        bucket: &mut usize,
        (timestamp_ns, order): (i64, u64),
        value: f64,
    ) -> Result<(), Error> {
        match accumulator {
            Accumulator::Sums { sums, counts } => {
                while *bucket < self.edges.len() && self.edges[*bucket] < timestamp_ns {
                    *bucket += 1;
                }
                sums[*bucket] += value;
                counts[*bucket] += 1;
            }
            Accumulator::Samples(samples) => {
                samples.push((timestamp_ns, order, value));
                self.hold(std::mem::size_of::<(i64, u64, f64)>())?;
                let held = self.samples_held.fetch_add(1, Ordering::Relaxed) + 1;
                if held > self.limits.max_samples {
                    return Err(Error::SamplesLimit {
                        max: self.limits.max_samples,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Bucket indexes `(a, b)` such that the window of step `t` is buckets `a+1..=b`.
fn window(edges: &[i64], t: i64, range_ns: i64, offset_ns: i64) -> (usize, usize) {
    let a = edges.partition_point(|e| *e < t - offset_ns - range_ns);
    let b = edges.partition_point(|e| *e < t - offset_ns);
    (a, b)
}

fn prefix(values: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len() + 1);
    out.push(0.0);
    let mut total = 0.0;
    for v in values {
        total += v;
        out.push(total);
    }
    out
}

/// Prometheus's quantile of sorted values (linear interpolation).
fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let rank = phi * (values.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    if count == 0.0 { f64::NAN } else { m2 / count }
}

fn over_time(
    op: RangeOp,
    window: &[(i64, f64)],
    param: Option<f64>,
    start: i64,
    end: i64,
) -> Option<f64> {
    let values = window.iter().map(|s| s.1);
    Some(match op {
        RangeOp::Min => values.fold(f64::INFINITY, f64::min),
        RangeOp::Max => values.fold(f64::NEG_INFINITY, f64::max),
        RangeOp::Stdvar => variance(values),
        RangeOp::Stddev => variance(values).sqrt(),
        RangeOp::Quantile => quantile(param.unwrap_or(0.5), &mut values.collect::<Vec<_>>()),
        RangeOp::First => window.first()?.1,
        RangeOp::Last => window.last()?.1,
        RangeOp::RateCounter => counter_rate(window, start, end),
        RangeOp::Sum | RangeOp::Rate | RangeOp::Bytes | RangeOp::BytesRate => values.sum(),
        RangeOp::Avg => values.sum::<f64>() / window.len() as f64,
        RangeOp::Count | RangeOp::Absent => window.len() as f64,
    })
}

/// Prometheus's extrapolated `rate()` of counter samples in `(start, end]`.
fn counter_rate(window: &[(i64, f64)], start: i64, end: i64) -> f64 {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return 0.0;
    };
    if window.len() < 2 {
        return 0.0;
    }
    let mut increase = last.1 - first.1;
    let mut previous = first.1;
    for sample in &window[1..] {
        if sample.1 < previous {
            increase += previous;
        }
        previous = sample.1;
    }
    let range = (end - start) as f64 / 1e9;
    let sampled = (last.0 - first.0) as f64 / 1e9;
    let average_interval = sampled / (window.len() - 1) as f64;
    let mut to_start = (first.0 - start) as f64 / 1e9;
    let to_end = (end - last.0) as f64 / 1e9;
    if increase > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / increase);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_interval * 1.1;
    let mut extrapolate = sampled;
    extrapolate += if to_start < threshold {
        to_start
    } else {
        average_interval / 2.0
    };
    extrapolate += if to_end < threshold {
        to_end
    } else {
        average_interval / 2.0
    };
    if sampled == 0.0 {
        return 0.0;
    }
    increase * (extrapolate / sampled) / range
}

fn aggregate(
    op: VectorOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    series: &Matrix,
    steps: usize,
) -> Matrix {
    let names: BTreeSet<&str> = grouping
        .map(|g| g.labels.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let without = grouping.is_some_and(|g| g.without);
    let key_of = |labels: &LabelSet| group_labels(labels, without, &names);
    if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
        let k = param.unwrap_or(1.0) as usize;
        let mut out = Matrix::new();
        for step in 0..steps {
            let mut groups: BTreeMap<LabelSet, Vec<(&LabelSet, f64)>> = BTreeMap::new();
            for (labels, values) in series {
                if let Some(Some(v)) = values.get(step) {
                    groups.entry(key_of(labels)).or_default().push((labels, *v));
                }
            }
            for members in groups.values_mut() {
                members.sort_by(|a, b| {
                    let order = a.1.total_cmp(&b.1);
                    if op == VectorOp::Topk {
                        order.reverse()
                    } else {
                        order
                    }
                });
                for (labels, v) in members.iter().take(k) {
                    out.entry((*labels).clone())
                        .or_insert_with(|| vec![None; steps])[step] = Some(*v);
                }
            }
        }
        return out;
    }
    let mut grouped: BTreeMap<LabelSet, Vec<&Vec<Option<f64>>>> = BTreeMap::new();
    for (labels, values) in series {
        grouped.entry(key_of(labels)).or_default().push(values);
    }
    grouped
        .into_iter()
        .map(|(key, members)| {
            let values = (0..steps)
                .map(|step| {
                    let present: Vec<f64> = members
                        .iter()
                        .filter_map(|v| v.get(step).copied().flatten())
                        .collect();
                    if present.is_empty() {
                        return None;
                    }
                    let n = present.len() as f64;
                    Some(match op {
                        VectorOp::Sum => present.iter().sum(),
                        VectorOp::Avg => present.iter().sum::<f64>() / n,
                        VectorOp::Min => present.iter().copied().fold(f64::INFINITY, f64::min),
                        VectorOp::Max => present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        VectorOp::Count => n,
                        VectorOp::Stdvar => variance(present.into_iter()),
                        VectorOp::Stddev => variance(present.into_iter()).sqrt(),
                        VectorOp::Topk
                        | VectorOp::Bottomk
                        | VectorOp::Sort
                        | VectorOp::SortDesc => present[0],
                    })
                })
                .collect();
            (key, values)
        })
        .collect()
}

fn arithmetic(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Cmp(cmp) => {
            if cmp.holds(a, b) {
                1.0
            } else {
                0.0
            }
        }
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

/// The value a comparison or arithmetic gives for one pair; `None` drops the sample.
fn combine(op: BinOp, return_bool: bool, a: f64, b: f64, keep: f64) -> Option<f64> {
    let result = arithmetic(op, a, b)?;
    match op {
        BinOp::Cmp(_) if return_bool => Some(result),
        BinOp::Cmp(_) => (result == 1.0).then_some(keep),
        _ => Some(result),
    }
}

fn match_key(labels: &LabelSet, matching: Option<&VectorMatching>) -> LabelSet {
    match matching {
        None => labels.clone(),
        Some(m) => {
            let names: BTreeSet<&str> = m.labels.iter().map(String::as_str).collect();
            group_labels(labels, !m.on, &names)
        }
    }
}

fn binary(
    op: BinOp,
    return_bool: bool,
    matching: Option<&VectorMatching>,
    left: Value,
    right: Value,
    steps: usize,
) -> Result<Value, Error> {
    let map_vector = |series: Matrix, f: &dyn Fn(f64) -> Option<f64>| -> Matrix {
        series
            .into_iter()
            .map(|(labels, values)| (labels, values.into_iter().map(|v| v.and_then(f)).collect()))
            .collect()
    };
    match (left, right) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if op.is_set() {
                return Err(Error::Invalid(format!(
                    "{} is not defined between numbers",
                    op.text()
                )));
            }
            if matches!(op, BinOp::Cmp(_)) && !return_bool {
                return Err(Error::Invalid(
                    "comparisons between numbers need the bool modifier".into(),
                ));
            }
            Ok(Value::Scalar(arithmetic(op, a, b).unwrap_or(f64::NAN)))
        }
        (Value::Vector { series, .. }, Value::Scalar(b)) => {
            if op.is_set() {
                return Err(Error::Invalid(format!(
                    "{} needs vectors on both sides",
                    op.text()
                )));
            }
            Ok(Value::Vector {
                series: map_vector(series, &|a| combine(op, return_bool, a, b, a)),
                sort_desc: None,
            })
        }
        (Value::Scalar(a), Value::Vector { series, .. }) => {
            if op.is_set() {
                return Err(Error::Invalid(format!(
                    "{} needs vectors on both sides",
                    op.text()
                )));
            }
            Ok(Value::Vector {
                series: map_vector(series, &|b| combine(op, return_bool, a, b, b)),
                sort_desc: None,
            })
        }
        (Value::Vector { series: lhs, .. }, Value::Vector { series: rhs, .. }) => {
            let mut out = Matrix::new();
            if op.is_set() {
                for step in 0..steps {
                    let right_keys: BTreeSet<LabelSet> = rhs
                        .iter()
                        .filter(|(_, v)| v.get(step).copied().flatten().is_some())
                        .map(|(l, _)| match_key(l, matching))
                        .collect();
                    let left_keys: BTreeSet<LabelSet> = lhs
                        .iter()
                        .filter(|(_, v)| v.get(step).copied().flatten().is_some())
                        .map(|(l, _)| match_key(l, matching))
                        .collect();
                    for (labels, values) in &lhs {
                        let Some(v) = values.get(step).copied().flatten() else {
                            continue;
                        };
                        let matched = right_keys.contains(&match_key(labels, matching));
                        let keep = match op {
                            BinOp::And => matched,
                            BinOp::Unless => !matched,
                            _ => true,
                        };
                        if keep {
                            out.entry(labels.clone())
                                .or_insert_with(|| vec![None; steps])[step] = Some(v);
                        }
                    }
                    if op == BinOp::Or {
                        for (labels, values) in &rhs {
                            let Some(v) = values.get(step).copied().flatten() else {
                                continue;
                            };
                            if !left_keys.contains(&match_key(labels, matching)) {
                                out.entry(labels.clone())
                                    .or_insert_with(|| vec![None; steps])[step] = Some(v);
                            }
                        }
                    }
                }
                return Ok(Value::Vector {
                    series: out,
                    sort_desc: None,
                });
            }
            for step in 0..steps {
                let mut right: BTreeMap<LabelSet, f64> = BTreeMap::new();
                for (labels, values) in &rhs {
                    if let Some(v) = values.get(step).copied().flatten()
                        && right.insert(match_key(labels, matching), v).is_some()
                    {
                        return Err(Error::Invalid(format!(
                            "found duplicate series for the match group {} on the right hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                            labels_text(&match_key(labels, matching))
                        )));
                    }
                }
                let mut seen = BTreeSet::new();
                for (labels, values) in &lhs {
                    let Some(a) = values.get(step).copied().flatten() else {
                        continue;
                    };
                    let key = match_key(labels, matching);
                    let Some(b) = right.get(&key) else {
                        continue;
                    };
                    if !seen.insert(key.clone()) {
                        return Err(Error::Invalid(format!(
                            "found duplicate series for the match group {} on the left hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                            labels_text(&key)
                        )));
                    }
                    let Some(v) = combine(op, return_bool, a, *b, a) else {
                        continue;
                    };
                    let result_labels = if matches!(op, BinOp::Cmp(_)) && !return_bool {
                        labels.clone()
                    } else {
                        key
                    };
                    out.entry(result_labels)
                        .or_insert_with(|| vec![None; steps])[step] = Some(v);
                }
            }
            Ok(Value::Vector {
                series: out,
                sort_desc: None,
            })
        }
    }
}
