//! The web UI: pages rendered on the server with askama (templates in `ui/templates`,
//! HTML-escaped by default), enhanced by small scripts that call the same JSON APIs Grafana
//! uses. Every asset is compiled in ([`assets`]); nothing comes from a CDN.
//!
//! Pages: Home (the homelab at a glance), Explore metrics and logs, Dashboards, Alerts,
//! Targets, Rules and Status. Prometheus's `/graph` URLs (alert generator links) open Explore metrics.

mod alerts;
mod assets;
mod dashboards;
mod explore;
mod format;
mod home;
mod rules;
mod status;
mod targets;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub(crate) use home::IngestMeter;

use crate::server::AppState;

/// The pages' routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/explore/metrics", get(explore::metrics))
        .route("/graph", get(explore::metrics))
        .route("/explore/logs", get(explore::logs))
        .route("/dashboards", get(dashboards::list))
        .route("/d/{uid}", get(dashboards::show))
        .route("/d/{uid}/{slug}", get(dashboards::show))
        .route("/alerts", get(alerts::page))
        .route("/targets", get(targets::page))
        .route("/rules", get(rules::page))
        .route("/status", get(status::page))
        .route("/static/{*file}", get(assets::serve))
}

/// One entry of the main navigation.
pub(crate) struct NavItem {
    /// What [`Frame::nav`] names it by.
    pub(crate) id: &'static str,
    /// Its path under the route prefix.
    pub(crate) path: &'static str,
    /// Its text.
    pub(crate) label: &'static str,
}

const NAV: &[NavItem] = &[
    NavItem {
        id: "home",
        path: "/",
        label: "Home",
    },
    NavItem {
        id: "metrics",
        path: "/explore/metrics",
        label: "Metrics",
    },
    NavItem {
        id: "logs",
        path: "/explore/logs",
        label: "Logs",
    },
    NavItem {
        id: "dashboards",
        path: "/dashboards",
        label: "Dashboards",
    },
    NavItem {
        id: "alerts",
        path: "/alerts",
        label: "Alerts",
    },
    NavItem {
        id: "targets",
        path: "/targets",
        label: "Targets",
    },
    NavItem {
        id: "rules",
        path: "/rules",
        label: "Rules",
    },
    NavItem {
        id: "status",
        path: "/status",
        label: "Status",
    },
];

/// What every page's frame (`base.html`) needs: links under the route prefix, asset URLs
/// that change with the build, the page title and which navigation entry is current.
pub(crate) struct Frame {
    /// The route prefix, `""` or e.g. `/sightline`.
    pub(crate) prefix: String,
    /// Appended to asset URLs, so a new build never meets a cached old asset.
    pub(crate) version: String,
    /// The `<title>`.
    pub(crate) title: &'static str,
    /// The current navigation entry's id.
    pub(crate) nav: &'static str,
}

impl Frame {
    fn new(state: &AppState, nav: &'static str, title: &'static str) -> Frame {
        Frame {
            prefix: state.config.current().web.route_prefix().to_owned(),
            version: format!("{}-{}", state.build.version, state.build.revision),
            title,
            nav,
        }
    }

    /// The main navigation.
    pub(crate) fn nav_items(&self) -> &'static [NavItem] {
        NAV
    }
}

/// A page that shows only an explanation, e.g. while storage recovers.
#[derive(Template, WebTemplate)]
#[template(path = "notice.html")]
struct NoticePage {
    frame: Frame,
    message: String,
}
