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

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde::de::IgnoredAny;
use sightline_core::yaml::Check;

use super::{Secret, TlsConfig, one_of};

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
