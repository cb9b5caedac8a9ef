//! The protobuf push body: a snappy *block* holding a `logproto.PushRequest`.
//!
//! This is the default wire format of Promtail, Grafana Alloy and most agents. The messages
//! are declared by hand in [`logproto`] from the field numbers of Loki's public `push.proto`
//! (`PushRequest.streams=1`; `StreamAdapter.labels=1, entries=2, hash=3`;
//! `EntryAdapter.timestamp=1, line=2, structuredMetadata=3`; `LabelPairAdapter.name=1,
//! value=2`; `google.protobuf.Timestamp.seconds=1, nanos=2`), so no protoc and no build
//! script are needed.
//!
//! Edge cases decided:
//!
//! * The snappy preamble's length is checked against the decompression limit *before*
//!   anything is allocated, so a 20-byte body cannot ask for 4 GiB.
//! * Lines and metadata values are read as bytes: Go does not check UTF-8 in protobuf strings
//!   and agents forward whatever files hold, so invalid sequences become U+FFFD rather than
//!   failing the whole batch. Label strings must be UTF-8 (prost rejects the body otherwise).
//! * A label string that does not parse rejects that stream only (see
//!   [`MalformedLabels::Unparsable`]); a missing timestamp, `nanos` outside `0..1e9` or a time
//!   outside the `i64` nanosecond range fails the whole body, like an unreadable JSON
//!   timestamp.
//! * `StreamAdapter.hash` is ignored.

use prost::Message as _;

use super::label_text::{format_label_text, parse_label_text};
use super::{Entry, MalformedLabels, PushRequest, PushStream, abbreviate, labels_from_pairs};
use crate::error::{ClaimedSize, Error, TimestampProblem};

