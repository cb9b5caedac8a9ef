//! Functions over range vectors: `rate`, `increase`, `delta` (with Prometheus's
//! extrapolation), `irate`, `idelta`, the `*_over_time` family, `changes`, `resets`,
//! `deriv`, `predict_linear`, `double_exponential_smoothing` (and its old name
//! `holt_winters`), `absent_over_time`.
//!
//! Follows Prometheus's `promql/functions.go`: `extrapolatedRate` extrapolates to the window
//! edges when the first/last sample is within 1.1 average intervals of them (else by half an
//! interval), and for counters never below zero; `deriv` and `predict_linear` use a
//! Kahan-summed least-squares fit; `stddev_over_time` uses Welford's method. Each function
//! drops the metric name except `last_over_time` and `first_over_time`.

use std::rc::Rc;

use promql_parser::parser::{Call, Expr, VectorSelector};

use sightline_core::labels::{Labels, METRIC_NAME};

use super::aggregate::{kahan_inc, mean, quantile};
use super::annotations;
use super::error::{Error, Result};
use super::eval::{Elem, Evaluator, RangeArg, StepSink, Val};
use super::instant_functions::absent_labels;
use super::parser::unwrap_parens;

const FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "changes",
    "resets",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
    "holt_winters",
    "absent_over_time",
];

/// Whether `name` is a range-vector function of this module.
pub(crate) fn handles(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// The position of the range-vector argument of function `name`.
fn range_index(name: &str) -> usize {
    if name == "quantile_over_time" { 1 } else { 0 }
}

/// The selector of `call`'s range-vector argument, when that is a matrix selector.
pub(crate) fn range_selector(call: &Call) -> Option<&VectorSelector> {
    match unwrap_parens(call.args.args.get(range_index(call.func.name))?) {
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    }
}

/// Whether `call` can be evaluated for many steps at once, series by series
/// ([`eval_steps`]): a range function (but `absent_over_time`, which looks at all series
/// together) over a matrix selector, whose other arguments are number literals.
pub(crate) fn batchable(call: &Call) -> bool {
    let name = call.func.name;
    let index = range_index(name);
    handles(name)
        && name != "absent_over_time"
        && call.args.args.iter().enumerate().all(|(i, arg)| {
            let arg = unwrap_parens(arg);
            if i == index {
                matches!(arg, Expr::MatrixSelector(_))
            } else {
                matches!(arg, Expr::NumberLiteral(_))
            }
        })
}

/// The range argument of `call` and its scalar parameters evaluated at `ts`, checked, with
/// their annotations noted.
fn prepare<'c>(ev: &mut Evaluator<'_>, call: &'c Call, ts: i64) -> Result<(&'c Expr, Vec<f64>)> {
    let name = call.func.name;
    let args = &call.args.args;
    let params = match name {
        "quantile_over_time" => vec![arg_scalar(ev, args, 0, ts)?],
        "predict_linear" => vec![arg_scalar(ev, args, 1, ts)?],
        "double_exponential_smoothing" | "holt_winters" => {
            vec![arg_scalar(ev, args, 1, ts)?, arg_scalar(ev, args, 2, ts)?]
        }
        _ => Vec::new(),
    };
    let range_expr = args
        .get(range_index(name))
        .ok_or_else(|| Error::exec(format!("missing range argument to {name}")))?;
    if let ("double_exponential_smoothing" | "holt_winters", [sf, tf]) = (name, params.as_slice()) {
        if *sf <= 0.0 || *sf >= 1.0 {
            return Err(Error::exec(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
            )));
        }
        if *tf <= 0.0 || *tf >= 1.0 {
            return Err(Error::exec(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
            )));
        }
    }
    if name == "quantile_over_time"
        && let (Some(&q), Some(node)) = (params.first(), args.first())
        && let Some(note) = annotations::invalid_quantile(q)
    {
        ev.annotations.warn(note, node);
    }
    Ok((range_expr, params))
}

/// Whether function `name` keeps the metric name of its input.
fn keeps_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, call: &Call, ts: i64) -> Result<Val> {
    let name = call.func.name;
    let (range_expr, params) = prepare(ev, call, ts)?;
    let arg = ev.range_arg(range_expr, ts)?;

    if name == "absent_over_time" {
        if !arg.series.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        let labels = match unwrap_parens(range_expr) {
            Expr::MatrixSelector(ms) => absent_labels(&ms.vs),
            _ => Default::default(),
        };
        return Ok(Val::Vector(vec![Elem {
            labels: labels.into(),
            v: 1.0,
            drop_name: false,
        }]));
    }
    if matches!(name, "rate" | "increase") {
        let named = arg.series.iter().filter(|s| !s.drop_name);
        note_non_counters(ev, named.map(|s| &*s.labels), range_expr);
    }

    let keep_name = keeps_name(name);
    let RangeArg { series, start, end } = arg;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        if let Some(v) = compute(name, &s.points, start, end, ts, &params) {
            out.push(Elem {
                labels: Rc::clone(&s.labels),
                v,
                drop_name: !keep_name || s.drop_name,
            });
        }
        ev.recycle(s);
    }
    Ok(Val::Vector(out))
}

/// A [`batchable`] call at each of `times` (increasing), into `sink`: the same results as
/// [`eval`] at each time, computed series by series with the window sliding over each
/// series' samples.
pub(crate) fn eval_steps(
    ev: &mut Evaluator<'_>,
    call: &Call,
    times: &[i64],
    sink: &mut impl StepSink,
) -> Result<()> {
    let Some(&first) = times.first() else {
        return Ok(());
    };
    let name = call.func.name;
    // The parameters are literals: the same at every step.
    let (range_expr, params) = prepare(ev, call, first)?;
    let Expr::MatrixSelector(ms) = unwrap_parens(range_expr) else {
        return Err(Error::exec("expected a range vector argument"));
    };
    let selected = ev.matrix_select_steps(
        ms,
        times,
        !keeps_name(name),
        sink,
        |points, start, end, ts| compute(name, points, start, end, ts, &params),
    )?;
    if matches!(name, "rate" | "increase") {
        note_non_counters(ev, selected.iter().map(|l| &**l), range_expr);
    }
    Ok(())
}

