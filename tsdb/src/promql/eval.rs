//! The evaluator: fetches each selector's series once for the whole query, then evaluates
//! the AST at one timestamp at a time. Range queries evaluate every step and join the
//! resulting vectors by label set; their batchable leaves (see [`StepBatch`]) are computed
//! series by series for many steps at once.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use sightline_core::labels::{Labels, METRIC_NAME};

use super::annotations::Annotations;
use super::error::{Error, Result, Stage};
use super::parser::{at_ms, duration_ms, offset_ms, selector_matchers, unwrap_parens};
use super::value::{Sample, Series, Value};
use super::{EngineOptions, aggregate, binary, instant_functions, is_stale_nan, range_functions};
use crate::storage::{ChunkMeta, Querier};

/// One element of an instant vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    /// Shared: selectors hand out the stored series' labels without copying them.
    pub labels: Rc<Labels>,
    pub v: f64,
    /// Drop `__name__` when the result is returned (delayed name removal).
    pub drop_name: bool,
}

/// One series of a range vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct RangeSeries {
    pub labels: Rc<Labels>,
    pub points: Vec<(i64, f64)>,
    pub drop_name: bool,
}

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Elem>),
    Matrix(Vec<RangeSeries>),
}

/// A range vector argument with the window it was selected over.
pub(crate) struct RangeArg {
    pub series: Vec<RangeSeries>,
    /// Window start (exclusive), ms.
    pub start: i64,
    /// Window end (inclusive), ms.
    pub end: i64,
}

/// A fetched series: its chunks over the fetch range (staleness markers included), and the
/// decoded samples of the latest window.
///
/// Range evaluation is incremental: as steps move forward, each chunk is decoded once, when
/// a window first reaches it, and appended to a per-series buffer; samples that fall behind
/// the window's start are dropped. A window is an index range into that buffer, so memory
/// per series is one window plus one chunk, and each sample is decoded once per query. A
/// window that moves backwards (a selector evaluated out of order) re-decodes from its
/// first chunk.
struct Stored {
    labels: Rc<Labels>,
    /// Sorted by time, not overlapping.
    chunks: Vec<ChunkMeta>,
    /// The end of the range fetched for the selector (`i64::MAX` when every step reads the
    /// same window): a window reaching it is the series' last, after which its decoded
    /// samples are let go (an instant query over 100k series of 300 samples each held 1 GB
    /// of buffers until it ended).
    fetched_until: i64,
    buffer: RefCell<SampleBuffer>,
}

/// Decoded samples of chunks `..next_chunk`, from index `start` on; earlier ones were
/// dropped because they are at or before `dropped_upto`.
#[derive(Default)]
struct SampleBuffer {
    samples: Vec<(i64, f64)>,
    start: usize,
    next_chunk: usize,
    dropped_upto: Option<i64>,
}

/// Samples behind a window that are dropped at once: often enough that a buffer stays about
/// twice its window, rarely enough that dropping them costs little per step.
const DRAIN_AFTER: usize = 64;

/// The samples of one chunk in time order: the one place where the engine reads chunk
/// contents, so that a change in how storage hands over chunks touches only this function.
fn chunk_samples(meta: &ChunkMeta) -> impl Iterator<Item = (i64, f64)> + '_ {
    meta.chunk.iter()
}

impl Stored {
    fn new(labels: Labels, chunks: Vec<ChunkMeta>, fetched_until: i64) -> Stored {
        Stored {
            labels: Rc::new(labels),
            chunks,
            fetched_until,
            buffer: RefCell::default(),
        }
    }

    /// Calls `f` with the decoded samples in `(from, to]`, staleness markers included. Later
    /// windows of this series start after `keep_after` (at least `from`): samples at or
    /// before it are let go.
    fn with_window<R>(
        &self,
        from: i64,
        to: i64,
        keep_after: i64,
        f: impl FnOnce(&[(i64, f64)]) -> R,
    ) -> R {
        let mut buffer = self.buffer.borrow_mut();
        let buffer = &mut *buffer;
        // Chunks before `first` end at or before `from`.
        let first = self.chunks.partition_point(|c| c.max_time <= from);
        let went_back = buffer.dropped_upto.is_some_and(|dropped| from < dropped);
        if went_back || first >= buffer.next_chunk {
            // Nothing decoded is in the window, or part of it was dropped: start at `first`.
            buffer.samples.clear();
            buffer.start = 0;
            buffer.next_chunk = first;
            buffer.dropped_upto = None;
        }
        while let Some(meta) = self.chunks.get(buffer.next_chunk) {
            if meta.min_time > to {
                break;
            }
            buffer.samples.extend(chunk_samples(meta));
            buffer.next_chunk += 1;
        }
        let live = &buffer.samples[buffer.start..];
        let lo = advance(live, 0, from);
        let hi = advance(live, lo, to);
        let result = f(&live[lo..hi]);
        if to >= self.fetched_until {
            // No later window of this selector: a window that comes anyway (one evaluated out
            // of order) decodes again from its first chunk, as after going back.
            *buffer = SampleBuffer::default();
            return result;
        }
        // Later windows start after `keep_after`: what is at or before it is not needed again.
        let keep_after = keep_after.max(from);
        buffer.start += advance(live, lo, keep_after);
        buffer.dropped_upto = Some(
            buffer
                .dropped_upto
                .map_or(keep_after, |d| d.max(keep_after)),
        );
        if buffer.start >= DRAIN_AFTER && buffer.start * 2 >= buffer.samples.len() {
            buffer.samples.drain(..buffer.start);
            buffer.start = 0;
            // A long batch's window grew the buffer: give that back.
            if buffer.samples.capacity() > 4 * (buffer.samples.len() + DRAIN_AFTER) {
                buffer
                    .samples
                    .shrink_to(2 * (buffer.samples.len() + DRAIN_AFTER));
            }
        }
        result
    }

