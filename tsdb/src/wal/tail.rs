//! Following the WAL while it is written: [`WalTail`] returns the records appended since it
//! last looked, from a [`WalPosition`] its owner can keep across restarts. The remote-write
//! queue reads the samples it sends this way, so an outage of the receiver loses nothing the
//! WAL still holds.
//!
//! Edge cases decided, as Prometheus's WAL watcher does: a frame cut short or failing its
//! checksum at the end of the newest segment is a write in progress, left for the next call;
//! the same in an older segment is damage, and the tail moves on to the next segment (counted
//! in [`WalTail::skipped_segments`]); a segment deleted by a checkpoint before it was read is
//! skipped the same way; records whose payload does not decode are skipped. The tail never
//! writes to the WAL (unlike the start-up replay, it truncates nothing).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::Record;
use super::segment::{self, FRAME_HEADER_LEN, HEADER_LEN, MAGIC, VERSION};
use crate::{Error, Result};

/// Where a [`WalTail`] reads next: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalPosition {
    /// The segment's sequence number.
    pub segment: u64,
    /// Offset of the next frame; 0 before the segment header has been read.
    pub offset: u64,
}

/// Reads the records of a WAL directory as they are appended.
#[derive(Debug)]
pub struct WalTail {
    dir: PathBuf,
    position: WalPosition,
    file: Option<File>,
    payload: Vec<u8>,
    skipped_segments: u64,
}

/// What reading the frame at the position found.
enum Step {
    /// A record, or an undecodable one to skip (`None`); the position moved past it.
    Frame(Option<Record>),
    /// Nothing more has been written yet.
    Wait,
    /// This segment is done — read to its end, or (`damaged`) its rest cannot be read — and
    /// a newer one exists.
    NextSegment {
        /// Whether unread bytes are left behind.
        damaged: bool,
    },
}

impl WalTail {
    /// A tail of `dir` from `position`, or from the start of its oldest segment.
    pub fn open(dir: impl AsRef<Path>, position: Option<WalPosition>) -> Result<WalTail> {
        let dir = dir.as_ref().to_path_buf();
        let position = match position {
            Some(position) => position,
            None => WalPosition {
                segment: segment::list_segments(&dir)?.first().copied().unwrap_or(0),
                offset: 0,
            },
        };
        Ok(WalTail {
            dir,
            position,
            file: None,
            payload: Vec::new(),
            skipped_segments: 0,
        })
    }

    /// Where the next call reads.
    pub fn position(&self) -> WalPosition {
        self.position
    }

    /// Segments (or their unreadable rests) passed over: deleted before they were read, or
    /// damaged.
    pub fn skipped_segments(&self) -> u64 {
        self.skipped_segments
    }

    /// The records appended since the last call, at most `max`; empty when the writer has
    /// appended nothing new.
    pub fn read(&mut self, max: usize) -> Result<Vec<Record>> {
        let mut records = Vec::new();
        while records.len() < max {
            if self.file.is_none() && !self.open_current()? {
                break;
            }
            match self.step()? {
                Step::Frame(Some(record)) => records.push(record),
                Step::Frame(None) => {}
                Step::Wait => break,
                Step::NextSegment { damaged } => {
                    if !self.move_to_next_segment(damaged)? {
                        break;
                    }
                }
            }
        }
        Ok(records)
    }

    /// Opens the position's segment; when it is gone, moves to the next existing one.
    /// `false` when there is nothing to open yet.
    fn open_current(&mut self) -> Result<bool> {
        let path = self.dir.join(segment::segment_name(self.position.segment));
        match File::open(&path) {
            Ok(file) => {
                self.file = Some(file);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let moved = self.move_to_next_segment(false)?;
                Ok(moved && self.file.is_some())
            }
            Err(e) => Err(Error::io("opening WAL segment", &path, e)),
        }
    }

    /// Moves to the first segment after the current one, if one exists (and opens it);
    /// `skipping` counts the current one's unread rest as skipped.
    fn move_to_next_segment(&mut self, skipping: bool) -> Result<bool> {
        let segments = segment::list_segments(&self.dir)?;
        let Some(&next) = segments.iter().find(|&&seq| seq > self.position.segment) else {
            return Ok(false);
        };
        let gap = next - self.position.segment;
        let missing = if self.file.is_none() { gap } else { gap - 1 };
        self.skipped_segments += missing + u64::from(skipping);
        self.position = WalPosition {
            segment: next,
            offset: 0,
        };
        self.file = None;
        let path = self.dir.join(segment::segment_name(next));
        match File::open(&path) {
            Ok(file) => self.file = Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("opening WAL segment", &path, e)),
        }
        Ok(true)
    }

    /// Reads what is at the position: the header of a new segment, then one frame.
    fn step(&mut self) -> Result<Step> {
        let path = self.dir.join(segment::segment_name(self.position.segment));
        let Some(file) = &self.file else {
            return Ok(Step::Wait);
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading WAL segment metadata", &path, e))?
            .len();
        let newer_exists = || -> Result<bool> {
            Ok(segment::list_segments(&self.dir)?
                .iter()
                .any(|&seq| seq > self.position.segment))
        };
        // What a segment that ends here means: the writer may still be writing it, unless it
        // has started a newer one; then unread bytes are damage.
        let ends_here = |newer: bool, unread: bool| {
            if newer {
                Step::NextSegment { damaged: unread }
            } else {
                Step::Wait
            }
        };
        if self.position.offset == 0 {
            if len < HEADER_LEN {
                return Ok(ends_here(newer_exists()?, len > 0));
            }
            let mut header = [0; HEADER_LEN as usize];
            read_at(file, &mut header, 0, &path)?;
            if header[..4] != MAGIC {
                return Ok(ends_here(newer_exists()?, true));
            }
            if header[4] != VERSION {
                return Err(Error::UnsupportedWalVersion {
                    path,
                    version: header[4],
                    supported: VERSION,
                });
            }
            self.position.offset = HEADER_LEN;
        }
        let remaining = len.saturating_sub(self.position.offset);
        if remaining < FRAME_HEADER_LEN as u64 {
            return Ok(ends_here(newer_exists()?, remaining > 0));
        }
        let mut header = [0; FRAME_HEADER_LEN];
        read_at(file, &mut header, self.position.offset, &path)?;
        let [l0, l1, l2, l3, c0, c1, c2, c3, kind] = header;
        let frame_len = u64::from(u32::from_le_bytes([l0, l1, l2, l3]));
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if frame_len > remaining - FRAME_HEADER_LEN as u64 {
            return Ok(ends_here(newer_exists()?, true));
        }
        // Bounded by the file's length, checked above.
        self.payload.clear();
        self.payload.resize(frame_len as usize, 0);
        read_at(
            file,
            &mut self.payload,
            self.position.offset + FRAME_HEADER_LEN as u64,
            &path,
        )?;
        if crc32c::crc32c_append(crc32c::crc32c(&[kind]), &self.payload) != crc {
            return Ok(ends_here(newer_exists()?, true));
        }
        self.position.offset += FRAME_HEADER_LEN as u64 + frame_len;
        Ok(Step::Frame(Record::decode(kind, &self.payload).ok()))
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<()> {
    file.read_exact_at(buf, offset)
        .map_err(|e| Error::io("reading WAL segment", path, e))
}
