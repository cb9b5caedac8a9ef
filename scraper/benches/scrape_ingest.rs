//! The scrape loop's ingest path without HTTP: parse, `metric_relabel_configs`, label limits,
//! the series cache and the head appender with its WAL, on node_exporter output and on a
//! 100k-series kube-state-metrics-like body. Samples per CPU-second of the benchmark thread.
//!
//! Run: `cargo bench --workspace --bench scrape_ingest`. Criterion prints time per
//! scrape and samples/s ("Melem/s"):
//! - `steady`: the same target scraped again every second of sample time — every series is
//!   in the loop's cache, so each line costs a parse, a cache lookup and an append by ref;
//! - `first_scrape`: a new scrape loop (empty cache) on a head that already holds the series,
//!   as after a config reload — every line also builds its labels, runs the relabel rules and
//!   finds its series in the head by labels.
//!
//! The head lives in a temporary directory with the default `wal_sync` (1 s).

// `criterion_group!` generates an undocumented `pub fn`; set-up failures end the benchmark.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::ThreadCpuTime;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sightline_core::config::{Config, ScrapeConfig};
use sightline_scraper::discovery::static_groups;
use sightline_scraper::scrape::ScrapeLoop;
use sightline_scraper::scrape::client::{Fetched, ScrapeClient};
use sightline_scraper::target::Target;
use sightline_tsdb::head::{Head, HeadOptions};

/// A job as a homelab writes it: drop a noisy family, drop a high-cardinality label.
const JOB: &str = r#"global: {scrape_interval: 1s}
scrape_configs:
  - job_name: bench
    static_configs: [{targets: ['127.0.0.1:9100'], labels: {env: bench}}]
    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'go_gc_duration_seconds.*', action: drop}
      - {regex: uid, action: labeldrop}
"#;

fn job() -> ScrapeConfig {
    Config::parse(Path::new("bench.yml"), JOB)
        .unwrap()
        .scrape_configs
        .remove(0)
}

fn scrape_loop(job: &ScrapeConfig) -> ScrapeLoop {
    let group = &static_groups(job)[0];
    let target = Target::populate(job, &group.targets[0], &group.labels)
        .unwrap()
        .unwrap();
    let client = Arc::new(ScrapeClient::new(job, Path::new(".")).unwrap());
    ScrapeLoop::new(target, Arc::new(job.clone()), client)
}

/// Sample time: one scrape per second from a fixed start.
fn second(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n)
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    let job = job();
    let bodies = [
        ("node_exporter", common::fixture("node_exporter.prom")),
        ("ksm_100k", common::ksm_like()),
    ];
    for (name, body) in bodies {
        let dir = tempfile::tempdir().unwrap();
        let head = Arc::new(Head::open(dir.path(), HeadOptions::default()).unwrap());
        let fetched = Fetched {
            body: body.into_bytes(),
            content_type: Some("text/plain; version=0.0.4".into()),
        };
        let mut steady = scrape_loop(&job);
        let mut clock = 0;
        let report = steady
            .store(&head, second(clock), Instant::now(), Ok(&fetched))
            .unwrap();
        eprintln!(
            "{name}: {} bytes, {} samples scraped, {} after relabeling",
            fetched.body.len(),
            report.samples_scraped,
            report.samples_post_relabeling
        );
        let mut g = c.benchmark_group(format!("scrape_ingest/{name}"));
        g.throughput(Throughput::Elements(report.samples_scraped));
        if report.samples_scraped > 10_000 {
            g.sample_size(10);
        }
        g.bench_function(BenchmarkId::from_parameter("steady"), |b| {
            b.iter(|| {
                clock += 1;
                steady
                    .store(&head, second(clock), Instant::now(), Ok(&fetched))
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::from_parameter("first_scrape"), |b| {
            b.iter_batched(
                || scrape_loop(&job),
                |mut fresh| {
                    clock += 1;
                    let report = fresh
                        .store(&head, second(clock), Instant::now(), Ok(&fetched))
                        .unwrap();
                    // Returned so that freeing the loop's cache is not timed.
                    (fresh, report)
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
