//! The Prometheus HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/):
//! instant and range queries, series, label names and values, targets, build information and
//! TSDB statistics — the shapes Grafana's Prometheus data source and promtool read.
//!
//! Decisions: times default as in Prometheus (`time` = now; `start`/`end` of metadata calls
//! = all time); a range query may return at most 11,000 points per series, as Prometheus
//! allows; queries run on the blocking pool because evaluation is CPU-bound. Query answers
//! carry the engine's `warnings` and `infos` annotations as Prometheus 3 does; the `timeout`
//! parameter lowers the configured `query.timeout` for one query.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;
use sightline_tsdb::promql::{self, Engine, Error as QueryError};
use sightline_tsdb::storage::Querier;

use super::{ApiError, Params, parse_duration, parse_time, success};
use crate::backends::MetricBackend;
use crate::server::AppState;

/// Prometheus's cap on points per series in a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

pub(crate) fn backend(state: &AppState) -> Result<&MetricBackend, ApiError> {
    state
        .backends
        .metrics()
        .ok_or_else(|| ApiError::unavailable("metric storage is still starting"))
}

/// Prometheus's error for each engine error: a query that does not parse is a bad `query`
/// parameter (400), too many samples an `execution` error (422), a timeout — waiting for a
/// slot or evaluating — a `timeout` (503).
fn query_error(error: QueryError) -> ApiError {
    match error {
        QueryError::Parse { .. } => {
            ApiError::bad_data(format!("invalid parameter \"query\": {error}"))
        }
        QueryError::InvalidParameter(_) => ApiError::bad_data(error.to_string()),
        QueryError::Timeout { .. } => ApiError::timeout(error.to_string()),
        QueryError::Storage(_) => ApiError::internal(error.to_string()),
        _ => ApiError::execution(error.to_string()),
    }
}

fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, ApiError> {
    params
        .get(name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter \"{name}\": parameter is missing"
            ))
        })
}

/// Runs `evaluate` on the blocking pool with the backend's engine — its timeout lowered to
/// the request's `timeout` parameter when that is shorter, as Prometheus does — and querier.
async fn evaluate<F>(state: &AppState, params: &Params, evaluate: F) -> Result<Response, ApiError>
where
    F: FnOnce(&Engine, &dyn Querier) -> promql::Result<promql::QueryResult> + Send + 'static,
{
    let timeout = params
        .get("timeout")
        .map(|timeout| parse_duration("timeout", timeout))
        .transpose()?
        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    backend(state)?;
    let backends = state.backends.clone();
    let result = crate::query_thread::run(move || match backends.metrics() {
        Some(backend) => match timeout {
            Some(timeout) => evaluate(
                &backend.engine.with_shorter_timeout(timeout),
                backend.querier.as_ref(),
            ),
            None => evaluate(&backend.engine, backend.querier.as_ref()),
        },
        None => Err(QueryError::InvalidParameter(
            "metric storage is still starting".into(),
        )),
    })
    .await
    .map_err(|error| ApiError::internal(format!("query task failed: {error}")))?
    .map_err(query_error)?;
    Ok(annotated_success(result))
}

/// `{"status":"success","data":…}` with the query's `warnings` and `infos` when there are
/// any, as Prometheus 3 answers.
fn annotated_success(result: promql::QueryResult) -> Response {
    #[derive(Serialize)]
    struct Envelope {
        status: &'static str,
        data: promql::Value,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        infos: Vec<String>,
    }
    axum::Json(Envelope {
        status: "success",
        data: result.value,
        warnings: result.warnings,
        infos: result.infos,
    })
    .into_response()
}

/// `GET|POST /api/v1/query`
pub(crate) async fn query(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = required(&params, "query")?.to_owned();
    let time = match params.get("time") {
        Some(time) => parse_time("time", time)?,
        None => now_ms(),
    };
    evaluate(&state, &params, move |engine, querier| {
        engine.instant_query(querier, &query, time)
    })
    .await
}

/// `GET|POST /api/v1/query_range`
pub(crate) async fn query_range(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = required(&params, "query")?.to_owned();
    let start = parse_time("start", required(&params, "start")?)?;
    let end = parse_time("end", required(&params, "end")?)?;
    let step = parse_duration("step", required(&params, "step")?)?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    evaluate(&state, &params, move |engine, querier| {
        engine.range_query(querier, &query, start, end, step)
    })
    .await
}

/// The `match[]` selectors of a metadata call.
pub(crate) fn selectors(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params
        .all("match[]")
        .into_iter()
        .map(|selector| {
            promql::parser::parse_selector(selector)
                .map_err(|error| ApiError::bad_data(error.to_string()))
        })
        .collect()
}

/// `start` and `end` of a metadata call; all time when absent.
fn time_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = params
        .get("start")
        .map(|t| parse_time("start", t))
        .transpose()?
        .unwrap_or(i64::MIN);
    let end = params
        .get("end")
        .map(|t| parse_time("end", t))
        .transpose()?
        .unwrap_or(i64::MAX);
    Ok((start, end))
}

/// A label set as the API writes it: a JSON object.
pub(crate) fn label_map(labels: &Labels) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

