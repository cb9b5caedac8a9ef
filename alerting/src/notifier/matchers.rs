//! Alertmanager's matcher syntax: the strings of `matchers:`, `source_matchers:` and
//! `target_matchers:`, and the `match:` / `match_re:` maps they replace.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#matcher>: a string holds
//! one matcher or several separated by commas, optionally inside braces
//! (`{severity="critical", team=~"db|infra"}`); an operator is `=`, `!=`, `=~` or `!~`; a value
//! is double-quoted (with `\"`, `\\`, `\n` and `\t` escapes) or unquoted (`severity = critical`,
//! `severity =~ warning|info`, as kube-prometheus writes them). A label name is unquoted or
//! double-quoted (UTF-8 names, as Alertmanager 0.27+ accepts).
//!
//! Edge cases decided here:
//! - An unquoted value runs to the next comma (or the closing brace) and is trimmed: a regex
//!   with a comma in it (`a{1,3}`) must be quoted.
//! - A trailing comma is allowed (`{a="b",}`); `{}` and the empty string are no matchers.
//! - Regexes are anchored at both ends as Alertmanager anchors them; [`Matcher`] anchors them
//!   as Prometheus does (`^(?s:re)$`), so `.` also matches a newline — a difference no label
//!   value with a newline in it has met in practice.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_core::yaml;

/// Parses one matcher string, which may hold several matchers.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let trimmed = text.trim();
    let inner = match trimmed.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| format!("matcher {text:?} opens a brace it does not close"))?,
        None => trimmed,
    };
    let mut parser = Parser {
        text,
        rest: inner,
        matchers: Vec::new(),
    };
    parser.all()?;
    Ok(parser.matchers)
}

/// Whether `matchers` all match `labels` (a missing label matches as the empty string).
pub fn all_match(matchers: &[Matcher], labels: &sightline_core::labels::Labels) -> bool {
    matchers
        .iter()
        .all(|matcher| matcher.matches(labels.get(matcher.name()).unwrap_or("")))
}

/// Writes matchers as Alertmanager does in route keys: `{a="b",c=~"d"}`.
pub fn display_matchers(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

struct Parser<'t> {
    text: &'t str,
    rest: &'t str,
    matchers: Vec<Matcher>,
}

impl Parser<'_> {
    fn all(&mut self) -> Result<(), String> {
        loop {
            self.rest = self.rest.trim_start();
            if self.rest.is_empty() {
                return Ok(());
            }
            self.one()?;
            self.rest = self.rest.trim_start();
            match self.rest.strip_prefix(',') {
                Some(rest) => self.rest = rest,
                None if self.rest.is_empty() => return Ok(()),
                None => {
                    return Err(self.bad(&format!(
                        "expected a comma before {:?}",
                        first_chars(self.rest)
                    )));
                }
            }
        }
    }

    fn one(&mut self) -> Result<(), String> {
        let name = if self.rest.starts_with('"') {
            self.quoted()?
        } else {
            let end = self
                .rest
                .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '~' | ',' | '"'))
                .unwrap_or(self.rest.len());
            let (name, rest) = self.rest.split_at(end);
            self.rest = rest;
            name.to_owned()
        };
        if name.is_empty() {
            return Err(self.bad("a label name is missing"));
        }
        self.rest = self.rest.trim_start();
        let op = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(token, op)| self.rest.strip_prefix(token).map(|rest| (rest, op)));
        let Some((rest, op)) = op else {
            return Err(self.bad(&format!(
                "expected one of =, !=, =~, !~ after label name {name:?}"
            )));
        };
        self.rest = rest.trim_start();
        let value = if self.rest.starts_with('"') {
            self.quoted()?
        } else {
            let end = self.rest.find(',').unwrap_or(self.rest.len());
            let (value, rest) = self.rest.split_at(end);
            self.rest = rest;
            let value = value.trim();
            if value.contains('"') {
                return Err(self.bad(&format!("value {value:?} has a stray double quote")));
            }
            value.to_owned()
        };
        let matcher = Matcher::new(op, name, value).map_err(|e| self.bad(&e.to_string()))?;
        self.matchers.push(matcher);
        Ok(())
    }

    /// Reads a double-quoted string at the start of `rest`.
    fn quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[at + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, escaped @ ('"' | '\\'))) => out.push(escaped),
                    // Regex escapes (`\.`, `\d`) are kept for the regex to read.
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.bad("a double-quoted string is not closed"))
    }

    fn bad(&self, why: &str) -> String {
        format!("bad matcher {:?}: {why}", self.text)
    }
}

