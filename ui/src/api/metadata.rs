//! Metric metadata from the scrapes: `/api/v1/metadata` and `/api/v1/targets/metadata`
//! (https://prometheus.io/docs/prometheus/latest/querying/api/#querying-metric-metadata).
//!
//! Follows Prometheus's web/api/v1 `metricMetadata` and `targetMetadata`: metadata of all
//! active targets, deduplicated per metric for the first; one entry per target and metric,
//! with the target's labels, for the second. `limit` and `limit_per_metric` are integers (a
//! negative one means no limit, `0` an empty answer, as in Prometheus); `metric` narrows to one
//! metric family and then `/targets/metadata` leaves out the `metric` field, as Prometheus
//! does. Decision: answers are sorted (metric names, then type, help, unit; targets by job
//! and labels) so that `limit` cuts the same entries every time, where Prometheus cuts in
//! Go's random map order.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use sightline_scraper::scrape::metadata::Metadata;
use sightline_tsdb::promql;

use super::prometheus::{backend, label_map};
use super::{ApiError, Params, success};
use crate::server::AppState;

/// One metadata entry as Prometheus writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct Entry<'a> {
    #[serde(rename = "type")]
    metric_type: &'static str,
    help: &'a str,
    unit: &'a str,
}

impl<'a> From<&'a Metadata> for Entry<'a> {
    fn from(metadata: &'a Metadata) -> Entry<'a> {
        Entry {
            metric_type: metadata.metric_type.as_str(),
            help: &metadata.help,
            unit: &metadata.unit,
        }
    }
}

/// An optional integer parameter; `None` (no limit) when absent or negative.
fn limit(params: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    match params.get(name) {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse::<i64>()
            .map(|limit| usize::try_from(limit).ok())
            .map_err(|_| ApiError::bad_data(format!("{name} must be a number"))),
    }
}

/// `GET /api/v1/metadata`
pub(crate) async fn metric_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let backend = backend(&state)?;
    let limit_metrics = limit(&params, "limit")?;
    let limit_per_metric = limit(&params, "limit_per_metric")?.filter(|limit| *limit > 0);
    let metric = params.get("metric").filter(|metric| !metric.is_empty());
    let targets = backend.scrapes.active_targets();
    let mut metrics: BTreeMap<&str, BTreeSet<Entry>> = BTreeMap::new();
    for target in &targets {
        let found: Vec<(&String, &Metadata)> = match metric {
            Some(metric) => target.metadata.get_key_value(metric).into_iter().collect(),
            None => target.metadata.iter().collect(),
        };
        for (name, metadata) in found {
            let entries = metrics.entry(name).or_default();
            if limit_per_metric.is_none_or(|limit| entries.len() < limit) {
                entries.insert(metadata.into());
            }
        }
    }
    let answer: BTreeMap<&str, BTreeSet<Entry>> = metrics
        .into_iter()
        .take(limit_metrics.unwrap_or(usize::MAX))
        .collect();
    Ok(success(answer))
}

/// `GET /api/v1/targets/metadata`
pub(crate) async fn target_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct TargetEntry<'a> {
        target: BTreeMap<&'a str, &'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        metric: Option<&'a str>,
        #[serde(flatten)]
        entry: Entry<'a>,
    }
    let backend = backend(&state)?;
    let limit = limit(&params, "limit")?;
    let matchers = match params.get("match_target").filter(|m| !m.is_empty()) {
        Some(selector) => promql::parser::parse_selector(selector)
            .map_err(|error| ApiError::bad_data(error.to_string()))?,
        None => Vec::new(),
    };
    let metric = params.get("metric").filter(|metric| !metric.is_empty());
    let targets = backend.scrapes.active_targets();
    let labels: Vec<_> = targets.iter().map(|t| t.target.labels()).collect();
    let mut answer: Vec<TargetEntry> = Vec::new();
    for (target, labels) in targets.iter().zip(&labels) {
        if limit.is_some_and(|limit| answer.len() >= limit) {
            break;
        }
        if !matchers
            .iter()
            .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
        {
            continue;
        }
        let mut found: Vec<(&String, &Metadata)> = match metric {
            Some(metric) => target.metadata.get_key_value(metric).into_iter().collect(),
            None => target.metadata.iter().collect(),
        };
        found.sort_by_key(|(name, _)| *name);
        answer.extend(found.into_iter().map(|(name, metadata)| TargetEntry {
            target: label_map(labels),
            metric: metric.is_none().then_some(name.as_str()),
            entry: metadata.into(),
        }));
    }
    Ok(success(answer))
}
