//! The router and the listeners: one router, served on every listen address.
//!
//! Layers, outermost first: request tracing, response compression, HTTP metrics, then (for
//! everything but the health endpoints) authentication and the body limit. Routes live under
//! the external URL's path when one is configured, as Prometheus's route prefix does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use prometheus::Registry;
use sightline_core::config::ConfigStore;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::api::alertmanager as alertmanager_api;
use crate::api::loki as loki_api;
use crate::api::prometheus as prometheus_api;
use crate::api::rules as rules_api;
use crate::api::{format_query, grafana, metadata, status};
use crate::api::{loki_query, loki_tail};
use crate::auth::{VerifiedCredentials, authorize};
use crate::backends::Backends;
use crate::body_limit::limit_request_body;
use crate::dashboards::Dashboard;
use crate::federate::federate;
use crate::http_metrics::{self, HttpMetrics};
use crate::lifecycle::{self, Readiness};
use crate::memory_ceiling::{MemoryCeiling, admit_push};
use crate::pages::{self, IngestMeter};
use crate::remote_write::{self, RemoteWriteMetrics};

/// What `/api/v1/status/buildinfo` reports.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// The release version.
    pub version: &'static str,
    /// The git revision it was built from.
    pub revision: &'static str,
    /// The compiler that built it (Prometheus reports its Go version here).
    pub rustc_version: &'static str,
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) config: Arc<ConfigStore>,
    pub(crate) backends: Backends,
    pub(crate) build: BuildInfo,
    pub(crate) registry: Registry,
    pub(crate) readiness: Readiness,
    pub(crate) http_metrics: HttpMetrics,
    pub(crate) verified: Arc<VerifiedCredentials>,
    /// Counters of the remote-write receiver.
    pub(crate) remote_write_metrics: RemoteWriteMetrics,
    /// The command-line flags, for `/api/v1/status/flags`.
    pub(crate) flags: Arc<BTreeMap<String, String>>,
    /// The addresses listened on, for the exposure warning on Home.
    pub(crate) listen: Arc<[SocketAddr]>,
    /// When the server was built, for `/api/v1/status/runtimeinfo`.
    pub(crate) started: SystemTime,
    /// Ingest rates for Home.
    pub(crate) ingest: Arc<IngestMeter>,
    /// The pushes admitted under `limits.memory_ceiling`.
    pub(crate) memory_ceiling: MemoryCeiling,
}

impl AppState {
    /// Every dashboard of the library: config files, ConfigMaps and imports.
    pub(crate) fn dashboards(&self) -> Vec<Dashboard> {
        let config = self.config.current();
        let paths = config.dashboard_paths(self.config.source().base_dir());
        let config_maps = self
            .backends
            .metrics()
            .map(|metrics| metrics.scrapes.dashboards())
            .unwrap_or_default();
        self.backends
            .dashboards()
            .list(config.dashboards.builtin, &paths, &config_maps)
    }
}