fn first_chars(text: &str) -> String {
    text.chars().take(12).collect()
}

/// Label names as Alertmanager 0.27+ accepts them: any non-empty UTF-8 string.
pub(crate) fn check_label_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("a label name must not be empty".to_owned())
    } else {
        Ok(())
    }
}

/// A list of matcher strings (`matchers:`), each string read at its own position.
pub(crate) fn matcher_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Matcher>, D::Error> {
    struct Line(Vec<Matcher>);
    impl<'de> Deserialize<'de> for Line {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            yaml::from_string(
                deserializer,
                "a matcher such as severity=\"critical\"",
                parse_matchers,
            )
            .map(Line)
        }
    }
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<Matcher>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of matcher strings")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Matcher>, A::Error> {
            let mut all = Vec::new();
            while let Some(Line(matchers)) = seq.next_element()? {
                all.extend(matchers);
            }
            Ok(all)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<Matcher>, E> {
            Ok(Vec::new())
        }
    }
    deserializer.deserialize_seq(ListVisitor)
}

/// A deprecated `match:` map (`label: value`), as equality matchers sorted by name.
pub(crate) fn equal_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Matcher>, D::Error> {
    label_map(deserializer, MatchOp::Equal)
}

/// A deprecated `match_re:` map (`label: regex`), as regex matchers sorted by name.
pub(crate) fn regex_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Matcher>, D::Error> {
    label_map(deserializer, MatchOp::Regex)
}

fn label_map<'de, D: Deserializer<'de>>(
    deserializer: D,
    op: MatchOp,
) -> Result<Vec<Matcher>, D::Error> {
    struct Name(String);
    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            yaml::from_string(deserializer, "a label name", |name| {
                check_label_name(name)?;
                Ok(Name(name.to_owned()))
            })
        }
    }
    struct Value(String);
    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            yaml::from_string(deserializer, "a label value", |v| Ok(Value(v.to_owned())))
        }
    }
    struct Regex(String);
    impl<'de> Deserialize<'de> for Regex {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            yaml::from_string(deserializer, "a regular expression", |v| {
                Matcher::new(MatchOp::Regex, "", v).map_err(|e| e.to_string())?;
                Ok(Regex(v.to_owned()))
            })
        }
    }
    struct MapVisitor(MatchOp);
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = Vec<Matcher>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of label names to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Matcher>, A::Error> {
            let mut pairs = BTreeMap::new();
            while let Some(Name(name)) = map.next_key()? {
                let value = match self.0 {
                    MatchOp::Regex => map.next_value::<Regex>()?.0,
                    _ => map.next_value::<Value>()?.0,
                };
                pairs.insert(name, value);
            }
            pairs
                .into_iter()
                .map(|(name, value)| Matcher::new(self.0, name, value))
                .collect::<Result<_, _>>()
                .map_err(de::Error::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<Matcher>, E> {
            Ok(Vec::new())
        }
    }
    deserializer.deserialize_map(MapVisitor(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Vec<String> {
        parse_matchers(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(Matcher::to_string)
            .collect()
    }

    #[test]
    fn quoted_unquoted_and_braces() {
        assert_eq!(
            strings(r#"severity="critical""#),
            [r#"severity="critical""#]
        );
        assert_eq!(strings("severity = critical"), [r#"severity="critical""#]);
        assert_eq!(
            strings("severity =~ warning|info"),
            [r#"severity=~"warning|info""#]
        );
        assert_eq!(
            strings(r#"{a="b", c=~"d", e!="f",g!~h}"#),
            [r#"a="b""#, r#"c=~"d""#, r#"e!="f""#, r#"g!~"h""#]
        );
        assert_eq!(strings(r#"{a="x,y",}"#), [r#"a="x,y""#]);
        assert_eq!(strings(r#""dotted.name"="v""#), [r#"dotted.name="v""#]);
        assert_eq!(strings(r#"a="q\"uote\\d""#), [r#"a="q\"uote\\d""#]);
        assert!(strings("{}").is_empty());
    }

    #[test]
    fn bad_matchers_say_why() {
        let error = |text: &str| parse_matchers(text).err().unwrap_or_default();
        assert!(
            error("severity").contains("expected one of ="),
            "{}",
            error("severity")
        );
        assert!(error(r#"a="b"#).contains("not closed"));
        assert!(error(r#"{a="b""#).contains("does not close"));
        assert!(error(r#"=b"#).contains("label name is missing"));
        assert!(error(r#"a=~"(""#).contains("invalid regular expression"));
        assert!(error(r#"a="b" c="d""#).contains("expected a comma"));
    }
}
