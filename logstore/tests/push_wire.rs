//! Push bodies on the wire: protobuf built with prost, the fixture `.pb.snappy`, gzip, and
//! long-line truncation, through the public `push::decode` entry point.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use sightline_core::labels::Labels;
use sightline_logstore::push::protobuf::{self, logproto};
use sightline_logstore::push::{
    self, DecodeLimits, Entry, PushLimits, PushOutcome, PushRequest, PushStream,
};
use sightline_logstore::{Error, ErrorKind};

const PROTOBUF: Option<&str> = Some("application/x-protobuf");
const JSON: Option<&str> = Some("application/json");

fn fixture(path: &str) -> Vec<u8> {
    let dir = Path::new("../../shared/fixtures/loki");
    std::fs::read(dir.join(path)).unwrap_or_default()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap_or_default();
    encoder.finish().unwrap_or_default()
}

fn decode(body: &[u8], content_type: Option<&str>, encoding: Option<&str>) -> PushRequest {
    match push::decode(body, content_type, encoding, &DecodeLimits::default()) {
        Ok(request) => request,
        Err(e) => panic!("decode failed: {e}"),
    }
}

fn at(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns as u64)
}

#[test]
fn protobuf_built_with_prost_decodes() {
    let message = logproto::PushRequest {
        streams: vec![
            logproto::StreamAdapter {
                labels: r#"{namespace="media", app="jellyfin", note="a \"b\" \\ c"}"#.into(),
                entries: vec![
                    logproto::EntryAdapter {
                        timestamp: Some(logproto::Timestamp {
                            seconds: 1_700_000_000,
                            nanos: 5,
                        }),
                        line: b"GET /Videos/8a7b6c/stream.mp4 200".to_vec(),
                        structured_metadata: vec![logproto::LabelPairAdapter {
                            name: "trace_id".into(),
                            value: b"4bf92f35".to_vec(),
                        }],
                    },
                    logproto::EntryAdapter {
                        timestamp: Some(logproto::Timestamp {
                            seconds: 1_700_000_001,
                            nanos: 0,
                        }),
                        line: "unicode ✓ 🚀".as_bytes().to_vec(),
                        structured_metadata: vec![],
                    },
                ],
                hash: 12345,
            },
            logproto::StreamAdapter {
                labels: "{}".into(),
                entries: vec![],
                hash: 0,
            },
        ],
    };
    let body = protobuf::compress(&message.encode_to_vec());
    let request = decode(&body, PROTOBUF, None);
    assert_eq!(request.streams.len(), 2);
    let stream = &request.streams[0];
    assert_eq!(
        stream.labels,
        Labels::from_pairs([
            ("app", "jellyfin"),
            ("namespace", "media"),
            ("note", r#"a "b" \ c"#)
        ])
    );
    assert_eq!(stream.entries[0].timestamp_ns, 1_700_000_000_000_000_005);
    assert_eq!(
        stream.entries[0].metadata,
        vec![("trace_id".to_owned(), "4bf92f35".to_owned())]
    );
    assert_eq!(stream.entries[1].line, "unicode ✓ 🚀");
    assert!(request.streams[1].labels.is_empty());

    // Our encoder produces what agents send, and it reads back identically.
    let again = decode(&protobuf::encode(&request), None, None);
    assert_eq!(again, request);
}

#[test]
fn fixture_protobuf_matches_its_json_twin() {
    let from_protobuf = decode(
        &fixture("valid/10_structured_metadata.pb.snappy"),
        PROTOBUF,
        None,
    );
    let from_json = decode(&fixture("valid/03_structured_metadata.json"), JSON, None);
    assert_eq!(from_protobuf.streams.len(), 1);
    let (a, b) = (&from_protobuf.streams[0], &from_json.streams[0]);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.entries.len(), b.entries.len());
    for (x, y) in a.entries.iter().zip(&b.entries) {
        assert_eq!(x.timestamp_ns, y.timestamp_ns);
        assert_eq!(x.line, y.line);
        let mut mx = x.metadata.clone();
        let mut my = y.metadata.clone();
        mx.sort();
        my.sort();
        assert_eq!(mx, my);
    }
}

