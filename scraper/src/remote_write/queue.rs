//! One remote-write queue: follows the metric WAL from where it last sent, and sends every
//! sample of every series its `write_relabel_configs` keep, in batches over parallel shards,
//! retrying until the receiver takes them.
//!
//! Decisions, after Prometheus's queue manager:
//! - Position: after every fully sent batch the WAL position is saved under
//!   `<data>/remote_write/<queue>.position`; a restart resumes there, so a Sightline restart
//!   loses nothing either. A new queue (no saved position) sends the samples from when the
//!   config that added it was applied (before the first scrape at start-up), as Prometheus
//!   starts at "now": it reads the whole WAL (series from the checkpoint
//!   and every segment, so that new samples of old series can be sent) and skips older
//!   samples.
//! - Order: a series always goes to the same shard, and a round of batches is sent completely
//!   before the next is read, so each series' samples arrive in order.
//! - Retries: network errors, 5xx and (with `retry_on_http_429`) 429 are retried with
//!   exponential backoff from `min_backoff` to `max_backoff`, forever: the WAL is the buffer,
//!   and reading stops while a batch is retried. Other 4xx answers drop the batch (counted
//!   as failed), since sending it again cannot succeed.
//! - Shards: from `min_shards`, doubled (up to `max_shards`) while each round finds more
//!   samples waiting than one round sends, and lowered by one when a round empties the WAL.
//! - `global.external_labels` are added to every series (labels it has win), as Prometheus
//!   does.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prost::Message;
use prost::bytes::Bytes;
use sightline_core::config::remote_write::RemoteWriteConfig;
use sightline_core::labels::Labels;
use sightline_tsdb::head::checkpoint_series;
use sightline_tsdb::wal::{Record, RefSample, RefSeries, WalPosition, WalTail};
use tokio_util::sync::CancellationToken;

use super::metrics::QueueMetrics;
use super::prompb;
use super::{MetadataSource, QueueStatus};
use crate::outbound::endpoint::{Delivery, Endpoint, RetryPolicy};
use crate::outbound::queues::{read_off_runtime, save_position};
use crate::relabel::relabel;
use crate::scrape::client::Credentials;

/// Records read from the WAL per poll: few, since one scrape's record holds thousands of
/// samples and a round should not read far past its size (a round's samples are in memory).
const RECORDS_PER_READ: usize = 8;
/// How often an idle queue looks for new records.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What a queue needs to run.
pub(super) struct QueueSetup {
    pub(super) config: RemoteWriteConfig,
    pub(super) external_labels: Labels,
    pub(super) wal_dir: PathBuf,
    pub(super) position_file: PathBuf,
    pub(super) base_dir: PathBuf,
    pub(super) metrics: QueueMetrics,
    pub(super) status: Arc<Mutex<QueueStatus>>,
    pub(super) metadata: MetadataSource,
    /// Without a saved position, samples older than this are not sent.
    pub(super) send_from_ms: i64,
}

/// A series as it is sent: its labels after relabelling, encoded, or `None` when dropped.
type SentSeries = Option<Arc<prompb::EncodedLabels>>;

/// Samples waiting in one shard, each with its series' labels.
type ShardBatch = Vec<(Arc<prompb::EncodedLabels>, RefSample)>;

/// How long a queue that cannot start waits before it tries again.
const RESTART_DELAY: Duration = Duration::from_secs(5);

/// Runs the queue until `stop`.
pub(super) async fn run(setup: QueueSetup, stop: CancellationToken) {
    let name = setup.config.queue_name();
    let setup = Arc::new(setup);
    let mut queue = loop {
        match Queue::start(&setup).await {
            Ok(queue) => break queue,
            Err(error) => {
                tracing::error!(queue = %name, "remote write cannot start, trying again: {error}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RESTART_DELAY) => {}
                }
            }
        }
    };
    let mut next_metadata = Instant::now();
    loop {
        if stop.is_cancelled() {
            return;
        }
        if queue.config.metadata_config.send && Instant::now() >= next_metadata {
            queue.send_metadata(&stop).await;
            next_metadata = Instant::now() + queue.config.metadata_config.send_interval.as_std();
        }
        match queue.round(&stop).await {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            Err(error) => {
                tracing::warn!(queue = %name, "remote write: {error}");
                queue.set_error(error);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(POLL_INTERVAL * 5) => {}
                }
            }
        }
    }
}

