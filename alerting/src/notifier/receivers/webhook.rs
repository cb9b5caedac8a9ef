//! Webhooks (`webhook_configs`): Alertmanager's JSON payload (version 4) POSTed to a URL.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>.
//!
//! Edge cases decided here:
//! - `url` or `url_file`, exactly one; a `url` must be `http://` or `https://`.
//! - `max_alerts: 0` sends every alert of the group; `timeout: 0s` (the default) means the
//!   notifier's own deadline.

use serde::Deserialize;
use sightline_core::duration::Duration;
use sightline_core::yaml::{self, Check};

use super::{HttpConfig, Secret, one_of};

/// One webhook integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Whether resolved alerts are notified (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// HTTP client settings.
    #[serde(default, deserialize_with = "yaml::checked")]
    pub http_config: HttpConfig,
    /// Where to POST; a secret, as it often carries a token.
    pub url: Option<Secret>,
    /// A file holding the URL.
    pub url_file: Option<String>,
    /// The most alerts one payload carries; 0 for all.
    #[serde(default)]
    pub max_alerts: u64,
    /// Request timeout; 0 for the notifier's own.
    #[serde(default)]
    pub timeout: Duration,
}

impl Check for WebhookConfig {
    fn check(&self) -> Result<(), String> {
        one_of(self.url.is_some(), self.url_file.is_some(), "url", true)?;
        if let Some(url) = &self.url {
            let url = url.expose();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("url {url:?} must start with http:// or https://"));
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
