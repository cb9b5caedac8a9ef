//! Aggregation operators: `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `count_values`, `limitk` and `limit_ratio`, with `by` and
//! `without`.
//!
//! Follows `aggregation()` / `aggregationK()` / `aggregationCountValues()` of Prometheus's
//! `promql/engine.go`: sums use Kahan compensation, `avg` switches to an incremental mean
//! when the plain sum overflows, `stddev`/`stdvar` use Welford's method, `min`/`max` replace
//! a NaN with any number, `topk`/`bottomk` prefer numbers over NaN and return each group
//! ordered (descending for `topk`), `without` always removes `__name__`. Groups come out in
//! the order they were first seen. `limit_ratio` picks series by a hash of their label set
//! (Prometheus's xxhash-based choice is not reproduced bit for bit: the same ratio selects a
//! stable, but possibly different, subset).

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use sightline_core::labels::Labels;

use super::annotations;
use super::error::{Error, Result};
use super::eval::{Elem, Evaluator, StepResults, StepSink, Val, is_name_label};
use super::parser::unwrap_parens;
use super::range_functions;
use super::value::format_value;

/// The hasher of tables keyed by addresses, looked up per element and step: foldhash's
/// fast variant (not DoS-resistant, which addresses do not need).
type FastHash = foldhash::fast::RandomState;

/// Kahan-compensated `sum + inc`: returns the new sum and compensation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `sort.Float64s` order: NaN first, then ascending.
pub(crate) fn sort_floats(values: &mut [f64]) {
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    sort_floats(values);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Mean of values as Prometheus's `avg` computes it (see [`Folded`]).
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut folded = Folded::default();
    values.for_each(|v| folded.add(Fold::Avg, v));
    folded.result(Fold::Avg)
}

/// The aggregations that fold a group's values one at a time, in input order, into a
/// fixed-size state: these can take their input series by series for many steps at once
/// ([`eval_steps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

impl Fold {
    fn of(op: &str) -> Option<Fold> {
        Some(match op {
            "sum" => Fold::Sum,
            "avg" => Fold::Avg,
            "min" => Fold::Min,
            "max" => Fold::Max,
            "count" => Fold::Count,
            "group" => Fold::Group,
            "stddev" => Fold::Stddev,
            "stdvar" => Fold::Stdvar,
            _ => return None,
        })
    }
}

/// One group's state under a [`Fold`], small (32 bytes) because a batched aggregation holds
/// one per group and step: a Kahan sum and its compensation (`a`, `b`); for `avg` that sum
/// until it overflows, then Prometheus's incremental mean and its compensation; the min or
/// max (`a`); or Welford's mean and sum of squared deviations (`a`, `b`).
#[derive(Clone, Copy, Debug, Default)]
struct Folded {
    a: f64,
    b: f64,
    /// Values so far.
    count: f64,
    /// `avg` switched to the incremental mean.
    incremental: bool,
    /// Whether a value marked for name removal went in.
    drop_name: bool,
}

impl Folded {
    fn add(&mut self, fold: Fold, v: f64) {
        self.count += 1.0;
        match fold {
            Fold::Sum => (self.a, self.b) = kahan_inc(v, self.a, self.b),
            Fold::Avg => self.add_to_mean(v),
            Fold::Min => {
                if self.count == 1.0 || self.a > v || self.a.is_nan() {
                    self.a = v;
                }
            }
            Fold::Max => {
                if self.count == 1.0 || self.a < v || self.a.is_nan() {
                    self.a = v;
                }
            }
            Fold::Count | Fold::Group => {}
            Fold::Stddev | Fold::Stdvar => {
                let delta = v - self.a;
                self.a += delta / self.count;
                self.b += delta * (v - self.a);
            }
        }
    }

