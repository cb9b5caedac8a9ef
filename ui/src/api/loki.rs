//! The Loki push API (`POST /loki/api/v1/push`, legacy `/api/prom/push`) and `POST /flush`.
//!
//! Status codes as Loki answers them: 204 when everything was stored; 400 with Loki's
//! plain-text list of rejections when some or all entries broke a limit (the good ones are
//! stored all the same); 413 for a body or push too large; 415 for a Content-Type or
//! Content-Encoding we do not read; 429 with `Retry-After` when a rate limit is exhausted
//! (nothing is stored); 500 when storage fails; 503 while storage is still starting.
//! A 204 or 400 is sent only after the stored entries are in the synced WAL.

use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sightline_core::config::LogLimitsConfig;
use sightline_logstore::push::{self, DecodeLimits, PushLimits, PushOutcome, RateLimits};
use sightline_logstore::{Error, ErrorKind};

use crate::server::AppState;

/// Rate limits from the configuration.
pub(crate) fn rate_limits(config: &LogLimitsConfig) -> RateLimits {
    RateLimits {
        ingestion_rate_bytes: config.ingestion_rate.bytes(),
        ingestion_burst_bytes: config.ingestion_burst_size.bytes(),
        per_stream_rate_bytes: config.per_stream_rate_limit.bytes(),
        per_stream_burst_bytes: config.per_stream_rate_limit_burst.bytes(),
    }
}

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
    }
}

/// Loki answers errors as plain text with a trailing newline.
fn error_response(error: &Error) -> Response {
    let mut response = (status(error.kind()), format!("{error}\n")).into_response();
    if let Some(wait) = error.retry_after() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "log storage is still starting\n",
    )
        .into_response()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `POST /loki/api/v1/push` and `POST /api/prom/push`.
pub(crate) async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(backend) = state.backends.logs() else {
        return unavailable();
    };
    let config = state.config.current();
    let decode_limits = DecodeLimits {
        max_decompressed_bytes: usize::try_from(config.limits.request_body_size.bytes())
            .unwrap_or(usize::MAX)
            .saturating_mul(4),
    };
    let request = match push::decode(
        &body,
        header_text(&headers, header::CONTENT_TYPE),
        header_text(&headers, header::CONTENT_ENCODING),
        &decode_limits,
    ) {
        Ok(request) => request,
        Err(error) => return error_response(&error),
    };
    let validated = push::validate(
        request,
        &PushLimits::from_config(&config.limits.logs),
        SystemTime::now(),
    );
    {
        let mut limiter = backend
            .rate_limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let limits = rate_limits(&config.limits.logs);
        if limiter.limits() != limits {
            *limiter = push::RateLimiter::new(limits, Instant::now());
        }
        if let Err(error) = limiter.check(&validated, Instant::now()) {
            return error_response(&error);
        }
    }
    let store = backend.store.clone();
    let (validated, stored) = match tokio::task::spawn_blocking(move || {
        let stored = store.push(&validated.streams);
        (validated, stored)
    })
    .await
    {
        Ok(done) => done,
        Err(panicked) => {
            tracing::error!("log push task failed: {panicked}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "log push task failed\n").into_response();
        }
    };
    if let Err(error) = stored {
        if error.kind() == ErrorKind::StorageFull {
            tracing::error!(
                "disk full: log pushes are refused with 507 until space is freed: {error}"
            );
        } else {
            tracing::error!("cannot store pushed logs: {error}");
        }
        return error_response(&error);
    }
    match (validated.outcome(), validated.error()) {
        (PushOutcome::Accepted, _) | (_, None) => StatusCode::NO_CONTENT.into_response(),
        (_, Some(error)) => error_response(&error),
    }
}

/// `POST /flush`: cuts every head chunk and persists it (as Loki's `/flush`), so that disk
/// usage can be measured; 204 when done.
///
/// Free heap pages go back to the kernel first: a flush usually follows the end of a burst
/// of pushes, whose freed buffers (30–40 MB after the 2 GiB benchmark push) glibc keeps
/// until the next periodic trim, and the flush's own buffers landed beside them, setting
/// the process's peak resident memory (docs/BENCHMARKS.md).
pub(crate) async fn flush(State(state): State<AppState>) -> Response {
    let Some(backend) = state.backends.logs() else {
        return unavailable();
    };
    let store = backend.store.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        crate::memory_ceiling::release_free_memory();
        store.flush()
    });
    match flushed.await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(error)) => {
            tracing::error!("cannot flush the log store: {error}");
            error_response(&error)
        }
        Err(panicked) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("flush task failed: {panicked}\n"),
        )
            .into_response(),
    }
}
