//! The slice of Grafana's HTTP API that dashboard tooling uses, over the dashboard library:
//! `GET /api/search`, `GET`/`DELETE /api/dashboards/uid/{uid}` and `POST /api/dashboards/db`
//! (<https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/>). Errors are
//! Grafana's `{"message": …}` with its status codes (400 invalid, 404 missing, 412 exists).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dashboards::{Dashboard, DashboardSource, ImportError, slug};
use crate::server::AppState;

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

/// The dashboard's page, as Grafana's `url`.
fn page_url(state: &AppState, dashboard: &Dashboard) -> String {
    format!(
        "{}/d/{}/{}",
        state.config.current().web.route_prefix(),
        dashboard.uid,
        slug(&dashboard.title)
    )
}

/// `GET /api/search` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    tag: Option<String>,
}

/// `GET /api/search`: dashboards whose title contains `query` (any case) and that carry `tag`.
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Response {
    let needle = query.query.to_lowercase();
    let hits: Vec<Value> = state
        .dashboards()
        .iter()
        .filter(|d| d.title.to_lowercase().contains(&needle))
        .filter(|d| query.tag.as_ref().is_none_or(|tag| d.tags.contains(tag)))
        .map(|d| {
            json!({
                "uid": d.uid,
                "title": d.title,
                "uri": format!("db/{}", slug(&d.title)),
                "url": page_url(&state, d),
                "slug": slug(&d.title),
                "type": "dash-db",
                "tags": d.tags,
                "isStarred": false,
                "folderTitle": d.folder,
            })
        })
        .collect();
    Json(hits).into_response()
}

/// `GET /api/dashboards/uid/{uid}`.
pub(crate) async fn get_dashboard(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Response {
    match state.dashboards().into_iter().find(|d| d.uid == uid) {
        Some(dashboard) => Json(json!({
            "meta": {
                "slug": slug(&dashboard.title),
                "url": page_url(&state, &dashboard),
                "folderTitle": dashboard.folder,
                "provisioned": dashboard.source != DashboardSource::Imported,
                "canSave": dashboard.source == DashboardSource::Imported,
                "canEdit": false,
            },
            "dashboard": dashboard.json,
        }))
        .into_response(),
        None => message(StatusCode::NOT_FOUND, "Dashboard not found"),
    }
}

/// `POST /api/dashboards/db`: imports a dashboard (`{"dashboard": …, "folderTitle": …,
/// "overwrite": …}`, or the dashboard JSON alone).
pub(crate) async fn import(State(state): State<AppState>, body: Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => return message(StatusCode::BAD_REQUEST, format!("invalid JSON: {error}")),
    };
    let existing = state.dashboards();
    let library = state.backends.dashboards();
    match tokio::task::spawn_blocking(move || library.import(body, &existing)).await {
        Ok(Ok(uid)) => {
            let dashboards = state.dashboards();
            let Some(saved) = dashboards.iter().find(|d| d.uid == uid) else {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the saved dashboard is gone",
                );
            };
            Json(json!({
                "status": "success",
                "uid": uid,
                "slug": slug(&saved.title),
                "url": page_url(&state, saved),
                "version": 1,
            }))
            .into_response()
        }
        Ok(Err(error)) => {
            let status = match error {
                ImportError::Invalid(_) => StatusCode::BAD_REQUEST,
                ImportError::Exists(_) | ImportError::Provisioned(_) => {
                    StatusCode::PRECONDITION_FAILED
                }
                ImportError::Disabled | ImportError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            message(status, error.to_string())
        }
        Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// `DELETE /api/dashboards/uid/{uid}`: deletes an imported dashboard.
pub(crate) async fn delete_dashboard(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Response {
    let dashboards = state.dashboards();
    let Some(dashboard) = dashboards.iter().find(|d| d.uid == uid) else {
        return message(StatusCode::NOT_FOUND, "Dashboard not found");
    };
    if dashboard.source != DashboardSource::Imported {
        return message(
            StatusCode::BAD_REQUEST,
            "a provisioned dashboard cannot be deleted; remove its file or ConfigMap",
        );
    }
    match state.backends.dashboards().delete(&uid) {
        Ok(_) => Json(json!({
            "title": dashboard.title,
            "message": format!("Dashboard {} deleted", dashboard.title),
        }))
        .into_response(),
        Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
