//! `remote_write`: where Sightline sends a copy of every sample it stores, as Prometheus's
//! `remote_write` section has it
//! (<https://prometheus.io/docs/prometheus/latest/configuration/configuration/#remote_write>),
//! read from the metric WAL so that an outage of the receiver loses nothing the WAL holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::relabel::RelabelConfig;
use super::scrape::{Authorization, BasicAuth, TlsConfig, check_client_auth, optional_checked};
use crate::duration::Duration;
use crate::yaml::{Check, checked, checked_each, checked_list};

/// One receiver of remote write 1.0.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's URL, such as `http://mimir:8080/api/v1/push`.
    pub url: url::Url,
    /// Names the queue in metrics, logs and the Status page; unique. Empty: derived from
    /// the URL.
    #[serde(default)]
    pub name: String,
    /// Timeout of each request.
    #[serde(default = "thirty_seconds")]
    pub remote_timeout: Duration,
    /// Extra HTTP headers (not those remote write itself sets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Basic authentication.
    #[serde(default, deserialize_with = "optional_checked")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    #[serde(default, deserialize_with = "optional_checked")]
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    pub bearer_token: Option<String>,
    /// File holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for an `https` URL.
    #[serde(default, deserialize_with = "optional_checked")]
    pub tls_config: Option<TlsConfig>,
    /// Relabelling of each series before it is sent; dropped series are not sent.
    #[serde(default, deserialize_with = "checked_each")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Batching, parallelism and retries.
    #[serde(default, deserialize_with = "checked")]
    pub queue_config: QueueConfig,
    /// Sending the scraped metadata (`TYPE`, `HELP`, `UNIT`).
    #[serde(default)]
    pub metadata_config: MetadataConfig,
}

/// Headers remote write sets itself, which `headers` may not replace (Prometheus's list).
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "authorization",
    "content-encoding",
    "content-type",
    "user-agent",
    "x-prometheus-remote-write-version",
];

impl Check for RemoteWriteConfig {
    fn check(&self) -> Result<(), String> {
        check_sender(
            &self.url,
            &self.headers,
            &RESERVED_HEADERS,
            "by remote write",
        )?;
        check_client_auth(
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some(),
            self.bearer_token_file.is_some(),
        )
    }
}

/// Checks a sender's `url` (http or https) and that its `headers` replace none of those
/// in `reserved` (lower case), which are set `set_by` the protocol.
pub(super) fn check_sender(
    url: &url::Url,
    headers: &BTreeMap<String, String>,
    reserved: &[&str],
    set_by: &str,
) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("url {} must be http or https", url.as_str()));
    }
    match headers
        .keys()
        .find(|name| reserved.contains(&name.to_ascii_lowercase().as_str()))
    {
        Some(name) => Err(format!(
            "header {name:?} is set {set_by} and cannot be configured"
        )),
        None => Ok(()),
    }
}

impl RemoteWriteConfig {
    /// The queue's name: `name`, else the URL's host, port and path.
    pub fn queue_name(&self) -> String {
        queue_name(&self.name, &self.url)
    }
}

/// The name of a queue sending to `url`: `name`, else the URL's host, port and path.
pub(super) fn queue_name(name: &str, url: &url::Url) -> String {
    if name.is_empty() {
        format!(
            "{}{}",
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ) + url.path()
    } else {
        name.to_owned()
    }
}

/// How samples are batched and sent, with Prometheus's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples held in memory per shard while they wait to be sent.
    pub capacity: usize,
    /// Parallel senders to start with.
    pub min_shards: usize,
    /// The most parallel senders when the queue falls behind.
    pub max_shards: usize,
    /// Samples per request.
    pub max_samples_per_send: usize,
    /// The longest a sample waits for its batch to fill.
    pub batch_send_deadline: Duration,
    /// First wait after a failed request; doubled on each retry.
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Retry requests answered with 429 Too Many Requests (else their samples are dropped).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            min_shards: 1,
            max_shards: 50,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
        }
    }
}

impl Check for QueueConfig {
    fn check(&self) -> Result<(), String> {
        if self.min_shards == 0 || self.max_shards < self.min_shards {
            return Err(format!(
                "min_shards ({}) must be at least 1 and at most max_shards ({})",
                self.min_shards, self.max_shards
            ));
        }
        if self.max_samples_per_send == 0 || self.capacity < self.max_samples_per_send {
            return Err(format!(
                "max_samples_per_send ({}) must be at least 1 and at most capacity ({})",
                self.max_samples_per_send, self.capacity
            ));
        }
        if self.min_backoff > self.max_backoff {
            return Err("min_backoff must not exceed max_backoff".into());
        }
        Ok(())
    }
}

/// Metadata sending, with Prometheus's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Whether to send metadata.
    pub send: bool,
    /// How often all of it is sent.
    pub send_interval: Duration,
    /// Metadata entries per request.
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 500,
        }
    }
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// An entry of a list of queues, each named uniquely.
pub(super) trait NamedQueue {
    /// The list's key, for error messages.
    const SECTION: &'static str;
    /// The entry's queue name.
    fn queue_name(&self) -> String;
}

impl NamedQueue for RemoteWriteConfig {
    const SECTION: &'static str = "remote_write";
    fn queue_name(&self) -> String {
        RemoteWriteConfig::queue_name(self)
    }
}

/// A list of queues, each entry checked, with unique queue names.
pub(super) fn unique_queues<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Check + NamedQueue,
{
    checked_list(deserializer, names_are_unique::<T>)
}

fn names_are_unique<T: NamedQueue>(configs: &[T]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    match configs
        .iter()
        .map(T::queue_name)
        .find(|name| !seen.insert(name.clone()))
    {
        Some(duplicate) => Err(format!(
            "found multiple {} entries named {duplicate:?}; give each a unique name",
            T::SECTION
        )),
        None => Ok(()),
    }
}
