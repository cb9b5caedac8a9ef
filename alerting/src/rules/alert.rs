//! The state of one alerting rule: its active alerts and how they move between pending,
//! firing and inactive (resolved) from one evaluation to the next.
//!
//! Follows Prometheus's `rules/alerting.go` (`AlertingRule.Eval`):
//! - A result series becomes a pending alert, active since the evaluation time; it fires once
//!   it has been active for `for` (at once for `for: 0s`).
//! - A firing alert whose series is gone keeps firing for `keep_firing_for`, then resolves;
//!   a resolved alert is kept for [`RESOLVED_RETENTION_MS`] so that it is reported as resolved,
//!   a pending alert whose series is gone is dropped at once.
//! - Labels and annotations are templates expanded per alert with the series' labels and
//!   value; a template error puts Prometheus's `<error expanding template: …>` text in the
//!   value (the rule does not fail).
//! - Two series that end up with the same alert labels, or more alerts than the group's
//!   `limit`, fail the evaluation (and with the limit, drop every alert of the rule).

use std::collections::{BTreeMap, HashSet};

use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_tsdb::promql::Sample;

use super::RuleError;
use crate::rulefmt::AlertingRule;
use crate::template::{self, QueryFn, TemplateData};

/// How long a resolved alert is kept, so that it is sent as resolved (Prometheus: 15 m).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The series matched, not yet for the `for` duration.
    Pending,
    /// The series matched for the `for` duration (or keeps firing for `keep_firing_for`).
    Firing,
    /// The series stopped matching; kept a while to be reported as resolved.
    Inactive,
}

impl AlertState {
    /// Prometheus's name of the state, as in `ALERTS{alertstate=…}` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Inactive => "inactive",
        }
    }
}

/// One alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The alert's labels: the series' labels without the metric name, the rule's labels,
    /// and `alertname`.
    pub labels: Labels,
    /// The expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its state.
    pub state: AlertState,
    /// The value of the series at the last evaluation that returned it.
    pub value: f64,
    /// Since when the alert is active (ms).
    pub active_at: i64,
    /// When it started firing (ms), if it did.
    pub fired_at: Option<i64>,
    /// When it resolved (ms), if it did.
    pub resolved_at: Option<i64>,
    /// Since when it keeps firing without its series (ms), under `keep_firing_for`.
    pub keep_firing_since: Option<i64>,
}

/// What an evaluation needs besides the rule and its result.
pub struct TemplateContext<'a> {
    /// `$externalLabels`.
    pub external_labels: &'a BTreeMap<String, String>,
    /// `$externalURL`.
    pub external_url: &'a str,
    /// Runs `query` in templates.
    pub query: QueryFn,
}

/// An alerting rule with its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRuleState {
    /// The rule as loaded.
    pub rule: AlertingRule,
    /// Active alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
}

/// How long a firing alert sent to the notifier lasts unless sent again: four times the
/// larger of the group's interval and Prometheus's 1 m resend delay, as Prometheus does.
fn valid_for_ms(interval_ms: i64) -> i64 {
    4 * interval_ms.max(60_000)
}

