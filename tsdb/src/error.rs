//! The one error type of `sightline-tsdb`.
//!
//! Damage the storage engine can route around (a torn WAL tail, a corrupt WAL segment) is not
//! an error: it is logged, counted and returned in a report (see
//! [`ReplayReport`](crate::wal::ReplayReport)). What remains here are refusals the caller must
//! act on.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the metric storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sample's timestamp is not strictly after the last sample of the chunk it was
    /// appended to. The chunk is unchanged.
    #[error("sample at {timestamp} ms is not after the chunk's last sample at {last} ms")]
    OutOfOrderSample {
        /// Timestamp of the rejected sample, in milliseconds.
        timestamp: i64,
        /// Timestamp of the chunk's last sample, in milliseconds.
        last: i64,
    },

    /// The chunk already holds as many samples as its 16-bit header can count; cut a new
    /// chunk. The chunk is unchanged.
    #[error("chunk is full ({max} samples): cut a new chunk")]
    ChunkFull {
        /// The maximum number of samples in one chunk.
        max: usize,
    },

    /// Bytes given as an XOR chunk do not decode to a valid chunk.
    #[error("corrupt XOR chunk at sample {sample}: {reason}")]
    CorruptChunk {
        /// Index of the sample being decoded when the problem was found (equal to the
        /// sample count for problems after the last sample).
        sample: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// A WAL record's encoded payload is larger than a frame's 32-bit length can describe.
    /// Nothing was written; split the batch.
    #[error("WAL record of {len} bytes exceeds the maximum of {max} bytes: split the batch")]
    WalRecordTooLarge {
        /// Encoded payload size in bytes.
        len: usize,
        /// Largest payload a frame can hold.
        max: usize,
    },

    /// A WAL segment carries a format version this build cannot read (most likely written
    /// by a newer Sightline). Nothing was modified.
    #[error(
        "WAL segment {path} has format version {version}, this build reads version \
         {supported}: run a newer sightline, or move the WAL directory aside to start empty"
    )]
    UnsupportedWalVersion {
        /// The segment file.
        path: PathBuf,
        /// The version byte found in its header.
        version: u8,
        /// The version this build writes and reads.
        supported: u8,
    },

    /// A series ref passed to the head's appender names no series: it was never handed out,
    /// or the series was dropped because it had no samples left. Append by labels again.
    #[error(
        "unknown series ref {series_ref}: the series was dropped from the head; append it by labels again"
    )]
    UnknownSeriesRef {
        /// The ref given.
        series_ref: u64,
    },

    /// A sample was appended with an empty label set; every series needs at least a name.
    #[error("series has no labels: a series needs at least a metric name")]
    EmptyLabels,

    /// The head has handed out 2³² series refs since it was started; restart to renumber.
    #[error("the head ran out of series refs (2^32 series created since start): restart sightline")]
    SeriesRefsExhausted,

    /// A metric of the storage engine could not be defined (a bug: the definitions are
    /// constants).
    #[error("defining storage metrics: {0}")]
    Metrics(#[source] prometheus::Error),

    /// The block store's format version key holds a version this build cannot read (most
    /// likely written by a newer Sightline). Nothing was modified.
    #[error(
        "block store {path} has format version {version}, this build reads version \
         {supported}: run a newer sightline, or move the blocks directory aside to start empty"
    )]
    UnsupportedBlockVersion {
        /// The RocksDB directory.
        path: PathBuf,
        /// The version found.
        version: u32,
        /// The version this build writes and reads.
        supported: u32,
    },

    /// A block cannot be written as asked: its time range is empty, crosses a UTC day
    /// boundary, or a chunk lies outside it. Nothing was written.
    #[error("cannot write block [{mint}, {maxt}) ms: {reason}")]
    InvalidBlock {
        /// Requested start of the block, inclusive, in milliseconds.
        mint: i64,
        /// Requested end of the block, exclusive, in milliseconds.
        maxt: i64,
        /// What is wrong.
        reason: String,
    },

    /// A stored block key or value does not decode. The block is left in place; move the
    /// blocks directory aside, or wait for retention to drop the day.
    #[error("corrupt block data in column family {partition}, block {block}: {reason}")]
    CorruptBlock {
        /// The day partition (column family) holding the block.
        partition: String,
        /// The block id.
        block: u64,
        /// What is wrong.
        reason: String,
    },

    /// A RocksDB operation on the block store failed.
    #[error("{action} in block store {path}: {source}")]
    RocksDb {
        /// What was being done, e.g. "writing block 12".
        action: String,
        /// The RocksDB directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },

    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "syncing WAL segment".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// True when the data directory's filesystem is full: the write can succeed once space
    /// is freed (HTTP 507 for remote write).
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
            // RocksDB reports a full disk only in its message.
            Error::RocksDb { source, .. } => source.to_string().contains("No space left"),
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
