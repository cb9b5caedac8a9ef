//! E-mail (`email_configs`): SMTP, with STARTTLS and authentication.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#email_config>: `from`,
//! `smarthost`, `hello`, the `auth_*` fields and `require_tls` default to the global `smtp_*`
//! settings, and the config is rejected when `smarthost` or `from` is set in neither place.
//!
//! Edge cases decided here:
//! - `to` is required. `smarthost` is `host:port`; a missing port is an error, as in
//!   Alertmanager.
//! - `headers` names are case-insensitive: `subject` and `Subject` together are an error.
//! - `send_resolved` defaults to false, as Alertmanager's does for e-mail.
//! - Sending (through `lettre`): implicit TLS when `force_implicit_tls` is set or the port is
//!   465; otherwise STARTTLS when `require_tls` (the default; a server without STARTTLS is an
//!   error), plain SMTP when `require_tls: false`, as Alertmanager does. Authentication when
//!   `auth_username` is set (PLAIN or LOGIN, as the server offers). `to` may list several
//!   addresses separated by commas. The subject is the `Subject` header (a template,
//!   default `email.default.subject`); other `headers` are not sent. The body is `html`,
//!   with `text` as the plain alternative when set. A refusal (5xx) is not retried.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde::de::IgnoredAny;
use sightline_core::yaml::Check;

use super::{Secret, SendError, TlsConfig, one_of, read_secret};
use crate::notifier::message::Renderer;

/// One e-mail integration. Unset fields are filled in from `global` when the config loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "private fields accept keys Sightline reads past")]
pub struct EmailConfig {
    /// Whether resolved alerts are notified (default false).
    #[serde(default)]
    pub send_resolved: bool,
    /// Recipients (a template).
    #[serde(default)]
    pub to: String,
    /// Sender (a template); from `smtp_from` when unset.
    #[serde(default)]
    pub from: String,
    /// `host:port` of the SMTP server; from `smtp_smarthost` when unset.
    #[serde(default)]
    pub smarthost: String,
    /// The name given in HELO/EHLO; from `smtp_hello`.
    #[serde(default)]
    pub hello: String,
    /// SMTP user; from `smtp_auth_username`.
    #[serde(default)]
    pub auth_username: String,
    /// SMTP password; from `smtp_auth_password`.
    pub auth_password: Option<Secret>,
    /// A file holding the SMTP password.
    pub auth_password_file: Option<String>,
    /// CRAM-MD5 secret.
    pub auth_secret: Option<Secret>,
    /// A file holding the CRAM-MD5 secret.
    pub auth_secret_file: Option<String>,
    /// PLAIN identity; from `smtp_auth_identity`.
    #[serde(default)]
    pub auth_identity: String,
    /// Extra headers (templates).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTML body template.
    #[serde(default = "default_html")]
    pub html: String,
    /// Plain-text body template.
    #[serde(default)]
    pub text: String,
    /// Whether STARTTLS is required; from `smtp_require_tls` (default true).
    pub require_tls: Option<bool>,
    /// Whether to speak TLS from the start (port 465); from `smtp_force_implicit_tls`.
    pub force_implicit_tls: Option<bool>,
    /// TLS settings.
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    threading: Option<IgnoredAny>,
}

impl Check for EmailConfig {
    fn check(&self) -> Result<(), String> {
        if self.to.is_empty() {
            return Err("`to` is required: the address to send to".to_owned());
        }
        one_of(
            self.auth_password.is_some(),
            self.auth_password_file.is_some(),
            "auth_password",
            false,
        )?;
        one_of(
            self.auth_secret.is_some(),
            self.auth_secret_file.is_some(),
            "auth_secret",
            false,
        )?;
        let mut seen = HashSet::new();
        for name in self.headers.keys() {
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(format!(
                    "header {name:?} is given twice (names ignore case)"
                ));
            }
        }
        if !self.smarthost.is_empty() {
            check_host_port(&self.smarthost)?;
        }
        Ok(())
    }
}

/// `host:port` (IPv6 in brackets), as Alertmanager requires for a smarthost.
pub(crate) fn check_host_port(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("smarthost {address:?} must be host:port")),
    }
}

fn default_html() -> String {
    r#"{{ template "email.default.html" . }}"#.to_owned()
}

/// The default subject when `headers` has no `Subject`.
const DEFAULT_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

impl EmailConfig {
    fn message(&self, renderer: &Renderer) -> Result<lettre::Message, SendError> {
        use lettre::message::{MultiPart, SinglePart};
        let render = |name: &str, text: &str| {
            renderer
                .render(name, text)
                .map_err(|e| SendError::permanent(format!("email {name} template: {e}")))
        };
        let address = |name: &str, text: &str| {
            text.trim()
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| SendError::permanent(format!("email {name} {text:?}: {e}")))
        };
        let subject_template = self
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("subject"))
            .map_or(DEFAULT_SUBJECT, |(_, value)| value.as_str());
        let mut builder = lettre::Message::builder()
            .from(address("from", &render("from", &self.from)?)?)
            .subject(render("subject", subject_template)?);
        for recipient in render("to", &self.to)?
            .split(',')
            .filter(|r| !r.trim().is_empty())
        {
            builder = builder.to(address("to", recipient)?);
        }
        let html = SinglePart::html(render("html", &self.html)?);
        let built = if self.text.is_empty() {
            builder.singlepart(html)
        } else {
            let text = SinglePart::plain(render("text", &self.text)?);
            builder.multipart(MultiPart::alternative().singlepart(text).singlepart(html))
        };
        built.map_err(|e| SendError::permanent(format!("email message: {e}")))
    }

    /// Sends one notification.
    pub(crate) async fn send(&self, renderer: &Renderer) -> Result<(), SendError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        use lettre::transport::smtp::extension::ClientId;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

        let message = self.message(renderer)?;
        let (host, port) = self
            .smarthost
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                SendError::permanent(format!("smarthost {:?} must be host:port", self.smarthost))
            })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let insecure = self
            .tls_config
            .as_ref()
            .is_some_and(|tls| tls.insecure_skip_verify);
        let server_name = self
            .tls_config
            .as_ref()
            .and_then(|tls| tls.server_name.clone())
            .unwrap_or_else(|| host.to_owned());
        let parameters = || {
            TlsParameters::builder(server_name.clone())
                .dangerous_accept_invalid_certs(insecure)
                .build_rustls()
                .map_err(|e| SendError::permanent(format!("email TLS settings: {e}")))
        };
        let tls = if self.force_implicit_tls.unwrap_or(port == 465) {
            Tls::Wrapper(parameters()?)
        } else if self.require_tls.unwrap_or(true) {
            Tls::Required(parameters()?)
        } else {
            Tls::None
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .hello_name(ClientId::Domain(self.hello.clone()))
            .timeout(Some(std::time::Duration::from_secs(10)));
        if !self.auth_username.is_empty() {
            let password = read_secret(
                self.auth_password.as_ref(),
                self.auth_password_file.as_deref(),
                "auth_password",
            )?;
            transport =
                transport.credentials(Credentials::new(self.auth_username.clone(), password));
        }
        match transport.build().send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!("SMTP refused: {e}"))),
            Err(e) => Err(SendError::retry(format!("SMTP: {e}"))),
        }
    }
}
