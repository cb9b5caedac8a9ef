//! The one error type of LogQL: parsing (with a line and column), evaluation limits, timeouts
//! and storage failures. The HTTP layer maps [`QueryErrorKind`] to a status.

/// What kind of failure a [`QueryError`] is, for the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The query or a parameter is wrong: 400.
    BadRequest,
    /// A limit was hit: 400 as Loki answers (the query must be narrowed).
    Limit,
    /// The query ran out of time: 504/503.
    Timeout,
    /// Storage failed: 500.
    Storage,
}

/// Why a query could not be parsed or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The text is not valid LogQL; `line` and `col` are 1-based, `col` counts characters.
    #[error("parse error at line {line}, col {col}: {message}")]
    Parse {
        /// Line of the offending token.
        line: usize,
        /// Column of the offending token.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// The query is valid LogQL but not allowed where it was sent (a log query as an instant
    /// query, a step of zero, …).
    #[error("{0}")]
    Invalid(String),
    /// A pipeline stage failed on a sample of a metric query and the query has no
    /// `__error__` filter to drop it.
    #[error(
        "pipeline error: '{error}' for series: '{series}'. Use a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\")"
    )]
    Pipeline {
        /// The `__error__` value.
        error: String,
        /// The series it happened on.
        series: String,
    },
    /// More entries were requested than a query may return.
    #[error(
        "max entries limit per query exceeded, limit > max_entries_limit ({requested} > {max})"
    )]
    EntriesLimit {
        /// The requested limit.
        requested: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A metric query produced more series than allowed.
    #[error(
        "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating the results with a sum by ..."
    )]
    SeriesLimit {
        /// The configured maximum.
        max: usize,
    },
    /// The query read more log bytes than allowed.
    #[error(
        "the query would read more than {max} bytes of log lines; narrow the stream selector or the time range (limits.logs.max_query_bytes_read)"
    )]
    BytesLimit {
        /// The configured maximum.
        max: u64,
    },
    /// The query held more samples than allowed.
    #[error(
        "query processing would load too many samples into memory (more than {max}); narrow the selector or the time range, or raise query.max_samples"
    )]
    SamplesLimit {
        /// The configured maximum.
        max: usize,
    },
    /// The query would hold more memory than allowed.
    #[error(
        "the query would hold more than {max} bytes of memory; narrow the stream selector or the time range, or raise query.max_log_query_memory"
    )]
    MemoryLimit {
        /// The configured maximum.
        max: usize,
    },
    /// The query did not finish in time.
    #[error("query timed out after {seconds}s (query.timeout)")]
    Timeout {
        /// The timeout in seconds.
        seconds: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] crate::Error),
}

impl QueryError {
    /// A parse error at byte `offset` of `query`.
    pub fn parse(query: &str, offset: usize, message: impl Into<String>) -> QueryError {
        let before = &query[..offset.min(query.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        QueryError::Parse {
            line,
            col,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> QueryErrorKind {
        match self {
            QueryError::Parse { .. } | QueryError::Invalid(_) | QueryError::Pipeline { .. } => {
                QueryErrorKind::BadRequest
            }
            QueryError::EntriesLimit { .. }
            | QueryError::SeriesLimit { .. }
            | QueryError::BytesLimit { .. }
            | QueryError::SamplesLimit { .. }
            | QueryError::MemoryLimit { .. } => QueryErrorKind::Limit,
            QueryError::Timeout { .. } => QueryErrorKind::Timeout,
            QueryError::Storage(_) => QueryErrorKind::Storage,
        }
    }
}

/// Short name used inside the module.
pub(crate) type Error = QueryError;
