//! Every case of `shared/fixtures/loki/cases.json`, decoded and validated as the push endpoint
//! would, compared with the expected status and stored streams.
//!
//! The runner applies the fixture conventions of the README: every 19-digit timestamp string
//! is shifted by `now - BASE` (inside gzip and snappy/protobuf bodies too, which are
//! re-encoded), and a line that is exactly `<<REPEAT:C:N>>` is expanded. The status is
//! derived the way the `ui` crate will: a decode error maps by [`ErrorKind`], a validated
//! push answers 204 when nothing was rejected and 400 otherwise, storing the accepted part.
//! `LOKI_CASES_VERBOSE=1 cargo test --test push_fixtures -- --nocapture` shows every answer.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde_json::Value;
use sightline_core::labels::Labels;
use sightline_logstore::ErrorKind;
use sightline_logstore::push::protobuf::{self, logproto};
use sightline_logstore::push::{self, DecodeLimits, PushLimits, PushOutcome};

const BASE_NS: i64 = 1_700_000_000_000_000_000;

fn fixtures() -> PathBuf {
    PathBuf::from("../../shared/fixtures/loki")
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// Shifts every JSON string of exactly 19 digits that lies within 30 days of BASE.
fn shift_json_timestamps(body: &[u8], shift: i64) -> Vec<u8> {
    const WINDOW: i64 = 30 * 86_400 * 1_000_000_000;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'"'
            && i + 20 < body.len()
            && body[i + 20] == b'"'
            && body[i + 1..i + 20].iter().all(u8::is_ascii_digit)
        {
            let digits = std::str::from_utf8(&body[i + 1..i + 20]).unwrap_or_default();
            if let Ok(ts) = digits.parse::<i64>()
                && (ts - BASE_NS).abs() <= WINDOW
            {
                out.extend_from_slice(format!("\"{}\"", ts + shift).as_bytes());
                i += 21;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// Replaces every JSON string `"<<REPEAT:C:N>>"` with C repeated N times.
fn expand_markers(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(start) = rest.find("\"<<REPEAT:") {
        let Some(end) = rest[start..].find(">>\"") else {
            break;
        };
        let marker = &rest[start + 10..start + end];
        let mut parts = marker.splitn(2, ':');
        let c = parts.next().unwrap_or("");
        let n: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        out.push_str(&rest[..start]);
        out.push('"');
        out.push_str(&c.repeat(n));
        out.push('"');
        rest = &rest[start + end + 3..];
    }
    out.push_str(rest);
    out.into_bytes()
}

fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    push::gunzip(body, 1 << 30).ok()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).unwrap_or_default();
    encoder.finish().unwrap_or_default()
}

/// Applies the conventions to a body of the given type and encoding.
fn prepare(raw: &[u8], protobuf_body: bool, gzipped: bool, markers: bool, shift: i64) -> Vec<u8> {
    if gzipped {
        return match gunzip(raw) {
            Some(plain) => gzip(&prepare(&plain, protobuf_body, false, markers, shift)),
            None => prepare(raw, protobuf_body, false, markers, shift),
        };
    }
    if protobuf_body {
        let Ok(plain) = snap::raw::Decoder::new().decompress_vec(raw) else {
            return raw.to_vec();
        };
        let Ok(mut message) = logproto::PushRequest::decode(&plain[..]) else {
            return raw.to_vec();
        };
        for entry in message
            .streams
            .iter_mut()
            .flat_map(|s| s.entries.iter_mut())
        {
            if let Some(ts) = entry.timestamp.as_mut() {
                let ns = ts.seconds * 1_000_000_000 + i64::from(ts.nanos) + shift;
                ts.seconds = ns.div_euclid(1_000_000_000);
                ts.nanos = ns.rem_euclid(1_000_000_000) as i32;
            }
        }
        return protobuf::compress(&message.encode_to_vec());
    }
    let body = if markers {
        expand_markers(raw)
    } else {
        raw.to_vec()
    };
    shift_json_timestamps(&body, shift)
}

fn status_of(kind: ErrorKind) -> u64 {
    match kind {
        ErrorKind::BadRequest => 400,
        ErrorKind::TooLarge => 413,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::RateLimited => 429,
        ErrorKind::Storage => 500,
        ErrorKind::StorageFull => 507,
    }
}

/// (labels, entry count) pairs, sorted.
type Stored = Vec<(Labels, usize)>;

fn expected_streams(case: &Value) -> Stored {
    let mut streams: Stored = case["expect_streams"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let labels = s["labels"]
                        .as_object()
                        .map(|m| {
                            Labels::from_pairs(
                                m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or(""))),
                            )
                        })
                        .unwrap_or_default();
                    (labels, s["entries"].as_u64().unwrap_or(0) as usize)
                })
                .collect()
        })
        .unwrap_or_default();
    streams.sort();
    streams
}

