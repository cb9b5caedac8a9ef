//! The stores the APIs read. The HTTP server starts before storage has recovered, so the
//! backends are handed over once recovery is done; until then data endpoints answer 503.

use std::sync::{Arc, OnceLock};

use sightline_alerting::rules::manager::RuleManager;
use sightline_scraper::manager::ScrapeManager;
use sightline_tsdb::head::Head;
use sightline_tsdb::promql::Engine;
use sightline_tsdb::storage::Querier;

/// Metric storage as the Prometheus API sees it.
pub struct MetricBackend {
    /// Everything stored, for queries.
    pub querier: Arc<dyn Querier>,
    /// The in-memory head, for `/api/v1/status/tsdb`.
    pub head: Arc<Head>,
    /// The PromQL engine with the configured limits.
    pub engine: Engine,
    /// Scrape targets, for `/api/v1/targets`.
    pub scrapes: Arc<ScrapeManager>,
}

/// Where handlers find the backends once they exist; cheap to clone.
#[derive(Clone, Default)]
pub struct Backends {
    metrics: Arc<OnceLock<MetricBackend>>,
    rules: Arc<OnceLock<Arc<RuleManager>>>,
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

    /// Metric storage, once recovered.
    pub(crate) fn metrics(&self) -> Option<&MetricBackend> {
        self.metrics.get()
    }
}
