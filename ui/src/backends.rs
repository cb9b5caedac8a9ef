//! The stores the APIs read. The HTTP server starts before storage has recovered, so the
//! backends are handed over once recovery is done; until then data endpoints answer 503.

use std::sync::{Arc, OnceLock};

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
}

impl Backends {
    /// Hands over metric storage. A second call is ignored: the backends live as long as the
    /// process.
    pub fn set_metrics(&self, backend: MetricBackend) {
        // `set` fails only if a backend is already there, which then stays.
        let _ = self.metrics.set(backend);
    }

    /// Metric storage, once recovered.
    pub(crate) fn metrics(&self) -> Option<&MetricBackend> {
        self.metrics.get()
    }
}
