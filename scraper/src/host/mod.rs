//! Built-in host metrics: the `node_*` series of node-exporter's default Linux collectors
//! that the kube-prometheus rules and dashboards use, with node-exporter's names, labels and
//! units, read from configurable `/proc`, `/sys` and root filesystem paths (hostPath mounts
//! in Kubernetes, as node-exporter's `--path.procfs`, `--path.sysfs`, `--path.rootfs`).
//!
//! [`HostCollector::render`] writes them in the text format; the server exposes that on
//! `/metrics/node`, which the embedded default config scrapes as job `node-exporter`, so
//! the node rules and dashboards work unchanged. Like node-exporter, a collector that fails
//! contributes nothing but `node_scrape_collector_success{collector="…"} 0`.
//!
//! Not reported (yet): node-exporter's non-default collectors.

mod cpu;
mod disk;
mod filesystem;
mod memory;
mod network;
mod system;
pub mod text;

use std::path::{Path, PathBuf};
use std::time::Instant;

use text::{Exposition, Kind};

/// Clock ticks per second of `/proc/stat` (`USER_HZ`, 100 on every Linux architecture).
const USER_HZ: f64 = 100.0;

/// Where the host's files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The proc filesystem (`/proc`).
    pub procfs: PathBuf,
    /// The sys filesystem (`/sys`).
    pub sysfs: PathBuf,
    /// The root filesystem (`/`), under which mount points are statted.
    pub rootfs: PathBuf,
    /// udev's device database (`/run/udev/data`, node-exporter's
    /// `--collector.disk.udev-data-path`), for the model, serial, … of `node_disk_info`.
    pub udev_data: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

impl Host {
    fn read_proc(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.procfs.join(path))
    }

    fn read_sys(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.sysfs.join(path))
    }

    /// `mount_point` of the host, under the root filesystem path.
    fn rootfs_path(&self, mount_point: &str) -> PathBuf {
        self.rootfs.join(
            Path::new(mount_point)
                .strip_prefix("/")
                .unwrap_or(Path::new(mount_point)),
        )
    }
}

/// One collector: writes its families or fails as a whole.
type Collect = fn(&Host, &mut Exposition) -> std::io::Result<()>;

/// The collectors, by node-exporter's names.
const COLLECTORS: [(&str, Collect); 13] = [
    ("conntrack", system::conntrack),
    ("cpu", cpu::collect),
    ("diskstats", disk::collect),
    ("filefd", system::filefd),
    ("filesystem", filesystem::collect),
    ("loadavg", system::loadavg),
    ("meminfo", memory::collect),
    ("netdev", network::collect),
    ("pressure", system::pressure),
    ("stat", system::stat),
    ("time", system::time),
    ("uname", system::uname),
    ("vmstat", system::vmstat),
];

/// The names of the collectors, as node-exporter's `--collector.<name>` flags call them.
pub fn collector_names() -> impl Iterator<Item = &'static str> {
    COLLECTORS.iter().map(|(name, _)| *name)
}

/// Reads the host's metrics on request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCollector {
    host: Host,
}

impl HostCollector {
    /// A collector reading `host`'s files.
    pub fn new(host: Host) -> HostCollector {
        HostCollector { host }
    }

    /// Every collector's families in the text format, then node-exporter's per-collector
    /// `node_scrape_collector_success` and `node_scrape_collector_duration_seconds`.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        let mut outcomes = Vec::with_capacity(COLLECTORS.len());
        let mut text = String::new();
        for (name, collect) in COLLECTORS {
            let started = Instant::now();
            let mut part = Exposition::default();
            let success = match collect(&self.host, &mut part) {
                Ok(()) => {
                    text.push_str(&part.finish());
                    true
                }
                Err(error) => {
                    tracing::debug!(collector = name, "host collector failed: {error}");
                    false
                }
            };
            outcomes.push((name, success, started.elapsed().as_secs_f64()));
        }
        out.family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
        );
        for (name, _, seconds) in &outcomes {
            out.sample(
                "node_scrape_collector_duration_seconds",
                &[("collector", name)],
                *seconds,
            );
        }
        out.family(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
        );
        for (name, success, _) in &outcomes {
            let value = f64::from(u8::from(*success));
            out.sample(
                "node_scrape_collector_success",
                &[("collector", name)],
                value,
            );
        }
        text.push_str(&out.finish());
        text
    }
}
