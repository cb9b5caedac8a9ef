//! Sightline's own config sections — `storage`, `limits`, `query`, `web` — and Prometheus's
//! `alerting`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::proxy_auth::{AnonymousAccess, ProxyAuthConfig};
use super::relabel::RelabelConfig;
use super::scrape::{
    Authorization, BasicAuth, FileSdConfig, KubernetesSdConfig, Scheme, StaticConfig, TlsConfig,
};
use crate::byte_size::ByteSize;
use crate::duration::Duration;
use crate::selector::SeriesSelector;
use crate::yaml::{Check, checked, checked_each};

/// Where and how long data is kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory; `--data-dir` wins, `./data` when neither is set.
    pub path: Option<PathBuf>,
    /// How often the write-ahead logs are synced to disk; `0s` syncs every batch.
    pub wal_sync: Duration,
    /// Metric retention and block settings.
    #[serde(deserialize_with = "checked")]
    pub metrics: MetricsStorageConfig,
    /// Log retention.
    #[serde(deserialize_with = "checked")]
    pub logs: RetentionConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: None,
            wal_sync: Duration::from_secs(1),
            metrics: MetricsStorageConfig::default(),
            logs: RetentionConfig::default(),
        }
    }
}

/// How long, and how much, of one kind of data to keep.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Age after which data is dropped; 7 days.
    pub retention: Duration,
    /// Size above which the oldest data is dropped; `0` for no size limit.
    pub retention_size: ByteSize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_size: ByteSize(0),
        }
    }
}

impl Check for RetentionConfig {
    fn check(&self) -> Result<(), String> {
        check_retention(self.retention)
    }
}

fn check_retention(retention: Duration) -> Result<(), String> {
    if retention.is_zero() {
        return Err("retention must be longer than 0s".into());
    }
    Ok(())
}

/// How long, and how much, metric data to keep, per series where overrides say so, and how
/// the head cuts it into blocks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsStorageConfig {
    /// Age after which series no override matches are dropped; 7 days.
    pub retention: Duration,
    /// Size above which the oldest days are dropped, whatever the overrides say; `0` for no
    /// size limit.
    pub retention_size: ByteSize,
    /// Per-series retention: the first entry whose selector matches a series gives its age.
    /// May be longer or shorter than `retention`.
    #[serde(deserialize_with = "checked_each")]
    pub retention_overrides: Vec<RetentionOverride>,
    /// Time range of the blocks the head is cut into (Prometheus's min block duration); 2h.
    /// Must divide a day. Read at start-up only.
    pub block_range: Duration,
}

impl Default for MetricsStorageConfig {
    fn default() -> Self {
        MetricsStorageConfig {
            retention: RetentionConfig::default().retention,
            retention_size: ByteSize(0),
            retention_overrides: Vec::new(),
            block_range: Duration::from_secs(2 * 3600),
        }
    }
}

impl Check for MetricsStorageConfig {
    fn check(&self) -> Result<(), String> {
        check_retention(self.retention)?;
        let range_ms = self.block_range.as_millis();
        if range_ms < 60_000 || !DAY_MS.is_multiple_of(range_ms) {
            return Err(format!(
                "block_range must be at least 1m and divide 24h evenly (e.g. 5m, 1h, 2h), not {}",
                self.block_range
            ));
        }
        Ok(())
    }
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// One entry of `retention_overrides`: the series a selector picks and how long to keep them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOverride {
    /// The series, as a PromQL selector: `'{job="node"}'`, `'{__name__=~"apiserver_.*"}'`.
    pub matchers: SeriesSelector,
    /// How long to keep them.
    pub retention: Duration,
}

impl Check for RetentionOverride {
    fn check(&self) -> Result<(), String> {
        check_retention(self.retention)
    }
}

