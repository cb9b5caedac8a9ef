//! The stores the APIs read. The HTTP server starts before storage has recovered, so the
//! backends are handed over once recovery is done; until then data endpoints answer 503.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sightline_alerting::notifier::service::Notifier;
use sightline_alerting::rules::manager::RuleManager;
use sightline_logstore::push::{RateLimiter, RateLimits};
use sightline_logstore::store::LogStore;
use sightline_scraper::log_forward::LogForwarder;
use sightline_scraper::manager::ScrapeManager;
use sightline_scraper::remote_write::RemoteWriter;
use sightline_tsdb::block::BlockStore;
use sightline_tsdb::head::Head;
use sightline_tsdb::promql::Engine;
use sightline_tsdb::storage::Querier;

use crate::dashboards::DashboardLibrary;

/// Metric storage as the Prometheus API sees it.
pub struct MetricBackend {
    /// Everything stored, for queries.
    pub querier: Arc<dyn Querier>,
    /// The in-memory head, for `/api/v1/status/tsdb`.
    pub head: Arc<Head>,
    /// The persisted blocks, for storage use on Home and Status.
    pub blocks: Arc<BlockStore>,
    /// The PromQL engine with the configured limits.
    pub engine: Engine,
    /// Scrape targets, for `/api/v1/targets`.
    pub scrapes: Arc<ScrapeManager>,
    /// The `remote_write` queues, for Status.
    pub remote_writes: Arc<RemoteWriter>,
}

/// Log storage as the Loki API sees it.
pub struct LogBackend {
    /// The store pushes go to.
    pub store: Arc<LogStore>,
    /// The ingestion rate limiter; rebuilt when a reload changes the limits.
    pub(crate) rate_limiter: Mutex<RateLimiter>,
    /// The `logs.forward` forwarders, for Status.
    pub(crate) forwards: Arc<LogForwarder>,
}

impl LogBackend {
    /// A backend over `store` with the rate limits in force at start-up, whose lines
    /// `forwards` sends on.
    pub fn new(
        store: Arc<LogStore>,
        limits: &sightline_core::config::LogLimitsConfig,
        forwards: Arc<LogForwarder>,
    ) -> LogBackend {
        let limits: RateLimits = crate::api::loki::rate_limits(limits);
        LogBackend {
            store,
            rate_limiter: Mutex::new(RateLimiter::new(limits, Instant::now())),
            forwards,
        }
    }
}

/// Where handlers find the backends once they exist; cheap to clone.
#[derive(Clone, Default)]
pub struct Backends {
    metrics: Arc<OnceLock<MetricBackend>>,
    rules: Arc<OnceLock<Arc<RuleManager>>>,
    logs: Arc<OnceLock<LogBackend>>,
    notifier: Arc<OnceLock<Arc<Notifier>>>,
    dashboards: Arc<OnceLock<DashboardLibrary>>,
}

impl Backends {
    /// Hands over metric storage. A second call is ignored: the backends live as long as the
    /// process.
    pub fn set_metrics(&self, backend: MetricBackend) {
        // `set` fails only if a backend is already there, which then stays.
        let _ = self.metrics.set(backend);
    }

    /// Hands over the rule manager, for `/api/v1/rules` and `/api/v1/alerts`. A second call
    /// is ignored.
    pub fn set_rules(&self, rules: Arc<RuleManager>) {
        // `set` fails only if a manager is already there, which then stays.
        let _ = self.rules.set(rules);
    }

    /// The rule manager, once storage has recovered and rules run.
    pub(crate) fn rules(&self) -> Option<&Arc<RuleManager>> {
        self.rules.get()
    }

    /// Hands over the notifier, for Alertmanager's API v2. A second call is ignored.
    pub fn set_notifier(&self, notifier: Arc<Notifier>) {
        let _ = self.notifier.set(notifier);
    }

    /// The notifier, once it runs.
    pub(crate) fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.get()
    }

    /// Hands over the dashboard library; a second call is ignored.
    pub fn set_dashboards(&self, library: DashboardLibrary) {
        let _ = self.dashboards.set(library);
    }

    /// The dashboard library; one that keeps no imports until [`Backends::set_dashboards`].
    pub(crate) fn dashboards(&self) -> DashboardLibrary {
        self.dashboards.get().cloned().unwrap_or_default()
    }

    /// Hands over log storage; a second call is ignored.
    pub fn set_logs(&self, backend: LogBackend) {
        let _ = self.logs.set(backend);
    }

    /// Log storage, once recovered.
    pub(crate) fn logs(&self) -> Option<&LogBackend> {
        self.logs.get()
    }

    /// Metric storage, once recovered.
    pub(crate) fn metrics(&self) -> Option<&MetricBackend> {
        self.metrics.get()
    }
}
