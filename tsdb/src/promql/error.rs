//! The one error type of the PromQL engine.
//!
//! Messages follow Prometheus's wording where a client may match on them (many-to-many
//! matching, duplicate label sets, sample limit, timeout), so that Grafana and the fixture
//! suite see the same text. The HTTP layer maps variants to status codes: [`Error::Parse`],
//! [`Error::InvalidParameter`] and [`Error::Unsupported`] are bad input (400),
//! [`Error::Execution`] is Prometheus's `execution` error (422), [`Error::TooManySamples`]
//! and [`Error::Timeout`] are limits (422 / 503), [`Error::Storage`] is internal (500).

/// Everything that can go wrong parsing or evaluating a PromQL query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query text does not parse; `message` is the parser's explanation, `position`
    /// where in the text it is when that is known (printed first, as Prometheus does:
    /// `1:14: parse error: …`).
    #[error("{}parse error: {message}", position.map(|p| format!("{p}: ")).unwrap_or_default())]
    Parse {
        /// What the parser objected to.
        message: String,
        /// Where the error is.
        position: Option<Position>,
    },

    /// A query parameter outside the expression is invalid (a step of zero, an end before
    /// the start, a negative lookback).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// The query uses a feature this engine does not implement (native histograms, `info()`,
    /// or-matchers, …). Rewrite the query without it.
    #[error("{feature} is not supported")]
    Unsupported {
        /// The feature, e.g. "native histograms".
        feature: String,
    },

    /// The query is valid but cannot be evaluated over this data, e.g. a one-to-one match
    /// that finds several series on one side, or an invalid regex given to `label_replace`.
    #[error("{0}")]
    Execution(String),

    /// Evaluation held more samples in memory at once than the configured limit
    /// (`query.max_samples`). Narrow the time range, raise the step, or select fewer series.
    /// The message is Prometheus's, word for word.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples {
        /// The configured maximum.
        limit: usize,
    },

    /// The query ran longer than the configured timeout (`query.timeout`), waiting for a
    /// free slot (`query.max_concurrency`) or evaluating. The message is Prometheus's.
    #[error("query timed out in {stage}")]
    Timeout {
        /// The configured timeout in milliseconds.
        timeout_ms: u128,
        /// Where the time ran out.
        stage: Stage,
    },

    /// Reading series from storage failed.
    #[error("reading series: {0}")]
    Storage(#[from] crate::Error),
}

/// A place in a query's text, as Prometheus prints it in parse errors: line and column,
/// both counted from 1, the column in bytes from the line's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The byte in the line, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text` (the end of the text for an offset past it).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        Position {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: before.len() - line_start + 1,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a query's time ran out, named as Prometheus names it in its timeout message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for one of the `query.max_concurrency` slots.
    Queue,
    /// Evaluating the expression.
    Evaluation,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Queue => "query queue",
            Stage::Evaluation => "expression evaluation",
        })
    }
}

impl Error {
    pub(crate) fn exec(message: impl Into<String>) -> Error {
        Error::Execution(message.into())
    }

    /// A parse error without a position.
    pub(crate) fn parse(message: impl Into<String>) -> Error {
        Error::Parse {
            message: message.into(),
            position: None,
        }
    }

    pub(crate) fn unsupported(feature: impl Into<String>) -> Error {
        Error::Unsupported {
            feature: feature.into(),
        }
    }
}

/// `Result` with the PromQL [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
