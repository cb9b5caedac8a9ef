//! Tailer throughput: MB of pod logs read, reassembled, labelled and stored per CPU-second.
//!
//! 50 pods' CRI log files (one in ten lines split into two fragments) under a temporary
//! `/var/log/pods` layout are tailed into a real log store (RocksDB and WAL on a temp dir)
//! until every line is stored. CPU is the whole process's (the store's background threads
//! included), from `cpu_time::ProcessTime`.
//!
//! `cargo bench --bench tailer` (set `TAILER_BENCH_MB`, default 200).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Bench output.

use std::fmt::Write as _;
use std::time::Instant;

use cpu_time::ProcessTime;
use sightline_logstore::push::PushLimits;
use sightline_logstore::store::{LogStore, StoreOptions};
use sightline_scraper::tailer::{PodMetadata, Tailer, TailerOptions};

const PODS: usize = 50;

/// One pod's log file of about `bytes` bytes, stamped with the current time.
fn pod_log(pod: usize, bytes: usize) -> String {
    let stamp = kubelet_now();
    let mut text = String::with_capacity(bytes + 256);
    let mut line = 0usize;
    while text.len() < bytes {
        let content = format!(
            "level=info ts={stamp} caller=handler.go:{} msg=\"request served\" pod=app-{pod} path=/api/v1/items/{line} status=200 duration_ms={}",
            line % 500,
            line % 97
        );
        if line.is_multiple_of(10) {
            let (head, tail) = content.split_at(content.len() / 2);
            writeln!(text, "{stamp} stdout P {head}").unwrap();
            writeln!(text, "{stamp} stdout F {tail}").unwrap();
        } else {
            writeln!(text, "{stamp} stdout F {content}").unwrap();
        }
        line += 1;
    }
    text
}

/// Now as RFC 3339 with nanoseconds, as the kubelet writes it.
fn kubelet_now() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn main() {
    let total_mb: usize = std::env::var("TAILER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let mut written = 0usize;
    for pod in 0..PODS {
        let container = root.join(format!("ns-{}_app-{pod}_uid-{pod}/app", pod % 5));
        std::fs::create_dir_all(&container).unwrap();
        let text = pod_log(pod, total_mb * 1_000_000 / PODS);
        written += text.len();
        std::fs::write(container.join("0.log"), text).unwrap();
    }
    let store = LogStore::open(dir.path().join("store"), StoreOptions::default()).unwrap();
    let options = TailerOptions {
        pods_root: Some(root),
        node: "bench".into(),
        positions_file: dir.path().join("positions.json"),
        max_partial_line_size: 256 * 1024,
        limits: PushLimits::default(),
        ..TailerOptions::default()
    };
    let mut tailer = Tailer::new(options, PodMetadata::default());
    let (cpu, wall) = (ProcessTime::now(), Instant::now());
    let (mut lines, mut bytes, mut rejected) = (0u64, 0u64, 0u64);
    loop {
        let stats = tailer.poll(&store).unwrap();
        if stats.bytes == 0 {
            break;
        }
        lines += stats.lines;
        bytes += stats.bytes;
        rejected += stats.rejected;
    }
    let (cpu, wall) = (cpu.elapsed().as_secs_f64(), wall.elapsed().as_secs_f64());
    assert_eq!(bytes as usize, written, "every byte was read");
    assert_eq!(rejected, 0);
    let mb = bytes as f64 / 1e6;
    println!(
        "tailer: {mb:.0} MB, {lines} lines from {PODS} pods in {wall:.2} s wall, {cpu:.2} CPU-s: {:.1} MB per CPU-second ({:.1} MB/s wall)",
        mb / cpu,
        mb / wall
    );
}
