//! Lifecycle endpoints as Prometheus serves them: `/-/healthy`, `/-/ready`, `/-/reload`.
//!
//! Healthy means the process answers; ready means storage recovery has finished and queries
//! see all acknowledged data. Reload re-reads the configuration; a bad file keeps the running
//! configuration and answers 500 with the error's `file:line:col`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::server::AppState;

/// Whether start-up recovery has finished; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A handle that reports not ready until [`Readiness::set_ready`] is called.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Marks recovery as finished: `/-/ready` answers 200 from now on.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once recovery has finished.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `GET /-/healthy`: 200 while the process can answer at all.
pub(crate) async fn healthy() -> &'static str {
    "Sightline is Healthy.\n"
}

/// `GET /-/ready`: 200 after storage recovery, 503 before.
pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "Sightline is Ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}

/// `POST /-/reload`: re-reads the configuration; 500 with the reason when it is bad.
pub(crate) async fn reload(State(state): State<AppState>) -> impl IntoResponse {
    let config = state.config.clone();
    match tokio::task::spawn_blocking(move || config.reload()).await {
        Ok(Ok(())) => (StatusCode::OK, String::new()),
        Ok(Err(error)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {error}\n"),
        ),
        Err(join_error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {join_error}\n"),
        ),
    }
}
