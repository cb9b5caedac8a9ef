//! Alertmanager's API v2: alerts in and out, groups, silences, status and receivers, in the
//! shapes of Alertmanager's OpenAPI spec (`api/v2/openapi.yaml`) that amtool, Prometheus,
//! Grafana and Flux's notification-controller use.
//!
//! Decided here:
//! - Errors are Alertmanager's: the status (400 bad input, 404 unknown silence, 503 before
//!   the notifier runs) with a JSON string as the body.
//! - `POST /api/v2/alerts` refuses the whole batch if one alert is invalid (no labels, an
//!   empty label name, a time that is not RFC 3339, `endsAt` before `startsAt`), as
//!   Alertmanager does. Go's zero time (`0001-01-01T00:00:00Z`) counts as not set.
//! - `GET /api/v2/alerts` and `/alerts/groups` read `filter` (matchers such as
//!   `alertname="X"`), `active`, `silenced`, `inhibited` (booleans, default true) and
//!   `receiver` (a regex); `unprocessed` is accepted and has no effect, as every alert is
//!   processed on receipt.
//! - `/api/v2/status` reports no cluster (`disabled`) and leaves `config.original` empty:
//!   the config holds receiver secrets, which Sightline does not echo.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use sightline_alerting::notifier::alert::{Alert, PostedAlert, fingerprint_hex};
use sightline_alerting::notifier::dispatch::Dispatcher;
use sightline_alerting::notifier::matchers::{all_match, parse_matchers};
use sightline_alerting::notifier::message::rfc3339;
use sightline_alerting::notifier::service::now_ms;
use sightline_alerting::notifier::silence::{Silence, SilenceError, SilenceMatcher, SilenceSpec};
use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;

use super::Params;
use crate::server::AppState;

/// Go's zero time, which clients send for "not set".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(message.into())).into_response()
}

/// The answer while the notifier is not running yet.
fn not_running() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the notifier is not running yet",
    )
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    match value.as_deref() {
        None | Some("") | Some(ZERO_TIME) => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|time| Some(time.timestamp_millis()))
            .map_err(|e| format!("{field} {text:?} is not an RFC 3339 time: {e}")),
    }
}

/// `postableAlert`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

impl PostableAlert {
    fn check(self, index: usize) -> Result<PostedAlert, String> {
        let at = |message: String| format!("alert {index}: {message}");
        if self.labels.keys().any(String::is_empty) {
            return Err(at("a label name is empty".to_owned()));
        }
        let labels = Labels::from_pairs(self.labels);
        if labels.is_empty() {
            return Err(at("at least one label with a value is required".to_owned()));
        }
        let starts_at = parse_time("startsAt", &self.starts_at).map_err(at)?;
        let ends_at = parse_time("endsAt", &self.ends_at).map_err(at)?;
        if let (Some(start), Some(end)) = (starts_at, ends_at)
            && end < start
        {
            return Err(at("endsAt is before startsAt".to_owned()));
        }
        Ok(PostedAlert {
            labels,
            annotations: self.annotations,
            starts_at,
            ends_at,
            generator_url: self.generator_url,
        })
    }
}

/// `POST /api/v2/alerts`
pub(crate) async fn post_alerts(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(alerts) => alerts,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid alerts: {e}")),
    };
    let alerts: Result<Vec<PostedAlert>, String> = posted
        .into_iter()
        .enumerate()
        .map(|(index, alert)| alert.check(index))
        .collect();
    match alerts {
        Ok(alerts) => {
            notifier.receive(alerts, now_ms());
            StatusCode::OK.into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

#[derive(Serialize)]
struct ReceiverJson {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatusJson {
    state: &'static str,
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
    muted_by: Vec<String>,
}

/// `gettableAlert`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    updated_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
    receivers: Vec<ReceiverJson>,
    status: AlertStatusJson,
}

fn labels_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|label| (label.name.clone(), label.value.clone()))
        .collect()
}

/// The filters of the alert listings.
struct AlertFilter {
    matchers: Vec<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    receiver: Option<regex::Regex>,
}

fn flag(params: &Params, name: &str) -> Result<bool, String> {
    match params.get(name) {
        None => Ok(true),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    }
}

