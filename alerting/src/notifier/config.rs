//! Alertmanager's configuration file: read, checked and resolved.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/>: top-level `global`,
//! `route`, `inhibit_rules`, `receivers`, `templates`, `time_intervals`, the deprecated
//! `mute_time_intervals`, and `tracing` (accepted, unused). Every key Alertmanager documents
//! is accepted; an unknown key is an error, as it is for Alertmanager.
//!
//! Reading takes two passes. The first ([`sightline_core::yaml`]) stops at the first syntax
//! error, unknown key, wrong type or problem inside one section (a bad matcher, a zero
//! `group_interval`, a pushover config without `token`), pointing at the node. The second
//! checks across sections, as Alertmanager does, and reports every problem found, each at the
//! node at fault:
//! - the root route exists, names a receiver, and has no matchers, no `continue` and no
//!   mute or active time intervals;
//! - receiver names are unique, and every route's receiver exists;
//! - time interval names are unique over `time_intervals` and `mute_time_intervals`, and every
//!   interval a route names exists;
//! - an e-mail config has `smarthost` and `from`, here or as global `smtp_*`; a Telegram
//!   config has a bot token, here or as global `telegram_bot_token(_file)`.
//!
//! Edge cases decided here:
//! - Global defaults are copied into each integration when the config loads (e-mail SMTP
//!   settings, Telegram API URL and token), as Alertmanager does, so a sender reads one
//!   struct.
//! - Integrations Sightline does not send to (Slack, PagerDuty, …) are accepted unread and
//!   listed by [`AlertmanagerConfig::warnings`]; routing to their receivers still works.
//! - `templates` are kept as written; [`AlertmanagerConfig::template_patterns`] resolves
//!   them against the config file's folder, as Alertmanager does.
//! - YAML merge keys (`<<:`) are not applied.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use sightline_core::duration::Duration;
use sightline_core::yaml::{self, Check, Location, SourceError};

use super::error::{ConfigError, Problem};
use super::inhibit::InhibitRule;
use super::receivers::{HttpConfig, Receiver, Secret, TlsConfig, UnsupportedIntegration};
use super::route::{Route, RouteConfig};
use super::time_interval::TimeInterval;
use sightline_core::yaml::{Step, locate};

