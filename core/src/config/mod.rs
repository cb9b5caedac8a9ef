//! The configuration file: Prometheus's top-level keys (`global`, `scrape_configs`,
//! `rule_files`, `alerting`) plus Sightline's own (`storage`, `limits`, `web`, `kubernetes`).
//!
//! Every mapping denies unknown keys, and every error names `file:line:col` (see
//! [`crate::yaml`]). Values left at zero in a scrape job inherit from `global` as in
//! Prometheus; [`Config::parse`] fills them in, so the loaded value holds effective settings.

pub mod kubernetes;
pub mod log_forward;
pub mod proxy_auth;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
mod sections;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::byte_size::ByteSize;
use crate::duration::Duration;
use crate::yaml::{self, Check, SourceError, checked};
pub use scrape::ScrapeConfig;
pub use sections::{
    AlertingConfig, AlertmanagerApiVersion, AlertmanagerConfig, AuthConfig, BearerToken,
    BuiltinRuleOverride, BuiltinRulesConfig, DashboardsConfig, HostMetricsConfig, LimitsConfig,
    LineDropConfig, LogCollectionConfig, LogLimitsConfig, MetricsStorageConfig, QueryConfig,
    RetentionConfig, RetentionOverride, Role, StorageConfig, TailedFiles, WebConfig,
};
pub use store::{ConfigSource, ConfigStore};

/// The files `patterns` match, relative to `base_dir`, sorted within each pattern as
/// Prometheus does.
fn matching_paths(patterns: &[RuleFilePattern], base_dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for pattern in patterns {
        let full = base_dir.join(&pattern.0);
        let mut matched: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        matched.sort();
        paths.extend(matched);
    }
    paths
}

/// The configuration `sightline` runs with when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.yml");

/// A whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Defaults for scraping and rule evaluation.
    #[serde(deserialize_with = "checked")]
    pub global: GlobalConfig,
    /// Scrape jobs.
    #[serde(deserialize_with = "scrape::unique_jobs")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Glob patterns of rule files, relative to the config file's directory.
    pub rule_files: Vec<RuleFilePattern>,
    /// Glob patterns of LogQL rule files (Loki ruler style), relative to the config file's
    /// directory.
    pub log_rule_files: Vec<RuleFilePattern>,
    /// Sightline's built-in rules: on, and which are switched off.
    pub builtin_rules: BuiltinRulesConfig,
    /// The built-in host metrics (node-exporter's collectors) on `/metrics/node`.
    pub host_metrics: HostMetricsConfig,
    /// Grafana dashboards to serve from files.
    pub dashboards: DashboardsConfig,
    /// Pod logs and files tailed into the log store.
    #[serde(deserialize_with = "checked")]
    pub log_collection: LogCollectionConfig,
    /// Alert relabeling and external Alertmanagers.
    pub alerting: AlertingConfig,
    /// Receivers every stored sample is also sent to (remote write 1.0).
    #[serde(deserialize_with = "remote_write::unique_queues")]
    pub remote_write: Vec<remote_write::RemoteWriteConfig>,
    /// Where stored log lines are also sent (`logs.forward`).
    pub logs: log_forward::LogsConfig,
    /// Data directory, WAL sync and retention.
    pub storage: StorageConfig,
    /// Input limits.
    pub limits: LimitsConfig,
    /// PromQL query limits.
    #[serde(deserialize_with = "checked")]
    pub query: QueryConfig,
    /// Listener, external URL and authentication.
    pub web: WebConfig,
    /// Prometheus-operator objects (ServiceMonitor, PodMonitor) read from the cluster; off
    /// when absent.
    #[serde(deserialize_with = "kubernetes::optional_checked")]
    pub kubernetes: Option<kubernetes::KubernetesConfig>,
    /// The notifier's Alertmanager configuration written inline. Kept as YAML here: the
    /// `alerting` crate reads it (with positions in this file) when the notifier loads. Not
    /// serialized, since it holds receiver secrets.
    #[serde(skip_serializing)]
    pub alertmanager: Option<yaml_serde::Value>,
    /// An Alertmanager configuration file (an unchanged `alertmanager.yml`) for the notifier,
    /// relative to this file's folder; at most one of it and `alertmanager` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alertmanager_config_file: Option<PathBuf>,
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks `text`, naming `file` in errors. An empty file is the all-defaults
    /// config, as in Prometheus.
    pub fn parse(file: &Path, text: &str) -> Result<Config, SourceError> {
        let mut config: Config = if is_blank_yaml(text) {
            Config::default()
        } else {
            yaml::from_str(file, text)?
        };
        config
            .inherit_global()
            .map_err(|message| SourceError::whole_file(file, message))?;
        if config.alertmanager.is_some() && config.alertmanager_config_file.is_some() {
            return Err(SourceError::Invalid {
                location: yaml::Location {
                    file: file.to_owned(),
                    line_column: yaml::locate(text, &[yaml::Step::KeyItself("alertmanager")]),
                },
                message: "alertmanager and alertmanager_config_file are both set; keep one \
                          (the inline config or the file)"
                    .to_owned(),
            });
        }
        Ok(config)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Config, SourceError> {
        Config::parse(Path::new("<embedded default>"), DEFAULT_CONFIG)
    }

    /// The `alertmanager_config_file`, resolved against `base_dir` when relative.
    pub fn alertmanager_config_path(&self, base_dir: &Path) -> Option<PathBuf> {
        self.alertmanager_config_file
            .as_ref()
            .map(|file| base_dir.join(file))
    }

    /// The rule files the `rule_files` patterns match, relative to `base_dir`, sorted within
    /// each pattern as Prometheus does.
    pub fn rule_file_paths(&self, base_dir: &Path) -> Vec<PathBuf> {
        matching_paths(&self.rule_files, base_dir)
    }

    /// The `dashboards.paths`, resolved against `base_dir` when relative.
    pub fn dashboard_paths(&self, base_dir: &Path) -> Vec<PathBuf> {
        self.dashboards
            .paths
            .iter()
            .map(|path| base_dir.join(path))
            .collect()
    }

    /// The LogQL rule files the `log_rule_files` patterns match, as [`Config::rule_file_paths`].
    pub fn log_rule_file_paths(&self, base_dir: &Path) -> Vec<PathBuf> {
        matching_paths(&self.log_rule_files, base_dir)
    }

    /// Fills zero values in scrape jobs from `global` and checks the combined result.
    fn inherit_global(&mut self) -> Result<(), String> {
        let global = &mut self.global;
        if global.scrape_timeout.is_zero() {
            global.scrape_timeout = DEFAULT_SCRAPE_TIMEOUT.min(global.scrape_interval);
        }
        for job in &mut self.scrape_configs {
            if job.scrape_interval.is_zero() {
                job.scrape_interval = global.scrape_interval;
            }
            if job.scrape_timeout.is_zero() {
                job.scrape_timeout = global.scrape_timeout.min(job.scrape_interval);
            }
            if job.scrape_timeout > job.scrape_interval {
                return Err(format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    job.job_name
                ));
            }
            let inherit = |own: &mut u64, global: u64| {
                if *own == 0 {
                    *own = global;
                }
            };
            inherit(&mut job.sample_limit, global.sample_limit);
            inherit(&mut job.label_limit, global.label_limit);
            inherit(
                &mut job.label_name_length_limit,
                global.label_name_length_limit,
            );
            inherit(
                &mut job.label_value_length_limit,
                global.label_value_length_limit,
            );
            inherit(&mut job.target_limit, global.target_limit);
            inherit(&mut job.body_size_limit.0, global.body_size_limit.0);
        }
        Ok(())
    }
}