struct Queue {
    config: RemoteWriteConfig,
    external_labels: Labels,
    tail: Option<WalTail>,
    position_file: PathBuf,
    series: HashMap<u64, SentSeries>,
    endpoint: Endpoint,
    metrics: QueueMetrics,
    status: Arc<Mutex<QueueStatus>>,
    metadata: MetadataSource,
    shards: usize,
    /// Samples older than this are not sent (a new queue's start).
    send_from_ms: i64,
}

impl Queue {
    /// Opens the WAL at the saved position, having read every series before it; or at its
    /// start, to send the samples from now on.
    async fn start(setup: &QueueSetup) -> Result<Queue, String> {
        let config = setup.config.clone();
        let mut headers = vec![
            ("Content-Encoding".to_owned(), "snappy".to_owned()),
            (
                "Content-Type".to_owned(),
                "application/x-protobuf".to_owned(),
            ),
            (
                "X-Prometheus-Remote-Write-Version".to_owned(),
                "0.1.0".to_owned(),
            ),
        ];
        headers.extend(config.headers.clone());
        let endpoint = Endpoint::new(
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
            setup.base_dir.clone(),
            RetryPolicy {
                min_backoff: config.queue_config.min_backoff.as_std(),
                max_backoff: config.queue_config.max_backoff.as_std(),
                retry_on_http_429: config.queue_config.retry_on_http_429,
            },
        )?;
        let saved = read_position(&setup.position_file);
        let send_from_ms = if saved.is_some() {
            i64::MIN
        } else {
            setup.send_from_ms
        };
        let wal_dir = setup.wal_dir.clone();
        let rules = config.write_relabel_configs.clone();
        let external = setup.external_labels.clone();
        let (tail, series) =
            tokio::task::spawn_blocking(move || catch_up(&wal_dir, saved, &rules, &external))
                .await
                .map_err(|error| error.to_string())??;
        setup
            .metrics
            .shards
            .set(config.queue_config.min_shards as i64);
        Ok(Queue {
            shards: config.queue_config.min_shards,
            send_from_ms,
            external_labels: setup.external_labels.clone(),
            tail: Some(tail),
            position_file: setup.position_file.clone(),
            series,
            endpoint,
            metrics: setup.metrics.clone(),
            status: setup.status.clone(),
            metadata: setup.metadata.clone(),
            config,
        })
    }

