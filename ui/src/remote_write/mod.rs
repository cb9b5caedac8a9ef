//! The remote-write receiver, `POST /api/v1/write`: Prometheus remote write 1.0
//! (https://prometheus.io/docs/specs/remote_write_spec/) — a snappy *block* holding a
//! `prometheus.WriteRequest` ([`prompb`]) — appended to the head like a scrape and committed
//! (durable per `storage.wal_sync`) before the 204.
//!
//! Follows Prometheus's storage/remote/write_handler.go:
//!
//! * A `Content-Encoding` other than `snappy` (or none) and a `Content-Type` other than
//!   `application/x-protobuf` (or none) with `proto` absent or `prometheus.WriteRequest` are
//!   415; a body that is not snappy or not the protobuf is 400 with the reason, in plain text.
//! * A series without a metric name, with an empty or repeated label name, is skipped and
//!   logged; the rest of the request is stored and answered 204, as Prometheus does.
//!   Labels with an empty value are dropped (an empty value is an absent label).
//! * A sample more than 10 minutes ahead of the clock is refused as out of bounds, as
//!   Prometheus's time-limit appender does.
//! * Out-of-order and duplicate samples make the answer 400 ("out of order sample"), which a
//!   sender does not retry, as in Prometheus. Decision: where Prometheus rolls the whole
//!   request back, Sightline's appender cannot, so the other samples stay stored and the
//!   message says how many were refused — what a retry would have achieved anyway.
//! * Native histograms are not stored (Sightline keeps float samples): their count is
//!   reported in a 400 after the float samples were stored.
//! * The decompressed size is checked from the snappy preamble against
//!   `limits.request_body_size` before anything is allocated: 413 above it.
//!
//! Counted in `sightline_remote_write_samples_total{outcome}`: `stored`, `rejected` (out of
//! order, duplicate, too new) and `invalid_labels` (samples of skipped series).

pub use sightline_scraper::remote_write::prompb;

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounterVec, Opts, Registry};
use prost::Message as _;
use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_tsdb::storage::{Appendable, CommitSummary};

use crate::api::prometheus::now_ms;
use crate::server::AppState;

/// How far ahead of the clock a sample may be (Prometheus's `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The only protobuf message this receiver reads.
const WRITE_REQUEST: &str = "prometheus.WriteRequest";

/// Remote-write samples by outcome, registered in the process registry.
#[derive(Clone)]
pub(crate) struct RemoteWriteMetrics {
    samples: IntCounterVec,
}

impl RemoteWriteMetrics {
    /// Creates the counters and registers them in `registry`.
    pub(crate) fn register(registry: &Registry) -> prometheus::Result<RemoteWriteMetrics> {
        let samples = IntCounterVec::new(
            Opts::new(
                "sightline_remote_write_samples_total",
                "Samples received on /api/v1/write, by outcome (stored, rejected, invalid_labels).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(samples.clone()))?;
        Ok(RemoteWriteMetrics { samples })
    }

    fn record(&self, outcome: &Outcome) {
        let summary = &outcome.summary;
        self.samples
            .with_label_values(&["stored"])
            .inc_by(summary.appended);
        self.samples
            .with_label_values(&["rejected"])
            .inc_by(summary.out_of_order + summary.duplicate + outcome.too_new);
        self.samples
            .with_label_values(&["invalid_labels"])
            .inc_by(outcome.invalid_samples);
    }
}

/// A refused request: status and a plain-text reason.
#[derive(Debug)]
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

/// What storing one request did.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    summary: CommitSummary,
    invalid_series: usize,
    invalid_samples: u64,
    too_new: u64,
    histograms: usize,
}

/// `POST /api/v1/write`
pub(crate) async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match receive(state, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn receive(state: AppState, headers: &HeaderMap, body: Bytes) -> Result<(), Refused> {
    check_headers(headers)?;
    if state.backends.metrics().is_none() {
        return Err(Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "metric storage is still starting".into(),
        ));
    }
    let limit = usize::try_from(state.config.current().limits.request_body_size.bytes())
        .unwrap_or(usize::MAX);
    let backends = state.backends.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let request = decode(&body, limit)?;
        let Some(backend) = backends.metrics() else {
            return Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "metric storage is still starting".into(),
            ));
        };
        store(&backend.head, &request, now_ms())
    })
    .await
    .map_err(|error| {
        Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("remote write task failed: {error}"),
        )
    })??;
    state.remote_write_metrics.record(&outcome);
    verdict(&outcome)
}