    /// `avg`'s step: a Kahan sum while it stays finite, then an incremental mean.
    fn add_to_mean(&mut self, v: f64) {
        let count = self.count;
        if !self.incremental {
            let (sum, c) = kahan_inc(v, self.a, self.b);
            if !sum.is_infinite() || v.is_infinite() {
                (self.a, self.b) = (sum, c);
                return;
            }
            self.incremental = true;
            self.a /= count - 1.0;
            self.b /= count - 1.0;
        }
        if self.a.is_infinite() {
            if v.is_infinite() && (self.a > 0.0) == (v > 0.0) {
                return;
            }
            if !v.is_infinite() && !v.is_nan() {
                return;
            }
        }
        let q = (count - 1.0) / count;
        (self.a, self.b) = kahan_inc(v / count, q * self.a, q * self.b);
    }

    fn result(&self, fold: Fold) -> f64 {
        match fold {
            Fold::Sum if self.a.is_infinite() => self.a,
            Fold::Sum => self.a + self.b,
            Fold::Avg if self.incremental => self.a + self.b,
            Fold::Avg => (self.a + self.b) / self.count,
            Fold::Min | Fold::Max => self.a,
            Fold::Count => self.count,
            Fold::Group => 1.0,
            Fold::Stddev => (self.b / self.count).sqrt(),
            Fold::Stdvar => self.b / self.count,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Folded>() <= 32);

/// The group key of a sample's labels.
fn group_labels(labels: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(names)) => {
            labels.without(|n| !names.labels.iter().any(|l| l == n))
        }
        Some(LabelModifier::Exclude(names)) => {
            labels.without(|n| is_name_label(n) || names.labels.iter().any(|l| l == n))
        }
    }
}

/// The group keys an aggregation computed, remembered across steps: its input series are
/// mostly the same label sets (shared, not copied) at every step, so each one's key is
/// computed once per query instead of once per step. Equal keys are one shared value, so
/// grouping compares addresses rather than label sets.
#[derive(Debug, Default)]
pub(crate) struct GroupKeys {
    /// Input label set's address → the input (kept alive so the address stays its own) and
    /// its group key. Looked up for every element at every step: a fast hash.
    by_input: HashMap<usize, (Rc<Labels>, Rc<Labels>), FastHash>,
    /// Every distinct key.
    interned: HashMap<Labels, Rc<Labels>>,
}

impl GroupKeys {
    /// Starts a step with `inputs` elements; forgets everything when the remembered inputs
    /// far outnumber them (inputs that are new label sets at every step), bounding memory.
    fn begin_step(&mut self, inputs: usize) {
        if self.by_input.len() > 4 * inputs.max(1024) {
            self.by_input.clear();
            self.interned.clear();
        }
    }

    fn key(&mut self, input: &Rc<Labels>, modifier: &Option<LabelModifier>) -> Rc<Labels> {
        let address = Rc::as_ptr(input) as usize;
        if let Some((_, key)) = self.by_input.get(&address) {
            return Rc::clone(key);
        }
        let labels = group_labels(input, modifier);
        let key = match self.interned.get(&labels) {
            Some(key) => Rc::clone(key),
            None => {
                let key = Rc::new(labels.clone());
                self.interned.insert(labels, Rc::clone(&key));
                key
            }
        };
        self.by_input
            .insert(address, (Rc::clone(input), Rc::clone(&key)));
        key
    }
}

