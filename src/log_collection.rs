//! The `log_collection:` section at work: a tailer reading pod logs and files into the log
//! store once per `poll_interval`, with the pods' `app` labels from the Kubernetes API when
//! there is a `kubernetes:` section, and its counters in `/metrics`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use prometheus::{IntCounter, Registry};
use sightline_core::config::Config;
use sightline_logstore::push::PushLimits;
use sightline_logstore::store::LogStore;
use sightline_scraper::tailer::{
    PodMetadata, PollStats, Tailer, TailerOptions, follow_pod_labels, node_name,
};
use tokio_util::sync::CancellationToken;

/// How often the same poll error is logged again while it lasts (a full disk refuses every
/// poll; one line a minute says so without flooding the log).
const REPEAT_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Decides whether a poll error is worth a log line: a new error always, the same one again
/// only after [`REPEAT_WARNING_EVERY`], with how often it happened meanwhile.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<(String, std::time::Instant)>,
    repeats: u64,
}

impl ErrorLog {
    /// The line to log for `error` at `now`, if any.
    fn line(&mut self, error: String, now: std::time::Instant) -> Option<String> {
        if let Some((last, at)) = &self.last
            && *last == error
            && now.duration_since(*at) < REPEAT_WARNING_EVERY
        {
            self.repeats += 1;
            return None;
        }
        let line = match std::mem::take(&mut self.repeats) {
            0 => error.clone(),
            repeats => format!("{error} ({repeats} more times since the last report)"),
        };
        self.last = Some((error, now));
        Some(line)
    }

    /// A poll went through: the next error is news again.
    fn clear(&mut self) {
        self.last = None;
        self.repeats = 0;
    }
}

/// The tailer's counters, named as Promtail's where it has one.
struct TailerMetrics {
    lines: IntCounter,
    bytes: IntCounter,
    dropped: IntCounter,
    rejected: IntCounter,
}

impl TailerMetrics {
    fn register(registry: &Registry) -> anyhow::Result<TailerMetrics> {
        let counter = |name: &str, help: &str| -> anyhow::Result<IntCounter> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(TailerMetrics {
            lines: counter(
                "sightline_tailer_lines_total",
                "Lines tailed from pod logs and files and stored.",
            )?,
            bytes: counter(
                "sightline_tailer_read_bytes_total",
                "Bytes read from tailed files.",
            )?,
            dropped: counter(
                "sightline_tailer_dropped_lines_total",
                "Tailed lines dropped by log_collection.drop rules or dropped streams.",
            )?,
            rejected: counter(
                "sightline_tailer_rejected_lines_total",
                "Tailed lines the log store's validation rejected (limits.logs).",
            )?,
        })
    }

    fn add(&self, stats: PollStats) {
        self.lines.inc_by(stats.lines);
        self.bytes.inc_by(stats.bytes);
        self.dropped.inc_by(stats.dropped);
        self.rejected.inc_by(stats.rejected);
    }
}

/// Starts tailing what `config.log_collection` names, until `shutdown`; positions are kept
/// in `data_dir/positions.json`. `None` when the section tails nothing.
pub fn spawn(
    config: &Config,
    base_dir: &Path,
    data_dir: &Path,
    logs: Arc<LogStore>,
    registry: &Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let section = &config.log_collection;
    if !section.is_enabled() {
        return Ok(None);
    }
    let node = node_name(section);
    let options = TailerOptions::from_config(
        section,
        node.clone(),
        data_dir.join("positions.json"),
        PushLimits::from_config(&config.limits.logs),
    )
    .context("log_collection")?;
    let metrics = TailerMetrics::register(registry).context("cannot register tailer metrics")?;
    let (pods, pod_watch) = match (&section.pods_root, &config.kubernetes) {
        (Some(_), Some(kubernetes)) => {
            let pods = PodMetadata::from_api();
            let (kubernetes, base_dir, filled) =
                (kubernetes.clone(), base_dir.to_owned(), pods.clone());
            let wait = std::time::Duration::from(section.pod_labels_wait);
            let watch = tokio::spawn(async move {
                follow_pod_labels(&kubernetes, &base_dir, &node, filled, wait).await;
            });
            (pods, Some(watch))
        }
        _ => (PodMetadata::default(), None),
    };
    let every = std::time::Duration::from(section.poll_interval);
    let mut tailer = Some(Tailer::new(options, pods));
    Ok(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut errors = ErrorLog::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let Some(mut running) = tailer.take() else {
                break;
            };
            let store = logs.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let result = running.poll(&store);
                (running, result)
            })
            .await;
            match polled {
                Ok((running, result)) => {
                    match result {
                        Ok(stats) => {
                            errors.clear();
                            metrics.add(stats);
                        }
                        Err(error) => {
                            let now = std::time::Instant::now();
                            if let Some(line) = errors.line(error.to_string(), now) {
                                tracing::warn!("log collection: {line}");
                            }
                        }
                    }
                    tailer = Some(running);
                }
                Err(panicked) => {
                    tracing::error!("log collection stopped: {panicked}");
                    break;
                }
            }
        }
        if let Some(watch) = pod_watch {
            watch.abort();
        }
        if let Some(mut running) = tailer
            && let Err(error) = running.save_positions()
        {
            tracing::warn!("cannot save log collection positions: {error}");
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_error_is_logged_once_a_minute_with_its_repeats() {
        let start = std::time::Instant::now();
        let at = |seconds: u64| start + std::time::Duration::from_secs(seconds);
        let mut log = ErrorLog::default();
        let full = || "No space left on device".to_owned();
        assert_eq!(log.line(full(), at(0)), Some(full()));
        assert_eq!(log.line(full(), at(1)), None);
        assert_eq!(log.line(full(), at(30)), None);
        assert_eq!(
            log.line(full(), at(61)),
            Some("No space left on device (2 more times since the last report)".to_owned())
        );
        // Another error is news at once; so is the first one after a good poll.
        assert_eq!(
            log.line("other".to_owned(), at(62)),
            Some("other".to_owned())
        );
        log.clear();
        assert_eq!(
            log.line("other".to_owned(), at(63)),
            Some("other".to_owned())
        );
    }
}
