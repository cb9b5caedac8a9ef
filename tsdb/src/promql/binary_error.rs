//! Prometheus's position for the parser's binary-expression type error.
//!
//! Prometheus checks types once a query parsed, children before their parent (post-order),
//! and reports `binary expression must contain only scalar and instant vector types` at
//! the operand of the wrong type — a range vector (a selector with a range, a subquery,
//! either in parentheses) or a string — the left one first. `promql-parser` gives the
//! message alone, so the operand is found here from the tokens: each level of the query
//! (the whole text, and each argument or parenthesised expression) is cut into operands and
//! binary operators, PromQL's precedences make those a tree, and the first node in
//! post-order that has an operand of the wrong type names it.

use super::grammar_error::{Kind, Token, WORD_OPERATORS, bracket_partners, tokens};
use super::parser::MAX_LOCATED_LEN;

/// The parser's message for a binary operation on a range vector or a string.
pub(super) const MESSAGE: &str =
    "binary expression must contain only scalar and instant vector types";

/// The offset of the operand Prometheus reports [`MESSAGE`] at in `query`; `None` when
/// none is found (or the query is too long to search).
pub(super) fn locate(query: &str) -> Option<usize> {
    if query.len() > MAX_LOCATED_LEN {
        return None;
    }
    let text = Text::new(query)?;
    let mut failing: Vec<Failing> = Vec::new();
    text.level(0, text.tokens.len(), &mut failing);
    for (open, close) in text.groups() {
        let mut from = open + 1;
        for comma in text.top_level_commas(open + 1, close).chain([close]) {
            text.level(from, comma, &mut failing);
            from = comma + 1;
        }
    }
    // Post-order: a node is checked after everything that ends before it, and after the
    // nodes inside it that end where it does.
    failing
        .into_iter()
        .min_by_key(|f| (f.end, std::cmp::Reverse(f.start)))
        .map(|f| f.operand)
}

/// A binary node with an operand of the wrong type: its span in tokens and the offset of
/// that operand.
struct Failing {
    start: usize,
    end: usize,
    operand: usize,
}

/// An operand of a level: its tokens and whether its type is one a binary operation refuses.
#[derive(Clone, Copy)]
struct Operand {
    start: usize,
    end: usize,
    wrong_type: bool,
}

/// One side of a binary node: an operand, or a node (whose type is always acceptable).
#[derive(Clone, Copy)]
struct Side {
    start: usize,
    end: usize,
    operand: Option<Operand>,
}

/// PromQL's binary operator precedences, loosest first; `^` is right-associative.
fn precedence(operator: &str) -> Option<u8> {
    Some(match operator.to_ascii_lowercase().as_str() {
        "or" => 1,
        "and" | "unless" => 2,
        "==" | "!=" | "<=" | "<" | ">=" | ">" => 3,
        "+" | "-" => 4,
        "*" | "/" | "%" | "atan2" => 5,
        "^" => 6,
        _ => return None,
    })
}

/// The query's tokens and where each bracket is matched.
struct Text<'q> {
    query: &'q str,
    tokens: Vec<Token>,
    /// For each bracket, the one it pairs with ([`bracket_partners`]).
    partners: Vec<Option<usize>>,
}

impl<'q> Text<'q> {
    fn new(query: &'q str) -> Option<Text<'q>> {
        let tokens = tokens(query)?;
        let partners = bracket_partners(query, &tokens)?;
        Some(Text {
            query,
            tokens,
            partners,
        })
    }

    fn text(&self, index: usize) -> &'q str {
        self.tokens
            .get(index)
            .map_or("", |token| &self.query[token.start..token.end])
    }