/// Notes an info for each metric name among `series` that does not look like a counter's.
fn note_non_counters<'l>(
    ev: &mut Evaluator<'_>,
    series: impl Iterator<Item = &'l Labels>,
    node: &Expr,
) {
    // Series of one metric come together: one check per run of equal names.
    let mut last: Option<&str> = None;
    for labels in series {
        let name = labels.get(METRIC_NAME);
        if name.is_none() || name == last {
            continue;
        }
        last = name;
        if let Some(note) = name.and_then(annotations::possible_non_counter) {
            ev.annotations.info(note, node);
        }
    }
}

fn arg_scalar(ev: &mut Evaluator<'_>, args: &[Box<Expr>], i: usize, ts: i64) -> Result<f64> {
    let expr = args
        .get(i)
        .ok_or_else(|| Error::exec("missing scalar argument"))?;
    ev.scalar_arg(expr, ts)
}

/// The function's value over one series' points; `None` for no output.
fn compute(
    name: &str,
    points: &[(i64, f64)],
    start: i64,
    end: i64,
    ts: i64,
    params: &[f64],
) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    let values = || points.iter().map(|&(_, v)| v);
    Some(match name {
        "rate" => extrapolated_rate(points, start, end, true, true)?,
        "increase" => extrapolated_rate(points, start, end, true, false)?,
        "delta" => extrapolated_rate(points, start, end, false, false)?,
        "irate" | "idelta" => {
            let [.., prev, last] = points else {
                return None;
            };
            let mut result = last.1 - prev.1;
            if name == "irate" {
                if last.1 < prev.1 {
                    result = last.1;
                }
                let interval = last.0 - prev.0;
                if interval == 0 {
                    return None;
                }
                result /= interval as f64 / 1000.0;
            }
            result
        }
        "avg_over_time" => mean(values()),
        "sum_over_time" => {
            let (s, c) = values().fold((0.0, 0.0), |(s, c), v| kahan_inc(v, s, c));
            if s.is_infinite() { s } else { s + c }
        }
        "count_over_time" => points.len() as f64,
        "min_over_time" => values().fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
        "max_over_time" => values().fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
        "last_over_time" => last.1,
        "first_over_time" => first.1,
        "ts_of_first_over_time" => first.0 as f64 / 1000.0,
        "ts_of_last_over_time" => last.0 as f64 / 1000.0,
        "ts_of_min_over_time" | "ts_of_max_over_time" => {
            let max = name == "ts_of_max_over_time";
            let mut best = *first;
            for &(t, v) in &points[1..] {
                let better = if max { v >= best.1 } else { v <= best.1 };
                if better || best.1.is_nan() {
                    best = (t, v);
                }
            }
            best.0 as f64 / 1000.0
        }
        "present_over_time" => 1.0,
        "quantile_over_time" => {
            let mut vals: Vec<f64> = values().collect();
            quantile(*params.first()?, &mut vals)
        }
        "stddev_over_time" | "stdvar_over_time" => {
            let mut count = 0.0;
            let (mut mean, mut c_mean) = (0.0, 0.0);
            let (mut aux, mut c_aux) = (0.0, 0.0);
            for v in values() {
                count += 1.0;
                let delta = v - (mean + c_mean);
                (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
                (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
            }
            let var = (aux + c_aux) / count;
            if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            }
        }
        "mad_over_time" if values().any(f64::is_nan) => f64::NAN,
        "mad_over_time" => {
            let mut vals: Vec<f64> = values().collect();
            let median = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = values().map(|v| (v - median).abs()).collect();
            quantile(0.5, &mut dev)
        }
        "changes" => {
            let mut changes = 0.0;
            for w in points.windows(2) {
                let (a, b) = (w[0].1, w[1].1);
                if a != b && !(a.is_nan() && b.is_nan()) {
                    changes += 1.0;
                }
            }
            changes
        }
        "resets" => points.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64,
        "deriv" => {
            if points.len() < 2 {
                return None;
            }
            linear_regression(points, first.0).0
        }
        "predict_linear" => {
            if points.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(points, ts);
            slope * *params.first()? + intercept
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (*params.first()?, *params.get(1)?);
            if points.len() < 2 {
                return None;
            }
            let mut s0 = 0.0;
            let mut s1 = points[0].1;
            let mut b = points[1].1 - points[0].1;
            for (i, &(_, v)) in points.iter().enumerate().skip(1) {
                let x = sf * v;
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            s1
        }
        _ => return None,
    })
}

/// Prometheus's `extrapolatedRate` for `rate`, `increase` (counters) and `delta`.
fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for &(_, v) in &points[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let sampled_interval = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled_interval / (points.len() - 1) as f64;
    let mut to_start = first.0.saturating_sub(range_start) as f64 / 1000.0;
    let mut to_end = range_end.saturating_sub(last.0) as f64 / 1000.0;
    let threshold = average * 1.1;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.1 >= 0.0 {
            to_zero = sampled_interval * (first.1 / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let mut factor = (sampled_interval + to_start + to_end) / sampled_interval;
    if is_rate {
        factor /= range_end.saturating_sub(range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Least-squares slope and intercept (at `intercept_time`), Kahan-summed.
fn linear_regression(points: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in points.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = t.saturating_sub(intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}
