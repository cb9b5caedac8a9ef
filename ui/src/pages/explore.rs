//! Explore: the PromQL and LogQL workbenches. The pages are shells; their scripts
//! (`explore_metrics.js`, `explore_logs.js`) keep every setting in the URL, so a view can be
//! shared, and query the same JSON APIs Grafana does.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Frame;
use crate::server::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "explore_metrics.html")]
pub(crate) struct MetricsPage {
    frame: Frame,
}

#[derive(Template, WebTemplate)]
#[template(path = "explore_logs.html")]
pub(crate) struct LogsPage {
    frame: Frame,
}

/// `GET /explore/metrics`, and Prometheus's `/graph` (alert generator links).
pub(crate) async fn metrics(State(state): State<AppState>) -> MetricsPage {
    MetricsPage {
        frame: Frame::new(&state, "metrics", "Explore metrics"),
    }
}

/// `GET /explore/logs`.
pub(crate) async fn logs(State(state): State<AppState>) -> LogsPage {
    LogsPage {
        frame: Frame::new(&state, "logs", "Explore logs"),
    }
}
