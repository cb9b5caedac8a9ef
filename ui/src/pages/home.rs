//! Home: the homelab at a glance — targets up and down, firing alerts, what is ingested per
//! second, storage use against retention, and the latest error lines of the logs.
//!
//! Ingest rates come from the stores' counters: every render records a reading, and the rate
//! is taken against a reading about five minutes old (against start-up until there is one),
//! so Home needs no self-scrape in the config.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use sightline_logstore::store::{Direction, LogStore};

use super::{Frame, format};
use crate::server::AppState;

/// How far back the ingest rates look.
const RATE_WINDOW: Duration = Duration::from_secs(300);
/// Readings kept, at most.
const MAX_READINGS: usize = 64;
/// How far back Home looks for error lines.
const LOG_ERROR_WINDOW_MS: i64 = 3600 * 1000;
/// The error lines Home lists.
const LOG_ERROR_LINES: usize = 10;
/// Newest entries read per stream, at most, when looking for error lines.
const LOG_ERROR_SCAN: usize = 200;
/// Streams searched for error lines, at most (the newest chunks of each).
const LOG_ERROR_STREAMS: usize = 500;

/// Readings of the ingest counters, turned into per-second rates.
pub(crate) struct IngestMeter {
    readings: Mutex<VecDeque<Reading>>,
}

#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    samples: u64,
    lines: u64,
}

impl IngestMeter {
    /// A meter whose first reading is zero now: rates start as averages since start-up.
    pub(crate) fn new() -> IngestMeter {
        let start = Reading {
            at: Instant::now(),
            samples: 0,
            lines: 0,
        };
        IngestMeter {
            readings: Mutex::new(VecDeque::from([start])),
        }
    }

    /// Records the counters' current totals; returns samples/s and lines/s since a reading
    /// at least [`RATE_WINDOW`] old (or the oldest), `None` within a second of it.
    fn rates(&self, samples: u64, lines: u64) -> Option<(f64, f64)> {
        let now = Reading {
            at: Instant::now(),
            samples,
            lines,
        };
        let mut readings = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        readings.push_back(now);
        while readings.len() > 2 && readings[1].at.elapsed() >= RATE_WINDOW {
            readings.pop_front();
        }
        // Many renders within the window: the base reading is all a rate needs.
        while readings.len() > MAX_READINGS {
            readings.remove(1);
        }
        let base = *readings.front()?;
        let seconds = now.at.duration_since(base.at).as_secs_f64();
        (seconds >= 1.0).then(|| {
            (
                now.samples.saturating_sub(base.samples) as f64 / seconds,
                now.lines.saturating_sub(base.lines) as f64 / seconds,
            )
        })
    }
}

/// A figure on a card: a label, a value and a line of detail.
pub(crate) struct Figure {
    pub(crate) label: &'static str,
    pub(crate) value: String,
    pub(crate) detail: String,
}

/// A target whose last scrape failed.
pub(crate) struct DownTarget {
    pub(crate) job: String,
    pub(crate) instance: String,
    pub(crate) error: String,
}

/// A firing alert.
pub(crate) struct FiringAlert {
    pub(crate) name: String,
    pub(crate) severity: String,
    pub(crate) summary: String,
    pub(crate) since: String,
}

