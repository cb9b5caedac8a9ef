//! The running configuration and its reloading (SIGHUP, `POST /-/reload`).
//!
//! A reload reads the source again; a good config replaces the current one for every
//! subscriber at once, a bad one leaves the current one running, is logged with its position,
//! and sets `sightline_config_last_reload_successful` to 0 — as Prometheus does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{Gauge, IntGauge};
use tokio::sync::watch;

use super::Config;
use crate::yaml::SourceError;

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The default compiled into the binary.
    Embedded,
    /// A file given with `--config`.
    File(PathBuf),
}

impl ConfigSource {
    /// Reads and checks the configuration.
    pub fn load(&self) -> Result<Config, SourceError> {
        match self {
            ConfigSource::Embedded => Config::embedded_default(),
            ConfigSource::File(path) => Config::load(path),
        }
    }

    /// The directory relative paths in the config (rule files, file_sd) are resolved against.
    pub fn base_dir(&self) -> &Path {
        match self {
            ConfigSource::File(path) => path.parent().unwrap_or(Path::new(".")),
            ConfigSource::Embedded => Path::new("."),
        }
    }
}

/// Holds the current configuration and hands it to subscribers on reload.
pub struct ConfigStore {
    source: ConfigSource,
    current: watch::Sender<Arc<Config>>,
    /// Serializes reloads so that two of them cannot interleave their read and swap.
    reloading: Mutex<()>,
    last_reload_successful: IntGauge,
    last_reload_success_timestamp: Gauge,
}

impl ConfigStore {
    /// Loads the configuration from `source`; fails if the first load fails.
    pub fn open(source: ConfigSource) -> Result<ConfigStore, SourceError> {
        let config = source.load()?;
        let store = ConfigStore {
            source,
            current: watch::Sender::new(Arc::new(config)),
            reloading: Mutex::new(()),
            last_reload_successful: constant_metric(IntGauge::new(
                "sightline_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            )),
            last_reload_success_timestamp: constant_metric(Gauge::new(
                "sightline_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            )),
        };
        store.record_success();
        Ok(store)
    }

    /// Where the configuration comes from.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every configuration that replaces the current one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.current.subscribe()
    }

    /// Reads the source again. On success the new config replaces the old for every
    /// subscriber; on failure the old one stays and the error is returned and logged.
    pub fn reload(&self) -> Result<(), SourceError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.source.load() {
            Ok(config) => {
                self.current.send_replace(Arc::new(config));
                self.record_success();
                tracing::info!(source = ?self.source, "configuration reloaded");
                Ok(())
            }
            Err(error) => {
                self.last_reload_successful.set(0);
                tracing::error!("configuration reload failed, keeping the running one: {error}");
                Err(error)
            }
        }
    }

    /// The reload status metrics, for the process's registry.
    pub fn metrics(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.last_reload_successful.clone()),
            Box::new(self.last_reload_success_timestamp.clone()),
        ]
    }

    /// Whether the last reload attempt succeeded (`reloadConfigSuccess` of
    /// `/api/v1/status/runtimeinfo`).
    pub fn last_reload_successful(&self) -> bool {
        self.last_reload_successful.get() == 1
    }

    /// Unix seconds of the last successful load (`lastConfigTime`).
    pub fn last_reload_success_seconds(&self) -> f64 {
        self.last_reload_success_timestamp.get()
    }

    fn record_success(&self) {
        self.last_reload_successful.set(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |elapsed| elapsed.as_secs_f64());
        self.last_reload_success_timestamp.set(now);
    }
}

/// Unwraps a metric built from constant, valid names and help texts.
#[allow(clippy::expect_used)] // Fails only for an invalid constant name: a bug caught by any test.
fn constant_metric<T>(metric: prometheus::Result<T>) -> T {
    metric.expect("constant metric definition is valid")
}
