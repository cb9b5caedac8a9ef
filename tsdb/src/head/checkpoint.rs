//! WAL checkpoints: the series records of the live series, written when the head drops old
//! data, so that the WAL segments before it can be deleted.
//!
//! Follows Prometheus's `tsdb/wlog/checkpoint.go` in shape: a directory
//! `wal/checkpoint.NNNNNNNN` (N = the last segment it replaces) holding WAL-format segments,
//! written under `checkpoint.NNNNNNNN.tmp` and renamed into place once fsynced, so a crash
//! leaves either the old or the new checkpoint. Unlike Prometheus it holds series records only
//! and no samples: a segment is deleted only once every sample in it is older than the
//! checkpoint's minimum time, which is kept in a `mint` file next to the segments. Layout in
//! `tsdb/FORMAT.md`.
//!
//! Edge cases decided: a damaged `mint` file is treated as "no minimum" (replay keeps every
//! sample), logged and counted; leftover `.tmp` directories are removed on open; segments a
//! checkpoint covers that are still present (a crash between rename and delete) are deleted
//! before replay.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wal::{self, Record, RefSeries, SyncPolicy, WalOptions, WalWriter};
use crate::{Error, Result};

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";
const MINT_FILE: &str = "mint";
/// Series per record in a checkpoint.
const SERIES_PER_RECORD: usize = 1000;

/// The newest complete checkpoint in a WAL directory.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    /// Last WAL segment it replaces.
    pub(crate) segment: u64,
    /// Its directory.
    pub(crate) dir: PathBuf,
}

fn checkpoint_name(segment: u64) -> String {
    format!("{PREFIX}{segment:08}")
}

/// Finds the newest checkpoint, removing unfinished (`.tmp`) ones and older ones.
pub(crate) fn find(wal_dir: &Path) -> Result<Option<Checkpoint>> {
    let (mut found, unfinished) = list(wal_dir)?;
    for dir in unfinished {
        remove_dir(&dir);
    }
    let Some(newest) = found.pop() else {
        return Ok(None);
    };
    for older in found {
        remove_dir(&wal_dir.join(checkpoint_name(older)));
    }
    Ok(Some(Checkpoint {
        segment: newest,
        dir: wal_dir.join(checkpoint_name(newest)),
    }))
}

/// The series of the newest complete checkpoint, read without changing anything (the head
/// may be writing the next one meanwhile); empty when there is none.
pub(crate) fn newest_series(wal_dir: &Path) -> Result<Vec<RefSeries>> {
    let (found, _) = list(wal_dir)?;
    let Some(newest) = found.last() else {
        return Ok(Vec::new());
    };
    let mut series = Vec::new();
    for record in
        wal::WalTail::open(wal_dir.join(checkpoint_name(*newest)), None)?.read(usize::MAX)?
    {
        if let Record::Series(batch) = record {
            series.extend(batch);
        }
    }
    Ok(series)
}

/// The complete checkpoints' segment numbers, ascending, and the unfinished checkpoints'
/// directories.
fn list(wal_dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>)> {
    let entries = match fs::read_dir(wal_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io("listing WAL directory", wal_dir, e)),
    };
    let (mut found, mut unfinished) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing WAL directory", wal_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if rest.ends_with(TMP_SUFFIX) {
            unfinished.push(entry.path());
        } else if let Ok(segment) = rest.parse::<u64>()
            && checkpoint_name(segment) == name
        {
            found.push(segment);
        }
    }
    found.sort_unstable();
    Ok((found, unfinished))
}

fn remove_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove an old WAL checkpoint");
    }
}

/// Reads a checkpoint's minimum time; `None` if the file is missing or damaged.
pub(crate) fn read_mint(dir: &Path) -> Option<i64> {
    let path = dir.join(MINT_FILE);
    let bytes = fs::read(&path).ok()?;
    let (mint, crc) = bytes.split_first_chunk::<8>()?;
    let crc: [u8; 4] = crc.try_into().ok()?;
    (crc32c::crc32c(mint) == u32::from_le_bytes(crc)).then(|| i64::from_le_bytes(*mint))
}

/// Writes checkpoint `segment` holding `series` and `mint`, then deletes WAL segments up to
/// and including `segment` and older checkpoints.
pub(crate) fn write(
    wal_dir: &Path,
    segment: u64,
    mint: i64,
    series: impl IntoIterator<Item = RefSeries>,
) -> Result<()> {
    let final_dir = wal_dir.join(checkpoint_name(segment));
    let tmp = wal_dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(segment)));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io("removing old checkpoint", &tmp, e))?;
    }
    let options = WalOptions {
        segment_size: wal::DEFAULT_SEGMENT_SIZE,
        sync: SyncPolicy::Interval(Duration::MAX),
    };
    let mut writer = WalWriter::open(&tmp, options)?;
    let mut batch = Vec::with_capacity(SERIES_PER_RECORD);
    for s in series {
        batch.push(s);
        if batch.len() == SERIES_PER_RECORD {
            let record = Record::Series(std::mem::take(&mut batch));
            writer.append(&record)?;
        }
    }
    if !batch.is_empty() {
        writer.append(&Record::Series(batch))?;
    }
    writer.sync()?;
    drop(writer);

    let mint_path = tmp.join(MINT_FILE);
    let mut bytes = mint.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&mint.to_le_bytes()).to_le_bytes());
    let mut file = fs::File::create(&mint_path)
        .map_err(|e| Error::io("creating checkpoint file", &mint_path, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing checkpoint file", &mint_path, e))?;
    sync_dir(&tmp)?;

    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)
            .map_err(|e| Error::io("replacing checkpoint", &final_dir, e))?;
    }
    fs::rename(&tmp, &final_dir).map_err(|e| Error::io("renaming checkpoint", &tmp, e))?;
    sync_dir(wal_dir)?;
    delete_segments_through(wal_dir, segment)?;
    // Removes checkpoints older than this one.
    find(wal_dir)?;
    Ok(())
}

/// Deletes the WAL segments numbered `segment` and below.
pub(crate) fn delete_segments_through(wal_dir: &Path, segment: u64) -> Result<()> {
    for seq in wal::list_segments(wal_dir)? {
        if seq > segment {
            break;
        }
        let path = wal::segment_path(wal_dir, seq);
        fs::remove_file(&path).map_err(|e| Error::io("deleting WAL segment", &path, e))?;
    }
    sync_dir(wal_dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}
