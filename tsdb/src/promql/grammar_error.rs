//! A position and Prometheus's wording for the parser's grammar errors.
//!
//! For a query its grammar refuses, `promql-parser` says only `invalid promql query`;
//! Prometheus says where its parser stopped and what it found there: `1:5: parse error:
//! unexpected identifier "bar"`, or `unexpected end of input` when the text ended too soon.
//! The place is found here as the first token after which the text can no longer become a
//! query: each prefix ending at a token is tried with a few completions (an operand, a
//! duration, a grouping and what it groups, a label matcher, then whatever closes the
//! brackets left open), and the first prefix none of them completes ends at the unexpected
//! token; a binary search finds it, since a prefix that cannot continue makes every longer
//! one so too. Prometheus adds
//! what it expected in some places (`in grouping opts, expected "("`); that part is not
//! reproduced.
//!
//! The grammar's actions refuse a few constructs with a message of their own (a trailing
//! comma in call arguments, a range after something other than a vector selector); those
//! get the position of the token Prometheus reports them at ([`locate_at_token`]).

use super::parser::{MAX_LOCATED_LEN, bracket_closers, quoted_end};
use super::type_error::AGGREGATIONS;

/// The parser's message for any grammar error.
pub(super) const GRAMMAR_ERROR: &str = "invalid promql query";

/// Texts tried after a prefix to show that a query can still follow it.
const COMPLETIONS: [&str; 13] = [
    "", " x", " 1", "5m", " 5m", " (x)", " (a)", " (a) (x)", ") (x)", "a=\"b\"", "=\"b\"", "\"b\"",
    " x[5m]",
];

/// The offset of the unexpected token of `query` (its length for an unexpected end) and
/// Prometheus's message for it; `None` for a query too long to search or one that does not
/// lex.
pub(super) fn locate(query: &str) -> Option<(usize, String)> {
    if query.len() > MAX_LOCATED_LEN {
        return None;
    }
    // A prefix that cannot continue makes every longer one so too: a binary search.
    let tokens = tokens(query)?;
    let first_stuck = tokens.partition_point(|token| can_continue(&query[..token.end]));
    Some(match tokens.get(first_stuck) {
        Some(token) => (token.start, format!("unexpected {}", token.describe(query))),
        None => (query.len(), "unexpected end of input".to_owned()),
    })
}

/// Messages the grammar's actions give without a position, each with the token Prometheus
/// reports it at and the token that completes the construct after it: a trailing comma of
/// call arguments is at the comma (and is complete at the `)` after it); a range after
/// something other than a plain vector selector is at its `[` (complete at the next `]`).
const AT_TOKEN: [(&str, &str, &str); 4] = [
    (
        "trailing commas not allowed in function call args",
        ",",
        ")",
    ),
    ("ranges only allowed for vector selectors", "[", "]"),
    ("no offset modifiers allowed before range", "[", "]"),
    ("no @ modifiers allowed before range", "[", "]"),
];

/// The offset of the token Prometheus reports `message` at, for the messages of
/// [`AT_TOKEN`]: the first such token whose construct (up to the next completing token, with
/// no other such token in it), cut off there and its open brackets closed, already gives
/// `message`.
pub(super) fn locate_at_token(query: &str, message: &str) -> Option<usize> {
    let &(_, anchor, complete) = AT_TOKEN.iter().find(|(known, ..)| *known == message)?;
    if query.len() > MAX_LOCATED_LEN {
        return None;
    }
    let tokens = tokens(query)?;
    let text = |token: &Token| &query[token.start..token.end];
    tokens.iter().enumerate().find_map(|(index, token)| {
        if text(token) != anchor {
            return None;
        }
        // The construct ends at the next `complete` token; one holding another anchor (a
        // comma between arguments) is some other anchor's.
        let rest = &tokens[index + 1..];
        let close = rest.iter().position(|t| text(t) == complete)?;
        if rest[..close].iter().any(|t| text(t) == anchor) {
            return None;
        }
        let prefix = &query[..rest[close].end];
        let closed = format!("{prefix}{}", bracket_closers(prefix)?);
        matches!(promql_parser::parser::parse(&closed), Err(m) if m == message)
            .then_some(token.start)
    })
}

