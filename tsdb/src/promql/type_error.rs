//! Prometheus's position and wording for the parser's type errors.
//!
//! `promql-parser` says `expected type matrix in call to function 'rate', got vector` and no
//! more; Prometheus says `1:6: parse error: expected type range vector in call to function
//! "rate", got instant vector`, at the argument of the wrong type. That argument is found here
//! in the text: among the calls of the function (or the aggregations) the message names, the
//! first whose arguments each parse alone but which, rebuilt alone, fails with the same
//! message is the one (the innermost, leftmost, as Prometheus checks them); its argument is
//! the first of the reported type whose replacement by a value of the expected type mends
//! the error.

use super::parser::{MAX_LOCATED_LEN, quoted_end};

/// A type error of the parser, read from its message.
struct TypeError<'m> {
    expected: &'m str,
    actual: &'m str,
    /// The function named, or `None` for an aggregation.
    function: Option<&'m str>,
}

impl<'m> TypeError<'m> {
    /// Reads `expected type T in CONTEXT, got U`, the one shape of the parser's type errors.
    fn read(message: &'m str) -> Option<TypeError<'m>> {
        let rest = message.strip_prefix("expected type ")?;
        let (expected, rest) = rest.split_once(" in ")?;
        let (context, actual) = rest.rsplit_once(", got ")?;
        let function = match context {
            "aggregation expression" => None,
            _ => Some(
                context
                    .strip_prefix("call to function '")?
                    .strip_suffix('\'')?,
            ),
        };
        Some(TypeError {
            expected,
            actual,
            function,
        })
    }

    /// The message as Prometheus words it.
    fn prometheus_message(&self) -> String {
        let context = match self.function {
            Some(name) => format!("call to function {name:?}"),
            None if self.expected == "vector" => "aggregation expression".to_owned(),
            None => "aggregation parameter".to_owned(),
        };
        format!(
            "expected type {} in {context}, got {}",
            documented(self.expected),
            documented(self.actual)
        )
    }
}

/// Messages of the checks Prometheus makes only once a query parsed (its `checkAST`),
/// besides the argument types of [`TypeError`] and the argument counts.
const CHECKED_AFTER_PARSING: [&str; 4] = [
    "binary expression must contain only scalar and instant vector types",
    "bool modifier can only be used on comparison operators",
    "comparisons between scalars must use BOOL modifier",
    "vector matching only allowed between vectors",
];

/// Whether the parser's `message` is one of the checks Prometheus makes after parsing:
/// types of arguments, operands and parameters, argument counts, the modifiers of binary
/// operators. Prometheus reports any syntax error before these.
pub(super) fn is_type_message(message: &str) -> bool {
    TypeError::read(message).is_some()
        || message.contains(" argument(s) in call to ")
        || (message.starts_with("set operator ")
            && message.ends_with(" not allowed in binary scalar expression"))
        || CHECKED_AFTER_PARSING.contains(&message)
}

/// A type's name as Prometheus's messages give it.
fn documented(value_type: &str) -> &str {
    match value_type {
        "vector" => "instant vector",
        "matrix" => "range vector",
        other => other,
    }
}

/// Whether `rebuilt`, a call whose argument was replaced by a value of type `stand_in`, is
/// rid of the error `message` without a new complaint about that value.
fn mends(rebuilt: &str, message: &str, stand_in: &str) -> bool {
    match promql_parser::parser::parse(rebuilt) {
        Ok(_) => true,
        Err(other) => {
            other != message && TypeError::read(&other).is_none_or(|e| e.actual != stand_in)
        }
    }
}

/// Whether `expression` parses alone to a value of the type the parser names `value_type`.
fn has_type(expression: &str, value_type: &str) -> bool {
    promql_parser::parser::parse(expression)
        .is_ok_and(|expr| expr.value_type().to_string() == value_type)
}

/// An expression of each type, to stand in for an argument.
fn placeholder(value_type: &str) -> Option<&'static str> {
    Some(match value_type {
        "vector" => "vector(0)",
        "matrix" => "x[1m]",
        "scalar" => "0",
        "string" => "\"\"",
        _ => return None,
    })
}

/// The aggregation operators, which PromQL spells in any case.
pub(super) const AGGREGATIONS: [&str; 14] = [
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// A call in the text: its name and its arguments with their offsets.
struct Call<'q> {
    name: &'q str,
    args: Vec<(usize, &'q str)>,
}

impl Call<'_> {
    /// The call alone, with argument `replaced` by `with`.
    fn rebuilt(&self, replaced: Option<(usize, &str)>) -> String {
        let args: Vec<&str> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, &(_, text))| match replaced {
                Some((index, with)) if index == i => with,
                _ => text,
            })
            .collect();
        format!("{}({})", self.name, args.join(","))
    }
}

