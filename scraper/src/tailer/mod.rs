//! Pod-log and file tailing: Promtail's job inside Sightline.
//!
//! Tails `<root>/<namespace>_<pod>_<uid>/<container>/*.log` (the kubelet's `/var/log/pods`
//! layout, `root` being the hostPath mount) and, outside Kubernetes, any files matched by
//! globs with static labels (Promtail's `static_configs` with `__path__`). Lines in CRI or
//! Docker json-file format are reassembled from fragments ([`format`]) and pushed through the
//! logstore's validation and WAL — the same path as `POST /loki/api/v1/push`.
//!
//! Polling, not inotify: every [`Tailer::poll`] (about once a second) lists the globs, so new
//! pods, containers and files are found without watches to lose. Files are followed by
//! identity (device + inode) through an open handle, so:
//!
//! * rotation by rename (kubelet: `0.log` → `0.log.<time>`, new `0.log`): the old handle is
//!   read to its end once its inode no longer sits at a tailed path, then the new file from 0;
//! * copytruncate: a file shorter than our offset is read again from 0.
//!
//! Positions ([`positions`]) advance only after the logstore acknowledged the lines.
//! Streams are labelled `namespace`, `pod`, `container`, `node`, `app` (from the pod's labels
//! `app.kubernetes.io/name` or `app`, once [`PodMetadata`] knows them), `stream`
//! (stdout/stderr) and, for static files, `filename`. `relabel_configs` run on those labels
//! (plus `__path__`), so `action: drop` drops whole streams; [`LineDrop`] rules drop lines
//! by content, like Promtail's `drop` stage with `expression`.

pub mod format;
pub mod positions;
mod setup;

pub use setup::{follow_pod_labels, node_name};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;
use sightline_core::config::relabel::RelabelConfig;
use sightline_core::labels::Labels;
use sightline_logstore::push::{self, Entry, PushLimits, PushRequest, PushStream};
use sightline_logstore::store::LogStore;

use crate::relabel::relabel;
use positions::{FileId, Position, Positions};

/// Most bytes read from all files in one poll, so one poll's push stays bounded.
const MAX_BYTES_PER_POLL: usize = 8 << 20;

/// Files matched by a glob, with fixed labels (Promtail's `static_configs`).
#[derive(Debug, Clone)]
pub struct StaticFiles {
    /// A glob such as `/var/log/*.log`.
    pub path_glob: String,
    /// Labels for every stream of these files.
    pub labels: Labels,
}

/// Drops lines whose content matches `expression`, for streams matching `selector`.
#[derive(Debug, Clone)]
pub struct LineDrop {
    /// Label name → anchored regex; all must match (an absent label is the empty string).
    pub selector: Vec<(String, Regex)>,
    /// Unanchored regex on the line content.
    pub expression: Regex,
}

/// What the tailer reads and how it labels it.
#[derive(Debug, Clone, Default)]
pub struct TailerOptions {
    /// The `/var/log/pods` directory (hostPath); `None` to tail no pods.
    pub pods_root: Option<PathBuf>,
    /// The node's name, for the `node` label.
    pub node: String,
    /// Files outside Kubernetes.
    pub static_files: Vec<StaticFiles>,
    /// Where positions are kept.
    pub positions_file: PathBuf,
    /// Relabel steps on each stream's labels; `action: drop` drops the stream.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Line-content drop rules.
    pub line_drops: Vec<LineDrop>,
    /// Most bytes of a line reassembled from fragments (0 = no cap).
    pub max_partial_line_size: usize,
    /// The logstore's validation limits.
    pub limits: PushLimits,
}

/// Pod labels by (namespace, pod), filled from the Kubernetes pod watch.
#[derive(Debug, Clone)]
pub struct PodMetadata {
    pods: Arc<RwLock<HashMap<(String, String), Labels>>>,
    /// Whether the pods are known: until the API's first list, pod files wait, so that
    /// their streams start with their `app` label.
    synced: Arc<AtomicBool>,
}

