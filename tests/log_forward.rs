//! Log forwarding, end to end over 127.0.0.1: one Sightline forwards every line pushed to it
//! (`logs.forward`) to a second Sightline's Loki push endpoint. The receiver is stopped in
//! the middle while pushes go on, the sender flushes its store (which would delete its WAL)
//! and restarts; once the receiver is back it holds exactly the lines the sender took, each
//! once, with the forwarder's external label.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, free_port, get_json, http, write_file};
use sightline_core::labels::Labels;
use sightline_logstore::push::{Entry, PushRequest, PushStream, protobuf};

/// Pushes per phase, and lines per push.
const PUSHES: usize = 10;
const LINES: usize = 20;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Pushes `PUSHES` protobuf+snappy bodies of `LINES` lines each to `app`; returns the
/// (timestamp, line) pairs pushed.
fn push_phase(app: &Appliance, phase: &str) -> Vec<(i64, String)> {
    let mut pushed = Vec::new();
    for push in 0..PUSHES {
        let start = now_ns();
        let entries: Vec<Entry> = (0..LINES)
            .map(|line| Entry {
                timestamp_ns: start + line as i64,
                line: format!("phase {phase} push {push} line {line}"),
                metadata: Vec::new(),
            })
            .collect();
        pushed.extend(entries.iter().map(|e| (e.timestamp_ns, e.line.clone())));
        let body = protobuf::encode(&PushRequest {
            streams: vec![PushStream {
                labels: Labels::from_pairs([("app", "forwarded"), ("phase", phase)]),
                entries,
                ..PushStream::default()
            }],
        });
        let response = http()
            .post(app.url("/loki/api/v1/push"))
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 204, "{:?}", response.text());
    }
    pushed
}

/// Every line of `{app="forwarded"}` the appliance holds, as (timestamp, line), and the
/// label sets of its streams.
fn held(app: &Appliance) -> (Vec<(i64, String)>, BTreeSet<String>) {
    let answer = get_json(
        app,
        "/loki/api/v1/query_range?query=%7Bapp%3D%22forwarded%22%7D&limit=5000&direction=forward&since=1h",
    );
    let mut lines = Vec::new();
    let mut streams = BTreeSet::new();
    for stream in answer["data"]["result"].as_array().unwrap() {
        streams.insert(stream["stream"].to_string());
        for value in stream["values"].as_array().unwrap() {
            lines.push((
                value[0].as_str().unwrap().parse().unwrap(),
                value[1].as_str().unwrap().to_owned(),
            ));
        }
    }
    lines.sort();
    (lines, streams)
}

fn wait_for_lines(app: &Appliance, count: usize) -> Vec<(i64, String)> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (lines, _) = held(app);
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver holds {} of {count} lines",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn stop(mut app: Appliance) {
    app.signal("TERM");
    assert!(
        app.wait_for_exit(Duration::from_secs(15)).is_some(),
        "sightline did not stop on SIGTERM"
    );
}

fn receiver(dir: &Path, port: u16) -> Appliance {
    Appliance::start(
        &dir.join("receiver"),
        &["--listen", &format!("127.0.0.1:{port}")],
    )
}

fn metric_line(app: &Appliance, prefix: &str) -> Option<String> {
    let text = http()
        .get(app.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(prefix))
        .map(str::to_owned)
}

#[test]
fn every_line_reaches_a_second_sightline_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_port = free_port();
    let config = write_file(
        dir.path(),
        "sender.yml",
        &format!(
            "logs:\n  forward:\n    - url: http://127.0.0.1:{receiver_port}/loki/api/v1/push\n      name: second\n      tenant_id: lab\n      batch_wait: 200ms\n      batch_size: 4KiB\n      min_backoff_period: 100ms\n      max_backoff_period: 1s\n      external_labels: {{forwarded_by: first}}\n"
        ),
    );
    let sender_args = ["--config", config.to_str().unwrap()];
    let sender_dir = dir.path().join("sender");
    let mut second = receiver(dir.path(), receiver_port);
    let mut first = Appliance::start(&sender_dir, &sender_args);

    let mut pushed = push_phase(&first, "before");
    wait_for_lines(&second, pushed.len());

    // The receiver goes away; pushes go on, the sender flushes everything to chunks (which
    // lets its store delete WAL segments) and restarts, and pushes go on again.
    stop(second);
    pushed.extend(push_phase(&first, "during"));
    let flushed = http().post(first.url("/flush")).send().unwrap();
    assert_eq!(flushed.status().as_u16(), 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric_line(&first, "loki_write_batch_retries_total{host=")
        .is_none_or(|line| line.ends_with(" 0"))
    {
        assert!(Instant::now() < deadline, "no retried batch counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = http()
        .get(first.url("/status"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(status.contains("Log forwarding"), "{status}");
    assert!(status.contains("Connection refused") || status.contains("error sending request"));
    stop(first);
    first = Appliance::start(&sender_dir, &sender_args);
    pushed.extend(push_phase(&first, "after"));
    let pending = metric_line(&first, "sightline_log_forward_pending_records{").unwrap();
    assert!(!pending.ends_with(" 0"), "{pending}");

    second = receiver(dir.path(), receiver_port);
    wait_for_lines(&second, pushed.len());
    // Nothing arrives twice: give a resent batch time to show up.
    std::thread::sleep(Duration::from_secs(1));
    let (received, streams) = held(&second);
    pushed.sort();
    assert_eq!(received.len(), pushed.len(), "every line once");
    assert_eq!(received, pushed);
    for phase in ["before", "during", "after"] {
        let labels =
            format!("{{\"app\":\"forwarded\",\"forwarded_by\":\"first\",\"phase\":\"{phase}\"}}");
        assert!(streams.contains(&labels), "{streams:?}");
    }
    let sent = metric_line(&first, "loki_write_sent_entries_total{").unwrap();
    assert!(sent.contains("name=\"second\""), "{sent}");
    eprintln!(
        "{} lines in {} pushes arrived once each across the receiver's and the sender's restarts",
        pushed.len(),
        3 * PUSHES
    );
}