/// `GET|POST /api/v1/series`
pub(crate) async fn series(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let backend = backend(&state)?;
    let selectors = selectors(&params)?;
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&params)?;
    let mut found: Vec<Labels> = Vec::new();
    for matchers in &selectors {
        let series = backend
            .querier
            .select(matchers, start, end)
            .map_err(|error| ApiError::internal(error.to_string()))?;
        found.extend(series.into_iter().map(|s| s.labels));
    }
    found.sort();
    found.dedup();
    Ok(success(found.iter().map(label_map).collect::<Vec<_>>()))
}

/// `GET|POST /api/v1/labels`
pub(crate) async fn label_names(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let backend = backend(&state)?;
    let (start, end) = time_range(&params)?;
    let mut names = Vec::new();
    for matchers in with_all(selectors(&params)?) {
        names.extend(
            backend
                .querier
                .label_names(&matchers, start, end)
                .map_err(|error| ApiError::internal(error.to_string()))?,
        );
    }
    names.sort();
    names.dedup();
    Ok(success(names))
}

/// `GET /api/v1/label/{name}/values`
pub(crate) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let backend = backend(&state)?;
    let (start, end) = time_range(&params)?;
    let mut values = Vec::new();
    for matchers in with_all(selectors(&params)?) {
        values.extend(
            backend
                .querier
                .label_values(&name, &matchers, start, end)
                .map_err(|error| ApiError::internal(error.to_string()))?,
        );
    }
    values.sort();
    values.dedup();
    Ok(success(values))
}

/// No selectors means every series.
fn with_all(selectors: Vec<Vec<Matcher>>) -> Vec<Vec<Matcher>> {
    if selectors.is_empty() {
        vec![Vec::new()]
    } else {
        selectors
    }
}

/// `GET /api/v1/targets`
pub(crate) async fn targets(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Active<'a> {
        discovered_labels: BTreeMap<&'a str, &'a str>,
        labels: BTreeMap<&'a str, &'a str>,
        scrape_pool: &'a str,
        scrape_url: String,
        global_url: String,
        last_error: &'a str,
        last_scrape: String,
        last_scrape_duration: f64,
        health: &'static str,
        scrape_interval: String,
        scrape_timeout: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Dropped<'a> {
        discovered_labels: BTreeMap<&'a str, &'a str>,
        scrape_pool: &'a str,
    }
    let backend = backend(&state)?;
    let wanted = params.get("state").unwrap_or("any");
    let active = backend.scrapes.active_targets();
    let dropped = backend.scrapes.dropped_targets();
    let target_labels: Vec<Labels> = active.iter().map(|t| t.target.labels()).collect();
    let active_json: Vec<Active> = if matches!(wanted, "any" | "active") {
        active
            .iter()
            .zip(&target_labels)
            .map(|(t, labels)| {
                let url = t.target.url().map(|u| u.to_string()).unwrap_or_default();
                Active {
                    discovered_labels: label_map(t.target.discovered_labels()),
                    labels: label_map(labels),
                    scrape_pool: &t.scrape_pool,
                    global_url: url.clone(),
                    scrape_url: url,
                    last_error: &t.status.last_error,
                    last_scrape: t.status.last_scrape.map_or_else(
                        || "0001-01-01T00:00:00Z".to_owned(),
                        |time| chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339(),
                    ),
                    last_scrape_duration: t.status.last_duration.as_secs_f64(),
                    health: t.status.health(),
                    scrape_interval: t.target.interval().to_string(),
                    scrape_timeout: t.target.timeout().to_string(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let dropped_json: Vec<Dropped> = if matches!(wanted, "any" | "dropped") {
        dropped
            .iter()
            .map(|d| Dropped {
                discovered_labels: label_map(&d.discovered_labels),
                scrape_pool: &d.scrape_pool,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut dropped_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &dropped {
        *dropped_counts.entry(d.scrape_pool.as_str()).or_default() += 1;
    }
    Ok(success(serde_json::json!({
        "activeTargets": active_json,
        "droppedTargets": dropped_json,
        "droppedTargetCounts": dropped_counts,
    })))
}

/// `GET /api/v1/status/buildinfo`
pub(crate) async fn build_info(State(state): State<AppState>) -> Response {
    success(serde_json::json!({
        "version": state.build.version,
        "revision": state.build.revision,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": state.build.rustc_version,
    }))
}

/// `GET /api/v1/status/tsdb`
pub(crate) async fn tsdb_status(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let backend = backend(&state)?;
    let limit = match params.get("limit") {
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|limit| *limit > 0)
            .ok_or_else(|| ApiError::bad_data("limit must be a positive number"))?,
        None => 10,
    };
    let stats = backend.head.stats(limit);
    let entries = |list: &[sightline_tsdb::head::StatEntry]| {
        list.iter()
            .map(|e| serde_json::json!({"name": e.name, "value": e.value}))
            .collect::<Vec<_>>()
    };
    Ok(success(serde_json::json!({
        "headStats": {
            "numSeries": stats.num_series,
            "chunkCount": stats.chunk_count,
            "minTime": stats.min_time.unwrap_or(0),
            "maxTime": stats.max_time.unwrap_or(0),
        },
        "seriesCountByMetricName": entries(&stats.series_count_by_metric_name),
        "labelValueCountByLabelName": entries(&stats.label_value_count_by_label_name),
        "memoryInBytesByLabelName": entries(&stats.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": entries(&stats.series_count_by_label_value_pair),
    })))
}