/// Alertmanager's default `resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `telegram_api_url`.
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// The `global` section: defaults for the rest of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "private fields accept keys Sightline reads past")]
pub struct GlobalConfig {
    /// How long after its last update an alert without an end time counts as resolved.
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: Duration,
    /// Default HTTP client settings.
    #[serde(default, deserialize_with = "yaml::checked")]
    pub http_config: HttpConfig,
    /// Default e-mail sender.
    #[serde(default)]
    pub smtp_from: String,
    /// Default HELO/EHLO name.
    #[serde(default = "default_hello")]
    pub smtp_hello: String,
    /// Default SMTP server, `host:port`.
    #[serde(default)]
    pub smtp_smarthost: String,
    /// Default SMTP user.
    #[serde(default)]
    pub smtp_auth_username: String,
    /// Default SMTP password.
    pub smtp_auth_password: Option<Secret>,
    /// Default SMTP password file.
    pub smtp_auth_password_file: Option<String>,
    /// Default PLAIN identity.
    #[serde(default)]
    pub smtp_auth_identity: String,
    /// Default CRAM-MD5 secret.
    pub smtp_auth_secret: Option<Secret>,
    /// Default CRAM-MD5 secret file.
    pub smtp_auth_secret_file: Option<String>,
    /// Whether STARTTLS is required by default.
    #[serde(default = "yes")]
    pub smtp_require_tls: bool,
    /// Default SMTP TLS settings.
    pub smtp_tls_config: Option<TlsConfig>,
    /// Whether to speak TLS from the start by default.
    pub smtp_force_implicit_tls: Option<bool>,
    /// Default Telegram Bot API URL.
    #[serde(default = "default_telegram_api_url")]
    pub telegram_api_url: String,
    /// Default Telegram bot token.
    pub telegram_bot_token: Option<Secret>,
    /// Default Telegram bot token file.
    pub telegram_bot_token_file: Option<String>,
    // Settings of integrations Sightline does not send to: accepted, unused.
    #[serde(default)]
    slack_api_url: Option<IgnoredAny>,
    #[serde(default)]
    slack_api_url_file: Option<IgnoredAny>,
    #[serde(default)]
    slack_app_token: Option<IgnoredAny>,
    #[serde(default)]
    slack_app_token_file: Option<IgnoredAny>,
    #[serde(default)]
    slack_app_url: Option<IgnoredAny>,
    #[serde(default)]
    victorops_api_key: Option<IgnoredAny>,
    #[serde(default)]
    victorops_api_key_file: Option<IgnoredAny>,
    #[serde(default)]
    victorops_api_url: Option<IgnoredAny>,
    #[serde(default)]
    pagerduty_url: Option<IgnoredAny>,
    #[serde(default)]
    opsgenie_api_key: Option<IgnoredAny>,
    #[serde(default)]
    opsgenie_api_key_file: Option<IgnoredAny>,
    #[serde(default)]
    opsgenie_api_url: Option<IgnoredAny>,
    #[serde(default)]
    wechat_api_url: Option<IgnoredAny>,
    #[serde(default)]
    wechat_api_secret: Option<IgnoredAny>,
    #[serde(default)]
    wechat_api_secret_file: Option<IgnoredAny>,
    #[serde(default)]
    wechat_api_corp_id: Option<IgnoredAny>,
    #[serde(default)]
    webex_api_url: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_api_url: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_token: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_token_file: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_token_id: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_token_id_file: Option<IgnoredAny>,
    #[serde(default)]
    jira_api_url: Option<IgnoredAny>,
    #[serde(default)]
    mattermost_webhook_url: Option<IgnoredAny>,
    #[serde(default)]
    mattermost_webhook_url_file: Option<IgnoredAny>,
}

/// The defaults of an absent `global` section, field by field as serde fills them in.
impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            http_config: HttpConfig::default(),
            smtp_from: String::new(),
            smtp_hello: default_hello(),
            smtp_smarthost: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_identity: String::new(),
            smtp_auth_secret: None,
            smtp_auth_secret_file: None,
            smtp_require_tls: true,
            smtp_tls_config: None,
            smtp_force_implicit_tls: None,
            telegram_api_url: default_telegram_api_url(),
            telegram_bot_token: None,
            telegram_bot_token_file: None,
            slack_api_url: None,
            slack_api_url_file: None,
            slack_app_token: None,
            slack_app_token_file: None,
            slack_app_url: None,
            victorops_api_key: None,
            victorops_api_key_file: None,
            victorops_api_url: None,
            pagerduty_url: None,
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            opsgenie_api_url: None,
            wechat_api_url: None,
            wechat_api_secret: None,
            wechat_api_secret_file: None,
            wechat_api_corp_id: None,
            webex_api_url: None,
            rocketchat_api_url: None,
            rocketchat_token: None,
            rocketchat_token_file: None,
            rocketchat_token_id: None,
            rocketchat_token_id_file: None,
            jira_api_url: None,
            mattermost_webhook_url: None,
            mattermost_webhook_url_file: None,
        }
    }
}

