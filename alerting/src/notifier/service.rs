//! The running notifier: the [`Dispatcher`] behind a lock, its state files in the data
//! directory, and the senders with their retries.
//!
//! Edge cases decided here:
//! - State lives in `<data>/alertmanager/`: `silences.json` and `nflog.json` (see
//!   [`super::silence`] and [`super::nflog`]). Alerts themselves are not persisted, as in
//!   Alertmanager: Prometheus (and the rule manager here) sends them again within a minute.
//! - A send is retried with exponential backoff ([`RetryPolicy`]) while it fails with a
//!   retryable error and the group's next flush has not come (Alertmanager's deadline);
//!   each failure is logged with the receiver, integration and group. A send never holds
//!   the dispatcher's lock, so a receiver that hangs blocks nothing but its own retries.
//! - The last 200 deliveries, delivered or failed, are kept in memory for the UI's
//!   notification history ([`Notifier::history`]); the nflog, not this, prevents repeats.
//! - Every method that depends on time has a form taking `now` (Unix ms), so tests drive
//!   the clock; [`Notifier::run`] ticks with the wall clock once a second.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use sightline_core::labels::Labels;
use tokio_util::sync::CancellationToken;

use super::alert::PostedAlert;
use super::config::AlertmanagerConfig;
use super::dispatch::{Dispatcher, IntegrationKind, Notification};
use super::message::Renderer;
use super::metrics::NotifierMetrics;
use super::nflog::NotificationLog;
use super::receivers::SendError;
use super::silence::Silences;

/// How often [`Notifier::run`] looks for due groups.
const TICK: Duration = Duration::from_secs(1);

/// The timeout of one attempt to send.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How sends are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 1 s, doubling to at most 1 min.
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The outcome of one notification, after its retries.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// What was sent.
    pub notification: Notification,
    /// How many attempts were made.
    pub attempts: u32,
    /// Delivered, or the last error.
    pub result: Result<(), SendError>,
}

/// How many deliveries [`Notifier::history`] keeps.
const HISTORY_LEN: usize = 200;

/// One notification as the history shows it: what was sent where, and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// When the group was flushed (ms).
    pub at: i64,
    /// The receiver's name.
    pub receiver: String,
    /// Which of its integrations, such as `pushover[0]`.
    pub integration: String,
    /// The group's labels.
    pub group: Labels,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// The alerts' names, firing ones first.
    pub alerts: Vec<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last error, when it was not delivered.
    pub error: Option<String>,
}

/// The wall clock in Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The notifier as the server runs it.
pub struct Notifier {
    dispatcher: Mutex<Dispatcher>,
    client: reqwest::Client,
    retry: RetryPolicy,
    external_url: RwLock<String>,
    templates: RwLock<Arc<Vec<String>>>,
    history: Mutex<VecDeque<DeliveryRecord>>,
    metrics: NotifierMetrics,
}

