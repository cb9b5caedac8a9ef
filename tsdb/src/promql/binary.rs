//! Binary operators: arithmetic (`+ - * / % ^ atan2`), comparisons (with and without
//! `bool`) and set operators (`and`, `or`, `unless`), between scalars and vectors, with
//! Prometheus's vector matching (`on`, `ignoring`, `group_left`, `group_right`).
//!
//! Follows `VectorBinop`, `VectorAnd/Or/Unless` and `VectorscalarBinop` of Prometheus's
//! `promql/engine.go`: the match signature with `ignoring` (or no modifier) always leaves out
//! `__name__`; a comparison without `bool` keeps the left-hand value (the vector's value when
//! the scalar is on the left); arithmetic and `bool` comparisons drop the metric name;
//! duplicate match groups are errors with upstream's messages.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use sightline_core::labels::{Labels, METRIC_NAME};

use super::error::{Error, Result};
use super::eval::{Elem, Evaluator, Val};

/// Operators by their PromQL spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => return Err(Error::unsupported(format!("binary operator {other:?}"))),
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }
}

/// `lhs op rhs` on floats: the value and whether to keep the element.
fn apply(op: Op, lhs: f64, rhs: f64) -> (f64, bool) {
    match op {
        Op::Add => (lhs + rhs, true),
        Op::Sub => (lhs - rhs, true),
        Op::Mul => (lhs * rhs, true),
        Op::Div => (lhs / rhs, true),
        Op::Mod => (lhs % rhs, true),
        Op::Pow => (lhs.powf(rhs), true),
        Op::Atan2 => (lhs.atan2(rhs), true),
        Op::Eq => (lhs, lhs == rhs),
        Op::Ne => (lhs, lhs != rhs),
        Op::Gt => (lhs, lhs > rhs),
        Op::Lt => (lhs, lhs < rhs),
        Op::Ge => (lhs, lhs >= rhs),
        Op::Le => (lhs, lhs <= rhs),
        Op::And | Op::Or | Op::Unless => (lhs, true),
    }
}

fn bool_value(keep: bool) -> f64 {
    if keep { 1.0 } else { 0.0 }
}

pub(crate) fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, ts: i64) -> Result<Val> {
    let op = Op::parse(&b.op.to_string())?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let fill = b
        .modifier
        .as_ref()
        .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
        .unwrap_or((None, None));
    let lhs = ev.eval(&b.lhs, ts)?;
    let rhs = ev.eval(&b.rhs, ts)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = apply(op, l, r);
            Ok(Val::Scalar(if op.is_comparison() {
                bool_value(keep)
            } else {
                v
            }))
        }
        (Val::Vector(l), Val::Scalar(r)) => {
            Ok(Val::Vector(vector_scalar(op, l, r, false, return_bool)))
        }
        (Val::Scalar(l), Val::Vector(r)) => {
            Ok(Val::Vector(vector_scalar(op, r, l, true, return_bool)))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let (card, matching) = match &b.modifier {
                Some(m) => (m.card.clone(), m.matching.clone()),
                None => (VectorMatchCardinality::OneToOne, None),
            };
            if op.is_set() {
                return Ok(Val::Vector(match op {
                    Op::And => vector_and(l, r, &matching),
                    Op::Or => vector_or(l, r, &matching),
                    _ => vector_unless(l, r, &matching),
                }));
            }
            vector_vector(op, l, r, &card, &matching, return_bool, fill).map(Val::Vector)
        }
        _ => Err(Error::exec(
            "binary expression must contain only scalar and instant vector types",
        )),
    }
}

fn vector_scalar(op: Op, vec: Vec<Elem>, scalar: f64, swap: bool, return_bool: bool) -> Vec<Elem> {
    let mut out = Vec::with_capacity(vec.len());
    for mut e in vec {
        let (l, r) = if swap { (scalar, e.v) } else { (e.v, scalar) };
        let (mut v, mut keep) = apply(op, l, r);
        if op.is_comparison() && swap {
            v = r;
        }
        if return_bool {
            v = bool_value(keep);
            keep = true;
        }
        if !keep {
            continue;
        }
        if !op.is_comparison() || return_bool {
            e.drop_name = true;
        }
        e.v = v;
        out.push(e);
    }
    out
}

/// The labels two elements are matched on.
fn signature(labels: &Labels, matching: &Option<LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => {
            labels.without(|n| !names.labels.iter().any(|l| l == n))
        }
        Some(LabelModifier::Exclude(names)) => {
            labels.without(|n| n == METRIC_NAME || names.labels.iter().any(|l| l == n))
        }
        None => labels.without(|n| n == METRIC_NAME),
    }
}

fn vector_and(lhs: Vec<Elem>, rhs: Vec<Elem>, matching: &Option<LabelModifier>) -> Vec<Elem> {
    let right: HashSet<Labels> = rhs.iter().map(|e| signature(&e.labels, matching)).collect();
    lhs.into_iter()
        .filter(|e| right.contains(&signature(&e.labels, matching)))
        .collect()
}

fn vector_or(lhs: Vec<Elem>, rhs: Vec<Elem>, matching: &Option<LabelModifier>) -> Vec<Elem> {
    let left: HashSet<Labels> = lhs.iter().map(|e| signature(&e.labels, matching)).collect();
    let mut out = lhs;
    out.extend(
        rhs.into_iter()
            .filter(|e| !left.contains(&signature(&e.labels, matching))),
    );
    out
}

