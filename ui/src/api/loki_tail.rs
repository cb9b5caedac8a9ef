//! `GET /loki/api/v1/tail`: the live tail over a websocket
//! (<https://grafana.com/docs/loki/latest/reference/loki-http-api/#stream-logs>).
//!
//! After the upgrade the server sends the newest `limit` entries since `start` (default one
//! hour ago), then, once a second, the entries that arrived with timestamps up to
//! `now - delay_for` (seconds, default 0), each batch as Loki's
//! `{"streams":[{"stream":{…},"values":[["<ns>","<line>"]]}],"dropped_entries":null}`.
//! The query is checked before the upgrade: a bad one is a plain-text 400. Edge case decided
//! here: an entry pushed later with a timestamp older than what was already sent is not sent.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use sightline_logstore::logql::{self, Evaluator, Expr, LogExpr, QueryLimits};
use sightline_logstore::store::Direction;

use super::Params;
use super::loki_query::{LokiError, limits, now_ns, streams_json, time_param};
use crate::server::AppState;

/// How often new entries are looked for.
const POLL: Duration = Duration::from_secs(1);

/// `GET /loki/api/v1/tail`.
pub(crate) async fn tail(
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
    params: Params,
) -> Result<Response, LokiError> {
    let bad = |message: String| LokiError::from(logql::QueryError::Invalid(message));
    let text = params.get("query").unwrap_or_default().to_owned();
    let Expr::Log(log) = logql::parse(&text)? else {
        return Err(bad("tail needs a log query, not a metric query".into()));
    };
    let limits = limits(&state);
    let limit: usize = match params.get("limit").filter(|l| !l.is_empty()) {
        Some(value) => value
            .parse()
            .map_err(|_| bad(format!("invalid limit {value:?}")))?,
        None => 100,
    };
    if limit > limits.max_entries {
        return Err(logql::QueryError::EntriesLimit {
            requested: limit,
            max: limits.max_entries,
        }
        .into());
    }
    let delay_ns: i64 = match params.get("delay_for").filter(|d| !d.is_empty()) {
        Some(value) => value
            .parse::<i64>()
            .map_err(|_| bad(format!("invalid delay_for {value:?}: give seconds")))?
            .saturating_mul(1_000_000_000),
        None => 0,
    };
    let start = time_param(&params, "start", now_ns() - 3_600_000_000_000)?;
    let Some(backend) = state.backends.logs() else {
        return Err(bad("log storage is still starting".into()));
    };
    let store = backend.store.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        run(socket, store, log, limits, limit, start, delay_ns).await;
    }))
}

/// One batch of the tail: entries in `[from, to)`, at most `limit`.
async fn batch(
    store: &std::sync::Arc<sightline_logstore::store::LogStore>,
    log: &LogExpr,
    limits: &QueryLimits,
    from: i64,
    to: i64,
    direction: Direction,
    limit: usize,
) -> Result<Option<String>, String> {
    let (store, log, limits) = (store.clone(), log.clone(), limits.clone());
    let streams = tokio::task::spawn_blocking(move || {
        Evaluator::new(&*store, limits).logs(&log, from, to, direction, limit)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if streams.iter().all(|s| s.entries.is_empty()) {
        return Ok(None);
    }
    let mut streams = streams;
    for stream in &mut streams {
        // Tail batches are sent oldest first.
        stream.entries.sort_by_key(|(ts, _)| *ts);
    }
    Ok(Some(
        serde_json::json!({"streams": streams_json(&streams), "dropped_entries": null}).to_string(),
    ))
}

async fn run(
    mut socket: WebSocket,
    store: std::sync::Arc<sightline_logstore::store::LogStore>,
    log: LogExpr,
    limits: QueryLimits,
    limit: usize,
    start: i64,
    delay_ns: i64,
) {
    let mut from = start;
    let mut first = true;
    let mut ticker = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        }
        let to = now_ns() - delay_ns + 1;
        if to <= from {
            continue;
        }
        let (direction, batch_limit) = if first {
            (Direction::Backward, limit)
        } else {
            (Direction::Forward, limits.max_entries)
        };
        first = false;
        match batch(&store, &log, &limits, from, to, direction, batch_limit).await {
            Ok(Some(message)) => {
                if socket.send(Message::Text(message.into())).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!("live tail query failed: {error}");
                let _ = socket
                    .send(Message::Text(
                        format!("{{\"error\":{}}}", serde_json::Value::String(error)).into(),
                    ))
                    .await;
                return;
            }
        }
        from = to;
    }
}
