//! Prometheus's remote-write 1.0 messages (`prometheus.WriteRequest`), declared with `prost`
//! derive from the field numbers of Prometheus's public `prompb/remote.proto` and
//! `prompb/types.proto` (`WriteRequest.timeseries=1`; `TimeSeries.labels=1, samples=2,
//! exemplars=3, histograms=4`; `Label.name=1, value=2`; `Sample.value=1, timestamp=2`), so no
//! protoc and no build script are needed. The receiver (`/api/v1/write`) and the sender
//! (`remote_write`) share them; `sightline import prometheus` reads with the remote-read
//! messages ([`ReadRequest`], and [`ReadResponse`] or streamed [`ChunkedReadResponse`]). Exemplars are skipped by the decoder as unknown fields;
//! histograms are kept as raw bytes only to be counted and reported; `metadata` (3:
//! `MetricMetadata.type=1, metric_family_name=2, help=4, unit=5`) is sent, and ignored when
//! received.
//!
//! The sender does not build [`WriteRequest`]s of samples: it encodes each series' labels
//! once ([`EncodedLabels`]) and writes the `timeseries` fields of a request directly
//! ([`encode_series`]), so that a sample sent costs a few bytes copied rather than its
//! series' label strings cloned and encoded again (see docs/BENCHMARKS.md, remote write).

use prost::encoding::{encode_varint, encoded_len_varint};

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

/// `prometheus.ReadRequest` (remote read, `prompb/remote.proto`: `queries=1`,
/// `accepted_response_types=2`), for `sightline import prometheus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The queries.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// `ReadRequest.ResponseType`: 0 samples, 1 streamed XOR chunks.
    #[prost(int32, repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.Query`: the series matching `matchers` between two times (inclusive, ms).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// From, inclusive.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// Until, inclusive.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// Which series.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    /// `LabelMatcher.Type`: 0 `=`, 1 `!=`, 2 `=~`, 3 `!~`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The label name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// The value or regex.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.ReadResponse`: a result per query, in order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// The results.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// The series found, with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.ChunkedReadResponse`: one frame of a streamed remote-read answer
/// (`chunked_series=1`, `query_index=2`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    /// Series with some of their chunks.
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Which query of the request this answers.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries` (`labels=1`, `chunks=2`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    /// The labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Chunks, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk` (`min_time_ms=1`, `max_time_ms=2`, `type=3`, `data=4`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    /// The first sample's time.
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// The last sample's time.
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// `Chunk.Encoding`: 1 XOR, 2 histogram, 3 float histogram.
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    /// The encoded chunk.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// A series' labels, encoded once as the `labels` fields of a `TimeSeries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedLabels(Box<[u8]>);

impl EncodedLabels {
    /// Encodes `labels` (name, value), in the order given.
    pub fn new<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> EncodedLabels {
        let mut bytes = Vec::new();
        for (name, value) in labels {
            let label = Label {
                name: name.to_owned(),
                value: value.to_owned(),
            };
            prost::encoding::message::encode(1, &label, &mut bytes);
        }
        EncodedLabels(bytes.into_boxed_slice())
    }
}

/// Appends one `WriteRequest.timeseries` field to `out`: the series' labels and its samples,
/// each `(value, timestamp in ms)`.
pub fn encode_series(out: &mut Vec<u8>, labels: &EncodedLabels, samples: &[(f64, i64)]) {
    // Sample: value (field 1, 64-bit) and timestamp (field 2, varint).
    let sample_len = |timestamp: i64| 1 + 8 + 1 + encoded_len_varint(timestamp as u64);
    let series_len: usize = labels.0.len()
        + samples
            .iter()
            .map(|(_, timestamp)| {
                let len = sample_len(*timestamp);
                1 + encoded_len_varint(len as u64) + len
            })
            .sum::<usize>();
    out.reserve(1 + encoded_len_varint(series_len as u64) + series_len);
    out.push(0x0a); // WriteRequest.timeseries: field 1, length-delimited.
    encode_varint(series_len as u64, out);
    out.extend_from_slice(&labels.0);
    for (value, timestamp) in samples {
        out.push(0x12); // TimeSeries.samples: field 2, length-delimited.
        encode_varint(sample_len(*timestamp) as u64, out);
        out.push(0x09); // Sample.value: field 1, 64-bit.
        out.extend_from_slice(&value.to_le_bytes());
        out.push(0x10); // Sample.timestamp: field 2, varint.
        encode_varint(*timestamp as u64, out);
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn series_encoded_directly_decode_as_the_messages() {
        let labels = EncodedLabels::new([("__name__", "up"), ("job", "node")]);
        let mut body = Vec::new();
        encode_series(
            &mut body,
            &labels,
            &[(1.0, 1_700_000_000_000), (0.0, 0), (-2.5, -7)],
        );
        encode_series(&mut body, &EncodedLabels::new([]), &[(f64::NAN, 5)]);
        let decoded = WriteRequest::decode(body.as_slice()).unwrap();
        let label = |name: &str, value: &str| Label {
            name: name.into(),
            value: value.into(),
        };
        assert_eq!(decoded.timeseries.len(), 2);
        assert_eq!(
            decoded.timeseries[0].labels,
            [label("__name__", "up"), label("job", "node")]
        );
        assert_eq!(
            decoded.timeseries[0].samples,
            [
                Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000
                },
                Sample {
                    value: 0.0,
                    timestamp: 0
                },
                Sample {
                    value: -2.5,
                    timestamp: -7
                },
            ]
        );
        assert!(decoded.timeseries[1].labels.is_empty());
        assert!(decoded.timeseries[1].samples[0].value.is_nan());
    }
}
