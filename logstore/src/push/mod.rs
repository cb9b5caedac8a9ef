//! Loki push requests: decoding and validation, independent of HTTP.
//!
//! Follows the Loki HTTP API reference for `POST /loki/api/v1/push`
//! (<https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs>) and the
//! validation limits documented in Loki's configuration reference
//! (<https://grafana.com/docs/loki/latest/configure/#limits_config>). No Loki code was read:
//! Loki is AGPL; this is our own implementation of the documented behaviour, checked against
//! `shared/fixtures/loki`.
//!
//! The pipeline, one function per step:
//!
//! 1. [`decode`]: undo `Content-Encoding` (gzip, with a cap on decompressed bytes), then read
//!    the body by `Content-Type` — [`json`] or snappy-compressed [`protobuf`] — into a
//!    [`PushRequest`]. A body that cannot be read is an [`Error`] and nothing of it is stored.
//! 2. [`validate`](validate::validate): apply [`PushLimits`] stream by stream and entry by
//!    entry against an injected `now`. The result, [`ValidatedPush`], holds the accepted
//!    streams (same label sets merged, exact duplicates dropped) *and* the rejections, so
//!    that the accepted part is stored while the response is still 400, as Loki does.
//! 3. [`RateLimiter::check`]: per-stream and global token buckets over the accepted bytes.
//!
//! Edge cases decided here:
//!
//! * A missing or empty `Content-Type` is read as protobuf, like Loki. Parameters
//!   (`; charset=utf-8`) are ignored. `Content-Encoding` may be absent, `identity` or `gzip`
//!   (also `x-gzip`); gzip members may be concatenated.
//! * A label with an empty value is absent (as in Prometheus), so `{"a": ""}` alone is a
//!   stream with no labels and is rejected.
//! * Structured metadata is kept per entry in push order and never becomes a label.

pub mod json;
mod label_text;
pub mod protobuf;
pub mod rate_limit;
pub mod validate;

use std::io::Read;

use sightline_core::labels::Labels;

use crate::error::{ClaimedSize, Error};

pub use label_text::{LabelTextError, format_label_text, parse_label_text};
pub use rate_limit::{RateLimiter, RateLimits};
pub use validate::{PushLimits, PushOutcome, RejectReason, Rejection, ValidatedPush, validate};

/// A decoded push: the streams in the order they came, not yet validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    /// The pushed streams. Two of them may have the same labels; [`validate()`] merges them.
    pub streams: Vec<PushStream>,
}

/// One stream object of a push: a label set and its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStream {
    /// The labels, sorted by name; empty values dropped. Names are not checked yet.
    pub labels: Labels,
    /// A problem with the labels as written that [`Labels`] cannot represent (a repeated name,
    /// an unparsable protobuf label string). Validation rejects the stream with it.
    pub malformed_labels: Option<MalformedLabels>,
    /// The entries in push order.
    pub entries: Vec<Entry>,
}

/// A label set as pushed that cannot be accepted whatever the limits are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MalformedLabels {
    /// The same label name appears more than once.
    DuplicateName(String),
    /// A protobuf stream's label string (`{a="b"}`) cannot be parsed.
    Unparsable {
        /// The label string as received (cut to a readable length).
        text: String,
        /// Why it cannot be parsed.
        error: LabelTextError,
    },
}

/// One log entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Unix epoch time in nanoseconds.
    pub timestamp_ns: i64,
    /// The log line.
    pub line: String,
    /// Structured metadata: name/value pairs in push order; empty for none.
    pub metadata: Vec<(String, String)>,
}

/// The bytes of structured metadata: every name and value.
pub fn metadata_size(metadata: &[(String, String)]) -> usize {
    metadata
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum()
}

impl Entry {
    /// The bytes this entry counts for in size and rate limits: the line plus every
    /// structured-metadata name and value.
    pub fn size(&self) -> usize {
        self.line.len() + self.metadata_size()
    }

    /// The bytes of structured metadata: every name and value.
    pub fn metadata_size(&self) -> usize {
        metadata_size(&self.metadata)
    }
}

/// The body formats of the push endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/x-protobuf`: a snappy block holding a `logproto.PushRequest`.
    Protobuf,
}

