//! One rule group evaluated at one timestamp: every rule in order, recording rules' results
//! and the alerts' `ALERTS` / `ALERTS_FOR_STATE` series appended to storage, staleness
//! markers for the series a rule wrote last time and not this time.
//!
//! Follows Prometheus's `rules/group.go` (`Group.Eval`, `RestoreForState`):
//! - Rules run one after the other at the same timestamp, so a recording rule's output is
//!   visible to the rules after it in the group.
//! - A rule that fails (bad query result, duplicate labels, limit) is reported in its
//!   [`RuleHealth`] and the other rules still run.
//! - `query_offset` moves the evaluation time into the past; samples are written at that
//!   time.
//! - A scalar result counts as one sample with no labels; a string result is an error.
//! - After a restart, the first evaluation restores each alert's `active_at` from the newest
//!   `ALERTS_FOR_STATE` sample within [`OUTAGE_TOLERANCE_MS`], shifted as Prometheus does so
//!   that an alert with a long `for` does not fire earlier because of the downtime, nor wait
//!   less than [`FOR_GRACE_PERIOD_MS`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_logstore::logql::{self, MetricResult, QueryLimits, StreamReader};
use sightline_tsdb::promql::{Engine, STALE_NAN_BITS, Sample, Value};
use sightline_tsdb::storage::{Appendable, Querier};

use super::RuleError;
use super::alert::{AlertingRuleState, TemplateContext};
use crate::rulefmt::{RecordingRule, Rule, RuleGroup, RuleQuery};
use crate::template::QueryFn;

/// How far back restoring looks for `ALERTS_FOR_STATE` (Prometheus
/// `rules.alert.for-outage-tolerance`: 1 h).
pub const OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;

/// The least time a restored alert still waits before it fires (Prometheus
/// `rules.alert.for-grace-period`: 10 m).
pub const FOR_GRACE_PERIOD_MS: i64 = 10 * 60 * 1000;

/// What the evaluator reads from and writes to, and what templates see.
pub struct EvalContext<'a> {
    /// The PromQL engine.
    pub engine: &'a Engine,
    /// The stored series, queried by the rules.
    pub querier: Arc<dyn Querier>,
    /// The log store, queried by LogQL rules; `None` where there is none (they then fail).
    pub logs: Option<&'a dyn StreamReader>,
    /// Where results are written.
    pub appendable: &'a dyn Appendable,
    /// `global.external_labels`, for templates.
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL, for templates.
    pub external_url: &'a str,
    /// The limits LogQL rules query under.
    pub log_query_limits: &'a QueryLimits,
}

/// How the last evaluation of a rule went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleHealth {
    /// The error of the last evaluation, if it failed.
    pub last_error: Option<String>,
    /// When the rule was last evaluated (ms), if it was.
    pub last_evaluation: Option<i64>,
    /// How long that took, in seconds.
    pub evaluation_seconds: f64,
}

impl RuleHealth {
    /// Prometheus's rule health: `unknown` before the first evaluation, then `err` or `ok`.
    pub fn as_str(&self) -> &'static str {
        match (&self.last_evaluation, &self.last_error) {
            (None, _) => "unknown",
            (Some(_), Some(_)) => "err",
            (Some(_), None) => "ok",
        }
    }
}

/// A rule and what the evaluator keeps about it between evaluations.
#[derive(Debug, Clone)]
pub enum RuleState {
    /// A recording rule and the series it wrote last time (for staleness markers).
    Recording {
        /// The rule as loaded.
        rule: RecordingRule,
        /// Label sets written at the last evaluation.
        written: HashSet<Labels>,
    },
    /// An alerting rule and its active alerts.
    Alerting(AlertingRuleState),
}

