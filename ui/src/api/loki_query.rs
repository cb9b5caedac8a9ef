//! The Loki query API (<https://grafana.com/docs/loki/latest/reference/loki-http-api/>):
//! `query`, `query_range`, `labels`, `label/<name>/values`, `series`, `index/stats`,
//! `index/volume`, `format_query` and `/ready`, with Loki's JSON shapes. The live tail is in
//! [`super::loki_tail`].
//!
//! Decided here, where Loki's documentation leaves room:
//! - Timestamps: RFC 3339, float seconds (`1700000000.5`), or an integer — nanoseconds as
//!   Loki reads them, except that an integer of at most 12 digits is read as seconds (a
//!   nanosecond time of this century has 19 digits, so nothing Grafana sends is ambiguous).
//! - `since` (a duration) sets the default `start` of every ranged endpoint, as in Loki.
//! - Errors are plain text with Loki's status codes: 400 for a bad query or parameter and for
//!   a limit, 504 for a timeout, 500 for storage, 503 while storage starts.
//! - A log query sent to the instant `query` endpoint is refused, as Loki refuses it.
//! - `index/stats` and `index/volume` read the entry columns (timestamps and sizes, not the
//!   lines) of the matching streams' chunks in the range: exact figures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sightline_logstore::logql::{
    self, Evaluator, Expr, LabelSet, MetricResult, QueryError, QueryErrorKind, QueryLimits,
    StreamResult,
};
use sightline_logstore::store::{Direction, LogStore};

use super::Params;
use crate::server::AppState;

/// A failed request: status and plain-text message.
pub(crate) struct LokiError(StatusCode, String);

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

impl From<QueryError> for LokiError {
    fn from(error: QueryError) -> Self {
        let status = match error.kind() {
            QueryErrorKind::BadRequest | QueryErrorKind::Limit => StatusCode::BAD_REQUEST,
            QueryErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            QueryErrorKind::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        };
        LokiError(status, error.to_string())
    }
}

fn bad(message: impl Into<String>) -> LokiError {
    LokiError(StatusCode::BAD_REQUEST, message.into())
}

/// Current time in nanoseconds.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A timestamp parameter in nanoseconds (see the module docs for the accepted forms).
pub(crate) fn time_param(params: &Params, name: &str, default: i64) -> Result<i64, LokiError> {
    let Some(value) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let integer: i64 = value
            .parse()
            .map_err(|_| bad(format!("invalid {name}: {value:?} is out of range")))?;
        return Ok(if value.len() <= 12 {
            integer.saturating_mul(1_000_000_000)
        } else {
            integer
        });
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok((seconds * 1e9).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| {
            bad(format!(
                "invalid {name}: cannot parse {value:?}: use RFC 3339, Unix seconds or Unix nanoseconds"
            ))
        })
}

/// The `start` and `end` of a request in nanoseconds: `end` defaults to now; `start` to
/// `since` (a duration) before `end` — before now when `end` is in the future, as Loki has
/// it — else to `default_span` before `end`.
fn range_params(params: &Params, default_span: i64) -> Result<(i64, i64), LokiError> {
    let now = now_ns();
    let end = time_param(params, "end", now)?;
    let start = match duration_param(params, "since")? {
        Some(since) => end.min(now).saturating_sub(since),
        None => end.saturating_sub(default_span),
    };
    Ok((time_param(params, "start", start)?, end))
}

/// A duration parameter (`step`, `interval`) in nanoseconds: `15s`, `1m`, or float seconds.
fn duration_param(params: &Params, name: &str) -> Result<Option<i64>, LokiError> {
    let Some(value) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(Some((seconds * 1e9).round() as i64));
    }
    logql::units::parse_duration_ns(value)
        .map(Some)
        .ok_or_else(|| {
            bad(format!(
                "invalid {name}: cannot parse {value:?} as a duration"
            ))
        })
}

fn limit_param(params: &Params) -> Result<usize, LokiError> {
    match params.get("limit").filter(|v| !v.is_empty()) {
        None => Ok(100),
        Some(value) => value.parse().map_err(|_| {
            bad(format!(
                "invalid limit: {value:?} is not a positive integer"
            ))
        }),
    }
}

