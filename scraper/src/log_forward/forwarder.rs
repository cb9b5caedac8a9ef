//! One log forwarder: follows the log WAL from where it last sent and pushes every stored
//! entry to its endpoint, in batches, retrying until the endpoint takes them.
//!
//! Decisions, after Promtail's client:
//! - Batches: pushes are read in WAL order and merged by stream into one request of up to
//!   `batch_size` bytes of lines, sent when full or `batch_wait` after its first entry. A
//!   push bigger than `batch_size` goes alone, whole.
//! - Backpressure and no loss: while a batch is retried (see
//!   [`endpoint`](crate::outbound::endpoint)) nothing more is read; the WAL holds the rest.
//!   Only after the endpoint took (or refused for good) a batch are its pushes released to
//!   the store's WAL truncation and the position saved under
//!   `<data>/log_forward/<name>.position`, so a Sightline restart resends at most that batch.
//! - A new forwarder (no saved position) sends the pushes from its start on, as Promtail
//!   starts at the end of a new file.
//! - `external_labels` are added to every stream that lacks them; the stream's own win.
//! - `tenant_id` is sent as `X-Scope-OrgID`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prost::bytes::Bytes;
use sightline_core::config::log_forward::LogForwardConfig;
use sightline_core::labels::Labels;
use sightline_logstore::push::{Entry, PushRequest, PushStream, protobuf};
use sightline_logstore::store::{LogStore, WalFollower, WalRecord};
use tokio_util::sync::CancellationToken;

use super::ForwardStatus;
use super::metrics::ForwarderMetrics;
use crate::outbound::endpoint::{Delivery, Endpoint, RetryPolicy};
use crate::outbound::queues::{read_off_runtime, save_position};
use crate::scrape::client::Credentials;

/// Pushes read from the WAL at a time.
const RECORDS_PER_READ: usize = 64;
/// How often an idle forwarder looks for new pushes.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a forwarder that cannot start (a bad TLS file) waits before it tries again.
const RESTART_DELAY: Duration = Duration::from_secs(5);

/// What a forwarder needs to run.
pub(super) struct ForwarderSetup {
    pub(super) config: LogForwardConfig,
    pub(super) store: Arc<LogStore>,
    pub(super) follower: WalFollower,
    pub(super) position_file: PathBuf,
    pub(super) base_dir: PathBuf,
    pub(super) metrics: ForwarderMetrics,
    pub(super) status: Arc<Mutex<ForwardStatus>>,
}

/// Runs the forwarder until `stop`.
pub(super) async fn run(setup: ForwarderSetup, stop: CancellationToken) {
    let name = setup.config.queue_name();
    let endpoint = loop {
        match endpoint(&setup.config, &setup.base_dir) {
            Ok(endpoint) => break endpoint,
            Err(error) => {
                tracing::error!(forwarder = %name, "log forwarding cannot start, trying again: {error}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RESTART_DELAY) => {}
                }
            }
        }
    };
    let mut forwarder = Forwarder {
        external_labels: Labels::from_pairs(
            setup
                .config
                .external_labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        ),
        sent_through: setup.follower.position(),
        follower: Some(setup.follower),
        read_ahead: VecDeque::new(),
        endpoint,
        config: setup.config,
        store: setup.store,
        position_file: setup.position_file,
        metrics: setup.metrics,
        status: setup.status,
    };
    forwarder.run(&stop).await;
}

/// The endpoint of `config`, with the push's headers.
fn endpoint(config: &LogForwardConfig, base_dir: &Path) -> Result<Endpoint, String> {
    let mut headers = vec![(
        "Content-Type".to_owned(),
        "application/x-protobuf".to_owned(),
    )];
    if !config.tenant_id.is_empty() {
        headers.push(("X-Scope-OrgID".to_owned(), config.tenant_id.clone()));
    }
    headers.extend(config.headers.clone());
    Endpoint::new(
        config.url.clone(),
        config.remote_timeout.as_std(),
        headers,
        config.tls_config.as_ref(),
        Credentials::new(
            config.basic_auth.as_ref(),
            config.authorization.as_ref(),
            config.bearer_token.as_ref(),
            config.bearer_token_file.as_ref(),
        ),
        base_dir.to_owned(),
        RetryPolicy {
            min_backoff: config.min_backoff_period.as_std(),
            max_backoff: config.max_backoff_period.as_std(),
            retry_on_http_429: config.retry_on_http_429,
        },
    )
}

struct Forwarder {
    config: LogForwardConfig,
    external_labels: Labels,
    store: Arc<LogStore>,
    /// `None` only while a read runs off the runtime's threads.
    follower: Option<WalFollower>,
    /// The sequence number of the first push not yet sent.
    sent_through: u64,
    /// Pushes read but not yet in a batch (the last read went past a full batch).
    read_ahead: VecDeque<WalRecord>,
    endpoint: Endpoint,
    position_file: PathBuf,
    metrics: ForwarderMetrics,
    status: Arc<Mutex<ForwardStatus>>,
}

