//! The built-in host metrics against the real `prometheus-node-exporter` on this machine:
//! the same metric names and label sets for every collector Sightline implements, values
//! within a tolerance; and the embedded default config scrapes them as job `node-exporter`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Appliance, free_port, get_json, http, write_file};
use sightline_scraper::exposition::{Entry, Format, Parser};
use sightline_scraper::host::collector_names;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Families node-exporter has and Sightline leaves out on purpose (scraper/src/host docs).
const NOT_REPORTED: [&str; 1] = ["node_exporter_build_info"];

/// Samples by family, then by label set.
type Families = BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>;

fn parse(text: &str) -> Families {
    let mut families = Families::new();
    let mut parser = Parser::new(text, Format::PrometheusText);
    while let Some(entry) = parser.next_entry() {
        if let Entry::Sample(sample) = entry.unwrap() {
            let labels = sample
                .labels
                .iter()
                .map(|l| (l.name.to_owned(), l.value.to_owned()))
                .collect();
            families
                .entry(sample.name.to_owned())
                .or_default()
                .insert(labels, sample.value);
        }
    }
    families
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real node-exporter's page, with only the collectors Sightline implements.
fn node_exporter_page() -> String {
    assert!(
        Path::new(NODE_EXPORTER).exists(),
        "this test compares with the real node-exporter: apt-get install prometheus-node-exporter"
    );
    let port = free_port();
    let mut command = Command::new(NODE_EXPORTER);
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for collector in collector_names() {
        command.arg(format!("--collector.{collector}"));
    }
    let _exporter = Killed(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = http()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
        {
            return response.text().unwrap();
        }
        assert!(Instant::now() < deadline, "node-exporter did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How far apart two reads of the same value may be, a moment apart.
fn tolerance(name: &str, a: f64, b: f64) -> f64 {
    let slack = if name.ends_with("_bytes") || name.ends_with("_bytes_total") {
        // Memory moves by the processes that come and go between the reads.
        256.0 * 1024.0 * 1024.0
    } else if name.ends_with("_seconds") || name.ends_with("_seconds_total") {
        5.0
    } else if name.ends_with("_total") || name.starts_with("node_vmstat_") {
        100_000.0
    } else {
        100.0
    };
    0.05 * a.abs().max(b.abs()) + slack
}

#[test]
fn host_metrics_match_the_real_node_exporter() {
    // Sightline first, so that its own memory is in both reads.
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let theirs = parse(&node_exporter_page());
    let ours = parse(
        &http()
            .get(app.url("/metrics/node"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );

    let expected: BTreeSet<&String> = theirs
        .keys()
        .filter(|name| name.starts_with("node_") && !NOT_REPORTED.contains(&name.as_str()))
        .collect();
    let got: BTreeSet<&String> = ours.keys().collect();
    assert_eq!(
        got, expected,
        "families: left is Sightline's, right is node-exporter's"
    );
    let mut series = 0;
    let mut problems = Vec::new();
    for name in expected {
        let (ours, theirs) = (&ours[name], &theirs[name]);
        let our_sets: BTreeSet<_> = ours.keys().collect();
        let their_sets: BTreeSet<_> = theirs.keys().collect();
        if our_sets != their_sets {
            problems.push(format!("{name}: label sets {our_sets:?} != {their_sets:?}"));
            continue;
        }
        if name == "node_scrape_collector_duration_seconds" {
            series += ours.len();
            continue;
        }
        for (labels, value) in ours {
            let other = theirs[labels];
            series += 1;
            if (value - other).abs() > tolerance(name, *value, other) {
                problems.push(format!(
                    "{name}{labels:?}: {value} vs node-exporter's {other}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    eprintln!(
        "{} families and {series} series match node-exporter ({} collectors)",
        ours.len(),
        collector_names().count()
    );
}

#[test]
fn the_embedded_default_scrapes_the_host_as_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let default = Command::new(common::binary())
        .args(["config", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8(default.stdout)
        .unwrap()
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{port}"));
    let config = write_file(dir.path(), "default.yml", &text);
    let app = Appliance::start(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let answer = get_json(
            &app,
            "/api/v1/query?query=node_memory_MemTotal_bytes%7Bjob%3D%22node-exporter%22%7D",
        );
        if let Some(sample) = answer["data"]["result"].as_array().unwrap().first() {
            let value: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
            assert!(value > 1e8, "{answer}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no node_* series scraped: {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
