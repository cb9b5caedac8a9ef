//! Appending to the WAL: framing, segment rotation and the fsync policy.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::record::Record;
use super::segment::{self, FRAME_HEADER_LEN, HEADER_LEN};
use super::{SyncPolicy, WalOptions};
use crate::{Error, Result};

/// Appends records to a WAL directory.
///
/// One writer per directory (the data directory's lock guarantees it). A failed write or
/// fsync leaves the writer usable: the next append starts a fresh segment, so a half-written
/// frame can only ever end a segment, where replay skips it.
#[derive(Debug)]
pub struct WalWriter {
    dir: PathBuf,
    options: WalOptions,
    file: File,
    path: PathBuf,
    seq: u64,
    /// Bytes in the current segment, header included.
    len: u64,
    /// Frame being built; reused across appends.
    frame: Vec<u8>,
    /// Whether records were written since the last fsync.
    unsynced: bool,
    last_sync: Instant,
    /// A write or fsync failed: do not append to the current segment again.
    broken: bool,
}

impl WalWriter {
    /// Opens `dir` (creating it if needed) and starts a new segment numbered after the
    /// highest one present. Run [`WalReader`](super::WalReader) first to replay and repair.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating WAL directory", &dir, e))?;
        let seq = segment::list_segments(&dir)?
            .last()
            .map_or(0, |last| last.saturating_add(1));
        let (file, path) = segment::create_segment(&dir, seq)?;
        Ok(WalWriter {
            dir,
            options,
            file,
            path,
            seq,
            len: HEADER_LEN,
            frame: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            broken: false,
        })
    }

    /// Sequence number of the segment being appended to.
    pub fn segment(&self) -> u64 {
        self.seq
    }

    /// Frames `record` and writes it to the current segment (starting a new one first if it
    /// would grow past the segment size), then fsyncs under [`SyncPolicy::EveryBatch`].
    ///
    /// On return the record is in the operating system's hands: it survives the process
    /// being killed, and a power loss once synced.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        self.frame.clear();
        self.frame.resize(FRAME_HEADER_LEN, 0);
        let kind = record.encode(&mut self.frame);
        let payload_len = self.frame.len() - FRAME_HEADER_LEN;
        let len = u32::try_from(payload_len).map_err(|_| Error::WalRecordTooLarge {
            len: payload_len,
            max: u32::MAX as usize,
        })?;
        self.frame[8] = kind;
        // The checksum covers the type byte and the payload, which are contiguous.
        let crc = crc32c::crc32c(&self.frame[8..]);
        self.frame[..4].copy_from_slice(&len.to_le_bytes());
        self.frame[4..8].copy_from_slice(&crc.to_le_bytes());

        let frame_len = self.frame.len() as u64;
        if self.broken
            || (self.len > HEADER_LEN && self.len + frame_len > self.options.segment_size)
        {
            self.rotate()?;
        }
        if let Err(e) = self.file.write_all(&self.frame) {
            self.broken = true;
            return Err(Error::io("writing WAL segment", &self.path, e));
        }
        self.len += frame_len;
        self.unsynced = true;
        if self.options.sync == SyncPolicy::EveryBatch {
            self.sync()?;
        }
        Ok(())
    }

    /// fsyncs what was appended since the last fsync (nothing to do if nothing was).
    pub fn sync(&mut self) -> Result<()> {
        self.sync_at(Instant::now())
    }

    /// Under [`SyncPolicy::Interval`], fsyncs if there is unsynced data and the interval
    /// has passed since the last fsync; returns whether it did. Meant to be called from a
    /// periodic tick with the tick's time.
    pub fn sync_if_due(&mut self, now: Instant) -> Result<bool> {
        match self.options.sync {
            SyncPolicy::Interval(interval)
                if self.unsynced && now.saturating_duration_since(self.last_sync) >= interval =>
            {
                self.sync_at(now)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn sync_at(&mut self, now: Instant) -> Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages; retrying
            // would report success for lost data. Start afresh instead.
            self.broken = true;
            return Err(Error::io("syncing WAL segment", &self.path, e));
        }
        self.unsynced = false;
        self.last_sync = now;
        Ok(())
    }

    /// Finishes the current segment (fsynced, unless it is broken) and starts the next.
    fn rotate(&mut self) -> Result<()> {
        if self.broken {
            if let Err(e) = self.file.sync_data() {
                tracing::warn!(segment = %self.path.display(), error = %e, "could not sync a failed WAL segment before leaving it");
            }
        } else {
            self.sync()?;
        }
        let seq = self.seq.saturating_add(1);
        let (file, path) = segment::create_segment(&self.dir, seq)?;
        self.file = file;
        self.path = path;
        self.seq = seq;
        self.len = HEADER_LEN;
        self.unsynced = false;
        self.broken = false;
        Ok(())
    }
}