/// Entries merged by stream into one request.
struct Batch {
    streams: Vec<PushStream>,
    index: HashMap<Labels, usize>,
    entries: u64,
    bytes: u64,
    /// The sequence number after the batch's last push.
    through: u64,
    started: Instant,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            streams: Vec::new(),
            index: HashMap::new(),
            entries: 0,
            bytes: 0,
            through: 0,
            started: Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.through == 0
    }

    /// Adds a push's entries, each stream with the labels of `external` it lacks.
    fn add(&mut self, record: WalRecord, external: &Labels) {
        if self.is_empty() {
            self.started = Instant::now();
        }
        self.through = record.seq + 1;
        for stream in record.streams {
            let mut labels = stream.labels;
            for label in external {
                if labels.get(&label.name).is_none() {
                    labels.set(&label.name, &label.value);
                }
            }
            let slot = *self.index.entry(labels.clone()).or_insert_with(|| {
                self.streams.push(PushStream {
                    labels,
                    ..PushStream::default()
                });
                self.streams.len() - 1
            });
            self.entries += stream.entries.len() as u64;
            self.bytes += stream.entries.iter().map(Entry::size).sum::<usize>() as u64;
            self.streams[slot].entries.extend(stream.entries);
        }
    }
}

impl Forwarder {
    async fn run(&mut self, stop: &CancellationToken) {
        let batch_size = self.config.batch_size.bytes();
        let batch_wait = self.config.batch_wait.as_std();
        let mut batch = Batch::new();
        while !stop.is_cancelled() {
            if self.read_ahead.is_empty()
                && let Err(error) = self.read().await
            {
                tracing::warn!(forwarder = %self.config.queue_name(), "log forwarding: {error}");
                self.set_error(error);
            }
            let read_nothing = self.read_ahead.is_empty();
            while batch.bytes < batch_size
                && let Some(record) = self.read_ahead.pop_front()
            {
                batch.add(record, &self.external_labels);
            }
            self.update_pending();
            let due = batch.bytes >= batch_size || batch.started.elapsed() >= batch_wait;
            if !batch.is_empty() && due {
                let full = std::mem::replace(&mut batch, Batch::new());
                if !self.send(full, stop).await {
                    return;
                }
            } else if read_nothing {
                let wait = if batch.is_empty() {
                    POLL_INTERVAL
                } else {
                    POLL_INTERVAL.min(batch_wait.saturating_sub(batch.started.elapsed()))
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Reads the next pushes into `read_ahead`.
    async fn read(&mut self) -> Result<(), String> {
        let (records, skipped) = read_off_runtime(&mut self.follower, |follower| {
            (follower.read(RECORDS_PER_READ), follower.skipped_records())
        })
        .await?;
        self.metrics
            .skipped_records
            .set(i64::try_from(skipped).unwrap_or(i64::MAX));
        self.read_ahead
            .extend(records.map_err(|error| error.to_string())?);
        Ok(())
    }

    /// Sends `batch` until the endpoint takes or refuses it, then releases its pushes and
    /// saves the position; `false` when the forwarder stopped first.
    async fn send(&mut self, batch: Batch, stop: &CancellationToken) -> bool {
        let request = PushRequest {
            streams: batch.streams,
        };
        let body = Bytes::from(protobuf::encode(&request));
        let delivery = self
            .endpoint
            .deliver(body, stop, |error, retrying| {
                self.set_error(error.to_owned());
                if retrying {
                    self.metrics.batch_retries.inc();
                    self.with_status(|status| status.retries += 1);
                }
            })
            .await;
        match delivery {
            Delivery::Taken => {
                self.metrics.sent_entries.inc_by(batch.entries);
                self.metrics.sent_bytes.inc_by(batch.bytes);
                self.with_status(|status| {
                    status.sent_entries += batch.entries;
                    status.last_error.clear();
                });
            }
            Delivery::Refused(error) => {
                tracing::warn!(forwarder = %self.config.queue_name(), entries = batch.entries, "log push refused, dropping it: {error}");
                self.metrics.dropped_entries.inc_by(batch.entries);
                self.with_status(|status| status.dropped_entries += batch.entries);
            }
            // The position stays before the unsent pushes: the next start sends them.
            Delivery::Stopped => return false,
        }
        if let Some(follower) = &self.follower {
            follower.release_before(batch.through);
        }
        self.sent_through = batch.through;
        save_position(&self.position_file, &format!("{}\n", batch.through));
        true
    }

    /// Counts the pushes stored and not yet sent.
    fn update_pending(&self) {
        let pending = self.store.wal_next_seq().saturating_sub(self.sent_through);
        self.metrics
            .pending_records
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.with_status(|status| status.pending_records = pending);
    }

    fn set_error(&self, error: String) {
        self.with_status(|status| status.last_error = error);
    }

    fn with_status(&self, change: impl FnOnce(&mut ForwardStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The position saved in `file`: the sequence number of the first push not yet sent.
pub(super) fn read_position(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}
