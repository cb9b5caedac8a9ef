//! Functions over instant vectors and scalars: math (`abs`, `ceil`, `exp`, `ln`, trig, …),
//! `clamp*`, `round`, `sgn`, `time`, `timestamp`, `vector`, `scalar`, date functions,
//! `label_replace`, `label_join`, `sort*`, `absent`, `histogram_quantile` over classic `le`
//! buckets.
//!
//! Follows Prometheus's `promql/functions.go` and `promql/quantile.go`: math functions and
//! `clamp` treat NaN as Go's `math.Min`/`math.Max` do (NaN wins); date functions read the
//! value as Unix seconds in UTC; `label_replace` anchors its regex (`^(?s:re)$`) and a
//! non-matching source leaves the series unchanged; `histogram_quantile` sorts buckets,
//! merges equal bounds, forces counts monotonic, needs a `+Inf` bucket and interpolates
//! linearly inside the chosen bucket; `sort_by_label` compares values in natural order.
//! Functions that only read native histograms (`histogram_count`, `histogram_sum`, …)
//! return nothing on float series, as upstream does.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{Call, Expr, VectorSelector};
use regex::Regex;
use sightline_core::labels::{Labels, METRIC_NAME};

use super::aggregate::is_valid_label_name;
use super::annotations;
use super::error::{Error, Result};
use super::eval::{Elem, Evaluator, Val, check_unique};
use super::parser::unwrap_parens;

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Labels `absent()` gives its result: the selector's equality matchers, except for names
/// matched more than once or by another operator.
pub(crate) fn absent_labels(vs: &VectorSelector) -> Labels {
    let mut labels = Labels::new();
    let mut seen = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let equal = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if equal && seen.insert(m.name.clone()) {
            labels.set(&m.name, &m.value);
        } else {
            labels.set(&m.name, "");
        }
    }
    labels
}