/// Groups elements by key, in order of first appearance. With delayed name removal a
/// `by (__name__)` group keeps the name; the group's result drops it if any member was
/// marked to (see [`group_drops_name`]).
fn group(
    keys: &mut GroupKeys,
    elems: Vec<Elem>,
    modifier: &Option<LabelModifier>,
) -> Vec<(Labels, Vec<Elem>)> {
    if modifier.is_none() {
        // No `by` or `without`: one group of everything, keyed by the empty label set.
        return if elems.is_empty() {
            Vec::new()
        } else {
            vec![(Labels::new(), elems)]
        };
    }
    keys.begin_step(elems.len());
    let mut index: HashMap<usize, usize, FastHash> = HashMap::default();
    let mut groups: Vec<(Rc<Labels>, Vec<Elem>)> = Vec::new();
    for e in elems {
        let key = keys.key(&e.labels, modifier);
        match index.get(&(Rc::as_ptr(&key) as usize)) {
            Some(&i) => groups[i].1.push(e),
            None => {
                index.insert(Rc::as_ptr(&key) as usize, groups.len());
                groups.push((key, vec![e]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, elems)| (Labels::clone(&key), elems))
        .collect()
}

fn k_param(v: f64) -> Result<i64> {
    if v.is_nan() {
        return Err(Error::exec("Parameter value is NaN"));
    }
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        return Err(Error::exec(format!("Scalar value {v} overflows int64")));
    }
    Ok(v as i64)
}

fn out(labels: Labels, v: f64) -> Elem {
    Elem {
        labels: labels.into(),
        v,
        drop_name: false,
    }
}

/// Whether a group's result must still lose its metric name.
fn group_drops_name(key: &Labels, elems: &[Elem]) -> bool {
    key.metric_name().is_some() && elems.iter().any(|e| e.drop_name)
}

/// Whether `agg` can be evaluated for many steps at once ([`eval_steps`]): a folding
/// aggregation ([`Fold`]) directly over an instant selector or a batchable range function.
pub(crate) fn batchable(agg: &AggregateExpr) -> bool {
    agg.param.is_none()
        && Fold::of(&agg.op.to_string()).is_some()
        && match unwrap_parens(&agg.expr) {
            Expr::VectorSelector(_) => true,
            Expr::Call(call) => range_functions::batchable(call),
            _ => false,
        }
}

/// A [`batchable`] aggregation at each of `times` (increasing): its input goes series by
/// series into the groups' states for all the steps, so each input series is looked up
/// once per batch instead of once per step, and no element is built per series and step.
/// Results are those of [`eval`] at each time, in the same order: each group folds its
/// values in input order, and a step's groups come out in order of their first input
/// series at that step.
pub(crate) fn eval_steps(
    ev: &mut Evaluator<'_>,
    agg: &AggregateExpr,
    times: &[i64],
) -> Result<StepResults> {
    let op = agg.op.to_string();
    let fold = Fold::of(&op).ok_or_else(|| Error::unsupported(format!("aggregation {op:?}")))?;
    let node = std::ptr::from_ref(agg) as usize;
    let input = unwrap_parens(&agg.expr);
    // The states of the first batch fit the budget too: until it tells how many groups there
    // are, every input series counts as a group of its own.
    let mut times = times;
    if !ev.batch_steps.contains_key(&node) {
        let selector = match input {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::Call(call) => range_functions::range_selector(call),
            _ => None,
        };
        if let Some(vs) = selector {
            let series = ev.series_count(vs)?;
            times = &times[..times.len().min(steps_within_budget(series))];
        }
    }
    let mut sink = GroupSink {
        keys: ev.group_keys.remove(&node).unwrap_or_default(),
        modifier: &agg.modifier,
        fold,
        group_of_key: HashMap::default(),
        groups: Vec::new(),
        current: 0,
        series: 0,
        drops_name: false,
        samples: vec![0; times.len()],
    };
    let read = match input {
        Expr::VectorSelector(vs) => ev.vector_select_steps(vs, times, &mut sink),
        Expr::Call(call) => range_functions::eval_steps(ev, call, times, &mut sink),
        _ => Err(Error::exec(
            "aggregation input cannot be evaluated in steps",
        )),
    };
    ev.group_keys.insert(node, std::mem::take(&mut sink.keys));
    read?;
    // The next batch as long as the groups' states fit the budget: the longer a batch, the
    // fewer times each input series' samples are visited, one after another in memory.
    ev.batch_steps
        .insert(node, steps_within_budget(sink.groups.len()));
    Ok(sink.into_steps())
}

/// Bytes of group states a batched aggregation holds at most: about 4 MiB, so that
/// `count by (job)` over a day at a 1-minute step takes two batches, and an aggregation into
/// as many groups as it has series (`sum by (pod)`) holds no more than the elements of its
/// input would for a batch of steps.
const GROUP_STATES_BUDGET: usize = 4 << 20;

/// The steps whose states for `groups` groups fit [`GROUP_STATES_BUDGET`] (at least one).
fn steps_within_budget(groups: usize) -> usize {
    let state = std::mem::size_of::<Option<StepState>>();
    (GROUP_STATES_BUDGET / (groups.max(1) * state)).max(1)
}

/// A group's state at one step, with the ordinal of the input series that started it.
type StepState = (u32, Folded);

/// The groups of a batched aggregation, filled series by series.
struct GroupSink<'m> {
    keys: GroupKeys,
    modifier: &'m Option<LabelModifier>,
    fold: Fold,
    /// A group key's address → its index in `groups`.
    group_of_key: HashMap<usize, usize, FastHash>,
    /// Each group's key and its state at each step of the batch.
    groups: Vec<(Rc<Labels>, Vec<Option<StepState>>)>,
    /// The group of the series whose values arrive, its ordinal, and whether its values
    /// drop the metric name.
    current: usize,
    series: u32,
    drops_name: bool,
    /// Input samples read at each step.
    samples: Vec<usize>,
}

impl GroupSink<'_> {
    fn into_steps(self) -> StepResults {
        let mut started: Vec<Vec<(u32, Elem)>> = vec![Vec::new(); self.samples.len()];
        for (key, states) in self.groups {
            for (step, state) in started.iter_mut().zip(states) {
                if let Some((first, state)) = state {
                    step.push((
                        first,
                        Elem {
                            labels: Rc::clone(&key),
                            v: state.result(self.fold),
                            drop_name: state.drop_name && key.metric_name().is_some(),
                        },
                    ));
                }
            }
        }
        started
            .into_iter()
            .zip(self.samples)
            .map(|(mut step, samples)| {
                step.sort_unstable_by_key(|&(first, _)| first);
                (step.into_iter().map(|(_, elem)| elem).collect(), samples)
            })
            .collect()
    }
}