    /// The newest sample in `(from, to]`, staleness marker or not.
    fn last_in(&self, from: i64, to: i64) -> Option<(i64, f64)> {
        self.with_window(from, to, from, |samples| samples.last().copied())
    }

    /// Appends the samples in `(from, to]` to `out`, staleness markers left out; later
    /// windows start after `keep_after`.
    fn window_into(&self, from: i64, to: i64, keep_after: i64, out: &mut Vec<(i64, f64)>) {
        self.with_window(from, to, keep_after, |samples| {
            out.extend(samples.iter().filter(|&&(_, v)| !is_stale_nan(v)));
        });
    }
}

/// The index of the first of `samples` (sorted by time) after `t`, searching from `from`
/// (which must be at or before it): a few steps forward first, as windows and steps mostly
/// move by a few samples, then galloping and a binary search, so a long jump costs
/// logarithmic time rather than linear.
fn advance(samples: &[(i64, f64)], from: usize, t: i64) -> usize {
    let mut lo = from;
    let mut stride = 1;
    loop {
        match samples.get(lo) {
            Some(&(st, _)) if st <= t => {}
            _ => return lo,
        }
        let probe = lo + stride;
        match samples.get(probe) {
            Some(&(st, _)) if st <= t => {
                lo = probe + 1;
                stride *= 2;
            }
            _ => {
                let end = probe.min(samples.len());
                return lo + 1 + samples[lo + 1..end].partition_point(|&(st, _)| st <= t);
            }
        }
    }
}

/// Point vectors kept for reuse: enough for one window of as many series.
const MAX_POINT_BUFFERS: usize = 100_000;

/// Steps of a range query that a batchable node is evaluated for at once (see
/// [`StepBatch`]): enough that each series' window slides over many steps in one pass,
/// few enough that the held results stay small (64 elements per series).
const BATCH_STEPS: usize = 64;

/// Series a batch reads between two looks at the query's deadline: a batch may span many
/// steps (an aggregation's, see `aggregate::eval_steps`), so the deadline is not left until
/// its end.
const DEADLINE_EVERY_SERIES: usize = 1024;

/// A node's results for each of a run of steps: the step's elements and the samples they
/// were computed from (counted against `max_samples` when the step reads them).
pub(crate) type StepResults = Vec<(Vec<Elem>, usize)>;

/// Where a batchable leaf (an instant selector, or a range function over a matrix selector)
/// puts its results for a run of steps, series by series: into [`StepElems`], or straight
/// into an aggregation's groups (`aggregate::eval_steps`), which then never builds an
/// element per series and step.
pub(crate) trait StepSink {
    /// The values of this series follow; `drop_name` marks them for delayed name removal.
    fn series(&mut self, labels: &Rc<Labels>, drop_name: bool);
    /// At the batch's step `step` the series read `samples` samples and gave `value`
    /// (`None`: no output at that step).
    fn point(&mut self, step: usize, samples: usize, value: Option<f64>);
}

/// A batchable leaf's results as the elements of each step.
pub(crate) struct StepElems {
    steps: StepResults,
    labels: Option<Rc<Labels>>,
    drop_name: bool,
}

impl StepElems {
    /// Results for `steps` steps, empty so far.
    pub(crate) fn new(steps: usize) -> StepElems {
        StepElems {
            steps: vec![(Vec::new(), 0); steps],
            labels: None,
            drop_name: false,
        }
    }

    pub(crate) fn into_steps(self) -> StepResults {
        self.steps
    }
}

impl StepSink for StepElems {
    fn series(&mut self, labels: &Rc<Labels>, drop_name: bool) {
        self.labels = Some(Rc::clone(labels));
        self.drop_name = drop_name;
    }

    fn point(&mut self, step: usize, samples: usize, value: Option<f64>) {
        let Some((elems, count)) = self.steps.get_mut(step) else {
            return;
        };
        *count += samples;
        if let (Some(v), Some(labels)) = (value, &self.labels) {
            elems.push(Elem {
                labels: Rc::clone(labels),
                v,
                drop_name: self.drop_name,
            });
        }
    }
}

