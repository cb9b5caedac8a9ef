//! The notification log: what each integration of each group was last told, so that an
//! unchanged group is not notified again before its `repeat_interval`, also after a restart.
//!
//! Follows Alertmanager's `nflog` and `notify.DedupStage`: an entry per (group key,
//! receiver, integration) holds the fingerprints of the firing and of the resolved alerts
//! last sent and when. A group is notified when ([`NotificationLog::needs_update`]):
//! - it was never notified and has firing alerts;
//! - an alert fires that the last notification did not list as firing;
//! - every alert has resolved and the last notification listed firing ones (sent whatever
//!   `send_resolved` says, so that the entry is cleared; the sender drops resolved alerts
//!   the integration does not want);
//! - `send_resolved` is on and an alert resolved that the last notification did not list
//!   as resolved;
//! - nothing changed and `repeat_interval` has passed since the last notification.
//!
//! Persistence: the log is a JSON file written (to a temporary file, then renamed) after
//! every change; entries older than [`RETENTION_MS`] are dropped when it is written. A file
//! that cannot be read at start-up is logged and set aside as `<name>.corrupt`, and the
//! notifier starts with an empty log (worst case: one repeated notification per group).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How long an entry is kept after its last notification (Alertmanager's default
/// `--data.retention`, 120 h).
pub const RETENTION_MS: i64 = 120 * 3600 * 1000;

/// Which integration of which group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryKey {
    /// The group key ([`super::route::GroupKey`] as text).
    pub group_key: String,
    /// The receiver's name.
    pub receiver: String,
    /// The integration, such as `pushover[0]`.
    pub integration: String,
}

/// What was last sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Fingerprints of the alerts sent as firing.
    pub firing: BTreeSet<u64>,
    /// Fingerprints of the alerts sent as resolved.
    pub resolved: BTreeSet<u64>,
    /// When (ms).
    pub at: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    entries: Vec<(EntryKey, Entry)>,
}

/// The log, in memory and (when opened on a file) on disk.
#[derive(Debug, Default)]
pub struct NotificationLog {
    entries: BTreeMap<EntryKey, Entry>,
    file: Option<PathBuf>,
}

impl NotificationLog {
    /// A log kept in memory only.
    pub fn in_memory() -> NotificationLog {
        NotificationLog::default()
    }

    /// Opens the log kept in `file`, creating it on the first write.
    pub fn open(file: &Path) -> NotificationLog {
        let stored: Stored = read_stored(file);
        NotificationLog {
            entries: stored.entries.into_iter().collect(),
            file: Some(file.to_owned()),
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: &EntryKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Whether the integration at `key` is to be notified of `firing` and `resolved` at `now`
    /// (the rules in the module doc).
    pub fn needs_update(
        &self,
        key: &EntryKey,
        firing: &BTreeSet<u64>,
        resolved: &BTreeSet<u64>,
        send_resolved: bool,
        repeat_interval_ms: i64,
        now: i64,
    ) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return !firing.is_empty();
        };
        if !firing.is_subset(&entry.firing) {
            return true;
        }
        if firing.is_empty() {
            return !entry.firing.is_empty();
        }
        if send_resolved && !resolved.is_subset(&entry.resolved) {
            return true;
        }
        entry.at <= now - repeat_interval_ms
    }

    /// Records a notification sent at `at`, and writes the log when it has a file.
    pub fn record(&mut self, key: EntryKey, entry: Entry) -> io::Result<()> {
        self.entries.insert(key, entry);
        self.persist()
    }

    /// Drops entries older than [`RETENTION_MS`] at `now`.
    pub fn expire(&mut self, now: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries
            .retain(|_, entry| entry.at > now.saturating_sub(RETENTION_MS));
        if self.entries.len() == before {
            return Ok(());
        }
        self.persist()
    }