impl StepSink for GroupSink<'_> {
    // The inputs are the fetched series' own label sets, the same in every batch, so the
    // remembered keys stay bounded by them without `GroupKeys::begin_step`.
    fn series(&mut self, labels: &Rc<Labels>, drop_name: bool) {
        self.series = self.series.saturating_add(1);
        self.drops_name = drop_name;
        let key = self.keys.key(labels, self.modifier);
        let steps = self.samples.len();
        let groups = &mut self.groups;
        self.current = *self
            .group_of_key
            .entry(Rc::as_ptr(&key) as usize)
            .or_insert_with(|| {
                groups.push((key, vec![None; steps]));
                groups.len() - 1
            });
    }

    fn point(&mut self, step: usize, samples: usize, value: Option<f64>) {
        if let Some(count) = self.samples.get_mut(step) {
            *count += samples;
        }
        let Some(v) = value else {
            return;
        };
        if let Some(state) = self
            .groups
            .get_mut(self.current)
            .and_then(|(_, states)| states.get_mut(step))
        {
            let (_, state) = state.get_or_insert_with(|| (self.series, Folded::default()));
            state.add(self.fold, v);
            state.drop_name |= self.drops_name;
        }
    }
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, agg: &AggregateExpr, ts: i64) -> Result<Val> {
    let op = agg.op.to_string();
    let param = match &agg.param {
        Some(p) => Some(ev.eval(p, ts)?),
        None => None,
    };
    let input = ev.vector_arg(&agg.expr, ts)?;
    let node = std::ptr::from_ref(agg) as usize;
    let mut keys = ev.group_keys.remove(&node).unwrap_or_default();
    let result = aggregate(ev, agg, &op, param, input, &mut keys);
    ev.group_keys.insert(node, keys);
    result
}