/// The results of one batchable node (an instant selector, or a range function over a
/// matrix selector) for consecutive steps of a range query, computed series by series as
/// Prometheus does: one pass over a series' samples serves all the steps, instead of one
/// window lookup per series per step. Each step takes its entry out when it reads it.
struct StepBatch {
    /// The time of `steps[0]`.
    first: i64,
    steps: Vec<Option<(Vec<Elem>, usize)>>,
}

pub(crate) struct Evaluator<'a> {
    querier: &'a dyn Querier,
    pub opts: &'a EngineOptions,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    deadline: Option<(Instant, Duration)>,
    /// Fetch range per selector node (keyed by address).
    ranges: HashMap<usize, (i64, i64)>,
    data: HashMap<usize, Rc<Vec<Stored>>>,
    /// Inner results of each subquery node by inner step time: inner steps are aligned to
    /// absolute multiples of the subquery step, so consecutive outer steps share them.
    subquery_cache: HashMap<usize, BTreeMap<i64, Rc<Vec<Elem>>>>,
    /// Samples held by the current step.
    step_samples: usize,
    /// Points accumulated in the range query's output.
    output_samples: usize,
    /// Group keys of each aggregation node (keyed by address), kept across steps.
    pub group_keys: HashMap<usize, aggregate::GroupKeys>,
    /// Emptied point vectors of earlier windows, reused so that steps do not allocate.
    point_buffers: Vec<Vec<(i64, f64)>>,
    /// Nodes (keyed by address) evaluated only at the range query's own steps, whose
    /// results are computed for [`BATCH_STEPS`] steps at once; set by `plan`.
    batchable: HashSet<usize>,
    /// The current batch of each batchable node.
    batches: HashMap<usize, StepBatch>,
    /// Steps in the next batch of a node that sized its batches itself (an aggregation, by
    /// how many groups it holds); others take [`BATCH_STEPS`].
    pub batch_steps: HashMap<usize, usize>,
    /// Subqueries around the node `plan` is at: their inner steps are not the query's.
    plan_subquery_depth: usize,
    /// Warnings and infos noted so far.
    pub annotations: Annotations,
}

fn key(vs: &VectorSelector) -> usize {
    std::ptr::from_ref(vs) as usize
}

