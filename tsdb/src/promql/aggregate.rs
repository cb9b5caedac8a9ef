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

use promql_parser::parser::{AggregateExpr, LabelModifier};
use sightline_core::labels::Labels;

use super::annotations;
use super::error::{Error, Result};
use super::eval::{Elem, Evaluator, Val, is_name_label};
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

/// Mean of values with Kahan summation, switching to an incremental mean on overflow.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    let mut c = 0.0;
    let mut count = 0.0;
    let mut incremental = false;
    let mut mean = 0.0;
    let mut mc = 0.0;
    for f in values {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if !ns.is_infinite() || f.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            mc = c / (count - 1.0);
        }
        if mean.is_infinite() {
            if f.is_infinite() && (mean > 0.0) == (f > 0.0) {
                continue;
            }
            if !f.is_infinite() && !f.is_nan() {
                continue;
            }
        }
        let q = (count - 1.0) / count;
        (mean, mc) = kahan_inc(f / count, q * mean, q * mc);
    }
    if incremental {
        mean + mc
    } else {
        (sum + c) / count
    }
}

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
    match op {
        "sum" | "avg" | "min" | "max" | "count" | "group" | "stddev" | "stdvar" => {
            for (key, elems) in group(keys, input, modifier) {
                let values = elems.iter().map(|e| e.v);
                let v = match op {
                    "sum" => {
                        let (s, c) = values.fold((0.0, 0.0), |(s, c), v| kahan_inc(v, s, c));
                        if s.is_infinite() { s } else { s + c }
                    }
                    "avg" => mean(values),
                    "min" => values.fold(f64::NAN, |m, v| if m > v || m.is_nan() { v } else { m }),
                    "max" => values.fold(f64::NAN, |m, v| if m < v || m.is_nan() { v } else { m }),
                    "count" => elems.len() as f64,
                    "group" => 1.0,
                    _ => {
                        let mut count = 0.0;
                        let mut mean = 0.0;
                        let mut m2 = 0.0;
                        for v in values {
                            count += 1.0;
                            let delta = v - mean;
                            mean += delta / count;
                            m2 += delta * (v - mean);
                        }
                        let var = m2 / count;
                        if op == "stddev" { var.sqrt() } else { var }
                    }
                };
                let drop_name = group_drops_name(&key, &elems);
                result.push(Elem {
                    labels: key.into(),
                    v,
                    drop_name,
                });
            }
        }
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
