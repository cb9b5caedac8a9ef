//! PromQL range-query benchmark over the real head: the engine's time and memory per query.
//!
//! Appends `PROMQL_BENCH_SERIES` (default 10 000) series over `PROMQL_BENCH_HOURS` (default
//! 24) hours at a `PROMQL_BENCH_INTERVAL_S` (default 60) second interval into a
//! [`Head`] on a temporary directory, through its appender (WAL included), then runs range
//! queries over the last 1 h (15 s step), 24 h (60 s step) and, when the data covers it,
//! 7 d (10 m step), each `PROMQL_BENCH_RUNS` (default 3) times, and prints the median wall
//! time and the growth of the peak resident memory (`VmHWM`) during the query.
//!
//! Series: 10 jobs; 60 % `http_requests_total` counters (handler × instance), 20 %
//! `http_request_duration_seconds_bucket` classic histogram buckets (10 `le` values), 20 %
//! `node_memory_free_bytes` gauges.
//!
//! With `PROMQL_BENCH_OPENMETRICS=FILE` the same samples are also written as OpenMetrics
//! text, and `PROMQL_BENCH_START_S` moves them to a recent time, for
//! `benches/promql_vs_prometheus.sh`, which loads them into Prometheus.
//!
//! `PROMQL_BENCH_QUERY=TEXT` runs only the queries containing TEXT (e.g. `count` while
//! profiling one of them).
//!
//! Run: `cargo bench -p sightline-tsdb --bench promql`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

mod common;

use common::{env_usize, reset_peak, status_bytes};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_core::labels::Labels;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::promql::{Engine, EngineOptions, Value};

const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "5", "+Inf",
];

/// The i-th series and how its value moves per interval.
fn series(i: usize) -> (Labels, f64) {
    let job = format!("job-{}", i % 10);
    let instance = format!("host-{}:9100", (i / 10) % 100);
    match i % 10 {
        0..=5 => (
            Labels::from_pairs([
                ("__name__", "http_requests_total".to_owned()),
                ("job", job),
                ("instance", instance),
                ("handler", format!("/api/v{}", i / 1000)),
            ]),
            1.0 + (i % 7) as f64,
        ),
        6 | 7 => {
            let le = BUCKETS[(i / 10) % BUCKETS.len()];
            let rank = (i / 10) % BUCKETS.len();
            (
                Labels::from_pairs([
                    (
                        "__name__",
                        "http_request_duration_seconds_bucket".to_owned(),
                    ),
                    ("job", job),
                    ("instance", instance),
                    ("le", le.to_owned()),
                    ("group", format!("{}", i / 100)),
                ]),
                (rank + 1) as f64,
            )
        }
        _ => (
            Labels::from_pairs([
                ("__name__", "node_memory_free_bytes".to_owned()),
                ("job", job),
                ("instance", instance),
                ("slot", format!("{}", i / 100)),
            ]),
            0.0,
        ),
    }
}

/// The value of a series with `slope` (0 for a gauge) at its `step`-th sample.
fn value(slope: f64, step: i64) -> f64 {
    if slope == 0.0 {
        1e9 + (step as f64 * 0.37).sin() * 1e8
    } else {
        step as f64 * slope
    }
}

/// Writes the same samples as OpenMetrics text (series after series, `# EOF` last), the
/// input of `promtool tsdb create-blocks-from openmetrics`.
fn write_openmetrics(path: &str, shapes: &[(Labels, f64)], start: i64, end: i64, interval: i64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (labels, slope) in shapes {
        let name = labels.get("__name__").unwrap();
        let pairs: Vec<String> = labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| format!("{}=\"{}\"", l.name, l.value))
            .collect();
        let series = format!("{name}{{{}}}", pairs.join(","));
        let mut t = start;
        while t <= end {
            let v = value(*slope, (t - start) / interval);
            writeln!(out, "{series} {v:?} {}", t as f64 / 1000.0).unwrap();
            t += interval;
        }
    }
    writeln!(out, "# EOF").unwrap();
}

