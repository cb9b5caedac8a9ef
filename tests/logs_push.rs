//! The Loki push endpoint on the real binary over loopback HTTP: JSON, protobuf + snappy and
//! gzip bodies, every validation error with the partial-success body, the size and rate
//! limits, out-of-order entries, and durability: a SIGKILL right after a 2xx loses nothing
//! and a restart keeps everything. What was stored is read back with the store's own read
//! API once the process has stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Appliance, http, write_file};
use prost::Message;
use sightline_logstore::push::protobuf::logproto;
use sightline_logstore::store::{Direction, LogStore, StoreOptions};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `{"streams":[{"stream":{labels},"values":[["ns","line"],…]}]}`.
/// One stream of a test push: its labels and its (nanosecond timestamp, line) entries.
type TestStream<'a> = (&'a [(&'a str, &'a str)], Vec<(i64, String)>);

fn json_body(streams: &[TestStream<'_>]) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = streams
        .iter()
        .map(|(labels, values)| {
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            let values: Vec<serde_json::Value> = values
                .iter()
                .map(|(ts, line)| serde_json::json!([ts.to_string(), line]))
                .collect();
            serde_json::json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

fn protobuf_body(labels: &str, values: &[(i64, String)]) -> Vec<u8> {
    let message = logproto::PushRequest {
        streams: vec![logproto::StreamAdapter {
            labels: labels.into(),
            entries: values
                .iter()
                .map(|(ts, line)| logproto::EntryAdapter {
                    timestamp: Some(logproto::Timestamp {
                        seconds: ts.div_euclid(1_000_000_000),
                        nanos: ts.rem_euclid(1_000_000_000) as i32,
                    }),
                    line: line.as_bytes().to_vec(),
                    structured_metadata: Vec::new(),
                })
                .collect(),
            hash: 0,
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&message.encode_to_vec())
        .unwrap()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

fn post(
    app: &Appliance,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Option<String>) {
    let mut request = http()
        .post(app.url(path))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("Content-Encoding", encoding);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().unwrap(), retry_after)
}

/// Every stored entry as (labels text, timestamp, line), read from the store of a stopped
/// appliance.
fn stored(data_dir: &Path) -> Vec<(String, i64, String)> {
    let store = LogStore::open(data_dir.join("logs"), StoreOptions::default()).unwrap();
    let mut all = Vec::new();
    for stream in store.streams(&[], i64::MIN + 1, i64::MAX).unwrap() {
        let labels: Vec<String> = stream
            .labels
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        let page = store
            .entries(stream.id, i64::MIN + 1, i64::MAX, Direction::Forward, 0)
            .unwrap();
        for entry in page.entries {
            all.push((labels.join(","), entry.timestamp_ns, entry.line));
        }
    }
    all
}

fn stop(mut app: Appliance) {
    app.signal("TERM");
    assert!(
        app.wait_for_exit(Duration::from_secs(10)).is_some(),
        "sightline did not stop on SIGTERM"
    );
}

#[test]
fn json_protobuf_and_gzip_pushes_survive_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns() - 60_000_000_000;
    let mut app = Appliance::start(dir.path(), &[]);
    let mut expected = Vec::new();
    let lines = |from: i64, n: i64, tag: &str| -> Vec<(i64, String)> {
        (0..n)
            .map(|i| (t + from + i, format!("{tag} line {i}")))
            .collect()
    };
    let json = lines(0, 50, "json");
    let (status, body, _) = post(
        &app,
        "/loki/api/v1/push",
        "application/json",
        None,
        json_body(&[(&[("app", "api"), ("env", "prod")], json.clone())]),
    );
    assert_eq!((status, body.as_str()), (204, ""));
    expected.extend(
        json.into_iter()
            .map(|(ts, l)| ("app=api,env=prod".to_owned(), ts, l)),
    );

    let proto = lines(100, 50, "proto");
    let (status, _, _) = post(
        &app,
        "/loki/api/v1/push",
        "application/x-protobuf",
        None,
        protobuf_body(r#"{app="web", env="prod"}"#, &proto),
    );
    assert_eq!(status, 204);
    expected.extend(
        proto
            .into_iter()
            .map(|(ts, l)| ("app=web,env=prod".to_owned(), ts, l)),
    );

    // Out of order within the stream, in a later push, through the legacy path, gzipped.
    let late = lines(-1_000_000, 20, "gzip late");
    let (status, _, _) = post(
        &app,
        "/api/prom/push",
        "application/json",
        Some("gzip"),
        gzip(&json_body(&[(
            &[("app", "api"), ("env", "prod")],
            late.clone(),
        )])),
    );
    assert_eq!(status, 204);
    expected.extend(
        late.into_iter()
            .map(|(ts, l)| ("app=api,env=prod".to_owned(), ts, l)),
    );

    // SIGKILL right after the last 2xx: the WAL is synced before the answer.
    app.signal("KILL");
    app.wait_for_exit(Duration::from_secs(10)).expect("killed");
    drop(app);

    let app = Appliance::start(dir.path(), &[]);
    assert!(
        app.log()
            .iter()
            .any(|l| l.contains("log WAL replayed") && l.contains("entries=120")),
        "{:#?}",
        app.log()
    );
    stop(app);
    let mut got = stored(dir.path());
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    // A clean restart after that keeps everything too (and replays nothing twice).
    let app = Appliance::start(dir.path(), &[]);
    stop(app);
    let mut again = stored(dir.path());
    again.sort();
    assert_eq!(again, expected);
}

#[test]
fn validation_errors_answer_400_and_keep_the_good_entries() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(dir.path(), &[]);
    let now = now_ns();
    let hour = 3_600_000_000_000i64;
    let many: Vec<(String, String)> = (0..16).map(|i| (format!("l{i}"), "v".to_owned())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let long_value = "v".repeat(2049);
    let long_name = format!("n{}", "a".repeat(1024));
    let body = json_body(&[
        (
            &[("app", "good")],
            vec![
                (now, "kept".to_owned()),
                (now - 8 * 24 * hour, "too old".to_owned()),
                (now + hour, "too new".to_owned()),
                (now + 1, "x".repeat(256 * 1024 + 1)),
            ],
        ),
        (&many, vec![(now, "too many labels".to_owned())]),
        (&[("bad-name", "x")], vec![(now, "invalid name".to_owned())]),
        (
            &[("app", long_value.as_str())],
            vec![(now, "long value".to_owned())],
        ),
        (
            &[(long_name.as_str(), "x")],
            vec![(now, "long name".to_owned())],
        ),
    ]);
    let (status, body, _) = post(&app, "/loki/api/v1/push", "application/json", None, body);
    assert_eq!(status, 400, "{body}");
    for expected in [
        "has an entry too old",
        "has an entry too far in the future",
        "longer than the limit of 262144 (max_line_size",
        "has 16 label names, more than the limit of 15",
        "has an invalid label name 'bad-name'",
        "longer than the limit of 2048 (max_label_value_length)",
        "longer than the limit of 1024 (max_label_name_length)",
        "7 entries rejected, 1 accepted",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
    }
    // Bodies that cannot be read at all.
    let (status, body, _) = post(
        &app,
        "/loki/api/v1/push",
        "application/json",
        None,
        b"{".to_vec(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON push body"), "{body}");
    let (status, _, _) = post(&app, "/loki/api/v1/push", "text/plain", None, b"x".to_vec());
    assert_eq!(status, 415);
    let (status, body, _) = post(
        &app,
        "/loki/api/v1/push",
        "application/x-protobuf",
        None,
        b"not snappy".to_vec(),
    );
    assert_eq!(status, 400, "{body}");
    stop(app);
    let got = stored(dir.path());
    assert_eq!(got, [("app=good".to_owned(), now, "kept".to_owned())]);
}

#[test]
fn truncation_size_and_rate_limits_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "limits:\n  request_body_size: 64KiB\n  logs:\n    max_line_size: 3000\n    \
         max_line_size_truncate: true\n    ingestion_rate: 1KiB\n    \
         ingestion_burst_size: 8KiB\n",
    );
    let data = dir.path().join("data");
    let app = Appliance::start(&data, &["--config", config.to_str().unwrap()]);
    let now = now_ns();
    let push = |lines: Vec<(i64, String)>| {
        post(
            &app,
            "/loki/api/v1/push",
            "application/json",
            None,
            json_body(&[(&[("app", "api")], lines)]),
        )
    };
    // A long line is cut to 3000 bytes and accepted.
    let (status, body, _) = push(vec![(now, "y".repeat(3500))]);
    assert_eq!((status, body.as_str()), (204, ""));
    // The 8 KiB burst holds 5 KiB more: one 2900-byte push passes, the next one is 429.
    let (status, _, _) = push(vec![(now + 1, "a".repeat(2900))]);
    assert_eq!(status, 204);
    let (status, body, retry_after) = push(vec![(now + 2, "b".repeat(2900))]);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("ingestion rate limit exceeded"), "{body}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // More than the burst can never pass: 413, and so is a body over request_body_size.
    let three: Vec<(i64, String)> = (0..3).map(|i| (now + 10 + i, "c".repeat(3000))).collect();
    let (status, body, _) = push(three);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than the rate limit burst"), "{body}");
    let (status, _, _) = push(vec![(now + 20, "d".repeat(70_000))]);
    assert_eq!(status, 413);
    stop(app);
    let lines: Vec<usize> = stored(&data).iter().map(|(_, _, l)| l.len()).collect();
    assert_eq!(lines, [3000, 2900]);
}
