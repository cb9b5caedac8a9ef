//! Named queues that follow the config: one per entry of a list such as `remote_write` or
//! `logs.forward`, started when an entry appears, stopped when it goes, and replaced when
//! it changes. Each queue keeps its WAL position in `<dir>/<name>.position`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sightline_core::config::Config;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A running queue: the config it was started with, its stop switch and its status.
struct Running<C, S> {
    config: C,
    stop: CancellationToken,
    status: Arc<Mutex<S>>,
}

/// The running queues by name; `C` is what a queue is started from, `S` its status.
pub(crate) struct QueueSet<C, S> {
    /// What the queues do, for log lines ("remote write", "log forwarding").
    kind: &'static str,
    running: Mutex<BTreeMap<String, Running<C, S>>>,
}

impl<C: PartialEq, S: Clone> QueueSet<C, S> {
    /// No queues yet.
    pub(crate) fn new(kind: &'static str) -> QueueSet<C, S> {
        QueueSet {
            kind,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Stops the queues missing from `wanted` or started from another config, then starts
    /// the missing ones with `start(name, config, stop)`, which returns the queue's status.
    pub(crate) fn apply(
        &self,
        wanted: BTreeMap<String, C>,
        mut start: impl FnMut(&str, &C, CancellationToken) -> Arc<Mutex<S>>,
    ) {
        let mut running = self.lock();
        running.retain(|name, queue| {
            let keep = wanted.get(name) == Some(&queue.config);
            if !keep {
                queue.stop.cancel();
                tracing::info!(queue = %name, "{} stopped", self.kind);
            }
            keep
        });
        for (name, config) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let stop = CancellationToken::new();
            let status = start(&name, &config, stop.clone());
            tracing::info!(queue = %name, "{} started", self.kind);
            running.insert(
                name,
                Running {
                    config,
                    stop,
                    status,
                },
            );
        }
    }

    /// Calls `apply` with every new config until `stop`, then stops every queue.
    pub(crate) async fn follow(
        &self,
        mut config: watch::Receiver<Arc<Config>>,
        stop: CancellationToken,
        apply: impl Fn(&Config),
    ) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let current = config.borrow_and_update().clone();
                    apply(&current);
                }
            }
        }
        for running in self.lock().values() {
            running.stop.cancel();
        }
    }

    /// Each queue's name, config and status.
    pub(crate) fn statuses(&self) -> Vec<(String, C, S)>
    where
        C: Clone,
    {
        self.lock()
            .iter()
            .map(|(name, running)| {
                let status = running
                    .status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                (name.clone(), running.config.clone(), status)
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Running<C, S>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the queue `name` keeps its position under `dir`: characters other than letters,
/// digits and `-` become `_` in the file name.
pub(crate) fn position_file(dir: &Path, name: &str) -> PathBuf {
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{file}.position"))
}

/// Replaces `file`'s contents with `text` (through a temporary file, so that a crash leaves
/// the old or the new position, never half of one).
pub(crate) fn save_position(file: &Path, text: &str) {
    let temporary = file.with_extension("tmp");
    let saved = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, file));
    if let Err(error) = saved {
        tracing::warn!(file = %file.display(), "cannot save a queue position: {error}");
    }
}

/// Runs `read` on the WAL reader in `slot` off the runtime's threads (file reads block),
/// and puts the reader back.
pub(crate) async fn read_off_runtime<R, T>(
    slot: &mut Option<R>,
    read: impl FnOnce(&mut R) -> T + Send + 'static,
) -> Result<T, String>
where
    R: Send + 'static,
    T: Send + 'static,
{
    let Some(mut reader) = slot.take() else {
        return Err("the WAL reader was lost".into());
    };
    let (reader, result) = tokio::task::spawn_blocking(move || {
        let result = read(&mut reader);
        (reader, result)
    })
    .await
    .map_err(|error| error.to_string())?;
    *slot = Some(reader);
    Ok(result)
}
