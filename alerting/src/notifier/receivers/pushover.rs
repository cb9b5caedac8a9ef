//! Pushover (`pushover_configs`): a form POST to the Pushover messages API.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#pushover_config>, with
//! Alertmanager's defaults (priority 2 while firing and 0 when resolved, retry 1m, expire 1h),
//! plus one key of ours: `api_url`, the endpoint (default
//! [`DEFAULT_API_URL`]), so tests and self-hosted gateways can stand in for Pushover.
//!
//! Edge cases decided here:
//! - `priority` is a template as in Alertmanager; a number (`priority: 1`) is read as its
//!   text.
//! - `user_key` or `user_key_file`, and `token` or `token_file`: exactly one of each.
//! - Sending: a form POST with `token`, `user`, `title` (cut to 250 characters), `message`
//!   (cut to 1024; `(no details)` when empty), `url` (cut to 512), `priority`, and `retry`
//!   and `expire` in seconds, plus the optional fields that are set; `html=1` or
//!   `monospace=1`. Delivered means a 2xx answer whose JSON has `"status": 1`; any other
//!   answer to a 2xx (garbage, empty, another status) is retried.

use serde::Deserialize;
use sightline_core::duration::Duration;
use sightline_core::yaml::{self, Check};

use super::{HttpConfig, Secret, SendError, exchange, one_of, read_secret};
use crate::notifier::message::Renderer;

/// Where notifications go unless `api_url` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.pushover.net/1/messages.json";

/// One Pushover integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverConfig {
    /// Whether resolved alerts are notified (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// HTTP client settings.
    #[serde(default, deserialize_with = "yaml::checked")]
    pub http_config: HttpConfig,
    /// The recipient's user key.
    pub user_key: Option<Secret>,
    /// A file holding the user key.
    pub user_key_file: Option<String>,
    /// The application token.
    pub token: Option<Secret>,
    /// A file holding the token.
    pub token_file: Option<String>,
    /// Title template.
    #[serde(default = "default_title")]
    pub title: String,
    /// Message template.
    #[serde(default = "default_message")]
    pub message: String,
    /// Supplementary URL template.
    #[serde(default = "default_url")]
    pub url: String,
    /// Title of the supplementary URL.
    pub url_title: Option<String>,
    /// Device to send to, all when unset.
    pub device: Option<String>,
    /// Notification sound.
    pub sound: Option<String>,
    /// Priority template (-2 to 2).
    #[serde(default = "default_priority")]
    pub priority: String,
    /// How often an emergency (priority 2) notification is repeated.
    #[serde(default = "default_retry")]
    pub retry: Duration,
    /// How long an emergency notification is repeated.
    #[serde(default = "default_expire")]
    pub expire: Duration,
    /// How long the message lives on the device; unset keeps it.
    pub ttl: Option<Duration>,
    /// Whether the message is HTML.
    #[serde(default)]
    pub html: bool,
    /// Whether the message is shown in a monospace font.
    #[serde(default)]
    pub monospace: bool,
    /// The endpoint (ours, not Alertmanager's).
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

impl Check for PushoverConfig {
    fn check(&self) -> Result<(), String> {
        one_of(
            self.user_key.is_some(),
            self.user_key_file.is_some(),
            "user_key",
            true,
        )?;
        one_of(
            self.token.is_some(),
            self.token_file.is_some(),
            "token",
            true,
        )?;
        if self.html && self.monospace {
            return Err("html and monospace cannot both be true".to_owned());
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn default_title() -> String {
    r#"{{ template "pushover.default.title" . }}"#.to_owned()
}
fn default_message() -> String {
    r#"{{ template "pushover.default.message" . }}"#.to_owned()
}
fn default_url() -> String {
    r#"{{ template "pushover.default.url" . }}"#.to_owned()
}
fn default_priority() -> String {
    r#"{{ if eq .Status "firing" }}2{{ else }}0{{ end }}"#.to_owned()
}
fn default_retry() -> Duration {
    Duration::from_secs(60)
}
fn default_expire() -> Duration {
    Duration::from_secs(3600)
}
fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

/// Cuts `text` to at most `max` characters.
fn cut(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text,
    }
}

impl PushoverConfig {
    /// The form fields of one notification.
    pub(crate) fn form(
        &self,
        renderer: &Renderer,
    ) -> Result<Vec<(&'static str, String)>, SendError> {
        let render = |name: &str, text: &str| {
            renderer
                .render(name, text)
                .map_err(|e| SendError::permanent(format!("pushover {name} template: {e}")))
        };
        let token = read_secret(self.token.as_ref(), self.token_file.as_deref(), "token")?;
        let user = read_secret(
            self.user_key.as_ref(),
            self.user_key_file.as_deref(),
            "user_key",
        )?;
        let mut message = cut(render("message", &self.message)?, 1024);
        if message.trim().is_empty() {
            message = "(no details)".to_owned();
        }
        let mut form = vec![
            ("token", token),
            ("user", user),
            ("title", cut(render("title", &self.title)?, 250)),
            ("message", message),
            ("url", cut(render("url", &self.url)?, 512)),
            (
                "priority",
                render("priority", &self.priority)?.trim().to_owned(),
            ),
            ("retry", self.retry.as_std().as_secs().to_string()),
            ("expire", self.expire.as_std().as_secs().to_string()),
        ];
        if let Some(title) = &self.url_title {
            form.push(("url_title", render("url_title", title)?));
        }
        if let Some(device) = &self.device {
            form.push(("device", render("device", device)?));
        }
        if let Some(sound) = &self.sound {
            form.push(("sound", render("sound", sound)?));
        }
        if let Some(ttl) = self.ttl {
            form.push(("ttl", ttl.as_std().as_secs().to_string()));
        }
        if self.html {
            form.push(("html", "1".to_owned()));
        }
        if self.monospace {
            form.push(("monospace", "1".to_owned()));
        }
        Ok(form)
    }

    /// Sends one notification.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        renderer: &Renderer,
    ) -> Result<(), SendError> {
        let form = self.form(renderer)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let request = client
            .post(&self.api_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let (_, body) = exchange(request, &self.http_config).await?;
        #[derive(Deserialize)]
        struct Answer {
            status: i64,
        }
        match serde_json::from_str::<Answer>(&body) {
            Ok(Answer { status: 1 }) => Ok(()),
            Ok(Answer { status }) => Err(SendError::retry(format!(
                "pushover answered status {status}: {}",
                body.trim()
            ))),
            Err(_) => Err(SendError::retry(format!(
                "pushover answered something that is not its JSON: {:?}",
                body.trim()
            ))),
        }
    }
}
