//! The one error type of this crate, and the kind each error maps from.
//!
//! Every variant carries what the pusher needs to act on it: where in the body the problem
//! is, the limit and the value that exceeded it, the stream concerned. The `ui` crate turns
//! an [`ErrorKind`] into an HTTP status (400, 413, 415, 429); nothing here knows HTTP.

use std::fmt;
use std::time::Duration;

/// What kind of failure an [`Error`] is, for mapping to a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed or breaks a validation rule; sending it again will not help
    /// (HTTP 400).
    BadRequest,
    /// The input is larger than a configured limit (HTTP 413).
    TooLarge,
    /// The body's Content-Type or Content-Encoding is not one this endpoint reads (HTTP 415).
    UnsupportedMediaType,
    /// An ingestion rate limit is exhausted; the same push can succeed later (HTTP 429 with
    /// `Retry-After`, see [`Error::retry_after`]).
    RateLimited,
    /// Storage failed (disk, RocksDB, damaged data); not the client's fault (HTTP 500).
    Storage,
    /// The data directory's filesystem is full: nothing of the push was stored, and the same
    /// push succeeds once space is freed (HTTP 507).
    StorageFull,
}

/// Which ingestion rate limit a push exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateScope {
    /// The limit over all streams (Loki's `ingestion_rate_mb` / `ingestion_burst_size_mb`).
    Global,
    /// The limit of one stream (Loki's `per_stream_rate_limit` / `per_stream_rate_limit_burst`),
    /// with the stream's labels as text.
    Stream(String),
}

impl fmt::Display for RateScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateScope::Global => f.write_str("all streams (ingestion_rate_mb)"),
            RateScope::Stream(labels) => write!(f, "stream '{labels}' (per_stream_rate_limit)"),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The push body's Content-Type is neither JSON nor protobuf.
    #[error(
        "unsupported Content-Type {content_type:?}: send application/json or \
         application/x-protobuf (snappy-compressed)"
    )]
    UnsupportedContentType {
        /// The Content-Type header as received.
        content_type: String,
    },

    /// The push body's Content-Encoding is not one this endpoint decompresses.
    #[error("unsupported Content-Encoding {encoding:?}: send gzip or no Content-Encoding")]
    UnsupportedContentEncoding {
        /// The Content-Encoding header as received.
        encoding: String,
    },

    /// The body was sent with `Content-Encoding: gzip` but is not a valid gzip stream.
    #[error("body is not valid gzip although sent with Content-Encoding: gzip: {source}")]
    Gzip {
        /// What the gzip decoder reported.
        #[source]
        source: std::io::Error,
    },

    /// Decompressing the body (gzip, or the snappy block of a protobuf push) would produce
    /// more bytes than allowed: a decompression bomb or a batch too large for this server.
    #[error(
        "{encoding} body decompresses to more than {limit} bytes (claimed {claimed}); \
         send smaller batches"
    )]
    DecompressedTooLarge {
        /// `"gzip"` or `"snappy"`.
        encoding: &'static str,
        /// The configured limit on decompressed bytes.
        limit: usize,
        /// The size the body claims or reached, when known (`"more"` otherwise).
        claimed: ClaimedSize,
    },

    /// A protobuf push body is not a valid snappy *block* (not the framed format).
    #[error("protobuf push body is not a valid snappy block: {source}")]
    Snappy {
        /// What the snappy decoder reported.
        #[source]
        source: snap::Error,
    },

    /// The snappy-decompressed bytes are not a `logproto.PushRequest`.
    #[error("protobuf push body is not a valid logproto.PushRequest: {source}")]
    Protobuf {
        /// What the protobuf decoder reported.
        #[source]
        source: prost::DecodeError,
    },

    /// An entry of a protobuf push has a missing or impossible timestamp.
    #[error("streams[{stream}].entries[{entry}]: {reason}")]
    ProtobufTimestamp {
        /// Index of the stream in the request.
        stream: usize,
        /// Index of the entry in the stream.
        entry: usize,
        /// What is wrong with the timestamp.
        reason: TimestampProblem,
    },

    /// A JSON push body is not JSON, or not shaped like a Loki push. The message names the
    /// element (`streams[0].values[2][0]`) and the line and column.
    #[error("invalid JSON push body: {source}")]
    Json {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// Some streams or entries of a push broke validation rules. The others were accepted;
    /// the message lists the rejected ones, Loki-style, one per line.
    #[error("{message}")]
    Rejected {
        /// How many entries were accepted (and will be stored).
        accepted_entries: usize,
        /// How many entries were rejected.
        rejected_entries: usize,
        /// One line per rejection (capped), then a summary line.
        message: String,
    },

    /// An ingestion rate limit is exhausted. Retrying after `retry_after` can succeed.
    #[error(
        "ingestion rate limit exceeded for {scope}: this push has {push_bytes} bytes, the \
         limit is {rate_bytes_per_sec} bytes/s with a burst of {burst_bytes} bytes; retry \
         after {retry_after:?}"
    )]
    RateLimited {
        /// Which limit.
        scope: RateScope,
        /// The limit's sustained rate.
        rate_bytes_per_sec: u64,
        /// The limit's burst.
        burst_bytes: u64,
        /// Bytes (lines and structured metadata) the push needed.
        push_bytes: u64,
        /// How long until the bucket holds enough for this push.
        retry_after: Duration,
    },

    /// A push is larger than a rate limit's burst, so it can never pass that limit: the
    /// client must send smaller batches (or the limit must be raised).
    #[error(
        "push of {push_bytes} bytes for {scope} is larger than the rate limit burst of \
         {burst_bytes} bytes and can never be accepted; send smaller batches or raise the burst"
    )]
    ExceedsBurst {
        /// Which limit.
        scope: RateScope,
        /// The limit's burst.
        burst_bytes: u64,
        /// Bytes (lines and structured metadata) the push needed.
        push_bytes: u64,
    },

    /// A file or directory of the store could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The file or directory.
        path: std::path::PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// RocksDB failed.
    #[error("log store RocksDB failed {action}: {source}")]
    RocksDb {
        /// What was being done.
        action: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },

    /// The line index (tantivy) failed.
    #[error("log line index failed {action}: {source}")]
    LineIndex {
        /// What was being done.
        action: String,
        /// tantivy's error.
        #[source]
        source: tantivy::TantivyError,
    },

    /// zstd could not compress a chunk column (it fails only when out of memory).
    #[error("log store could not compress a chunk column: zstd: {reason}")]
    Pack {
        /// zstd's error name.
        reason: &'static str,
    },

    /// Stored bytes (a WAL record, a chunk, an index key) do not decode.
    #[error("log store data is damaged: {what} in {place}")]
    Corrupt {
        /// What did not decode.
        what: &'static str,
        /// Where it was read from.
        place: String,
    },

    /// One push is larger than a WAL record may be.
    #[error("push of {bytes} bytes is larger than the {limit} bytes a WAL record may hold")]
    RecordTooLarge {
        /// The record's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// The size a too-large body claimed or reached, for [`Error::DecompressedTooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedSize {
    /// The snappy preamble announced this many bytes.
    Bytes(usize),
    /// Decompression was stopped at the limit.
    Unknown,
}

