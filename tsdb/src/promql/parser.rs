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

use super::error::{Error, Position, Result};
use super::type_error;
use super::{binary_error, grammar_error};

/// Parses a PromQL expression. Errors carry the position Prometheus gives them where it can
/// be found (see [`locate`]).
pub fn parse(query: &str) -> Result<Expr> {
    promql_parser::parser::parse(query).map_err(|message| locate(query, message))
}

/// The longest query whose lexer, type and grammar errors are located (by lexing its
/// prefixes, parsing its calls or its prefixes again); longer queries get errors without a
/// position.
pub(super) const MAX_LOCATED_LEN: usize = 10_000;

/// Gives the parser's error `message` about `query` a position, as Prometheus reports one.
/// `promql-parser` returns bare messages, so the position is found here:
/// - unbalanced parentheses, brackets and braces are found by [`bracket_error`], a scan
///   that follows Prometheus's lexer, with Prometheus's messages and positions;
/// - other lexer errors (an unexpected character, an unterminated string) are at the last
///   character of the shortest prefix of the query that fails to lex with the same message
///   (the lexer's own "unclosed" errors are left to the scan);
/// - whichever comes first in the text is reported, as a lexer reading from the start
///   would;
/// - type errors get Prometheus's wording and, where the argument is found, its position
///   ([`type_error`]); grammar errors the position of the unexpected token and Prometheus's
///   description of it ([`grammar_error`]), and the errors the grammar's actions raise (a
///   trailing comma, a range after an expression) the position of their token.
pub fn locate(query: &str, message: String) -> Error {
    let bracket = bracket_error(query);
    let lex_error = match promql_parser::parser::lexer(query) {
        // The lexer also refuses brackets left open at the end: an error that closing them
        // removes is about the end of the text, no character's.
        Err(lex_message)
            if bracket
                .as_ref()
                .and_then(|b| b.closers.as_ref())
                .is_some_and(|closers| {
                    let closed = format!("{query}{closers}");
                    !matches!(promql_parser::parser::lexer(&closed), Err(m) if m == lex_message)
                }) =>
        {
            None
        }
        Err(lex_message) if query.len() <= MAX_LOCATED_LEN => {
            shortest_failing_prefix(query, &lex_message).map(|offset| (offset, lex_message))
        }
        _ => None,
    };
    // An unclosed bracket counts only when closing it makes the query parse: otherwise
    // Prometheus's parser stops at an earlier grammar error first.
    let bracket = bracket.filter(|b| {
        b.closers.as_ref().is_none_or(|closers| {
            promql_parser::parser::parse(&format!("{query}{closers}")).is_ok()
        })
    });
    let located = match (bracket, lex_error) {
        // The same error seen by both: the scan has Prometheus's offset.
        (Some(bracket), Some(lex)) if lex.0 < bracket.offset && lex.1 != bracket.message => {
            Some(lex)
        }
        (Some(bracket), _) => Some((bracket.offset, bracket.message.to_owned())),
        (None, lex) => lex,
    };
    let (message, offset) = match located {
        Some((offset, message)) => (message, Some(offset)),
        None if message == grammar_error::GRAMMAR_ERROR => match grammar_error::locate(query) {
            Some((offset, message)) => (message, Some(offset)),
            None => (message, None),
        },
        // Prometheus type-checks only a query its grammar accepted: a construct its
        // grammar's actions refuse is reported before a type error, wherever it is.
        None if grammar_error::is_action_message(&message)
            || type_error::is_type_message(&message) =>
        {
            match grammar_error::first_action_error(query) {
                Some((offset, action)) => (action.to_owned(), Some(offset)),
                None if message == binary_error::MESSAGE => {
                    let offset = binary_error::locate(query);
                    (message, offset)
                }
                None => match type_error::locate(query, &message) {
                    Some((offset, message)) => (message, offset),
                    None => (message, None),
                },
            }
        }
        None => (message, None),
    };
    Error::Parse {
        message,
        position: offset.map(|offset| Position::of_offset(query, offset)),
    }
}