    fn persist(&self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let stored = Stored {
            entries: self
                .entries
                .iter()
                .map(|(key, entry)| (key.clone(), entry.clone()))
                .collect(),
        };
        write_atomically(
            file,
            &serde_json::to_vec(&stored).map_err(io::Error::other)?,
        )
    }
}

/// Writes `bytes` to `file` through a temporary file and a rename, so that a crash leaves the
/// old or the new content.
pub(crate) fn write_atomically(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = file.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, file)
}

/// The state stored in `file` as JSON: the default when the file does not exist yet, and
/// when it cannot be read (then it is [set aside](set_aside)).
pub(crate) fn read_stored<T: serde::de::DeserializeOwned + Default>(file: &Path) -> T {
    let read = std::fs::read(file).map_err(|error| (error.kind(), error.to_string()));
    match read.and_then(|bytes| {
        serde_json::from_slice(&bytes)
            .map_err(|error| (io::ErrorKind::InvalidData, error.to_string()))
    }) {
        Ok(stored) => stored,
        Err((io::ErrorKind::NotFound, _)) => T::default(),
        Err((_, why)) => {
            set_aside(file, &why);
            T::default()
        }
    }
}

/// Moves an unreadable state file out of the way, keeping it for inspection.
pub(crate) fn set_aside(file: &Path, why: &str) {
    let corrupt = file.with_extension("corrupt");
    tracing::error!(
        file = %file.display(),
        set_aside_as = %corrupt.display(),
        "cannot read notifier state ({why}); starting without it"
    );
    if let Err(error) = std::fs::rename(file, &corrupt) {
        tracing::error!(file = %file.display(), "cannot set the file aside: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EntryKey {
        EntryKey {
            group_key: "{}:{}".to_owned(),
            receiver: "r".to_owned(),
            integration: "webhook[0]".to_owned(),
        }
    }

    fn set(items: &[u64]) -> BTreeSet<u64> {
        items.iter().copied().collect()
    }

    #[test]
    fn dedup_rules_follow_alertmanager() {
        let mut log = NotificationLog::in_memory();
        let k = key();
        assert!(!log.needs_update(&k, &set(&[]), &set(&[1]), true, 1000, 0));
        assert!(log.needs_update(&k, &set(&[1]), &set(&[]), true, 1000, 0));
        log.record(
            k.clone(),
            Entry {
                firing: set(&[1, 2]),
                resolved: set(&[]),
                at: 0,
            },
        )
        .unwrap();
        // A subset of what was sent, nothing resolved: only after the repeat interval.
        assert!(!log.needs_update(&k, &set(&[1]), &set(&[]), false, 1000, 999));
        assert!(log.needs_update(&k, &set(&[1]), &set(&[]), false, 1000, 1000));
        // A new firing alert.
        assert!(log.needs_update(&k, &set(&[1, 3]), &set(&[]), false, 1000, 1));
        // One resolved: only with send_resolved.
        assert!(log.needs_update(&k, &set(&[1]), &set(&[2]), true, 1000, 1));
        assert!(!log.needs_update(&k, &set(&[1]), &set(&[2]), false, 1000, 1));
        // All resolved: always, to clear the entry.
        assert!(log.needs_update(&k, &set(&[]), &set(&[1, 2]), false, 1000, 1));
    }

    #[test]
    fn log_survives_reopen_and_sets_garbage_aside() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nflog.json");
        let mut log = NotificationLog::open(&file);
        let entry = Entry {
            firing: set(&[7]),
            resolved: set(&[]),
            at: 5,
        };
        log.record(key(), entry.clone()).unwrap();
        assert_eq!(NotificationLog::open(&file).get(&key()), Some(&entry));
        let mut reopened = NotificationLog::open(&file);
        reopened.expire(5 + RETENTION_MS).unwrap();
        assert_eq!(NotificationLog::open(&file).get(&key()), None);

        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(NotificationLog::open(&file).get(&key()), None);
        assert!(dir.path().join("nflog.corrupt").exists());
    }
}
