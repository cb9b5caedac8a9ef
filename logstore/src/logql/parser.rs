//! The LogQL parser: a recursive-descent parser over [`lexer`](super::lexer) tokens, written
//! from Loki's documentation (<https://grafana.com/docs/loki/latest/query/>), not from its
//! code.
//!
//! Decided here, where the documentation leaves room:
//! - In label filters `and` (also `,`, juxtaposition) binds tighter than `or`; parentheses
//!   group.
//! - A label filter value that is a string compares as text (`=`, `!=`, `=~`, `!~`); a number,
//!   duration (`20ms`) or byte size (`5KB`) compares numerically (`=` means `==`).
//! - The range of a range aggregation may follow the selector or the pipeline:
//!   `count_over_time({a="b"}[5m] |= "x")` and `count_over_time({a="b"} |= "x" [5m])`.
//! - Binary operators follow PromQL's precedence; `^` is right-associative.

use regex::Regex;
use sightline_core::matcher::{MatchOp, Matcher};

use super::ast::{
    BinOp, CmpOp, Expr, Extraction, Grouping, LabelFilter, LabelFilterText, LabelFormat,
    LabelSelect, LineFilter, LineFilterOp, LogExpr, MetricExpr, PatternPart, RANGE_OPS, RangeOp,
    Stage, Unwrap, VECTOR_OPS, ValueKind, VectorMatching, VectorOp,
};
use super::error::Error;
use super::lexer::{Token, TokenKind, tokenize};
use super::template::Template;
use super::units;

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Expr, Error> {
    let tokens = tokenize(query)?;
    let mut parser = Parser {
        query,
        tokens,
        at: 0,
    };
    let expr = parser.expr(0)?;
    if !parser.peek_is(&TokenKind::End) {
        return Err(parser.unexpected());
    }
    Ok(match expr {
        Operand::Log(log) => Expr::Log(log),
        Operand::Metric(metric) => Expr::Metric(metric),
    })
}

/// Parses a stream selector alone (`match[]` of `/series`, `query` of `/labels`).
pub fn parse_selector(query: &str) -> Result<Vec<Matcher>, Error> {
    match parse(query)? {
        Expr::Log(log) if log.stages.is_empty() => Ok(log.matchers),
        _ => Err(Error::parse(
            query,
            0,
            "syntax error: expected a stream selector such as {app=\"api\"}",
        )),
    }
}

/// What a sub-expression parsed to: a log query may only stand at the top or inside a range
/// aggregation.
enum Operand {
    Log(LogExpr),
    Metric(MetricExpr),
}

struct Parser<'a> {
    query: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

