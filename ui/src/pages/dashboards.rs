//! Dashboards: the list (search by title or tag, grouped by folder, with an import form)
//! and the dashboard page, a shell with the dashboard JSON inlined that `dashboard.js`
//! renders: Grafana's panels, rows and variables.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Frame;
use crate::dashboards::{DashboardSource, slug};
use crate::server::AppState;

/// A dashboard of the list.
pub(crate) struct ListedDashboard {
    pub(crate) uid: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) tags: Vec<String>,
    pub(crate) imported: bool,
}

/// A folder of the list.
pub(crate) struct Folder {
    pub(crate) title: String,
    pub(crate) dashboards: Vec<ListedDashboard>,
}

/// The list's search.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    tag: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboards.html")]
pub(crate) struct ListPage {
    frame: Frame,
    query: String,
    tag: String,
    folders: Vec<Folder>,
    total: usize,
}

/// `GET /dashboards`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ListPage {
    let all = state.dashboards();
    let total = all.len();
    let needle = query.query.to_lowercase();
    let mut folders: Vec<Folder> = Vec::new();
    for dashboard in all {
        let wanted = (needle.is_empty()
            || dashboard.title.to_lowercase().contains(&needle)
            || dashboard
                .tags
                .iter()
                .any(|t| t.to_lowercase().contains(&needle)))
            && (query.tag.is_empty() || dashboard.tags.contains(&query.tag));
        if !wanted {
            continue;
        }
        let listed = ListedDashboard {
            slug: slug(&dashboard.title),
            uid: dashboard.uid,
            title: dashboard.title,
            tags: dashboard.tags,
            imported: dashboard.source == DashboardSource::Imported,
        };
        match folders.last_mut() {
            Some(folder) if folder.title == dashboard.folder => folder.dashboards.push(listed),
            _ => folders.push(Folder {
                title: dashboard.folder,
                dashboards: vec![listed],
            }),
        }
    }
    ListPage {
        frame: Frame::new(&state, "dashboards", "Dashboards"),
        query: query.query,
        tag: query.tag,
        folders,
        total,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    frame: Frame,
    title: String,
    /// The global scrape interval, for `$__rate_interval`.
    scrape_interval: String,
    /// The dashboard JSON, inlined so the panels' queries start without another round
    /// trip; `<` is escaped so that no string in it can close the script element.
    json: String,
}

/// `GET /d/{uid}` and `GET /d/{uid}/{slug}`, as Grafana's dashboard URLs.
pub(crate) async fn show(State(state): State<AppState>, Path(path): Path<Vec<String>>) -> Response {
    let Some(uid) = path.first() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.dashboards().into_iter().find(|d| &d.uid == uid) {
        Some(dashboard) => DashboardPage {
            frame: Frame::new(&state, "dashboards", "Dashboard"),
            json: dashboard.json.to_string().replace('<', "\\u003c"),
            title: dashboard.title,
            scrape_interval: state.config.current().global.scrape_interval.to_string(),
        }
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            super::NoticePage {
                frame: Frame::new(&state, "dashboards", "Dashboard not found"),
                message: format!("There is no dashboard with uid {uid:?}."),
            },
        )
            .into_response(),
    }
}