/// A rule group with its rules' state.
#[derive(Debug, Clone)]
pub struct Group {
    /// The file the group came from.
    pub file: String,
    /// The group as loaded.
    pub spec: RuleGroup,
    /// Evaluation interval in ms (the group's, else the global one).
    pub interval_ms: i64,
    /// The rules in order, with their state.
    pub rules: Vec<RuleState>,
    /// The health of each rule, in the same order.
    pub health: Vec<RuleHealth>,
    /// `ALERTS` / `ALERTS_FOR_STATE` series written at the last evaluation.
    alert_series: HashSet<Labels>,
    /// Whether alert state still has to be restored from `ALERTS_FOR_STATE`.
    restore_pending: bool,
    /// When the group was last evaluated (ms) and how long it took (s).
    pub last_evaluation: Option<(i64, f64)>,
}

impl Group {
    /// A group that has not been evaluated; it restores alert state at its first evaluation.
    pub fn new(file: String, spec: RuleGroup, global_interval_ms: i64) -> Group {
        let interval_ms = spec
            .interval
            .map_or(global_interval_ms, |d| d.as_millis() as i64)
            .max(1);
        let rules: Vec<RuleState> = spec
            .rules
            .iter()
            .map(|rule| match rule {
                Rule::Recording(rule) => RuleState::Recording {
                    rule: rule.clone(),
                    written: HashSet::new(),
                },
                Rule::Alerting(rule) => RuleState::Alerting(AlertingRuleState::new(rule.clone())),
            })
            .collect();
        Group {
            file,
            health: vec![RuleHealth::default(); rules.len()],
            spec,
            interval_ms,
            rules,
            alert_series: HashSet::new(),
            restore_pending: true,
            last_evaluation: None,
        }
    }

    /// Takes over the state of `old` (the same group before a reload): rules that did not
    /// change keep their alerts and health, and restoring is not done again.
    pub fn inherit(&mut self, old: Group) {
        self.restore_pending = old.restore_pending;
        self.alert_series = old.alert_series;
        self.last_evaluation = old.last_evaluation;
        let mut old_rules: Vec<Option<(RuleState, RuleHealth)>> =
            old.rules.into_iter().zip(old.health).map(Some).collect();
        for (index, new_rule) in self.spec.rules.iter().enumerate() {
            let found = old_rules.iter_mut().find(|slot| {
                slot.as_ref()
                    .is_some_and(|(state, _)| state_rule_equals(state, new_rule))
            });
            if let Some((state, health)) = found.and_then(Option::take) {
                self.rules[index] = state;
                self.health[index] = health;
            }
        }
    }

    /// The number of rules whose last evaluation failed.
    pub fn failing_rules(&self) -> usize {
        self.health
            .iter()
            .filter(|h| h.last_error.is_some())
            .count()
    }