/// Runs one case; `Err` says how it differs from the expectation.
fn run_case(dir: &Path, case: &Value, shift: i64) -> Result<(), String> {
    let file = case["file"].as_str().ok_or("case without file")?;
    let raw = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    let content_type = case["content_type"].as_str();
    let encoding = case["content_encoding"].as_str();
    let protobuf_body = content_type == Some("application/x-protobuf");
    let body = prepare(
        &raw,
        protobuf_body,
        encoding == Some("gzip"),
        case["needs_marker_expansion"].as_bool() == Some(true),
        shift,
    );
    let (status, stored, push) =
        match push::decode(&body, content_type, encoding, &DecodeLimits::default()) {
            Err(e) => (status_of(e.kind()), Vec::new(), Err(e.to_string())),
            Ok(request) => {
                let push = push::validate(request, &PushLimits::default(), SystemTime::now());
                let status = match push.outcome() {
                    PushOutcome::Accepted => 204,
                    _ => 400,
                };
                let mut stored: Stored = push
                    .streams
                    .iter()
                    .map(|s| (s.labels.clone(), s.entries.len()))
                    .collect();
                stored.sort();
                (status, stored, Ok(push))
            }
        };
    let message = match &push {
        Err(e) => e.clone(),
        Ok(p) => p.message().unwrap_or_default(),
    };
    if std::env::var_os("LOKI_CASES_VERBOSE").is_some() {
        eprintln!("{file}: {status}\n  {}", message.replace('\n', "\n  "));
    }
    let expect_status = case["expect_status"].as_u64().unwrap_or(0);
    if status != expect_status {
        return Err(format!(
            "status {status}, expected {expect_status}: {message}"
        ));
    }
    if expect_status == 400 && message.is_empty() {
        return Err("400 without a message".into());
    }
    let expected = expected_streams(case);
    if stored != expected {
        return Err(format!("stored {stored:?}, expected {expected:?}"));
    }
    let Ok(push) = push else { return Ok(()) };
    // Structured metadata per entry (valid/03), entries in timestamp order.
    if let Some(by_entry) = case["expect_streams"][0]["structured_metadata"].as_object() {
        let entries = &push.streams[0].entries;
        for (index, expected) in by_entry {
            let index: usize = index.parse().map_err(|_| "bad metadata index")?;
            let want: BTreeMap<String, String> = expected
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let got: BTreeMap<String, String> = entries
                .get(index)
                .map(|e| e.metadata.iter().cloned().collect())
                .unwrap_or_default();
            if got != want {
                return Err(format!("entry {index} metadata {got:?}, expected {want:?}"));
            }
        }
    }
    // Entries by time (valid/05): equal timestamps may come in any order.
    if let Some(expected) = case["expect_entries_by_time"].as_array() {
        let mut want: Vec<(i64, String)> = expected
            .iter()
            .map(|pair| {
                let ts: i64 = pair[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                (ts + shift, pair[1].as_str().unwrap_or("").to_owned())
            })
            .collect();
        let mut got: Vec<(i64, String)> = push.streams[0]
            .entries
            .iter()
            .map(|e| (e.timestamp_ns, e.line.clone()))
            .collect();
        if !got.is_sorted_by_key(|(ts, _)| *ts) {
            return Err("entries not sorted by timestamp".into());
        }
        want.sort();
        got.sort();
        if got != want {
            return Err(format!("entries {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}

#[test]
#[allow(
    clippy::print_stdout,
    reason = "the one-line summary is the point of this suite"
)]
fn loki_push_cases() {
    let dir = fixtures();
    let cases: Value = std::fs::read(dir.join("cases.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let cases = cases["cases"].as_array().cloned().unwrap_or_default();
    assert!(
        cases.len() >= 40,
        "cases.json not found or short in {dir:?}"
    );
    let shift = now_ns() - BASE_NS;
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run_case(&dir, case, shift) {
            failures.push(format!("{}: {why}", case["file"]));
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!(
        "loki push cases: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// With `max_line_size_truncate`, the over-long fixture line is stored cut to the limit.
#[test]
fn line_too_long_fixture_is_truncated_when_configured() {
    let raw = std::fs::read(fixtures().join("invalid/line_too_long.json")).unwrap_or_default();
    let body = shift_json_timestamps(&raw, now_ns() - BASE_NS);
    let request = push::json::decode(&body);
    assert!(request.is_ok(), "{request:?}");
    let limits = PushLimits {
        max_line_size_truncate: true,
        ..PushLimits::default()
    };
    let push = push::validate(request.unwrap_or_default(), &limits, SystemTime::now());
    assert_eq!(push.outcome(), PushOutcome::Accepted);
    assert_eq!(push.truncated_lines, 1);
    assert_eq!(push.streams[0].entries[0].line.len(), 262_144);
}
