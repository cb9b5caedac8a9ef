//! Telegram (`telegram_configs`): the Bot API's `sendMessage`.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#telegram_config>:
//! `api_url` defaults to the global `telegram_api_url` (itself `https://api.telegram.org`),
//! `parse_mode` to `HTML`.
//!
//! Edge cases decided here:
//! - `bot_token` or `bot_token_file` is required here or in `global`; `chat_id` is required
//!   and must not be 0.
//! - `parse_mode` is one of `Markdown`, `MarkdownV2`, `HTML` or empty (plain text).

use serde::Deserialize;
use sightline_core::yaml::{self, Check};

use super::{HttpConfig, Secret, one_of};

/// One Telegram integration. Empty `api_url` and token are filled in from `global`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Whether resolved alerts are notified (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// HTTP client settings.
    #[serde(default, deserialize_with = "yaml::checked")]
    pub http_config: HttpConfig,
    /// The Bot API base URL.
    #[serde(default)]
    pub api_url: String,
    /// The bot's token.
    pub bot_token: Option<Secret>,
    /// A file holding the bot's token.
    pub bot_token_file: Option<String>,
    /// The chat to post to.
    #[serde(default)]
    pub chat_id: i64,
    /// The forum topic to post to.
    pub message_thread_id: Option<i64>,
    /// Message template.
    #[serde(default = "default_message")]
    pub message: String,
    /// Send silently.
    #[serde(default)]
    pub disable_notifications: bool,
    /// How Telegram formats the message.
    #[serde(default = "default_parse_mode")]
    pub parse_mode: String,
}

impl Check for TelegramConfig {
    fn check(&self) -> Result<(), String> {
        one_of(
            self.bot_token.is_some(),
            self.bot_token_file.is_some(),
            "bot_token",
            false,
        )?;
        if self.chat_id == 0 {
            return Err("chat_id is required".to_owned());
        }
        if !matches!(
            self.parse_mode.as_str(),
            "" | "Markdown" | "MarkdownV2" | "HTML"
        ) {
            return Err(format!(
                "parse_mode {:?} is not one of Markdown, MarkdownV2, HTML or empty",
                self.parse_mode
            ));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn default_message() -> String {
    r#"{{ template "telegram.default.message" . }}"#.to_owned()
}
fn default_parse_mode() -> String {
    "HTML".to_owned()
}
