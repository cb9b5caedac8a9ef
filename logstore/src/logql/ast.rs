//! The LogQL syntax tree, and its canonical text (what `/loki/api/v1/format_query` returns and
//! what error messages quote).

use std::fmt;

use regex::Regex;
use sightline_core::matcher::Matcher;

use super::template::Template;

/// A whole query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A log query: streams of lines.
    Log(LogExpr),
    /// A metric query: samples.
    Metric(MetricExpr),
}

/// A stream selector and its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    /// `{…}`.
    pub matchers: Vec<Matcher>,
    /// `| …` stages in order.
    pub stages: Vec<Stage>,
}

/// How a line filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`: contains.
    Contains,
    /// `!=`: does not contain.
    NotContains,
    /// `|~`: a regex matches somewhere.
    Match,
    /// `!~`: no regex match.
    NotMatch,
}

/// `|= "a" or "b"`: the line passes when any pattern matches (for the negative forms: when
/// none does).
#[derive(Debug, Clone)]
pub struct LineFilter {
    /// The comparison.
    pub op: LineFilterOp,
    /// The patterns of the `or` chain, as written.
    pub patterns: Vec<String>,
    /// Compiled patterns for `|~` and `!~`.
    pub regexes: Vec<Regex>,
}

/// Comparison operators of label filters and binary expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (or `=` in a label filter).
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

impl CmpOp {
    /// Applies the comparison.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }

    fn text(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// How a numeric label filter reads the label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A float.
    Number,
    /// A Go duration (`250ms`), in seconds.
    Duration,
    /// A byte size (`10KB`), in bytes.
    Bytes,
}

/// A label filter expression.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// `a and b` (also `a, b` and `a | b`).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// `a or b`.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name="v"`, `name=~"re"`, …
    Matcher(Matcher),
    /// `name > 10`, `name >= 20ms`, `name < 5KB`.
    Compare {
        /// The label.
        name: String,
        /// The comparison.
        op: CmpOp,
        /// How the label value is read.
        kind: ValueKind,
        /// The right side in the kind's unit.
        value: f64,
        /// The right side as written.
        text: String,
    },
}

/// `json a="path"` / `logfmt a="key"` extraction: label name and expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The label to set.
    pub label: String,
    /// The path (json) or key (logfmt).
    pub expression: String,
}

/// One `label_format` assignment.
#[derive(Debug, Clone)]
pub enum LabelFormat {
    /// `dst=src`: rename.
    Rename {
        /// The new name.
        dst: String,
        /// The old name.
        src: String,
    },
    /// `dst="{{…}}"`: template.
    Template {
        /// The label to set.
        dst: String,
        /// The template.
        template: Template,
    },
}

/// `drop`/`keep` items: a name, or a name with a matcher on its value.
#[derive(Debug, Clone)]
pub enum LabelSelect {
    /// Any value.
    Name(String),
    /// Only when the value matches.
    Matching(Matcher),
}

impl LabelSelect {
    /// Whether the label `name` with `value` is selected.
    pub fn selects(&self, name: &str, value: &str) -> bool {
        match self {
            LabelSelect::Name(n) => n == name,
            LabelSelect::Matching(m) => m.name() == name && m.matches(value),
        }
    }
}