/// Limits on what clients may send.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body the HTTP server reads; larger requests get 413.
    pub request_body_size: ByteSize,
    /// Resident memory above which pushes (Loki push, remote write) are refused with 429 and
    /// `Retry-After`, so that a flood meets back-pressure rather than the OOM killer; 0 =
    /// none.
    pub memory_ceiling: ByteSize,
    /// What log pushes may contain and how fast they may come (Loki's `limits_config`).
    pub logs: LogLimitsConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_body_size: ByteSize(32 << 20),
            memory_ceiling: ByteSize(0),
            logs: LogLimitsConfig::default(),
        }
    }
}

/// Limits on log pushes and queries, named and defaulted as Loki's `limits_config`; a size or
/// count of 0 means no limit, a rate of 0 turns that rate limit off.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogLimitsConfig {
    /// Longest line; 256 KiB.
    pub max_line_size: ByteSize,
    /// Cut longer lines to `max_line_size` instead of rejecting them.
    pub max_line_size_truncate: bool,
    /// Most labels per stream; 15.
    pub max_label_names_per_series: usize,
    /// Longest label name in bytes; 1024.
    pub max_label_name_length: usize,
    /// Longest label value in bytes; 2048.
    pub max_label_value_length: usize,
    /// Most structured-metadata pairs per entry; 128.
    pub max_structured_metadata_entries_count: usize,
    /// Most structured-metadata bytes per entry; 64 KiB.
    pub max_structured_metadata_size: ByteSize,
    /// Reject entries older than `reject_old_samples_max_age`.
    pub reject_old_samples: bool,
    /// Oldest entry accepted, back from now; 7 d.
    pub reject_old_samples_max_age: Duration,
    /// How far in the future an entry may be; 10 m.
    pub creation_grace_period: Duration,
    /// Sustained push bytes per second over all streams; 4 MiB.
    pub ingestion_rate: ByteSize,
    /// Burst over all streams; 6 MiB.
    pub ingestion_burst_size: ByteSize,
    /// Sustained push bytes per second per stream; 3 MiB.
    pub per_stream_rate_limit: ByteSize,
    /// Burst per stream; 15 MiB.
    pub per_stream_rate_limit_burst: ByteSize,
    /// Most lines a log query (or live tail) may ask for with its `limit`; 5000.
    pub max_entries_limit_per_query: usize,
    /// Most series a LogQL metric query may produce; 500.
    pub max_query_series: usize,
    /// Most bytes of log lines one query may read; 0 = no limit.
    pub max_query_bytes_read: ByteSize,
}

impl Default for LogLimitsConfig {
    fn default() -> Self {
        LogLimitsConfig {
            max_line_size: ByteSize(256 << 10),
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_structured_metadata_entries_count: 128,
            max_structured_metadata_size: ByteSize(64 << 10),
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 24 * 3600),
            creation_grace_period: Duration::from_secs(600),
            ingestion_rate: ByteSize(4 << 20),
            ingestion_burst_size: ByteSize(6 << 20),
            per_stream_rate_limit: ByteSize(3 << 20),
            per_stream_rate_limit_burst: ByteSize(15 << 20),
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_query_bytes_read: ByteSize(0),
        }
    }
}

/// Limits of PromQL queries, as Prometheus's `--query.*` flags. Read at start-up only.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Most samples one query may hold in memory at once; 50,000,000
    /// (`--query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may take, waiting for a slot included; 2m (`--query.timeout`).
    pub timeout: Duration,
    /// Queries evaluated at once; more wait for a free slot until their timeout; 20
    /// (`--query.max-concurrency`).
    pub max_concurrency: usize,
    /// How far back an instant selector looks for a sample; 5m (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// Most memory one LogQL query may hold (its series, kept samples and lines, and the
    /// chunks its threads are reading); 256 MiB.
    pub max_log_query_memory: ByteSize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            lookback_delta: Duration::from_secs(300),
            max_log_query_memory: ByteSize(256 << 20),
        }
    }
}

