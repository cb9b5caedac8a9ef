//! The data directory and its lock: one Sightline per directory.
//!
//! The lock is an advisory `flock` on `DIR/lock`, which also holds the owner's pid so that a
//! second process can say who is using the directory. The kernel drops the lock when the
//! owner dies, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use sightline_core::config::Config;

/// A data directory this process holds the lock of, until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// The data directory to use: the `--data-dir` flag, else the config's `storage.path`,
    /// else `./data`.
    pub fn path_for(flag: Option<&Path>, config: &Config) -> PathBuf {
        flag.map(Path::to_owned)
            .or_else(|| config.storage.path.clone())
            .unwrap_or_else(|| PathBuf::from("./data"))
    }

    /// Creates `path` if needed and takes its lock; fails at once if another process has it.
    pub fn lock(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create data directory {}", path.display()))?;
        let lock_path = path.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                file.read_to_string(&mut owner).ok();
                return Err(match owner.trim().parse::<u32>() {
                    Ok(pid) => anyhow!("data directory {} is in use by pid {pid}", path.display()),
                    Err(_) => anyhow!(
                        "data directory {} is in use by another process",
                        path.display()
                    ),
                });
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: file,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
