//! Where an import is: its window of time, how far it got and how much it copied, kept in
//! `<data>/import/<kind>-<hash>.json` (the hash of the source and the selection) so that an
//! interrupted import resumes with the same window; and the progress line after each step.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// An import's window and how far it got, in the import's unit of time (ms or ns).
#[derive(Debug, Serialize, Deserialize)]
pub struct Progress {
    source: String,
    selection: String,
    /// The window's start.
    pub start: i64,
    /// The window's end (excluded).
    pub end: i64,
    /// Everything before this is copied.
    pub done_before: i64,
    /// What has been copied in all runs (samples, lines).
    pub copied: u64,
    #[serde(skip)]
    run: Run,
}

/// This run: where it started, when, and what it copied.
#[derive(Debug, Default)]
struct Run {
    file: PathBuf,
    from: i64,
    copied: u64,
    started: Option<Instant>,
}

impl Progress {
    /// Resumes the import of `selection` from `source` into `data_dir`, or starts one over
    /// `[now - since, now)`.
    pub fn resume(
        data_dir: &Path,
        kind: &str,
        source: &str,
        selection: &str,
        now: i64,
        since: i64,
    ) -> anyhow::Result<Progress> {
        let mut hasher = DefaultHasher::new();
        (source, selection).hash(&mut hasher);
        let file = data_dir
            .join("import")
            .join(format!("{kind}-{:016x}.json", hasher.finish()));
        let mut progress = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str::<Progress>(&text)
                .with_context(|| format!("{} is not an import's progress", file.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let start = now.saturating_sub(since);
                Progress {
                    source: source.to_owned(),
                    selection: selection.to_owned(),
                    start,
                    end: now,
                    done_before: start,
                    copied: 0,
                    run: Run::default(),
                }
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", file.display()));
            }
        };
        progress.run = Run {
            file,
            from: progress.done_before,
            copied: 0,
            started: Some(Instant::now()),
        };
        Ok(progress)
    }

    /// Whether an earlier run got somewhere.
    pub fn resumed(&self) -> bool {
        self.run.from > self.start
    }

    /// What this run copied.
    pub fn copied_now(&self) -> u64 {
        self.run.copied
    }

    /// Records that everything before `until` is copied, `copied` more of it; saves that
    /// (through a temporary file, so an interruption leaves the old or the new progress) and
    /// prints a progress line with `detail` and the time left at this run's pace.
    pub fn advance(&mut self, until: i64, copied: u64, detail: &str) -> anyhow::Result<()> {
        self.done_before = until;
        self.copied += copied;
        self.run.copied += copied;
        let file = &self.run.file;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let temporary = file.with_extension("tmp");
        std::fs::write(&temporary, serde_json::to_vec(self)?)
            .and_then(|()| std::fs::rename(&temporary, file))
            .with_context(|| format!("cannot save the progress in {}", file.display()))?;
        let done = (until - self.run.from) as f64 / (self.end - self.run.from).max(1) as f64;
        let elapsed = self.run.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let left = if done > 0.0 {
            elapsed / done - elapsed
        } else {
            0.0
        };
        eprintln!("  {:5.1} %  {detail}  about {left:.0} s left", done * 100.0);
        Ok(())
    }
}