/// Whether some completion turns `prefix` into a query the grammar accepts (type errors
/// are past the grammar, so they count as accepted).
fn can_continue(prefix: &str) -> bool {
    COMPLETIONS.iter().any(|completion| {
        let text = format!("{prefix}{completion}");
        let Some(closers) = bracket_closers(&text) else {
            return false;
        };
        let closed = format!("{text}{closers}");
        match promql_parser::parser::parse(&closed) {
            Ok(_) => true,
            Err(message) => {
                message != GRAMMAR_ERROR
                    && !message.starts_with("unexpected")
                    && promql_parser::parser::lexer(&closed).is_ok()
            }
        }
    })
}

/// What a token is, for the message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Identifier,
    Number,
    Duration,
    String,
    Operator,
    Punctuation,
}

struct Token {
    start: usize,
    end: usize,
    kind: Kind,
}

/// PromQL's keywords other than operators, as Prometheus names them (`<by>`).
const KEYWORDS: [&str; 9] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "start",
];

/// Operators spelt as words (`<op:and>`).
const WORD_OPERATORS: [&str; 4] = ["and", "or", "unless", "atan2"];

impl Token {
    /// The token as Prometheus's messages describe it.
    fn describe(&self, query: &str) -> String {
        let text = &query[self.start..self.end];
        let lower = text.to_ascii_lowercase();
        match self.kind {
            Kind::Identifier if AGGREGATIONS.contains(&lower.as_str()) => format!("<aggr:{lower}>"),
            Kind::Identifier if WORD_OPERATORS.contains(&lower.as_str()) => format!("<op:{lower}>"),
            Kind::Identifier if KEYWORDS.contains(&lower.as_str()) => format!("<{lower}>"),
            Kind::Identifier => format!("identifier {text:?}"),
            Kind::Number => format!("number {text:?}"),
            Kind::Duration => format!("duration {text:?}"),
            Kind::String => format!("string {text:?}"),
            Kind::Operator => format!("<op:{text}>"),
            Kind::Punctuation => format!("{text:?}"),
        }
    }
}

/// The tokens of `query`, roughly as PromQL's lexer cuts them (whitespace and comments
/// skipped); `None` if a string is not terminated.
fn tokens(query: &str) -> Option<Vec<Token>> {
    let bytes = query.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        let (end, kind) = match c {
            _ if c.is_ascii_whitespace() => {
                at += 1;
                continue;
            }
            b'#' => {
                at = query[at..].find('\n').map_or(bytes.len(), |n| at + n);
                continue;
            }
            b'"' | b'\'' | b'`' => (quoted_end(query, at)?, Kind::String),
            b'0'..=b'9' | b'.' => {
                let mut end = run_end(bytes, at, |b| b.is_ascii_alphanumeric() || b == b'.');
                // An exponent's sign: `1e+3`.
                while matches!(bytes.get(end), Some(b'+' | b'-'))
                    && matches!(bytes[end - 1], b'e' | b'E')
                    && !query[at..end].starts_with("0x")
                {
                    end = run_end(bytes, end + 1, |b| b.is_ascii_alphanumeric() || b == b'.');
                }
                let text = &query[at..end];
                let is_duration = text.chars().last().is_some_and(|c| "smhdwy".contains(c))
                    && !text.starts_with("0x");
                (
                    end,
                    if is_duration {
                        Kind::Duration
                    } else {
                        Kind::Number
                    },
                )
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b':' => (
                run_end(bytes, at, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
                }),
                Kind::Identifier,
            ),
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b'@' => (at + 1, Kind::Punctuation),
            _ => {
                let two = query.get(at..at + 2).unwrap_or("");
                let len = if ["==", "!=", ">=", "<=", "=~", "!~"].contains(&two) {
                    2
                } else {
                    query[at..].chars().next().map_or(1, char::len_utf8)
                };
                (at + len, Kind::Operator)
            }
        };
        found.push(Token {
            start: at,
            end,
            kind,
        });
        at = end;
    }
    Some(found)
}

/// The end of the run of bytes from `start` that `belongs` accepts.
fn run_end(bytes: &[u8], start: usize, belongs: impl Fn(u8) -> bool) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| !belongs(b))
        .map_or(bytes.len(), |n| start + n)
}