impl Check for GlobalConfig {
    fn check(&self) -> Result<(), String> {
        if !self.smtp_smarthost.is_empty() {
            super::receivers::email::check_host_port(&self.smtp_smarthost)
                .map_err(|e| format!("smtp_{e}"))?;
        }
        if self.smtp_auth_password.is_some() && self.smtp_auth_password_file.is_some() {
            return Err(
                "at most one of smtp_auth_password and smtp_auth_password_file may be set"
                    .to_owned(),
            );
        }
        if self.telegram_bot_token.is_some() && self.telegram_bot_token_file.is_some() {
            return Err(
                "at most one of telegram_bot_token and telegram_bot_token_file may be set"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

fn default_resolve_timeout() -> Duration {
    DEFAULT_RESOLVE_TIMEOUT
}
fn default_hello() -> String {
    "localhost".to_owned()
}
fn default_telegram_api_url() -> String {
    DEFAULT_TELEGRAM_API_URL.to_owned()
}
fn yes() -> bool {
    true
}

/// The notifier's config when Sightline's config names none: every alert goes to a
/// receiver that sends nothing (alerts are still shown, grouped and silenced by the API).
pub const DEFAULT_NOTIFIER_CONFIG: &str =
    "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n";

/// The top-level key of Sightline's config under which an Alertmanager config may be
/// written inline.
pub const INLINE_KEY: &str = "alertmanager";

/// A larger file with an inline Alertmanager config; other keys are skipped.
#[derive(Debug, Deserialize)]
struct Inline {
    #[serde(default)]
    alertmanager: Option<RawConfig>,
}

/// The file as written (first pass).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "private fields accept keys Sightline reads past")]
struct RawConfig {
    #[serde(default, deserialize_with = "yaml::checked")]
    global: GlobalConfig,
    #[serde(default)]
    route: Option<RouteConfig>,
    #[serde(default, deserialize_with = "yaml::checked_each")]
    inhibit_rules: Vec<InhibitRule>,
    #[serde(default, deserialize_with = "yaml::checked_each")]
    receivers: Vec<Receiver>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default, deserialize_with = "yaml::checked_each")]
    time_intervals: Vec<TimeInterval>,
    #[serde(default, deserialize_with = "yaml::checked_each")]
    mute_time_intervals: Vec<TimeInterval>,
    #[serde(default)]
    tracing: Option<IgnoredAny>,
}

/// Something that loads but will not behave as the file's author may expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub location: Location,
    /// What happens instead; names the location itself.
    pub message: String,
}

/// The message, which already names the location.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A loaded and checked Alertmanager configuration.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// The file it was read from, as named.
    pub path: PathBuf,
    /// Global settings (already copied into the integrations that use them).
    pub global: GlobalConfig,
    /// The routing tree.
    pub route: Route,
    /// Inhibit rules.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Receivers, in file order.
    pub receivers: Vec<Receiver>,
    /// Notification template globs as written.
    pub templates: Vec<String>,
    /// Named time intervals, from `time_intervals` then `mute_time_intervals`.
    pub time_intervals: Vec<TimeInterval>,
    warnings: Vec<Warning>,
}

