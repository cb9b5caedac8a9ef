//! Webhooks (`webhook_configs`): Alertmanager's JSON payload (version 4) POSTed to a URL.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>.
//!
//! Edge cases decided here:
//! - `url` or `url_file`, exactly one; a `url` must be `http://` or `https://`.
//! - `max_alerts: 0` sends every alert of the group; `timeout: 0s` (the default) means the
//!   notifier's own deadline.
//! - Sending: the payload ([`payload`]) as JSON; any 2xx is delivered, whatever the body.
//!   With `max_alerts`, the first that many alerts are sent and `truncatedAlerts` counts
//!   the rest.

use serde::Deserialize;
use sightline_core::duration::Duration;
use sightline_core::yaml::{self, Check};

use super::{HttpConfig, Secret, SendError, exchange, one_of, read_secret};
use crate::notifier::alert::fingerprint_hex;
use crate::notifier::dispatch::Notification;
use crate::notifier::message::{common_annotations, common_labels, rfc3339};
use sightline_core::labels::Labels;

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

fn labels_json(labels: &Labels) -> serde_json::Value {
    labels
        .iter()
        .map(|label| {
            (
                label.name.clone(),
                serde_json::Value::from(label.value.as_str()),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Alertmanager's webhook payload, version 4, for `notification` with at most `max_alerts`
/// alerts (0: all).
pub fn payload(
    notification: &Notification,
    external_url: &str,
    max_alerts: u64,
) -> serde_json::Value {
    let at = notification.at;
    let limit = usize::try_from(max_alerts)
        .ok()
        .filter(|max| *max > 0)
        .unwrap_or(usize::MAX);
    let alerts: Vec<serde_json::Value> = notification
        .alerts
        .iter()
        .take(limit)
        .map(|alert| {
            let resolved = alert.resolved_at(at);
            serde_json::json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": labels_json(&alert.labels),
                "annotations": alert.annotations,
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": if resolved { rfc3339(alert.ends_at) } else { "0001-01-01T00:00:00Z".to_owned() },
                "generatorURL": alert.generator_url,
                "fingerprint": fingerprint_hex(alert.fingerprint()),
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": notification.group_key.to_string(),
        "truncatedAlerts": notification.alerts.len().saturating_sub(alerts.len()),
        "status": notification.status(),
        "receiver": notification.receiver,
        "groupLabels": labels_json(&notification.group_key.labels),
        "commonLabels": labels_json(&common_labels(&notification.alerts)),
        "commonAnnotations": common_annotations(&notification.alerts),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

impl WebhookConfig {
    /// Sends one notification.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        notification: &Notification,
        external_url: &str,
    ) -> Result<(), SendError> {
        let url = read_secret(self.url.as_ref(), self.url_file.as_deref(), "url")?;
        let mut request = super::json_post(
            client,
            url.trim(),
            &payload(notification, external_url, self.max_alerts),
        );
        if !self.timeout.is_zero() {
            request = request.timeout(self.timeout.as_std());
        }
        exchange(request, &self.http_config).await.map(|_| ())
    }
}