fn main() {
    let n_series = env_usize("PROMQL_BENCH_SERIES", 10_000);
    let hours = env_usize("PROMQL_BENCH_HOURS", 24) as i64;
    let interval_ms = env_usize("PROMQL_BENCH_INTERVAL_S", 60) as i64 * 1000;
    let runs = env_usize("PROMQL_BENCH_RUNS", 3);
    let start = env_usize("PROMQL_BENCH_START_S", 0) as i64 * 1000;
    let end = start + hours * 3_600_000;

    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::open(dir.path(), HeadOptions::default()).unwrap());
    let shapes: Vec<(Labels, f64)> = (0..n_series).map(series).collect();
    let loading = Instant::now();
    let mut refs = Vec::with_capacity(n_series);
    let mut app = head.appender();
    for (labels, slope) in &shapes {
        refs.push(app.append(labels, start, value(*slope, 0)).unwrap());
    }
    app.commit().unwrap();
    let mut samples = n_series;
    let mut t = start + interval_ms;
    while t <= end {
        let step = (t - start) / interval_ms;
        for chunk in refs.chunks(1000).zip(shapes.chunks(1000)) {
            let mut app = head.appender();
            for (r, (_, slope)) in chunk.0.iter().zip(chunk.1) {
                app.append_ref(*r, t, value(*slope, step)).unwrap();
            }
            app.commit().unwrap();
        }
        samples += n_series;
        t += interval_ms;
    }
    println!(
        "loaded {samples} samples of {n_series} series over {hours} h in {:.1} s; RSS {} MiB",
        loading.elapsed().as_secs_f64(),
        status_bytes("VmRSS") >> 20
    );

    if let Ok(path) = std::env::var("PROMQL_BENCH_OPENMETRICS") {
        write_openmetrics(&path, &shapes, start, end, interval_ms);
        println!("wrote the same samples to {path}");
    }

    let engine = Engine::new(EngineOptions {
        timeout: Some(Duration::from_secs(600)),
        ..EngineOptions::default()
    });
    let queries = [
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        "topk(10, rate(http_requests_total[5m]))",
        "count by (job) ({__name__=~\"http_.+|node_.+\", instance=~\"host-(1|2|3).*\"})",
    ];
    let ranges: [(&str, i64, i64); 3] = [
        ("1h", 3_600_000, 15_000),
        ("24h", 24 * 3_600_000, 60_000),
        ("7d", 7 * 24 * 3_600_000, 600_000),
    ];
    println!("| query | range@step | median ms | peak RSS growth MiB | series × points |");
    println!("|---|---|---|---|---|");
    let only = std::env::var("PROMQL_BENCH_QUERY").unwrap_or_default();
    for query in queries.into_iter().filter(|q| q.contains(only.as_str())) {
        for (name, range, step) in ranges {
            if range > hours * 3_600_000 {
                continue;
            }
            let mut times = Vec::with_capacity(runs);
            let mut peak = 0;
            let mut shape = (0, 0);
            for _ in 0..runs {
                reset_peak();
                let before = status_bytes("VmRSS");
                let started = Instant::now();
                let result = engine
                    .range_query(head.as_ref(), query, end - range, end, step)
                    .unwrap();
                times.push(started.elapsed());
                peak = peak.max(status_bytes("VmHWM").saturating_sub(before));
                if let Value::Matrix(m) = &result.value {
                    shape = (m.len(), m.iter().map(|s| s.points.len()).sum::<usize>());
                }
            }
            times.sort();
            println!(
                "| `{query}` | {name}@{}s | {:.0} | {:.1} | {} × {} |",
                step / 1000,
                times[times.len() / 2].as_secs_f64() * 1000.0,
                peak as f64 / 1048576.0,
                shape.0,
                shape.1
            );
        }
    }
}