/// The offset of the last character of the shortest prefix of `query` whose lexing fails
/// with `message`.
fn shortest_failing_prefix(query: &str, message: &str) -> Option<usize> {
    query
        .char_indices()
        .find(|&(offset, c)| {
            let prefix = &query[..offset + c.len_utf8()];
            matches!(promql_parser::parser::lexer(prefix), Err(m) if m == message)
        })
        .map(|(offset, _)| offset)
}

/// The end (exclusive) of the quoted string starting at `start`, or `None` if it is not
/// terminated. Backslash escapes count except in raw (backquoted) strings.
pub(super) fn quoted_end(query: &str, start: usize) -> Option<usize> {
    let quote = query[start..].chars().next()?;
    let mut chars = query[start + quote.len_utf8()..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Some(start + quote.len_utf8() + offset + c.len_utf8());
        }
        if c == '\\' && quote != '`' {
            chars.next();
        }
    }
    None
}

/// What closes the brackets `text` leaves open (empty when balanced); `None` if it has a
/// surplus closing one or an unterminated string.
pub(super) fn bracket_closers(text: &str) -> Option<String> {
    match bracket_error(text) {
        None => Some(String::new()),
        Some(error) => error.closers,
    }
}

/// An unbalanced parenthesis, bracket or brace.
struct BracketError {
    /// Where Prometheus reports it.
    offset: usize,
    /// Prometheus's message.
    message: &'static str,
    /// For one left open at the end: the text that closes what is open.
    closers: Option<String>,
}

/// The first unbalanced parenthesis, bracket or brace of `query`, at the offset Prometheus
/// reports (its lexer's position at that point: after a surplus `)`, at the end of the text
/// for an unclosed one). Strings and `#` comments are skipped; an unterminated string ends
/// the scan (the lexer reports it).
fn bracket_error(query: &str) -> Option<BracketError> {
    let mut chars = query.char_indices().peekable();
    let mut paren_depth = 0usize;
    let mut bracket_open = false;
    let mut brace_open = false;
    let surplus = |offset, message| {
        Some(BracketError {
            offset,
            message,
            closers: None,
        })
    };
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let end = quoted_end(query, offset)?;
                while chars.next_if(|&(inner, _)| inner < end).is_some() {}
            }
            '#' if !brace_open => while chars.next_if(|&(_, inner)| inner != '\n').is_some() {},
            _ if brace_open => brace_open = c != '}',
            '{' => brace_open = true,
            '}' => return surplus(offset, "unexpected character: '}'"),
            '(' => paren_depth += 1,
            ')' if paren_depth == 0 => {
                return surplus(offset + 1, "unexpected right parenthesis ')'");
            }
            ')' => paren_depth -= 1,
            '[' if bracket_open => return surplus(offset, "unexpected left bracket '['"),
            '[' => bracket_open = true,
            ']' if !bracket_open => return surplus(offset, "unexpected right bracket ']'"),
            ']' => bracket_open = false,
            _ => {}
        }
    }
    let message = if brace_open {
        "unexpected end of input inside braces"
    } else if paren_depth > 0 {
        "unclosed left parenthesis"
    } else if bracket_open {
        "unclosed left bracket"
    } else {
        return None;
    };
    let mut closers = String::new();
    if brace_open {
        closers.push('}');
    }
    if bracket_open {
        closers.push(']');
    }
    closers.extend(std::iter::repeat_n(')', paren_depth));
    Some(BracketError {
        offset: query.len(),
        message,
        closers: Some(closers),
    })
}

