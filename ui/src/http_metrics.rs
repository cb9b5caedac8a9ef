//! Sightline's own HTTP metrics and the `/metrics` endpoint that exposes the process registry.
//!
//! Requests are counted by route pattern (axum's matched path, so `/api/v1/label/{name}/values`
//! is one series, not one per label), method and status code; latency is a histogram by
//! route. Requests that match no route are counted under `handler="unmatched"`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use sightline_scraper::host::{Host, HostCollector};

use crate::server::AppState;

/// Request counters and latency histograms, registered in the process registry.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "sightline_http_requests_total",
                "HTTP requests served, by route, method and status code.",
            ),
            &["handler", "method", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "sightline_http_request_duration_seconds",
                "Time from request to response headers, by route.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["handler"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }
}

/// Middleware that records one request.
pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.http_metrics;
    metrics
        .duration
        .with_label_values(&[handler.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[
            handler.as_str(),
            method.as_str(),
            response.status().as_str(),
        ])
        .inc();
    response
}

/// `GET /metrics`: the process registry in the Prometheus text format 0.0.4.
/// A page in the Prometheus text format (0.0.4).
fn text_format(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /metrics/node`: the host's metrics from the built-in node-exporter collectors
/// (`host_metrics` in the config), read on each request; 404 when switched off.
pub(crate) async fn expose_host(State(state): State<AppState>) -> Response {
    let config = state.config.current().host_metrics.clone();
    if !config.enabled {
        return (StatusCode::NOT_FOUND, "host_metrics is switched off\n").into_response();
    }
    let collector = HostCollector::new(Host {
        procfs: config.procfs,
        sysfs: config.sysfs,
        rootfs: config.rootfs,
        udev_data: config.udev_data,
    });
    match tokio::task::spawn_blocking(move || collector.render()).await {
        Ok(text) => text_format(text),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("host metrics task failed: {error}\n"),
        )
            .into_response(),
    }
}

/// `GET /metrics/cluster`: kube-state-metrics' `kube_*` series of the cluster the
/// `kubernetes:` section follows; 404 without the section or with `cluster_metrics: false`.
pub(crate) async fn expose_cluster(State(state): State<AppState>) -> Response {
    match state
        .backends
        .metrics()
        .and_then(|metrics| metrics.scrapes.cluster_metrics())
    {
        Some(text) => text_format(text),
        None => (
            StatusCode::NOT_FOUND,
            "cluster metrics need the kubernetes: section (and cluster_metrics not false)\n",
        )
            .into_response(),
    }
}

/// `GET /metrics`: the process registry in the text format.
pub(crate) async fn expose(State(state): State<AppState>) -> Response {
    match TextEncoder::new().encode_to_string(&state.registry.gather()) {
        Ok(text) => text_format(text),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {error}\n"),
        )
            .into_response(),
    }
}
