//! Prometheus's remote-write 1.0 messages (`prometheus.WriteRequest`), declared with `prost`
//! derive from the field numbers of Prometheus's public `prompb/remote.proto` and
//! `prompb/types.proto` (`WriteRequest.timeseries=1`; `TimeSeries.labels=1, samples=2,
//! exemplars=3, histograms=4`; `Label.name=1, value=2`; `Sample.value=1, timestamp=2`), so no
//! protoc and no build script are needed. The receiver (`/api/v1/write`) and the sender
//! (`remote_write`) share them. Exemplars are skipped by the decoder as unknown fields;
//! histograms are kept as raw bytes only to be counted and reported; `metadata` (3:
//! `MetricMetadata.type=1, metric_family_name=2, help=4, unit=5`) is sent, and ignored when
//! received.

use crate::exposition::MetricType;
use crate::scrape::metadata::Metadata;

/// `prometheus.WriteRequest`: one remote-write body, before snappy compression.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric families' type, help and unit.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.MetricMetadata`: one metric family's type, help and unit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// `MetricMetadata.MetricType`: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge
    /// histogram, 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub metric_type: i32,
    /// The family's name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// The `# HELP` text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// The `# UNIT`.
    #[prost(string, tag = "5")]
    pub unit: String,
}

impl MetricMetadata {
    /// The message for `family` as a scrape recorded it.
    pub fn of(family: &str, metadata: &Metadata) -> MetricMetadata {
        let metric_type = match metadata.metric_type {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        };
        MetricMetadata {
            metric_type,
            metric_family_name: family.to_owned(),
            help: metadata.help.clone(),
            unit: metadata.unit.clone(),
        }
    }
}

/// `prometheus.TimeSeries`: one series' labels and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The labels, metric name included as `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples, undecoded: Sightline stores floats only.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// The label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}
