//! Adapts the `promql-parser` crate (GreptimeTeam, a port of Prometheus's yacc grammar) to
//! the engine: parse errors become [`Error::Parse`], selectors become
//! [`sightline_core::matcher::Matcher`]s (Prometheus's anchored RE2-style regexes), and
//! durations, offsets and `@` modifiers become milliseconds.
//!
//! Decided here: a selector's metric name becomes a leading `__name__="…"` matcher; the
//! parser's or-matchers (`{a="1" or b="2"}`, not in upstream Prometheus) are refused as
//! unsupported; `@ start()` / `@ end()` resolve to the query's start and end.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use sightline_core::matcher::Matcher;

use super::error::{Error, Result};

/// Parses a PromQL expression.
pub fn parse(query: &str) -> Result<Expr> {
    promql_parser::parser::parse(query).map_err(|message| Error::Parse { message })
}

/// The matchers of a series selector such as `up{job="node"}` — what the API's `match[]`
/// parameters hold. Anything but a plain selector is refused.
pub fn parse_selector(selector: &str) -> Result<Vec<Matcher>> {
    match parse(selector)? {
        Expr::VectorSelector(vs) => selector_matchers(&vs),
        _ => Err(Error::Parse {
            message: format!("{selector:?} is not a series selector (e.g. up{{job=\"node\"}})"),
        }),
    }
}

/// A duration in milliseconds, saturating.
pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A signed offset in milliseconds (positive looks back in time).
pub(crate) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// The fixed evaluation time an `@` modifier sets, in milliseconds.
pub(crate) fn at_ms(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(time)) => Some(system_time_ms(time)),
    }
}

fn system_time_ms(time: &SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(before) => -duration_ms(&before.duration()),
    }
}

/// The matchers of a selector, the metric name first.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::unsupported("`or` inside a label matcher list"));
    }
    sightline_core::selector::vector_selector_matchers(vs).map_err(|e| Error::Parse {
        message: e.to_string(),
    })
}

/// Removes parentheses around an expression.
pub(crate) fn unwrap_parens(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    expr
}