impl Default for PodMetadata {
    /// Metadata that is complete as it is: no API to wait for.
    fn default() -> Self {
        PodMetadata {
            pods: Arc::default(),
            synced: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl PodMetadata {
    /// Metadata that a pod watch fills ([`follow_pod_labels`]); pod files are not read
    /// before its first [`PodMetadata::replace`].
    pub fn from_api() -> PodMetadata {
        PodMetadata {
            pods: Arc::default(),
            synced: Arc::new(AtomicBool::new(false)),
        }
    }

    fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Records (or replaces) a pod's labels.
    pub fn set(&self, namespace: &str, pod: &str, labels: Labels) {
        let mut map = self.pods.write().unwrap_or_else(|e| e.into_inner());
        map.insert((namespace.to_owned(), pod.to_owned()), labels);
    }

    /// Stops pod files waiting for the first list: they are read from now on, without the
    /// labels of pods not yet known.
    pub fn stop_waiting(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Replaces every pod's labels at once, after a (re)list or a change.
    pub fn replace(&self, pods: impl IntoIterator<Item = ((String, String), Labels)>) {
        let mut map = self.pods.write().unwrap_or_else(|e| e.into_inner());
        *map = pods.into_iter().collect();
        self.synced.store(true, Ordering::Release);
    }

    /// The `app` label for a pod: `app.kubernetes.io/name`, else `app`.
    fn app(&self, namespace: &str, pod: &str) -> Option<String> {
        let map = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let labels = map.get(&(namespace.to_owned(), pod.to_owned()))?;
        labels
            .get("app.kubernetes.io/name")
            .or_else(|| labels.get("app"))
            .map(str::to_owned)
    }
}

/// Errors of the tailer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The logstore refused the lines; they are read again next poll.
    #[error("cannot store tailed lines: {0}")]
    Store(#[from] sightline_logstore::Error),
    /// A glob in the configuration is malformed.
    #[error("bad glob {glob:?}: {error}")]
    Glob {
        /// The glob.
        glob: String,
        /// Why.
        error: glob::PatternError,
    },
}

/// Where a file's labels come from.
#[derive(Debug, Clone)]
enum Source {
    Pod {
        namespace: String,
        pod: String,
        container: String,
    },
    Static(Labels),
}

/// A line being reassembled from fragments.
#[derive(Debug)]
struct Pending {
    /// Offset of the first fragment: positions never go past it.
    start: u64,
    timestamp_ns: Option<i64>,
    stream: Option<String>,
    line: String,
}

/// One tailed file, followed by its open handle.
#[derive(Debug)]
struct Tracked {
    file: File,
    path: PathBuf,
    source: Source,
    /// Bytes read from the file.
    read: u64,
    /// Read bytes after the last newline.
    carry: Vec<u8>,
    pending: Option<Pending>,
    /// Offset stored in the logstore (acknowledged).
    acked: u64,
    /// No longer at a tailed path: read to the end, then dropped.
    gone: bool,
    /// The last read reached the end of the file.
    drained: bool,
}

impl Tracked {
    /// Offset up to which every line is complete and handed out.
    fn complete(&self) -> u64 {
        match &self.pending {
            Some(pending) => pending.start,
            None => self.read - self.carry.len() as u64,
        }
    }

    /// Goes back to `offset`, forgetting what was read after it.
    fn rewind(&mut self, offset: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.read = offset;
        self.carry.clear();
        self.pending = None;
        Ok(())
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    /// Lines stored in the logstore.
    pub lines: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// Lines dropped by rules.
    pub dropped: u64,
    /// Lines the logstore's validation rejected.
    pub rejected: u64,
}

/// The tailer: call [`Tailer::poll`] periodically and [`Tailer::save_positions`] at shutdown.
#[derive(Debug)]
pub struct Tailer {
    options: TailerOptions,
    pods: PodMetadata,
    positions: Positions,
    files: HashMap<FileId, Tracked>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Splits a `/var/log/pods` path into (namespace, pod, container).
fn pod_source(path: &Path) -> Option<Source> {
    let container = path.parent()?;
    let pod_dir = container.parent()?.file_name()?.to_str()?;
    let mut parts = pod_dir.splitn(3, '_');
    let namespace = parts.next()?.to_owned();
    let pod = parts.next()?.to_owned();
    parts.next()?;
    Some(Source::Pod {
        namespace,
        pod,
        container: container.file_name()?.to_str()?.to_owned(),
    })
}

fn glob_paths(pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let paths = glob::glob(pattern).map_err(|error| Error::Glob {
        glob: pattern.to_owned(),
        error,
    })?;
    Ok(paths.filter_map(Result::ok).collect())
}

impl Tailer {
    /// A tailer that resumes from the positions file.
    pub fn new(options: TailerOptions, pods: PodMetadata) -> Tailer {
        let positions = Positions::load(&options.positions_file);
        Tailer {
            options,
            pods,
            positions,
            files: HashMap::new(),
        }
    }

    /// Lists the globs: opens new files, renames moved ones, marks vanished ones gone.
    fn discover(&mut self) -> Result<(), Error> {
        let mut found: Vec<(PathBuf, Source)> = Vec::new();
        if let Some(root) = &self.options.pods_root
            && self.pods.synced()
        {
            let pattern = format!(
                "{}/*/*/*.log",
                glob::Pattern::escape(&root.to_string_lossy())
            );
            for path in glob_paths(&pattern)? {
                if let Some(source) = pod_source(&path) {
                    found.push((path, source));
                }
            }
        }
        for files in &self.options.static_files {
            for path in glob_paths(&files.path_glob)? {
                found.push((path, Source::Static(files.labels.clone())));
            }
        }
        let mut seen = HashSet::new();
        for (path, source) in found {
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let id = FileId::of(&metadata);
            seen.insert(id);
            if let Some(tracked) = self.files.get_mut(&id) {
                tracked.path = path;
                tracked.gone = false;
                continue;
            }
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            let offset = self
                .positions
                .offset(&path, id)
                .filter(|&offset| offset <= metadata.len())
                .unwrap_or(0);
            if file.seek(SeekFrom::Start(offset)).is_err() {
                continue;
            }
            tracing::debug!("tailing {} from {offset}", path.display());
            self.files.insert(
                id,
                Tracked {
                    file,
                    path,
                    source,
                    read: offset,
                    carry: Vec::new(),
                    pending: None,
                    acked: offset,
                    gone: false,
                    drained: false,
                },
            );
        }
        for (id, tracked) in &mut self.files {
            if !seen.contains(id) {
                tracked.gone = true;
            }
        }
        Ok(())
    }

    /// The stream labels of a file's lines, or `None` when relabeling drops them.
    fn labels(&self, source: &Source, path: &Path, stream: Option<&str>) -> Option<Labels> {
        let mut pairs: Vec<(String, String)> =
            vec![("__path__".to_owned(), path.to_string_lossy().into_owned())];
        match source {
            Source::Pod {
                namespace,
                pod,
                container,
            } => {
                pairs.push(("namespace".into(), namespace.clone()));
                pairs.push(("pod".into(), pod.clone()));
                pairs.push(("container".into(), container.clone()));
                pairs.push(("node".into(), self.options.node.clone()));
                if let Some(app) = self.pods.app(namespace, pod) {
                    pairs.push(("app".into(), app));
                }
            }
            Source::Static(labels) => {
                pairs.extend(
                    labels
                        .iter()
                        .map(|label| (label.name.clone(), label.value.clone())),
                );
                pairs.push(("filename".into(), path.to_string_lossy().into_owned()));
            }
        }
        if let Some(stream) = stream {
            pairs.push(("stream".into(), stream.to_owned()));
        }
        let labels = relabel(&Labels::from_pairs(pairs), &self.options.relabel_configs)?;
        Some(labels.without(|name| name.starts_with("__")))
    }

    fn dropped_by_rule(&self, labels: &Labels, line: &str) -> bool {
        self.options.line_drops.iter().any(|rule| {
            rule.selector.iter().all(|(name, regex)| {
                let value = labels.get(name).unwrap_or("");
                regex
                    .find(value)
                    .is_some_and(|m| m.start() == 0 && m.end() == value.len())
            }) && rule.expression.is_match(line)
        })
    }

    /// Reads every file's new bytes, stores the complete lines, and records positions.
    pub fn poll(&mut self, store: &LogStore) -> Result<PollStats, Error> {
        self.discover()?;
        let mut stats = PollStats::default();
        let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
        let mut budget = MAX_BYTES_PER_POLL;
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        let mut buffer = vec![0_u8; 256 << 10];
        for id in ids {
            let Some(mut tracked) = self.files.remove(&id) else {
                continue;
            };
            // Copytruncate: the file is now shorter than what we read.
            if let Ok(metadata) = tracked.file.metadata()
                && metadata.len() < tracked.read
                && tracked.rewind(0).is_ok()
            {
                tracked.acked = 0;
                tracing::info!("{} was truncated; reading from 0", tracked.path.display());
            }
            let mut at_end = false;
            while budget > 0 {
                let want = buffer.len().min(budget);
                let n = match tracked.file.read(&mut buffer[..want]) {
                    Ok(0) => {
                        at_end = true;
                        break;
                    }
                    Ok(n) => n,
                    Err(error) => {
                        tracing::warn!("cannot read {}: {error}", tracked.path.display());
                        break;
                    }
                };
                budget -= n;
                stats.bytes += n as u64;
                let line_start = tracked.read - tracked.carry.len() as u64;
                tracked.read += n as u64;
                tracked.carry.extend_from_slice(&buffer[..n]);
                let Some(last_newline) = memchr::memrchr(b'\n', &tracked.carry) else {
                    continue;
                };
                let complete: Vec<u8> = tracked.carry.drain(..=last_newline).collect();
                let mut offset = line_start;
                for raw in complete.split_inclusive(|&b| b == b'\n') {
                    let start = offset;
                    offset += raw.len() as u64;
                    let text = String::from_utf8_lossy(raw);
                    let text = text.trim_end_matches(['\n', '\r']);
                    self.take_line(&mut tracked, start, text, &mut streams, &mut stats);
                }
            }
            tracked.drained = at_end;
            if tracked.gone && at_end {
                // Rotated away and read to its end: a fragment left here has no end.
                if let Some(pending) = tracked.pending.take() {
                    self.emit(
                        &tracked,
                        pending.timestamp_ns,
                        pending.stream.as_deref(),
                        pending.line,
                        &mut streams,
                        &mut stats,
                    );
                }
            }
            self.files.insert(id, tracked);
        }
        let request = PushRequest {
            streams: streams
                .into_iter()
                .map(|(labels, entries)| PushStream {
                    labels,
                    malformed_labels: None,
                    entries,
                })
                .collect(),
        };
        let validated = push::validate(request, &self.options.limits, SystemTime::now());
        stats.rejected = validated.rejection_count as u64;
        if let Some(rejection) = validated.rejections.first() {
            tracing::warn!(
                "{} tailed lines rejected, first: {rejection:?}",
                validated.rejection_count
            );
        }
        stats.lines = validated
            .streams
            .iter()
            .map(|s| s.entries.len() as u64)
            .sum();
        if let Err(error) = store.push(&validated.streams) {
            for tracked in self.files.values_mut() {
                let acked = tracked.acked;
                if let Err(seek) = tracked.rewind(acked) {
                    tracing::warn!("cannot rewind {}: {seek}", tracked.path.display());
                }
            }
            return Err(error.into());
        }
        for tracked in self.files.values_mut() {
            tracked.acked = tracked.complete();
        }
        self.files
            .retain(|_, tracked| !(tracked.gone && tracked.drained && tracked.pending.is_none()));
        if let Err(error) = self.save_positions() {
            tracing::warn!(
                "cannot write positions file {}: {error}",
                self.options.positions_file.display()
            );
        }
        Ok(stats)
    }

    /// Handles one physical line starting at `start`.
    fn take_line(
        &self,
        tracked: &mut Tracked,
        start: u64,
        text: &str,
        streams: &mut BTreeMap<Labels, Vec<Entry>>,
        stats: &mut PollStats,
    ) {
        let parsed = match tracked.source {
            Source::Pod { .. } => format::parse_any(text),
            Source::Static(_) => format::Parsed {
                timestamp_ns: None,
                stream: None,
                partial: false,
                content: text.into(),
            },
        };
        let cap = self.options.max_partial_line_size;
        let pending = tracked.pending.get_or_insert_with(|| Pending {
            start,
            timestamp_ns: parsed.timestamp_ns,
            stream: parsed.stream.clone(),
            line: String::new(),
        });
        if format::append_capped(&mut pending.line, &parsed.content, cap) {
            tracing::debug!("line in {} cut at {cap} bytes", tracked.path.display());
        }
        if parsed.partial {
            return;
        }
        if let Some(pending) = tracked.pending.take() {
            self.emit(
                tracked,
                pending.timestamp_ns,
                pending.stream.as_deref(),
                pending.line,
                streams,
                stats,
            );
        }
    }

    fn emit(
        &self,
        tracked: &Tracked,
        timestamp_ns: Option<i64>,
        stream: Option<&str>,
        line: String,
        streams: &mut BTreeMap<Labels, Vec<Entry>>,
        stats: &mut PollStats,
    ) {
        let Some(labels) = self.labels(&tracked.source, &tracked.path, stream) else {
            stats.dropped += 1;
            return;
        };
        if self.dropped_by_rule(&labels, &line) {
            stats.dropped += 1;
            return;
        }
        streams.entry(labels).or_default().push(Entry {
            timestamp_ns: timestamp_ns.unwrap_or_else(now_ns),
            line,
            metadata: Vec::new(),
        });
    }

    /// Writes the acknowledged positions atomically (periodically and at shutdown).
    pub fn save_positions(&mut self) -> std::io::Result<()> {
        let entries = self
            .files
            .iter()
            .filter(|(_, tracked)| !tracked.gone)
            .map(|(id, tracked)| {
                (
                    tracked.path.clone(),
                    Position {
                        id: *id,
                        offset: tracked.acked,
                    },
                )
            })
            .collect();
        self.positions.replace(entries);
        self.positions.save()
    }
}
