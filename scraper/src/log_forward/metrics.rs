//! The log forwarders' metrics, with the names and meaning of Alloy's `loki.write`
//! component (`loki_write_*`), labelled by forwarder `name` and endpoint `host`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The metric families, one series per forwarder.
#[derive(Clone)]
pub struct ForwardMetrics {
    sent_entries: IntCounterVec,
    sent_bytes: IntCounterVec,
    dropped_entries: IntCounterVec,
    batch_retries: IntCounterVec,
    pending_records: IntGaugeVec,
    skipped_records: IntGaugeVec,
}

/// One forwarder's series.
#[derive(Clone)]
pub(super) struct ForwarderMetrics {
    pub(super) sent_entries: IntCounter,
    pub(super) sent_bytes: IntCounter,
    pub(super) dropped_entries: IntCounter,
    pub(super) batch_retries: IntCounter,
    pub(super) pending_records: IntGauge,
    pub(super) skipped_records: IntGauge,
}

const LABELS: [&str; 2] = ["name", "host"];

impl ForwardMetrics {
    /// Creates the families.
    pub fn new() -> prometheus::Result<ForwardMetrics> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &LABELS);
        Ok(ForwardMetrics {
            sent_entries: counter(
                "loki_write_sent_entries_total",
                "Log entries the endpoint took.",
                &LABELS,
            )?,
            sent_bytes: counter(
                "loki_write_sent_bytes_total",
                "Bytes of log lines the endpoint took.",
                &LABELS,
            )?,
            dropped_entries: counter(
                "loki_write_dropped_entries_total",
                "Log entries the endpoint refused for good (a 4xx answer).",
                &["name", "host", "reason"],
            )?,
            batch_retries: counter(
                "loki_write_batch_retries_total",
                "Failed pushes that were sent again.",
                &LABELS,
            )?,
            pending_records: gauge(
                "sightline_log_forward_pending_records",
                "Pushes the log store took that the endpoint has not taken yet.",
            )?,
            skipped_records: gauge(
                "sightline_log_forward_skipped_records",
                "Pushes deleted from the log WAL (past max_backlog) or damaged before they were sent.",
            )?,
        })
    }

    /// Registers every family with `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.sent_entries.clone()))?;
        registry.register(Box::new(self.sent_bytes.clone()))?;
        registry.register(Box::new(self.dropped_entries.clone()))?;
        registry.register(Box::new(self.batch_retries.clone()))?;
        registry.register(Box::new(self.pending_records.clone()))?;
        registry.register(Box::new(self.skipped_records.clone()))
    }

    /// The series of the forwarder `name` sending to `url`.
    pub(super) fn forwarder(&self, name: &str, url: &url::Url) -> ForwarderMetrics {
        let host = format!(
            "{}{}",
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        let labels = [name, host.as_str()];
        ForwarderMetrics {
            sent_entries: self.sent_entries.with_label_values(&labels),
            sent_bytes: self.sent_bytes.with_label_values(&labels),
            dropped_entries: self.dropped_entries.with_label_values(&[
                name,
                host.as_str(),
                "rejected",
            ]),
            batch_retries: self.batch_retries.with_label_values(&labels),
            pending_records: self.pending_records.with_label_values(&labels),
            skipped_records: self.skipped_records.with_label_values(&labels),
        }
    }
}
