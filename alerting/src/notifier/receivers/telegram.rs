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
//! - Sending: a JSON POST to `<api_url>/bot<token>/sendMessage` with `chat_id`, `text` (cut
//!   to 4096 characters), `parse_mode` (left out when empty), `disable_notification` and
//!   `message_thread_id` when set. Delivered means a 2xx answer whose JSON has `"ok": true`,
//!   whatever `result` holds (`{"ok":true,"result":{}}` made Alertmanager 0.25 panic); any
//!   other answer to a 2xx is retried.

use serde::Deserialize;
use sightline_core::yaml::{self, Check};

use super::{HttpConfig, Secret, SendError, exchange, one_of, read_secret};
use crate::notifier::message::Renderer;

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

impl TelegramConfig {
    /// The `sendMessage` body of one notification.
    pub(crate) fn body(&self, renderer: &Renderer) -> Result<serde_json::Value, SendError> {
        let text = renderer
            .render("message", &self.message)
            .map_err(|e| SendError::permanent(format!("telegram message template: {e}")))?;
        let text: String = text.chars().take(4096).collect();
        let mut body = serde_json::json!({
            "chat_id": self.chat_id,
            "text": text,
            "disable_notification": self.disable_notifications,
        });
        if !self.parse_mode.is_empty() {
            body["parse_mode"] = self.parse_mode.clone().into();
        }
        if let Some(thread) = self.message_thread_id {
            body["message_thread_id"] = thread.into();
        }
        Ok(body)
    }

    /// Sends one notification.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        renderer: &Renderer,
    ) -> Result<(), SendError> {
        let token = read_secret(
            self.bot_token.as_ref(),
            self.bot_token_file.as_deref(),
            "bot_token",
        )?;
        let url = format!(
            "{}/bot{token}/sendMessage",
            self.api_url.trim_end_matches('/')
        );
        let request = super::json_post(client, &url, &self.body(renderer)?);
        let (_, answer) = exchange(request, &self.http_config).await?;
        #[derive(Deserialize)]
        struct Answer {
            ok: bool,
            #[serde(default)]
            description: String,
        }
        match serde_json::from_str::<Answer>(&answer) {
            Ok(Answer { ok: true, .. }) => Ok(()),
            Ok(Answer { description, .. }) => Err(SendError::retry(format!(
                "telegram answered ok=false: {description}"
            ))),
            Err(_) => Err(SendError::retry(format!(
                "telegram answered something that is not its JSON: {:?}",
                answer.trim()
            ))),
        }
    }
}
