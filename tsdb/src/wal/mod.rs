//! The metric write-ahead log: every series and sample batch is framed, checksummed and
//! appended to numbered segment files before the head acknowledges it, and replayed into the
//! head at start-up.
//!
//! Modelled on Prometheus's `tsdb/wlog` (segment files `00000000`, `00000001`, … in one
//! directory, records of series and samples keyed by series ref;
//! <https://github.com/prometheus/prometheus/blob/main/tsdb/docs/format/wal.md>), with a
//! simpler framing: a record is never split across pages or segments. The byte layout is in
//! `tsdb/FORMAT.md`.
//!
//! Checksums are CRC32C (Castagnoli, as in Prometheus's WAL) from the `crc32c` crate: it uses
//! the SSE4.2 / ARMv8 CRC instructions, so checksumming costs well under a nanosecond per byte,
//! and has no runtime dependencies. (`crc32fast` only implements the zlib polynomial.)
//!
//! Durability: [`WalWriter::append`] hands each frame to the operating system in one write,
//! so a killed process loses nothing that was appended; an fsync ([`WalWriter::sync`]) happens
//! after every append under [`SyncPolicy::EveryBatch`], or when the caller's tick finds it due
//! under [`SyncPolicy::Interval`] ([`WalWriter::sync_if_due`]), bounding what a power loss
//! can take. A segment is fsynced before the next one is started, so only the newest segment
//! can have a torn tail after a crash.
//!
//! Damage is routed around, never refused ([`WalReader`] logs it with `tracing::warn!` and
//! lists it in its [`ReplayReport`]):
//! - In the **last** segment, a frame that is cut short, fails its checksum, or a bad segment
//!   header ends the replay, and the file is truncated at the last good record: that is the
//!   tail of a write a crash interrupted.
//! - In an **earlier** segment, the same damage skips the rest of that segment and the replay
//!   goes on with the next one; the file is left as it is, for inspection. Framing cannot be
//!   recovered inside a damaged segment, but every segment starts on a frame boundary, so later
//!   segments are intact. Dropping them all (as Prometheus's repair does) would lose more.
//! - An intact frame (checksum good) whose type is unknown or whose payload does not decode is
//!   skipped and counted: framing is intact, so the records after it are still read.
//! - A gap in the segment numbers is logged and counted, and replay continues.
//! - The one refusal: a segment header with an unknown format version returns
//!   [`Error::UnsupportedWalVersion`](crate::Error::UnsupportedWalVersion), since truncating
//!   or skipping what a newer version wrote would destroy data the user can still read with
//!   that version.
//!
//! [`WalTail`] follows the WAL while it is written, for the remote-write queues.
//!
//! A writer never appends to a segment it did not create: [`WalWriter::open`] starts a new
//! segment after the highest existing one, so whatever tail an older segment has, it can never
//! end up in front of new records.

mod reader;
mod record;
mod segment;
mod tail;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use reader::{Corruption, CorruptionKind, ReplayReport, WalReader};
pub use record::{Record, RefSample, RefSeries};
pub use tail::{WalPosition, WalTail};
pub use writer::WalWriter;

/// Sequence numbers of the segments in `dir`, ascending; empty if `dir` does not exist. For
/// the head's WAL truncation, which deletes segments a checkpoint has made unnecessary.
pub fn list_segments(dir: &Path) -> crate::Result<Vec<u64>> {
    segment::list_segments(dir)
}

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(segment::segment_name(seq))
}

/// Default size at which the writer starts a new segment: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// Default interval between fsyncs (`storage.wal_sync`): 1 s.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// When the writer fsyncs appended records to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync at the end of every [`WalWriter::append`].
    EveryBatch,
    /// fsync from [`WalWriter::sync_if_due`] once this long has passed since the last fsync.
    Interval(Duration),
}

impl SyncPolicy {
    /// The policy for the `storage.wal_sync` setting: zero means every batch.
    pub fn from_interval(interval: Duration) -> Self {
        if interval.is_zero() {
            SyncPolicy::EveryBatch
        } else {
            SyncPolicy::Interval(interval)
        }
    }
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Interval(DEFAULT_SYNC_INTERVAL)
    }
}

/// Settings of a [`WalWriter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when the next frame would take the current one past this
    /// many bytes. A segment always takes at least one record, so a record larger than this
    /// gets a segment of its own.
    pub segment_size: u64,
    /// When to fsync.
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::default(),
        }
    }
}
