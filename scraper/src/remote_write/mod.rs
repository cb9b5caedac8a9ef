//! Remote write out: every sample the metric store keeps is also sent, by remote write 1.0
//! (snappy-compressed `prometheus.WriteRequest`), to each receiver of the config's
//! `remote_write` list — Grafana Mimir, Thanos Receive, VictoriaMetrics, a Prometheus with
//! `--web.enable-remote-write-receiver` — so that a homelab that outgrows one node hands its
//! data to a distributed engine instead of growing one.
//!
//! [`RemoteWriter`] follows the config: a queue ([`queue`]) per entry, started, stopped and
//! replaced as reloads change the list; each reads the metric WAL, so an outage of the
//! receiver loses nothing the WAL still holds. Counters use Prometheus's
//! `prometheus_remote_storage_*` names with `remote_name` and `url` labels ([`metrics`]);
//! [`RemoteWriter::statuses`] is the Status page's view.

pub mod metrics;
pub mod prompb;
mod queue;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prometheus::Registry;
use sightline_core::config::Config;
use sightline_core::config::remote_write::RemoteWriteConfig;
use sightline_core::labels::Labels;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::manager::ScrapeManager;
use crate::outbound::queues::{QueueSet, position_file};
use metrics::RemoteWriteMetrics;

/// Where a queue gets the metadata it sends: every scraped metric family's.
type MetadataSource = Arc<dyn Fn() -> Vec<prompb::MetricMetadata> + Send + Sync>;

/// How one queue is doing, for the Status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStatus {
    /// The queue's name (`name`, or derived from the URL).
    pub name: String,
    /// The receiver.
    pub url: String,
    /// Parallel senders now.
    pub shards: usize,
    /// Samples sent and taken.
    pub sent: u64,
    /// Samples refused for good.
    pub failed: u64,
    /// Samples sent again after a failed attempt.
    pub retried: u64,
    /// Samples read from the WAL and waiting to be sent.
    pub pending: u64,
    /// Newest timestamp sent (Unix seconds); 0 before the first.
    pub highest_sent: f64,
    /// The last failed attempt's error; empty once a request succeeds again.
    pub last_error: String,
}

/// What a queue is started from: its entry and the config's external labels.
#[derive(Clone, PartialEq)]
struct QueueSpec {
    entry: RemoteWriteConfig,
    external_labels: BTreeMap<String, String>,
}

/// The queues of the config's `remote_write` list.
pub struct RemoteWriter {
    wal_dir: PathBuf,
    state_dir: PathBuf,
    base_dir: PathBuf,
    metrics: RemoteWriteMetrics,
    metadata: MetadataSource,
    queues: QueueSet<QueueSpec, QueueStatus>,
}

impl RemoteWriter {
    /// Queues reading the WAL in `wal_dir`, keeping their positions in `state_dir`, reading
    /// credential files relative to `base_dir`, sending the metadata `scrapes` has seen.
    pub fn new(
        wal_dir: PathBuf,
        state_dir: PathBuf,
        base_dir: PathBuf,
        scrapes: Arc<ScrapeManager>,
    ) -> prometheus::Result<RemoteWriter> {
        let metadata: MetadataSource = Arc::new(move || {
            let mut families = BTreeMap::new();
            for target in scrapes.active_targets() {
                for (family, metadata) in target.metadata.iter() {
                    families
                        .entry(family.clone())
                        .or_insert_with(|| prompb::MetricMetadata::of(family, metadata));
                }
            }
            families.into_values().collect()
        });
        Ok(RemoteWriter {
            wal_dir,
            state_dir,
            base_dir,
            metrics: RemoteWriteMetrics::new()?,
            metadata,
            queues: QueueSet::new("remote write"),
        })
    }

    /// Registers the queues' metrics with `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> prometheus::Result<()> {
        self.metrics.register(registry)
    }

    /// Starts the queues of `config` now — before scraping starts, so that a new queue sends
    /// every sample scraped under the config that added it — then follows its changes until
    /// `stop`, when every queue stops.
    pub fn spawn(
        self: Arc<Self>,
        mut config: watch::Receiver<Arc<Config>>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let current = config.borrow_and_update().clone();
        self.apply(&current);
        tokio::spawn(async move {
            self.queues
                .follow(config, stop, |config| self.apply(config))
                .await;
        })
    }

    /// Starts the queues `config` adds or changes, stops those it removes or changes. A new
    /// queue sends the samples from this moment on, however late its task first runs.
    fn apply(&self, config: &Config) {
        let applied_ms = queue::now_ms();
        let wanted: BTreeMap<String, QueueSpec> = config
            .remote_write
            .iter()
            .map(|entry| {
                let spec = QueueSpec {
                    entry: entry.clone(),
                    external_labels: config.global.external_labels.clone(),
                };
                (entry.queue_name(), spec)
            })
            .collect();
        if !wanted.is_empty()
            && let Err(error) = std::fs::create_dir_all(&self.state_dir)
        {
            tracing::error!(dir = %self.state_dir.display(), "remote write cannot keep its positions: {error}");
            return;
        }
        self.queues.apply(wanted, |name, spec, stop| {
            let status = Arc::new(Mutex::new(QueueStatus {
                name: name.to_owned(),
                url: spec.entry.url.to_string(),
                shards: spec.entry.queue_config.min_shards,
                ..QueueStatus::default()
            }));
            let setup = queue::QueueSetup {
                config: spec.entry.clone(),
                external_labels: Labels::from_pairs(
                    spec.external_labels
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str())),
                ),
                wal_dir: self.wal_dir.clone(),
                position_file: position_file(&self.state_dir, name),
                base_dir: self.base_dir.clone(),
                metrics: self.metrics.queue(name, spec.entry.url.as_str()),
                status: status.clone(),
                metadata: self.metadata.clone(),
                send_from_ms: applied_ms,
            };
            tokio::spawn(queue::run(setup, stop));
            status
        });
    }

    /// How each queue is doing, by name.
    pub fn statuses(&self) -> Vec<QueueStatus> {
        self.queues
            .statuses()
            .into_iter()
            .map(|(name, spec, mut status)| {
                self.metrics
                    .fill(&name, spec.entry.url.as_str(), &mut status);
                status
            })
            .collect()
    }
}