impl Check for QueryConfig {
    fn check(&self) -> Result<(), String> {
        if self.max_samples == 0 {
            return Err("max_samples must be at least 1".into());
        }
        if self.max_concurrency == 0 {
            return Err("max_concurrency must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return Err("timeout must be longer than 0s".into());
        }
        if self.lookback_delta.is_zero() {
            return Err("lookback_delta must be longer than 0s".into());
        }
        if self.max_log_query_memory.0 < 1 << 20 {
            return Err("max_log_query_memory must be at least 1MiB".into());
        }
        Ok(())
    }
}

/// The `host_metrics:` section: the built-in node-exporter collectors served on
/// `/metrics/node`, and where they read the host's files (hostPath mounts in Kubernetes).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsConfig {
    /// Whether `/metrics/node` answers (404 when off).
    pub enabled: bool,
    /// The proc filesystem (node-exporter's `--path.procfs`).
    pub procfs: PathBuf,
    /// The sys filesystem (`--path.sysfs`).
    pub sysfs: PathBuf,
    /// The host's root filesystem, under which mount points are statted (`--path.rootfs`).
    pub rootfs: PathBuf,
    /// udev's device database (`--collector.disk.udev-data-path`).
    pub udev_data: PathBuf,
}

impl Default for HostMetricsConfig {
    fn default() -> Self {
        HostMetricsConfig {
            enabled: true,
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

/// The `builtin_rules:` section: Sightline's own homelab alert rules, on unless switched off.
/// A rule of the same name in a user rule file replaces the built-in one; `overrides` changes
/// a built-in alert's `for` and labels without copying its expression.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinRulesConfig {
    /// Whether the built-in rules run at all.
    pub enabled: bool,
    /// Names of built-in rules (alert or record names) that do not run.
    pub disabled: Vec<String>,
    /// By alert name: what to change in every built-in alerting rule of that name.
    pub overrides: BTreeMap<String, BuiltinRuleOverride>,
}

impl Default for BuiltinRulesConfig {
    fn default() -> Self {
        BuiltinRulesConfig {
            enabled: true,
            disabled: Vec::new(),
            overrides: BTreeMap::new(),
        }
    }
}

/// Changes to a built-in alert: a shorter or longer `for`, labels added or replaced (such as
/// `severity`, which decides the route).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinRuleOverride {
    /// Replaces the rule's `for`.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_duration: Option<Duration>,
    /// Added to the rule's labels, replacing those of the same name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The `log_collection:` section: Promtail's (and Alloy's) job inside Sightline. Pod logs
/// under the kubelet's `/var/log/pods` and, outside Kubernetes, any files are tailed into the
/// log store. Read at start-up only.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogCollectionConfig {
    /// The kubelet's pod-log directory (a hostPath mount); pods are not tailed when unset.
    pub pods_root: Option<PathBuf>,
    /// The `node` label of pod streams; when empty, `$NODE_NAME` (set it from the downward
    /// API), else the host name. With a `kubernetes:` section, only this node's pods are
    /// watched for their `app` label.
    pub node_name: String,
    /// Files outside Kubernetes, each group with its labels (Promtail's `static_configs`
    /// with `__path__`).
    #[serde(deserialize_with = "checked_each")]
    pub files: Vec<TailedFiles>,
    /// Relabel steps on each stream's labels (and `__path__`); `action: drop` drops the
    /// stream, as in Promtail's `relabel_configs`.
    #[serde(deserialize_with = "checked_each")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Lines dropped by their content, as Promtail's `drop` stage.
    #[serde(deserialize_with = "checked_each")]
    pub drop: Vec<LineDropConfig>,
    /// Most bytes of one line reassembled from CRI or Docker fragments; the rest is cut.
    pub max_partial_line_size: ByteSize,
    /// How often files are listed and read.
    pub poll_interval: Duration,
    /// With a `kubernetes:` section, how long pod files wait for the API's first list of
    /// pods (so that streams start with their `app` label) before they are read without it.
    pub pod_labels_wait: Duration,
}

impl Default for LogCollectionConfig {
    fn default() -> Self {
        LogCollectionConfig {
            pods_root: None,
            node_name: String::new(),
            files: Vec::new(),
            relabel_configs: Vec::new(),
            drop: Vec::new(),
            max_partial_line_size: ByteSize(256 * 1024),
            poll_interval: Duration::from_secs(1),
            pod_labels_wait: Duration::from_secs(60),
        }
    }
}

impl Check for LogCollectionConfig {
    fn check(&self) -> Result<(), String> {
        if self.poll_interval.is_zero() {
            return Err("poll_interval must be longer than 0s".into());
        }
        Ok(())
    }
}

impl LogCollectionConfig {
    /// Whether anything is tailed at all.
    pub fn is_enabled(&self) -> bool {
        self.pods_root.is_some() || !self.files.is_empty()
    }
}

/// Files matched by globs, with the labels of their streams.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TailedFiles {
    /// Globs such as `/var/log/*.log`.
    pub paths: Vec<String>,
    /// Labels of every stream of these files (each also gets `filename`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Check for TailedFiles {
    fn check(&self) -> Result<(), String> {
        if self.paths.is_empty() {
            return Err("paths must name at least one file or glob".into());
        }
        for path in &self.paths {
            glob::Pattern::new(path).map_err(|error| format!("bad glob {path:?}: {error}"))?;
        }
        Ok(())
    }
}

