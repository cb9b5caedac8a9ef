//! Exposition-format parsing: the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! Specs followed:
//! - Prometheus text format 0.0.4,
//!   <https://prometheus.io/docs/instrumenting/exposition_formats/>, as Prometheus's own
//!   `model/textparse` (`PromParser`) reads it, plus Prometheus 3's quoted UTF-8 names
//!   (`{"my.metric", "label.name"="v"}`).
//! - OpenMetrics 1.0 text,
//!   <https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md>,
//!   with every validity rule that the upstream parser test suite
//!   (`../shared/fixtures/exposition/openmetrics/parsers`) checks.
//!
//! Why our own parser: the `prometheus-parse` crate (0.2.5) silently drops valid lines
//! (metric names with `:`, label values containing `}`, `\"` or commas), has no OpenMetrics
//! support and allocates per sample; the other Rust parsers found are LGPL. It is kept as
//! the benchmark baseline (`scraper/benches/exposition.rs`).
//!
//! # Shape
//!
//! [`Parser`] is a pull parser over one complete, in-memory body. [`Parser::next_entry`]
//! yields [`Entry`] values that borrow from the body or from small buffers owned by the
//! parser (used only for values that contained escapes), so that steady-state parsing does
//! not allocate per sample. Each [`Sample`] also carries its raw series text (`name{labels}`
//! exactly as written) for a series-ref cache keyed by that text; such a cache can tell
//! [`Parser::next_entry_known`] which text it expects next, so that a line beginning with a
//! text it knows is not tokenized again (the label set is most of a line's cost).
//!
//! [`negotiate`] picks the [`Format`] from a response `Content-Type` the way Prometheus 3 does.
//!
//! # Edge cases decided here
//!
//! - The whole body must be UTF-8 ([`Parser::from_bytes`] checks it up front and reports the
//!   line and column of the first bad byte). Prometheus itself only checks label values; both
//!   specs require UTF-8 everywhere.
//! - Errors are fatal: after the first [`ParseError`] the parser yields nothing more, and the
//!   caller must discard what it appended from that body (Prometheus rolls back the scrape).
//!   Some OpenMetrics rules (name clashes, unit/name mismatch, histogram structure) can only
//!   be checked when a metric family ends, so they are reported on the line that ends it.
//! - Unknown escapes in label values and HELP (`\z`) are kept literally, backslash included,
//!   as upstream does. Label values may contain `{`, `}`, `,`, `#` and NUL.
//! - Duplicate label names in one sample are rejected in both formats (Prometheus rejects
//!   such a scrape too, at append time).
//! - Text 0.0.4: blank lines, any `#` comment, runs of spaces/tabs between tokens, leading and
//!   trailing whitespace, a trailing comma in the label set, a missing comma between labels
//!   (`{a="1" b="2"}`, as Prometheus's lexer allows), and a trailing `\r` (CRLF bodies) are
//!   accepted. Timestamps are integer milliseconds. Values are decimal floats, `NaN`,
//!   `+Inf`, `-Inf` (any case, as Go's `ParseFloat`); hexadecimal and `_` separators are
//!   rejected. `# EOF` is an ordinary comment there; exemplars are a syntax error.
//! - OpenMetrics 1.0: exactly one space between tokens, no blank lines, no comments other than
//!   `# HELP`, `# TYPE`, `# UNIT` and the required final `# EOF` (a newline after it is
//!   optional, anything else after it is an error). Timestamps are float seconds and are
//!   converted to milliseconds as Prometheus does (`(s * 1000) as i64`, truncating, saturating).
//!   Timestamp ordering inside a group is checked on the seconds value. Exemplars are parsed
//!   and exposed; they are only allowed on counter `_total` and (gauge)histogram `_bucket`
//!   samples, with at most 128 code points of label names and values.
//! - OpenMetrics validation is [`Validation::Strict`] by default: the spec and its test
//!   suite. Prometheus's own OpenMetrics parser checks syntax only, and real clients rely on
//!   that: client_golang writes negative summary quantiles and a `_sum` on histograms with
//!   negative buckets; Prometheus's tests feed it exemplars on `_count`/`_sum`, info families
//!   without `_info` and stateset samples without the state label. The scrape loop should
//!   use [`Validation::Prometheus`] (syntax, `# EOF`, exemplar syntax; no cross-line rules);
//!   strict is for checking an exporter (as `promtool check metrics` does).
//! - Interleaved label groups and repeated family names are detected with 64-bit hashes of
//!   the group's labels and of the family names (no allocation per sample); a hash collision
//!   could, in theory, reject a valid body but never accept an invalid one.
//! - No hard limit is applied here on line length or label count: the caller bounds the body
//!   size, and the parser's buffers never outgrow the longest line.

mod content_type;
mod error;
mod openmetrics;
mod parser;

pub use content_type::{ACCEPT_HEADER, ContentTypeError, Negotiated, negotiate};
pub use error::{ErrorKind, ParseError};
pub use parser::{Entry, Exemplar, Label, LabelIter, Labels, Parser, Sample};

/// How much of OpenMetrics' cross-line semantics [`Parser`] checks. Every line's syntax
/// and the final `# EOF` are always checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Every rule of the OpenMetrics 1.0 specification that its parser test suite checks:
    /// family grouping and names, metadata order, label groups and timestamps, histogram
    /// structure, per-type values and labels, exemplar placement and length.
    #[default]
    Strict,
    /// What Prometheus's OpenMetrics parser checks: syntax only. Use this to scrape.
    Prometheus,
}

/// The wire format of an exposition body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` that announces this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type of a metric family, from a `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics only).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics only).
    Info,
    /// `stateset` (OpenMetrics only).
    StateSet,
    /// `unknown` in OpenMetrics, `untyped` in the text format, or no `# TYPE` at all.
    Unknown,
}

impl MetricType {
    /// The name OpenMetrics uses for this type (`untyped` is spelt `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// Reads a `# TYPE` word of `format`; `None` if that format has no such type.
    pub fn parse(word: &str, format: Format) -> Option<MetricType> {
        let t = match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "gaugehistogram" if format == Format::OpenMetrics => MetricType::GaugeHistogram,
            "info" if format == Format::OpenMetrics => MetricType::Info,
            "stateset" if format == Format::OpenMetrics => MetricType::StateSet,
            "unknown" if format == Format::OpenMetrics => MetricType::Unknown,
            "untyped" if format == Format::PrometheusText => MetricType::Unknown,
            _ => return None,
        };
        Some(t)
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
