//! Replaying the WAL: every intact record of every segment, in order, with damage routed
//! around as the [module doc](super) describes.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::record::{DecodeError, Record};
use super::segment::{self, FRAME_HEADER_LEN, HEADER_LEN, MAGIC, VERSION};
use crate::{Error, Result};

/// Read buffer per segment.
const READ_BUFFER: usize = 256 * 1024;

/// What a replay found besides the records themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files opened.
    pub segments: usize,
    /// Records returned.
    pub records: u64,
    /// Intact frames skipped because their type is unknown or their payload does not decode.
    pub skipped_records: u64,
    /// Sequence numbers missing between the first and the last segment.
    pub missing_segments: u64,
    /// Damaged places, in the order found; the rest of each segment was dropped.
    pub corruptions: Vec<Corruption>,
}

impl ReplayReport {
    /// Bytes that could not be read, over all corruptions.
    pub fn dropped_bytes(&self) -> u64 {
        self.corruptions.iter().map(|c| c.dropped_bytes).sum()
    }
}

/// One damaged place in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The segment's sequence number.
    pub segment: u64,
    /// Byte offset of the first unreadable byte (the start of the bad frame or header).
    pub offset: u64,
    /// Bytes from `offset` to the end of the segment, which the replay skipped.
    pub dropped_bytes: u64,
    /// What was wrong.
    pub kind: CorruptionKind,
    /// Whether the segment was truncated at `offset` (only ever the last segment).
    pub truncated: bool,
}

/// The kinds of damage a replay recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionKind {
    /// The file ends inside the segment header or a frame: a torn write, or a corrupt length.
    Truncated,
    /// A frame's checksum does not match its contents.
    BadChecksum,
    /// The segment does not start with the WAL magic bytes.
    BadMagic,
}

/// Iterates the records of a WAL directory in order, across all segments.
///
/// Items are `Err` only for I/O failures and [`Error::UnsupportedWalVersion`]; after an
/// `Err` the iterator ends. Damage is handled in passing and summarised by
/// [`report`](Self::report). Must not run while a [`WalWriter`](super::WalWriter) appends to
/// the same directory.
#[derive(Debug)]
pub struct WalReader {
    dir: PathBuf,
    segments: Vec<u64>,
    next_segment: usize,
    current: Option<SegmentReader>,
    payload: Vec<u8>,
    report: ReplayReport,
    failed: bool,
}

#[derive(Debug)]
struct SegmentReader {
    seq: u64,
    path: PathBuf,
    file: BufReader<File>,
    /// Offset of the next frame.
    offset: u64,
    /// File length when opened.
    len: u64,
    /// Whether this is the newest segment (the only one ever truncated).
    last: bool,
}

/// The outcome of reading one frame.
enum Frame {
    /// An intact frame of this type; its payload is in the buffer.
    Intact(u8),
    /// No more frames in this segment.
    End,
    /// Damage at the current offset.
    Corrupt(CorruptionKind),
}