impl AlertingRuleState {
    /// The rule's state as Prometheus shows it: `firing` when any alert fires, `pending` when
    /// any is pending, else `inactive`.
    pub fn state(&self) -> AlertState {
        let mut state = AlertState::Inactive;
        for alert in self.active.values() {
            match alert.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => state = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        state
    }

    /// The alerts to hand to the notifier after an evaluation at `ts`, as Prometheus's
    /// `sendAlerts` builds them: firing alerts starting when they fired and ending
    /// [`valid_for_ms`] ahead, and resolved ones (kept for [`RESOLVED_RETENTION_MS`]) ending
    /// when they resolved. Pending alerts are not sent. `external_labels` are added to
    /// labels the alert does not have; the generator URL is the rule's query in the graph
    /// page of `external_url`.
    pub fn to_notify(
        &self,
        ts: i64,
        interval_ms: i64,
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
    ) -> Vec<crate::notifier::alert::PostedAlert> {
        let generator_url = format!(
            "{external_url}/graph?g0.expr={}&g0.tab=1",
            url::form_urlencoded::byte_serialize(self.rule.expr.as_bytes()).collect::<String>()
        );
        self.active
            .values()
            .filter_map(|alert| {
                let fired_at = alert.fired_at?;
                let ends_at = match (alert.state, alert.resolved_at) {
                    (AlertState::Firing, _) => ts + valid_for_ms(interval_ms),
                    (AlertState::Inactive, Some(resolved_at)) => resolved_at,
                    _ => return None,
                };
                let mut labels = alert.labels.clone();
                for (name, value) in external_labels {
                    if labels.get(name).is_none() {
                        labels.set(name, value);
                    }
                }
                Some(crate::notifier::alert::PostedAlert {
                    labels,
                    annotations: alert.annotations.clone(),
                    starts_at: Some(fired_at),
                    ends_at: Some(ends_at),
                    generator_url: generator_url.clone(),
                })
            })
            .collect()
    }

    /// A rule with no active alert.
    pub fn new(rule: AlertingRule) -> AlertingRuleState {
        AlertingRuleState {
            rule,
            active: BTreeMap::new(),
        }
    }

    /// Applies one evaluation result at `ts` (ms) and returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples to store.
    pub fn apply(
        &mut self,
        result: &[Sample],
        ts: i64,
        group_labels: &BTreeMap<String, String>,
        limit: u64,
        templates: &TemplateContext<'_>,
    ) -> Result<Vec<Sample>, RuleError> {
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for sample in result {
            let alert = self.alert_for(sample, ts, group_labels, templates);
            if current.contains_key(&alert.labels) {
                return Err(RuleError::DuplicateLabels {
                    rule: self.rule.alert.clone(),
                    labels: alert.labels.to_string(),
                });
            }
            current.insert(alert.labels.clone(), alert);
        }
        let returned: HashSet<Labels> = current.keys().cloned().collect();
        for (labels, alert) in current {
            match self.active.get_mut(&labels) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = alert.value;
                    existing.annotations = alert.annotations;
                }
                _ => {
                    self.active.insert(labels, alert);
                }
            }
        }
        let hold = self.rule.for_duration.as_millis() as i64;
        let keep_firing_for = self.rule.keep_firing_for.as_millis() as i64;
        let mut still_active = 0u64;
        self.active.retain(|labels, alert| {
            if !returned.contains(labels) {
                if alert.state == AlertState::Firing && keep_firing_for > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    if ts - since < keep_firing_for {
                        still_active += 1;
                        return true;
                    }
                }
                let expired = alert
                    .resolved_at
                    .is_some_and(|at| ts - at > RESOLVED_RETENTION_MS);
                if alert.state == AlertState::Pending || expired {
                    return false;
                }
                if alert.state != AlertState::Inactive {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                }
                return true;
            }
            alert.keep_firing_since = None;
            still_active += 1;
            if alert.state == AlertState::Pending && ts - alert.active_at >= hold {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
            }
            true
        });
        if limit > 0 && still_active > limit {
            self.active.clear();
            return Err(RuleError::Limit {
                rule: self.rule.alert.clone(),
                limit,
                got: still_active,
            });
        }
        let mut samples = Vec::with_capacity(self.active.len() * 2);
        for alert in self.active.values() {
            if alert.state == AlertState::Inactive {
                continue;
            }
            let mut alerts = alert.labels.clone();
            alerts.set(METRIC_NAME, "ALERTS");
            alerts.set("alertstate", alert.state.as_str());
            samples.push(Sample {
                metric: alerts,
                t: ts,
                v: 1.0,
            });
            let mut for_state = alert.labels.clone();
            for_state.set(METRIC_NAME, "ALERTS_FOR_STATE");
            samples.push(Sample {
                metric: for_state,
                t: ts,
                v: (alert.active_at / 1000) as f64,
            });
        }
        Ok(samples)
    }

    /// The alert one result sample raises, with templates expanded.
    fn alert_for(
        &self,
        sample: &Sample,
        ts: i64,
        group_labels: &BTreeMap<String, String>,
        templates: &TemplateContext<'_>,
    ) -> Alert {
        let data = TemplateData {
            labels: sample.metric.without(|name| name == METRIC_NAME),
            external_labels: templates.external_labels.clone(),
            external_url: templates.external_url.to_owned(),
            value: sample.v,
            time_ms: ts,
            query: templates.query.clone(),
        };
        let mut labels = data.labels.clone();
        for (name, value) in group_labels.iter().chain(&self.rule.labels) {
            let expanded = expand_or_error(&self.rule.alert, name, value, &data);
            labels.set(name, &expanded);
        }
        labels.set("alertname", &self.rule.alert);
        let annotations = self
            .rule
            .annotations
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    expand_or_error(&self.rule.alert, name, value, &data),
                )
            })
            .collect();
        Alert {
            labels,
            annotations,
            state: AlertState::Pending,
            value: sample.v,
            active_at: ts,
            fired_at: None,
            resolved_at: None,
            keep_firing_since: None,
        }
    }
}

/// Expands a label or annotation template, or returns Prometheus's error text in its place.
fn expand_or_error(alert: &str, field: &str, text: &str, data: &TemplateData) -> String {
    let name = format!("__alert_{alert}");
    match template::expand(&name, text, data) {
        Ok(expanded) => expanded,
        Err(error) => {
            tracing::warn!(alert, field, %error, "error expanding alert template");
            format!("<error expanding template: {error}>")
        }
    }
}
