//! Head ingestion benchmark: memory per active series and append cost.
//!
//! Appends `HEAD_BENCH_SERIES` (default 100 000) series × `HEAD_BENCH_SAMPLES` (default 300)
//! samples at a 1 s interval, scrape-like: every round appends one sample to every series by
//! cached ref in batches of 1 000 (one target's scrape), committed through the WAL with the
//! default 1 s sync. Label sets look like node_exporter / kube-state-metrics / cAdvisor
//! series (8–10 labels); values mix constants, integer counters and float gauges.
//!
//! Reports resident memory per series (`VmRSS` delta from `/proc/self/status`, so allocator
//! overhead and fragmentation count), the XOR chunk bytes alone as the baseline it is compared
//! with, samples per second and CPU-seconds per million samples (`/proc/self/stat`).
//!
//! Run: `cargo bench --workspace --bench head`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

mod common;

use common::{env_usize, status_bytes};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_core::labels::Labels;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::storage::Querier;

/// User + system CPU time of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The i-th series: one of a few realistic shapes, 8–10 labels.
fn labels(i: usize) -> Labels {
    let node = format!("worker-{:02}", i % 20);
    let instance = format!("10.0.{}.{}:9100", (i / 250) % 256, i % 250);
    match i % 4 {
        0 => Labels::from_pairs([
            ("__name__", "node_cpu_seconds_total".to_owned()),
            ("cpu", (i % 32).to_string()),
            (
                "mode",
                ["user", "system", "idle", "iowait"][(i / 32) % 4].to_owned(),
            ),
            ("instance", instance),
            ("job", "node-exporter".to_owned()),
            ("namespace", "monitoring".to_owned()),
            ("pod", format!("node-exporter-{:05x}", i / 128)),
            ("container", "node-exporter".to_owned()),
            ("node", node),
        ]),
        1 => Labels::from_pairs([
            ("__name__", "container_memory_working_set_bytes".to_owned()),
            ("container", format!("app-{}", i % 7)),
            (
                "id",
                format!("/kubepods/burstable/pod{:08x}/{:012x}", i / 4, i),
            ),
            (
                "image",
                format!("registry.local/app-{}:v1.{}", i % 7, i % 13),
            ),
            ("instance", instance),
            ("job", "kubelet".to_owned()),
            ("metrics_path", "/metrics/cadvisor".to_owned()),
            ("namespace", format!("team-{}", i % 11)),
            ("pod", format!("app-{}-{:06x}", i % 7, i / 4)),
            ("node", node),
        ]),
        2 => Labels::from_pairs([
            ("__name__", "kube_pod_status_phase".to_owned()),
            ("namespace", format!("team-{}", i % 11)),
            ("pod", format!("app-{}-{:06x}", i % 7, i / 4)),
            (
                "uid",
                format!("{:08x}-{:04x}-4000-8000-{:012x}", i, i % 65536, i * 7),
            ),
            (
                "phase",
                ["Running", "Pending", "Succeeded", "Failed"][i % 4 / 2].to_owned(),
            ),
            ("instance", "kube-state-metrics:8080".to_owned()),
            ("job", "kube-state-metrics".to_owned()),
            ("service", "kube-state-metrics".to_owned()),
        ]),
        _ => Labels::from_pairs([
            ("__name__", "node_network_receive_bytes_total".to_owned()),
            ("device", format!("veth{:06x}", i / 4)),
            ("instance", instance),
            ("job", "node-exporter".to_owned()),
            ("namespace", "monitoring".to_owned()),
            ("pod", format!("node-exporter-{:05x}", i / 128)),
            ("service", "node-exporter".to_owned()),
            ("endpoint", "metrics".to_owned()),
            ("node", node),
        ]),
    }
}

fn main() {
    let n_series = env_usize("HEAD_BENCH_SERIES", 100_000);
    let n_samples = env_usize("HEAD_BENCH_SAMPLES", 300);
    let batch = 1000;
    let dir = tempfile::tempdir().unwrap();
    let all_labels: Vec<Labels> = (0..n_series).map(labels).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut values: Vec<f64> = (0..n_series).map(|i| (i % 1000) as f64).collect();

    let rss_before = status_bytes("VmRSS");
    let head = Arc::new(Head::open(dir.path(), HeadOptions::default()).unwrap());
    let mut app = head.appender();
    let t0: i64 = 1_700_000_000_000;

    // Round 0 creates the series (hashing labels); the caller caches the refs.
    let created = Instant::now();
    let mut refs = Vec::with_capacity(n_series);
    for chunk in all_labels.chunks(batch) {
        for l in chunk {
            refs.push(app.append(l, t0, values[refs.len()]).unwrap());
        }
        app.commit().unwrap();
    }
    let create_time = created.elapsed();

    let cpu_start = cpu_seconds();
    let started = Instant::now();
    for round in 1..n_samples {
        // Scrape timestamps: 1 s apart with a few ms of jitter on some scrapes.
        let jitter = if rng.below(10) == 0 {
            rng.below(5) as i64
        } else {
            0
        };
        let t = t0 + round as i64 * 1000 + jitter;
        for (start, chunk) in refs.chunks(batch).enumerate() {
            for (k, &r) in chunk.iter().enumerate() {
                let i = start * batch + k;
                let v = &mut values[i];
                match i % 4 {
                    // Counters: integer increments.
                    0 | 3 => *v += rng.below(1000) as f64,
                    // Gauges: a float that moves now and then.
                    1 if rng.below(4) == 0 => {
                        *v = (rng.below(500_000_000) as f64) * 4096.0;
                    }
                    // Status: constant.
                    _ => {}
                }
                app.append_ref(r, t, *v).unwrap();
            }
            app.commit().unwrap();
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    let rss_after = status_bytes("VmRSS");

    let appended = (n_samples - 1) as f64 * n_series as f64;
    let selected = head.select(&[], i64::MIN, i64::MAX).unwrap();
    let chunk_bytes: usize = selected
        .iter()
        .flat_map(|s| s.chunks.iter())
        .filter_map(|c| c.chunk.loaded().ok())
        .filter_map(|c| c.xor_bytes().map(<[u8]>::len))
        .sum();
    let per_series = (rss_after - rss_before) as f64 / n_series as f64;
    let chunk_per_series = chunk_bytes as f64 / n_series as f64;
    println!(
        "head ingest: {n_series} series x {n_samples} samples, batches of {batch}, wal_sync 1s"
    );
    println!(
        "  series creation (round 0): {:.2} s",
        create_time.as_secs_f64()
    );
    println!(
        "  append by ref: {:.0} samples/s wall, {:.3} CPU-s per million samples",
        appended / elapsed.as_secs_f64(),
        cpu / (appended / 1e6)
    );
    println!(
        "  RSS per series: {per_series:.0} bytes (total delta {:.1} MiB)",
        (rss_after - rss_before) as f64 / (1 << 20) as f64
    );
    println!(
        "  baseline, XOR chunk bytes alone: {chunk_per_series:.0} bytes/series ({:.2} bytes/sample); head / baseline = {:.2}",
        chunk_bytes as f64 / (n_series * n_samples) as f64,
        per_series / chunk_per_series
    );
    drop(selected);
    let _ = Duration::ZERO;
}
