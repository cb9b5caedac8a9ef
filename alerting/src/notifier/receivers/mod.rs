//! Receivers: a name and the integrations a notification for it goes to.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#receiver>. Sightline
//! sends through four integrations, one module each with its config and its sender:
//! [`pushover`], [`telegram`], [`webhook`] and [`email`]. Every other integration Alertmanager
//! knows (`slack_configs`, `pagerduty_configs`, …, see [`UNSUPPORTED_INTEGRATIONS`]) is read
//! without looking inside, so that an unchanged `alertmanager.yml` loads; the config lists a
//! warning for each, and alerts routed there are logged, not sent.
//!
//! Edge cases decided here:
//! - A receiver without integrations is valid (kube-prometheus's `null`, `Watchdog`): its
//!   alerts are routed and grouped but go nowhere.
//! - Secrets ([`Secret`]) never show in `Debug` output; the `*_file` forms are read when a
//!   notification is sent, as Alertmanager does, so a rotated file needs no reload.
//! - Of `http_config`, senders apply the credentials (`basic_auth`, `authorization`,
//!   `bearer_token(_file)`); proxy and TLS client settings are accepted and not applied.
//! - A send has one outcome: delivered, or a [`SendError`] saying whether a retry may help.

pub mod email;
pub mod pushover;
pub mod telegram;
pub mod webhook;

use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;
use sightline_core::yaml::{self, Check};

use self::email::EmailConfig;
use self::pushover::PushoverConfig;
use self::telegram::TelegramConfig;
use self::webhook::WebhookConfig;

/// The integration keys Alertmanager knows and Sightline does not send to.
pub const UNSUPPORTED_INTEGRATIONS: [&str; 14] = [
    "discord_configs",
    "incidentio_configs",
    "jira_configs",
    "mattermost_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "opsgenie_configs",
    "pagerduty_configs",
    "rocketchat_configs",
    "slack_configs",
    "sns_configs",
    "victorops_configs",
    "webex_configs",
    "wechat_configs",
];

/// A secret value (a token, a password): kept as written, hidden from `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A notification receiver as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// The name routes refer to; unique in the file.
    pub name: String,
    /// Pushover integrations.
    #[serde(default, deserialize_with = "yaml::checked_each")]
    pub pushover_configs: Vec<PushoverConfig>,
    /// Telegram integrations.
    #[serde(default, deserialize_with = "yaml::checked_each")]
    pub telegram_configs: Vec<TelegramConfig>,
    /// Webhook integrations.
    #[serde(default, deserialize_with = "yaml::checked_each")]
    pub webhook_configs: Vec<WebhookConfig>,
    /// E-mail integrations.
    #[serde(default, deserialize_with = "yaml::checked_each")]
    pub email_configs: Vec<EmailConfig>,
    /// Integrations Sightline does not send to, filled in after parsing.
    #[serde(skip)]
    pub unsupported: Vec<UnsupportedIntegration>,
    #[serde(default)]
    discord_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    incidentio_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    jira_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    mattermost_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    msteams_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    msteamsv2_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    opsgenie_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    pagerduty_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    rocketchat_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    slack_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    sns_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    victorops_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    webex_configs: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    wechat_configs: Option<Vec<IgnoredAny>>,
}

impl Check for Receiver {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a receiver needs a name".to_owned());
        }
        Ok(())
    }
}

impl Receiver {
    /// The unsupported integration keys this receiver has, with how many configs each, in
    /// [`UNSUPPORTED_INTEGRATIONS`] order.
    pub(crate) fn unsupported_keys(&self) -> Vec<(&'static str, usize)> {
        let all = [
            &self.discord_configs,
            &self.incidentio_configs,
            &self.jira_configs,
            &self.mattermost_configs,
            &self.msteams_configs,
            &self.msteamsv2_configs,
            &self.opsgenie_configs,
            &self.pagerduty_configs,
            &self.rocketchat_configs,
            &self.slack_configs,
            &self.sns_configs,
            &self.victorops_configs,
            &self.webex_configs,
            &self.wechat_configs,
        ];
        UNSUPPORTED_INTEGRATIONS
            .iter()
            .zip(all)
            .filter_map(|(key, configs)| configs.as_ref().map(|c| (*key, c.len())))
            .collect()
    }

    /// True when the receiver has no integration Sightline sends to.
    pub fn sends_nothing(&self) -> bool {
        self.pushover_configs.is_empty()
            && self.telegram_configs.is_empty()
            && self.webhook_configs.is_empty()
            && self.email_configs.is_empty()
    }
}

/// An integration Alertmanager supports and Sightline does not send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedIntegration {
    /// The key, such as `slack_configs`.
    pub kind: &'static str,
    /// How many configs the list holds.
    pub configs: usize,
    /// Where the list is.
    pub location: yaml::Location,
}

/// The HTTP client settings of an integration (`http_config`), the parts Sightline's sender
/// uses; the rest of Prometheus's HTTP client config is accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "private fields accept keys Sightline reads past")]
pub struct HttpConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header.
    pub authorization: Option<Authorization>,
    /// Deprecated bearer token.
    pub bearer_token: Option<Secret>,
    /// Deprecated bearer token file.
    pub bearer_token_file: Option<String>,
    /// A proxy for the requests.
    pub proxy_url: Option<String>,
    /// Hosts that bypass the proxy.
    pub no_proxy: Option<String>,
    /// Use the proxy named by the environment.
    #[serde(default)]
    pub proxy_from_environment: bool,
    /// TLS settings.
    pub tls_config: Option<TlsConfig>,
    /// Whether redirects are followed (default true).
    pub follow_redirects: Option<bool>,
    /// Whether HTTP/2 may be used (default true).
    pub enable_http2: Option<bool>,
    #[serde(default)]
    oauth2: Option<IgnoredAny>,
    #[serde(default)]
    proxy_connect_header: Option<IgnoredAny>,
    #[serde(default)]
    http_headers: Option<IgnoredAny>,
}

