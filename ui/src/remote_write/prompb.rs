//! Prometheus's remote-write 1.0 messages (`prometheus.WriteRequest`), declared with `prost`
//! derive from the field numbers of Prometheus's public `prompb/remote.proto` and
//! `prompb/types.proto` (`WriteRequest.timeseries=1`; `TimeSeries.labels=1, samples=2,
//! exemplars=3, histograms=4`; `Label.name=1, value=2`; `Sample.value=1, timestamp=2`), so no
//! protoc and no build script are needed. Fields Sightline does not store — the request's
//! `metadata` (3), exemplars — are skipped by the decoder as unknown fields; histograms are
//! kept as raw bytes only to be counted and reported.

/// `prometheus.WriteRequest`: one remote-write body, before snappy compression.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
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