/// Why serving HTTP failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from `--listen` or `web.listen`.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("HTTP server on {address} failed: {source}")]
    Serve {
        /// The listener's address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server's own metrics could not be registered.
    #[error("cannot register HTTP metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The HTTP surface, ready to be served on bound listeners.
pub struct HttpServer {
    router: Router,
}

impl HttpServer {
    /// Builds the router over the running configuration, registering the HTTP metrics in
    /// `registry` and exposing all of `registry` on `/metrics`; `flags` are the effective
    /// command-line flags by name, for `/api/v1/status/flags`.
    pub fn new(
        config: Arc<ConfigStore>,
        registry: Registry,
        readiness: Readiness,
        backends: Backends,
        build: BuildInfo,
        flags: BTreeMap<String, String>,
        listen: &[SocketAddr],
    ) -> Result<HttpServer, ServeError> {
        let route_prefix = config.current().web.route_prefix().to_owned();
        let state = AppState {
            http_metrics: HttpMetrics::register(&registry)?,
            remote_write_metrics: RemoteWriteMetrics::register(&registry)?,
            memory_ceiling: MemoryCeiling::register(&registry)?,
            config,
            backends,
            build,
            registry,
            readiness,
            verified: Arc::default(),
            flags: Arc::new(flags),
            listen: listen.into(),
            started: SystemTime::now(),
            ingest: Arc::new(IngestMeter::new()),
        };
        let admit = from_fn_with_state(state.clone(), admit_push);
        let protected = Router::new()
            .route("/metrics", get(http_metrics::expose))
            .route("/metrics/node", get(http_metrics::expose_host))
            .route("/metrics/cluster", get(http_metrics::expose_cluster))
            .route("/-/reload", post(lifecycle::reload).put(lifecycle::reload))
            .route(
                "/api/v1/query",
                get(prometheus_api::query).post(prometheus_api::query),
            )
            .route(
                "/api/v1/query_range",
                get(prometheus_api::query_range).post(prometheus_api::query_range),
            )
            .route(
                "/api/v1/series",
                get(prometheus_api::series).post(prometheus_api::series),
            )
            .route(
                "/api/v1/labels",
                get(prometheus_api::label_names).post(prometheus_api::label_names),
            )
            .route(
                "/api/v1/label/{name}/values",
                get(prometheus_api::label_values),
            )
            .route("/api/v1/targets", get(prometheus_api::targets))
            .route("/api/v1/status/buildinfo", get(prometheus_api::build_info))
            .route("/api/v1/status/tsdb", get(prometheus_api::tsdb_status))
            .route("/api/v1/metadata", get(metadata::metric_metadata))
            .route("/api/v1/targets/metadata", get(metadata::target_metadata))
            .route("/api/v1/status/config", get(status::config))
            .route("/api/v1/status/flags", get(status::flags))
            .route("/api/v1/status/runtimeinfo", get(status::runtime_info))
            .route(
                "/api/v1/format_query",
                get(format_query::format_query).post(format_query::format_query),
            )
            .route("/federate", get(federate))
            .route(
                "/api/v1/write",
                post(remote_write::write).layer(admit.clone()),
            )
            .route("/api/v1/rules", get(rules_api::rules))
            .route("/api/v1/alerts", get(rules_api::alerts))
            .route(
                "/api/v2/alerts",
                get(alertmanager_api::get_alerts).post(alertmanager_api::post_alerts),
            )
            .route("/api/v2/alerts/groups", get(alertmanager_api::get_groups))
            .route(
                "/api/v2/silences",
                get(alertmanager_api::get_silences).post(alertmanager_api::post_silence),
            )
            .route(
                "/api/v2/silence/{id}",
                get(alertmanager_api::get_silence).delete(alertmanager_api::delete_silence),
            )
            .route("/api/v2/receivers", get(alertmanager_api::receivers))
            .route("/api/v2/status", get(alertmanager_api::status))
            .route(
                "/loki/api/v1/push",
                post(loki_api::push).layer(admit.clone()),
            )
            .route("/api/prom/push", post(loki_api::push).layer(admit))
            .route("/flush", post(loki_api::flush))
            .route(
                "/loki/api/v1/query",
                get(loki_query::query).post(loki_query::query),
            )
            .route(
                "/loki/api/v1/query_range",
                get(loki_query::query_range).post(loki_query::query_range),
            )
            .route(
                "/loki/api/v1/labels",
                get(loki_query::labels).post(loki_query::labels),
            )
            .route(
                "/loki/api/v1/label/{name}/values",
                get(loki_query::label_values).post(loki_query::label_values),
            )
            .route(
                "/loki/api/v1/series",
                get(loki_query::series).post(loki_query::series),
            )
            .route(
                "/loki/api/v1/index/stats",
                get(loki_query::index_stats).post(loki_query::index_stats),
            )
            .route(
                "/loki/api/v1/index/volume",
                get(loki_query::index_volume).post(loki_query::index_volume),
            )
            .route(
                "/loki/api/v1/format_query",
                get(loki_query::format_query).post(loki_query::format_query),
            )
            .route("/loki/api/v1/tail", get(loki_tail::tail))
            .route("/api/search", get(grafana::search))
            .route("/api/dashboards/db", post(grafana::import))
            .route(
                "/api/dashboards/uid/{uid}",
                get(grafana::get_dashboard).delete(grafana::delete_dashboard),
            )
            .merge(pages::routes())
            .layer(from_fn_with_state(state.clone(), limit_request_body))
            .layer(from_fn_with_state(state.clone(), authorize));
        let routes = Router::new()
            .route("/-/healthy", get(lifecycle::healthy))
            .route("/-/ready", get(lifecycle::ready))
            .route("/ready", get(loki_query::ready))
            .merge(protected)
            .layer(DefaultBodyLimit::disable())
            .layer(from_fn_with_state(state.clone(), http_metrics::record))
            .layer(CompressionLayer::new())
            .layer(TraceLayer::new_for_http())
            .with_state(state);
        let router = if route_prefix.is_empty() {
            routes
        } else {
            Router::new().nest(&route_prefix, routes)
        };
        Ok(HttpServer { router })
    }

    /// Binds every address, failing on the first that cannot be bound.
    pub async fn bind(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, ServeError> {
        let mut listeners = Vec::with_capacity(addresses.len());
        for &address in addresses {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::Bind { address, source })?;
            listeners.push(listener);
        }
        Ok(listeners)
    }

    /// Serves on every listener until `shutdown` is cancelled, then lets in-flight requests
    /// finish. The caller bounds how long it waits for that.
    pub async fn serve(
        self,
        listeners: Vec<TcpListener>,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let mut servers = JoinSet::new();
        for listener in listeners {
            let address = listener.local_addr().map_err(|source| ServeError::Serve {
                address: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            tracing::info!(%address, "listening");
            // The peer address is what `web.auth.proxy.trusted_proxies` is checked against.
            let server = axum::serve(
                listener,
                self.router
                    .clone()
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
            servers.spawn(async move {
                server
                    .await
                    .map_err(|source| ServeError::Serve { address, source })
            });
        }
        while let Some(finished) = servers.join_next().await {
            if let Ok(Err(error)) = finished {
                return Err(error);
            }
        }
        Ok(())
    }
}
