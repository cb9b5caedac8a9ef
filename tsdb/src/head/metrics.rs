//! The head's own metrics, exposed on `/metrics` by whoever registers them (the caller owns
//! the registry; see [`HeadMetrics::register`]). Names follow Prometheus's
//! `prometheus_tsdb_*` counterparts with the `sightline_tsdb_` prefix.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Counters and gauges of one [`Head`](super::Head).
#[derive(Clone, Debug)]
pub struct HeadMetrics {
    /// `sightline_tsdb_head_series`: series in the head.
    pub head_series: IntGauge,
    /// `sightline_tsdb_head_samples_appended_total`: samples stored.
    pub samples_appended: IntCounter,
    /// `sightline_tsdb_out_of_order_samples_total`: samples older than their series' last
    /// sample (or than the head's minimum valid time), rejected.
    pub out_of_order: IntCounter,
    /// `sightline_tsdb_duplicate_samples_total`: samples at an existing timestamp with a
    /// different value, rejected. (Exact duplicates are dropped without counting.)
    pub duplicate: IntCounter,
    /// `sightline_tsdb_wal_corruptions_total`: damaged places found while replaying the WAL
    /// or a checkpoint.
    pub wal_corruptions: IntCounter,
    /// `sightline_tsdb_wal_fsync_duration_seconds`: time per WAL fsync.
    pub wal_fsync_duration: Histogram,
}

impl HeadMetrics {
    /// Fresh, unregistered metrics. Fails only if a metric definition is invalid, which the
    /// constant names and help texts here rule out.
    pub fn new() -> prometheus::Result<HeadMetrics> {
        Ok(HeadMetrics {
            head_series: IntGauge::new("sightline_tsdb_head_series", "Series in the head.")?,
            samples_appended: IntCounter::new(
                "sightline_tsdb_head_samples_appended_total",
                "Samples appended to the head.",
            )?,
            out_of_order: IntCounter::new(
                "sightline_tsdb_out_of_order_samples_total",
                "Samples rejected because they are older than the last sample of their series.",
            )?,
            duplicate: IntCounter::new(
                "sightline_tsdb_duplicate_samples_total",
                "Samples rejected because their series has a different value at that timestamp.",
            )?,
            wal_corruptions: IntCounter::new(
                "sightline_tsdb_wal_corruptions_total",
                "Damaged places found while replaying the WAL.",
            )?,
            wal_fsync_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "sightline_tsdb_wal_fsync_duration_seconds",
                    "Duration of WAL fsyncs.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ]),
            )?,
        })
    }

    /// Registers every metric with `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.head_series.clone()))?;
        registry.register(Box::new(self.samples_appended.clone()))?;
        registry.register(Box::new(self.out_of_order.clone()))?;
        registry.register(Box::new(self.duplicate.clone()))?;
        registry.register(Box::new(self.wal_corruptions.clone()))?;
        registry.register(Box::new(self.wal_fsync_duration.clone()))?;
        Ok(())
    }
}