impl<'a> Evaluator<'a> {
    pub fn new(
        querier: &'a dyn Querier,
        opts: &'a EngineOptions,
        start: i64,
        end: i64,
        step: i64,
        deadline: Option<(Instant, Duration)>,
    ) -> Evaluator<'a> {
        Evaluator {
            querier,
            opts,
            start,
            end,
            step,
            deadline,
            ranges: HashMap::new(),
            data: HashMap::new(),
            subquery_cache: HashMap::new(),
            step_samples: 0,
            output_samples: 0,
            point_buffers: Vec::new(),
            batchable: HashSet::new(),
            batches: HashMap::new(),
            batch_steps: HashMap::new(),
            plan_subquery_depth: 0,
            group_keys: HashMap::new(),
            annotations: Annotations::default(),
        }
    }

    /// The warnings and infos the evaluation noted.
    pub fn into_annotations(self) -> Annotations {
        self.annotations
    }

    pub fn run_instant(&mut self, expr: &Expr) -> Result<Value> {
        let ts = self.start;
        self.plan(expr, ts, ts);
        let val = self.eval(expr, ts)?;
        Ok(match val {
            Val::Scalar(v) => Value::Scalar { t: ts, v },
            Val::Str(v) => Value::String { t: ts, v },
            Val::Vector(elems) => Value::Vector(finish_vector(elems, ts)?),
            Val::Matrix(series) => {
                let mut out: Vec<Series> = series
                    .into_iter()
                    .map(|s| Series {
                        metric: finish_labels(s.labels, s.drop_name),
                        points: s.points,
                    })
                    .collect();
                check_unique_series(&out)?;
                out.sort_by(|a, b| a.metric.cmp(&b.metric));
                Value::Matrix(out)
            }
        })
    }

    pub fn run_range(&mut self, expr: &Expr) -> Result<Value> {
        self.plan(expr, self.start, self.end);
        let mut out = RangeOutput::default();
        let mut ts = self.start;
        while ts <= self.end {
            self.step_samples = 0;
            match self.eval(expr, ts)? {
                Val::Scalar(v) => out.push(Rc::default(), false, ts, v)?,
                Val::Vector(elems) => {
                    for e in elems {
                        out.push(e.labels, e.drop_name, ts, e.v)?;
                    }
                }
                Val::Matrix(_) | Val::Str(_) => {
                    return Err(Error::exec(
                        "invalid expression type for range query, must be Scalar or instant \
                         Vector",
                    ));
                }
            }
            self.output_samples = out.points;
            self.add_samples(0)?;
            ts = match ts.checked_add(self.step) {
                Some(next) => next,
                None => break,
            };
        }
        let mut series = out.series;
        series.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(Value::Matrix(series))
    }

    /// Takes back the point vector of a range argument's series once it was read.
    pub fn recycle(&mut self, series: RangeSeries) {
        if self.point_buffers.len() < MAX_POINT_BUFFERS {
            let mut points = series.points;
            points.clear();
            self.point_buffers.push(points);
        }
    }

    /// Counts samples against `max_samples` and checks the deadline.
    pub fn add_samples(&mut self, n: usize) -> Result<()> {
        self.step_samples += n;
        if self.step_samples + self.output_samples > self.opts.max_samples {
            return Err(Error::TooManySamples {
                limit: self.opts.max_samples,
            });
        }
        if let Some((deadline, timeout)) = self.deadline
            && Instant::now() > deadline
        {
            return Err(Error::Timeout {
                timeout_ms: timeout.as_millis(),
                stage: Stage::Evaluation,
            });
        }
        Ok(())
    }

    /// Records, for each selector, the time range its data is needed over when the
    /// expression is evaluated at times in `[lo, hi]`.
    fn plan(&mut self, expr: &Expr, lo: i64, hi: i64) {
        match expr {
            Expr::VectorSelector(vs) => {
                let (a, b) = self.shifted(vs, lo, hi);
                self.record(vs, a.saturating_sub(self.opts.lookback_delta_ms), b);
                self.mark_batchable(key(vs));
            }
            Expr::MatrixSelector(ms) => {
                let (a, b) = self.shifted(&ms.vs, lo, hi);
                self.record(&ms.vs, a.saturating_sub(duration_ms(&ms.range)), b);
            }
            Expr::Subquery(sq) => {
                let off = offset_ms(&sq.offset);
                let (a, b) = match at_ms(&sq.at, self.start, self.end) {
                    Some(at) => (at.saturating_sub(off), at.saturating_sub(off)),
                    None => (lo.saturating_sub(off), hi.saturating_sub(off)),
                };
                self.plan_subquery_depth += 1;
                self.plan(&sq.expr, a.saturating_sub(duration_ms(&sq.range)), b);
                self.plan_subquery_depth -= 1;
            }
            Expr::Aggregate(agg) => {
                self.plan(&agg.expr, lo, hi);
                if let Some(param) = &agg.param {
                    self.plan(param, lo, hi);
                }
                if aggregate::batchable(agg) {
                    self.mark_batchable(std::ptr::from_ref(agg) as usize);
                }
            }
            Expr::Unary(u) => self.plan(&u.expr, lo, hi),
            Expr::Binary(b) => {
                self.plan(&b.lhs, lo, hi);
                self.plan(&b.rhs, lo, hi);
            }
            Expr::Paren(p) => self.plan(&p.expr, lo, hi),
            Expr::Call(call) => {
                if range_functions::batchable(call) {
                    self.mark_batchable(std::ptr::from_ref(call) as usize);
                }
                for arg in &call.args.args {
                    self.plan(arg, lo, hi);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    /// Lets `node` be evaluated in batches of steps when it is outside every subquery (so it
    /// is evaluated at the query's steps only). An instant query's batch is its one step:
    /// series by series as well, instead of every series' window at once (an instant
    /// `count_over_time` over 100k series of 300 samples held 1 GB of windows).
    fn mark_batchable(&mut self, node: usize) {
        if self.plan_subquery_depth == 0 {
            self.batchable.insert(node);
        }
    }

    /// The batchable `node`'s result at `ts`, from its current batch or from a new one that
    /// `compute` evaluates for the steps from `ts` on; `None` when `node` is not batchable.
    fn batched(
        &mut self,
        node: usize,
        ts: i64,
        compute: impl FnOnce(&mut Self, &[i64]) -> Result<StepResults>,
    ) -> Result<Option<Vec<Elem>>> {
        if !self.batchable.contains(&node) {
            return Ok(None);
        }
        // An instant query (step 0) is one step: its batch ends at `end`, which is `ts`.
        let step = self.step.max(1);
        let cached = self.batches.get_mut(&node).and_then(|batch| {
            let offset = ts.checked_sub(batch.first)?;
            if offset < 0 || offset % step != 0 {
                return None;
            }
            batch
                .steps
                .get_mut(usize::try_from(offset / step).ok()?)?
                .take()
        });
        let (elems, samples) = match cached {
            Some(hit) => hit,
            None => {
                let end = self.end;
                let times: Vec<i64> = std::iter::successors(Some(ts), |t| t.checked_add(step))
                    .take_while(|&t| t <= end)
                    .take(self.batch_steps.get(&node).copied().unwrap_or(BATCH_STEPS))
                    .collect();
                let mut steps: Vec<_> = compute(self, &times)?.into_iter().map(Some).collect();
                let first = steps.first_mut().and_then(Option::take).unwrap_or_default();
                self.batches.insert(node, StepBatch { first: ts, steps });
                first
            }
        };
        self.add_samples(samples)?;
        Ok(Some(elems))
    }

    fn shifted(&self, vs: &VectorSelector, lo: i64, hi: i64) -> (i64, i64) {
        let off = offset_ms(&vs.offset);
        match at_ms(&vs.at, self.start, self.end) {
            Some(at) => (at.saturating_sub(off), at.saturating_sub(off)),
            None => (lo.saturating_sub(off), hi.saturating_sub(off)),
        }
    }

    fn record(&mut self, vs: &VectorSelector, mint: i64, maxt: i64) {
        let entry = self.ranges.entry(key(vs)).or_insert((mint, maxt));
        entry.0 = entry.0.min(mint);
        entry.1 = entry.1.max(maxt);
    }

    /// How many series the selector reads (fetching them, once, if not yet done).
    pub fn series_count(&mut self, vs: &VectorSelector) -> Result<usize> {
        Ok(self.fetch(vs)?.len())
    }

    /// The selector's series, fetched on first use.
    fn fetch(&mut self, vs: &VectorSelector) -> Result<Rc<Vec<Stored>>> {
        let k = key(vs);
        if let Some(data) = self.data.get(&k) {
            return Ok(Rc::clone(data));
        }
        let (mint, maxt) = self
            .ranges
            .get(&k)
            .copied()
            .unwrap_or((self.start, self.end));
        let matchers = selector_matchers(vs)?;
        let series = self.querier.select(&matchers, mint, maxt)?;
        // A selector pinned with `@` in a range query reads the same window at every step:
        // its samples are kept for the next step rather than let go at the end of each.
        let fetched_until = if vs.at.is_some() && self.step > 0 {
            i64::MAX
        } else {
            maxt
        };
        let stored: Vec<Stored> = series
            .into_iter()
            .filter(|s| !s.chunks.is_empty())
            .map(|s| Stored::new(s.labels, s.chunks, fetched_until))
            .collect();
        let data = Rc::new(stored);
        self.data.insert(k, Rc::clone(&data));
        Ok(data)
    }

    /// The selector's evaluation time for a step at `ts`: `@` and `offset` applied.
    fn selector_time(&self, vs: &VectorSelector, ts: i64) -> i64 {
        at_ms(&vs.at, self.start, self.end)
            .unwrap_or(ts)
            .saturating_sub(offset_ms(&vs.offset))
    }

    /// An instant vector selector at `ts`, with each sample's own timestamp.
    pub fn vector_select_with_time(
        &mut self,
        vs: &VectorSelector,
        ts: i64,
    ) -> Result<Vec<(Elem, i64)>> {
        let t = self.selector_time(vs, ts);
        let data = self.fetch(vs)?;
        let lookback = self.opts.lookback_delta_ms;
        let mut out = Vec::new();
        for s in data.iter() {
            let Some((st, v)) = s.last_in(t.saturating_sub(lookback), t) else {
                continue;
            };
            if is_stale_nan(v) {
                continue;
            }
            out.push((
                Elem {
                    labels: Rc::clone(&s.labels),
                    v,
                    drop_name: false,
                },
                st,
            ));
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    fn vector_select(&mut self, vs: &VectorSelector, ts: i64) -> Result<Vec<Elem>> {
        Ok(self
            .vector_select_with_time(vs, ts)?
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    /// An instant vector selector at each of `times` (increasing), in one pass over each
    /// series' samples, into `sink`.
    pub fn vector_select_steps(
        &mut self,
        vs: &VectorSelector,
        times: &[i64],
        sink: &mut impl StepSink,
    ) -> Result<()> {
        let at: Vec<i64> = times.iter().map(|&t| self.selector_time(vs, t)).collect();
        let (Some(&first), Some(&last)) = (at.first(), at.last()) else {
            return Ok(());
        };
        let lookback = self.opts.lookback_delta_ms;
        let data = self.fetch(vs)?;
        for (index, s) in data.iter().enumerate() {
            if index % DEADLINE_EVERY_SERIES == 0 {
                self.add_samples(0)?;
            }
            sink.series(&s.labels, false);
            let keep_after = last.saturating_sub(lookback);
            s.with_window(
                first.saturating_sub(lookback),
                last,
                keep_after,
                |samples| {
                    let mut next = 0;
                    for (step, &t) in at.iter().enumerate() {
                        next = advance(samples, next, t);
                        let Some(&(st, v)) = next.checked_sub(1).and_then(|i| samples.get(i))
                        else {
                            continue;
                        };
                        if st > t.saturating_sub(lookback) && !is_stale_nan(v) {
                            sink.point(step, 1, Some(v));
                        }
                    }
                },
            );
        }
        // And once more at the end of the batch.
        self.add_samples(0)?;
        Ok(())
    }

    /// A range function over the matrix selector `ms` at each of `times` (increasing), into
    /// `sink`: `f(window, window start, window end, step time)` over each series' non-empty
    /// windows (staleness markers left out), sliding over the series' samples once. Returns
    /// the series that had a non-empty window.
    pub fn matrix_select_steps(
        &mut self,
        ms: &MatrixSelector,
        times: &[i64],
        drop_name: bool,
        sink: &mut impl StepSink,
        mut f: impl FnMut(&[(i64, f64)], i64, i64, i64) -> Option<f64>,
    ) -> Result<Vec<Rc<Labels>>> {
        let range = duration_ms(&ms.range);
        let ends: Vec<i64> = times
            .iter()
            .map(|&t| self.selector_time(&ms.vs, t))
            .collect();
        let mut selected = Vec::new();
        let (Some(&first), Some(&last)) = (ends.first(), ends.last()) else {
            return Ok(selected);
        };
        let data = self.fetch(&ms.vs)?;
        let mut points = self.point_buffers.pop().unwrap_or_default();
        for (index, s) in data.iter().enumerate() {
            if index % DEADLINE_EVERY_SERIES == 0 {
                self.add_samples(0)?;
            }
            points.clear();
            let keep_after = last.saturating_sub(range);
            s.window_into(first.saturating_sub(range), last, keep_after, &mut points);
            if points.is_empty() {
                continue;
            }
            sink.series(&s.labels, drop_name);
            let (mut lo, mut hi) = (0, 0);
            let mut any = false;
            for (step, (&end, &ts)) in ends.iter().zip(times).enumerate() {
                let start = end.saturating_sub(range);
                lo = advance(&points, lo, start);
                hi = advance(&points, lo.max(hi), end);
                let window = &points[lo..hi];
                if window.is_empty() {
                    continue;
                }
                any = true;
                sink.point(step, window.len(), f(window, start, end, ts));
            }
            if any {
                selected.push(Rc::clone(&s.labels));
            }
        }
        points.clear();
        self.point_buffers.push(points);
        // And once more at the end of the batch.
        self.add_samples(0)?;
        Ok(selected)
    }

    fn matrix_select(&mut self, ms: &MatrixSelector, ts: i64) -> Result<RangeArg> {
        let end = self.selector_time(&ms.vs, ts);
        let start = end.saturating_sub(duration_ms(&ms.range));
        let data = self.fetch(&ms.vs)?;
        let mut series = Vec::new();
        let mut total = 0;
        for s in data.iter() {
            let mut points = self.point_buffers.pop().unwrap_or_default();
            s.window_into(start, end, start, &mut points);
            if points.is_empty() {
                self.point_buffers.push(points);
                continue;
            }
            total += points.len();
            series.push(RangeSeries {
                labels: Rc::clone(&s.labels),
                points,
                drop_name: false,
            });
        }
        self.add_samples(total)?;
        Ok(RangeArg { series, start, end })
    }

    fn subquery(&mut self, sq: &SubqueryExpr, ts: i64) -> Result<RangeArg> {
        let end = at_ms(&sq.at, self.start, self.end)
            .unwrap_or(ts)
            .saturating_sub(offset_ms(&sq.offset));
        let range = duration_ms(&sq.range);
        let step = sq
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|&s| s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms)
            .max(1);
        let start = end.saturating_sub(range);
        let mut t = step.saturating_mul(start / step);
        if t <= start {
            t = t.saturating_add(step);
        }
        let mut index: HashMap<Rc<Labels>, usize> = HashMap::new();
        let mut out: Vec<RangeSeries> = Vec::new();
        let mut total = 0;
        let cache_key = std::ptr::from_ref(sq) as usize;
        while t <= end {
            let cached = self
                .subquery_cache
                .get(&cache_key)
                .and_then(|steps| steps.get(&t))
                .cloned();
            let elems = match cached {
                Some(elems) => elems,
                None => {
                    let elems = Rc::new(match self.eval(&sq.expr, t)? {
                        Val::Vector(elems) => elems,
                        Val::Scalar(v) => vec![Elem {
                            labels: Rc::default(),
                            v,
                            drop_name: false,
                        }],
                        _ => {
                            return Err(Error::exec("subquery is only allowed on instant vectors"));
                        }
                    });
                    self.subquery_cache
                        .entry(cache_key)
                        .or_default()
                        .insert(t, Rc::clone(&elems));
                    elems
                }
            };
            total += elems.len();
            for e in elems.iter() {
                match index.get(&e.labels) {
                    Some(&i) => out[i].points.push((t, e.v)),
                    None => {
                        index.insert(Rc::clone(&e.labels), out.len());
                        out.push(RangeSeries {
                            labels: Rc::clone(&e.labels),
                            points: vec![(t, e.v)],
                            drop_name: e.drop_name,
                        });
                    }
                }
            }
            // Checks the deadline even when the inner expression selects nothing.
            self.add_samples(0)?;
            t = match t.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        // Steps at or before this window's start are not needed by later (forward) steps.
        if let Some(steps) = self.subquery_cache.get_mut(&cache_key) {
            *steps = steps.split_off(&start.saturating_add(1));
        }
        self.add_samples(total)?;
        Ok(RangeArg {
            series: out,
            start,
            end,
        })
    }

    /// The newest sample of each series `matchers` select in `(t - lookback, t]`, skipping
    /// series whose newest sample is a staleness marker: `(labels, sample time, value)`.
    pub fn select_latest(
        &mut self,
        matchers: &[sightline_core::matcher::Matcher],
        t: i64,
    ) -> Result<Vec<(Labels, i64, f64)>> {
        let mint = t
            .saturating_sub(self.opts.lookback_delta_ms)
            .saturating_add(1);
        let mut out = Vec::new();
        for s in self.querier.select(matchers, mint, t)? {
            if let Some((st, v)) = s.samples(mint, t).last()
                && !is_stale_nan(v)
            {
                out.push((s.labels, st, v));
            }
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    /// The time the first selector inside `expr` reads at for an evaluation at `ts`, with
    /// the `@` and `offset` of the subqueries above it and of the selector itself applied.
    pub fn reference_time(&self, expr: &Expr, ts: i64) -> Option<i64> {
        match expr {
            Expr::VectorSelector(vs) => Some(self.selector_time(vs, ts)),
            Expr::MatrixSelector(ms) => Some(self.selector_time(&ms.vs, ts)),
            Expr::Subquery(sq) => {
                let t = at_ms(&sq.at, self.start, self.end)
                    .unwrap_or(ts)
                    .saturating_sub(offset_ms(&sq.offset));
                self.reference_time(&sq.expr, t)
            }
            Expr::Aggregate(a) => a
                .param
                .as_ref()
                .and_then(|p| self.reference_time(p, ts))
                .or_else(|| self.reference_time(&a.expr, ts)),
            Expr::Unary(u) => self.reference_time(&u.expr, ts),
            Expr::Binary(b) => self
                .reference_time(&b.lhs, ts)
                .or_else(|| self.reference_time(&b.rhs, ts)),
            Expr::Paren(p) => self.reference_time(&p.expr, ts),
            Expr::Call(c) => c.args.args.iter().find_map(|a| self.reference_time(a, ts)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
        }
    }

    /// Evaluates a range-vector argument (a matrix selector or a subquery).
    pub fn range_arg(&mut self, expr: &Expr, ts: i64) -> Result<RangeArg> {
        match unwrap_parens(expr) {
            Expr::MatrixSelector(ms) => self.matrix_select(ms, ts),
            Expr::Subquery(sq) => self.subquery(sq, ts),
            _ => Err(Error::exec("expected a range vector argument")),
        }
    }

    /// Evaluates an argument that must be a scalar.
    pub fn scalar_arg(&mut self, expr: &Expr, ts: i64) -> Result<f64> {
        match self.eval(expr, ts)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(Error::exec("expected a scalar argument")),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn vector_arg(&mut self, expr: &Expr, ts: i64) -> Result<Vec<Elem>> {
        match self.eval(expr, ts)? {
            Val::Vector(v) => Ok(v),
            _ => Err(Error::exec("expected an instant vector argument")),
        }
    }

    /// Evaluates an argument that must be a string.
    pub fn string_arg(&mut self, expr: &Expr, ts: i64) -> Result<String> {
        match self.eval(expr, ts)? {
            Val::Str(s) => Ok(s),
            _ => Err(Error::exec("expected a string argument")),
        }
    }

    pub fn eval(&mut self, expr: &Expr, ts: i64) -> Result<Val> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(mut elems) => {
                    for e in &mut elems {
                        e.v = -e.v;
                        e.drop_name = true;
                    }
                    Ok(Val::Vector(elems))
                }
                _ => Err(Error::exec(
                    "unary expression only allowed on expressions of type scalar or vector",
                )),
            },
            Expr::VectorSelector(vs) => {
                let batch = self.batched(key(vs), ts, |ev, times| {
                    let mut elems = StepElems::new(times.len());
                    ev.vector_select_steps(vs, times, &mut elems)?;
                    Ok(elems.into_steps())
                })?;
                match batch {
                    Some(elems) => Ok(Val::Vector(elems)),
                    None => Ok(Val::Vector(self.vector_select(vs, ts)?)),
                }
            }
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.matrix_select(ms, ts)?.series)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, ts)?.series)),
            Expr::Binary(b) => binary::eval(self, b, ts),
            Expr::Aggregate(a) => {
                let node = std::ptr::from_ref(a) as usize;
                let batch =
                    self.batched(node, ts, |ev, times| aggregate::eval_steps(ev, a, times))?;
                match batch {
                    Some(elems) => Ok(Val::Vector(elems)),
                    None => aggregate::eval(self, a, ts),
                }
            }
            Expr::Call(call) => {
                if range_functions::handles(call.func.name) {
                    let node = std::ptr::from_ref(call) as usize;
                    let batch = self.batched(node, ts, |ev, times| {
                        let mut elems = StepElems::new(times.len());
                        range_functions::eval_steps(ev, call, times, &mut elems)?;
                        Ok(elems.into_steps())
                    })?;
                    match batch {
                        Some(elems) => Ok(Val::Vector(elems)),
                        None => range_functions::eval(self, call, ts),
                    }
                } else {
                    instant_functions::eval(self, call, ts)
                }
            }
            Expr::Extension(_) => Err(Error::unsupported("extension expressions")),
        }
    }
}

/// A range query's result being assembled step by step.
#[derive(Default)]
struct RangeOutput {
    /// Output series by the evaluation's labels and name-drop flag (no copy per step).
    by_key: HashMap<(Rc<Labels>, bool), usize>,
    /// Output series by final labels: different keys may end up equal after name removal.
    by_final: HashMap<Labels, usize>,
    series: Vec<Series>,
    points: usize,
}

impl RangeOutput {
    fn push(&mut self, labels: Rc<Labels>, drop_name: bool, t: i64, v: f64) -> Result<()> {
        let key = (labels, drop_name);
        let idx = match self.by_key.get(&key) {
            Some(&i) => i,
            None => {
                let metric = finish_labels(Rc::clone(&key.0), drop_name);
                let i = match self.by_final.get(&metric) {
                    Some(&i) => i,
                    None => {
                        self.by_final.insert(metric.clone(), self.series.len());
                        self.series.push(Series {
                            metric,
                            points: Vec::new(),
                        });
                        self.series.len() - 1
                    }
                };
                self.by_key.insert(key, i);
                i
            }
        };
        let points = &mut self.series[idx].points;
        if points.last().is_some_and(|p| p.0 == t) {
            return Err(duplicate_labelset());
        }
        points.push((t, v));
        self.points += 1;
        Ok(())
    }
}

/// Labels removed together with the metric name: the name and the type-and-unit metadata
/// labels (`__type__`, `__unit__`), as Prometheus's `DropReserved` does.
pub(crate) fn is_name_label(name: &str) -> bool {
    name == METRIC_NAME || name == "__type__" || name == "__unit__"
}

/// Drops the metric name where evaluation asked for it.
pub(crate) fn finish_labels(labels: Rc<Labels>, drop_name: bool) -> Labels {
    if drop_name {
        labels.without(is_name_label)
    } else {
        Rc::unwrap_or_clone(labels)
    }
}

fn finish_vector(elems: Vec<Elem>, ts: i64) -> Result<Vec<Sample>> {
    let out: Vec<Sample> = elems
        .into_iter()
        .map(|e| Sample {
            metric: finish_labels(e.labels, e.drop_name),
            t: ts,
            v: e.v,
        })
        .collect();
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for s in &out {
        if !seen.insert(&s.metric) {
            return Err(duplicate_labelset());
        }
    }
    Ok(out)
}

fn check_unique_series(series: &[Series]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    for s in series {
        if !seen.insert(&s.metric) {
            return Err(duplicate_labelset());
        }
    }
    Ok(())
}

pub(crate) fn duplicate_labelset() -> Error {
    Error::exec("vector cannot contain metrics with the same labelset")
}

/// Fails when two elements of a vector share a label set (after name removal).
pub(crate) fn check_unique(elems: &[Elem]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(elems.len());
    for e in elems {
        let labels = if e.drop_name {
            e.labels.without(is_name_label)
        } else {
            Labels::clone(&e.labels)
        };
        if !seen.insert(labels) {
            return Err(duplicate_labelset());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Stored, advance};
    use crate::chunk::XorAppender;
    use crate::storage::ChunkMeta;
    use sightline_core::labels::Labels;

    /// A series of one sample a second from 0 to 299 s, in chunks of 120 samples.
    fn stored(fetched_until: i64) -> Stored {
        let chunks = (0..300_i64)
            .collect::<Vec<_>>()
            .chunks(120)
            .map(|seconds| {
                let mut appender = XorAppender::new();
                for &s in seconds {
                    appender.append(s * 1000, s as f64).expect("in order");
                }
                ChunkMeta {
                    min_time: seconds[0] * 1000,
                    max_time: seconds[seconds.len() - 1] * 1000,
                    chunk: appender.finish().into(),
                }
            })
            .collect();
        Stored::new(Labels::default(), chunks, fetched_until)
    }

    /// Windows before the end of the fetched range keep their decoded samples for the next
    /// one; the window that reaches it lets them go, and a window after that still answers.
    #[test]
    fn the_last_window_lets_the_decoded_samples_go() {
        let series = stored(299_000);
        assert_eq!(series.last_in(0, 150_000), Some((150_000, 150.0)));
        assert!(series.buffer.borrow().samples.len() >= 120);
        assert_eq!(series.last_in(0, 299_000), Some((299_000, 299.0)));
        let buffer = series.buffer.borrow();
        assert_eq!(buffer.samples.capacity(), 0);
        assert_eq!((buffer.start, buffer.next_chunk), (0, 0));
        drop(buffer);
        let mut window = Vec::new();
        series.window_into(100_000, 110_000, 100_000, &mut window);
        assert_eq!(window.len(), 10);
        assert_eq!(window[0], (101_000, 101.0));
    }

    /// `advance` finds what a binary search over the rest finds, from every start and for
    /// targets between, on and after the samples (short and long jumps alike).
    #[test]
    fn advance_agrees_with_a_binary_search() {
        let samples: Vec<(i64, f64)> = (0..200).map(|i| (i * 10 + i % 3, 0.0)).collect();
        for from in 0..=samples.len() {
            let lowest = samples.get(from).map_or(i64::MAX, |s| s.0) - 1;
            for t in (-5..2_100).step_by(7).filter(|&t| t >= lowest) {
                let expected = from + samples[from..].partition_point(|&(st, _)| st <= t);
                assert_eq!(advance(&samples, from, t), expected, "from {from}, t {t}");
            }
        }
        assert_eq!(advance(&[], 0, 5), 0);
    }
}
