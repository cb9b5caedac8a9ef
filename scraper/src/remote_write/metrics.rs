//! The queues' metrics, under Prometheus's `prometheus_remote_storage_*` names with its
//! `remote_name` and `url` labels, so that its remote-write dashboards and alerts (such as
//! `PrometheusRemoteWriteBehind`) read them unchanged.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::QueueStatus;

/// Every queue's metrics, by `remote_name` and `url`.
#[derive(Clone)]
pub(super) struct RemoteWriteMetrics {
    sent: IntCounterVec,
    failed: IntCounterVec,
    retried: IntCounterVec,
    dropped: IntCounterVec,
    unknown_series: IntCounterVec,
    metadata_sent: IntCounterVec,
    pending: IntGaugeVec,
    shards: IntGaugeVec,
    skipped_segments: IntGaugeVec,
    highest_sent: GaugeVec,
    highest_read: GaugeVec,
}

/// One queue's handles.
#[derive(Clone)]
pub(super) struct QueueMetrics {
    pub(super) sent: prometheus::IntCounter,
    pub(super) failed: prometheus::IntCounter,
    pub(super) retried: prometheus::IntCounter,
    pub(super) dropped: prometheus::IntCounter,
    pub(super) unknown_series: prometheus::IntCounter,
    pub(super) metadata_sent: prometheus::IntCounter,
    pub(super) pending: prometheus::IntGauge,
    pub(super) shards: prometheus::IntGauge,
    pub(super) skipped_segments: prometheus::IntGauge,
    pub(super) highest_sent: prometheus::Gauge,
    pub(super) highest_read: prometheus::Gauge,
}

const LABELS: [&str; 2] = ["remote_name", "url"];

impl RemoteWriteMetrics {
    pub(super) fn new() -> prometheus::Result<RemoteWriteMetrics> {
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &LABELS);
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &LABELS);
        Ok(RemoteWriteMetrics {
            sent: counter(
                "prometheus_remote_storage_samples_total",
                "Samples sent to the remote storage and taken by it.",
            )?,
            failed: counter(
                "prometheus_remote_storage_samples_failed_total",
                "Samples the remote storage refused for good; they are not sent again.",
            )?,
            retried: counter(
                "prometheus_remote_storage_samples_retried_total",
                "Samples sent again after a failed attempt.",
            )?,
            dropped: counter(
                "prometheus_remote_storage_samples_dropped_total",
                "Samples not sent because write_relabel_configs dropped their series.",
            )?,
            unknown_series: counter(
                "sightline_remote_storage_samples_unknown_series_total",
                "Samples not sent because the WAL no longer announces their series.",
            )?,
            metadata_sent: counter(
                "prometheus_remote_storage_metadata_total",
                "Metadata entries sent to the remote storage.",
            )?,
            pending: gauge(
                "prometheus_remote_storage_samples_pending",
                "Samples read from the WAL and waiting to be sent.",
            )?,
            shards: gauge("prometheus_remote_storage_shards", "Parallel senders.")?,
            skipped_segments: gauge(
                "sightline_remote_storage_wal_segments_skipped",
                "WAL segments passed over unread: deleted by a checkpoint during a long outage, or damaged.",
            )?,
            highest_sent: GaugeVec::new(
                Opts::new(
                    "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                    "Newest timestamp sent and taken (Unix seconds).",
                ),
                &LABELS,
            )?,
            highest_read: GaugeVec::new(
                Opts::new(
                    "prometheus_remote_storage_highest_timestamp_in_seconds",
                    "Newest timestamp read from the WAL (Unix seconds).",
                ),
                &LABELS,
            )?,
        })
    }

    pub(super) fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.sent.clone()))?;
        registry.register(Box::new(self.failed.clone()))?;
        registry.register(Box::new(self.retried.clone()))?;
        registry.register(Box::new(self.dropped.clone()))?;
        registry.register(Box::new(self.unknown_series.clone()))?;
        registry.register(Box::new(self.metadata_sent.clone()))?;
        registry.register(Box::new(self.pending.clone()))?;
        registry.register(Box::new(self.shards.clone()))?;
        registry.register(Box::new(self.skipped_segments.clone()))?;
        registry.register(Box::new(self.highest_sent.clone()))?;
        registry.register(Box::new(self.highest_read.clone()))
    }

    /// The handles of queue `name` sending to `url`.
    pub(super) fn queue(&self, name: &str, url: &str) -> QueueMetrics {
        let labels = [name, url];
        QueueMetrics {
            sent: self.sent.with_label_values(&labels),
            failed: self.failed.with_label_values(&labels),
            retried: self.retried.with_label_values(&labels),
            dropped: self.dropped.with_label_values(&labels),
            unknown_series: self.unknown_series.with_label_values(&labels),
            metadata_sent: self.metadata_sent.with_label_values(&labels),
            pending: self.pending.with_label_values(&labels),
            shards: self.shards.with_label_values(&labels),
            skipped_segments: self.skipped_segments.with_label_values(&labels),
            highest_sent: self.highest_sent.with_label_values(&labels),
            highest_read: self.highest_read.with_label_values(&labels),
        }
    }

    /// Copies queue `name`'s counters into `status`.
    pub(super) fn fill(&self, name: &str, url: &str, status: &mut QueueStatus) {
        let queue = self.queue(name, url);
        status.sent = queue.sent.get();
        status.failed = queue.failed.get();
        status.retried = queue.retried.get();
        status.pending = u64::try_from(queue.pending.get()).unwrap_or(0);
        status.shards = usize::try_from(queue.shards.get()).unwrap_or(0);
        status.highest_sent = queue.highest_sent.get();
    }
}