/// The matchers of a series selector such as `up{job="node"}` — what the API's `match[]`
/// parameters hold. Anything but a plain selector is refused.
pub fn parse_selector(selector: &str) -> Result<Vec<Matcher>> {
    match parse(selector)? {
        Expr::VectorSelector(vs) => selector_matchers(&vs),
        _ => Err(Error::parse(format!(
            "{selector:?} is not a series selector (e.g. up{{job=\"node\"}})"
        ))),
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
    sightline_core::selector::vector_selector_matchers(vs).map_err(|e| Error::parse(e.to_string()))
}

/// Removes parentheses around an expression.
pub(crate) fn unwrap_parens(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    expr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each query's error as Prometheus 2.42 prints it (`/api/v1/query`'s `error` after
    /// `invalid parameter "query": `).
    #[test]
    fn parse_errors_carry_prometheus_positions() {
        let cases = [
            (
                "sum(rate(x[5m])",
                "1:16: parse error: unclosed left parenthesis",
            ),
            (
                "sum(x))",
                "1:8: parse error: unexpected right parenthesis ')'",
            ),
            (
                "x{a=\"b\"",
                "1:8: parse error: unexpected end of input inside braces",
            ),
            ("x[5m", "1:5: parse error: unclosed left bracket"),
            ("x]", "1:2: parse error: unexpected right bracket ']'"),
            ("x}", "1:2: parse error: unexpected character: '}'"),
            ("{a=\"b\"}}", "1:8: parse error: unexpected character: '}'"),
            ("x[5m]]", "1:6: parse error: unexpected right bracket ']'"),
            ("foo $ bar", "1:5: parse error: unexpected character: '$'"),
            (
                "sum(x)\n by (",
                "2:6: parse error: unclosed left parenthesis",
            ),
            (
                "sum(x) # a comment (\n + 1)",
                "2:6: parse error: unexpected right parenthesis ')'",
            ),
            (
                "rate(foo)",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "sum(rate(foo))",
                "1:10: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "rate(rate(foo[1m]))",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "histogram_quantile(foo, bar)",
                "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant vector",
            ),
            (
                "abs(foo[1m]) + 1",
                "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector",
            ),
            (
                "label_replace(foo, \"a\", \"b\", \"c\", 1)",
                "1:35: parse error: expected type string in call to function \"label_replace\", got scalar",
            ),
            (
                "topk(foo, bar)",
                "1:6: parse error: expected type scalar in aggregation parameter, got instant vector",
            ),
            (
                "count_values(1, foo)",
                "1:14: parse error: expected type string in aggregation parameter, got scalar",
            ),
            (
                "sum(foo[5m])",
                "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "SUM BY (a) (\n  foo[5m])",
                "2:3: parse error: expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "sum(x) by (a) + rate(y)",
                "1:22: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "round(foo, bar)",
                "1:12: parse error: expected type scalar in call to function \"round\", got instant vector",
            ),
            (
                "quantile(foo, bar)",
                "1:10: parse error: expected type scalar in aggregation parameter, got instant vector",
            ),
            (
                "sum without (a) (rate(x))",
                "1:23: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "rate(x[5m],)",
                "1:11: parse error: trailing commas not allowed in function call args",
            ),
            (
                "sum by (a,) (label_replace(x, \"a\", \"b\", \"c\", \"d\",))",
                "1:49: parse error: trailing commas not allowed in function call args",
            ),
            (
                "topk(3, x,)",
                "1:10: parse error: trailing commas not allowed in function call args",
            ),
            (
                "sum(x,)",
                "1:6: parse error: trailing commas not allowed in function call args",
            ),
            (
                "sum(x)[5m]",
                "1:7: parse error: ranges only allowed for vector selectors",
            ),
            (
                "(x)[5m]",
                "1:4: parse error: ranges only allowed for vector selectors",
            ),
            (
                "\"a\"[5m]",
                "1:4: parse error: ranges only allowed for vector selectors",
            ),
            (
                "x[5m:1m][5m]",
                "1:9: parse error: ranges only allowed for vector selectors",
            ),
            (
                "x[5m] offset 1m [1m]",
                "1:17: parse error: ranges only allowed for vector selectors",
            ),
            (
                "round(x, 1) + clamp(y, 1, 2,)",
                "1:28: parse error: trailing commas not allowed in function call args",
            ),
            // Groupings after the offending call cut off mid-way do not parse: only the
            // first construct that gives the message counts, whatever follows it.
            (
                "round(x, 1) + clamp(y,1,2,) + sum by (a, b) (x) + sum by (c, d) (x) + sum by (e, f) (x) + sum by (g, h) (x)",
                "1:26: parse error: trailing commas not allowed in function call args",
            ),
            (
                "x offset 5m [5m]",
                "1:13: parse error: no offset modifiers allowed before range",
            ),
            (
                "x @ 5 [5m]",
                "1:7: parse error: no @ modifiers allowed before range",
            ),
            (
                "clamp(\"a\", 1, 2)",
                "1:7: parse error: expected type instant vector in call to function \"clamp\", got string",
            ),
            // Prometheus type-checks only a query that parsed: a syntax error anywhere is
            // reported before a type error, even one earlier in the text.
            (
                "x[1m] + y[1m] + sum(z)[1m] + w[1m]",
                "1:23: parse error: ranges only allowed for vector selectors",
            ),
            (
                "x[1m] + y[1m] + (z)[1m]",
                "1:20: parse error: ranges only allowed for vector selectors",
            ),
            (
                "rate(x) + sum(z)[1m]",
                "1:17: parse error: ranges only allowed for vector selectors",
            ),
            (
                "x[1m] + 1 foo",
                "1:11: parse error: unexpected identifier \"foo\"",
            ),
            (
                "sum(x[1m]) + foo bar",
                "1:18: parse error: unexpected identifier \"bar\"",
            ),
            // The operand of the wrong type, the first in post-order (children before their
            // parent, left before right).
            (
                "x[5m] + 1",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "foo + x[1m] * 2",
                "1:7: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "a * b + x[1m]",
                "1:9: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "-a + x[1m]",
                "1:6: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "sum(x) by (a) + y[5m]",
                "1:17: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "(x[1m]) + 1",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "rate(x[1m]) + sum(a[1m] + 1)",
                "1:19: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "1 + \"a\"",
                "1:5: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x and y[5m]",
                "1:7: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x + on(a) group_left(b) y[5m]",
                "1:25: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x > bool y[5m]",
                "1:10: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[5m:1m] offset 1m / 2",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "a + (b * c[1m])",
                "1:10: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] ^ 2 ^ 3",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "a or b and c[1m]",
                "1:12: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "2 ^ x[1m]",
                "1:5: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "foo{a=\"b\"} / bar[1m] @ 100",
                "1:14: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] + (a + y[1m])",
                "1:14: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] + a * y[1m]",
                "1:13: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] * a + y[1m]",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "sum(x[1m] + 1) + z[1m]",
                "1:5: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] + rate(y[1m] + 1)",
                "1:14: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x[1m] + y[1m] + rate(z[1m] offset 1m)",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "sum by (a) (x) * on(a) group_right y[1m] @ start()",
                "1:36: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "\"a\" + 1",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "x / (y)[5m:]",
                "1:5: parse error: binary expression must contain only scalar and instant vector types",
            ),
        ];
        let mut wrong = Vec::new();
        for (query, expected) in cases {
            let error = parse(query).expect_err(query).to_string();
            if error != expected {
                wrong.push(format!(
                    "{query:?}: got {error:?}, Prometheus says {expected:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn unterminated_string_is_located_at_its_quote() {
        let error = parse("x{a=\"b").expect_err("unterminated");
        assert!(
            error
                .to_string()
                .starts_with("1:5: parse error: unterminated quoted string"),
            "{error}"
        );
    }

    /// Grammar errors as Prometheus 2.42 reports them, but for the part that says what it
    /// expected instead (`in grouping opts, expected "("`), which is not reproduced.
    #[test]
    fn grammar_errors_carry_the_unexpected_token_and_its_position() {
        let cases = [
            ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
            ("foo 1", "1:5: parse error: unexpected number \"1\""),
            (
                "foo \"a\"",
                "1:5: parse error: unexpected string \"\\\"a\\\"\"",
            ),
            ("1 +* 2", "1:4: parse error: unexpected <op:*>"),
            ("sum(x) by by", "1:11: parse error: unexpected <by>"),
            ("foo sum", "1:5: parse error: unexpected <aggr:sum>"),
            ("foo bool", "1:5: parse error: unexpected <bool>"),
            (
                "x == bool 1 2",
                "1:13: parse error: unexpected number \"2\"",
            ),
            ("sum(x) (y)", "1:8: parse error: unexpected \"(\""),
            ("foo[5m] 1", "1:9: parse error: unexpected number \"1\""),
            (
                "foo{a=\"b\"} {c=\"d\"}",
                "1:12: parse error: unexpected \"{\"",
            ),
            (
                "rate(x[5m]) 5m",
                "1:13: parse error: unexpected duration \"5m\"",
            ),
            ("foo on", "1:5: parse error: unexpected <on>"),
            ("abs(x) y", "1:8: parse error: unexpected identifier \"y\""),
            ("foo, bar", "1:4: parse error: unexpected \",\""),
            ("foo 0x1F", "1:5: parse error: unexpected number \"0x1F\""),
            (
                "topk(1, x) by (a) (b)",
                "1:19: parse error: unexpected \"(\"",
            ),
            (
                "sum by (a b) (x)",
                "1:11: parse error: unexpected identifier \"b\"",
            ),
            (
                "foo @ bar",
                "1:7: parse error: unexpected identifier \"bar\"",
            ),
            ("sum(foo) by", "1:12: parse error: unexpected end of input"),
            (
                "rate(foo[5m]) +",
                "1:16: parse error: unexpected end of input",
            ),
            ("foo and", "1:8: parse error: unexpected end of input"),
            ("sum without", "1:12: parse error: unexpected end of input"),
            ("-", "1:2: parse error: unexpected end of input"),
            (
                "histogram_quantile(0.9, sum by (le) rate(x[5m]))",
                "1:37: parse error: unexpected identifier \"rate\" in aggregation",
            ),
            (
                "a + on(b) group_left(c d) e",
                "1:24: parse error: unexpected identifier \"d\" in grouping opts, expected \",\" or \")\"",
            ),
            (
                "{a=\"b\" c=\"d\"}",
                "1:8: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"",
            ),
            ("a > bool", "1:9: parse error: unexpected end of input"),
            ("x[5m:1m] 3", "1:10: parse error: unexpected number \"3\""),
            (
                "label_replace(x, \"a\", \"b\" \"c\", \"d\")",
                "1:27: parse error: unexpected string \"\\\"c\\\"\"",
            ),
            (
                "foo{a=\"b\"} offset 5m @ 1 2",
                "1:26: parse error: unexpected number \"2\"",
            ),
            ("-x y", "1:4: parse error: unexpected identifier \"y\""),
            (
                "topk by (a) (5, x) y",
                "1:20: parse error: unexpected identifier \"y\"",
            ),
            ("x offset 5m bool", "1:13: parse error: unexpected <bool>"),
        ];
        let mut wrong = Vec::new();
        for (query, expected) in cases {
            let error = parse(query).expect_err(query).to_string();
            if !expected.starts_with(&error) && error != expected {
                wrong.push(format!("{query:?}: {error} (Prometheus: {expected})"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn positions_count_lines_and_bytes() {
        assert_eq!(
            Position::of_offset("ab\ncd", 4),
            Position { line: 2, column: 2 }
        );
        assert_eq!(
            Position::of_offset("ab", 9),
            Position { line: 1, column: 3 }
        );
    }
}
