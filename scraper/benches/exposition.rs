//! Exposition parser throughput against the `prometheus-parse` 0.2.5 baseline, in the same
//! run, over node_exporter output, Prometheus's 237-family `/metrics` page and a generated
//! 100k-series kube-state-metrics-like body; and that body as OpenMetrics, with strict and
//! Prometheus validation.
//!
//! Run: `cargo bench -p sightline-scraper --bench exposition`. Criterion prints time and
//! MB/s (decimal) per body; the lines printed first give the sample counts to turn time into
//! ns/sample, and what the baseline returns for the same body.
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the build machines are shared, and waiting for a core is not parsing.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use common::ThreadCpuTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_scraper::exposition::{Entry, Format, Parser, Validation};

/// Our parser: every entry, summing values so nothing is optimised away.
fn ours(body: &str) -> (usize, f64) {
    ours_as(body, Format::PrometheusText, Validation::Strict)
}

fn ours_as(body: &str, format: Format, validation: Validation) -> (usize, f64) {
    let mut p = Parser::new(body, format).validation(validation);
    let (mut n, mut sum) = (0usize, 0.0f64);
    while let Some(e) = p.next_entry() {
        if let Ok(Entry::Sample(s)) = e {
            n += 1;
            sum += s.value + s.labels.len() as f64 + s.series.len() as f64;
        }
    }
    (n, sum)
}

/// The baseline, fed the way its API requires (owned lines).
fn baseline(body: &str) -> io::Result<prometheus_parse::Scrape> {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
}

/// What the baseline returned: its sample count, and the count with histogram buckets and
/// summary quantiles expanded back into lines.
fn baseline_counts(body: &str) -> (usize, usize) {
    let Ok(scrape) = baseline(body) else {
        return (0, 0);
    };
    let expanded = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => b.len(),
            prometheus_parse::Value::Summary(q) => q.len(),
            _ => 1,
        })
        .sum();
    (scrape.samples.len(), expanded)
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    let bodies = [
        ("node_exporter", common::fixture("node_exporter.prom")),
        (
            "alltypes_237mfs",
            common::fixture("prometheus-textparse/alltypes.237mfs.prom.txt"),
        ),
        ("ksm_100k", common::ksm_like()),
    ];
    for (name, body) in &bodies {
        let (n, _) = ours(body);
        let (b, b_expanded) = baseline_counts(body);
        eprintln!(
            "{name}: {} bytes, {} lines; sightline: {n} samples; prometheus-parse: {b} samples ({b_expanded} with buckets/quantiles expanded)",
            body.len(),
            body.lines().count()
        );
    }
    for (name, body) in &bodies {
        let mut g = c.benchmark_group(format!("exposition/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("sightline", |b| b.iter(|| ours(black_box(body))));
        g.bench_function("prometheus-parse", |b| {
            b.iter(|| baseline(black_box(body)).map(|s| s.samples.len()))
        });
        g.finish();
    }
    // The same 100k series as an OpenMetrics body: the cost of strict validation.
    let om = format!("{}# EOF\n", bodies[2].1);
    let mut g = c.benchmark_group("exposition/ksm_100k_openmetrics");
    g.throughput(Throughput::Bytes(om.len() as u64));
    for (name, v) in [
        ("strict", Validation::Strict),
        ("prometheus", Validation::Prometheus),
    ] {
        assert_eq!(ours_as(&om, Format::OpenMetrics, v).0, 100_000);
        g.bench_function(name, |b| {
            b.iter(|| ours_as(black_box(&om), Format::OpenMetrics, v))
        });
    }
    g.finish();
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