impl WalReader {
    /// Prepares to replay `dir`. A missing directory is an empty WAL.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let segments = segment::list_segments(&dir)?;
        let missing: u64 = segments.windows(2).map(|w| w[1] - w[0] - 1).sum();
        if missing > 0 {
            tracing::warn!(dir = %dir.display(), missing, "WAL segments missing between the first and the last; replaying the rest");
        }
        Ok(WalReader {
            dir,
            segments,
            next_segment: 0,
            current: None,
            payload: Vec::new(),
            report: ReplayReport {
                missing_segments: missing,
                ..ReplayReport::default()
            },
            failed: false,
        })
    }

    /// What the replay found so far; complete once the iterator has ended.
    pub fn report(&self) -> &ReplayReport {
        &self.report
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            let Some(mut seg) = self.current.take() else {
                let Some(&seq) = self.segments.get(self.next_segment) else {
                    return Ok(None);
                };
                self.next_segment += 1;
                self.current = self.open_segment(seq, self.next_segment == self.segments.len())?;
                continue;
            };
            match seg.read_frame(&mut self.payload)? {
                Frame::End => {}
                Frame::Corrupt(kind) => self.corrupt(&seg, kind),
                Frame::Intact(kind) => {
                    let decoded = Record::decode(kind, &self.payload);
                    let offset = seg.offset - (FRAME_HEADER_LEN + self.payload.len()) as u64;
                    let seq = seg.seq;
                    self.current = Some(seg);
                    match decoded {
                        Ok(record) => {
                            self.report.records += 1;
                            return Ok(Some(record));
                        }
                        Err(e) => {
                            self.report.skipped_records += 1;
                            let why = match e {
                                DecodeError::UnknownType(kind) => {
                                    format!("unknown record type {kind}")
                                }
                                DecodeError::Malformed(reason) => reason.to_string(),
                            };
                            tracing::warn!(dir = %self.dir.display(), segment = seq, offset, why, "WAL record skipped");
                        }
                    }
                }
            }
        }
    }

    /// Opens segment `seq` and checks its header; `None` if it has no frames to read.
    fn open_segment(&mut self, seq: u64, last: bool) -> Result<Option<SegmentReader>> {
        let path = self.dir.join(segment::segment_name(seq));
        let file = File::open(&path).map_err(|e| Error::io("opening WAL segment", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading WAL segment metadata", &path, e))?
            .len();
        self.report.segments += 1;
        let mut seg = SegmentReader {
            seq,
            path,
            file: BufReader::with_capacity(READ_BUFFER, file),
            offset: 0,
            len,
            last,
        };
        if len == 0 {
            return Ok(None);
        }
        if len < HEADER_LEN {
            self.corrupt(&seg, CorruptionKind::Truncated);
            return Ok(None);
        }
        let mut header = [0; HEADER_LEN as usize];
        seg.read_exact(&mut header)?;
        if header[..4] != MAGIC {
            self.corrupt(&seg, CorruptionKind::BadMagic);
            return Ok(None);
        }
        if header[4] != VERSION {
            return Err(Error::UnsupportedWalVersion {
                path: seg.path,
                version: header[4],
                supported: VERSION,
            });
        }
        seg.offset = HEADER_LEN;
        Ok(Some(seg))
    }

    /// Records damage at `seg.offset`, truncating there if `seg` is the last segment.
    fn corrupt(&mut self, seg: &SegmentReader, kind: CorruptionKind) {
        let dropped_bytes = seg.len - seg.offset;
        let truncated = seg.last
            && match truncate(&seg.path, seg.offset) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(segment = %seg.path.display(), error = %e, "could not truncate the WAL's damaged tail; a new segment will be started after it anyway");
                    false
                }
            };
        tracing::warn!(
            segment = %seg.path.display(),
            offset = seg.offset,
            dropped_bytes,
            ?kind,
            truncated,
            "WAL segment damaged; records after this offset in this segment are lost",
        );
        self.report.corruptions.push(Corruption {
            segment: seg.seq,
            offset: seg.offset,
            dropped_bytes,
            kind,
            truncated,
        });
    }
}

impl Iterator for WalReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl SegmentReader {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact(buf)
            .map_err(|e| Error::io("reading WAL segment", &self.path, e))
    }

    /// Reads the frame at `self.offset`, its payload into `payload`; advances past it only if
    /// it is intact.
    fn read_frame(&mut self, payload: &mut Vec<u8>) -> Result<Frame> {
        let remaining = self.len - self.offset;
        if remaining == 0 {
            return Ok(Frame::End);
        }
        if remaining < FRAME_HEADER_LEN as u64 {
            return Ok(Frame::Corrupt(CorruptionKind::Truncated));
        }
        let mut header = [0; FRAME_HEADER_LEN];
        self.read_exact(&mut header)?;
        let [l0, l1, l2, l3, c0, c1, c2, c3, kind] = header;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if u64::from(len) > remaining - FRAME_HEADER_LEN as u64 {
            return Ok(Frame::Corrupt(CorruptionKind::Truncated));
        }
        // Bounded by the file's length, checked above.
        payload.clear();
        payload.resize(len as usize, 0);
        self.read_exact(payload)?;
        if crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload) != crc {
            return Ok(Frame::Corrupt(CorruptionKind::BadChecksum));
        }
        self.offset += FRAME_HEADER_LEN as u64 + u64::from(len);
        Ok(Frame::Intact(kind))
    }
}

/// Cuts `path` to `len` bytes, durably.
fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}