impl AlertmanagerConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<AlertmanagerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Reads and checks `text`, naming `path_for_messages` in errors and warnings.
    pub fn parse(path_for_messages: &Path, text: &str) -> Result<AlertmanagerConfig, ConfigError> {
        let raw: RawConfig = yaml::from_str(path_for_messages, text)?;
        Self::resolve(path_for_messages, text, None, raw)
    }

    /// Reads and checks the Alertmanager config written inline under the top-level
    /// [`INLINE_KEY`] (`alertmanager:`) of a larger YAML file, Sightline's own config; every
    /// other top-level key is skipped. Positions are the file's, and paths in messages start
    /// with `alertmanager.`. `Ok(None)` when the file has no such key.
    pub fn parse_inline(
        path_for_messages: &Path,
        text: &str,
    ) -> Result<Option<AlertmanagerConfig>, ConfigError> {
        let inline: Inline = yaml::from_str(path_for_messages, text)?;
        inline
            .alertmanager
            .map(|raw| Self::resolve(path_for_messages, text, Some(INLINE_KEY), raw))
            .transpose()
    }

    fn resolve(
        path_for_messages: &Path,
        text: &str,
        section: Option<&'static str>,
        raw: RawConfig,
    ) -> Result<AlertmanagerConfig, ConfigError> {
        let mut checker = Checker {
            path: path_for_messages,
            text,
            base: section.map(Step::Key).into_iter().collect(),
            problems: Vec::new(),
        };
        let RawConfig {
            global,
            route,
            inhibit_rules,
            mut receivers,
            templates,
            mut time_intervals,
            mute_time_intervals,
            tracing: _,
        } = raw;
        let (receiver_names, warnings) = checker.receivers(&mut receivers, &global);
        let interval_names = checker.time_interval_names(&time_intervals, &mute_time_intervals);
        time_intervals.extend(mute_time_intervals);
        let names = References {
            receivers: &receiver_names,
            intervals: &interval_names,
        };
        match &route {
            Some(root) => checker.root_route(root, &names),
            None => {
                let problem = checker.missing_route();
                checker.problems.push(problem);
            }
        }
        checker.finish()?;
        let route = route.ok_or_else(|| ConfigError::Invalid {
            problems: vec![checker.missing_route()],
        })?;
        Ok(AlertmanagerConfig {
            path: path_for_messages.to_owned(),
            global,
            route: Route::new(route),
            inhibit_rules,
            receivers,
            templates,
            time_intervals,
            warnings,
        })
    }

    /// The notifier's config as Sightline's config `sightline` (read from `source`) names
    /// it: the file of `alertmanager_config_file` (relative to the config's folder), the
    /// inline `alertmanager:` section (positions in the Sightline config file), or, with
    /// neither, [`DEFAULT_NOTIFIER_CONFIG`].
    pub fn from_sightline(
        sightline: &sightline_core::config::Config,
        source: &sightline_core::config::ConfigSource,
    ) -> Result<AlertmanagerConfig, ConfigError> {
        use sightline_core::config::{ConfigSource, DEFAULT_CONFIG};
        if let Some(path) = sightline.alertmanager_config_path(source.base_dir()) {
            return Self::load(&path);
        }
        if sightline.alertmanager.is_some() {
            let (path, text) = match source {
                ConfigSource::File(path) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|source| SourceError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    (path.clone(), text)
                }
                ConfigSource::Embedded => (
                    PathBuf::from("<embedded default>"),
                    DEFAULT_CONFIG.to_owned(),
                ),
            };
            if let Some(config) = Self::parse_inline(&path, &text)? {
                return Ok(config);
            }
        }
        Self::parse(
            Path::new("<default notifier config>"),
            DEFAULT_NOTIFIER_CONFIG,
        )
    }

    /// What loads but is not sent: one warning per unsupported integration, such as
    /// `unsupported receiver integration slack_configs in receiver "team-X" at
    /// file:line:col; alerts routed there are logged, not sent`.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|receiver| receiver.name == name)
    }

    /// The time interval named `name`.
    pub fn time_interval(&self, name: &str) -> Option<&TimeInterval> {
        self.time_intervals
            .iter()
            .find(|interval| interval.name == name)
    }

    /// The `templates` globs, relative ones resolved against the config file's folder.
    pub fn template_patterns(&self) -> Vec<PathBuf> {
        let folder = self.path.parent().unwrap_or(Path::new(""));
        self.templates
            .iter()
            .map(|pattern| folder.join(pattern))
            .collect()
    }

    /// Whether a route node with these mute/active intervals sends at `at`: not in any mute
    /// interval, and in one of its active intervals when it names any. Unknown names (which a
    /// loaded config does not have) count as not containing `at`.
    pub fn route_active_at<Z: chrono::TimeZone>(
        &self,
        opts: &super::route::RouteOpts,
        at: &chrono::DateTime<Z>,
    ) -> bool {
        let contains = |name: &String| self.time_interval(name).is_some_and(|i| i.contains(at));
        let muted = opts.mute_time_intervals.iter().any(contains);
        let active = opts.active_time_intervals.is_empty()
            || opts.active_time_intervals.iter().any(contains);
        active && !muted
    }
}