/// `op` over `input`, grouped with the node's remembered `keys`.
fn aggregate(
    ev: &mut Evaluator<'_>,
    agg: &AggregateExpr,
    op: &str,
    param: Option<Val>,
    input: Vec<Elem>,
    keys: &mut GroupKeys,
) -> Result<Val> {
    let modifier = &agg.modifier;
    let scalar_param = || match &param {
        Some(Val::Scalar(v)) => Ok(*v),
        _ => Err(Error::exec(format!("expected a scalar parameter for {op}"))),
    };
    let mut result = Vec::new();
    if let Some(fold) = Fold::of(op) {
        for (key, elems) in group(keys, input, modifier) {
            let mut folded = Folded::default();
            for e in &elems {
                folded.add(fold, e.v);
            }
            let drop_name = group_drops_name(&key, &elems);
            result.push(Elem {
                labels: key.into(),
                v: folded.result(fold),
                drop_name,
            });
        }
        return Ok(Val::Vector(result));
    }
    match op {
        "quantile" => {
            let q = scalar_param()?;
            if let (Some(note), Some(node)) = (annotations::invalid_quantile(q), &agg.param) {
                ev.annotations.warn(note, node);
            }
            for (key, elems) in group(keys, input, modifier) {
                let mut values: Vec<f64> = elems.iter().map(|e| e.v).collect();
                let drop_name = group_drops_name(&key, &elems);
                result.push(Elem {
                    labels: key.into(),
                    v: quantile(q, &mut values),
                    drop_name,
                });
            }
        }
        "topk" | "bottomk" => {
            let k = k_param(scalar_param()?)?;
            if k < 1 {
                return Ok(Val::Vector(Vec::new()));
            }
            let top = op == "topk";
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            for (_, elems) in group(keys, input, modifier) {
                result.extend(first_k(elems, k, |a, b| {
                    use std::cmp::Ordering;
                    match (a.is_nan(), b.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ if top => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
                        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                    }
                }));
            }
        }
        "limitk" => {
            let k = k_param(scalar_param()?)?;
            if k < 1 {
                return Ok(Val::Vector(Vec::new()));
            }
            for (_, mut elems) in group(keys, input, modifier) {
                elems.truncate(usize::try_from(k).unwrap_or(usize::MAX));
                result.extend(elems);
            }
        }
        "limit_ratio" => {
            let r = scalar_param()?;
            if r.is_nan() {
                return Err(Error::exec("Ratio value is NaN"));
            }
            let capped = r.clamp(-1.0, 1.0);
            if let (true, Some(node)) = (capped != r, &agg.param) {
                ev.annotations
                    .warn(annotations::invalid_ratio(r, capped), node);
            }
            let r = capped;
            for e in input {
                let offset = label_hash_fraction(&e.labels);
                if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                    result.push(e);
                }
            }
        }
        "count_values" => {
            let label = match &param {
                Some(Val::Str(s)) => s.clone(),
                _ => return Err(Error::exec("expected a string parameter for count_values")),
            };
            if !is_valid_label_name(&label) {
                return Err(Error::exec(format!("invalid label name {label:?}")));
            }
            let mut index: HashMap<Labels, usize> = HashMap::new();
            for e in input {
                let mut key = group_labels(&e.labels, modifier);
                key.set(&label, &format_value(e.v));
                match index.get(&key) {
                    Some(&i) => {
                        let slot: &mut Elem = &mut result[i];
                        slot.v += 1.0;
                    }
                    None => {
                        index.insert(key.clone(), result.len());
                        result.push(out(key, 1.0));
                    }
                }
            }
        }
        other => return Err(Error::unsupported(format!("aggregation {other:?}"))),
    }
    Ok(Val::Vector(result))
}

/// The first `k` (at least 1) of `elems` in `order` of their values, ties in input order:
/// what a stable sort and a truncation give, without sorting the elements after the k-th.
fn first_k(
    elems: Vec<Elem>,
    k: usize,
    order: impl Fn(f64, f64) -> std::cmp::Ordering,
) -> Vec<Elem> {
    let mut indexed: Vec<(usize, Elem)> = elems.into_iter().enumerate().collect();
    let total = |a: &(usize, Elem), b: &(usize, Elem)| order(a.1.v, b.1.v).then(a.0.cmp(&b.0));
    if k < indexed.len() {
        indexed.select_nth_unstable_by(k - 1, total);
        indexed.truncate(k);
    }
    indexed.sort_unstable_by(total);
    indexed.into_iter().map(|(_, e)| e).collect()
}

/// Whether `name` is a valid Prometheus label name (legacy character set).
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A stable number in `[0, 1)` from a label set (FNV-1a over names and values).
fn label_hash_fraction(labels: &Labels) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in labels {
        for b in l
            .name
            .bytes()
            .chain([0xff])
            .chain(l.value.bytes())
            .chain([0xff])
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}