    /// Each parenthesis pair, as the indexes of its two tokens.
    fn groups(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.tokens.len()).filter_map(|open| {
            (self.text(open) == "(").then_some(())?;
            Some((open, self.closing(open)?))
        })
    }

    /// The commas between `from` and `to` outside any bracket.
    fn top_level_commas(&self, from: usize, to: usize) -> impl Iterator<Item = usize> + '_ {
        let mut at = from;
        std::iter::from_fn(move || {
            while at < to {
                let index = at;
                at = self.after(index);
                if self.text(index) == "," {
                    return Some(index);
                }
            }
            None
        })
    }

    /// The closing bracket of the opening one at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        self.partners
            .get(open)
            .copied()
            .flatten()
            .filter(|&close| close > open)
    }

    /// The index after the token at `index`, or after its bracketed group.
    fn after(&self, index: usize) -> usize {
        self.closing(index).map_or(index + 1, |close| close + 1)
    }

    fn is_binary_operator(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        let text = self.text(index);
        (token.kind == Kind::Operator
            || WORD_OPERATORS.contains(&text.to_ascii_lowercase().as_str()))
            && precedence(text).is_some()
    }

    /// The operand starting at `from` (before `to`): unary signs, then its parts (names,
    /// literals, bracketed groups, `by`/`without` groupings, `offset` and `@` modifiers) up
    /// to a binary operator or a comma.
    fn operand(&self, from: usize, to: usize) -> Operand {
        let mut at = from;
        while at < to && matches!(self.text(at), "+" | "-") {
            at += 1;
        }
        let first = at;
        let mut range = false;
        let mut parts = 0;
        while at < to && self.text(at) != "," && !self.is_binary_operator(at) {
            match self.text(at).to_ascii_lowercase().as_str() {
                "offset" => {
                    at += 1;
                    while at < to && matches!(self.text(at), "+" | "-") {
                        at += 1;
                    }
                    at += 1;
                }
                "@" => {
                    at += 1;
                    while at < to && matches!(self.text(at), "+" | "-") {
                        at += 1;
                    }
                    at = self.after(at);
                    if at < to && self.text(at) == "(" {
                        at = self.after(at);
                    }
                }
                "by" | "without" => at = self.after(at + 1),
                "[" => {
                    range = true;
                    at = self.after(at);
                }
                _ => {
                    range = false;
                    parts += 1;
                    at = self.after(at);
                }
            }
        }
        let end = at.min(to);
        let only = |text: &str| parts == 1 && self.text(first) == text;
        let wrong_type = range
            || (parts == 1
                && self
                    .tokens
                    .get(first)
                    .is_some_and(|t| t.kind == Kind::String))
            || (only("(") && self.parenthesised_wrong_type(first));
        Operand {
            start: from,
            end,
            wrong_type,
        }
    }

    /// Whether the parenthesis at `open` holds a single operand of the wrong type.
    fn parenthesised_wrong_type(&self, open: usize) -> bool {
        let Some(close) = self.closing(open) else {
            return false;
        };
        let inner = self.operand(open + 1, close);
        inner.end == close && inner.wrong_type
    }

    /// Builds the tree of the level from `from` to `to` and notes its failing nodes.
    fn level(&self, from: usize, to: usize, failing: &mut Vec<Failing>) {
        let mut sides: Vec<Side> = Vec::new();
        let mut operators: Vec<u8> = Vec::new();
        let mut at = from;
        loop {
            let operand = self.operand(at, to);
            sides.push(Side {
                start: operand.start,
                end: operand.end,
                operand: Some(operand),
            });
            at = operand.end;
            if at >= to || !self.is_binary_operator(at) {
                break;
            }
            let Some(precedence) = precedence(self.text(at)) else {
                break;
            };
            // Reduce what binds tighter (or as tight, left-associative) than this operator.
            while let Some(&top) = operators.last() {
                if top > precedence || (top == precedence && precedence != 6) {
                    operators.pop();
                    self.reduce(&mut sides, failing);
                } else {
                    break;
                }
            }
            operators.push(precedence);
            at = self.after_operator(at + 1, to);
        }
        while operators.pop().is_some() {
            self.reduce(&mut sides, failing);
        }
    }

    /// Skips a binary operator's modifiers from `at`: `bool`, `on`/`ignoring` and
    /// `group_left`/`group_right` with their label lists.
    fn after_operator(&self, mut at: usize, to: usize) -> usize {
        while at < to {
            match self.text(at).to_ascii_lowercase().as_str() {
                "bool" => at += 1,
                "on" | "ignoring" | "group_left" | "group_right" => {
                    at += 1;
                    if self.text(at) == "(" {
                        at = self.after(at);
                    }
                }
                _ => break,
            }
        }
        at
    }

    /// Joins the last two sides into a node, noting it if an operand of it has the wrong
    /// type.
    fn reduce(&self, sides: &mut Vec<Side>, failing: &mut Vec<Failing>) {
        let (Some(rhs), Some(lhs)) = (sides.pop(), sides.pop()) else {
            return;
        };
        let wrong = [lhs.operand, rhs.operand]
            .into_iter()
            .flatten()
            .find(|operand| operand.wrong_type);
        if let Some(operand) = wrong.and_then(|operand| self.tokens.get(operand.start)) {
            failing.push(Failing {
                start: lhs.start,
                end: rhs.end,
                operand: operand.start,
            });
        }
        sides.push(Side {
            start: lhs.start,
            end: rhs.end,
            operand: None,
        });
    }
}