    /// Reads what the WAL has (up to one round's worth), sends it, saves the position.
    /// `Ok(false)` when the WAL had nothing new.
    async fn round(&mut self, stop: &CancellationToken) -> Result<bool, String> {
        let queue = self.config.queue_config.clone();
        let round_size = self.shards * queue.max_samples_per_send.min(queue.capacity);
        let deadline = Instant::now() + queue.batch_send_deadline.as_std();
        let mut batches: Vec<ShardBatch> = vec![Vec::new(); self.shards];
        let mut pending = 0;
        let mut behind = false;
        loop {
            // A read that fails mid-round still sends what was read before it.
            let records = match self.read().await {
                Ok(records) => records,
                Err(error) if pending == 0 => return Err(error),
                Err(error) => {
                    tracing::warn!(queue = %self.config.queue_name(), "remote write: {error}");
                    break;
                }
            };
            if records.is_empty() {
                if pending == 0 || Instant::now() >= deadline || stop.is_cancelled() {
                    break;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            for record in records {
                match record {
                    Record::Series(series) => self.announce(series),
                    Record::Samples(samples) => {
                        let mut newest = i64::MIN;
                        for sample in samples {
                            if sample.timestamp < self.send_from_ms {
                                continue;
                            }
                            newest = newest.max(sample.timestamp);
                            match self.series.get(&sample.series_ref) {
                                Some(Some(labels)) => {
                                    let shard = shard_of(sample.series_ref, self.shards);
                                    batches[shard].push((labels.clone(), sample));
                                    pending += 1;
                                }
                                Some(None) => self.metrics.dropped.inc(),
                                None => self.metrics.unknown_series.inc(),
                            }
                        }
                        if newest > i64::MIN {
                            let seconds = newest as f64 / 1000.0;
                            let highest = &self.metrics.highest_read;
                            highest.set(highest.get().max(seconds));
                        }
                    }
                }
            }
            self.metrics.pending.set(pending as i64);
            if pending >= round_size {
                behind = true;
                break;
            }
        }
        if pending == 0 {
            self.save_position();
            return Ok(false);
        }
        let sends = batches
            .into_iter()
            .filter(|batch| !batch.is_empty())
            .map(|batch| self.send_shard(batch, stop));
        let finished = futures_util::future::join_all(sends).await;
        self.metrics.pending.set(0);
        if finished.contains(&false) {
            // Stopped while retrying: the position stays before the unsent samples, so that
            // the next start sends them.
            return Ok(true);
        }
        self.save_position();
        let shards = if behind {
            (self.shards * 2).min(queue.max_shards)
        } else {
            self.shards.saturating_sub(1).max(queue.min_shards)
        };
        if shards != self.shards {
            tracing::info!(queue = %self.config.queue_name(), from = self.shards, to = shards, "remote write resharded");
            self.shards = shards;
            self.metrics.shards.set(shards as i64);
        }
        Ok(true)
    }

    /// The next records of the WAL.
    async fn read(&mut self) -> Result<Vec<Record>, String> {
        let (records, skipped) = read_off_runtime(&mut self.tail, |tail| {
            (tail.read(RECORDS_PER_READ), tail.skipped_segments())
        })
        .await?;
        self.metrics.skipped_segments.set(skipped as i64);
        records.map_err(|error| error.to_string())
    }

    fn announce(&mut self, series: Vec<RefSeries>) {
        let rules = &self.config.write_relabel_configs;
        for s in series {
            let labels = sent_labels(&s, rules, &self.external_labels);
            self.series.insert(s.series_ref, labels);
        }
    }

    /// Sends one shard's samples, `max_samples_per_send` per request, each until it is taken
    /// or refused for good; `false` when the queue stopped before that.
    async fn send_shard(&self, batch: ShardBatch, stop: &CancellationToken) -> bool {
        for chunk in batch.chunks(self.config.queue_config.max_samples_per_send) {
            let (request, highest) = write_request(chunk);
            let count = chunk.len() as u64;
            if self.post(&request, count, stop).await {
                self.metrics.sent.inc_by(count);
                self.metrics
                    .highest_sent
                    .set(self.metrics.highest_sent.get().max(highest as f64 / 1000.0));
            } else if stop.is_cancelled() {
                return false;
            }
        }
        true
    }

    /// Posts the encoded `WriteRequest` until it is taken (`true`), refused for good or the
    /// queue stops.
    async fn post(&self, request: &[u8], samples: u64, stop: &CancellationToken) -> bool {
        let body = match snap::raw::Encoder::new().compress_vec(request) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                self.metrics.failed.inc_by(samples);
                self.set_error(format!("cannot compress a batch: {error}"));
                return false;
            }
        };
        let delivery = self
            .endpoint
            .deliver(body, stop, |error, retrying| {
                self.set_error(error.to_owned());
                if retrying {
                    self.metrics.retried.inc_by(samples);
                }
            })
            .await;
        match delivery {
            Delivery::Taken => {
                self.set_error(String::new());
                true
            }
            Delivery::Refused(error) => {
                tracing::warn!(queue = %self.config.queue_name(), samples, "remote write refused a batch, dropping it: {error}");
                self.metrics.failed.inc_by(samples);
                false
            }
            Delivery::Stopped => false,
        }
    }