/// Drops the lines matching `expression` of the streams whose labels match `labels`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LineDropConfig {
    /// Label name → regex, anchored as in relabeling; every one must match (an absent label
    /// is the empty string). Empty: every stream.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A regex searched in the line, e.g. `GET /(healthz|readyz)`.
    pub expression: String,
}

impl Check for LineDropConfig {
    fn check(&self) -> Result<(), String> {
        for (name, pattern) in &self.labels {
            regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|error| format!("labels.{name}: bad regex: {error}"))?;
        }
        regex::Regex::new(&self.expression)
            .map_err(|error| format!("expression: bad regex: {error}"))?;
        Ok(())
    }
}

/// The `dashboards:` section: Grafana dashboard JSON files the UI serves, besides Sightline's
/// built-in ones, the ones imported through the UI (kept in the data directory) and, on
/// Kubernetes, ConfigMaps labelled `grafana_dashboard: "1"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardsConfig {
    /// Directories (every `*.json` below them; a subdirectory becomes a folder) or single
    /// files, relative to the config file's directory.
    pub paths: Vec<PathBuf>,
    /// Whether Sightline's built-in dashboards are listed (first, in the folder "Sightline").
    pub builtin: bool,
}

impl Default for DashboardsConfig {
    fn default() -> Self {
        DashboardsConfig {
            paths: Vec::new(),
            builtin: true,
        }
    }
}

/// The HTTP listener and what it shows to the outside.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Addresses to listen on; `--listen` wins. Read at start-up only.
    pub listen: Vec<SocketAddr>,
    /// The URL users reach Sightline at, behind a proxy; its path becomes the route prefix.
    pub external_url: Option<url::Url>,
    /// Who may use the HTTP surface.
    #[serde(deserialize_with = "checked")]
    pub auth: AuthConfig,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9090))],
            external_url: None,
            auth: AuthConfig::default(),
        }
    }
}

impl WebConfig {
    /// The path prefix all routes live under: the external URL's path without its trailing
    /// slash, or empty.
    pub fn route_prefix(&self) -> &str {
        self.external_url
            .as_ref()
            .map_or("", |url| url.path().trim_end_matches('/'))
    }
}

/// HTTP authentication: users in the shape of Prometheus's web config file, each an admin
/// unless listed as a viewer, and bearer tokens for clients (push agents, Grafana).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// User name → bcrypt hash of the password. With neither users nor tokens, no
    /// authentication is required.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Users of `basic_auth_users` who may read but not change anything (no silences, reloads,
    /// imports or deletions, no pushes).
    pub viewers: Vec<String>,
    /// Tokens accepted as `Authorization: Bearer <token>`, each with its role.
    pub bearer_tokens: Vec<BearerToken>,
    /// Users named by a trusted reverse proxy's headers (Grafana's `auth.proxy`).
    #[serde(
        deserialize_with = "super::scrape::optional_checked",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy: Option<ProxyAuthConfig>,
    /// What requests without credentials may do once any of the above is set.
    pub anonymous: AnonymousAccess,
}

