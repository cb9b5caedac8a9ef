//! `info(v [, selector])`: adds the data labels of "info" series (by default `target_info`)
//! to the series of `v` that share their identifying labels (`instance`, `job`).
//!
//! Follows Prometheus's experimental `info()` (`promql/info.go`) and its test suite:
//! - The info series are those the selector matches; without a selector, `target_info`;
//!   with only negative `__name__` matchers, names ending in `_info` are the candidates.
//! - Series of `v` whose name matches every `__name__` matcher, at least one of them
//!   positive, are info series themselves and pass through unchanged.
//! - An info series matches a series of `v` when both have the same values for the
//!   identifying labels the series of `v` carries (and lack the others). Per info metric
//!   name, the newest sample within the lookback delta wins; two at the same time are an
//!   error. Different info metrics giving one label different values are an error
//!   ("conflicting label").
//! - Labels already on the series are never overwritten. With data-label matchers only the
//!   labels they name are added; a series with no matching info series is dropped when a
//!   data-label matcher rejects the empty value, and returned unchanged otherwise.
//! - Info series are read at the time the argument's first selector reads at (its `@` and
//!   `offset`, and those of enclosing subqueries), so pinned arguments are enriched as of
//!   their pinned time.

use std::collections::HashMap;
use std::rc::Rc;

use promql_parser::parser::{Call, Expr};
use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_core::matcher::{MatchOp, Matcher};

use super::error::{Error, Result};
use super::eval::{Evaluator, Val};
use super::parser::{selector_matchers, unwrap_parens};

/// Labels that tie an info series to the series it describes.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

fn matcher(op: MatchOp, name: &str, value: &str) -> Result<Matcher> {
    Matcher::new(op, name, value).map_err(|e| Error::exec(e.to_string()))
}

/// The identifying labels a series carries, as `(name, value)`.
type Signature = Vec<(&'static str, String)>;

/// The identifying labels a series carries.
fn signature(labels: &Labels) -> Signature {
    IDENTIFYING
        .iter()
        .filter_map(|&n| labels.get(n).map(|v| (n, v.to_owned())))
        .collect()
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, call: &Call, ts: i64) -> Result<Val> {
    let base_expr = call
        .args
        .args
        .first()
        .ok_or_else(|| Error::exec("info() needs an instant vector argument"))?;
    let selector = match call.args.args.get(1).map(|e| unwrap_parens(e)) {
        None => None,
        Some(Expr::VectorSelector(vs)) => Some(selector_matchers(vs)?),
        Some(_) => {
            return Err(Error::exec(
                "info(): the second argument must be a selector",
            ));
        }
    };
    let (name_matchers, data_matchers): (Vec<Matcher>, Vec<Matcher>) = match selector {
        None => (
            vec![matcher(MatchOp::Equal, METRIC_NAME, "target_info")?],
            Vec::new(),
        ),
        Some(all) => all.into_iter().partition(|m| m.name() == METRIC_NAME),
    };
    let positive = name_matchers
        .iter()
        .any(|m| matches!(m.op(), MatchOp::Equal | MatchOp::Regex));
    let mut info_matchers: Vec<Matcher> = name_matchers.clone();
    if name_matchers.is_empty() {
        info_matchers.push(matcher(MatchOp::Equal, METRIC_NAME, "target_info")?);
    } else if !positive {
        info_matchers.push(matcher(MatchOp::Regex, METRIC_NAME, ".+_info")?);
    }
    info_matchers.extend(data_matchers.iter().cloned());

    let base = ev.vector_arg(base_expr, ts)?;
    let is_info = |labels: &Labels| {
        positive && {
            let name = labels.metric_name().unwrap_or("");
            name_matchers.iter().all(|m| m.matches(name))
        }
    };
    let t = ev.reference_time(base_expr, ts).unwrap_or(ts);
    let needs_info = base
        .iter()
        .any(|e| !is_info(&e.labels) && !signature(&e.labels).is_empty());
    let infos = if needs_info {
        ev.select_latest(&info_matchers, t)?
    } else {
        Vec::new()
    };

    // Newest info series per (metric name, identifying labels).
    let mut latest: HashMap<(String, Signature), (Labels, i64)> = HashMap::new();
    for (labels, st, _) in infos {
        let name = labels.metric_name().unwrap_or("").to_owned();
        let key = (name, signature(&labels));
        match latest.get(&key) {
            Some((existing, et)) if *et == st => {
                return Err(Error::exec(format!(
                    "found duplicate series for info metric: existing {existing} @ {et}, new \
                     {labels} @ {st}"
                )));
            }
            Some((_, et)) if *et > st => {}
            _ => {
                latest.insert(key, (labels, st));
            }
        }
    }
    let mut names: Vec<String> = latest.keys().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    let rejects_empty = data_matchers.iter().any(|m| !m.matches(""));

    let mut out = Vec::with_capacity(base.len());
    for e in base {
        if is_info(&e.labels) {
            out.push(e);
            continue;
        }
        let sig = signature(&e.labels);
        let mut added: Vec<(String, String)> = Vec::new();
        let mut matched = false;
        if !sig.is_empty() {
            for name in &names {
                let Some((info, _)) = latest.get(&(name.clone(), sig.clone())) else {
                    continue;
                };
                matched = true;
                for l in info {
                    if l.name == METRIC_NAME
                        || (!data_matchers.is_empty()
                            && !data_matchers.iter().any(|m| m.name() == l.name))
                    {
                        continue;
                    }
                    if let Some((_, v)) = added.iter().find(|(n, _)| *n == l.name)
                        && *v != l.value
                    {
                        return Err(Error::exec(format!("conflicting label: {}", l.name)));
                    }
                    if e.labels.get(&l.name).is_none() {
                        added.push((l.name.clone(), l.value.clone()));
                    }
                }
            }
        }
        if !matched && rejects_empty {
            continue;
        }
        let mut e = e;
        if !added.is_empty() {
            let labels = Rc::make_mut(&mut e.labels);
            for (n, v) in &added {
                labels.set(n, v);
            }
        }
        out.push(e);
    }
    Ok(Val::Vector(out))
}