/// Refuses encodings and message types other than remote write 1.0's.
fn check_headers(headers: &HeaderMap) -> Result<(), Refused> {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let encoding = header_text(header::CONTENT_ENCODING);
    if !encoding.is_empty() && encoding != "snappy" {
        return Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{encoding} encoding (compression) is not accepted by this server; only snappy is acceptable"
            ),
        ));
    }
    let content_type = header_text(header::CONTENT_TYPE);
    if content_type.is_empty() {
        return Ok(());
    }
    let mut parts = content_type.split(';').map(str::trim);
    let media_type = parts.next().unwrap_or("");
    let proto = parts
        .filter_map(|part| part.split_once('='))
        .find(|(key, _)| key.trim() == "proto")
        .map(|(_, value)| value.trim().trim_matches('"'));
    let accepted = media_type == "application/x-protobuf"
        && proto.is_none_or(|proto| proto.eq_ignore_ascii_case(WRITE_REQUEST));
    if accepted {
        Ok(())
    } else {
        Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{content_type} is not accepted by this server; accepted content type: application/x-protobuf;proto={WRITE_REQUEST} (remote write 1.0)"
            ),
        ))
    }
}

/// Decompresses and decodes a body, holding the decompressed size to `limit` bytes.
fn decode(body: &[u8], limit: usize) -> Result<prompb::WriteRequest, Refused> {
    let bad = |message: String| Refused(StatusCode::BAD_REQUEST, message);
    let length = snap::raw::decompress_len(body).map_err(|error| {
        bad(format!(
            "cannot decompress the body as snappy (block format): {error}"
        ))
    })?;
    if length > limit {
        return Err(Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "decompressed body of {length} bytes exceeds the limit of {limit} bytes (limits.request_body_size)"
            ),
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|error| {
            bad(format!(
                "cannot decompress the body as snappy (block format): {error}"
            ))
        })?;
    prompb::WriteRequest::decode(raw.as_slice()).map_err(|error| {
        bad(format!(
            "cannot decode the body as a {WRITE_REQUEST} protobuf: {error}"
        ))
    })
}

/// A series' labels, or why they are invalid.
fn series_labels(series: &prompb::TimeSeries) -> Result<Labels, String> {
    let mut names = HashSet::with_capacity(series.labels.len());
    for label in &series.labels {
        if label.name.is_empty() {
            return Err("empty label name".into());
        }
        if !names.insert(label.name.as_str()) {
            return Err(format!("duplicate label name {:?}", label.name));
        }
    }
    let labels = Labels::from_pairs(
        series
            .labels
            .iter()
            .filter(|label| !label.value.is_empty())
            .map(|label| (label.name.as_str(), label.value.as_str())),
    );
    if labels.get(METRIC_NAME).is_none() {
        return Err("no metric name (__name__ label)".into());
    }
    Ok(labels)
}

/// Appends every valid series' samples and commits them as one batch.
fn store(
    storage: &dyn Appendable,
    request: &prompb::WriteRequest,
    now: i64,
) -> Result<Outcome, Refused> {
    let internal = |error: sightline_tsdb::Error| {
        if error.is_storage_full() {
            tracing::error!(
                "disk full: remote write is refused with 507 until space is freed: {error}"
            );
            return Refused(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("disk full, nothing of this request was stored: {error}"),
            );
        }
        Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("appending to storage failed: {error}"),
        )
    };
    let mut outcome = Outcome::default();
    let mut appender = storage.appender();
    for series in &request.timeseries {
        outcome.histograms += series.histograms.len();
        let labels = match series_labels(series) {
            Ok(labels) => labels,
            Err(reason) => {
                if outcome.invalid_series == 0 {
                    tracing::warn!(
                        labels = ?series.labels,
                        "remote write: skipping a series with invalid labels: {reason}"
                    );
                }
                outcome.invalid_series += 1;
                outcome.invalid_samples += series.samples.len() as u64;
                continue;
            }
        };
        let mut reference = None;
        for sample in &series.samples {
            if sample.timestamp > now.saturating_add(MAX_AHEAD_MS) {
                outcome.too_new += 1;
                continue;
            }
            match reference {
                Some(series) => appender
                    .append_ref(series, sample.timestamp, sample.value)
                    .map_err(internal)?,
                None => {
                    reference = Some(
                        appender
                            .append(&labels, sample.timestamp, sample.value)
                            .map_err(internal)?,
                    );
                }
            }
        }
    }
    outcome.summary = appender.commit().map_err(internal)?;
    Ok(outcome)
}

