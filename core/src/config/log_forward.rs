//! `logs.forward`: Loki push endpoints (a Loki cluster, Grafana Cloud, another Sightline)
//! that receive a copy of every log line the log store takes, as Promtail's `clients` and
//! Alloy's `loki.write` endpoints do, read from the log WAL so that an outage of the receiver
//! loses nothing within `max_backlog`. Field names follow Alloy's `loki.write` endpoint
//! block.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::remote_write::{NamedQueue, check_sender, queue_name, unique_queues};
use super::scrape::{Authorization, BasicAuth, TlsConfig, check_client_auth, optional_checked};
use crate::byte_size::ByteSize;
use crate::duration::Duration;
use crate::yaml::Check;

/// The `logs:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Loki push endpoints every stored line is also sent to.
    #[serde(deserialize_with = "unique_queues")]
    pub forward: Vec<LogForwardConfig>,
}

/// One Loki push endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogForwardConfig {
    /// The push URL, such as `http://loki:3100/loki/api/v1/push`.
    pub url: url::Url,
    /// Names the forwarder in metrics, logs and the Status page; unique. Empty: derived
    /// from the URL.
    #[serde(default)]
    pub name: String,
    /// Sent as `X-Scope-OrgID` when set (Loki's multi-tenancy).
    #[serde(default)]
    pub tenant_id: String,
    /// Timeout of each request.
    #[serde(default = "ten_seconds")]
    pub remote_timeout: Duration,
    /// Extra HTTP headers (not those the push itself sets).
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
    /// The longest a line waits for its batch to fill.
    #[serde(default = "one_second")]
    pub batch_wait: Duration,
    /// Bytes of lines per request (a single larger push goes alone).
    #[serde(default = "one_mebibyte")]
    pub batch_size: ByteSize,
    /// First wait after a failed request; doubled on each retry.
    #[serde(default = "half_a_second")]
    pub min_backoff_period: Duration,
    /// Longest wait between retries.
    #[serde(default = "five_minutes")]
    pub max_backoff_period: Duration,
    /// Retry requests answered with 429 Too Many Requests (else their lines are dropped).
    #[serde(default = "yes")]
    pub retry_on_http_429: bool,
    /// Labels added to every stream that lacks them.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// The most log-WAL bytes kept for this endpoint while it is unreachable; past that the
    /// oldest unsent lines are given up.
    #[serde(default = "one_gibibyte")]
    pub max_backlog: ByteSize,
}

/// Headers the push sets itself, which `headers` may not replace.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "authorization",
    "content-encoding",
    "content-type",
    "user-agent",
    "x-scope-orgid",
];

impl Check for LogForwardConfig {
    fn check(&self) -> Result<(), String> {
        check_sender(
            &self.url,
            &self.headers,
            &RESERVED_HEADERS,
            "by the push itself (X-Scope-OrgID by tenant_id)",
        )?;
        if self.batch_size.bytes() == 0 {
            return Err("batch_size must be more than 0".into());
        }
        if self.min_backoff_period > self.max_backoff_period {
            return Err("min_backoff_period must not exceed max_backoff_period".into());
        }
        check_client_auth(
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some(),
            self.bearer_token_file.is_some(),
        )
    }
}

impl LogForwardConfig {
    /// The forwarder's name: `name`, else the URL's host, port and path.
    pub fn queue_name(&self) -> String {
        queue_name(&self.name, &self.url)
    }
}

impl NamedQueue for LogForwardConfig {
    const SECTION: &'static str = "logs.forward";
    fn queue_name(&self) -> String {
        LogForwardConfig::queue_name(self)
    }
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn half_a_second() -> Duration {
    Duration::from_millis(500)
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn one_mebibyte() -> ByteSize {
    ByteSize(1 << 20)
}

fn one_gibibyte() -> ByteSize {
    ByteSize(1 << 30)
}

fn yes() -> bool {
    true
}
