//! The exposition parser's error: a position and one [`ErrorKind`].

/// At most this many characters of an offending token are kept in an error.
const EXCERPT_CHARS: usize = 64;

/// The offending token for an error message, cut to [`EXCERPT_CHARS`] characters so that
/// a megabyte-long garbage line does not become a megabyte-long error.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
    }
}

/// A parse error at a position in the body, displayed as `line 12:5: <message>`.
///
/// `line` and `column` are 1-based; `column` counts characters (code points), not bytes.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}:{column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with an exposition body. Each message says what was expected or which
/// rule was broken, with the offending token where there is one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// A token was expected and something else was found.
    #[error("expected {0}")]
    Expected(&'static str),
    /// The body is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A quoted string has no closing quote on its line.
    #[error("unterminated quoted string")]
    UnterminatedString,
    /// A metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*` and is not quoted.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*` and is not quoted.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// The same label name appears twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// A sample value is not a number.
    #[error("invalid value {0:?}: expected a decimal float, NaN, +Inf or -Inf")]
    InvalidValue(String),
    /// A timestamp is not a valid number for the format.
    #[error("invalid timestamp {0:?}: expected {1}")]
    InvalidTimestamp(String, &'static str),
    /// A `# TYPE` line names a type this format does not have.
    #[error("invalid metric type {0:?}")]
    InvalidType(String),
    /// A metadata comment other than HELP, TYPE, UNIT or EOF (OpenMetrics).
    #[error("invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF")]
    InvalidComment,
    /// A blank line (OpenMetrics).
    #[error("blank line (not allowed in OpenMetrics)")]
    BlankLine,
    /// The body ended without `# EOF` (OpenMetrics).
    #[error("missing \"# EOF\" at the end of an OpenMetrics body")]
    MissingEof,
    /// Something follows `# EOF` (OpenMetrics).
    #[error("text after \"# EOF\"")]
    TextAfterEof,
    /// A second HELP, TYPE or UNIT line for one family.
    #[error("second # {kind} for metric family {family:?}")]
    DuplicateMetadata {
        /// `HELP`, `TYPE` or `UNIT`.
        kind: &'static str,
        /// The family name.
        family: String,
    },
    /// A HELP, TYPE or UNIT line after samples of its family.
    #[error("metadata for {0:?} after its samples")]
    MetadataAfterSamples(String),
    /// A metric family, or a sample name it implies, appears a second time: families
    /// must not be split or interleaved.
    #[error(
        "metric name {0:?} clashes with an earlier family (families must not be split or interleaved)"
    )]
    ClashingName(String),
    /// The `# UNIT` is not a suffix of the family name.
    #[error("unit {unit:?} is not a suffix of metric family {family:?}")]
    UnitMismatch {
        /// The family name.
        family: String,
        /// The declared unit.
        unit: String,
    },
    /// A unit on an info or stateset family.
    #[error("metric family {0:?}: units are not allowed on info and stateset families")]
    UnitNotAllowed(String),
    /// A label group of a family reappears after another group started.
    #[error("samples of {0:?} for one label set are not contiguous")]
    InterleavedGroup(String),
    /// Some samples of a group carry a timestamp and others do not.
    #[error("{0:?}: some samples of a label set have timestamps and some do not")]
    MixedTimestamps(String),
    /// A timestamp is lower than the previous one of the same group.
    #[error("{0:?}: timestamp goes backwards")]
    TimestampBackwards(String),
    /// A value a type forbids: negative or NaN counts, non-0/1 stateset values, …
    #[error("{name:?}: value {value} not allowed: {rule}")]
    InvalidValueForType {
        /// The sample name.
        name: String,
        /// The value found.
        value: f64,
        /// The rule broken.
        rule: &'static str,
    },
    /// A label a type requires is missing or invalid (`le`, `quantile`, the stateset label).
    #[error("{name:?}: label {label:?} {rule}")]
    InvalidLabelForType {
        /// The sample name.
        name: String,
        /// The label name.
        label: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// A histogram or gauge histogram is not well formed.
    #[error("histogram {family:?}: {rule}")]
    InvalidHistogram {
        /// The family name.
        family: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// An exemplar on a sample that may not have one.
    #[error("{0:?}: exemplars are only allowed on counter _total and histogram _bucket samples")]
    ExemplarNotAllowed(String),
    /// Exemplar label names and values longer than 128 code points in total.
    #[error("exemplar labels are {0} code points long, more than the 128 allowed")]
    ExemplarTooLong(usize),
    /// Exemplars exist only in OpenMetrics.
    #[error("exemplars are not allowed in the text format 0.0.4")]
    ExemplarInTextFormat,
}
