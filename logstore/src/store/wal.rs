//! The log write-ahead log: segment files of checksummed records, synced with group commit.
//!
//! A segment is named after the sequence number of its first record (`00000000000000000042`)
//! so that a segment's range ends where the next one's begins. A record's frame is
//! `len u32 | crc32c u32 | seq u64 | payload`, little-endian, the CRC over `seq | payload`.
//!
//! Group commit: [`Wal::append`] only writes (one `write` call per record, in sequence
//! order); [`Wal::sync_through`] then makes sure an fsync that started after the write has
//! finished. Whoever takes the sync lock first syncs everything written so far, so concurrent
//! pushes share one fsync. A full segment is synced before the next one is started, so a
//! sync of the current segment covers every record before it.
//!
//! Replay stops at the first frame that is short or fails its checksum (a write torn by a
//! crash), truncates the segment there and logs it; the records after it in that segment
//! are gone, which can only be records never acknowledged when the damage is the torn tail
//! of the last segment.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;

/// Bytes of a frame before its payload.
const HEADER_BYTES: usize = 16;

/// Largest payload a frame may claim; anything above is damage, not data.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;

/// What a replay found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalReplay {
    /// Records read back.
    pub records: u64,
    /// Segments whose tail was cut at a torn or corrupt frame.
    pub torn_segments: u64,
    /// Bytes cut off those segments.
    pub torn_bytes: u64,
}

struct Writer {
    file: Arc<File>,
    size: u64,
    next_seq: u64,
    /// First sequence number of every segment on disk, ascending.
    segments: Vec<u64>,
    /// A failed write left bytes that could not be cut off: the next record goes to a new
    /// segment, so that replay (which stops a segment at its first bad frame) still sees it.
    broken: bool,
}

/// The WAL of one log store.
pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    sync_lock: Mutex<()>,
    synced_seq: AtomicU64,
}

fn io_error(action: impl Into<String>, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action: action.into(),
        path: path.to_owned(),
        source,
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}"))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing directory", dir, e))
}