fn vector_unless(lhs: Vec<Elem>, rhs: Vec<Elem>, matching: &Option<LabelModifier>) -> Vec<Elem> {
    let right: HashSet<Labels> = rhs.iter().map(|e| signature(&e.labels, matching)).collect();
    lhs.into_iter()
        .filter(|e| !right.contains(&signature(&e.labels, matching)))
        .collect()
}

fn vector_vector(
    op: Op,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    card: &VectorMatchCardinality,
    matching: &Option<LabelModifier>,
    return_bool: bool,
    (fill_many, fill_one): (Option<f64>, Option<f64>),
) -> Result<Vec<Elem>> {
    if (lhs.is_empty() && fill_many.is_none()) || (rhs.is_empty() && fill_one.is_none()) {
        return Ok(Vec::new());
    }
    let swap = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
    let one_side = if swap { "left" } else { "right" };

    // The "one" side: each signature at most once.
    let mut one_sigs: HashMap<Labels, usize> = HashMap::with_capacity(one.len());
    for (i, e) in one.iter().enumerate() {
        let sig = signature(&e.labels, matching);
        if let Some(&prev) = one_sigs.get(&sig) {
            return Err(Error::exec(format!(
                "found duplicate series for the match group {sig} on the {one_side} hand-side \
                 of the operation: [{}, {}];many-to-many matching not allowed: matching labels \
                 must be unique on one side",
                one[prev].labels, e.labels
            )));
        }
        one_sigs.insert(sig, i);
    }

    let include: Vec<String> = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    // One-to-one: signatures already matched; many-to-one: result label sets produced.
    let mut matched_sigs: HashSet<Labels> = HashSet::new();
    let mut produced: HashSet<(Labels, Labels)> = HashSet::new();
    let mut out = Vec::new();
    let mut one_matched = vec![false; one.len()];
    for l in &many {
        let sig = signature(&l.labels, matching);
        let Some(&ri) = one_sigs.get(&sig) else {
            // No partner: with a fill value for the "one" side, pair with that.
            if let Some(f) = fill_one {
                let (lv, rv) = if swap { (f, l.v) } else { (l.v, f) };
                if let Some((v, drop_name)) = filled(op, lv, rv, return_bool) {
                    out.push(Elem {
                        labels: result_labels(&l.labels, &Labels::new(), card, matching, &include)
                            .into(),
                        v,
                        drop_name: drop_name || l.drop_name,
                    });
                }
            }
            continue;
        };
        one_matched[ri] = true;
        let r = &one[ri];
        // Checked before comparison filtering, so the error does not depend on the values.
        if one_to_one && !matched_sigs.insert(sig.clone()) {
            return Err(Error::exec(
                "multiple matches for labels: many-to-one matching must be explicit \
                 (group_left/group_right)",
            ));
        }
        let (lv, rv) = if swap { (r.v, l.v) } else { (l.v, r.v) };
        let (mut v, mut keep) = apply(op, lv, rv);
        if return_bool {
            v = bool_value(keep);
            keep = true;
        }
        if !keep {
            continue;
        }
        let labels = result_labels(&l.labels, &r.labels, card, matching, &include);
        if !one_to_one {
            let check = labels.without(|n| n == METRIC_NAME);
            if !produced.insert((sig, check)) {
                return Err(Error::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        let drop_name = l.drop_name || !op.is_comparison() || return_bool;
        out.push(Elem {
            labels: labels.into(),
            v,
            drop_name,
        });
    }
    // "One" side series without a partner, with a fill value for the "many" side: one result
    // per match group, labelled with the group's labels.
    if let Some(f) = fill_many {
        for (r, _) in one.iter().zip(&one_matched).filter(|(_, m)| !**m) {
            let (lv, rv) = if swap { (r.v, f) } else { (f, r.v) };
            if let Some((v, _)) = filled(op, lv, rv, return_bool) {
                out.push(Elem {
                    labels: signature(&r.labels, matching).into(),
                    v,
                    drop_name: true,
                });
            }
        }
    }
    Ok(out)
}

/// `lhs op rhs` for a pair completed by a fill value: the value and whether the result
/// drops the metric name, or `None` when a comparison filters it out.
fn filled(op: Op, lhs: f64, rhs: f64, return_bool: bool) -> Option<(f64, bool)> {
    let (v, keep) = apply(op, lhs, rhs);
    if return_bool {
        return Some((bool_value(keep), true));
    }
    keep.then_some((v, !op.is_comparison()))
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    card: &VectorMatchCardinality,
    matching: &Option<LabelModifier>,
    include: &[String],
) -> Labels {
    let mut labels = many.clone();
    if matches!(card, VectorMatchCardinality::OneToOne) {
        labels = match matching {
            Some(LabelModifier::Include(names)) => {
                labels.without(|n| !names.labels.iter().any(|l| l == n))
            }
            Some(LabelModifier::Exclude(names)) => {
                labels.without(|n| names.labels.iter().any(|l| l == n))
            }
            None => labels,
        };
    }
    for name in include {
        labels.set(name, one.get(name).unwrap_or(""));
    }
    labels
}