/// Copies the global SMTP settings into an e-mail config that does not set them.
fn inherit_email(email: &mut super::receivers::email::EmailConfig, global: &GlobalConfig) {
    let fill = |field: &mut String, from: &String| {
        if field.is_empty() {
            field.clone_from(from);
        }
    };
    fill(&mut email.from, &global.smtp_from);
    fill(&mut email.smarthost, &global.smtp_smarthost);
    fill(&mut email.hello, &global.smtp_hello);
    fill(&mut email.auth_username, &global.smtp_auth_username);
    fill(&mut email.auth_identity, &global.smtp_auth_identity);
    if email.auth_password.is_none() && email.auth_password_file.is_none() {
        email.auth_password = global.smtp_auth_password.clone();
        email.auth_password_file = global.smtp_auth_password_file.clone();
    }
    if email.auth_secret.is_none() && email.auth_secret_file.is_none() {
        email.auth_secret = global.smtp_auth_secret.clone();
        email.auth_secret_file = global.smtp_auth_secret_file.clone();
    }
    email.require_tls = email.require_tls.or(Some(global.smtp_require_tls));
    email.force_implicit_tls = email.force_implicit_tls.or(global.smtp_force_implicit_tls);
    if email.tls_config.is_none() {
        email.tls_config = global.smtp_tls_config.clone();
    }
}

struct References<'a> {
    receivers: &'a HashSet<String>,
    intervals: &'a HashSet<String>,
}