/// Prometheus's message for the parser's type error `message`, and the offset of the
/// argument it is about when that is found in `query`. `None` when `message` is not a type
/// error. Queries longer than [`MAX_LOCATED_LEN`] are not searched (each call found is
/// parsed again).
pub(super) fn locate(query: &str, message: &str) -> Option<(Option<usize>, String)> {
    let error = TypeError::read(message)?;
    let is_callee = |name: &str| match error.function {
        Some(function) => name == function,
        None => AGGREGATIONS.iter().any(|op| op.eq_ignore_ascii_case(name)),
    };
    let fails_alike =
        |text: &str| matches!(promql_parser::parser::parse(text), Err(m) if m == message);
    if query.len() > MAX_LOCATED_LEN {
        return Some((None, error.prometheus_message()));
    }
    let offset = calls(query, is_callee)
        .into_iter()
        .filter(|call| {
            call.args
                .iter()
                .all(|(_, arg)| promql_parser::parser::parse(arg).is_ok())
                && fails_alike(&call.rebuilt(None))
        })
        .find_map(|call| {
            let stand_in = placeholder(error.expected)?;
            call.args
                .iter()
                .enumerate()
                .find(|&(index, &(_, arg))| {
                    has_type(arg, error.actual)
                        && mends(
                            &call.rebuilt(Some((index, stand_in))),
                            message,
                            error.expected,
                        )
                })
                .map(|(_, &(offset, arg))| offset + (arg.len() - arg.trim_start().len()))
        });
    Some((offset, error.prometheus_message()))
}

/// Every call in `query` of a name `is_callee` accepts, in text order: `name(args)`, and for
/// aggregations also `name by (labels) (args)`. Strings, comments and label matchers are
/// skipped.
fn calls<'q>(query: &'q str, is_callee: impl Fn(&str) -> bool) -> Vec<Call<'q>> {
    let bytes = query.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' | b'`' => match quoted_end(query, at) {
                Some(end) => at = end,
                None => break,
            },
            b'#' => at = query[at..].find('\n').map_or(bytes.len(), |n| at + n),
            b'{' => at = query[at..].find('}').map_or(bytes.len(), |n| at + n + 1),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = identifier_end(bytes, at);
                let name = &query[at..end];
                if is_callee(name)
                    && let Some(args) = arguments_after(query, end)
                {
                    found.push(Call { name, args });
                }
                at = end;
            }
            _ => at += 1,
        }
    }
    found
}

fn identifier_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
        .map_or(bytes.len(), |n| start + n)
}

/// The arguments of the call whose name ends at `at`: after optional space and an optional
/// `by (…)` / `without (…)`, a parenthesised list split at its top-level commas.
fn arguments_after(query: &str, mut at: usize) -> Option<Vec<(usize, &str)>> {
    let bytes = query.as_bytes();
    let skip_space = |at: usize| {
        bytes[at..]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map_or(bytes.len(), |n| at + n)
    };
    at = skip_space(at);
    let word_end = identifier_end(bytes, at);
    let word = &query[at..word_end];
    if word.eq_ignore_ascii_case("by") || word.eq_ignore_ascii_case("without") {
        at = skip_space(word_end);
        at = skip_space(group_end(query, at)?);
    }
    let close = group_end(query, at)?;
    let inner = at + 1;
    let mut args = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, inner, inner);
    while i < close - 1 {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = quoted_end(query, i)?;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                args.push((start, &query[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if !query[start..close - 1].trim().is_empty() || !args.is_empty() {
        args.push((start, &query[start..close - 1]));
    }
    Some(args)
}

/// The end (exclusive) of the parenthesised group opening at `at`.
fn group_end(query: &str, at: usize) -> Option<usize> {
    let bytes = query.as_bytes();
    if bytes.get(at) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = quoted_end(query, i)?;
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use promql_parser::parser::value::ValueType;

    use super::*;

    /// The type names read from messages are the parser's.
    #[test]
    fn value_type_names_are_the_parsers() {
        for (value_type, name) in [
            (ValueType::Vector, "vector"),
            (ValueType::Matrix, "matrix"),
            (ValueType::Scalar, "scalar"),
            (ValueType::String, "string"),
        ] {
            assert_eq!(value_type.to_string(), name);
            assert!(placeholder(name).is_some());
        }
    }
}