impl Check for HttpConfig {
    fn check(&self) -> Result<(), String> {
        let auths = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some() || self.bearer_token_file.is_some(),
            self.oauth2.is_some(),
        ];
        if auths.iter().filter(|set| **set).count() > 1 {
            return Err(
                "at most one of basic_auth, authorization, bearer_token(_file) and oauth2 may be set"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// Basic authentication of an HTTP client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// A file holding the user name.
    pub username_file: Option<String>,
    /// The password.
    pub password: Option<Secret>,
    /// A file holding the password.
    pub password_file: Option<String>,
}

/// An `Authorization` header of an HTTP client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme, `Bearer` by default.
    #[serde(default = "bearer", rename = "type")]
    pub kind: String,
    /// The credentials.
    pub credentials: Option<Secret>,
    /// A file holding the credentials.
    pub credentials_file: Option<String>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// TLS settings of a client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate (PEM).
    pub ca: Option<String>,
    /// CA certificate file.
    pub ca_file: Option<String>,
    /// Client certificate (PEM).
    pub cert: Option<String>,
    /// Client certificate file.
    pub cert_file: Option<String>,
    /// Client key (PEM).
    pub key: Option<Secret>,
    /// Client key file.
    pub key_file: Option<String>,
    /// The server name to verify.
    pub server_name: Option<String>,
    /// Skip verifying the server's certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Lowest TLS version (`TLS12`, `TLS13`).
    pub min_version: Option<String>,
    /// Highest TLS version.
    pub max_version: Option<String>,
}

/// Reads `value` and `value_file` style pairs: exactly one must be set when `required`.
pub(crate) fn one_of(value: bool, file: bool, name: &str, required: bool) -> Result<(), String> {
    match (value, file) {
        (true, true) => Err(format!("at most one of {name} and {name}_file may be set")),
        (false, false) if required => Err(format!("one of {name} or {name}_file is required")),
        _ => Ok(()),
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether trying again may help (no answer, a 5xx or 429, an answer that is not the
    /// integration's), as opposed to a refusal (another 4xx) or a broken template or secret.
    pub retryable: bool,
    /// What happened.
    pub message: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> SendError {
        SendError {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that retrying does not fix.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// A secret given inline or in a file (read at send time, so a rotated file needs no
/// reload).
pub(crate) fn read_secret(
    value: Option<&Secret>,
    file: Option<&str>,
    name: &str,
) -> Result<String, SendError> {
    match (value, file) {
        (Some(secret), _) => Ok(secret.expose().to_owned()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .map_err(|e| SendError::permanent(format!("cannot read {name}_file {path:?}: {e}"))),
        (None, None) => Err(SendError::permanent(format!("no {name} configured"))),
    }
}

/// Sends `request` and returns the status and body; no answer is retryable, and so is a
/// status of 5xx or 429, another non-2xx is not. The body is read to at most 64 KiB.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    http: &HttpConfig,
) -> Result<(reqwest::StatusCode, String), SendError> {
    let request = authorize(request, http)?;
    let response = request
        .send()
        .await
        .map_err(|e| SendError::retry(format!("no answer: {e}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| SendError::retry(format!("answer cut short: {e}")))?;
    let text = String::from_utf8_lossy(&body[..body.len().min(64 << 10)]).into_owned();
    if status.is_success() {
        return Ok((status, text));
    }
    let message = format!("answered {status}: {}", text.trim());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(SendError::retry(message))
    } else {
        Err(SendError::permanent(message))
    }
}

/// A POST of `body` as JSON.
pub(crate) fn json_post(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Adds the credentials of `http_config` to a request.
fn authorize(
    request: reqwest::RequestBuilder,
    http: &HttpConfig,
) -> Result<reqwest::RequestBuilder, SendError> {
    if let Some(basic) = &http.basic_auth {
        let username = match &basic.username_file {
            Some(path) => read_secret(None, Some(path), "username")?,
            None => basic.username.clone(),
        };
        let password = match (&basic.password, &basic.password_file) {
            (None, None) => None,
            (value, file) => Some(read_secret(value.as_ref(), file.as_deref(), "password")?),
        };
        return Ok(request.basic_auth(username, password));
    }
    if let Some(authorization) = &http.authorization {
        let credentials = read_secret(
            authorization.credentials.as_ref(),
            authorization.credentials_file.as_deref(),
            "credentials",
        )?;
        return Ok(request.header(
            reqwest::header::AUTHORIZATION,
            format!("{} {credentials}", authorization.kind),
        ));
    }
    if http.bearer_token.is_some() || http.bearer_token_file.is_some() {
        let token = read_secret(
            http.bearer_token.as_ref(),
            http.bearer_token_file.as_deref(),
            "bearer_token",
        )?;
        return Ok(request.bearer_auth(token));
    }
    Ok(request)
}