impl fmt::Display for ClaimedSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimedSize::Bytes(n) => write!(f, "{n} bytes"),
            ClaimedSize::Unknown => f.write_str("more"),
        }
    }
}

/// What is wrong with a protobuf entry's timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampProblem {
    /// `EntryAdapter.timestamp` is absent.
    Missing,
    /// `nanos` is outside `0..=999_999_999`.
    NanosOutOfRange(i32),
    /// `seconds * 1e9 + nanos` does not fit in a signed 64-bit count of nanoseconds.
    Overflow(i64),
}

impl fmt::Display for TimestampProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampProblem::Missing => f.write_str("the entry has no timestamp"),
            TimestampProblem::NanosOutOfRange(n) => {
                write!(f, "timestamp nanos {n} is outside 0..=999999999")
            }
            TimestampProblem::Overflow(s) => write!(
                f,
                "timestamp of {s} seconds does not fit in signed 64-bit nanoseconds \
                 (years 1677..2262)"
            ),
        }
    }
}

impl Error {
    /// The kind of failure, for mapping to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnsupportedContentType { .. } | Error::UnsupportedContentEncoding { .. } => {
                ErrorKind::UnsupportedMediaType
            }
            Error::DecompressedTooLarge { .. } | Error::ExceedsBurst { .. } => ErrorKind::TooLarge,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Gzip { .. }
            | Error::Snappy { .. }
            | Error::Protobuf { .. }
            | Error::ProtobufTimestamp { .. }
            | Error::Json { .. }
            | Error::Rejected { .. } => ErrorKind::BadRequest,
            Error::RecordTooLarge { .. } => ErrorKind::TooLarge,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                ErrorKind::StorageFull
            }
            // RocksDB reports a full disk only in its message ("No space left on device").
            Error::RocksDb { source, .. } if source.to_string().contains("No space left") => {
                ErrorKind::StorageFull
            }
            Error::Io { .. }
            | Error::RocksDb { .. }
            | Error::LineIndex { .. }
            | Error::Pack { .. }
            | Error::Corrupt { .. } => ErrorKind::Storage,
        }
    }

    /// For a rate-limited push, how long to wait before retrying (for `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retry_after() {
        let limited = Error::RateLimited {
            scope: RateScope::Stream(r#"{app="x"}"#.into()),
            rate_bytes_per_sec: 10,
            burst_bytes: 20,
            push_bytes: 15,
            retry_after: Duration::from_millis(500),
        };
        assert_eq!(limited.kind(), ErrorKind::RateLimited);
        assert_eq!(limited.retry_after(), Some(Duration::from_millis(500)));
        assert!(limited.to_string().contains(r#"stream '{app="x"}'"#));
        let encoding = Error::UnsupportedContentEncoding {
            encoding: "br".into(),
        };
        assert_eq!(encoding.kind(), ErrorKind::UnsupportedMediaType);
        assert_eq!(encoding.retry_after(), None);
    }
}