impl AuthConfig {
    /// Whether any request needs credentials (or is limited to `anonymous` access without).
    pub fn required(&self) -> bool {
        !self.basic_auth_users.is_empty() || !self.bearer_tokens.is_empty() || self.proxy.is_some()
    }
}

/// What a user or token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: queries, dashboards, targets, alerts, logs.
    Viewer,
    /// Everything: read, push, and change (silences, reloads, imports, deletions).
    Admin,
    /// Send data only: remote write, Loki push, alerts from another Prometheus.
    Push,
}

impl Role {
    /// The role as the config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Push => "push",
        }
    }
}

/// One bearer token: the secret inline or in a file (relative to the config file), and its
/// role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BearerToken {
    /// The token.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored), read on each use so that
    /// rotating it needs no reload.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// What the token may do.
    pub role: Role,
}

impl Check for AuthConfig {
    fn check(&self) -> Result<(), String> {
        for viewer in &self.viewers {
            if !self.basic_auth_users.contains_key(viewer) {
                return Err(format!(
                    "viewers: {viewer:?} is not one of basic_auth_users"
                ));
            }
        }
        for (index, token) in self.bearer_tokens.iter().enumerate() {
            match (&token.token, &token.token_file) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "bearer_tokens[{index}]: set exactly one of token and token_file"
                    ));
                }
                (Some(secret), None) if secret.trim().len() < 16 => {
                    return Err(format!(
                        "bearer_tokens[{index}]: a token needs at least 16 characters \
                         (e.g. from `openssl rand -hex 32`)"
                    ));
                }
                _ => {}
            }
        }
        for (user, hash) in &self.basic_auth_users {
            let bcrypt_prefix = ["$2a$", "$2b$", "$2x$", "$2y$"]
                .iter()
                .any(|prefix| hash.starts_with(prefix));
            if !bcrypt_prefix || hash.len() != 60 {
                return Err(format!(
                    "basic_auth_users: the password of {user:?} must be a bcrypt hash \
                     (e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                ));
            }
        }
        Ok(())
    }
}

/// Prometheus's `alerting` section: relabeling of outgoing alerts and extra Alertmanagers
/// to send them to, besides Sightline's own.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Relabeling applied to every alert before it is sent.
    #[serde(deserialize_with = "checked_each")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// External Alertmanagers.
    #[serde(deserialize_with = "checked_each")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One set of external Alertmanagers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Scheme,
    /// Path prefix of the Alertmanager API.
    #[serde(default)]
    pub path_prefix: String,
    /// Timeout for each push; 10s.
    #[serde(default = "default_alertmanager_timeout")]
    pub timeout: Duration,
    /// Alertmanager API version; only `v2` exists since Alertmanager 0.27.
    #[serde(default)]
    pub api_version: AlertmanagerApiVersion,
    /// Fixed Alertmanager addresses.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Alertmanager addresses read from files.
    #[serde(default, deserialize_with = "checked_each")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Alertmanagers discovered in Kubernetes.
    #[serde(default, deserialize_with = "checked_each")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Relabeling of discovered Alertmanagers.
    #[serde(default, deserialize_with = "checked_each")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Basic authentication.
    #[serde(default, deserialize_with = "super::scrape::optional_checked")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    #[serde(default, deserialize_with = "super::scrape::optional_checked")]
    pub authorization: Option<Authorization>,
    /// TLS settings.
    #[serde(default, deserialize_with = "super::scrape::optional_checked")]
    pub tls_config: Option<TlsConfig>,
}

impl Check for AlertmanagerConfig {
    fn check(&self) -> Result<(), String> {
        super::scrape::check_client_auth(
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            false,
            false,
        )
    }
}

fn default_alertmanager_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Alertmanager API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertmanagerApiVersion {
    /// API v2, the only one current Alertmanagers serve.
    #[default]
    V2,
}