/// The second pass: problems across sections, each located in the text.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    /// The path to the config inside the file: empty, or the key of an inline section.
    base: Vec<Step<'static>>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn location(&self, path: &[Step]) -> Location {
        let mut full = self.base.clone();
        full.extend_from_slice(path);
        Location {
            file: self.path.to_owned(),
            line_column: locate(self.text, &full),
        }
    }

    fn report(&mut self, path: &[Step], message: String) {
        let location = self.location(path);
        self.problems.push(Problem { location, message });
    }

    /// Receivers: unique names, global defaults copied in, settings required here or in
    /// `global`, and a warning per unsupported integration. Returns the names and warnings.
    fn receivers(
        &mut self,
        receivers: &mut [Receiver],
        global: &GlobalConfig,
    ) -> (HashSet<String>, Vec<Warning>) {
        let mut names = HashSet::new();
        let mut warnings = Vec::new();
        for (index, receiver) in receivers.iter_mut().enumerate() {
            let at = |rest: &[Step<'static>]| {
                let mut path = vec![Step::Key("receivers"), Step::Index(index)];
                path.extend_from_slice(rest);
                path
            };
            if !names.insert(receiver.name.clone()) {
                self.report(
                    &at(&[Step::Key("name")]),
                    format!("receiver name {:?} is used twice", receiver.name),
                );
            }
            for (j, email) in receiver.email_configs.iter_mut().enumerate() {
                let here = at(&[Step::Key("email_configs"), Step::Index(j)]);
                inherit_email(email, global);
                if email.smarthost.is_empty() {
                    self.report(
                        &here,
                        "email config has no smarthost, and global smtp_smarthost is not set"
                            .to_owned(),
                    );
                }
                if email.from.is_empty() {
                    self.report(
                        &here,
                        "email config has no from, and global smtp_from is not set".to_owned(),
                    );
                }
            }
            for (j, telegram) in receiver.telegram_configs.iter_mut().enumerate() {
                if telegram.api_url.is_empty() {
                    telegram.api_url.clone_from(&global.telegram_api_url);
                }
                if telegram.bot_token.is_none() && telegram.bot_token_file.is_none() {
                    telegram.bot_token.clone_from(&global.telegram_bot_token);
                    telegram
                        .bot_token_file
                        .clone_from(&global.telegram_bot_token_file);
                }
                if telegram.bot_token.is_none() && telegram.bot_token_file.is_none() {
                    self.report(
                        &at(&[Step::Key("telegram_configs"), Step::Index(j)]),
                        "telegram config has no bot_token or bot_token_file, and global \
                         telegram_bot_token is not set"
                            .to_owned(),
                    );
                }
            }
            for (kind, configs) in receiver.unsupported_keys() {
                let location = self.location(&at(&[Step::Key(kind)]));
                warnings.push(Warning {
                    message: format!(
                        "unsupported receiver integration {kind} in receiver {:?} at {location}; \
                         alerts routed there are logged, not sent",
                        receiver.name
                    ),
                    location: location.clone(),
                });
                receiver.unsupported.push(UnsupportedIntegration {
                    kind,
                    configs,
                    location,
                });
            }
        }
        (names, warnings)
    }

    /// Time interval names, unique over `time_intervals` and `mute_time_intervals`.
    fn time_interval_names(
        &mut self,
        time_intervals: &[TimeInterval],
        mute_time_intervals: &[TimeInterval],
    ) -> HashSet<String> {
        let mut names = HashSet::new();
        let lists = [
            ("time_intervals", time_intervals),
            ("mute_time_intervals", mute_time_intervals),
        ];
        for (key, list) in lists {
            for (index, interval) in list.iter().enumerate() {
                if !names.insert(interval.name.clone()) {
                    self.report(
                        &[Step::Key(key), Step::Index(index), Step::Key("name")],
                        format!("time interval name {:?} is used twice", interval.name),
                    );
                }
            }
        }
        names
    }

    /// The root route's own rules, then the references of the whole tree.
    fn root_route(&mut self, root: &RouteConfig, names: &References<'_>) {
        let root_path = [Step::Key("route")];
        if root.receiver.as_deref().unwrap_or("").is_empty() {
            self.report(
                &root_path,
                "the root route must name a default receiver".to_owned(),
            );
        }
        for (key, set) in [
            ("matchers", !root.matchers.is_empty()),
            ("match", !root.match_equal.is_empty()),
            ("match_re", !root.match_re.is_empty()),
        ] {
            if set {
                self.report(
                    &[Step::Key("route"), Step::Key(key)],
                    "the root route must not have matchers: it receives every alert".to_owned(),
                );
            }
        }
        if root.continue_matching {
            self.report(
                &[Step::Key("route"), Step::Key("continue")],
                "the root route cannot have continue: it has no siblings".to_owned(),
            );
        }
        for (key, set) in [
            ("mute_time_intervals", !root.mute_time_intervals.is_empty()),
            (
                "active_time_intervals",
                !root.active_time_intervals.is_empty(),
            ),
        ] {
            if set {
                self.report(
                    &[Step::Key("route"), Step::Key(key)],
                    format!("the root route must not have {key}"),
                );
            }
        }
        self.route_references(root, &root_path, names);
    }

    fn route_references(&mut self, route: &RouteConfig, path: &[Step], names: &References<'_>) {
        let with = |rest: &[Step<'static>]| {
            let mut full = path.to_vec();
            full.extend_from_slice(rest);
            full
        };
        if let Some(receiver) = route.receiver.as_deref().filter(|r| !r.is_empty())
            && !names.receivers.contains(receiver)
        {
            self.report(
                &with(&[Step::Key("receiver")]),
                format!("route names receiver {receiver:?}, which is not defined in receivers"),
            );
        }
        for key in ["mute_time_intervals", "active_time_intervals"] {
            let list = if key == "mute_time_intervals" {
                &route.mute_time_intervals
            } else {
                &route.active_time_intervals
            };
            for (index, name) in list.iter().enumerate() {
                if !names.intervals.contains(name) {
                    self.report(
                        &with(&[Step::Key(key), Step::Index(index)]),
                        format!("route names time interval {name:?}, which is not defined in time_intervals"),
                    );
                }
            }
        }
        for (index, child) in route.routes.iter().enumerate() {
            self.route_references(
                child,
                &with(&[Step::Key("routes"), Step::Index(index)]),
                names,
            );
        }
    }

    fn missing_route(&self) -> Problem {
        Problem {
            location: self.location(&[]),
            message: "no route: the config needs a root `route` naming a default receiver"
                .to_owned(),
        }
    }

    /// The error listing every problem reported, in file order, if there is any.
    fn finish(&mut self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let mut problems = std::mem::take(&mut self.problems);
        problems.sort_by_key(|problem| problem.location.line_column);
        Err(ConfigError::Invalid { problems })
    }
}