impl BodyFormat {
    /// The format a `Content-Type` header names. Absent or empty means protobuf, as in Loki.
    pub fn from_content_type(content_type: Option<&str>) -> Result<BodyFormat, Error> {
        let Some(raw) = content_type else {
            return Ok(BodyFormat::Protobuf);
        };
        let essence = raw.split(';').next().unwrap_or("").trim();
        if essence.is_empty() {
            Ok(BodyFormat::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Ok(BodyFormat::Json)
        } else if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(BodyFormat::Protobuf)
        } else {
            Err(Error::UnsupportedContentType {
                content_type: raw.chars().take(200).collect(),
            })
        }
    }
}

/// Limits that apply while a body is decoded, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most bytes a body may decompress to (gzip and snappy alike). Default 64 MiB.
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: 64 << 20,
        }
    }
}

/// Decodes a push body sent with the given `Content-Type` and `Content-Encoding` headers.
pub fn decode(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    limits: &DecodeLimits,
) -> Result<PushRequest, Error> {
    let format = BodyFormat::from_content_type(content_type)?;
    let gunzipped;
    let body = match content_encoding.map(str::trim) {
        None | Some("") => body,
        Some(e) if e.eq_ignore_ascii_case("identity") => body,
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            gunzipped = gunzip(body, limits.max_decompressed_bytes)?;
            &gunzipped[..]
        }
        Some(other) => {
            return Err(Error::UnsupportedContentEncoding {
                encoding: other.chars().take(100).collect(),
            });
        }
    };
    match format {
        BodyFormat::Json => json::decode(body),
        BodyFormat::Protobuf => protobuf::decode(body, limits.max_decompressed_bytes),
    }
}

/// Decompresses a gzip body (one or more members), refusing to produce more than `limit`
/// bytes.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(read_limit)
        .read_to_end(&mut out)
        .map_err(|source| Error::Gzip { source })?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge {
            encoding: "gzip",
            limit,
            claimed: ClaimedSize::Unknown,
        });
    }
    Ok(out)
}

/// Builds a stream's labels from pairs as pushed, noting a repeated name (which [`Labels`]
/// would silently collapse).
pub(crate) fn labels_from_pairs(
    mut pairs: Vec<(String, String)>,
) -> (Labels, Option<MalformedLabels>) {
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let duplicate = pairs
        .windows(2)
        .find(|w| w[0].0 == w[1].0)
        .map(|w| MalformedLabels::DuplicateName(abbreviate(&w[0].0, 200).into_owned()));
    (Labels::from_pairs(pairs), duplicate)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub(crate) fn abbreviate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type(None).ok(),
            Some(BodyFormat::Protobuf)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("Application/JSON; charset=utf-8")).ok(),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/x-protobuf")).ok(),
            Some(BodyFormat::Protobuf)
        );
        let err = BodyFormat::from_content_type(Some("text/plain")).err();
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::UnsupportedMediaType));
    }

    #[test]
    fn unsupported_encoding() {
        let err = decode(
            b"{}",
            Some("application/json"),
            Some("br"),
            &Default::default(),
        );
        assert!(matches!(
            err,
            Err(Error::UnsupportedContentEncoding { encoding }) if encoding == "br"
        ));
    }

    #[test]
    fn gzip_bomb_is_refused() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for _ in 0..1024 {
            let written = encoder.write_all(&[b' '; 1024]);
            assert!(written.is_ok());
        }
        let Ok(bomb) = encoder.finish() else {
            panic!("gzip encoding failed")
        };
        assert!(bomb.len() < 10_000);
        assert_eq!(gunzip(&bomb, 1 << 20).map(|v| v.len()).ok(), Some(1 << 20));
        let err = gunzip(&bomb, (1 << 20) - 1).err();
        assert!(matches!(err, Some(Error::DecompressedTooLarge { .. })));
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::TooLarge));
    }

    #[test]
    fn abbreviate_respects_char_boundaries() {
        assert_eq!(abbreviate("abc", 3), "abc");
        assert_eq!(abbreviate("日本語", 4), "日…");
    }
}