    /// Evaluates every rule at `ts` (ms, before the group's `query_offset`) and appends the
    /// results. Failed rules are recorded in [`Group::health`]; the error returned is only for
    /// storage failing.
    pub fn evaluate(&mut self, ctx: &EvalContext<'_>, ts: i64) -> Result<(), RuleError> {
        let started = Instant::now();
        let offset = self.spec.query_offset.map_or(0, |d| d.as_millis() as i64);
        let ts = ts - offset;
        let mut appender = ctx.appendable.appender();
        let mut alert_series = HashSet::new();
        let query_fn = template_query(ctx, ts);
        let templates = TemplateContext {
            external_labels: ctx.external_labels,
            external_url: ctx.external_url,
            query: query_fn,
        };
        for (index, state) in self.rules.iter_mut().enumerate() {
            let rule_started = Instant::now();
            let outcome = evaluate_rule(ctx, &self.spec, state, ts, &templates);
            let samples = match outcome {
                Ok(samples) => {
                    self.health[index].last_error = None;
                    samples
                }
                Err(error) => {
                    self.health[index].last_error = Some(error.to_string());
                    Vec::new()
                }
            };
            let stale = match state {
                RuleState::Recording { written, .. } => {
                    let now: HashSet<Labels> = samples.iter().map(|s| s.metric.clone()).collect();
                    let gone: Vec<Labels> = written.difference(&now).cloned().collect();
                    *written = now;
                    gone
                }
                RuleState::Alerting(_) => {
                    alert_series.extend(samples.iter().map(|s| s.metric.clone()));
                    Vec::new()
                }
            };
            for sample in &samples {
                appender.append(&sample.metric, ts, sample.v)?;
            }
            for labels in &stale {
                appender.append(labels, ts, f64::from_bits(STALE_NAN_BITS))?;
            }
            // Later rules of the group read what earlier ones wrote.
            appender.commit()?;
            appender = ctx.appendable.appender();
            self.health[index].last_evaluation = Some(ts);
            self.health[index].evaluation_seconds = rule_started.elapsed().as_secs_f64();
        }
        for labels in self.alert_series.difference(&alert_series) {
            appender.append(labels, ts, f64::from_bits(STALE_NAN_BITS))?;
        }
        appender.commit()?;
        self.alert_series = alert_series;
        if self.restore_pending {
            self.restore_pending = false;
            self.restore_for_state(ctx, ts)?;
        }
        self.last_evaluation = Some((ts, started.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Restores each active alert's `active_at` from the newest `ALERTS_FOR_STATE` sample
    /// stored before this process started evaluating.
    fn restore_for_state(&mut self, ctx: &EvalContext<'_>, ts: i64) -> Result<(), RuleError> {
        for state in &mut self.rules {
            let RuleState::Alerting(rule) = state else {
                continue;
            };
            let hold = rule.rule.for_duration.as_millis() as i64;
            if hold < FOR_GRACE_PERIOD_MS {
                // It would fire at its next evaluation anyway, as upstream decides.
                continue;
            }
            for alert in rule.active.values_mut() {
                let mut matchers = vec![equal(METRIC_NAME, "ALERTS_FOR_STATE")?];
                for label in &alert.labels {
                    matchers.push(equal(&label.name, &label.value)?);
                }
                // Samples strictly before `ts`: the one this evaluation wrote is not history.
                let stored = ctx
                    .querier
                    .select(&matchers, ts - OUTAGE_TOLERANCE_MS, ts - 1)?;
                let newest = stored
                    .iter()
                    .filter(|series| series.labels.len() == matchers.len())
                    .flat_map(|series| series.samples(ts - OUTAGE_TOLERANCE_MS, ts - 1))
                    .filter(|(_, v)| v.is_finite())
                    .max_by_key(|(t, _)| *t);
                let Some((down_at, active_seconds)) = newest else {
                    continue;
                };
                let restored_active_at = (active_seconds * 1000.0) as i64;
                let remaining = hold - (down_at - restored_active_at);
                alert.active_at = if remaining <= 0 {
                    // It was firing when the process stopped.
                    restored_active_at
                } else if remaining < FOR_GRACE_PERIOD_MS {
                    ts + FOR_GRACE_PERIOD_MS - hold
                } else {
                    restored_active_at + (ts - down_at)
                };
            }
        }
        Ok(())
    }
}

fn equal(name: &str, value: &str) -> Result<Matcher, RuleError> {
    Matcher::new(MatchOp::Equal, name, value).map_err(|e| RuleError::Query(e.to_string()))
}

fn state_rule_equals(state: &RuleState, rule: &Rule) -> bool {
    match (state, rule) {
        (RuleState::Recording { rule: old, .. }, Rule::Recording(new)) => old == new,
        (RuleState::Alerting(old), Rule::Alerting(new)) => &old.rule == new,
        _ => false,
    }
}

/// The `query` template function: an instant query at the evaluation time.
fn template_query(ctx: &EvalContext<'_>, ts: i64) -> QueryFn {
    let engine = ctx.engine.clone();
    let querier = ctx.querier.clone();
    Arc::new(move |text: &str| {
        let result = engine
            .instant_query(querier.as_ref(), text, ts)
            .map_err(|e| e.to_string())?;
        as_samples(result.value)
            .map(|samples| samples.into_iter().map(|s| (s.metric, s.v)).collect())
            .map_err(|e| e.to_string())
    })
}

/// A LogQL metric query at `ts` (ms) over the log store, as an instant vector.
fn log_samples(
    ctx: &EvalContext<'_>,
    query: &logql::MetricExpr,
    ts: i64,
) -> Result<Vec<Sample>, RuleError> {
    let reader = ctx
        .logs
        .ok_or_else(|| RuleError::Query("LogQL rules need the log store".into()))?;
    let ts_ns = ts.saturating_mul(1_000_000);
    let mut evaluator = logql::Evaluator::new(reader, ctx.log_query_limits.clone());
    let result = evaluator
        .metric(query, ts_ns, ts_ns, 0)
        .map_err(|e| RuleError::Query(e.to_string()))?;
    Ok(match result {
        MetricResult::Scalar(points) => points
            .first()
            .map(|(_, v)| Sample {
                metric: Labels::new(),
                t: ts,
                v: *v,
            })
            .into_iter()
            .collect(),
        MetricResult::Series(series) => series
            .into_iter()
            .filter_map(|series| {
                let (_, v) = *series.points.first()?;
                Some(Sample {
                    metric: Labels::from_pairs(
                        series.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    ),
                    t: ts,
                    v,
                })
            })
            .collect(),
    })
}

/// A rule's query result as an instant vector; a scalar is one sample without labels.
fn as_samples(value: Value) -> Result<Vec<Sample>, RuleError> {
    match value {
        Value::Vector(samples) => Ok(samples),
        Value::Scalar { t, v } => Ok(vec![Sample {
            metric: Labels::new(),
            t,
            v,
        }]),
        other => Err(RuleError::ResultType(other.type_name())),
    }
}

/// Evaluates one rule; returns the samples to append.
fn evaluate_rule(
    ctx: &EvalContext<'_>,
    group: &RuleGroup,
    state: &mut RuleState,
    ts: i64,
    templates: &TemplateContext<'_>,
) -> Result<Vec<Sample>, RuleError> {
    let query = match state {
        RuleState::Recording { rule, .. } => &rule.query,
        RuleState::Alerting(rule) => &rule.rule.query,
    };
    let samples = match query {
        RuleQuery::PromQl(query) => {
            let result = ctx
                .engine
                .instant_expr(ctx.querier.as_ref(), query, ts)
                .map_err(|e| RuleError::Query(e.to_string()))?;
            as_samples(result.value)?
        }
        RuleQuery::LogQl(query) => log_samples(ctx, query, ts)?,
    };
    match state {
        RuleState::Recording { rule, .. } => record(rule, group, samples, ts),
        RuleState::Alerting(rule) => {
            rule.apply(&samples, ts, &group.labels, group.limit, templates)
        }
    }
}

/// A recording rule's output: the result renamed, with the group's and the rule's labels.
fn record(
    rule: &RecordingRule,
    group: &RuleGroup,
    samples: Vec<Sample>,
    ts: i64,
) -> Result<Vec<Sample>, RuleError> {
    let mut seen = HashSet::with_capacity(samples.len());
    let mut out = Vec::with_capacity(samples.len());
    for sample in samples {
        let mut labels = sample.metric;
        labels.set(METRIC_NAME, &rule.record);
        for (name, value) in group.labels.iter().chain(&rule.labels) {
            labels.set(name, value);
        }
        if !seen.insert(labels.clone()) {
            return Err(RuleError::DuplicateLabels {
                rule: rule.record.clone(),
                labels: labels.to_string(),
            });
        }
        out.push(Sample {
            metric: labels,
            t: ts,
            v: sample.v,
        });
    }
    if group.limit > 0 && out.len() as u64 > group.limit {
        return Err(RuleError::Limit {
            rule: rule.record.clone(),
            limit: group.limit,
            got: out.len() as u64,
        });
    }
    Ok(out)
}