fn math(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

fn arg(call: &Call, i: usize) -> Result<&Expr> {
    call.args
        .args
        .get(i)
        .map(|b| &**b)
        .ok_or_else(|| Error::exec(format!("missing argument {} to {}", i + 1, call.func.name)))
}

fn mapped(elems: Vec<Elem>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(
        elems
            .into_iter()
            .map(|mut e| {
                e.v = f(e.v);
                e.drop_name = true;
                e
            })
            .collect(),
    )
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, call: &Call, ts: i64) -> Result<Val> {
    let name = call.func.name;
    if let Some(f) = math(name) {
        let v = ev.vector_arg(arg(call, 0)?, ts)?;
        return Ok(mapped(v, f));
    }
    match name {
        "time" => Ok(Val::Scalar(ts as f64 / 1000.0)),
        "min_of" | "max_of" => {
            let mut acc: Option<f64> = None;
            for e in &call.args.args {
                let v = ev.scalar_arg(e, ts)?;
                acc = Some(match acc {
                    None => v,
                    Some(a) if name == "min_of" => go_min(a, v),
                    Some(a) => go_max(a, v),
                });
            }
            Ok(Val::Scalar(acc.unwrap_or(f64::NAN)))
        }
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "start" => Ok(Val::Scalar(ev.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ev.end as f64 / 1000.0)),
        "range" => Ok(Val::Scalar(ev.end.saturating_sub(ev.start) as f64 / 1000.0)),
        "step" => Ok(Val::Scalar(ev.step as f64 / 1000.0)),
        "vector" => {
            let v = ev.scalar_arg(arg(call, 0)?, ts)?;
            Ok(Val::Vector(vec![Elem {
                labels: Labels::new().into(),
                v,
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "round" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            let to_nearest = match call.args.args.get(1) {
                Some(e) => ev.scalar_arg(e, ts)?,
                None => 1.0,
            };
            let inverse = 1.0 / to_nearest;
            Ok(mapped(v, |f| (f * inverse + 0.5).floor() / inverse))
        }
        "clamp" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            let min = ev.scalar_arg(arg(call, 1)?, ts)?;
            let max = ev.scalar_arg(arg(call, 2)?, ts)?;
            if max < min {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(mapped(v, |f| go_max(min, go_min(max, f))))
        }
        "clamp_min" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            let min = ev.scalar_arg(arg(call, 1)?, ts)?;
            Ok(mapped(v, |f| go_max(min, f)))
        }
        "clamp_max" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            let max = ev.scalar_arg(arg(call, 1)?, ts)?;
            Ok(mapped(v, |f| go_min(max, f)))
        }
        "timestamp" => {
            let a = arg(call, 0)?;
            if let Expr::VectorSelector(vs) = unwrap_parens(a) {
                let elems = ev.vector_select_with_time(vs, ts)?;
                return Ok(Val::Vector(
                    elems
                        .into_iter()
                        .map(|(mut e, t)| {
                            e.v = t as f64 / 1000.0;
                            e.drop_name = true;
                            e
                        })
                        .collect(),
                ));
            }
            let v = ev.vector_arg(a, ts)?;
            Ok(mapped(v, |_| ts as f64 / 1000.0))
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => {
            let v = match call.args.args.first() {
                Some(e) => ev.vector_arg(e, ts)?,
                None => vec![Elem {
                    labels: Labels::new().into(),
                    v: ts as f64 / 1000.0,
                    drop_name: false,
                }],
            };
            Ok(mapped(v, |f| date_part(name, f)))
        }
        "absent" => {
            let a = arg(call, 0)?;
            let v = ev.vector_arg(a, ts)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            let labels = match unwrap_parens(a) {
                Expr::VectorSelector(vs) => absent_labels(vs),
                _ => Labels::new(),
            };
            Ok(Val::Vector(vec![Elem {
                labels: labels.into(),
                v: 1.0,
                drop_name: false,
            }]))
        }
        "sort" | "sort_desc" => {
            note_sort_in_range_query(ev, call);
            let mut v = ev.vector_arg(arg(call, 0)?, ts)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ if desc => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
            });
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            note_sort_in_range_query(ev, call);
            let mut v = ev.vector_arg(arg(call, 0)?, ts)?;
            let mut names = Vec::new();
            for e in call.args.args.iter().skip(1) {
                names.push(ev.string_arg(e, ts)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let mut ord = Ordering::Equal;
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x != y {
                        ord = natural_cmp(x, y);
                        break;
                    }
                }
                if ord == Ordering::Equal {
                    ord = a.labels.cmp(&b.labels);
                }
                if desc { ord.reverse() } else { ord }
            });
            Ok(Val::Vector(v))
        }
        "info" => super::info::eval(ev, call, ts),
        "label_replace" => label_replace(ev, call, ts),
        "label_join" => label_join(ev, call, ts),
        "histogram_quantile" => {
            let q = ev.scalar_arg(arg(call, 0)?, ts)?;
            note_invalid_quantile(ev, q, arg(call, 0)?);
            let v = ev.vector_arg(arg(call, 1)?, ts)?;
            let mut out = Vec::new();
            for (labels, mut buckets, drop_name) in classic_groups(ev, v, arg(call, 1)?) {
                let (v, forced) = bucket_quantile(q, &mut buckets);
                note_forced_monotonicity(ev, forced, &labels, drop_name, arg(call, 1)?);
                out.push(Elem {
                    labels: labels.into(),
                    v,
                    drop_name: true,
                });
            }
            Ok(Val::Vector(out))
        }
        "histogram_quantiles" => {
            let v = ev.vector_arg(arg(call, 0)?, ts)?;
            let label = ev.string_arg(arg(call, 1)?, ts)?;
            if !is_valid_label_name(&label) {
                return Err(Error::exec(format!(
                    "invalid quantile label name in histogram_quantiles(): {label}"
                )));
            }
            let mut qs = Vec::new();
            for e in call.args.args.iter().skip(2) {
                let q = ev.scalar_arg(e, ts)?;
                note_invalid_quantile(ev, q, e);
                qs.push(q);
            }
            if v.iter().any(|e| e.labels.get(&label).is_some()) {
                return Err(Error::exec(format!(
                    "histogram_quantiles(): input series already have the label {label:?}"
                )));
            }
            let mut out = Vec::new();
            for (labels, buckets, drop_name) in classic_groups(ev, v, arg(call, 0)?) {
                for &q in &qs {
                    let (v, forced) = bucket_quantile(q, &mut buckets.clone());
                    note_forced_monotonicity(ev, forced, &labels, drop_name, arg(call, 0)?);
                    let mut labels = labels.clone();
                    labels.set(&label, &quantile_label(q));
                    out.push(Elem {
                        labels: labels.into(),
                        v,
                        drop_name: true,
                    });
                }
            }
            Ok(Val::Vector(out))
        }
        "histogram_fraction" => {
            let lower = ev.scalar_arg(arg(call, 0)?, ts)?;
            let upper = ev.scalar_arg(arg(call, 1)?, ts)?;
            let v = ev.vector_arg(arg(call, 2)?, ts)?;
            Ok(Val::Vector(
                classic_groups(ev, v, arg(call, 2)?)
                    .into_iter()
                    .map(|(labels, mut buckets, _)| Elem {
                        labels: labels.into(),
                        v: bucket_fraction(lower, upper, &mut buckets),
                        drop_name: true,
                    })
                    .collect(),
            ))
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Native-histogram functions ignore float samples; only evaluate for errors.
            for e in &call.args.args {
                ev.eval(e, ts)?;
            }
            Ok(Val::Vector(Vec::new()))
        }
        other => Err(Error::unsupported(format!("function {other}()"))),
    }
}

/// Warns that `sort*` has no effect when the query is a range query.
fn note_sort_in_range_query(ev: &mut Evaluator<'_>, call: &Call) {
    if ev.start != ev.end {
        ev.annotations
            .warn(annotations::sort_in_range_query(), call);
    }
}

fn label_replace(ev: &mut Evaluator<'_>, call: &Call, ts: i64) -> Result<Val> {
    let v = ev.vector_arg(arg(call, 0)?, ts)?;
    let dst = ev.string_arg(arg(call, 1)?, ts)?;
    let repl = ev.string_arg(arg(call, 2)?, ts)?;
    let src = ev.string_arg(arg(call, 3)?, ts)?;
    let re = ev.string_arg(arg(call, 4)?, ts)?;
    let regex = Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
        Error::exec(format!(
            "invalid regular expression in label_replace(): {re}: {e}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(Error::exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let value = e.labels.get(&src).unwrap_or("").to_owned();
        if let Some(caps) = regex.captures(&value) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            Rc::make_mut(&mut e.labels).set(&dst, &res);
            if dst == METRIC_NAME {
                e.drop_name = false;
            }
        }
        out.push(e);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

fn label_join(ev: &mut Evaluator<'_>, call: &Call, ts: i64) -> Result<Val> {
    let v = ev.vector_arg(arg(call, 0)?, ts)?;
    let dst = ev.string_arg(arg(call, 1)?, ts)?;
    let sep = ev.string_arg(arg(call, 2)?, ts)?;
    let mut srcs = Vec::new();
    for e in call.args.args.iter().skip(3) {
        let s = ev.string_arg(e, ts)?;
        if !is_valid_label_name(&s) {
            return Err(Error::exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(Error::exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let joined = srcs
            .iter()
            .map(|s| e.labels.get(s).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        Rc::make_mut(&mut e.labels).set(&dst, &joined);
        if dst == METRIC_NAME {
            e.drop_name = false;
        }
        out.push(e);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

/// Compares strings with runs of digits compared as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        match (x.is_empty(), y.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let xd = x.starts_with(|c: char| c.is_ascii_digit());
        let yd = y.starts_with(|c: char| c.is_ascii_digit());
        let split = |s: &str, digits: bool| {
            s.find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(s.len())
        };
        let (xi, yi) = (split(x, xd), split(y, yd));
        let (xc, yc) = (&x[..xi], &y[..yi]);
        let ord = if xd && yd {
            let (xt, yt) = (xc.trim_start_matches('0'), yc.trim_start_matches('0'));
            xt.len()
                .cmp(&yt.len())
                .then_with(|| xt.cmp(yt))
                .then_with(|| xc.len().cmp(&yc.len()))
        } else {
            xc.cmp(yc)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        x = &x[xi..];
        y = &y[yi..];
    }
}

/// `(year, month 1-12, day 1-31)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, f: f64) -> f64 {
    let secs = f as i64;
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let v = match name {
        "days_in_month" => month_days[(m - 1) as usize],
        "day_of_month" => d,
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_year" => month_days[..(m - 1) as usize].iter().sum::<i64>() + d,
        "hour" => in_day / 3600,
        "minute" => in_day % 3600 / 60,
        "month" => m,
        _ => y,
    };
    v as f64
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Prometheus's `BucketQuantile` over `(upper bound, cumulative count)` pairs, and whether
/// decreasing counts had to be raised to make them monotonic.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut buckets) = prepare_buckets(buckets) else {
        return (f64::NAN, false);
    };
    // Force monotonic counts, ignoring tiny float noise.
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) || curr < prev {
            forced |= !almost_equal(prev, curr, 1e-12);
            b.1 = prev;
            continue;
        }
        prev = curr;
    }
    (interpolated_quantile(q, &buckets), forced)
}

/// The quantile's estimate over monotonic buckets ending in `+Inf`.
fn interpolated_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let n = buckets.len();
    let observations = buckets[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].partition_point(|&(_, c)| c < rank);
    if b == n - 1 {
        return buckets[n - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Warns about a quantile outside `[0, 1]` given as `node`.
fn note_invalid_quantile(ev: &mut Evaluator<'_>, q: f64, node: &Expr) {
    if let Some(note) = annotations::invalid_quantile(q) {
        ev.annotations.warn(note, node);
    }
}

/// Notes that the buckets of the histogram `labels` (without `le`) had to be made monotonic.
/// `drop_name`: evaluation already dropped the metric name (e.g. after `rate`).
fn note_forced_monotonicity(
    ev: &mut Evaluator<'_>,
    forced: bool,
    labels: &Labels,
    drop_name: bool,
    node: &Expr,
) {
    if forced {
        let note = annotations::forced_monotonicity(metric_name(labels, drop_name));
        ev.annotations.info(note, node);
    }
}

/// The metric name as annotations name it: empty once evaluation dropped it.
fn metric_name(labels: &Labels, drop_name: bool) -> &str {
    if drop_name {
        ""
    } else {
        labels.get(METRIC_NAME).unwrap_or("")
    }
}

/// A quantile as a label value: shortest decimal, with `.0` on whole numbers (`0.0`, `0.25`).
fn quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        super::value::format_value(q)
    }
}

/// One classic histogram: its labels without `le`, its `(upper bound, count)` buckets, and
/// whether evaluation dropped its metric name.
type BucketGroup = (Labels, Vec<(f64, f64)>, bool);

/// Classic histogram buckets grouped by series (labels without `le`); series without a
/// parseable `le` are left out with a warning about `node`, the buckets argument.
fn classic_groups(ev: &mut Evaluator<'_>, v: Vec<Elem>, node: &Expr) -> Vec<BucketGroup> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<BucketGroup> = Vec::new();
    for e in v {
        let le = e.labels.get("le");
        let Some(ub) = le.and_then(parse_le) else {
            let name = metric_name(&e.labels, e.drop_name);
            let note = annotations::bad_bucket_label(name, le.unwrap_or(""));
            ev.annotations.warn(note, node);
            continue;
        };
        let key = e.labels.without(|n| n == "le");
        match index.get(&key) {
            Some(&i) => {
                groups[i].1.push((ub, e.v));
                groups[i].2 |= e.drop_name;
            }
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![(ub, e.v)], e.drop_name));
            }
        }
    }
    groups
}

/// Sorts buckets, requires a `+Inf` bucket and merges equal bounds.
fn prepare_buckets(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return None,
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    Some(merged)
}

/// Prometheus's `BucketFraction`: the estimated share of observations in `[lower, upper]`,
/// interpolating linearly inside finite buckets; the first bucket starts at 0 when its bound
/// is positive, and an infinite-width bucket contributes nothing to a partial overlap.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(buckets) = prepare_buckets(buckets) else {
        return f64::NAN;
    };
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(upper_bound, bucket_count)) in buckets.iter().enumerate() {
        let lower_bound = if i > 0 {
            buckets[i - 1].0
        } else if upper_bound > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                bucket_count
            } else if upper_bound == f64::INFINITY {
                rank
            } else {
                rank + (bucket_count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = bucket_count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Parses an `le` value as Go's `strconv.ParseFloat` would (`+Inf`, `Inf`, decimals).
fn parse_le(s: &str) -> Option<f64> {
    match s.trim().to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        t => t.parse().ok(),
    }
}