impl AlertFilter {
    fn from_params(params: &Params) -> Result<AlertFilter, String> {
        let mut matchers = Vec::new();
        for filter in params.all("filter") {
            matchers.extend(parse_matchers(filter)?);
        }
        let receiver = params
            .get("receiver")
            .map(|pattern| regex::Regex::new(&format!("^(?:{pattern})$")))
            .transpose()
            .map_err(|e| format!("receiver: {e}"))?;
        Ok(AlertFilter {
            matchers,
            active: flag(params, "active")?,
            silenced: flag(params, "silenced")?,
            inhibited: flag(params, "inhibited")?,
            receiver,
        })
    }

    /// The alert as the API shows it, if it passes the filter.
    fn show(&self, dispatcher: &Dispatcher, alert: &Alert, now: i64) -> Option<GettableAlert> {
        if alert.resolved_at(now) || !all_match(&self.matchers, &alert.labels) {
            return None;
        }
        let receivers = dispatcher.receivers_of(alert);
        if let Some(pattern) = &self.receiver
            && !receivers.iter().any(|name| pattern.is_match(name))
        {
            return None;
        }
        let muting = dispatcher.muting(alert, now);
        let silenced = !muting.silenced_by.is_empty();
        let inhibited = !muting.inhibited_by.is_empty();
        let keep = (silenced && self.silenced)
            || (inhibited && self.inhibited)
            || (!silenced && !inhibited && self.active);
        if !keep {
            return None;
        }
        Some(GettableAlert {
            labels: labels_map(&alert.labels),
            annotations: alert.annotations.clone(),
            starts_at: rfc3339(alert.starts_at),
            ends_at: rfc3339(alert.ends_at),
            updated_at: rfc3339(alert.updated_at),
            generator_url: alert.generator_url.clone(),
            fingerprint: fingerprint_hex(alert.fingerprint()),
            receivers: receivers
                .into_iter()
                .map(|name| ReceiverJson { name })
                .collect(),
            status: AlertStatusJson {
                state: if muting.is_muted() {
                    "suppressed"
                } else {
                    "active"
                },
                silenced_by: muting.silenced_by,
                inhibited_by: muting
                    .inhibited_by
                    .into_iter()
                    .map(fingerprint_hex)
                    .collect(),
                muted_by: Vec::new(),
            },
        })
    }
}

/// `GET /api/v2/alerts`
pub(crate) async fn get_alerts(State(state): State<AppState>, params: Params) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let filter = match AlertFilter::from_params(&params) {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let now = now_ms();
    let dispatcher = notifier.dispatcher();
    let alerts: Vec<GettableAlert> = dispatcher
        .alerts()
        .iter()
        .filter_map(|alert| filter.show(&dispatcher, alert, now))
        .collect();
    Json(alerts).into_response()
}

#[derive(Serialize)]
struct AlertGroupJson {
    labels: BTreeMap<String, String>,
    receiver: ReceiverJson,
    alerts: Vec<GettableAlert>,
}

/// `GET /api/v2/alerts/groups`
pub(crate) async fn get_groups(State(state): State<AppState>, params: Params) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let filter = match AlertFilter::from_params(&params) {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let now = now_ms();
    let dispatcher = notifier.dispatcher();
    let groups: Vec<AlertGroupJson> = dispatcher
        .groups()
        .into_iter()
        .filter(|group| {
            filter
                .receiver
                .as_ref()
                .is_none_or(|pattern| pattern.is_match(&group.receiver))
        })
        .filter_map(|group| {
            let alerts: Vec<GettableAlert> = group
                .alerts
                .iter()
                .filter_map(|alert| filter.show(&dispatcher, alert, now))
                .collect();
            (!alerts.is_empty()).then(|| AlertGroupJson {
                labels: labels_map(&group.key.labels),
                receiver: ReceiverJson {
                    name: group.receiver.clone(),
                },
                alerts,
            })
        })
        .collect();
    Json(groups).into_response()
}

#[derive(Serialize)]
struct SilenceStatusJson {
    state: &'static str,
}

/// `gettableSilence`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatusJson,
    updated_at: String,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

