//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus's semantics.
//!
//! Regexes are fully anchored as Prometheus anchors them (`^(?s:re)$`, RE2 syntax, `.` also
//! matching a newline), and a missing label matches as the empty string: `{env=""}` selects
//! series without `env`, `{env=~".*"}` selects every series.
//!
//! So that an index can answer `=~` without testing every value of a label, a matcher works
//! out, once, whether its regex accepts a small finite set of literals (`a|b|c`,
//! `(prod|stag)ing`) or of literal prefixes followed by anything (`pay.*|check.*`); see
//! [`Matcher::value_patterns`].

use std::fmt;

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

/// The most literals a regex may expand to and still be answered from the index.
const MAX_PATTERNS: usize = 256;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
    /// `=~`: the anchored regex matches.
    Regex,
    /// `!~`: the anchored regex does not match.
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

/// A value an `=` or `=~` matcher accepts: `literal` exactly, or — when `any_suffix` — any
/// value starting with `literal`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValuePattern {
    /// The literal text, or prefix.
    pub literal: String,
    /// True when anything may follow the literal.
    pub any_suffix: bool,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
    patterns: Option<Vec<ValuePattern>>,
}

/// A regex that does not compile, with RE2-style context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression {pattern:?} in matcher for label {label:?}: {reason}")]
pub struct MatcherError {
    label: String,
    pattern: String,
    reason: String,
}

impl Matcher {
    /// A matcher of `name` against `value` (a regex for `=~` and `!~`).
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherError> {
        let name = name.into();
        let value = value.into();
        let (regex, patterns) = match op {
            MatchOp::Equal => (
                None,
                Some(vec![ValuePattern {
                    literal: value.clone(),
                    any_suffix: false,
                }]),
            ),
            MatchOp::NotEqual => (None, None),
            MatchOp::Regex | MatchOp::NotRegex => {
                let anchored = format!("^(?s:{value})$");
                let regex = Regex::new(&anchored).map_err(|error| MatcherError {
                    label: name.clone(),
                    pattern: value.clone(),
                    reason: error
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                        .to_owned(),
                })?;
                let patterns = regex_syntax::Parser::new()
                    .parse(&format!("(?s:{value})"))
                    .ok()
                    .and_then(|hir| value_patterns(&hir));
                (Some(regex), patterns)
            }
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
            patterns,
        })
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The comparison.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or regex as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value matches; pass `""` for a missing label.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether a series without this label matches.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and for `=~` with a regex that is a finite set of literals or literal
    /// prefixes, the values it accepts, sorted; `None` when every value must be tested.
    pub fn value_patterns(&self) -> Option<&[ValuePattern]> {
        self.patterns.as_deref()
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        (self.op, &self.name, &self.value) == (other.op, &other.name, &other.value)
    }
}

impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

/// The finite set of (literal, open-ended) patterns `hir` matches, if it is one.
fn value_patterns(hir: &Hir) -> Option<Vec<ValuePattern>> {
    let mut patterns = expand(hir)?;
    patterns.sort();
    patterns.dedup();
    Some(patterns)
}