impl Wal {
    /// Opens the WAL in `dir`, handing every intact record (sequence number, payload) to
    /// `apply` in order, then starts a new segment for appends.
    pub(crate) fn open(
        dir: &Path,
        segment_bytes: u64,
        mut apply: impl FnMut(u64, &[u8]) -> Result<(), Error>,
    ) -> Result<(Wal, WalReplay), Error> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        let mut segments = list_segments(dir)?;
        let mut replay = WalReplay::default();
        let mut next_seq = segments.last().map_or(1, |last| (*last).max(1));
        for &first in &segments {
            let path = segment_path(dir, first);
            let last = replay_segment(&path, &mut replay, &mut apply)?;
            next_seq = next_seq.max(first).max(last.map_or(0, |l| l + 1));
        }
        // Appends go to a fresh segment: a torn tail is never written after.
        // (an empty newest segment is simply reused).
        if segments.last() == Some(&next_seq) {
            segments.pop();
        }
        let file = create_segment(dir, next_seq)?;
        segments.push(next_seq);
        let wal = Wal {
            dir: dir.to_owned(),
            segment_bytes,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                size: 0,
                next_seq,
                segments,
                broken: false,
            }),
            sync_lock: Mutex::new(()),
            synced_seq: AtomicU64::new(next_seq.saturating_sub(1)),
        };
        Ok((wal, replay))
    }

    /// Writes one record (not yet synced) and returns its sequence number.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<u64, Error> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(Error::RecordTooLarge {
                bytes: payload.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let frame_len = (HEADER_BYTES + payload.len()) as u64;
        if writer.broken || (writer.size > 0 && writer.size + frame_len > self.segment_bytes) {
            self.start_segment(&mut writer)?;
        }
        let seq = writer.next_seq;
        let mut frame = Vec::with_capacity(frame_len as usize);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame.extend_from_slice(&seq.to_le_bytes());
        frame.extend_from_slice(payload);
        let file = writer.file.clone();
        if let Err(source) = (&*file).write_all(&frame) {
            // A partial frame (a full disk) would hide every later record from replay: cut it
            // off and write the next record at the cut, or failing that, in a new segment.
            let cut = file
                .set_len(writer.size)
                .and_then(|()| (&*file).seek(SeekFrom::Start(writer.size)));
            writer.broken = cut.is_err();
            let path = segment_path(&self.dir, *writer.segments.last().unwrap_or(&0));
            return Err(io_error("writing WAL segment", &path, source));
        }
        writer.size += frame_len;
        writer.next_seq += 1;
        Ok(seq)
    }

    /// Syncs the current segment and starts a new one.
    fn start_segment(&self, writer: &mut Writer) -> Result<(), Error> {
        let path = segment_path(&self.dir, *writer.segments.last().unwrap_or(&0));
        writer
            .file
            .sync_data()
            .map_err(|e| io_error("syncing WAL segment", &path, e))?;
        let first = writer.next_seq;
        writer.file = Arc::new(create_segment(&self.dir, first)?);
        writer.size = 0;
        writer.segments.push(first);
        writer.broken = false;
        Ok(())
    }

    /// Closes the current segment (unless it is empty) so that a truncation can delete it.
    pub(crate) fn rotate(&self) -> Result<(), Error> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.size > 0 {
            self.start_segment(&mut writer)?;
        }
        Ok(())
    }

    /// Returns once every record up to `seq` is on disk; concurrent callers share fsyncs.
    pub(crate) fn sync_through(&self, seq: u64) -> Result<(), Error> {
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let (file, through, first) = {
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            (
                writer.file.clone(),
                writer.next_seq - 1,
                *writer.segments.last().unwrap_or(&0),
            )
        };
        file.sync_data()
            .map_err(|e| io_error("syncing WAL segment", &segment_path(&self.dir, first), e))?;
        self.synced_seq.fetch_max(through, Ordering::AcqRel);
        Ok(())
    }

    /// The sequence number the next record gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
    }

    /// True if [`truncate_before`](Self::truncate_before) with `keep_from` would delete a
    /// segment.
    pub(crate) fn has_segments_before(&self, keep_from: u64) -> bool {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        writer
            .segments
            .get(1)
            .is_some_and(|second| *second <= keep_from)
    }

    /// Deletes every segment whose records all have sequence numbers below `keep_from`;
    /// returns how many were deleted. The current segment is never deleted.
    pub(crate) fn truncate_before(&self, keep_from: u64) -> Result<usize, Error> {
        let doomed: Vec<u64> = {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let count = writer
                .segments
                .windows(2)
                .take_while(|pair| pair[1] <= keep_from)
                .count();
            writer.segments.drain(..count).collect()
        };
        for first in &doomed {
            let path = segment_path(&self.dir, *first);
            std::fs::remove_file(&path).map_err(|e| io_error("removing WAL segment", &path, e))?;
        }
        Ok(doomed.len())
    }

    /// The lowest sequence number a reader at `from` may keep from deletion when the
    /// segments it holds may take at most `max_bytes`: `from`, or the first record of the
    /// oldest segment that still fits when the newer ones take the rest of the budget.
    pub(crate) fn floor_within(&self, from: u64, max_bytes: u64) -> u64 {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = writer.size;
        let mut floor = writer.segments.last().copied().unwrap_or(from);
        for &first in writer.segments.iter().rev().skip(1) {
            if first < from && floor <= from {
                break;
            }
            let size = std::fs::metadata(segment_path(&self.dir, first)).map_or(0, |m| m.len());
            total += size;
            if total > max_bytes {
                break;
            }
            floor = first;
        }
        from.max(floor)
    }

    /// Segments on disk.
    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .segments
            .len()
    }
}

/// The first sequence numbers of the segments in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut segments = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| io_error("listing", dir, e))? {
        let item = item.map_err(|e| io_error("listing", dir, e))?;
        if let Some(first) = item
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
        {
            segments.push(first);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<File, Error> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("creating WAL segment", &path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// What the bytes at a frame's start hold.
enum Frame<'a> {
    /// A whole record whose checksum matches.
    Complete { seq: u64, payload: &'a [u8] },
    /// Fewer bytes than the frame needs: a write in progress, or torn by a crash.
    Short(&'static str),
    /// A checksum mismatch or an impossible length.
    Damaged(&'static str),
}

/// Reads the frame at the start of `bytes`.
fn parse_frame(bytes: &[u8]) -> Frame<'_> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_BYTES>() else {
        return Frame::Short("a frame header cut short");
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3, seq_bytes @ ..] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len > MAX_RECORD_BYTES {
        return Frame::Damaged("an impossible record length");
    }
    let Some(payload) = rest.get(..len) else {
        return Frame::Short("a record cut short");
    };
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload) != crc {
        return Frame::Damaged("a checksum mismatch");
    }
    Frame::Complete {
        seq: u64::from_le_bytes(seq_bytes),
        payload,
    }
}

/// Replays one segment; returns the last sequence number read.
fn replay_segment(
    path: &Path,
    replay: &mut WalReplay,
    apply: &mut impl FnMut(u64, &[u8]) -> Result<(), Error>,
) -> Result<Option<u64>, Error> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error("reading WAL segment", path, e))?;
    let mut offset = 0usize;
    let mut last = None;
    let mut problem = None;
    while offset < bytes.len() {
        match parse_frame(&bytes[offset..]) {
            Frame::Complete { seq, payload } => {
                apply(seq, payload)?;
                replay.records += 1;
                last = Some(seq);
                offset += HEADER_BYTES + payload.len();
            }
            Frame::Short(what) | Frame::Damaged(what) => {
                problem = Some(what);
                break;
            }
        }
    }
    if let Some(problem) = problem {
        let cut = (bytes.len() - offset) as u64;
        tracing::warn!(
            segment = %path.display(),
            offset,
            cut_bytes = cut,
            "log WAL segment ends in {problem}: truncating it there (a write torn by a crash)"
        );
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_len(offset as u64)?;
                f.sync_all()
            })
            .map_err(|e| io_error("truncating WAL segment", path, e))?;
        replay.torn_segments += 1;
        replay.torn_bytes += cut;
    }
    Ok(last)
}