/// A `pattern` parser expression, split into literals and captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    /// Text that must appear.
    Literal(String),
    /// `<name>`, or `<_>` (no name) for text to skip.
    Capture(Option<String>),
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= …`, `!= …`, `|~ …`, `!~ …`.
    LineFilter(LineFilter),
    /// `| json` or `| json a="b.c"`.
    Json(Vec<Extraction>),
    /// `| logfmt [--strict] [--keep-empty] [a="b"]`.
    Logfmt {
        /// `--strict`: a malformed pair is an error.
        strict: bool,
        /// `--keep-empty`: standalone keys become empty labels.
        keep_empty: bool,
        /// Extractions; empty = every key.
        extractions: Vec<Extraction>,
    },
    /// `| regexp "(?P<a>…)"`.
    Regexp(Regex),
    /// `| pattern "<a> - <b>"`.
    Pattern {
        /// As written.
        text: String,
        /// Parsed.
        parts: Vec<PatternPart>,
    },
    /// `| unpack`.
    Unpack,
    /// `| a="b" and c>1`.
    LabelFilter(LabelFilter),
    /// `| line_format "…"`.
    LineFormat(Template),
    /// `| label_format a=b, c="{{…}}"`.
    LabelFormat(Vec<LabelFormat>),
    /// `| drop a, b="c"`.
    Drop(Vec<LabelSelect>),
    /// `| keep a, b="c"`.
    Keep(Vec<LabelSelect>),
    /// `| decolorize`.
    Decolorize,
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// `count_over_time`.
    Count,
    /// `rate`.
    Rate,
    /// `rate_counter`.
    RateCounter,
    /// `bytes_over_time`.
    Bytes,
    /// `bytes_rate`.
    BytesRate,
    /// `absent_over_time`.
    Absent,
    /// `sum_over_time`.
    Sum,
    /// `avg_over_time`.
    Avg,
    /// `min_over_time`.
    Min,
    /// `max_over_time`.
    Max,
    /// `stddev_over_time`.
    Stddev,
    /// `stdvar_over_time`.
    Stdvar,
    /// `quantile_over_time`.
    Quantile,
    /// `first_over_time`.
    First,
    /// `last_over_time`.
    Last,
}

/// Every range function with its name.
pub const RANGE_OPS: [(&str, RangeOp); 15] = [
    ("count_over_time", RangeOp::Count),
    ("rate", RangeOp::Rate),
    ("rate_counter", RangeOp::RateCounter),
    ("bytes_over_time", RangeOp::Bytes),
    ("bytes_rate", RangeOp::BytesRate),
    ("absent_over_time", RangeOp::Absent),
    ("sum_over_time", RangeOp::Sum),
    ("avg_over_time", RangeOp::Avg),
    ("min_over_time", RangeOp::Min),
    ("max_over_time", RangeOp::Max),
    ("stddev_over_time", RangeOp::Stddev),
    ("stdvar_over_time", RangeOp::Stdvar),
    ("quantile_over_time", RangeOp::Quantile),
    ("first_over_time", RangeOp::First),
    ("last_over_time", RangeOp::Last),
];

impl RangeOp {
    /// Whether the function reads unwrapped values (and so needs `| unwrap`).
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::Count | RangeOp::Rate | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Absent
        )
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        RANGE_OPS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(name, _)| name)
    }
}

/// How `unwrap` reads a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrap {
    /// The label.
    pub label: String,
    /// Plain number, `duration()`/`duration_seconds()`, or `bytes()`.
    pub kind: ValueKind,
    /// Label filters after the unwrap (`| __error__=""`).
    pub post_filters: Vec<LabelFilterText>,
}

/// A label filter kept with its text (label filters hold matchers, which do not compare).
#[derive(Debug, Clone)]
pub struct LabelFilterText(pub LabelFilter);

impl PartialEq for LabelFilterText {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for LabelFilterText {}

/// `by (…)` or `without (…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// True for `without`.
    pub without: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// `sum`.
    Sum,
    /// `avg`.
    Avg,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `count`.
    Count,
    /// `stddev`.
    Stddev,
    /// `stdvar`.
    Stdvar,
    /// `topk`.
    Topk,
    /// `bottomk`.
    Bottomk,
    /// `sort`.
    Sort,
    /// `sort_desc`.
    SortDesc,
}

/// Every vector aggregation with its name.
pub const VECTOR_OPS: [(&str, VectorOp); 11] = [
    ("sum", VectorOp::Sum),
    ("avg", VectorOp::Avg),
    ("min", VectorOp::Min),
    ("max", VectorOp::Max),
    ("count", VectorOp::Count),
    ("stddev", VectorOp::Stddev),
    ("stdvar", VectorOp::Stdvar),
    ("topk", VectorOp::Topk),
    ("bottomk", VectorOp::Bottomk),
    ("sort", VectorOp::Sort),
    ("sort_desc", VectorOp::SortDesc),
];