fn direction_param(params: &Params) -> Result<Direction, LokiError> {
    match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(bad(format!(
            "invalid direction {other:?}: use forward or backward"
        ))),
    }
}

fn store(state: &AppState) -> Result<Arc<LogStore>, LokiError> {
    state
        .backends
        .logs()
        .map(|backend| backend.store.clone())
        .ok_or_else(|| {
            LokiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "log storage is still starting".into(),
            )
        })
}

/// The limits of a query from the running configuration (`limits.logs` counts of 0: none).
pub(crate) fn limits(state: &AppState) -> QueryLimits {
    let config = state.config.current();
    QueryLimits::from_config(&config.limits.logs, &config.query)
}

/// Runs `work` on a query thread ([`crate::query_thread`]).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LokiError> + Send + 'static,
) -> Result<T, LokiError> {
    crate::query_thread::run(work).await.map_err(|panicked| {
        LokiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("query task failed: {panicked}"),
        )
    })?
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// A sample value as Prometheus and Loki print it.
fn value_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// A timestamp as Loki prints sample times: float seconds.
fn seconds(ns: i64) -> Value {
    json!(ns as f64 / 1e9)
}

fn labels_json(labels: &LabelSet) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub(crate) fn streams_json(streams: &[StreamResult]) -> Value {
    Value::Array(
        streams
            .iter()
            .map(|s| {
                json!({
                    "stream": labels_json(&s.labels),
                    "values": s.entries.iter().map(|(ts, line)| json!([ts.to_string(), line])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn stats_json(stats: logql::QueryStats, started: Instant) -> Value {
    let seconds = started.elapsed().as_secs_f64();
    let per_second = |total: u64| {
        if seconds > 0.0 {
            (total as f64 / seconds) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_second(stats.bytes_read),
            "linesProcessedPerSecond": per_second(stats.entries_read),
            "totalBytesProcessed": stats.bytes_read,
            "totalLinesProcessed": stats.entries_read,
            "execTime": seconds,
            "queueTime": 0,
            "totalChunksRef": stats.chunks_read + stats.chunks_skipped,
            "totalChunksDownloaded": stats.chunks_read,
        }
    })
}

fn query_text(params: &Params) -> Result<String, LokiError> {
    params
        .get("query")
        .filter(|q| !q.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad("missing query parameter \"query\""))
}

/// Loki's default step: the range over 250 points, at least a second.
fn default_step(start_ns: i64, end_ns: i64) -> i64 {
    let seconds = ((end_ns - start_ns) as f64 / 1e9 / 250.0).ceil().max(1.0);
    (seconds * 1e9) as i64
}

/// `GET|POST /loki/api/v1/query`: an instant metric query (`limit` applies to log queries,
/// which this endpoint refuses, so it is not read).
pub(crate) async fn query(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    let text = query_text(&params)?;
    let time = time_param(&params, "time", now_ns())?;
    let limits = limits(&state);
    let expr = logql::parse(&text)?;
    let Expr::Metric(metric) = expr else {
        return Err(bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        ));
    };
    blocking(move || {
        let started = Instant::now();
        let mut evaluator = Evaluator::new(&*store, limits);
        let result = evaluator.metric(&metric, time, time, 0)?;
        let stats = stats_json(evaluator.stats(), started);
        Ok(success(match result {
            MetricResult::Scalar(points) => {
                let value = points.first().map_or(0.0, |p| p.1);
                json!({"resultType": "scalar", "result": [seconds(time), value_text(value)], "stats": stats})
            }
            MetricResult::Series(series) => {
                let result: Vec<Value> = series
                    .iter()
                    .filter_map(|s| {
                        let (t, v) = s.points.first()?;
                        Some(json!({"metric": labels_json(&s.labels), "value": [seconds(*t), value_text(*v)]}))
                    })
                    .collect();
                json!({"resultType": "vector", "result": result, "stats": stats})
            }
        }))
    })
    .await
}

/// `GET|POST /loki/api/v1/query_range`: log queries give streams, metric queries a matrix.
pub(crate) async fn query_range(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    let text = query_text(&params)?;
    let (start, end) = range_params(&params, 3_600_000_000_000)?;
    if end < start {
        return Err(bad(
            "end timestamp must not be before or equal to start time",
        ));
    }
    let limit = limit_param(&params)?;
    let direction = direction_param(&params)?;
    let step = duration_param(&params, "step")?.unwrap_or_else(|| default_step(start, end));
    if step <= 0 {
        return Err(bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let interval = duration_param(&params, "interval")?.unwrap_or(0);
    let limits = limits(&state);
    let expr = logql::parse(&text)?;
    blocking(move || {
        let started = Instant::now();
        let mut evaluator = Evaluator::new(&*store, limits);
        let data = match expr {
            Expr::Log(log) => {
                let mut streams = evaluator.logs(&log, start, end, direction, limit)?;
                if interval > 0 {
                    for stream in &mut streams {
                        thin_to_interval(stream, interval, start, end, direction);
                    }
                }
                json!({"resultType": "streams", "result": streams_json(&streams), "stats": stats_json(evaluator.stats(), started)})
            }
            Expr::Metric(metric) => {
                let result = evaluator.metric(&metric, start, end, step)?;
                let series: Vec<Value> = match result {
                    MetricResult::Scalar(points) => vec![json!({
                        "metric": {},
                        "values": points.iter().map(|(t, v)| json!([seconds(*t), value_text(*v)])).collect::<Vec<_>>(),
                    })],
                    MetricResult::Series(series) => series
                        .iter()
                        .map(|s| {
                            json!({
                                "metric": labels_json(&s.labels),
                                "values": s.points.iter().map(|(t, v)| json!([seconds(*t), value_text(*v)])).collect::<Vec<_>>(),
                            })
                        })
                        .collect(),
                };
                json!({"resultType": "matrix", "result": series, "stats": stats_json(evaluator.stats(), started)})
            }
        };
        Ok(success(data))
    })
    .await
}

/// `interval`: keep only entries at least `interval` apart, counted from the start (forward)
/// or the end (backward) of the range, as Loki documents.
fn thin_to_interval(
    stream: &mut StreamResult,
    interval: i64,
    start: i64,
    end: i64,
    direction: Direction,
) {
    let mut next: Option<i64> = None;
    stream.entries.retain(|(ts, _)| {
        let keep = match (direction, next) {
            (_, None) => true,
            (Direction::Forward, Some(n)) => *ts >= n,
            (Direction::Backward, Some(n)) => *ts <= n,
        };
        if keep {
            next = Some(match direction {
                Direction::Forward => start + ((ts - start) / interval + 1) * interval,
                Direction::Backward => end - ((end - ts) / interval + 1) * interval,
            });
        }
        keep
    });
}

/// Streams matching an optional `query` selector in the request's range.
fn matching_streams(
    store: &LogStore,
    params: &Params,
    selector: Option<&str>,
) -> Result<Vec<LabelSet>, LokiError> {
    let (start, end) = range_params(params, 6 * 3_600_000_000_000)?;
    let matchers = match selector.filter(|s| !s.trim().is_empty()) {
        Some(selector) => logql::parse_selector(selector)?,
        None => Vec::new(),
    };
    let streams = store
        .streams(&matchers, start, end.saturating_add(1))
        .map_err(QueryError::from)?;
    Ok(streams
        .into_iter()
        .map(|s| {
            s.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
        .collect())
}

/// `GET|POST /loki/api/v1/labels`.
pub(crate) async fn labels(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    blocking(move || {
        let streams = matching_streams(&store, &params, params.get("query"))?;
        let names: BTreeSet<&String> = streams.iter().flat_map(|s| s.keys()).collect();
        Ok(success(json!(names)))
    })
    .await
}

/// `GET|POST /loki/api/v1/label/<name>/values`.
pub(crate) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    blocking(move || {
        let streams = matching_streams(&store, &params, params.get("query"))?;
        let values: BTreeSet<&String> = streams.iter().filter_map(|s| s.get(&name)).collect();
        Ok(success(json!(values)))
    })
    .await
}

/// `GET|POST /loki/api/v1/series`: the label sets of the streams matching any `match[]`.
pub(crate) async fn series(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    blocking(move || {
        let mut selectors: Vec<&str> = params.all("match[]");
        selectors.extend(params.all("match"));
        if selectors.is_empty() {
            return Err(bad(
                "missing match[] parameter: give at least one stream selector",
            ));
        }
        let mut all = BTreeSet::new();
        for selector in selectors {
            all.extend(matching_streams(&store, &params, Some(selector))?);
        }
        Ok(success(Value::Array(all.iter().map(labels_json).collect())))
    })
    .await
}

/// Per matching stream: entries and bytes in the range (and chunks read).
fn stream_volumes(
    store: &LogStore,
    params: &Params,
) -> Result<Vec<(LabelSet, u64, u64, u64)>, LokiError> {
    let (start, end) = range_params(params, 3_600_000_000_000)?;
    let matchers = logql::parse_selector(&query_text(params)?)?;
    let streams = store
        .streams(&matchers, start, end.saturating_add(1))
        .map_err(QueryError::from)?;
    let mut out = Vec::new();
    for stream in streams {
        // Entry columns only: sizes are known without reading a line.
        let (mut entries, mut bytes, mut chunks) = (0u64, 0u64, 0u64);
        let list = store
            .chunks(stream.id, start, end.saturating_add(1), &[])
            .map_err(QueryError::from)?;
        for chunk in list.chunks {
            chunks += u64::from(chunk.is_stored());
            let read = store.read_chunk(chunk, false).map_err(QueryError::from)?;
            for entry in read.iter().map_err(QueryError::from)? {
                entries += 1;
                bytes += entry.size() as u64;
            }
        }
        if entries == 0 {
            continue;
        }
        let labels = stream
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        out.push((labels, entries, bytes, chunks));
    }
    Ok(out)
}

/// `GET|POST /loki/api/v1/index/stats`.
pub(crate) async fn index_stats(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    blocking(move || {
        let volumes = stream_volumes(&store, &params)?;
        let body = json!({
            "streams": volumes.len(),
            "chunks": volumes.iter().map(|v| v.3).sum::<u64>(),
            "entries": volumes.iter().map(|v| v.1).sum::<u64>(),
            "bytes": volumes.iter().map(|v| v.2).sum::<u64>(),
        });
        Ok(axum::Json(body).into_response())
    })
    .await
}

/// `GET|POST /loki/api/v1/index/volume`: bytes per group of streams, largest first; grouped
/// by `targetLabels` or else by the selector's label names.
pub(crate) async fn index_volume(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, LokiError> {
    let store = store(&state)?;
    blocking(move || {
        let end = time_param(&params, "end", now_ns())?;
        let limit = limit_param(&params)?;
        let matchers = logql::parse_selector(&query_text(&params)?)?;
        let target: Vec<String> = match params.get("targetLabels").filter(|t| !t.is_empty()) {
            Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
            None => matchers.iter().map(|m| m.name().to_owned()).collect(),
        };
        let by_series = params.get("aggregateBy") == Some("series") && params.get("targetLabels").is_none();
        let mut groups: BTreeMap<LabelSet, u64> = BTreeMap::new();
        for (labels, _, bytes, _) in stream_volumes(&store, &params)? {
            let key = if by_series {
                labels
            } else {
                labels
                    .into_iter()
                    .filter(|(k, _)| target.contains(k))
                    .collect()
            };
            *groups.entry(key).or_default() += bytes;
        }
        let mut sorted: Vec<(LabelSet, u64)> = groups.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if limit > 0 {
            sorted.truncate(limit);
        }
        let result: Vec<Value> = sorted
            .iter()
            .map(|(labels, bytes)| json!({"metric": labels_json(labels), "value": [seconds(end), bytes.to_string()]}))
            .collect();
        Ok(success(json!({"resultType": "vector", "result": result})))
    })
    .await
}

/// `GET|POST /loki/api/v1/format_query`: the query in canonical form.
pub(crate) async fn format_query(params: Params) -> Result<Response, LokiError> {
    let text = query_text(&params)?;
    let expr = logql::parse(&text)?;
    Ok(success(Value::String(expr.to_string())))
}

/// `GET /ready`: Loki's readiness probe.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() && state.backends.logs().is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Ingester not ready: log storage is still starting\n",
        )
            .into_response()
    }
}
