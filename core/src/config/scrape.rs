//! `scrape_configs` and the discovery and HTTP-client sections inside them.
//!
//! Follows https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config.
//! Zero values mean "inherit from `global`" exactly as in Prometheus, and are filled in by
//! [`Config`](super::Config) after loading, so consumers read effective values directly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::relabel::RelabelConfig;
use crate::byte_size::ByteSize;
use crate::duration::Duration;
use crate::yaml::{Check, checked, checked_each, checked_list};

/// One scrape job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every target, unique across the file.
    pub job_name: String,
    /// How often to scrape; inherits `global.scrape_interval`.
    #[serde(default)]
    pub scrape_interval: Duration,
    /// Per-scrape timeout; inherits `global.scrape_timeout`, capped at the interval.
    #[serde(default)]
    pub scrape_timeout: Duration,
    /// Path on the target; `/metrics`.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Scheme,
    /// URL query parameters sent with each scrape.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's own `job`/`instance`/… labels on conflict instead of renaming them.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes.
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// Follow HTTP redirects.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Basic authentication for the target.
    #[serde(default, deserialize_with = "optional_checked")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials for the target.
    #[serde(default, deserialize_with = "optional_checked")]
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    pub bearer_token: Option<String>,
    /// File holding a bearer token (legacy form of `authorization.credentials_file`).
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https` targets.
    #[serde(default, deserialize_with = "optional_checked")]
    pub tls_config: Option<TlsConfig>,
    /// Most samples one scrape may return; 0 inherits `global.sample_limit` (0 = none).
    #[serde(default)]
    pub sample_limit: u64,
    /// Most labels per series; 0 inherits.
    #[serde(default)]
    pub label_limit: u64,
    /// Longest label name; 0 inherits.
    #[serde(default)]
    pub label_name_length_limit: u64,
    /// Longest label value; 0 inherits.
    #[serde(default)]
    pub label_value_length_limit: u64,
    /// Largest uncompressed scrape body; 0 inherits.
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// Most targets after relabeling; 0 inherits.
    #[serde(default)]
    pub target_limit: u64,
    /// Fixed target lists.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Target lists read from JSON or YAML files and watched for changes.
    #[serde(default, deserialize_with = "checked_each")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets discovered from the Kubernetes API.
    #[serde(default, deserialize_with = "checked_each")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Relabeling of discovered targets.
    #[serde(default, deserialize_with = "checked_each")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series before they are stored.
    #[serde(default, deserialize_with = "checked_each")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl Check for ScrapeConfig {
    fn check(&self) -> Result<(), String> {
        if self.job_name.is_empty() {
            return Err("job_name is empty".into());
        }
        if !self.scrape_interval.is_zero()
            && !self.scrape_timeout.is_zero()
            && self.scrape_timeout > self.scrape_interval
        {
            return Err(format!(
                "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                self.job_name
            ));
        }
        if !self.metrics_path.starts_with('/') {
            return Err(format!(
                "metrics_path {:?} must start with '/'",
                self.metrics_path
            ));
        }
        check_client_auth(
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some(),
            self.bearer_token_file.is_some(),
        )
    }
}

/// At most one way to authenticate, as Prometheus's HTTP client config requires.
pub(super) fn check_client_auth(
    basic_auth: bool,
    authorization: bool,
    bearer_token: bool,
    bearer_token_file: bool,
) -> Result<(), String> {
    if bearer_token && bearer_token_file {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    let methods = [basic_auth, authorization, bearer_token || bearer_token_file];
    if methods.iter().filter(|set| **set).count() > 1 {
        return Err(
            "at most one of basic_auth, authorization and bearer_token(_file) must be configured"
                .into(),
        );
    }
    Ok(())
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn yes() -> bool {
    true
}

/// Deserializes an optional section and checks it at its own position.
pub(super) fn optional_checked<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Check,
{
    checked(deserializer).map(Some)
}

/// URL scheme for scraping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// File holding the user name.
    pub username_file: Option<PathBuf>,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

impl Check for BasicAuth {
    fn check(&self) -> Result<(), String> {
        if !self.username.is_empty() && self.username_file.is_some() {
            return Err(
                "at most one of basic_auth username & username_file must be configured".into(),
            );
        }
        if self.password.is_some() && self.password_file.is_some() {
            return Err(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
        Ok(())
    }
}

/// `Authorization` header credentials.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Header scheme; `Bearer`.
    #[serde(default = "default_authorization_type", rename = "type")]
    pub kind: String,
    /// The credentials.
    pub credentials: Option<String>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

fn default_authorization_type() -> String {
    "Bearer".into()
}

impl Check for Authorization {
    fn check(&self) -> Result<(), String> {
        if self.kind.eq_ignore_ascii_case("basic") {
            return Err(
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into(),
            );
        }
        if self.credentials.is_some() && self.credentials_file.is_some() {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured"
                    .into(),
            );
        }
        Ok(())
    }
}

/// TLS client settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate file to verify the server with.
    pub ca_file: Option<PathBuf>,
    /// Client certificate file.
    pub cert_file: Option<PathBuf>,
    /// Client key file.
    pub key_file: Option<PathBuf>,
    /// Server name to verify instead of the target's host.
    pub server_name: Option<String>,
    /// Skip verification of the server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl Check for TlsConfig {
    fn check(&self) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("tls_config needs both cert_file and key_file, or neither".into());
        }
        Ok(())
    }
}

/// A fixed list of targets with shared labels.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of this list.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Targets read from files (Prometheus's `file_sd_configs`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File paths; the last path element may contain one `*`.
    pub files: Vec<String>,
    /// How often to re-read the files besides watching them; 5m.
    #[serde(default = "default_file_sd_refresh")]
    pub refresh_interval: Duration,
}

fn default_file_sd_refresh() -> Duration {
    Duration::from_secs(300)
}

impl Check for FileSdConfig {
    fn check(&self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        for file in &self.files {
            // Prometheus: ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$
            let (dir_part, name_part) = file.rsplit_once('/').unwrap_or(("", file));
            let extension_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"]
                .iter()
                .any(|ext| {
                    name_part
                        .strip_suffix(ext)
                        .is_some_and(|s| s.ends_with('.'))
                });
            if dir_part.contains('*') || name_part.matches('*').count() > 1 || !extension_ok {
                return Err(format!(
                    "path name {file:?} is not valid for file discovery"
                ));
            }
        }
        Ok(())
    }
}

/// Targets discovered from the Kubernetes API (Prometheus's `kubernetes_sd_configs`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    /// Which objects become targets.
    pub role: KubernetesRole,
    /// API server URL; in-cluster config when absent.
    pub api_server: Option<url::Url>,
    /// Kubeconfig file to use instead of in-cluster config.
    pub kubeconfig_file: Option<PathBuf>,
    /// Namespaces to watch; all when empty.
    #[serde(default)]
    pub namespaces: NamespaceDiscovery,
    /// Label and field selectors passed to the API server.
    #[serde(default)]
    pub selectors: Vec<KubernetesSelector>,
    /// Extra metadata attached to targets.
    #[serde(default)]
    pub attach_metadata: AttachMetadata,
    /// Basic authentication for the API server.
    #[serde(default, deserialize_with = "optional_checked")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials for the API server.
    #[serde(default, deserialize_with = "optional_checked")]
    pub authorization: Option<Authorization>,
    /// File holding a bearer token for the API server.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for the API server.
    #[serde(default, deserialize_with = "optional_checked")]
    pub tls_config: Option<TlsConfig>,
}

impl Check for KubernetesSdConfig {
    fn check(&self) -> Result<(), String> {
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        if let Some(selector) = self
            .selectors
            .iter()
            .find(|selector| !self.role.allows_selector(selector.role))
        {
            return Err(format!(
                "{:?} is not a valid selector role for {:?} discovery",
                selector.role, self.role
            ));
        }
        check_client_auth(
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            false,
            self.bearer_token_file.is_some(),
        )
    }
}

/// Kubernetes object kinds, for discovery roles and selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesRole {
    /// One target per node (kubelet address).
    Node,
    /// One target per declared container port of each pod.
    Pod,
    /// One target per service port.
    Service,
    /// One target per endpoint address and port.
    Endpoints,
    /// One target per EndpointSlice endpoint and port.
    #[serde(rename = "endpointslice")]
    EndpointSlice,
    /// One target per ingress path.
    Ingress,
}

impl KubernetesRole {
    /// Prometheus lets a role select on its own kind and on the kinds it joins with.
    fn allows_selector(self, selector: KubernetesRole) -> bool {
        use KubernetesRole::*;
        match self {
            Endpoints | EndpointSlice => {
                matches!(selector, Pod | Service | Endpoints | EndpointSlice)
            }
            role => role == selector,
        }
    }
}

/// Which namespaces a Kubernetes discovery watches.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceDiscovery {
    /// Include the namespace Sightline runs in.
    #[serde(default)]
    pub own_namespace: bool,
    /// Namespaces by name.
    #[serde(default)]
    pub names: Vec<String>,
}

/// A label and field selector for one object kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    /// The kind the selector applies to.
    pub role: KubernetesRole,
    /// Label selector, e.g. `app=web,tier!=cache`.
    pub label: Option<String>,
    /// Field selector, e.g. `spec.nodeName=node1`.
    pub field: Option<String>,
}

/// Optional metadata joined onto Kubernetes targets.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttachMetadata {
    /// Attach the node's labels to pod and endpoint targets.
    #[serde(default)]
    pub node: bool,
    /// Attach the namespace's labels.
    #[serde(default)]
    pub namespace: bool,
}

/// Rejects a duplicate job name at the position of the `scrape_configs` list.
pub(super) fn unique_jobs<'de, D>(deserializer: D) -> Result<Vec<ScrapeConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    checked_list(deserializer, |configs: &[ScrapeConfig]| {
        let mut seen = std::collections::BTreeSet::new();
        match configs.iter().find(|c| !seen.insert(c.job_name.as_str())) {
            Some(duplicate) => Err(format!(
                "found multiple scrape configs with job name {:?}",
                duplicate.job_name
            )),
            None => Ok(()),
        }
    })
}