impl VectorOp {
    /// The operator's name.
    pub fn name(self) -> &'static str {
        VECTOR_OPS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(name, _)| name)
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `^`.
    Pow,
    /// A comparison.
    Cmp(CmpOp),
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `unless`.
    Unless,
}

impl BinOp {
    /// The operator as written.
    pub fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Cmp(op) => op.text(),
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Binding strength, higher binds tighter (PromQL's order, which LogQL follows).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Cmp(_) => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// Whether this is a set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// `on(…)` / `ignoring(…)` of a binary operation between vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// True for `on`, false for `ignoring`.
    pub on: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    /// `count_over_time({…} | … [5m] offset 1h)` and friends.
    Range {
        /// The function.
        op: RangeOp,
        /// The log query the samples come from.
        log: LogExpr,
        /// The window, nanoseconds.
        range_ns: i64,
        /// `offset`, nanoseconds.
        offset_ns: i64,
        /// `| unwrap …`.
        unwrap: Option<Unwrap>,
        /// The φ of `quantile_over_time`.
        param: Option<f64>,
        /// `by`/`without` after the call (unwrapped functions only).
        grouping: Option<Grouping>,
    },
    /// `sum by (app) (…)`, `topk(5, …)`.
    Vector {
        /// The operator.
        op: VectorOp,
        /// The grouping.
        grouping: Option<Grouping>,
        /// `k` of topk/bottomk.
        param: Option<f64>,
        /// The aggregated expression.
        inner: Box<MetricExpr>,
    },
    /// `a / b`, `a > 10`.
    Binary {
        /// The operator.
        op: BinOp,
        /// `bool` after a comparison.
        return_bool: bool,
        /// `on`/`ignoring`.
        matching: Option<VectorMatching>,
        /// Left side.
        lhs: Box<MetricExpr>,
        /// Right side.
        rhs: Box<MetricExpr>,
    },
    /// A number.
    Number(f64),
    /// `vector(1)`.
    Vector1(f64),
    /// `( … )`.
    Paren(Box<MetricExpr>),
}

fn quote(text: &str) -> String {
    // Rust's debug escaping of a string is a valid Go string for what queries hold.
    format!("{text:?}")
}

fn fmt_matchers(f: &mut fmt::Formatter<'_>, matchers: &[Matcher]) -> fmt::Result {
    f.write_str("{")?;
    for (i, m) in matchers.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}{}{}", m.name(), m.op(), quote(m.value()))?;
    }
    f.write_str("}")
}

/// Formats a duration in nanoseconds the way Loki prints ranges (`5m`, `1h30m`, `250ms`).
pub fn format_duration(ns: i64) -> String {
    let mut ms = ns / 1_000_000;
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(log) => log.fmt(f),
            Expr::Metric(metric) => metric.fmt(f),
        }
    }
}

impl fmt::Display for LogExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_matchers(f, &self.matchers)?;
        for stage in &self.stages {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

fn fmt_extractions(f: &mut fmt::Formatter<'_>, extractions: &[Extraction]) -> fmt::Result {
    for (i, e) in extractions.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "{}={}", e.label, quote(&e.expression))?;
    }
    Ok(())
}