impl Notifier {
    /// A notifier with `config`, keeping its state in `state_dir` (created if needed), or in
    /// memory when `None`.
    pub fn new(
        config: AlertmanagerConfig,
        state_dir: Option<&Path>,
        retry: RetryPolicy,
    ) -> std::io::Result<Notifier> {
        let (nflog, silences) = match state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (
                    NotificationLog::open(&dir.join("nflog.json")),
                    Silences::open(&dir.join("silences.json")),
                )
            }
            None => (NotificationLog::in_memory(), Silences::in_memory()),
        };
        // reqwest is built without a bundled crypto provider; ring is ours (see Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        let templates = read_templates(&config);
        Ok(Notifier {
            dispatcher: Mutex::new(Dispatcher::new(Arc::new(config), nflog, silences)),
            client,
            retry,
            external_url: RwLock::new(String::new()),
            templates: RwLock::new(Arc::new(templates)),
            history: Mutex::default(),
            metrics: NotifierMetrics::new().map_err(std::io::Error::other)?,
        })
    }

    /// Attempts and failures, for the caller to register.
    pub fn metrics(&self) -> &NotifierMetrics {
        &self.metrics
    }

    /// The dispatcher, locked (for the API and tests).
    pub fn dispatcher(&self) -> MutexGuard<'_, Dispatcher> {
        self.dispatcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the server's external URL (`.ExternalURL` in templates and payloads).
    pub fn set_external_url(&self, url: String) {
        *self
            .external_url
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = url;
    }

    fn external_url(&self) -> String {
        self.external_url
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the config at `now`: groups are rebuilt, silences and the log stay.
    pub fn set_config(&self, config: AlertmanagerConfig, now: i64) {
        let templates = read_templates(&config);
        *self
            .templates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(templates);
        self.dispatcher().set_config(Arc::new(config), now);
    }

    /// Takes in alerts received at `now`.
    pub fn receive(&self, alerts: Vec<PostedAlert>, now: i64) {
        self.dispatcher().receive(alerts, now);
    }

    /// Flushes the groups due at `now` and sends their notifications, each with its retries;
    /// returns when all are done.
    pub async fn flush_and_send(self: &Arc<Self>, now: i64) -> Vec<Delivery> {
        let notifications = self.dispatcher().flush(now);
        let sends: Vec<_> = notifications
            .into_iter()
            .map(|notification| {
                let notifier = self.clone();
                tokio::spawn(async move { notifier.deliver(notification).await })
            })
            .collect();
        let mut deliveries = Vec::with_capacity(sends.len());
        for send in sends {
            match send.await {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => tracing::error!("notification task failed: {error}"),
            }
        }
        deliveries
    }

    /// Sends one notification, retrying until it is delivered, fails for good or its
    /// deadline passes; records it in the log when delivered.
    async fn deliver(self: Arc<Self>, notification: Notification) -> Delivery {
        let budget = Duration::from_millis(
            u64::try_from(notification.deadline - notification.at).unwrap_or(0),
        );
        let started = tokio::time::Instant::now();
        let mut backoff = self.retry.first_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.send_once(&notification).await;
            self.metrics
                .attempted(notification.integration.kind, result.is_err());
            match &result {
                Ok(()) => {
                    self.dispatcher().record(&notification);
                    tracing::debug!(
                        receiver = %notification.receiver,
                        integration = %notification.integration,
                        group = %notification.group_key,
                        attempts,
                        "notification delivered"
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        receiver = %notification.receiver,
                        integration = %notification.integration,
                        group = %notification.group_key,
                        attempts,
                        retryable = error.retryable,
                        "notification failed: {error}"
                    );
                }
            }
            let give_up = match &result {
                Ok(()) => true,
                Err(error) => !error.retryable || started.elapsed() + backoff >= budget,
            };
            if give_up {
                self.remember(&notification, attempts, &result);
                return Delivery {
                    notification,
                    attempts,
                    result,
                };
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// The latest deliveries (in memory, since start-up), newest first.
    pub fn history(&self) -> Vec<DeliveryRecord> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    fn remember(&self, notification: &Notification, attempts: u32, result: &Result<(), SendError>) {
        let record = DeliveryRecord {
            at: notification.at,
            receiver: notification.receiver.clone(),
            integration: notification.integration.to_string(),
            group: notification.group_key.labels.clone(),
            status: notification.status(),
            alerts: notification
                .alerts
                .iter()
                .map(|alert| alert.labels.get("alertname").unwrap_or_default().to_owned())
                .collect(),
            attempts,
            error: result.as_ref().err().map(ToString::to_string),
        };
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(record);
    }

    async fn send_once(&self, notification: &Notification) -> Result<(), SendError> {
        let config = self.dispatcher().config().clone();
        let receiver = config.receiver(&notification.receiver).ok_or_else(|| {
            SendError::permanent(format!(
                "receiver {:?} is gone from the config",
                notification.receiver
            ))
        })?;
        let external_url = self.external_url();
        let templates = self
            .templates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let renderer = Renderer::new(notification, templates, &external_url);
        let index = notification.integration.index;
        let missing =
            || SendError::permanent(format!("integration {} is gone", notification.integration));
        match notification.integration.kind {
            IntegrationKind::Pushover => {
                let integration = receiver.pushover_configs.get(index).ok_or_else(missing)?;
                integration.send(&self.client, &renderer).await
            }
            IntegrationKind::Telegram => {
                let integration = receiver.telegram_configs.get(index).ok_or_else(missing)?;
                integration.send(&self.client, &renderer).await
            }
            IntegrationKind::Webhook => {
                let integration = receiver.webhook_configs.get(index).ok_or_else(missing)?;
                integration
                    .send(&self.client, notification, &external_url)
                    .await
            }
            IntegrationKind::Email => {
                let integration = receiver.email_configs.get(index).ok_or_else(missing)?;
                integration.send(&renderer).await
            }
        }
    }

    /// Flushes and sends with the wall clock every second until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let notifier = self.clone();
            tokio::spawn(async move { notifier.flush_and_send(now_ms()).await });
        }
    }
}

/// The texts of the config's `templates` files; a file that cannot be read is logged and
/// left out.
fn read_templates(config: &AlertmanagerConfig) -> Vec<String> {
    let mut texts = Vec::new();
    for pattern in config.template_patterns() {
        let paths = match glob::glob(&pattern.to_string_lossy()) {
            Ok(paths) => paths,
            Err(error) => {
                tracing::error!(pattern = %pattern.display(), "bad templates pattern: {error}");
                continue;
            }
        };
        for path in paths.flatten() {
            match std::fs::read_to_string(&path) {
                Ok(text) => texts.push(text),
                Err(error) => {
                    tracing::error!(file = %path.display(), "cannot read template file: {error}")
                }
            }
        }
    }
    texts
}