fn describe(kind: &TokenKind) -> String {
    match kind {
        TokenKind::Ident(name) => format!("IDENTIFIER {name:?}"),
        TokenKind::Str(text) => format!("STRING {text:?}"),
        TokenKind::Value(text) => format!("NUMBER {text:?}"),
        TokenKind::Flag(flag) => format!("flag --{flag}"),
        TokenKind::Symbol(symbol) => format!("{symbol:?}"),
        TokenKind::End => "end of input".to_owned(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.at.min(self.tokens.len() - 1)].kind
    }

    fn peek_at(&self, ahead: usize) -> &TokenKind {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].kind
    }

    fn offset(&self) -> usize {
        self.tokens[self.at.min(self.tokens.len() - 1)].offset
    }

    fn peek_is(&self, kind: &TokenKind) -> bool {
        self.peek() == kind
    }

    fn peek_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), TokenKind::Symbol(s) if *s == symbol)
    }

    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Ident(name) if name == word)
    }

    fn advance(&mut self) -> TokenKind {
        let kind = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        kind
    }

    fn error_here(&self, message: impl Into<String>) -> Error {
        Error::parse(self.query, self.offset(), message)
    }

    fn unexpected(&self) -> Error {
        self.error_here(format!(
            "syntax error: unexpected {}",
            describe(self.peek())
        ))
    }

    fn expected(&self, what: &str) -> Error {
        self.error_here(format!(
            "syntax error: unexpected {}, expected {what}",
            describe(self.peek())
        ))
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if self.peek_symbol(symbol) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), Error> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(self.expected(&format!("{symbol:?}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, Error> {
        match self.peek().clone() {
            TokenKind::Ident(name) => {
                self.advance();
                Ok(name)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, Error> {
        match self.peek().clone() {
            TokenKind::Str(text) => {
                self.advance();
                Ok(text)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn number(&mut self) -> Result<f64, Error> {
        let negative = self.eat_symbol("-");
        match self.peek().clone() {
            TokenKind::Value(text) => {
                let value = units::parse_number(&text)
                    .ok_or_else(|| self.error_here(format!("invalid number {text:?}")))?;
                self.advance();
                Ok(if negative { -value } else { value })
            }
            _ => Err(self.expected("a number")),
        }
    }

    fn duration_ns(&mut self) -> Result<i64, Error> {
        match self.peek().clone() {
            TokenKind::Value(text) => {
                let ns = units::parse_duration_ns(&text)
                    .filter(|ns| *ns > 0)
                    .ok_or_else(|| {
                        self.error_here(format!("invalid duration {text:?}, expected e.g. 5m"))
                    })?;
                self.advance();
                Ok(ns)
            }
            _ => Err(self.expected("a duration")),
        }
    }

    // ---- expressions ----

    /// Precedence climbing over binary operators.
    fn expr(&mut self, min_precedence: u8) -> Result<Operand, Error> {
        let mut lhs = self.unary()?;
        loop {
            let start = self.offset();
            let Some(op) = self.binary_op() else {
                break;
            };
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            self.advance();
            let return_bool = matches!(op, BinOp::Cmp(_)) && {
                let is_bool = self.peek_ident("bool");
                if is_bool {
                    self.advance();
                }
                is_bool
            };
            let matching = self.vector_matching()?;
            // `^` is right-associative: its right side may hold another `^`.
            let next = if op == BinOp::Pow {
                precedence
            } else {
                precedence + 1
            };
            let rhs = self.expr(next)?;
            let (Operand::Metric(left), Operand::Metric(right)) = (lhs, rhs) else {
                return Err(Error::parse(
                    self.query,
                    start,
                    format!(
                        "syntax error: unexpected {:?}: binary operations need metric queries or numbers on both sides, not log queries",
                        op.text()
                    ),
                ));
            };
            lhs = Operand::Metric(MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs: Box::new(left),
                rhs: Box::new(right),
            });
        }
        Ok(lhs)
    }

    fn binary_op(&self) -> Option<BinOp> {
        Some(match self.peek() {
            TokenKind::Symbol("+") => BinOp::Add,
            TokenKind::Symbol("-") => BinOp::Sub,
            TokenKind::Symbol("*") => BinOp::Mul,
            TokenKind::Symbol("/") => BinOp::Div,
            TokenKind::Symbol("%") => BinOp::Mod,
            TokenKind::Symbol("^") => BinOp::Pow,
            TokenKind::Symbol("==") => BinOp::Cmp(CmpOp::Eq),
            TokenKind::Symbol("!=") => BinOp::Cmp(CmpOp::Ne),
            TokenKind::Symbol(">") => BinOp::Cmp(CmpOp::Gt),
            TokenKind::Symbol(">=") => BinOp::Cmp(CmpOp::Ge),
            TokenKind::Symbol("<") => BinOp::Cmp(CmpOp::Lt),
            TokenKind::Symbol("<=") => BinOp::Cmp(CmpOp::Le),
            TokenKind::Ident(word) if word == "and" => BinOp::And,
            TokenKind::Ident(word) if word == "or" => BinOp::Or,
            TokenKind::Ident(word) if word == "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    fn vector_matching(&mut self) -> Result<Option<VectorMatching>, Error> {
        let on = if self.peek_ident("on") {
            true
        } else if self.peek_ident("ignoring") {
            false
        } else {
            return Ok(None);
        };
        self.advance();
        let labels = self.label_list()?;
        if self.peek_ident("group_left") || self.peek_ident("group_right") {
            return Err(self.error_here(
                "group_left and group_right are not supported; aggregate one side with sum by (…) first",
            ));
        }
        Ok(Some(VectorMatching { on, labels }))
    }

    fn unary(&mut self) -> Result<Operand, Error> {
        match self.peek().clone() {
            TokenKind::Symbol("-") | TokenKind::Symbol("+") => {
                let negative = self.peek_symbol("-");
                self.advance();
                let inner = self.unary()?;
                match inner {
                    Operand::Metric(MetricExpr::Number(n)) => {
                        Ok(Operand::Metric(MetricExpr::Number(if negative {
                            -n
                        } else {
                            n
                        })))
                    }
                    Operand::Metric(expr) if negative => Ok(Operand::Metric(MetricExpr::Binary {
                        op: BinOp::Mul,
                        return_bool: false,
                        matching: None,
                        lhs: Box::new(MetricExpr::Number(-1.0)),
                        rhs: Box::new(expr),
                    })),
                    other @ Operand::Metric(_) => Ok(other),
                    Operand::Log(_) => {
                        Err(self.error_here("syntax error: a sign cannot apply to a log query"))
                    }
                }
            }
            TokenKind::Value(_) => Ok(Operand::Metric(MetricExpr::Number(self.number()?))),
            TokenKind::Symbol("(") => {
                self.advance();
                let inner = self.expr(0)?;
                self.expect_symbol(")")?;
                Ok(match inner {
                    Operand::Metric(metric) => Operand::Metric(MetricExpr::Paren(Box::new(metric))),
                    log => log,
                })
            }
            TokenKind::Symbol("{") => {
                let log = self.log_expr()?;
                if self.peek_symbol("[") {
                    return Err(self.error_here(
                        "syntax error: a range [..] needs a range aggregation around it, e.g. count_over_time({…}[5m])",
                    ));
                }
                Ok(Operand::Log(log))
            }
            TokenKind::Ident(name) => {
                if let Some((_, op)) = RANGE_OPS.iter().find(|(n, _)| *n == name) {
                    self.advance();
                    return Ok(Operand::Metric(self.range_aggregation(*op)?));
                }
                if let Some((_, op)) = VECTOR_OPS.iter().find(|(n, _)| *n == name) {
                    self.advance();
                    return Ok(Operand::Metric(self.vector_aggregation(*op)?));
                }
                if name == "vector" {
                    self.advance();
                    self.expect_symbol("(")?;
                    let value = self.number()?;
                    self.expect_symbol(")")?;
                    return Ok(Operand::Metric(MetricExpr::Vector1(value)));
                }
                Err(self.error_here(format!(
                    "syntax error: unexpected IDENTIFIER {name:?}, expected a stream selector, a function or a number"
                )))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn label_list(&mut self) -> Result<Vec<String>, Error> {
        self.expect_symbol("(")?;
        let mut labels = Vec::new();
        while !self.peek_symbol(")") {
            labels.push(self.ident("a label name")?);
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(labels)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, Error> {
        let without = if self.peek_ident("by") {
            false
        } else if self.peek_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.advance();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn vector_aggregation(&mut self, op: VectorOp) -> Result<MetricExpr, Error> {
        let mut grouping = self.grouping()?;
        self.expect_symbol("(")?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let k = self.number()?;
            if k < 1.0 || k.fract() != 0.0 {
                return Err(self.error_here(format!(
                    "{}: the parameter must be a positive integer, not {k}",
                    op.name()
                )));
            }
            self.expect_symbol(",")?;
            Some(k)
        } else {
            None
        };
        let start = self.offset();
        let inner = match self.expr(0)? {
            Operand::Metric(metric) => metric,
            Operand::Log(_) => {
                return Err(Error::parse(
                    self.query,
                    start,
                    format!(
                        "syntax error: {} aggregates a metric query; wrap the log query in a range aggregation such as count_over_time(…[5m])",
                        op.name()
                    ),
                ));
            }
        };
        self.expect_symbol(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if matches!(op, VectorOp::Sort | VectorOp::SortDesc) && grouping.is_some() {
            return Err(self.error_here(format!("{} takes no grouping", op.name())));
        }
        Ok(MetricExpr::Vector {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        })
    }

    fn range_aggregation(&mut self, op: RangeOp) -> Result<MetricExpr, Error> {
        self.expect_symbol("(")?;
        let param = if op == RangeOp::Quantile {
            let phi = self.number()?;
            self.expect_symbol(",")?;
            Some(phi)
        } else {
            None
        };
        if !self.peek_symbol("{") {
            return Err(self.expected("a stream selector"));
        }
        let matchers = self.selector()?;
        let mut range_ns = None;
        if self.eat_symbol("[") {
            range_ns = Some(self.duration_ns()?);
            self.expect_symbol("]")?;
        }
        let mut stages = Vec::new();
        let mut unwrap = None;
        self.pipeline(&mut stages, Some(&mut unwrap))?;
        if range_ns.is_none() {
            if !self.eat_symbol("[") {
                return Err(self.expected("a range such as [5m]"));
            }
            range_ns = Some(self.duration_ns()?);
            self.expect_symbol("]")?;
        }
        let mut offset_ns = 0;
        if self.peek_ident("offset") {
            self.advance();
            offset_ns = self.duration_ns()?;
        }
        let close = self.offset();
        self.expect_symbol(")")?;
        let grouping = self.grouping()?;
        match (&unwrap, op.needs_unwrap()) {
            (None, true) => {
                return Err(Error::parse(
                    self.query,
                    close,
                    format!(
                        "syntax error: {} needs an unwrapped label: add | unwrap <label> before the range",
                        op.name()
                    ),
                ));
            }
            (Some(_), false) if op != RangeOp::Rate => {
                return Err(Error::parse(
                    self.query,
                    close,
                    format!("syntax error: {} does not take | unwrap", op.name()),
                ));
            }
            _ => {}
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(self.error_here(format!(
                "syntax error: grouping after {}(…) is only allowed for unwrapped range aggregations; use sum by (…) ({}(…)) instead",
                op.name(),
                op.name()
            )));
        }
        Ok(MetricExpr::Range {
            op,
            log: LogExpr { matchers, stages },
            range_ns: range_ns.unwrap_or_default(),
            offset_ns,
            unwrap,
            param,
            grouping,
        })
    }

    // ---- log queries ----

    fn log_expr(&mut self) -> Result<LogExpr, Error> {
        let matchers = self.selector()?;
        let mut stages = Vec::new();
        self.pipeline(&mut stages, None)?;
        Ok(LogExpr { matchers, stages })
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, Error> {
        self.expect_symbol("{")?;
        let mut matchers = Vec::new();
        while !self.peek_symbol("}") {
            matchers.push(self.matcher()?);
            if !self.eat_symbol(",") {
                break;
            }
        }
        let close = self.offset();
        self.expect_symbol("}")?;
        if matchers.is_empty() {
            return Err(Error::parse(
                self.query,
                close,
                "syntax error: unexpected }, expected a label matcher: a stream selector needs at least one",
            ));
        }
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(Error::parse(
                self.query,
                close,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(matchers)
    }

    fn match_op(&mut self) -> Option<MatchOp> {
        let op = match self.peek() {
            TokenKind::Symbol("=") => MatchOp::Equal,
            TokenKind::Symbol("!=") => MatchOp::NotEqual,
            TokenKind::Symbol("=~") => MatchOp::Regex,
            TokenKind::Symbol("!~") => MatchOp::NotRegex,
            _ => return None,
        };
        self.advance();
        Some(op)
    }

    fn matcher(&mut self) -> Result<Matcher, Error> {
        let name = self.ident("a label name")?;
        let op = self
            .match_op()
            .ok_or_else(|| self.expected("one of =, !=, =~, !~"))?;
        let value_at = self.offset();
        let value = self.string("a quoted label value")?;
        Matcher::new(op, name, value).map_err(|e| Error::parse(self.query, value_at, e.to_string()))
    }

    /// Pipeline stages; with `unwrap` given (inside a range aggregation) `| unwrap …` and the
    /// label filters after it are accepted.
    fn pipeline(
        &mut self,
        stages: &mut Vec<Stage>,
        mut unwrap: Option<&mut Option<Unwrap>>,
    ) -> Result<(), Error> {
        loop {
            let op = match self.peek() {
                TokenKind::Symbol("|=") => LineFilterOp::Contains,
                TokenKind::Symbol("!=") => LineFilterOp::NotContains,
                TokenKind::Symbol("|~") => LineFilterOp::Match,
                TokenKind::Symbol("!~") => LineFilterOp::NotMatch,
                TokenKind::Symbol("|") => {
                    self.advance();
                    let unwrapped = unwrap.as_deref().is_some_and(Option::is_some);
                    if self.peek_ident("unwrap") {
                        let Some(slot) = unwrap.as_deref_mut() else {
                            return Err(self.error_here(
                                "syntax error: unwrap is only allowed inside a range aggregation such as sum_over_time(… | unwrap x [5m])",
                            ));
                        };
                        if slot.is_some() {
                            return Err(self.error_here("syntax error: unwrap given twice"));
                        }
                        self.advance();
                        *slot = Some(self.unwrap_stage()?);
                        continue;
                    }
                    if unwrapped {
                        let start = self.offset();
                        let filter = self.label_filter_or()?;
                        if let Some(Some(u)) = unwrap.as_deref_mut() {
                            u.post_filters.push(LabelFilterText(filter));
                        } else {
                            return Err(Error::parse(self.query, start, "unexpected filter"));
                        }
                        continue;
                    }
                    stages.push(self.stage()?);
                    continue;
                }
                _ => return Ok(()),
            };
            if unwrap.as_deref().is_some_and(Option::is_some) {
                return Err(self.error_here("syntax error: line filters must come before | unwrap"));
            }
            self.advance();
            stages.push(Stage::LineFilter(self.line_filter(op)?));
        }
    }

    fn line_filter(&mut self, op: LineFilterOp) -> Result<LineFilter, Error> {
        let mut patterns = Vec::new();
        let mut regexes = Vec::new();
        loop {
            let at = self.offset();
            if self.peek_ident("ip") {
                return Err(self.error_here("ip() line filters are not supported"));
            }
            let pattern = self.string("a quoted string")?;
            if matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch) {
                regexes.push(Regex::new(&pattern).map_err(|e| {
                    Error::parse(
                        self.query,
                        at,
                        format!(
                            "invalid regular expression {pattern:?}: {}",
                            regex_reason(&e)
                        ),
                    )
                })?);
            }
            patterns.push(pattern);
            if self.peek_ident("or") && matches!(self.peek_at(1), TokenKind::Str(_)) {
                self.advance();
                continue;
            }
            return Ok(LineFilter {
                op,
                patterns,
                regexes,
            });
        }
    }

    fn unwrap_stage(&mut self) -> Result<Unwrap, Error> {
        let name = self.ident("a label name")?;
        let kind = match name.as_str() {
            "duration" | "duration_seconds" if self.peek_symbol("(") => ValueKind::Duration,
            "bytes" if self.peek_symbol("(") => ValueKind::Bytes,
            _ => {
                return Ok(Unwrap {
                    label: name,
                    kind: ValueKind::Number,
                    post_filters: Vec::new(),
                });
            }
        };
        self.expect_symbol("(")?;
        let label = self.ident("a label name")?;
        self.expect_symbol(")")?;
        Ok(Unwrap {
            label,
            kind,
            post_filters: Vec::new(),
        })
    }

    /// One stage after `|`.
    fn stage(&mut self) -> Result<Stage, Error> {
        let keyword = match self.peek() {
            TokenKind::Ident(word) => word.clone(),
            TokenKind::Symbol("(") => return Ok(Stage::LabelFilter(self.label_filter_or()?)),
            _ => return Err(self.expected("a parser, a formatter or a label filter")),
        };
        // `| json="x"` is a label filter on a label named json.
        let is_filter = matches!(
            self.peek_at(1),
            TokenKind::Symbol("=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<=")
        );
        if is_filter {
            return Ok(Stage::LabelFilter(self.label_filter_or()?));
        }
        let at = self.offset();
        self.advance();
        match keyword.as_str() {
            "json" => Ok(Stage::Json(self.extractions(true)?)),
            "logfmt" => {
                let (mut strict, mut keep_empty) = (false, false);
                while let TokenKind::Flag(flag) = self.peek().clone() {
                    match flag.as_str() {
                        "strict" => strict = true,
                        "keep-empty" => keep_empty = true,
                        other => {
                            return Err(self.error_here(format!(
                                "syntax error: unknown logfmt flag --{other}; use --strict or --keep-empty"
                            )));
                        }
                    }
                    self.advance();
                }
                Ok(Stage::Logfmt {
                    strict,
                    keep_empty,
                    extractions: self.extractions(false)?,
                })
            }
            "regexp" => {
                let at = self.offset();
                let pattern = self.string("a quoted regular expression")?;
                let regex = Regex::new(&pattern).map_err(|e| {
                    Error::parse(
                        self.query,
                        at,
                        format!(
                            "invalid regular expression {pattern:?}: {}",
                            regex_reason(&e)
                        ),
                    )
                })?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err(Error::parse(
                        self.query,
                        at,
                        "at least one named capture must be supplied, e.g. (?P<name>re)",
                    ));
                }
                Ok(Stage::Regexp(regex))
            }
            "pattern" => {
                let at = self.offset();
                let text = self.string("a quoted pattern")?;
                let parts = parse_pattern(&text)
                    .map_err(|message| Error::parse(self.query, at, message))?;
                Ok(Stage::Pattern { text, parts })
            }
            "unpack" => Ok(Stage::Unpack),
            "decolorize" => Ok(Stage::Decolorize),
            "line_format" => {
                let at = self.offset();
                let text = self.string("a quoted template")?;
                let template = Template::parse(&text).map_err(|message| {
                    Error::parse(
                        self.query,
                        at,
                        format!("invalid line_format template: {message}"),
                    )
                })?;
                Ok(Stage::LineFormat(template))
            }
            "label_format" => {
                let mut formats = Vec::new();
                loop {
                    let dst = self.ident("a label name")?;
                    self.expect_symbol("=")?;
                    let at = self.offset();
                    match self.peek().clone() {
                        TokenKind::Ident(src) => {
                            self.advance();
                            formats.push(LabelFormat::Rename { dst, src });
                        }
                        TokenKind::Str(text) => {
                            self.advance();
                            let template = Template::parse(&text).map_err(|message| {
                                Error::parse(
                                    self.query,
                                    at,
                                    format!("invalid label_format template: {message}"),
                                )
                            })?;
                            formats.push(LabelFormat::Template { dst, template });
                        }
                        _ => return Err(self.expected("a label name or a quoted template")),
                    }
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
                Ok(Stage::LabelFormat(formats))
            }
            "drop" | "keep" => {
                let mut selects = Vec::new();
                loop {
                    let name = self.ident("a label name")?;
                    if let Some(op) = self.match_op() {
                        let value_at = self.offset();
                        let value = self.string("a quoted value")?;
                        selects.push(LabelSelect::Matching(
                            Matcher::new(op, name, value)
                                .map_err(|e| Error::parse(self.query, value_at, e.to_string()))?,
                        ));
                    } else {
                        selects.push(LabelSelect::Name(name));
                    }
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
                Ok(if keyword == "drop" {
                    Stage::Drop(selects)
                } else {
                    Stage::Keep(selects)
                })
            }
            other => Err(Error::parse(
                self.query,
                at,
                format!(
                    "syntax error: unexpected IDENTIFIER {other:?}, expected a parser (json, logfmt, regexp, pattern, unpack), line_format, label_format, drop, keep, decolorize or a label filter"
                ),
            )),
        }
    }

    /// `json a="b", c` / `logfmt a="b", c`: with `path` the expression is a JSON path.
    fn extractions(&mut self, path: bool) -> Result<Vec<Extraction>, Error> {
        let mut extractions = Vec::new();
        while let TokenKind::Ident(label) = self.peek().clone() {
            // Stop at the `or`/`and` of an outer expression: those are never label names here
            // when no `=` follows.
            if !matches!(self.peek_at(1), TokenKind::Symbol("=" | ",")) && !extractions.is_empty() {
                break;
            }
            if !matches!(self.peek_at(1), TokenKind::Symbol("=" | ","))
                && matches!(label.as_str(), "or" | "and" | "unless" | "offset")
            {
                break;
            }
            self.advance();
            let expression = if self.eat_symbol("=") {
                let at = self.offset();
                let expression = self.string("a quoted expression")?;
                if path {
                    json_path(&expression)
                        .map_err(|message| Error::parse(self.query, at, message))?;
                }
                expression
            } else {
                label.clone()
            };
            extractions.push(Extraction { label, expression });
            if !self.eat_symbol(",") {
                break;
            }
        }
        Ok(extractions)
    }

    // ---- label filters ----

    fn label_filter_or(&mut self) -> Result<LabelFilter, Error> {
        let mut lhs = self.label_filter_and()?;
        while self.peek_ident("or") {
            self.advance();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, Error> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            if self.peek_ident("and") || self.peek_symbol(",") {
                self.advance();
            } else if !(matches!(self.peek(), TokenKind::Ident(w) if w != "or" && w != "offset"
                && matches!(self.peek_at(1), TokenKind::Symbol("=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<="))))
            {
                break;
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, Error> {
        if self.eat_symbol("(") {
            let inner = self.label_filter_or()?;
            self.expect_symbol(")")?;
            return Ok(inner);
        }
        let name = self.ident("a label name")?;
        let op_at = self.offset();
        let op = match self.advance() {
            TokenKind::Symbol(symbol) => symbol,
            _ => {
                return Err(Error::parse(
                    self.query,
                    op_at,
                    "syntax error: expected a comparison (=, !=, =~, !~, ==, >, >=, <, <=)",
                ));
            }
        };
        let value_at = self.offset();
        match self.peek().clone() {
            TokenKind::Str(value) => {
                self.advance();
                let match_op = match op {
                    "=" | "==" => MatchOp::Equal,
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => {
                        return Err(Error::parse(
                            self.query,
                            op_at,
                            format!(
                                "syntax error: {op} compares numbers, durations or byte sizes, not strings"
                            ),
                        ));
                    }
                };
                Ok(LabelFilter::Matcher(
                    Matcher::new(match_op, name, value)
                        .map_err(|e| Error::parse(self.query, value_at, e.to_string()))?,
                ))
            }
            TokenKind::Value(_) | TokenKind::Symbol("-") => {
                let negative = self.eat_symbol("-");
                let text = match self.advance() {
                    TokenKind::Value(text) => text,
                    _ => return Err(self.expected("a number")),
                };
                let cmp = match op {
                    "=" | "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    ">" => CmpOp::Gt,
                    ">=" => CmpOp::Ge,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    _ => {
                        return Err(Error::parse(
                            self.query,
                            op_at,
                            format!("syntax error: {op} needs a quoted regular expression"),
                        ));
                    }
                };
                let sign = if negative { -1.0 } else { 1.0 };
                let (kind, value) = if let Some(n) = units::parse_number(&text) {
                    (ValueKind::Number, n)
                } else if let Some(d) = units::parse_duration_seconds(&text) {
                    (ValueKind::Duration, d)
                } else if let Some(b) = units::parse_bytes(&text) {
                    (ValueKind::Bytes, b)
                } else {
                    return Err(Error::parse(
                        self.query,
                        value_at,
                        format!(
                            "invalid value {text:?}: expected a number, a duration (20ms) or a byte size (5KB)"
                        ),
                    ));
                };
                let text = if negative { format!("-{text}") } else { text };
                Ok(LabelFilter::Compare {
                    name,
                    op: cmp,
                    kind,
                    value: sign * value,
                    text,
                })
            }
            _ => Err(self.expected("a quoted string or a number")),
        }
    }
}

fn regex_reason(error: &regex::Error) -> String {
    error
        .to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Splits a `pattern` expression into literals and `<name>` captures.
pub fn parse_pattern(text: &str) -> Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut named = 0;
    while !rest.is_empty() {
        let capture = rest.find('<').and_then(|open| {
            let close = rest[open..].find('>')? + open;
            let name = &rest[open + 1..close];
            let valid = name == "_"
                || (!name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit()));
            valid.then_some((open, close, name))
        });
        match capture {
            Some((open, close, name)) => {
                if open > 0 {
                    parts.push(PatternPart::Literal(rest[..open].to_owned()));
                }
                if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                    return Err(format!(
                        "invalid pattern {text:?}: two captures must be separated by literal text"
                    ));
                }
                if name == "_" {
                    parts.push(PatternPart::Capture(None));
                } else {
                    named += 1;
                    parts.push(PatternPart::Capture(Some(name.to_owned())));
                }
                rest = &rest[close + 1..];
            }
            None => {
                parts.push(PatternPart::Literal(rest.to_owned()));
                rest = "";
            }
        }
    }
    if named == 0 {
        return Err(format!(
            "invalid pattern {text:?}: at least one named capture such as <name> is needed"
        ));
    }
    Ok(parts)
}

/// One step of a JSON path: a field or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// `.name` or `["name"]`.
    Field(String),
    /// `[0]`.
    Index(usize),
}

/// Parses a `json` extraction path: `a.b[0]["c d"]`.
pub fn json_path(text: &str) -> Result<Vec<PathStep>, String> {
    let invalid = || {
        format!(
            "invalid JSON path {text:?}: expected e.g. request.headers[\"User-Agent\"] or servers[0]"
        )
    };
    let mut steps = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'.' if !steps.is_empty() => at += 1,
            b'[' => {
                let close = text[at..].find(']').ok_or_else(invalid)? + at;
                let inner = text[at + 1..close].trim();
                if let Some(quoted) = inner
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                {
                    steps.push(PathStep::Field(quoted.to_owned()));
                } else {
                    steps.push(PathStep::Index(inner.parse().map_err(|_| invalid())?));
                }
                at = close + 1;
            }
            _ => {
                let end = text[at..].find(['.', '[']).map_or(text.len(), |i| i + at);
                if end == at {
                    return Err(invalid());
                }
                steps.push(PathStep::Field(text[at..end].to_owned()));
                at = end;
            }
        }
    }
    if steps.is_empty() {
        return Err(invalid());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(query: &str) -> String {
        parse(query).unwrap().to_string()
    }

    #[test]
    fn queries_print_back_canonically() {
        assert_eq!(
            round_trip(r#"{app="api",env=~"prod|dev"} |= "err" or "warn" != "debug""#),
            r#"{app="api", env=~"prod|dev"} |= "err" or "warn" != "debug""#
        );
        assert_eq!(
            round_trip(r#"sum by(app)(count_over_time({ns=~".+"} | json | level="error" [5m]))"#),
            r#"sum by (app) (count_over_time({ns=~".+"} | json | level="error" [5m]))"#
        );
        assert_eq!(
            round_trip(
                r#"quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(latency) | __error__="" [1m]) by (route)"#
            ),
            r#"quantile_over_time(0.99,{a="b"} | logfmt | unwrap duration(latency) | __error__="" [1m]) by (route)"#
        );
        assert_eq!(
            round_trip(r#"count_over_time({a="b"}[5m] |= "x" offset 1h) * 2 > bool 1"#),
            r#"count_over_time({a="b"} |= "x" [5m] offset 1h) * 2 > bool 1"#
        );
    }

    #[test]
    fn precedence_of_binary_operators() {
        let expr = parse("1 + 2 * 3 ^ 2 ^ 1").unwrap();
        let Expr::Metric(MetricExpr::Binary { op, .. }) = expr else {
            panic!("not a binary expression");
        };
        assert_eq!(op, BinOp::Add);
    }

    #[test]
    fn errors_carry_positions() {
        let cases = [
            (
                "{app=\"a\"} | foo",
                "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER \"foo\"",
            ),
            ("{}", "parse error at line 1, col 2:"),
            (
                "rate({a=\"b\"})",
                "parse error at line 1, col 13: syntax error: unexpected \")\", expected a range such as [5m]",
            ),
            (
                "{a=\"b\"}\n  |~ \"(\"",
                "parse error at line 2, col 6: invalid regular expression",
            ),
            (
                "sum_over_time({a=\"b\"}[5m])",
                "parse error at line 1, col 26: syntax error: sum_over_time needs an unwrapped label",
            ),
        ];
        for (query, expected) in cases {
            let message = parse(query).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{query}: {message}");
        }
    }

    #[test]
    fn patterns_and_paths() {
        assert_eq!(
            parse_pattern("<ip> - <_> \"<method> ").unwrap(),
            vec![
                PatternPart::Capture(Some("ip".into())),
                PatternPart::Literal(" - ".into()),
                PatternPart::Capture(None),
                PatternPart::Literal(" \"".into()),
                PatternPart::Capture(Some("method".into())),
                PatternPart::Literal(" ".into()),
            ]
        );
        assert!(parse_pattern("<a><b>").is_err());
        assert_eq!(
            json_path("request.headers[\"User-Agent\"][0]").unwrap(),
            vec![
                PathStep::Field("request".into()),
                PathStep::Field("headers".into()),
                PathStep::Field("User-Agent".into()),
                PathStep::Index(0),
            ]
        );
    }
}
