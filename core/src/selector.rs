//! Series selectors as PromQL writes them — `up`, `{job="node"}`,
//! `{__name__=~"apiserver_.*"}` — turned into [`Matcher`]s, for config keys that pick series
//! (such as `storage.metrics.retention_overrides`).
//!
//! Parsing uses the `promql-parser` crate (a port of Prometheus's grammar), so quoting,
//! escapes and error messages are PromQL's. Decided here: a metric name becomes a leading
//! `__name__="…"` matcher; `or` inside braces (a promql-parser extension, not Prometheus) and
//! anything but a plain selector (functions, ranges, `offset`, `@`) are refused.

use std::fmt;

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::labels::METRIC_NAME;
use crate::matcher::{MatchOp, Matcher, MatcherError};
use crate::yaml;

/// The matchers of a series selector such as `up{job="node"}`, the metric name first; a
/// message saying what is wrong otherwise.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, String> {
    let expr = parser::parse(text)
        .map_err(|message| format!("invalid series selector {text:?}: {message}"))?;
    let Expr::VectorSelector(selector) = expr else {
        return Err(format!(
            "{text:?} is not a series selector (write e.g. '{{job=\"node\"}}' or 'up{{job=\"node\"}}')"
        ));
    };
    if selector.offset.is_some() || selector.at.is_some() {
        return Err(format!(
            "series selector {text:?} may not use `offset` or `@`"
        ));
    }
    if !selector.matchers.or_matchers.is_empty() {
        return Err(format!(
            "series selector {text:?} uses `or` inside braces, which Prometheus does not have"
        ));
    }
    vector_selector_matchers(&selector).map_err(|e| e.to_string())
}

/// The matchers of a parsed vector selector, the metric name first as `__name__="…"`; the
/// PromQL engine and [`parse_selector`] share it. The selector's `or` alternatives
/// (`selector.matchers.or_matchers`) are not included: callers refuse them first.
pub fn vector_selector_matchers(selector: &VectorSelector) -> Result<Vec<Matcher>, MatcherError> {
    let mut matchers = Vec::with_capacity(selector.matchers.matchers.len() + 1);
    if let Some(name) = &selector.name {
        matchers.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name.as_str())?);
    }
    for m in &selector.matchers.matchers {
        let op = match m.op {
            ParserOp::Equal => MatchOp::Equal,
            ParserOp::NotEqual => MatchOp::NotEqual,
            ParserOp::Re(_) => MatchOp::Regex,
            ParserOp::NotRe(_) => MatchOp::NotRegex,
        };
        matchers.push(Matcher::new(op, m.name.as_str(), m.value.as_str())?);
    }
    Ok(matchers)
}

/// A series selector read from a config file: the text as written and its matchers.
#[derive(Debug, Clone)]
pub struct SeriesSelector {
    text: String,
    matchers: Vec<Matcher>,
}

impl SeriesSelector {
    /// Parses `text` (see [`parse_selector`]).
    pub fn parse(text: &str) -> Result<SeriesSelector, String> {
        Ok(SeriesSelector {
            text: text.to_owned(),
            matchers: parse_selector(text)?,
        })
    }

    /// The matchers, the metric name first.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
}

impl fmt::Display for SeriesSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Two selectors are equal when written the same (what a config reload compares).
impl PartialEq for SeriesSelector {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for SeriesSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SeriesSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        yaml::from_string(
            deserializer,
            "a series selector such as '{job=\"node\"}'",
            SeriesSelector::parse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matchers_with_the_name_first() {
        let m = parse_selector(r#"up{job="node", instance=~"a.*", mode!~'idle|iowait'}"#).unwrap();
        let shown: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"__name__="up""#,
                r#"job="node""#,
                r#"instance=~"a.*""#,
                r#"mode!~"idle|iowait""#
            ]
        );
        assert_eq!(
            parse_selector(r#"{__name__=~"apiserver_.*"}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn anything_but_a_plain_selector_is_refused() {
        for (text, expected) in [
            ("rate(up[5m])", "is not a series selector"),
            ("up[5m]", "is not a series selector"),
            ("up offset 5m", "may not use `offset`"),
            (r#"{job="node""#, "invalid series selector"),
            (r#"{job=~"("}"#, "invalid"),
            ("{}", "invalid series selector"),
        ] {
            let error = parse_selector(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
