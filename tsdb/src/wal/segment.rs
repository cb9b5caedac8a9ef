//! Segment files: names, the file header, frame constants, and listing a WAL directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// First bytes of every segment.
pub(crate) const MAGIC: [u8; 4] = *b"SLWL";
/// The format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Magic followed by the version byte.
pub(crate) const HEADER_LEN: u64 = 5;
/// Frame header: payload length (u32 LE), CRC32C (u32 LE), record type (u8).
pub(crate) const FRAME_HEADER_LEN: usize = 9;

/// The file name of segment `seq`: at least 8 decimal digits, zero-padded.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:08}")
}

/// The sequence number of a segment file name; `None` for any other file.
fn parse_segment_name(name: &str) -> Option<u64> {
    let seq = name.parse::<u64>().ok()?;
    (name.bytes().all(|b| b.is_ascii_digit()) && segment_name(seq) == name).then_some(seq)
}

/// Sequence numbers of the segments in `dir`, ascending; empty if `dir` does not exist.
/// Files whose names are not segment names are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing WAL directory", dir, e)),
    };
    let mut seqs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing WAL directory", dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Creates segment `seq` in `dir` with its header, durably (file and directory entry).
/// Never overwrites: an existing file of that name is an error.
pub(crate) fn create_segment(dir: &Path, seq: u64) -> Result<(File, PathBuf)> {
    let path = dir.join(segment_name(seq));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("creating WAL segment", &path, e))?;
    let mut header = [0; HEADER_LEN as usize];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    if let Err(e) = file.write_all(&header).and_then(|()| file.sync_data()) {
        // Best effort, so that a retry can create it again.
        let _ = fs::remove_file(&path);
        return Err(Error::io("writing WAL segment header", &path, e));
    }
    sync_dir(dir)?;
    Ok((file, path))
}

/// Makes the directory's entries durable (a new or truncated segment).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing WAL directory", dir, e))
}

/// Directories cannot be opened for syncing on this platform; entries are made durable by
/// the file system's own metadata journaling.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        assert_eq!(segment_name(0), "00000000");
        assert_eq!(segment_name(123_456_789), "123456789");
        for seq in [0, 7, 99_999_999, 100_000_000, u64::MAX] {
            assert_eq!(parse_segment_name(&segment_name(seq)), Some(seq));
        }
        for name in [
            "",
            "1",
            "0000001",
            "+0000001",
            "00000001.tmp",
            "checkpoint.00000001",
            "0000000a",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name:?}");
        }
    }
}