/// An error line of the logs.
pub(crate) struct ErrorLine {
    pub(crate) time: String,
    pub(crate) stream: String,
    pub(crate) line: String,
    /// Explore logs on this stream around the line.
    pub(crate) explore: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub(crate) struct HomePage {
    frame: Frame,
    ready: bool,
    /// Listening beyond loopback without authentication.
    exposure: Option<String>,
    targets_up: usize,
    targets_down: usize,
    targets_unknown: usize,
    down: Vec<DownTarget>,
    firing: Vec<FiringAlert>,
    muted: usize,
    ingest: Vec<Figure>,
    storage: Vec<Figure>,
    log_errors: Vec<ErrorLine>,
}

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>) -> HomePage {
    let state_for_blocking = state.clone();
    let log_errors = tokio::task::spawn_blocking(move || {
        state_for_blocking
            .backends
            .logs()
            .map(|logs| recent_error_lines(&logs.store, format::now_ms()))
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let mut page = HomePage {
        frame: Frame::new(&state, "home", "Home"),
        ready: state.backends.metrics().is_some(),
        exposure: crate::auth::exposure_warning(&state.listen, &state.config.current().web.auth),
        targets_up: 0,
        targets_down: 0,
        targets_unknown: 0,
        down: Vec::new(),
        firing: Vec::new(),
        muted: 0,
        ingest: Vec::new(),
        storage: Vec::new(),
        log_errors,
    };
    add_targets(&state, &mut page);
    add_alerts(&state, &mut page);
    add_ingest_and_storage(&state, &mut page);
    page
}

fn add_targets(state: &AppState, page: &mut HomePage) {
    let Some(metrics) = state.backends.metrics() else {
        return;
    };
    for target in metrics.scrapes.active_targets() {
        match target.status.health() {
            "up" => page.targets_up += 1,
            "down" => {
                page.targets_down += 1;
                let labels = target.target.labels();
                page.down.push(DownTarget {
                    job: target.scrape_pool.clone(),
                    instance: labels.get("instance").unwrap_or_default().to_owned(),
                    error: target.status.last_error.clone(),
                });
            }
            _ => page.targets_unknown += 1,
        }
    }
}

fn add_alerts(state: &AppState, page: &mut HomePage) {
    let Some(notifier) = state.backends.notifier() else {
        return;
    };
    let now = format::now_ms();
    let dispatcher = notifier.dispatcher();
    for alert in dispatcher.alerts() {
        if alert.resolved_at(now) {
            continue;
        }
        if dispatcher.muting(&alert, now).is_muted() {
            page.muted += 1;
            continue;
        }
        let label = |name: &str| alert.labels.get(name).unwrap_or_default().to_owned();
        page.firing.push(FiringAlert {
            name: label("alertname"),
            severity: label("severity"),
            summary: alert
                .annotations
                .get("summary")
                .or_else(|| alert.annotations.get("description"))
                .cloned()
                .unwrap_or_default(),
            since: format::ago(now, Some(alert.starts_at)),
        });
    }
    let rank = |severity: &str| match severity {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    };
    page.firing
        .sort_by(|a, b| (rank(&a.severity), &a.name).cmp(&(rank(&b.severity), &b.name)));
}

fn add_ingest_and_storage(state: &AppState, page: &mut HomePage) {
    let config = state.config.current();
    let metrics = state.backends.metrics();
    let logs = state.backends.logs();
    let samples = metrics.map_or(0, |m| m.head.metrics().samples_appended.get());
    let log_stats = logs.map(|l| l.store.stats());
    let lines = log_stats.as_ref().map_or(0, |s| s.entries);
    let rates = state.ingest.rates(samples, lines);
    let rate = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), format::count);
    page.ingest = vec![
        Figure {
            label: "Samples/s",
            value: rate(rates.map(|(s, _)| s)),
            detail: format!(
                "{} series in memory",
                format::count(metrics.map_or(0, |m| m.head.num_series()) as f64)
            ),
        },
        Figure {
            label: "Log lines/s",
            value: rate(rates.map(|(_, l)| l)),
            detail: format!(
                "{} streams",
                format::count(log_stats.as_ref().map_or(0, |s| s.streams) as f64)
            ),
        },
    ];
    let now = format::now_ms();
    if let Some(metrics) = metrics {
        let oldest = metrics
            .blocks
            .blocks()
            .first()
            .map(|block| block.mint)
            .or_else(|| metrics.head.min_time());
        page.storage.push(Figure {
            label: "Metrics on disk",
            value: metrics
                .blocks
                .disk_usage()
                .map_or_else(|_| "—".to_owned(), format::bytes),
            detail: format!(
                "kept {}, oldest sample {}",
                config.storage.metrics.retention,
                format::ago(now, oldest)
            ),
        });
    }
    if let Some(logs) = logs {
        page.storage.push(Figure {
            label: "Logs on disk",
            value: logs
                .store
                .disk_usage()
                .map_or_else(|_| "—".to_owned(), format::bytes),
            detail: format!("kept {}", config.storage.logs.retention),
        });
    }
}

/// The newest lines of the last hour that mention an error, newest first.
fn recent_error_lines(store: &LogStore, now_ms: i64) -> Vec<ErrorLine> {
    let end_ns = now_ms.saturating_add(1).saturating_mul(1_000_000);
    let start_ns = (now_ms - LOG_ERROR_WINDOW_MS).saturating_mul(1_000_000);
    let Ok(streams) = store.streams(&[], start_ns, end_ns) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for stream in streams.iter().take(LOG_ERROR_STREAMS) {
        let Ok(page) = store.entries_containing(
            stream.id,
            start_ns,
            end_ns,
            Direction::Backward,
            LOG_ERROR_SCAN,
            &["error"],
        ) else {
            continue;
        };
        found.extend(
            page.entries
                .into_iter()
                .filter(|entry| mentions_error(&entry.line))
                .take(LOG_ERROR_LINES)
                .map(|entry| (entry.timestamp_ns, stream, entry.line)),
        );
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    found
        .into_iter()
        .take(LOG_ERROR_LINES)
        .map(|(ns, stream, line)| {
            let ms = ns / 1_000_000;
            let selector = stream.labels.to_string();
            ErrorLine {
                time: format::time(ms),
                explore: format!(
                    "/explore/logs?query={}&from={}&to={}",
                    url::form_urlencoded::byte_serialize(selector.as_bytes()).collect::<String>(),
                    ms - 300_000,
                    ms + 300_000
                ),
                stream: selector,
                line,
            }
        })
        .collect()
}

/// Whether a line reads as an error: it says `error`, `fatal` or `panic` in any case.
fn mentions_error(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ["error", "fatal", "panic"]
        .iter()
        .any(|word| lower.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_start_from_zero_at_start_up() {
        let meter = IngestMeter::new();
        assert_eq!(meter.rates(100, 10), None, "no rate within a second");
        std::thread::sleep(Duration::from_millis(1100));
        let (samples, lines) = meter.rates(1100, 110).expect("a rate after a second");
        assert!((800.0..1000.0).contains(&samples), "{samples}");
        assert!((80.0..100.0).contains(&lines), "{lines}");
    }

    #[test]
    fn error_lines_are_recognised_in_any_case() {
        assert!(mentions_error("level=ERROR msg=boom"));
        assert!(mentions_error("panic: runtime error"));
        assert!(!mentions_error("level=info msg=fine"));
    }
}
