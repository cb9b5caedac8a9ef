//! The process's own metrics beyond those each crate registers: build information, uptime,
//! the standard `process_*` metrics (RSS, open fds, CPU, start time) from /proc, and the
//! storage gauges the built-in rules and the Sightline dashboard read ([`StorageMetrics`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntGauge, Opts, Registry};
use sightline_core::config::ConfigStore;
use sightline_logstore::store::LogStore;
use sightline_tsdb::db::Db;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REVISION: &str = env!("SIGHTLINE_REVISION");
const RUSTC_VERSION: &str = env!("SIGHTLINE_RUSTC_VERSION");

/// What `sightline version` prints, in the shape of Prometheus's `--version` output.
pub fn version_text() -> String {
    format!(
        "sightline, version {VERSION} (revision: {REVISION})\n  rustc version: {RUSTC_VERSION}\n  platform: {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// What the build-info API reports.
pub fn build_info() -> sightline_ui::BuildInfo {
    sightline_ui::BuildInfo {
        version: VERSION,
        revision: REVISION,
        rustc_version: RUSTC_VERSION,
    }
}

/// Registers build info, uptime and process metrics in `registry`.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    let build_info = IntGauge::with_opts(
        Opts::new(
            "sightline_build_info",
            "A metric with a constant '1' value labeled by version, revision and rustc version.",
        )
        .const_label("version", VERSION)
        .const_label("revision", REVISION)
        .const_label("rustc_version", RUSTC_VERSION),
    )?;
    build_info.set(1);
    registry.register(Box::new(build_info))?;
    registry.register(Box::new(Uptime::new()?))?;
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(())
}

/// `sightline_uptime_seconds`, computed when scraped.
struct Uptime {
    started: Instant,
    gauge: Gauge,
}

impl Uptime {
    fn new() -> prometheus::Result<Uptime> {
        Ok(Uptime {
            started: Instant::now(),
            gauge: Gauge::new(
                "sightline_uptime_seconds",
                "Seconds since this Sightline process started.",
            )?,
        })
    }
}

impl Collector for Uptime {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.set(self.started.elapsed().as_secs_f64());
        self.gauge.collect()
    }
}

/// Gauges of the data directory, computed when scraped: the free and total bytes of its
/// filesystem (`sightline_storage_filesystem_{avail,size}_bytes`), and per store
/// (`store="metrics"|"logs"`) the bytes on disk, the oldest data kept and the retention
/// settings (`sightline_storage_{disk_usage_bytes,oldest_timestamp_seconds,
/// retention_seconds,retention_size_bytes}`), and the log store's intake since start-up
/// (`sightline_logs_ingested_{lines,bytes}_total`). The rules for a disk filling up and for
/// retention falling behind compare these; the Sightline dashboard draws them.
pub struct StorageMetrics {
    data_dir: PathBuf,
    db: Arc<Db>,
    logs: Arc<LogStore>,
    config: Arc<ConfigStore>,
    avail: Gauge,
    size: Gauge,
    usage: GaugeVec,
    oldest: GaugeVec,
    retention: GaugeVec,
    retention_size: GaugeVec,
    log_lines: IntCounter,
    log_bytes: IntCounter,
}

impl StorageMetrics {
    /// Gauges of `data_dir` and its two stores, with retention from `config`.
    pub fn new(
        data_dir: PathBuf,
        db: Arc<Db>,
        logs: Arc<LogStore>,
        config: Arc<ConfigStore>,
    ) -> prometheus::Result<StorageMetrics> {
        let per_store = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["store"]);
        Ok(StorageMetrics {
            data_dir,
            db,
            logs,
            config,
            avail: Gauge::new(
                "sightline_storage_filesystem_avail_bytes",
                "Bytes available to Sightline on the filesystem of its data directory.",
            )?,
            size: Gauge::new(
                "sightline_storage_filesystem_size_bytes",
                "Size in bytes of the filesystem of the data directory.",
            )?,
            usage: per_store(
                "sightline_storage_disk_usage_bytes",
                "Bytes a store holds on disk: blocks or chunks, and the log WAL.",
            )?,
            oldest: per_store(
                "sightline_storage_oldest_timestamp_seconds",
                "Start of the oldest data a store keeps on disk (Unix seconds).",
            )?,
            retention: per_store(
                "sightline_storage_retention_seconds",
                "How long a store keeps data (storage.*.retention).",
            )?,
            retention_size: per_store(
                "sightline_storage_retention_size_bytes",
                "The size a store is kept under (storage.*.retention_size); 0 when unlimited.",
            )?,
            log_lines: IntCounter::new(
                "sightline_logs_ingested_lines_total",
                "Log lines stored (pushed, tailed or forwarded to this store).",
            )?,
            log_bytes: IntCounter::new(
                "sightline_logs_ingested_bytes_total",
                "Bytes of log lines and their metadata stored.",
            )?,
        })
    }

    fn update(&self) {
        match rustix::fs::statvfs(&self.data_dir) {
            Ok(stat) => {
                self.avail
                    .set((stat.f_bavail.saturating_mul(stat.f_frsize)) as f64);
                self.size
                    .set((stat.f_blocks.saturating_mul(stat.f_frsize)) as f64);
            }
            Err(error) => tracing::debug!("cannot statvfs the data directory: {error}"),
        }
        let config = self.config.current();
        for (store, settings) in [
            (
                "metrics",
                (
                    config.storage.metrics.retention,
                    config.storage.metrics.retention_size,
                ),
            ),
            (
                "logs",
                (
                    config.storage.logs.retention,
                    config.storage.logs.retention_size,
                ),
            ),
        ] {
            self.retention
                .with_label_values(&[store])
                .set(settings.0.as_std().as_secs_f64());
            self.retention_size
                .with_label_values(&[store])
                .set(settings.1.bytes() as f64);
        }
        match self.db.blocks().disk_usage() {
            Ok(bytes) => self.usage.with_label_values(&["metrics"]).set(bytes as f64),
            Err(error) => tracing::debug!("cannot read the metric store's size: {error}"),
        }
        match self.logs.disk_usage() {
            Ok(bytes) => self.usage.with_label_values(&["logs"]).set(bytes as f64),
            Err(error) => tracing::debug!("cannot read the log store's size: {error}"),
        }
        // The store counts since it opened; the counters take its totals as they are.
        let intake = self.logs.stats();
        self.log_lines.reset();
        self.log_lines.inc_by(intake.entries);
        self.log_bytes.reset();
        self.log_bytes.inc_by(intake.bytes);
        let oldest_block = self.db.blocks().blocks().first().map(|block| block.mint);
        let oldest_day = self.logs.oldest_day();
        for (store, seconds) in [
            ("metrics", oldest_block.map(|ms| ms as f64 / 1000.0)),
            ("logs", oldest_day.map(|day| f64::from(day) * 86_400.0)),
        ] {
            match seconds {
                Some(seconds) => self.oldest.with_label_values(&[store]).set(seconds),
                None => {
                    let _ = self.oldest.remove_label_values(&[store]);
                }
            }
        }
    }
}

impl Collector for StorageMetrics {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.avail.desc(),
            self.size.desc(),
            self.usage.desc(),
            self.oldest.desc(),
            self.retention.desc(),
            self.retention_size.desc(),
            self.log_lines.desc(),
            self.log_bytes.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.update();
        [
            self.avail.collect(),
            self.size.collect(),
            self.usage.collect(),
            self.oldest.collect(),
            self.retention.collect(),
            self.retention_size.collect(),
            self.log_lines.collect(),
            self.log_bytes.collect(),
        ]
        .concat()
    }
}
