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
            let watch = tokio::spawn(async move {
                follow_pod_labels(&kubernetes, &base_dir, &node, filled).await;
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
                        Ok(stats) => metrics.add(stats),
                        Err(error) => tracing::warn!("log collection: {error}"),
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