/// Loki's push messages, declared with `prost` derive. Public so that tests, benchmarks and a
/// future Loki forwarder can build bodies.
pub mod logproto {
    /// `logproto.PushRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        /// The streams.
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    /// `logproto.StreamAdapter`: one stream.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// Label set in Prometheus notation: `{a="b", c="d"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        /// The entries.
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        /// A hash of the labels some clients send; ignored.
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    /// `logproto.EntryAdapter`: one entry.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        /// When the line was logged.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The line (a protobuf `string`, read as bytes so that invalid UTF-8 is repaired
        /// rather than fatal).
        #[prost(bytes = "vec", tag = "2")]
        pub line: Vec<u8>,
        /// Structured metadata.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    /// `logproto.LabelPairAdapter`: one structured-metadata pair.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        /// The name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The value (a protobuf `string`, read as bytes like the line).
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
    pub struct Timestamp {
        /// Seconds since the Unix epoch.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds within the second, `0..=999_999_999`.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// Decodes a protobuf push body: snappy block, then `logproto.PushRequest`. The snappy
/// block may not decompress to more than `max_decompressed_bytes`.
pub fn decode(body: &[u8], max_decompressed_bytes: usize) -> Result<PushRequest, Error> {
    let length = snap::raw::decompress_len(body).map_err(|source| Error::Snappy { source })?;
    if length > max_decompressed_bytes {
        return Err(Error::DecompressedTooLarge {
            encoding: "snappy",
            limit: max_decompressed_bytes,
            claimed: ClaimedSize::Bytes(length),
        });
    }
    // Each thread decompresses into the buffer it used for its last body: a body's worth
    // of memory allocated and freed per push fragmented the heap.
    thread_local! {
        static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    RAW.with_borrow_mut(|raw| {
        raw.clear();
        raw.resize(length, 0);
        let written = snap::raw::Decoder::new()
            .decompress(body, raw)
            .map_err(|source| Error::Snappy { source })?;
        decode_uncompressed(&raw[..written])
    })
}

/// Decodes an uncompressed `logproto.PushRequest`.
pub fn decode_uncompressed(raw: &[u8]) -> Result<PushRequest, Error> {
    let message =
        logproto::PushRequest::decode(raw).map_err(|source| Error::Protobuf { source })?;
    let mut streams = Vec::with_capacity(message.streams.len());
    for (stream_index, stream) in message.streams.into_iter().enumerate() {
        let (labels, malformed_labels) = match parse_label_text(&stream.labels) {
            Ok(pairs) => labels_from_pairs(pairs),
            Err(error) => (
                Default::default(),
                Some(MalformedLabels::Unparsable {
                    text: abbreviate(&stream.labels, 300).into_owned(),
                    error,
                }),
            ),
        };
        let mut entries = Vec::with_capacity(stream.entries.len());
        for (entry_index, entry) in stream.entries.into_iter().enumerate() {
            let timestamp_ns =
                timestamp_ns(entry.timestamp).map_err(|reason| Error::ProtobufTimestamp {
                    stream: stream_index,
                    entry: entry_index,
                    reason,
                })?;
            entries.push(Entry {
                timestamp_ns,
                line: utf8(entry.line),
                metadata: entry
                    .structured_metadata
                    .into_iter()
                    .map(|pair| (pair.name, utf8(pair.value)))
                    .collect(),
            });
        }
        streams.push(PushStream {
            labels,
            malformed_labels,
            entries,
        });
    }
    Ok(PushRequest { streams })
}

/// Encodes a push as a snappy-compressed `logproto.PushRequest`, the body an agent sends.
pub fn encode(request: &PushRequest) -> Vec<u8> {
    let message = to_logproto(request);
    compress(&message.encode_to_vec())
}

/// Converts a push into the `logproto` messages.
pub fn to_logproto(request: &PushRequest) -> logproto::PushRequest {
    logproto::PushRequest {
        streams: request
            .streams
            .iter()
            .map(|stream| logproto::StreamAdapter {
                labels: format_label_text(&stream.labels),
                entries: stream
                    .entries
                    .iter()
                    .map(|entry| logproto::EntryAdapter {
                        timestamp: Some(logproto::Timestamp {
                            seconds: entry.timestamp_ns.div_euclid(1_000_000_000),
                            // In 0..1e9, so it fits.
                            nanos: entry.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: entry.line.as_bytes().to_vec(),
                        structured_metadata: entry
                            .metadata
                            .iter()
                            .map(|(name, value)| logproto::LabelPairAdapter {
                                name: name.clone(),
                                value: value.as_bytes().to_vec(),
                            })
                            .collect(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    }
}

/// Compresses bytes into one snappy block.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0; snap::raw::max_compress_len(raw.len())];
    // Compression into a buffer of max_compress_len cannot fail; an input over snappy's 4 GiB
    // block limit yields an empty body, which the receiver rejects.
    let written = snap::raw::Encoder::new()
        .compress(raw, &mut out)
        .unwrap_or(0);
    out.truncate(written);
    out
}

fn timestamp_ns(timestamp: Option<logproto::Timestamp>) -> Result<i64, TimestampProblem> {
    let timestamp = timestamp.ok_or(TimestampProblem::Missing)?;
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(TimestampProblem::NanosOutOfRange(timestamp.nanos));
    }
    timestamp
        .seconds
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(i64::from(timestamp.nanos)))
        .ok_or(TimestampProblem::Overflow(timestamp.seconds))
}

fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use sightline_core::labels::Labels;

    use super::*;

    fn sample() -> PushRequest {
        PushRequest {
            streams: vec![PushStream {
                labels: Labels::from_pairs([("app", "checkout"), ("env", "home \"lab\"")]),
                malformed_labels: None,
                entries: vec![
                    Entry {
                        timestamp_ns: 1_700_000_000_123_456_789,
                        line: "hello".into(),
                        metadata: vec![("trace_id".into(), "abc".into())],
                    },
                    Entry {
                        timestamp_ns: -1,
                        line: String::new(),
                        metadata: vec![],
                    },
                ],
            }],
        }
    }

    #[test]
    fn round_trip() {
        let request = sample();
        let body = encode(&request);
        assert_eq!(decode(&body, 1 << 20).ok(), Some(request));
    }

    #[test]
    fn snappy_length_is_checked_before_allocating() {
        let body = encode(&sample());
        let err = decode(&body, 10).err();
        assert!(matches!(
            err,
            Some(Error::DecompressedTooLarge {
                encoding: "snappy",
                ..
            })
        ));
        // A preamble claiming ~4 GiB followed by nothing.
        let err = decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20).err();
        assert!(matches!(err, Some(Error::DecompressedTooLarge { .. })));
    }

    #[test]
    fn invalid_utf8_lines_are_repaired() {
        let message = logproto::PushRequest {
            streams: vec![logproto::StreamAdapter {
                labels: r#"{a="b"}"#.into(),
                entries: vec![logproto::EntryAdapter {
                    timestamp: Some(logproto::Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                    line: b"ok \xff end".to_vec(),
                    structured_metadata: vec![],
                }],
                hash: 7,
            }],
        };
        let request = decode(&compress(&message.encode_to_vec()), 1 << 20);
        let line = request.ok().map(|r| r.streams[0].entries[0].line.clone());
        assert_eq!(line.as_deref(), Some("ok \u{fffd} end"));
    }

    #[test]
    fn bad_label_strings_mark_the_stream() {
        let message = logproto::PushRequest {
            streams: vec![logproto::StreamAdapter {
                labels: "{a=b}".into(),
                entries: vec![],
                hash: 0,
            }],
        };
        let request = decode_uncompressed(&message.encode_to_vec());
        let malformed = request
            .ok()
            .and_then(|r| r.streams[0].malformed_labels.clone());
        assert!(matches!(
            malformed,
            Some(MalformedLabels::Unparsable { ref text, .. }) if text == "{a=b}"
        ));
    }

    #[test]
    fn bad_timestamps_fail_the_body() {
        let entry = |timestamp| logproto::EntryAdapter {
            timestamp,
            line: b"x".to_vec(),
            structured_metadata: vec![],
        };
        for (timestamp, problem) in [
            (None, TimestampProblem::Missing),
            (
                Some(logproto::Timestamp {
                    seconds: 1,
                    nanos: -1,
                }),
                TimestampProblem::NanosOutOfRange(-1),
            ),
            (
                Some(logproto::Timestamp {
                    seconds: i64::MAX / 2,
                    nanos: 0,
                }),
                TimestampProblem::Overflow(i64::MAX / 2),
            ),
        ] {
            let message = logproto::PushRequest {
                streams: vec![logproto::StreamAdapter {
                    labels: r#"{a="b"}"#.into(),
                    entries: vec![
                        entry(Some(logproto::Timestamp::default())),
                        entry(timestamp),
                    ],
                    hash: 0,
                }],
            };
            let err = decode_uncompressed(&message.encode_to_vec()).err();
            match err {
                Some(Error::ProtobufTimestamp {
                    stream: 0,
                    entry: 1,
                    reason,
                }) => assert_eq!(reason, problem),
                other => panic!("{other:?}"),
            }
        }
    }
}
