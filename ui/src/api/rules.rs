//! Prometheus's `/api/v1/rules` and `/api/v1/alerts`: the loaded rule groups with their
//! health, and the active alerts, in the shapes Grafana and `promtool` read
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#rules>).
//!
//! `/api/v1/rules` reads upstream's filters: `type`, `rule_name[]`, `rule_group[]`, `file[]`,
//! `match[]` (selectors over a rule's configured labels), `exclude_alerts` and the pagination
//! of `group_limit` with `group_next_token`; a group whose rules are all filtered out is left
//! out. Decided here: the page token is the next group's `file;name` (upstream hashes it; the
//! token is opaque to clients either way). Alert values are Go's `%e` text (`"1e+00"`), as
//! upstream prints them. A rule never evaluated has health `unknown` and Go's zero time as
//! `lastEvaluation`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sightline_alerting::rules::alert::{Alert, AlertState};
use sightline_alerting::rules::group::{Group, RuleState};
use sightline_core::matcher::Matcher;

use super::{ApiError, Params, success};
use crate::server::AppState;

/// Go's zero `time.Time`, what upstream shows for a rule not evaluated yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Serialize)]
struct AlertJson {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: &'static str,
    #[serde(rename = "activeAt")]
    active_at: String,
    #[serde(rename = "keepFiringSince", skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<String>,
    value: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RuleJson {
    Alerting {
        state: &'static str,
        name: String,
        query: String,
        duration: f64,
        #[serde(rename = "keepFiringFor")]
        keep_firing_for: f64,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        /// `null` with `exclude_alerts=true`, as upstream writes it.
        alerts: Option<Vec<AlertJson>>,
        health: &'static str,
        #[serde(rename = "lastError")]
        last_error: String,
        #[serde(rename = "evaluationTime")]
        evaluation_time: f64,
        #[serde(rename = "lastEvaluation")]
        last_evaluation: String,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    Recording {
        name: String,
        query: String,
        labels: BTreeMap<String, String>,
        health: &'static str,
        #[serde(rename = "lastError")]
        last_error: String,
        #[serde(rename = "evaluationTime")]
        evaluation_time: f64,
        #[serde(rename = "lastEvaluation")]
        last_evaluation: String,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct GroupJson {
    name: String,
    file: String,
    rules: Vec<RuleJson>,
    interval: f64,
    limit: u64,
    #[serde(rename = "evaluationTime")]
    evaluation_time: f64,
    #[serde(rename = "lastEvaluation")]
    last_evaluation: String,
}

/// Which groups and rules a `/api/v1/rules` call asks for.
struct RuleFilter<'a> {
    alerts: bool,
    records: bool,
    rule_names: BTreeSet<&'a str>,
    groups: BTreeSet<&'a str>,
    files: BTreeSet<&'a str>,
    /// Any of these selectors must match a rule's configured labels; none means every rule.
    selectors: Vec<Vec<Matcher>>,
    exclude_alerts: bool,
}

impl<'a> RuleFilter<'a> {
    fn from_params(params: &'a Params) -> Result<RuleFilter<'a>, ApiError> {
        let (alerts, records) = match params.get("type") {
            None | Some("") => (true, true),
            Some("alert") => (true, false),
            Some("record") => (false, true),
            Some(other) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"type\": {other:?} is not \"alert\" or \"record\""
                )));
            }
        };
        let exclude_alerts = match params.get("exclude_alerts") {
            None | Some("") => false,
            Some(value) => value.parse().map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter \"exclude_alerts\": {value:?} is not a boolean"
                ))
            })?,
        };
        let set = |name| params.all(name).into_iter().collect::<BTreeSet<&str>>();
        Ok(RuleFilter {
            alerts,
            records,
            rule_names: set("rule_name[]"),
            groups: set("rule_group[]"),
            files: set("file[]"),
            selectors: super::prometheus::selectors(params)?,
            exclude_alerts,
        })
    }

    fn wants_group(&self, group: &Group) -> bool {
        (self.groups.is_empty() || self.groups.contains(group.spec.name.as_str()))
            && (self.files.is_empty() || self.files.contains(group.file.as_str()))
    }

    fn wants_rule(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let label = |name: &str| labels.get(name).map_or("", String::as_str);
        (self.rule_names.is_empty() || self.rule_names.contains(name))
            && (self.selectors.is_empty()
                || self
                    .selectors
                    .iter()
                    .any(|matchers| matchers.iter().all(|m| m.matches(label(m.name())))))
    }
}

/// The page token of `group`: where the next page starts.
fn page_token(group: &Group) -> String {
    format!("{};{}", group.file, group.spec.name)
}

/// `GET /api/v1/rules`.
pub(crate) async fn rules(State(state): State<AppState>, params: Params) -> Response {
    match rule_groups(&state, &params) {
        Ok(data) => success(data),
        Err(error) => error.into_response(),
    }
}