#[test]
fn gzip_wraps_either_format() {
    let json = fixture("valid/01_single_stream.json");
    let plain = decode(&json, JSON, None);
    assert_eq!(decode(&gzip(&json), JSON, Some("gzip")), plain);
    assert_eq!(
        decode(
            &fixture("valid/09_single_stream.json.gz"),
            JSON,
            Some("gzip")
        ),
        plain
    );

    let protobuf_body = protobuf::encode(&plain);
    assert_eq!(decode(&gzip(&protobuf_body), PROTOBUF, Some("GZIP")), plain);

    // Two concatenated gzip members are one body.
    let half = json.len() / 2;
    let mut members = gzip(&json[..half]);
    members.extend(gzip(&json[half..]));
    assert_eq!(decode(&members, JSON, Some("gzip")), plain);
}

#[test]
fn gzip_bomb_is_refused_as_too_large() {
    let bomb = gzip(&vec![b'['; 8 << 20]);
    assert!(bomb.len() < 100_000);
    let limits = DecodeLimits {
        max_decompressed_bytes: 1 << 20,
    };
    let err = push::decode(&bomb, JSON, Some("gzip"), &limits).err();
    assert!(
        matches!(err, Some(Error::DecompressedTooLarge { encoding: "gzip", limit, .. }) if limit == 1 << 20)
    );
    assert_eq!(
        push::decode(&bomb, JSON, Some("gzip"), &limits)
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::TooLarge)
    );
}

#[test]
fn truncation_mode_keeps_long_lines_cut_to_the_limit() {
    let now = 1_800_000_000_000_000_000;
    let long = "é".repeat(200); // 400 bytes
    let request = PushRequest {
        streams: vec![PushStream {
            labels: Labels::from_pairs([("job", "t")]),
            malformed_labels: None,
            entries: vec![
                Entry {
                    timestamp_ns: now,
                    line: long.clone(),
                    metadata: vec![],
                },
                Entry {
                    timestamp_ns: now + 1,
                    line: "short".into(),
                    metadata: vec![],
                },
            ],
        }],
    };
    let body = protobuf::encode(&request);
    let limits = PushLimits {
        max_line_size: 101,
        max_line_size_truncate: true,
        ..PushLimits::default()
    };
    let push = push::validate(decode(&body, PROTOBUF, None), &limits, at(now));
    assert_eq!(push.outcome(), PushOutcome::Accepted);
    assert_eq!(push.truncated_lines, 1);
    let lines: Vec<&str> = push.streams[0]
        .entries
        .iter()
        .map(|e| e.line.as_str())
        .collect();
    // 101 bytes is not a character boundary in a run of 2-byte characters: 100 are kept.
    assert_eq!(lines, [&long[..100], "short"]);

    let strict = PushLimits {
        max_line_size: 101,
        ..PushLimits::default()
    };
    let push = push::validate(decode(&body, PROTOBUF, None), &strict, at(now));
    assert_eq!(push.outcome(), PushOutcome::PartiallyAccepted);
    let message = push.message().unwrap_or_default();
    assert!(
        message.starts_with(
            "stream '{job=\"t\"}' has an entry at 2027-01-15T08:00:00Z with a line of 400 bytes"
        ),
        "{message}"
    );
}

#[test]
fn partial_rejection_reports_400_and_keeps_the_good_part() {
    let now = 1_800_000_000_000_000_000i64;
    let body = format!(
        r#"{{"streams":[
            {{"stream":{{"job":"ok"}},"values":[["{now}","kept"],["{old}","too old"]]}},
            {{"stream":{{"job":"ok","bad.name":"x"}},"values":[["{now}","dropped"]]}}]}}"#,
        old = now - 8 * 86_400 * 1_000_000_000
    );
    let push = push::validate(
        decode(body.as_bytes(), JSON, None),
        &PushLimits::default(),
        at(now),
    );
    assert_eq!(push.outcome(), PushOutcome::PartiallyAccepted);
    assert_eq!(push.accepted_entries, 1);
    assert_eq!(push.rejected_entries, 2);
    assert_eq!(push.streams[0].entries[0].line, "kept");
    let err = push.error();
    assert_eq!(err.as_ref().map(Error::kind), Some(ErrorKind::BadRequest));
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("stream '{job=\"ok\"}' has an entry too old"),
        "{text}"
    );
    assert!(
        text.contains("stream '{bad.name=\"x\", job=\"ok\"}' has an invalid label name 'bad.name'"),
        "{text}"
    );
    assert!(text.ends_with("2 entries rejected, 1 accepted"), "{text}");
}