fn expand(hir: &Hir) -> Option<Vec<ValuePattern>> {
    let exact = |literal: String| ValuePattern {
        literal,
        any_suffix: false,
    };
    match hir.kind() {
        HirKind::Empty => Some(vec![exact(String::new())]),
        HirKind::Literal(literal) => Some(vec![exact(String::from_utf8(literal.0.to_vec()).ok()?)]),
        HirKind::Class(Class::Unicode(class)) => {
            let mut chars = Vec::new();
            for range in class.iter() {
                for c in range.start()..=range.end() {
                    chars.push(exact(c.to_string()));
                    if chars.len() > MAX_PATTERNS {
                        return None;
                    }
                }
            }
            Some(chars)
        }
        HirKind::Capture(capture) => expand(&capture.sub),
        HirKind::Alternation(alternatives) => {
            let mut all = Vec::new();
            for alternative in alternatives {
                all.extend(expand(alternative)?);
                if all.len() > MAX_PATTERNS {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Repetition(repetition) if is_anything(hir) => {
            debug_assert!(repetition.min == 0);
            Some(vec![ValuePattern {
                literal: String::new(),
                any_suffix: true,
            }])
        }
        HirKind::Concat(parts) => {
            let mut acc = vec![exact(String::new())];
            for part in parts {
                let next = expand(part)?;
                let mut product = Vec::with_capacity(acc.len() * next.len());
                for prefix in &acc {
                    if prefix.any_suffix {
                        // Only a trailing `.*` keeps the pattern a prefix; anything after
                        // it needs the regex.
                        return None;
                    }
                    for suffix in &next {
                        product.push(ValuePattern {
                            literal: format!("{}{}", prefix.literal, suffix.literal),
                            any_suffix: suffix.any_suffix,
                        });
                    }
                }
                if product.len() > MAX_PATTERNS {
                    return None;
                }
                acc = product;
            }
            Some(acc)
        }
        _ => None,
    }
}

/// True for `.*` with `.` matching every character.
fn is_anything(hir: &Hir) -> bool {
    let HirKind::Repetition(repetition) = hir.kind() else {
        return false;
    };
    let any_char = match repetition.sub.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            class.ranges().len() == 1
                && class.ranges()[0].start() == '\0'
                && class.ranges()[0].end() == char::MAX
        }
        _ => false,
    };
    repetition.min == 0 && repetition.max.is_none() && any_char
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(regex: &str) -> Option<Vec<(String, bool)>> {
        Matcher::new(MatchOp::Regex, "l", regex)
            .unwrap()
            .value_patterns()
            .map(|p| {
                p.iter()
                    .map(|p| (p.literal.clone(), p.any_suffix))
                    .collect()
            })
    }

    fn exact(values: &[&str]) -> Option<Vec<(String, bool)>> {
        Some(values.iter().map(|v| (v.to_string(), false)).collect())
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let m = Matcher::new(MatchOp::Regex, "job", "node|api").unwrap();
        assert!(m.matches("node") && m.matches("api"));
        assert!(!m.matches("node2") && !m.matches("xapi") && !m.matches(""));
        let dot = Matcher::new(MatchOp::Regex, "msg", "a.b").unwrap();
        assert!(dot.matches("a\nb"), "dot matches newline as in Prometheus");
        let not = Matcher::new(MatchOp::NotRegex, "job", "node.*").unwrap();
        assert!(not.matches("api") && !not.matches("node-1") && not.matches_empty());
    }

    #[test]
    fn empty_value_means_missing_label() {
        assert!(
            Matcher::new(MatchOp::Equal, "env", "")
                .unwrap()
                .matches_empty()
        );
        assert!(
            Matcher::new(MatchOp::Regex, "env", ".*")
                .unwrap()
                .matches_empty()
        );
        assert!(
            !Matcher::new(MatchOp::Regex, "env", ".+")
                .unwrap()
                .matches_empty()
        );
        assert!(
            !Matcher::new(MatchOp::NotEqual, "env", "")
                .unwrap()
                .matches_empty()
        );
    }

    #[test]
    fn finite_regexes_become_index_lookups() {
        assert_eq!(patterns("node"), exact(&["node"]));
        assert_eq!(patterns("node|api|db"), exact(&["api", "db", "node"]));
        assert_eq!(patterns("a|b|c"), exact(&["a", "b", "c"]));
        assert_eq!(patterns("(prod|stag)ing"), exact(&["proding", "staging"]));
        assert_eq!(patterns("foo|foobar"), exact(&["foo", "foobar"]));
        assert_eq!(
            patterns("pay.*|check.*"),
            Some(vec![("check".into(), true), ("pay".into(), true)])
        );
        assert_eq!(patterns(".*"), Some(vec![(String::new(), true)]));
        assert_eq!(patterns("(?i)up"), exact(&["UP", "Up", "uP", "up"]));
        assert_eq!(
            patterns("api-[0-9]"),
            Some((0..10).map(|d| (format!("api-{d}"), false)).collect())
        );
    }

    #[test]
    fn other_regexes_need_the_regex() {
        for regex in [
            ".+",
            "a.*b",
            "(?i)node_exporter",
            "x+",
            "[a-z]+",
            "[^a]",
            ".*foo",
        ] {
            assert_eq!(patterns(regex), None, "{regex}");
        }
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let error = Matcher::new(MatchOp::Regex, "job", "(node").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid regular expression \"(node\" in matcher for label \"job\": unclosed group"
        );
    }
}
