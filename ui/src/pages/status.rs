//! Status: build information, storage (blocks, retention, cardinality: the metrics and
//! labels with the most series), log streams and ingest counters, the remote-write queues
//! and log forwarders, and the running config with its secrets hidden.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use sightline_scraper::log_forward::ForwardStatus;
use sightline_scraper::remote_write::QueueStatus;
use sightline_tsdb::head::StatEntry;

use super::{Frame, format};
use crate::api::status::config_yaml;
use crate::server::AppState;

/// Rows of each cardinality table.
const TOP: usize = 10;

/// A name and a value, for the key/value tables.
pub(crate) struct Fact {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

/// A cardinality table.
pub(crate) struct TopTable {
    pub(crate) title: &'static str,
    pub(crate) column: &'static str,
    pub(crate) rows: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "status.html")]
pub(crate) struct StatusPage {
    frame: Frame,
    build: Vec<Fact>,
    metrics: Vec<Fact>,
    logs: Vec<Fact>,
    /// Each queue, and its newest sent timestamp as text.
    remote_writes: Vec<(QueueStatus, String)>,
    log_forwards: Vec<ForwardStatus>,
    cardinality: Vec<TopTable>,
    config: String,
}

/// `GET /status`.
pub(crate) async fn page(State(state): State<AppState>) -> StatusPage {
    let config = state.config.current();
    let mut page = StatusPage {
        frame: Frame::new(&state, "status", "Status"),
        build: vec![
            Fact {
                name: "Version",
                value: state.build.version.to_owned(),
            },
            Fact {
                name: "Revision",
                value: state.build.revision.to_owned(),
            },
            Fact {
                name: "Compiler",
                value: state.build.rustc_version.to_owned(),
            },
            Fact {
                name: "Started",
                value: format::time(
                    state
                        .started
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0)),
                ),
            },
        ],
        metrics: Vec::new(),
        logs: Vec::new(),
        remote_writes: Vec::new(),
        log_forwards: Vec::new(),
        cardinality: Vec::new(),
        config: config_yaml(&config).unwrap_or_else(|error| error.message().to_owned()),
    };
    if let Some(metrics) = state.backends.metrics() {
        page.remote_writes = metrics
            .remote_writes
            .statuses()
            .into_iter()
            .map(|queue| {
                let newest = if queue.highest_sent > 0.0 {
                    format::time((queue.highest_sent * 1000.0) as i64)
                } else {
                    String::new()
                };
                (queue, newest)
            })
            .collect();
        let stats = metrics.head.stats(TOP);
        let blocks = metrics.blocks.blocks();
        page.metrics = vec![
            Fact {
                name: "Series in memory",
                value: format::count(stats.num_series as f64),
            },
            Fact {
                name: "Chunks in memory",
                value: format::count(stats.chunk_count as f64),
            },
            Fact {
                name: "Blocks",
                value: blocks.len().to_string(),
            },
            Fact {
                name: "Samples in blocks",
                value: format::count(blocks.iter().map(|b| b.num_samples).sum::<u64>() as f64),
            },
            Fact {
                name: "Blocks on disk",
                value: metrics
                    .blocks
                    .disk_usage()
                    .map_or_else(|error| error.to_string(), format::bytes),
            },
            Fact {
                name: "Retention",
                value: config.storage.metrics.retention.to_string(),
            },
            Fact {
                name: "Oldest sample",
                value: blocks
                    .first()
                    .map(|b| b.mint)
                    .or(stats.min_time)
                    .map(format::time)
                    .unwrap_or_default(),
            },
        ];
        let table = |title, column, rows: &[StatEntry]| TopTable {
            title,
            column,
            rows: rows
                .iter()
                .map(|e| (e.name.clone(), format::count(e.value as f64)))
                .collect(),
        };
        page.cardinality = vec![
            table(
                "Metrics with the most series",
                "Series",
                &stats.series_count_by_metric_name,
            ),
            table(
                "Labels with the most values",
                "Values",
                &stats.label_value_count_by_label_name,
            ),
            table(
                "Label pairs with the most series",
                "Series",
                &stats.series_count_by_label_value_pair,
            ),
        ];
    }
    if let Some(logs) = state.backends.logs() {
        page.log_forwards = logs.forwards.statuses();
        let stats = logs.store.stats();
        page.logs = vec![
            Fact {
                name: "Streams",
                value: format::count(stats.streams as f64),
            },
            Fact {
                name: "Lines since start-up",
                value: format::count(stats.entries as f64),
            },
            Fact {
                name: "Bytes since start-up",
                value: format::bytes(stats.bytes),
            },
            Fact {
                name: "Chunks written",
                value: format::count(stats.chunks as f64),
            },
            Fact {
                name: "On disk",
                value: logs
                    .store
                    .disk_usage()
                    .map_or_else(|error| error.to_string(), format::bytes),
            },
            Fact {
                name: "Line index",
                value: format::bytes(logs.store.line_index_usage()),
            },
            Fact {
                name: "Retention",
                value: config.storage.logs.retention.to_string(),
            },
            Fact {
                name: "WAL records replayed",
                value: format::count(stats.replay.records as f64),
            },
        ];
    }
    page
}