/// Reads the records of a WAL directory from a sequence number on, while they are
/// appended: the log forwarder's view of the WAL.
///
/// Edge cases decided: a frame cut short or failing its checksum in the newest segment is a
/// write in progress, read again on the next call; in an older segment (the writer has
/// moved on, so it cannot change any more) it is damage, and the reader goes on with the
/// next segment. Records missing between where the reader was and what the directory still
/// holds — deleted, or lost to damage — are counted in [`WalReader::skipped_records`].
pub(crate) struct WalReader {
    dir: PathBuf,
    next_seq: u64,
    segment: Option<OpenSegment>,
    skipped_records: u64,
}

/// The segment a [`WalReader`] is in.
struct OpenSegment {
    first_seq: u64,
    file: File,
    offset: u64,
}

impl WalReader {
    /// A reader of the WAL in `dir` whose first record is `next_seq`.
    pub(crate) fn new(dir: &Path, next_seq: u64) -> WalReader {
        WalReader {
            dir: dir.to_owned(),
            next_seq,
            segment: None,
            skipped_records: 0,
        }
    }

    /// The sequence number of the next record to read.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records that were gone before they could be read.
    pub(crate) fn skipped_records(&self) -> u64 {
        self.skipped_records
    }

    /// Up to `max` records (sequence number, payload) from the next one on; empty when
    /// nothing new is written.
    pub(crate) fn read(&mut self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let mut records = Vec::new();
        let mut rechecked = false;
        while records.len() < max {
            if self.segment.is_none() && !self.open_segment()? {
                break;
            }
            let Some(segment) = &mut self.segment else {
                break;
            };
            let path = segment_path(&self.dir, segment.first_seq);
            let mut bytes = Vec::new();
            (&segment.file)
                .seek(SeekFrom::Start(segment.offset))
                .and_then(|_| {
                    (&segment.file)
                        .take(HEADER_BYTES as u64)
                        .read_to_end(&mut bytes)
                })
                .map_err(|e| io_error("reading WAL segment", &path, e))?;
            if let Some(len) = bytes.get(..4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as u64;
                if len <= MAX_RECORD_BYTES as u64 {
                    (&segment.file)
                        .take(len)
                        .read_to_end(&mut bytes)
                        .map_err(|e| io_error("reading WAL segment", &path, e))?;
                }
            }
            match parse_frame(&bytes) {
                Frame::Complete { seq, payload } => {
                    segment.offset += (HEADER_BYTES + payload.len()) as u64;
                    rechecked = false;
                    if seq >= self.next_seq {
                        self.skipped_records += seq - self.next_seq;
                        self.next_seq = seq + 1;
                        records.push((seq, payload.to_vec()));
                    }
                }
                Frame::Short(_) | Frame::Damaged(_) => {
                    let first_seq = segment.first_seq;
                    if !list_segments(&self.dir)?.iter().any(|s| *s > first_seq) {
                        break;
                    }
                    // The writer had finished this segment before the listing: read the
                    // frame once more, since it may have been completed just before.
                    if !rechecked {
                        rechecked = true;
                        continue;
                    }
                    rechecked = false;
                    tracing::warn!(segment = %path.display(), offset = segment.offset, "log WAL segment is damaged: reading on from the next one");
                    self.segment = None;
                    if !self.open_segment_after(first_seq)? {
                        break;
                    }
                }
            }
        }
        Ok(records)
    }

    /// Opens the segment holding the next record (or, when it is gone, the oldest one
    /// after it); `false` when there is none.
    fn open_segment(&mut self) -> Result<bool, Error> {
        let segments = list_segments(&self.dir)?;
        let holding = segments.iter().rev().find(|first| **first <= self.next_seq);
        match holding.or_else(|| segments.first()) {
            Some(&first) => self.open_at(first),
            None => Ok(false),
        }
    }