/// True when `text` holds no YAML content, only blank lines and comments.
fn is_blank_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---")
}

const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

const DEFAULT_BODY_SIZE_LIMIT: ByteSize = ByteSize(64 << 20);

/// Defaults for every scrape job and rule group.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// How often to scrape by default; 1m.
    pub scrape_interval: Duration,
    /// Scrape timeout by default; 10s, or the interval when that is shorter.
    pub scrape_timeout: Duration,
    /// How often rule groups are evaluated by default; 1m.
    pub evaluation_interval: Duration,
    /// Labels added to alerts and to data sent to other systems.
    pub external_labels: BTreeMap<String, String>,
    /// Default most samples per scrape; 0 for none.
    pub sample_limit: u64,
    /// Default most labels per series; 0 for none.
    pub label_limit: u64,
    /// Default longest label name; 0 for none.
    pub label_name_length_limit: u64,
    /// Default longest label value; 0 for none.
    pub label_value_length_limit: u64,
    /// Default largest scrape body; 64 MiB so that a runaway target cannot exhaust memory
    /// (Prometheus has no default limit); `0` for none.
    pub body_size_limit: ByteSize,
    /// Default most targets per job; 0 for none.
    pub target_limit: u64,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::default(),
            evaluation_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
            target_limit: 0,
        }
    }
}

impl Check for GlobalConfig {
    fn check(&self) -> Result<(), String> {
        if self.scrape_interval.is_zero() || self.evaluation_interval.is_zero() {
            return Err("scrape_interval and evaluation_interval must be longer than 0s".into());
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err("global scrape timeout greater than scrape interval".into());
        }
        if self.external_labels.keys().any(String::is_empty) {
            return Err("external_labels: label names must not be empty".into());
        }
        Ok(())
    }
}

/// A `rule_files` entry: a path that may use `*`, `?` and `[...]` in its last elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFilePattern(pub String);

impl<'de> Deserialize<'de> for RuleFilePattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        yaml::from_string(deserializer, "a file path pattern", |pattern| {
            glob::Pattern::new(pattern)
                .map(|_| RuleFilePattern(pattern.to_owned()))
                .map_err(|error| format!("invalid rule file path {pattern:?}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests;