fn silence_json(silence: &Silence, now: i64) -> GettableSilence {
    GettableSilence {
        id: silence.id.clone(),
        status: SilenceStatusJson {
            state: silence.state(now).as_str(),
        },
        updated_at: rfc3339(silence.updated_at),
        matchers: silence.matchers.clone(),
        starts_at: rfc3339(silence.starts_at),
        ends_at: rfc3339(silence.ends_at),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
    }
}

/// `GET /api/v2/silences`
pub(crate) async fn get_silences(State(state): State<AppState>, params: Params) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let mut matchers = Vec::new();
    for filter in params.all("filter") {
        match parse_matchers(filter) {
            Ok(parsed) => matchers.extend(parsed),
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        }
    }
    let now = now_ms();
    let silences: Vec<GettableSilence> = notifier
        .dispatcher()
        .silences()
        .list()
        .iter()
        .filter(|silence| {
            // As Alertmanager filters: a silence passes when its equality matchers have the
            // labels the filter asks for.
            let labels = Labels::from_pairs(
                silence
                    .matchers
                    .iter()
                    .filter(|m| m.is_equal && !m.is_regex)
                    .map(|m| (m.name.clone(), m.value.clone())),
            );
            all_match(&matchers, &labels)
        })
        .map(|silence| silence_json(silence, now))
        .collect();
    Json(silences).into_response()
}

/// `postableSilence`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

fn silence_error(failure: &SilenceError) -> Response {
    let status = match failure {
        SilenceError::Invalid(_) => StatusCode::BAD_REQUEST,
        SilenceError::NotFound(_) => StatusCode::NOT_FOUND,
        SilenceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, failure.to_string())
}

/// `POST /api/v2/silences`
pub(crate) async fn post_silence(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let posted: PostableSilence = match serde_json::from_slice(&body) {
        Ok(silence) => silence,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    let times = parse_time("startsAt", &Some(posted.starts_at))
        .and_then(|start| Ok((start, parse_time("endsAt", &Some(posted.ends_at))?)));
    let (starts_at, ends_at) = match times {
        Ok((Some(start), Some(end))) => (start, end),
        Ok(_) => return error(StatusCode::BAD_REQUEST, "startsAt and endsAt are required"),
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let spec = SilenceSpec {
        id: posted.id.filter(|id| !id.is_empty()),
        matchers: posted.matchers,
        starts_at,
        ends_at,
        created_by: posted.created_by,
        comment: posted.comment,
    };
    let result = notifier.dispatcher().silences_mut().set(spec, now_ms());
    match result {
        Ok(id) => Json(serde_json::json!({ "silenceID": id })).into_response(),
        Err(e) => silence_error(&e),
    }
}

/// `GET /api/v2/silence/{id}`
pub(crate) async fn get_silence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let dispatcher = notifier.dispatcher();
    match dispatcher.silences().get(&id) {
        Some(silence) => Json(silence_json(silence, now_ms())).into_response(),
        None => silence_error(&SilenceError::NotFound(id)),
    }
}

/// `DELETE /api/v2/silence/{id}`
pub(crate) async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let result = notifier.dispatcher().silences_mut().expire(&id, now_ms());
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => silence_error(&e),
    }
}

/// `GET /api/v2/receivers`
pub(crate) async fn receivers(State(state): State<AppState>) -> Response {
    let Some(notifier) = state.backends.notifier() else {
        return not_running();
    };
    let config = notifier.dispatcher().config().clone();
    let names: Vec<ReceiverJson> = config
        .receivers
        .iter()
        .map(|receiver| ReceiverJson {
            name: receiver.name.clone(),
        })
        .collect();
    Json(names).into_response()
}

/// `GET /api/v2/status`
pub(crate) async fn status(State(state): State<AppState>) -> Response {
    if state.backends.notifier().is_none() {
        return not_running();
    }
    let uptime = DateTime::<chrono::Utc>::from(state.started)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Json(serde_json::json!({
        "cluster": { "status": "disabled", "peers": [] },
        "versionInfo": {
            "version": state.build.version,
            "revision": state.build.revision,
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": state.build.rustc_version,
        },
        "config": { "original": "" },
        "uptime": uptime,
    }))
    .into_response()
}