    /// Opens the oldest segment newer than `first_seq`; `false` when there is none.
    fn open_segment_after(&mut self, first_seq: u64) -> Result<bool, Error> {
        match list_segments(&self.dir)?
            .into_iter()
            .find(|s| *s > first_seq)
        {
            Some(first) => self.open_at(first),
            None => Ok(false),
        }
    }

    fn open_at(&mut self, first_seq: u64) -> Result<bool, Error> {
        let path = segment_path(&self.dir, first_seq);
        let file = match File::open(&path) {
            Ok(file) => file,
            // Deleted since the listing: the next call lists again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error("opening WAL segment", &path, e)),
        };
        if first_seq > self.next_seq {
            self.skipped_records += first_seq - self.next_seq;
            self.next_seq = first_seq;
        }
        self.segment = Some(OpenSegment {
            first_seq,
            file,
            offset: 0,
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_all(dir: &Path) -> (Wal, WalReplay, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let opened = Wal::open(dir, 100, |seq, payload| {
            seen.push((seq, payload.to_vec()));
            Ok(())
        });
        let Ok((wal, replay)) = opened else {
            panic!("open failed: {:?}", opened.err())
        };
        (wal, replay, seen)
    }

    #[test]
    fn records_survive_reopen_across_segments_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, seen) = replay_all(dir.path());
        assert!(seen.is_empty());
        for i in 0..10u8 {
            let seq = wal.append(&[i; 30]).unwrap();
            wal.sync_through(seq).unwrap();
        }
        assert!(wal.segment_count() > 2, "100-byte segments rotate");
        drop(wal);
        let (wal, replay, seen) = replay_all(dir.path());
        assert_eq!(replay.records, 10);
        assert_eq!(
            seen.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(seen[3].1, vec![3u8; 30]);
        // A torn write at the end of the newest segment.
        let seq = wal.append(b"complete").unwrap();
        wal.sync_through(seq).unwrap();
        let newest = *wal.writer.lock().unwrap().segments.last().unwrap();
        drop(wal);
        let path = segment_path(dir.path(), newest);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let (wal, replay, seen) = replay_all(dir.path());
        assert_eq!(replay.torn_segments, 1);
        assert_eq!(replay.torn_bytes, 6);
        assert_eq!(
            seen.last().map(|(s, p)| (*s, p.clone())),
            Some((11, b"complete".to_vec()))
        );
        assert_eq!(wal.next_seq(), 12);
        // Truncation keeps what is still needed.
        let before = wal.segment_count();
        assert!(wal.truncate_before(5).unwrap() > 0);
        assert!(wal.segment_count() < before);
        drop(wal);
        let (_, _, seen) = replay_all(dir.path());
        assert!(seen.first().is_some_and(|(s, _)| *s <= 5));
        assert_eq!(seen.last().map(|(s, _)| *s), Some(11));
    }

    #[test]
    fn a_reader_waits_at_a_write_in_progress_and_passes_damage_in_older_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = replay_all(dir.path());
        let mut reader = WalReader::new(dir.path(), 1);
        for i in 0..3u8 {
            wal.append(&[i; 10]).unwrap();
        }
        assert_eq!(reader.read(10).unwrap().len(), 3);
        // Half a frame at the end of the newest segment: the writer is still at it.
        let newest = *wal.writer.lock().unwrap().segments.last().unwrap();
        let path = segment_path(dir.path(), newest);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[10, 0, 0, 0, 1, 2]).unwrap();
        assert!(reader.read(10).unwrap().is_empty());
        assert!(reader.read(10).unwrap().is_empty());
        assert_eq!(reader.next_seq(), 4);
        // Once a newer segment exists the rest of the old one is damage; reading goes on.
        drop(file);
        let mut writer = wal.writer.lock().unwrap();
        writer.next_seq = 6;
        wal.start_segment(&mut writer).unwrap();
        drop(writer);
        wal.append(b"next").unwrap();
        let records = reader.read(10).unwrap();
        assert_eq!(records, vec![(6, b"next".to_vec())]);
        assert_eq!(reader.skipped_records(), 2);
    }

    #[test]
    fn concurrent_appends_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = replay_all(dir.path());
        let wal = Arc::new(Wal {
            segment_bytes: 1 << 20,
            ..wal
        });
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let seq = wal.append(&[t, i]).unwrap();
                        wal.sync_through(seq).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(wal.synced_seq.load(Ordering::Acquire), 200);
        drop(wal);
        let (_, replay, _) = replay_all(dir.path());
        assert_eq!(replay.records, 200);
    }
}