/// The answer for what was stored: 204 unless samples were refused.
fn verdict(outcome: &Outcome) -> Result<(), Refused> {
    if outcome.invalid_series > 0 {
        tracing::warn!(
            series = outcome.invalid_series,
            "remote write: series with invalid labels skipped"
        );
    }
    let bad = |message: String| Err(Refused(StatusCode::BAD_REQUEST, message));
    let summary = &outcome.summary;
    let rejected = summary.out_of_order + summary.duplicate;
    if rejected > 0 {
        return bad(format!(
            "out of order sample: {rejected} samples refused ({} out of order or too old, {} duplicate timestamps with a different value); {} other samples were stored",
            summary.out_of_order, summary.duplicate, summary.appended
        ));
    }
    if outcome.too_new > 0 {
        return bad(format!(
            "out of bounds: {} samples are more than 10m ahead of the server's clock; {} other samples were stored",
            outcome.too_new, summary.appended
        ));
    }
    if outcome.histograms > 0 {
        return bad(format!(
            "{} native histogram samples not stored: Sightline stores float samples only; {} float samples were stored",
            outcome.histograms, summary.appended
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)]) -> prompb::TimeSeries {
        prompb::TimeSeries {
            labels: labels
                .iter()
                .map(|(name, value)| prompb::Label {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
            samples: vec![prompb::Sample {
                value: 1.0,
                timestamp: 1,
            }],
            histograms: Vec::new(),
        }
    }

    #[test]
    fn invalid_label_sets_are_named() {
        assert_eq!(
            series_labels(&series(&[("job", "a")])).unwrap_err(),
            "no metric name (__name__ label)"
        );
        assert_eq!(
            series_labels(&series(&[("__name__", "up"), ("a", "1"), ("a", "2")])).unwrap_err(),
            "duplicate label name \"a\""
        );
        assert_eq!(
            series_labels(&series(&[("__name__", "up"), ("", "x")])).unwrap_err(),
            "empty label name"
        );
        let labels =
            series_labels(&series(&[("job", "a"), ("__name__", "up"), ("e", "")])).unwrap();
        assert_eq!(
            labels,
            Labels::from_pairs([("__name__", "up"), ("job", "a")])
        );
    }

    #[test]
    fn bodies_that_are_not_snappy_protobuf_are_refused_with_the_reason() {
        let Refused(status, message) = decode(b"plain text", 1 << 20).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("cannot decompress the body as snappy"),
            "{message}"
        );

        let not_protobuf = snap::raw::Encoder::new().compress_vec(&[0xff; 16]).unwrap();
        let Refused(status, message) = decode(&not_protobuf, 1 << 20).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("cannot decode the body as a prometheus.WriteRequest"),
            "{message}"
        );

        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0; 4096])
            .unwrap();
        let Refused(status, _) = decode(&big, 1024).unwrap_err();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn only_remote_write_one_headers_are_accepted() {
        let check = |pairs: &[(header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), value.parse().unwrap());
            }
            check_headers(&headers).map_err(|Refused(status, _)| status)
        };
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(
            check(&[
                (header::CONTENT_ENCODING, "snappy"),
                (header::CONTENT_TYPE, "application/x-protobuf"),
            ]),
            Ok(())
        );
        assert_eq!(
            check(&[(
                header::CONTENT_TYPE,
                "application/x-protobuf;proto=prometheus.WriteRequest"
            )]),
            Ok(())
        );
        for refused in [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_TYPE,
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
        ] {
            assert_eq!(
                check(std::slice::from_ref(&refused)),
                Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{refused:?}"
            );
        }
    }
}
