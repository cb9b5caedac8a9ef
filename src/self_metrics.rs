//! The process's own metrics beyond those each crate registers: build information, uptime,
//! and the standard `process_*` metrics (RSS, open fds, CPU, start time) from /proc.

use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGauge, Opts, Registry};

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
