//! The request body limit (`limits.request_body_size`), read from the running configuration
//! on every request so that a reload changes it.
//!
//! A declared `Content-Length` above the limit is refused at once with 413; a body without
//! one is wrapped so that reading past the limit fails, which axum's extractors also turn
//! into 413. Nothing past the limit is ever buffered.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;

use crate::server::AppState;

/// Refuses or caps request bodies larger than the configured limit.
pub(crate) async fn limit_request_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.current().limits.request_body_size;
    let limit_bytes = usize::try_from(limit.bytes()).unwrap_or(usize::MAX);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit.bytes()) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {length} bytes exceeds the limit of {limit} \
                 (limits.request_body_size)\n"
            ),
        )
            .into_response();
    }
    let request = request.map(|body| Body::new(Limited::new(body, limit_bytes)));
    next.run(request).await
}
