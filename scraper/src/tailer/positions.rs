//! The positions file: per tailed file, its identity (device and inode) and the offset up to
//! which its lines are stored in the logstore.
//!
//! Like Promtail's `positions.yaml`, but JSON and written atomically (temporary file, fsync,
//! rename), so a crash leaves either the old or the new file. An offset is recorded only
//! after the logstore acknowledged the lines before it, and never inside a partial line, so
//! a restart neither loses nor duplicates lines. An entry whose device and inode do not match
//! the file now at that path (rotated while we were down) is ignored: that file starts at 0.
//! An unreadable positions file is reported and treated as empty.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which file an offset belongs to: device and inode survive a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity of an open file or a path's metadata.
    pub fn of(metadata: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// One recorded position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file's identity when the offset was recorded.
    #[serde(flatten)]
    pub id: FileId,
    /// Bytes of the file whose lines are stored.
    pub offset: u64,
}

/// The positions of all tailed files, by path.
#[derive(Debug, Default)]
pub struct Positions {
    path: PathBuf,
    entries: BTreeMap<PathBuf, Position>,
}

impl Positions {
    /// Loads the positions file at `path` (empty when it does not exist or is unreadable).
    pub fn load(path: impl Into<PathBuf>) -> Positions {
        let path = path.into();
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(
                    "ignoring unreadable positions file {}: {error}",
                    path.display()
                );
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Positions { path, entries }
    }

    /// The stored offset for the file `id` at `path`, if it is the same file.
    pub fn offset(&self, path: &Path, id: FileId) -> Option<u64> {
        self.entries
            .get(path)
            .filter(|position| position.id == id)
            .map(|position| position.offset)
    }

    /// Replaces all entries with `entries`.
    pub fn replace(&mut self, entries: BTreeMap<PathBuf, Position>) {
        self.entries = entries;
    }

    /// Writes the file atomically.
    pub fn save(&self) -> std::io::Result<()> {
        let json = serde_json::to_vec(&self.entries).map_err(std::io::Error::other)?;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, &self.path)
    }
}