    /// Sends the metadata of every scraped metric family, `max_samples_per_send` per request.
    async fn send_metadata(&self, stop: &CancellationToken) {
        let all = (self.metadata)();
        let per_request = self.config.metadata_config.max_samples_per_send.max(1);
        for chunk in all.chunks(per_request) {
            let request = prompb::WriteRequest {
                timeseries: Vec::new(),
                metadata: chunk.to_vec(),
            };
            if self.post(&request.encode_to_vec(), 0, stop).await {
                self.metrics.metadata_sent.inc_by(chunk.len() as u64);
            }
        }
    }

    fn set_error(&self, error: String) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.last_error = error;
        status.shards = self.shards;
    }

    fn save_position(&self) {
        let Some(tail) = &self.tail else { return };
        let position = tail.position();
        save_position(
            &self.position_file,
            &format!("{} {}\n", position.segment, position.offset),
        );
    }
}

/// One encoded `WriteRequest` of `samples`, grouped by series (in order), and their newest
/// timestamp.
fn write_request(samples: &[(Arc<prompb::EncodedLabels>, RefSample)]) -> (Vec<u8>, i64) {
    let mut series: Vec<(&prompb::EncodedLabels, Vec<(f64, i64)>)> = Vec::new();
    let mut index: HashMap<*const prompb::EncodedLabels, usize> = HashMap::new();
    let mut highest = i64::MIN;
    for (labels, sample) in samples {
        highest = highest.max(sample.timestamp);
        let slot = *index.entry(Arc::as_ptr(labels)).or_insert_with(|| {
            series.push((labels, Vec::new()));
            series.len() - 1
        });
        series[slot].1.push((sample.value, sample.timestamp));
    }
    let mut request = Vec::with_capacity(samples.len() * 32);
    for (labels, samples) in &series {
        prompb::encode_series(&mut request, labels, samples);
    }
    (request, highest)
}

/// The series' labels as sent: relabelled by `rules`, with `external` labels it lacks.
fn sent_labels(
    series: &RefSeries,
    rules: &[sightline_core::config::relabel::RelabelConfig],
    external: &Labels,
) -> SentSeries {
    let labels = Labels::from_pairs(series.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut labels = relabel(&labels, rules)?;
    for label in external {
        if labels.get(&label.name).is_none() {
            labels.set(&label.name, &label.value);
        }
    }
    Some(Arc::new(prompb::EncodedLabels::new(
        labels.iter().map(|label| (&*label.name, &*label.value)),
    )))
}

fn shard_of(series_ref: u64, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    series_ref.hash(&mut hasher);
    (hasher.finish() % shards.max(1) as u64) as usize
}

/// Reads the series of the checkpoint and of the WAL up to `saved` and returns the tail
/// positioned there (without `saved`, at the WAL's start).
fn catch_up(
    wal_dir: &Path,
    saved: Option<WalPosition>,
    rules: &[sightline_core::config::relabel::RelabelConfig],
    external: &Labels,
) -> Result<(WalTail, HashMap<u64, SentSeries>), String> {
    let mut series = HashMap::new();
    for s in checkpoint_series(wal_dir).map_err(|error| error.to_string())? {
        let labels = sent_labels(&s, rules, external);
        series.insert(s.series_ref, labels);
    }
    let mut tail = WalTail::open(wal_dir, None).map_err(|error| error.to_string())?;
    let Some(saved) = saved else {
        return Ok((tail, series));
    };
    loop {
        if tail.position() >= saved {
            break;
        }
        let records = tail.read(1).map_err(|error| error.to_string())?;
        let Some(record) = records.into_iter().next() else {
            break;
        };
        if let Record::Series(announced) = record {
            for s in announced {
                let labels = sent_labels(&s, rules, external);
                series.insert(s.series_ref, labels);
            }
        }
    }
    Ok((tail, series))
}

/// The position saved in `file`, if it holds one.
fn read_position(file: &Path) -> Option<WalPosition> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Some(WalPosition { segment, offset }),
        _ => None,
    }
}

/// The wall clock in Unix milliseconds.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
