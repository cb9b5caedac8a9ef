//! Targets, as Prometheus's page shows them: every scrape pool with its targets' health,
//! labels after relabeling, last scrape and error; `?health=down` keeps the failing ones and
//! `?search=` those whose URL or labels contain the text.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{Frame, format};
use crate::server::AppState;

/// The page's filters.
#[derive(Deserialize, Default)]
pub(crate) struct TargetFilter {
    #[serde(default)]
    health: String,
    #[serde(default)]
    search: String,
}

/// One target's row.
pub(crate) struct TargetRow {
    pub(crate) url: String,
    pub(crate) health: &'static str,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) last_scrape: String,
    pub(crate) duration: String,
    pub(crate) error: String,
}

/// A scrape pool and its targets.
pub(crate) struct Pool {
    pub(crate) name: String,
    pub(crate) up: usize,
    pub(crate) total: usize,
    pub(crate) targets: Vec<TargetRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "targets.html")]
pub(crate) struct TargetsPage {
    frame: Frame,
    ready: bool,
    health: String,
    search: String,
    pools: Vec<Pool>,
    dropped: usize,
}

/// `GET /targets`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Query(filter): Query<TargetFilter>,
) -> TargetsPage {
    let mut page = TargetsPage {
        frame: Frame::new(&state, "targets", "Targets"),
        ready: false,
        pools: Vec::new(),
        dropped: 0,
        health: filter.health.clone(),
        search: filter.search.clone(),
    };
    let Some(metrics) = state.backends.metrics() else {
        return page;
    };
    page.ready = true;
    page.dropped = metrics.scrapes.dropped_targets().len();
    let now = format::now_ms();
    let needle = filter.search.to_lowercase();
    let mut pools: BTreeMap<String, Pool> = BTreeMap::new();
    for target in metrics.scrapes.active_targets() {
        let pool = pools
            .entry(target.scrape_pool.clone())
            .or_insert_with(|| Pool {
                name: target.scrape_pool.clone(),
                up: 0,
                total: 0,
                targets: Vec::new(),
            });
        let health = target.status.health();
        pool.total += 1;
        pool.up += usize::from(health == "up");
        let url = target
            .target
            .url()
            .map(|u| u.to_string())
            .unwrap_or_default();
        let labels: Vec<(String, String)> = target
            .target
            .labels()
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let wanted_health = filter.health.is_empty() || filter.health == health;
        let wanted_text = needle.is_empty()
            || url.to_lowercase().contains(&needle)
            || labels.iter().any(|(name, value)| {
                name.to_lowercase().contains(&needle) || value.to_lowercase().contains(&needle)
            });
        if !(wanted_health && wanted_text) {
            continue;
        }
        let last_ms = target.status.last_scrape.and_then(|time| {
            time.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_millis()).ok())
        });
        pool.targets.push(TargetRow {
            url,
            health,
            labels,
            last_scrape: format::ago(now, last_ms),
            duration: format::duration(target.status.last_duration),
            error: target.status.last_error.clone(),
        });
    }
    page.pools = pools.into_values().collect();
    page
}
