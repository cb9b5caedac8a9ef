//! Rules: every loaded group with its rules' health, last evaluation and error, and the
//! rows the Alerts page shows for alerting rules. Each query links to Explore (metrics for
//! PromQL, logs for LogQL rules).

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use sightline_alerting::rulefmt::RuleQuery;
use sightline_alerting::rules::alert::AlertState;
use sightline_alerting::rules::group::{Group, RuleHealth, RuleState};

use super::{Frame, format};
use crate::server::AppState;

/// An active (pending or firing) alert of a rule.
pub(crate) struct ActiveAlertRow {
    pub(crate) state: &'static str,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) value: String,
    pub(crate) since: String,
    /// `name="value"` matchers of its labels, for a silence form.
    pub(crate) matchers: String,
}

/// One rule, ready to print.
pub(crate) struct RuleRow {
    /// `alerting` or `recording`.
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) expr: String,
    /// Explore on this query.
    pub(crate) explore: String,
    /// `firing`, `pending` or `inactive`; empty for recording rules.
    pub(crate) state: &'static str,
    pub(crate) health: &'static str,
    pub(crate) error: String,
    pub(crate) last_evaluation: String,
    pub(crate) evaluation_time: String,
    /// `for` of alerting rules, empty when zero.
    pub(crate) for_duration: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) alerts: Vec<ActiveAlertRow>,
}

/// One group, ready to print.
pub(crate) struct GroupRow {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) interval: String,
    pub(crate) last_evaluation: String,
    pub(crate) evaluation_time: String,
    pub(crate) rules: Vec<RuleRow>,
}

/// The loaded groups as rows, `now_ms` for relative times.
pub(crate) fn group_rows(groups: &[Group], now_ms: i64) -> Vec<GroupRow> {
    groups
        .iter()
        .map(|group| GroupRow {
            name: group.spec.name.clone(),
            file: group.file.clone(),
            interval: format::duration(Duration::from_millis(
                u64::try_from(group.interval_ms).unwrap_or(0),
            )),
            last_evaluation: format::ago(now_ms, group.last_evaluation.map(|(t, _)| t)),
            evaluation_time: group
                .last_evaluation
                .map(|(_, seconds)| format::duration(Duration::from_secs_f64(seconds.max(0.0))))
                .unwrap_or_default(),
            rules: group
                .rules
                .iter()
                .zip(&group.health)
                .map(|(rule, health)| rule_row(rule, health, now_ms))
                .collect(),
        })
        .collect()
}

fn rule_row(rule: &RuleState, health: &RuleHealth, now_ms: i64) -> RuleRow {
    let pairs = |map: &std::collections::BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    let mut row = RuleRow {
        kind: "recording",
        name: String::new(),
        expr: String::new(),
        explore: String::new(),
        state: "",
        health: health.as_str(),
        error: health.last_error.clone().unwrap_or_default(),
        last_evaluation: format::ago(now_ms, health.last_evaluation),
        evaluation_time: format::duration(Duration::from_secs_f64(
            health.evaluation_seconds.max(0.0),
        )),
        for_duration: String::new(),
        labels: Vec::new(),
        annotations: Vec::new(),
        alerts: Vec::new(),
    };
    let query = match rule {
        RuleState::Recording { rule, .. } => {
            row.name = rule.record.clone();
            row.expr = rule.expr.clone();
            row.labels = pairs(&rule.labels);
            &rule.query
        }
        RuleState::Alerting(state) => {
            row.kind = "alerting";
            row.name = state.rule.alert.clone();
            row.expr = state.rule.expr.clone();
            row.state = state.state().as_str();
            row.labels = pairs(&state.rule.labels);
            row.annotations = pairs(&state.rule.annotations);
            if !state.rule.for_duration.is_zero() {
                row.for_duration = format::duration(state.rule.for_duration.as_std());
            }
            row.alerts = state
                .active
                .values()
                .filter(|alert| alert.state != AlertState::Inactive)
                .map(|alert| ActiveAlertRow {
                    state: alert.state.as_str(),
                    labels: alert
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    annotations: pairs(&alert.annotations),
                    value: alert.value.to_string(),
                    since: format::ago(now_ms, Some(alert.active_at)),
                    matchers: format::equality_matchers(&alert.labels),
                })
                .collect();
            &state.rule.query
        }
    };
    let encoded: String = url::form_urlencoded::byte_serialize(row.expr.as_bytes()).collect();
    row.explore = match query {
        RuleQuery::PromQl(_) => format!("/explore/metrics?expr={encoded}"),
        RuleQuery::LogQl(_) => format!("/explore/logs?query={encoded}&kind=metric"),
    };
    row
}

#[derive(Template, WebTemplate)]
#[template(path = "rules.html")]
pub(crate) struct RulesPage {
    frame: Frame,
    groups: Vec<GroupRow>,
}

/// `GET /rules`.
pub(crate) async fn page(State(state): State<AppState>) -> RulesPage {
    let groups = state
        .backends
        .rules()
        .map(|rules| rules.groups())
        .unwrap_or_default();
    RulesPage {
        frame: Frame::new(&state, "rules", "Rules"),
        groups: group_rows(&groups, format::now_ms()),
    }
}