fn rule_groups(state: &AppState, params: &Params) -> Result<serde_json::Value, ApiError> {
    let filter = RuleFilter::from_params(params)?;
    let group_limit = match params.get("group_limit") {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<usize>()
                .ok()
                .filter(|limit| *limit > 0)
                .ok_or_else(|| {
                    ApiError::bad_data(format!(
                        "invalid parameter \"group_limit\": {text:?} is not a number greater than 0"
                    ))
                })?,
        ),
    };
    let all = state
        .backends
        .rules()
        .map(|rules| rules.groups())
        .unwrap_or_default();
    let wanted: Vec<(&Group, GroupJson)> = all
        .iter()
        .filter(|group| filter.wants_group(group))
        .map(|group| (group, group_json(group, &filter)))
        .filter(|(_, json)| !json.rules.is_empty())
        .collect();
    let start = match params.get("group_next_token") {
        None | Some("") => 0,
        Some(token) => wanted
            .iter()
            .position(|(group, _)| page_token(group) == token)
            .ok_or_else(|| ApiError::bad_data("invalid group_next_token"))?,
    };
    let end = group_limit.map_or(wanted.len(), |limit| (start + limit).min(wanted.len()));
    let next_token = wanted.get(end).map(|(group, _)| page_token(group));
    let groups: Vec<GroupJson> = wanted
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|(_, json)| json)
        .collect();
    let mut data = serde_json::json!({ "groups": groups });
    if let Some(token) = next_token {
        data["groupNextToken"] = serde_json::json!(token);
    }
    Ok(data)
}

/// `GET /api/v1/alerts`: pending and firing alerts of every rule.
pub(crate) async fn alerts(State(state): State<AppState>) -> Response {
    let groups = state
        .backends
        .rules()
        .map(|rules| rules.groups())
        .unwrap_or_default();
    let alerts: Vec<AlertJson> = groups
        .iter()
        .flat_map(|group| &group.rules)
        .filter_map(|rule| match rule {
            RuleState::Alerting(rule) => Some(rule.active.values()),
            RuleState::Recording { .. } => None,
        })
        .flatten()
        .filter(|alert| alert.state != AlertState::Inactive)
        .map(alert_json)
        .collect();
    success(serde_json::json!({ "alerts": alerts }))
}

fn group_json(group: &Group, filter: &RuleFilter) -> GroupJson {
    let rules = group
        .rules
        .iter()
        .zip(&group.health)
        .filter_map(|(rule, health)| match rule {
            RuleState::Alerting(state)
                if filter.alerts && filter.wants_rule(&state.rule.alert, &state.rule.labels) =>
            {
                let alerts: Vec<&Alert> = state
                    .active
                    .values()
                    .filter(|a| a.state != AlertState::Inactive)
                    .collect();
                Some(RuleJson::Alerting {
                    state: state.state().as_str(),
                    name: state.rule.alert.clone(),
                    query: state.rule.expr.clone(),
                    duration: state.rule.for_duration.as_millis() as f64 / 1000.0,
                    keep_firing_for: state.rule.keep_firing_for.as_millis() as f64 / 1000.0,
                    labels: state.rule.labels.clone(),
                    annotations: state.rule.annotations.clone(),
                    alerts: (!filter.exclude_alerts)
                        .then(|| alerts.into_iter().map(alert_json).collect()),
                    health: health.as_str(),
                    last_error: health.last_error.clone().unwrap_or_default(),
                    evaluation_time: health.evaluation_seconds,
                    last_evaluation: time_text(health.last_evaluation),
                    kind: "alerting",
                })
            }
            RuleState::Recording { rule, .. }
                if filter.records && filter.wants_rule(&rule.record, &rule.labels) =>
            {
                Some(RuleJson::Recording {
                    name: rule.record.clone(),
                    query: rule.expr.clone(),
                    labels: rule.labels.clone(),
                    health: health.as_str(),
                    last_error: health.last_error.clone().unwrap_or_default(),
                    evaluation_time: health.evaluation_seconds,
                    last_evaluation: time_text(health.last_evaluation),
                    kind: "recording",
                })
            }
            _ => None,
        })
        .collect();
    GroupJson {
        name: group.spec.name.clone(),
        file: group.file.clone(),
        rules,
        interval: group.interval_ms as f64 / 1000.0,
        limit: group.spec.limit,
        evaluation_time: group.last_evaluation.map_or(0.0, |(_, seconds)| seconds),
        last_evaluation: time_text(group.last_evaluation.map(|(t, _)| t)),
    }
}

fn alert_json(alert: &Alert) -> AlertJson {
    AlertJson {
        labels: alert
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
        annotations: alert.annotations.clone(),
        state: alert.state.as_str(),
        active_at: time_text(Some(alert.active_at)),
        keep_firing_since: alert.keep_firing_since.map(|t| time_text(Some(t))),
        value: go_exponent(alert.value),
    }
}

/// Go's RFC 3339 with nanoseconds, as `time.Time` marshals to JSON: the fraction without
/// trailing zeros, none for whole seconds.
fn time_text(ms: Option<i64>) -> String {
    let Some(time) = ms.and_then(chrono::DateTime::from_timestamp_millis) else {
        return ZERO_TIME.to_owned();
    };
    let fraction = format!("{:03}", time.timestamp_subsec_millis());
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!("{}{dot}{fraction}Z", time.format("%Y-%m-%dT%H:%M:%S"))
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `1.5e+03`, `NaN`, `+Inf`.
fn go_exponent(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let text = format!("{v:e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return text;
    };
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_print_as_go_does() {
        assert_eq!(go_exponent(1.0), "1e+00");
        assert_eq!(go_exponent(1500.0), "1.5e+03");
        assert_eq!(go_exponent(0.00025), "2.5e-04");
        assert_eq!(go_exponent(-3e120), "-3e+120");
        assert_eq!(go_exponent(f64::INFINITY), "+Inf");
        assert_eq!(time_text(Some(1_700_000_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(
            time_text(Some(1_700_000_000_250)),
            "2023-11-14T22:13:20.25Z"
        );
        assert_eq!(time_text(None), ZERO_TIME);
    }
}