fn fmt_selects(f: &mut fmt::Formatter<'_>, selects: &[LabelSelect]) -> fmt::Result {
    for (i, s) in selects.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { "," })?;
        match s {
            LabelSelect::Name(name) => f.write_str(name)?,
            LabelSelect::Matching(m) => write!(f, "{}{}{}", m.name(), m.op(), quote(m.value()))?,
        }
    }
    Ok(())
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(filter) => {
                let op = match filter.op {
                    LineFilterOp::Contains => "|=",
                    LineFilterOp::NotContains => "!=",
                    LineFilterOp::Match => "|~",
                    LineFilterOp::NotMatch => "!~",
                };
                write!(f, "{op} ")?;
                for (i, p) in filter.patterns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    f.write_str(&quote(p))?;
                }
                Ok(())
            }
            Stage::Json(extractions) => {
                f.write_str("| json")?;
                fmt_extractions(f, extractions)
            }
            Stage::Logfmt {
                strict,
                keep_empty,
                extractions,
            } => {
                f.write_str("| logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                fmt_extractions(f, extractions)
            }
            Stage::Regexp(regex) => write!(f, "| regexp {}", quote(regex.as_str())),
            Stage::Pattern { text, .. } => write!(f, "| pattern {}", quote(text)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::LabelFilter(filter) => write!(f, "| {filter}"),
            Stage::LineFormat(template) => write!(f, "| line_format {}", quote(template.text())),
            Stage::LabelFormat(formats) => {
                f.write_str("| label_format")?;
                for (i, format) in formats.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    match format {
                        LabelFormat::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFormat::Template { dst, template } => {
                            write!(f, "{dst}={}", quote(template.text()))?;
                        }
                    }
                }
                Ok(())
            }
            Stage::Drop(selects) => {
                f.write_str("| drop")?;
                fmt_selects(f, selects)
            }
            Stage::Keep(selects) => {
                f.write_str("| keep")?;
                fmt_selects(f, selects)
            }
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(a, b) => write!(f, "{a} and {b}"),
            LabelFilter::Or(a, b) => {
                // Parenthesized when nested under `and`; always writing them keeps it simple
                // and unambiguous.
                write!(f, "( {a} or {b} )")
            }
            LabelFilter::Matcher(m) => write!(f, "{}{}{}", m.name(), m.op(), quote(m.value())),
            LabelFilter::Compare { name, op, text, .. } => write!(f, "{name}{}{text}", op.text()),
        }
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.without { "without" } else { "by" };
        write!(f, "{word} ({})", self.labels.join(", "))
    }
}

fn fmt_number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

impl fmt::Display for MetricExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range {
                op,
                log,
                range_ns,
                offset_ns,
                unwrap,
                param,
                grouping,
            } => {
                write!(f, "{}(", op.name())?;
                if let Some(param) = param {
                    write!(f, "{},", fmt_number(*param))?;
                }
                write!(f, "{log}")?;
                if let Some(unwrap) = unwrap {
                    f.write_str(" | unwrap ")?;
                    match unwrap.kind {
                        ValueKind::Number => f.write_str(&unwrap.label)?,
                        ValueKind::Duration => write!(f, "duration({})", unwrap.label)?,
                        ValueKind::Bytes => write!(f, "bytes({})", unwrap.label)?,
                    }
                    for filter in &unwrap.post_filters {
                        write!(f, " | {}", filter.0)?;
                    }
                }
                write!(f, " [{}]", format_duration(*range_ns))?;
                if *offset_ns != 0 {
                    write!(f, " offset {}", format_duration(*offset_ns))?;
                }
                f.write_str(")")?;
                if let Some(grouping) = grouping {
                    write!(f, " {grouping}")?;
                }
                Ok(())
            }
            MetricExpr::Vector {
                op,
                grouping,
                param,
                inner,
            } => {
                f.write_str(op.name())?;
                if let Some(grouping) = grouping {
                    write!(f, " {grouping} ")?;
                }
                f.write_str("(")?;
                if let Some(param) = param {
                    write!(f, "{},", fmt_number(*param))?;
                }
                write!(f, "{inner})")
            }
            MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            } => {
                write!(f, "{lhs} {}", op.text())?;
                if *return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(matching) = matching {
                    let word = if matching.on { "on" } else { "ignoring" };
                    write!(f, " {word} ({})", matching.labels.join(", "))?;
                }
                write!(f, " {rhs}")
            }
            MetricExpr::Number(value) => f.write_str(&fmt_number(*value)),
            MetricExpr::Vector1(value) => write!(f, "vector({})", fmt_number(*value)),
            MetricExpr::Paren(inner) => write!(f, "({inner})"),
        }
    }
}
