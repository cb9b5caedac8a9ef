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
//! get the position of the token Prometheus reports them at ([`first_action_error`]).

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
/// reports it at: a trailing comma of call arguments is at the comma; a range after
/// something other than a plain vector selector is at its `[`.
const AT_TOKEN: [(&str, &str); 4] = [
    ("trailing commas not allowed in function call args", ","),
    ("ranges only allowed for vector selectors", "["),
    ("no offset modifiers allowed before range", "["),
    ("no @ modifiers allowed before range", "["),
];

/// Whether `message` is one the grammar's actions give ([`AT_TOKEN`]).
pub(super) fn is_action_message(message: &str) -> bool {
    AT_TOKEN.iter().any(|&(known, _)| known == message)
}

/// The first construct of `query`, in text order, that the grammar's actions refuse with a
/// message of [`AT_TOKEN`]: the offset of the token Prometheus reports it at, and the
/// message. Each such token is tried with the construct it belongs to, parsed alone (its
/// open brackets closed), so that an error elsewhere in the query — a type error earlier in
/// the text, which Prometheus checks only once the whole query parsed — does not hide it: a
/// `[` with the operand before it (from the farthest start that gives a message, so that
/// `x offset 5m [5m]` is about the offset), a comma with the call around it.
pub(super) fn first_action_error(query: &str) -> Option<(usize, &'static str)> {
    if query.len() > MAX_LOCATED_LEN {
        return None;
    }
    let tokens = tokens(query)?;
    let partners = bracket_partners(query, &tokens)?;
    let text = |token: &Token| &query[token.start..token.end];
    let mut parses_left = MAX_ACTION_PARSES;
    for (index, token) in tokens.iter().enumerate() {
        let anchor = text(token);
        let (starts, complete) = match anchor {
            "[" => (operand_starts(query, &tokens, &partners, index), "]"),
            // Only a comma right before the closing parenthesis is a trailing one.
            "," if tokens.get(index + 1).is_some_and(|next| text(next) == ")") => (
                callee_start(query, &tokens, &partners, index)
                    .into_iter()
                    .collect(),
                ")",
            ),
            _ => continue,
        };
        let Some(end) = tokens[index + 1..].iter().find(|t| text(t) == complete) else {
            continue;
        };
        for start in starts {
            if parses_left == 0 {
                return None;
            }
            parses_left -= 1;
            let construct = &query[tokens[start].start..end.end];
            let Some(closers) = bracket_closers(construct) else {
                continue;
            };
            let Err(message) = promql_parser::parser::parse(&format!("{construct}{closers}"))
            else {
                continue;
            };
            if let Some(&(known, _)) = AT_TOKEN
                .iter()
                .find(|&&(known, at)| known == message && at == anchor)
            {
                return Some((token.start, known));
            }
        }
    }
    None
}

/// The most constructs [`first_action_error`] parses for one query: a bound on the time an
/// error message may take.
const MAX_ACTION_PARSES: usize = 512;

/// The most tokens walked back from a `[` or a comma to the start of its construct.
const CONSTRUCT_TOKENS: usize = 64;

/// Where the operand before the `[` at `tokens[index]` may start, farthest first: token
/// indexes back to the operator, comma or unclosed bracket before it, stepping over whole
/// bracketed groups.
fn operand_starts(
    query: &str,
    tokens: &[Token],
    partners: &[Option<usize>],
    index: usize,
) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = index;
    while at > 0 && starts.len() < CONSTRUCT_TOKENS {
        at -= 1;
        let token = &tokens[at];
        let text = &query[token.start..token.end];
        if matches!(text, ")" | "]" | "}") {
            match partners[at] {
                Some(open) => at = open,
                None => break,
            }
        } else if matches!(text, "(" | "[" | "{" | ",")
            || token.kind == Kind::Operator
            || WORD_OPERATORS.contains(&text.to_ascii_lowercase().as_str())
        {
            break;
        }
        starts.push(at);
    }
    starts.reverse();
    starts
}

/// The index of the name of the call whose argument list holds the comma at
/// `tokens[index]`.
fn callee_start(
    query: &str,
    tokens: &[Token],
    partners: &[Option<usize>],
    index: usize,
) -> Option<usize> {
    let mut at = index;
    while at > 0 && index - at < CONSTRUCT_TOKENS {
        at -= 1;
        let token = &tokens[at];
        match &query[token.start..token.end] {
            ")" | "]" | "}" => at = partners[at]?,
            "(" => {
                let name = tokens.get(at.checked_sub(1)?)?;
                return (name.kind == Kind::Identifier).then_some(at - 1);
            }
            "[" | "{" => return None,
            _ => {}
        }
    }
    None
}

/// For each token, the bracket it pairs with: an opening bracket's closing one and a closing
/// bracket's opening one (`None` for other tokens and for brackets left open); brackets of
/// any kind pair as they nest. `None` when a closing bracket has nothing to close.
pub(super) fn bracket_partners(query: &str, tokens: &[Token]) -> Option<Vec<Option<usize>>> {
    let mut partners = vec![None; tokens.len()];
    let mut open = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match &query[token.start..token.end] {
            "(" | "[" | "{" => open.push(index),
            ")" | "]" | "}" => {
                let opener = open.pop()?;
                partners[opener] = Some(index);
                partners[index] = Some(opener);
            }
            _ => {}
        }
    }
    Some(partners)
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
pub(super) enum Kind {
    Identifier,
    Number,
    Duration,
    String,
    Operator,
    Punctuation,
}

pub(super) struct Token {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: Kind,
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
pub(super) const WORD_OPERATORS: [&str; 4] = ["and", "or", "unless", "atan2"];

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
pub(super) fn tokens(query: &str) -> Option<Vec<Token>> {
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
