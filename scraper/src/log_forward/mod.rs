//! Log forwarding: every line the log store takes is also pushed — as Promtail and Alloy
//! push, snappy-compressed `logproto.PushRequest` — to each endpoint of the config's
//! `logs.forward` list: a Loki cluster, Grafana Cloud, or another Sightline. A homelab that
//! outgrows one node keeps its agents and hands the lines on.
//!
//! [`LogForwarder`] follows the config: a forwarder ([`forwarder`]) per entry, started,
//! stopped and replaced as reloads change the list. Each reads the log WAL through a
//! [`WalFollower`](sightline_logstore::store::WalFollower) that keeps the segments it has
//! not sent from deletion (up to `max_backlog` bytes), so an outage of the receiver, or a
//! restart of Sightline, loses nothing. Counters use Alloy's `loki_write_*` names
//! ([`metrics`]); [`LogForwarder::statuses`] is the Status page's view.

mod forwarder;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prometheus::Registry;
use sightline_core::config::Config;
use sightline_core::config::log_forward::LogForwardConfig;
use sightline_logstore::store::LogStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::outbound::queues::{QueueSet, position_file};
use metrics::ForwardMetrics;

/// How one forwarder is doing, for the Status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardStatus {
    /// The forwarder's name (`name`, or derived from the URL).
    pub name: String,
    /// The push endpoint.
    pub url: String,
    /// Entries the endpoint took.
    pub sent_entries: u64,
    /// Entries the endpoint refused for good.
    pub dropped_entries: u64,
    /// Failed requests that were sent again.
    pub retries: u64,
    /// Pushes stored and not yet sent.
    pub pending_records: u64,
    /// The last failed request's error; empty once a request succeeds again.
    pub last_error: String,
}

/// The forwarders of the config's `logs.forward` list.
pub struct LogForwarder {
    store: Arc<LogStore>,
    state_dir: PathBuf,
    base_dir: PathBuf,
    metrics: ForwardMetrics,
    forwarders: QueueSet<LogForwardConfig, ForwardStatus>,
}

impl LogForwarder {
    /// Forwarders reading `store`'s WAL, keeping their positions in `state_dir`, reading
    /// credential files relative to `base_dir`.
    pub fn new(
        store: Arc<LogStore>,
        state_dir: PathBuf,
        base_dir: PathBuf,
    ) -> prometheus::Result<LogForwarder> {
        Ok(LogForwarder {
            store,
            state_dir,
            base_dir,
            metrics: ForwardMetrics::new()?,
            forwarders: QueueSet::new("log forwarding"),
        })
    }

    /// Registers the forwarders' metrics with `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> prometheus::Result<()> {
        self.metrics.register(registry)
    }

    /// Starts the forwarders of `config` now — before the log store's first maintenance,
    /// so that the WAL they still have to send is not deleted first — then follows its
    /// changes until `stop`, when every forwarder stops.
    pub fn spawn(
        self: Arc<Self>,
        mut config: watch::Receiver<Arc<Config>>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let current = config.borrow_and_update().clone();
        self.apply(&current);
        tokio::spawn(async move {
            self.forwarders
                .follow(config, stop, |config| self.apply(config))
                .await;
        })
    }

    /// Starts the forwarders `config` adds or changes, stops those it removes or changes.
    fn apply(&self, config: &Config) {
        let wanted: BTreeMap<String, LogForwardConfig> = config
            .logs
            .forward
            .iter()
            .map(|entry| (entry.queue_name(), entry.clone()))
            .collect();
        if !wanted.is_empty()
            && let Err(error) = std::fs::create_dir_all(&self.state_dir)
        {
            tracing::error!(dir = %self.state_dir.display(), "log forwarding cannot keep its positions: {error}");
            return;
        }
        self.forwarders.apply(wanted, |name, entry, stop| {
            let status = Arc::new(Mutex::new(ForwardStatus {
                name: name.to_owned(),
                url: entry.url.to_string(),
                ..ForwardStatus::default()
            }));
            let position_file = position_file(&self.state_dir, name);
            let saved = forwarder::read_position(&position_file);
            let setup = forwarder::ForwarderSetup {
                follower: self.store.follow_wal(saved, entry.max_backlog.bytes()),
                store: self.store.clone(),
                config: entry.clone(),
                position_file,
                base_dir: self.base_dir.clone(),
                metrics: self.metrics.forwarder(name, &entry.url),
                status: status.clone(),
            };
            tokio::spawn(forwarder::run(setup, stop));
            status
        });
    }

    /// How each forwarder is doing, by name.
    pub fn statuses(&self) -> Vec<ForwardStatus> {
        self.forwarders
            .statuses()
            .into_iter()
            .map(|(_, _, status)| status)
            .collect()
    }
}
