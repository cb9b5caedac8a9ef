//! Alerts: alerting rules by state with their active alerts, the alerts as the notifier
//! groups them for receivers, silences (created, edited and expired through Alertmanager's
//! API v2 by `alerts.js`), and the latest notifications sent.
//!
//! `?silence=<matchers>` opens the silence form filled in, which is how an alert's
//! "Silence" link works.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use sightline_alerting::notifier::silence::{Silence, SilenceMatcher};

use super::rules::{RuleRow, group_rows};
use super::{Frame, format};
use crate::server::AppState;

/// An alert in a notification group.
pub(crate) struct GroupedAlert {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) summary: String,
    pub(crate) since: String,
    /// `active`, `silenced` or `inhibited`.
    pub(crate) state: &'static str,
    pub(crate) matchers: String,
}

/// A notification group: what one receiver gets in one message.
pub(crate) struct NotificationGroup {
    pub(crate) receiver: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) alerts: Vec<GroupedAlert>,
}

/// A silence, ready to print.
pub(crate) struct SilenceRow {
    pub(crate) id: String,
    pub(crate) state: &'static str,
    pub(crate) matchers: String,
    pub(crate) starts: String,
    pub(crate) ends: String,
    pub(crate) created_by: String,
    pub(crate) comment: String,
}

/// A delivery of the history.
pub(crate) struct HistoryRow {
    pub(crate) at: String,
    pub(crate) receiver: String,
    pub(crate) integration: String,
    pub(crate) status: &'static str,
    pub(crate) alerts: String,
    pub(crate) group: String,
    pub(crate) outcome: String,
    pub(crate) failed: bool,
}

/// The page's query.
#[derive(Deserialize, Default)]
pub(crate) struct AlertsQuery {
    #[serde(default)]
    silence: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts.html")]
pub(crate) struct AlertsPage {
    frame: Frame,
    rules: Vec<RuleRow>,
    firing: usize,
    pending: usize,
    inactive: usize,
    notifier: bool,
    groups: Vec<NotificationGroup>,
    silences: Vec<SilenceRow>,
    history: Vec<HistoryRow>,
    /// Matchers the silence form starts with.
    silence_matchers: String,
}

/// `GET /alerts`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Query(query): Query<AlertsQuery>,
) -> AlertsPage {
    let now = format::now_ms();
    let groups = state
        .backends
        .rules()
        .map(|rules| rules.groups())
        .unwrap_or_default();
    let mut rules: Vec<RuleRow> = group_rows(&groups, now)
        .into_iter()
        .flat_map(|group| group.rules)
        .filter(|rule| rule.kind == "alerting")
        .collect();
    let rank = |state: &str| match state {
        "firing" => 0,
        "pending" => 1,
        _ => 2,
    };
    rules.sort_by(|a, b| (rank(a.state), &a.name).cmp(&(rank(b.state), &b.name)));
    let count = |wanted: &str| rules.iter().filter(|rule| rule.state == wanted).count();
    let mut page = AlertsPage {
        frame: Frame::new(&state, "alerts", "Alerts"),
        firing: count("firing"),
        pending: count("pending"),
        inactive: count("inactive"),
        rules,
        notifier: false,
        groups: Vec::new(),
        silences: Vec::new(),
        history: Vec::new(),
        silence_matchers: query.silence,
    };
    if let Some(notifier) = state.backends.notifier() {
        page.notifier = true;
        {
            let dispatcher = notifier.dispatcher();
            page.groups = notification_groups(&dispatcher, now);
            page.silences = dispatcher
                .silences()
                .list()
                .iter()
                .map(|silence| silence_row(silence, now))
                .collect();
        }
        page.history = notifier
            .history()
            .into_iter()
            .map(|record| HistoryRow {
                at: format::time(record.at),
                receiver: record.receiver,
                integration: record.integration,
                status: record.status,
                alerts: record.alerts.join(", "),
                group: record.group.to_string(),
                failed: record.error.is_some(),
                outcome: match record.error {
                    None if record.attempts == 1 => "delivered".to_owned(),
                    None => format!("delivered after {} attempts", record.attempts),
                    Some(error) => format!("failed after {} attempts: {error}", record.attempts),
                },
            })
            .collect();
    }
    page
}

fn notification_groups(
    dispatcher: &sightline_alerting::notifier::dispatch::Dispatcher,
    now: i64,
) -> Vec<NotificationGroup> {
    let mut groups: Vec<NotificationGroup> = dispatcher
        .groups()
        .into_iter()
        .filter_map(|group| {
            let alerts: Vec<GroupedAlert> = group
                .alerts
                .iter()
                .filter(|alert| !alert.resolved_at(now))
                .map(|alert| {
                    let muting = dispatcher.muting(alert, now);
                    GroupedAlert {
                        name: alert.labels.get("alertname").unwrap_or_default().to_owned(),
                        labels: alert
                            .labels
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect(),
                        summary: alert
                            .annotations
                            .get("summary")
                            .cloned()
                            .unwrap_or_default(),
                        since: format::ago(now, Some(alert.starts_at)),
                        state: if !muting.silenced_by.is_empty() {
                            "silenced"
                        } else if !muting.inhibited_by.is_empty() {
                            "inhibited"
                        } else {
                            "active"
                        },
                        matchers: format::equality_matchers(&alert.labels),
                    }
                })
                .collect();
            (!alerts.is_empty()).then(|| NotificationGroup {
                receiver: group.receiver,
                labels: group
                    .key
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                alerts,
            })
        })
        .collect();
    groups.sort_by(|a, b| (&a.receiver, &a.labels).cmp(&(&b.receiver, &b.labels)));
    groups
}

fn silence_row(silence: &Silence, now: i64) -> SilenceRow {
    SilenceRow {
        id: silence.id.clone(),
        state: silence.state(now).as_str(),
        matchers: silence
            .matchers
            .iter()
            .map(matcher_text)
            .collect::<Vec<_>>()
            .join(","),
        starts: format::time(silence.starts_at),
        ends: format::time(silence.ends_at),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
    }
}

/// A matcher as the form and amtool write it: `name="value"`, `name=~"regex"`.
fn matcher_text(matcher: &SilenceMatcher) -> String {
    let op = match (matcher.is_equal, matcher.is_regex) {
        (true, false) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (false, true) => "!~",
    };
    format::matcher(&matcher.name, op, &matcher.value)
}
