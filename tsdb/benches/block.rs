//! Block store benchmarks on realistic scrape data (see `block_data`, modelled on
//! `../shared/bench/metrics/targets.py`):
//!
//! 1. bytes on disk per sample once blocks are written and compacted into day blocks, for
//!    each chunk encoding × RocksDB compression (printed as a table before the timings; the
//!    baseline is Prometheus's own layout, XOR chunks as the head cut them, uncompressed);
//! 2. the directory size before and after retention drops two of three days;
//! 3. the memory a read holds: the growth of the peak RSS while 1,000 series × 1 day are
//!    selected and held, as a query holds them (printed before the timings);
//! 4. criterion timings of reading 1 series × 7 days and 10 000 series × 1 hour.
//!
//! `cargo bench -p sightline-tsdb --bench block` (set `BLOCK_BENCH_PARTS` to a comma list of
//! `sizes`, `expiry`, `reads` to run only those parts, `BLOCK_BENCH_SERIES` and
//! `BLOCK_BENCH_INTERVAL_MS` to change the data).

// A benchmark reports on stdout and may stop at the first failure.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

mod block_data;

use common::{env_usize, reset_peak, status_bytes};
use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_tsdb::block::{
    BlockStore, BlockStoreOptions, ChunkEncoding, Compression, DEFAULT_BLOCK_RANGE_MS,
    RetentionPolicy,
};
use sightline_tsdb::storage::Querier;

/// 2025-11-20T00:00:00Z.
const DAY0: i64 = 1_763_596_800_000;
const DAY: i64 = 86_400_000;

/// Writes `days` days of 2 h blocks of `models` scraped every `interval_ms`, compacts finished
/// days, and returns the number of samples written.
fn fill(store: &BlockStore, models: &[block_data::Model], days: i64, interval_ms: i64) -> u64 {
    let per_day = (DAY / interval_ms) as usize;
    let mut samples = 0;
    for day in 0..days {
        let times = block_data::scrape_times(DAY0 + day * DAY, interval_ms, per_day, day as u64);
        for block in 0..DAY / DEFAULT_BLOCK_RANGE_MS {
            let mint = DAY0 + day * DAY + block * DEFAULT_BLOCK_RANGE_MS;
            let series =
                block_data::block_series(models, &times, DAY0, mint, mint + DEFAULT_BLOCK_RANGE_MS);
            samples += store
                .write_block(mint, mint + DEFAULT_BLOCK_RANGE_MS, series)
                .unwrap()
                .num_samples;
        }
    }
    store
        .compact(DAY0 + days * DAY, &RetentionPolicy::default())
        .unwrap();
    samples
}

fn size_table() {
    let nseries = env_usize("BLOCK_BENCH_SERIES", 2_000);
    let interval_ms = env_usize("BLOCK_BENCH_INTERVAL_MS", 15_000) as i64;
    let models = block_data::target(0, nseries, 42);
    println!(
        "bytes/sample on disk: {} series ({} per target as targets.py --series), 1 day every {} ms, 12 × 2 h blocks compacted into a day block",
        models.len(),
        nseries,
        interval_ms
    );
    let zstd = Compression::Zstd {
        level: 3,
        dictionary_bytes: 16 << 10,
    };
    let variants = [
        (
            "xor as cut by the head (120/chunk), no compression [baseline: Prometheus layout]",
            ChunkEncoding::XorAsGiven,
            Compression::None,
        ),
        (
            "xor as cut by the head, lz4",
            ChunkEncoding::XorAsGiven,
            Compression::Lz4,
        ),
        (
            "xor as cut by the head, zstd",
            ChunkEncoding::XorAsGiven,
            zstd,
        ),
        (
            "xor one chunk per series, zstd",
            ChunkEncoding::XorMerged,
            zstd,
        ),
        (
            "columnar, no compression",
            ChunkEncoding::Columnar,
            Compression::None,
        ),
        ("columnar, lz4", ChunkEncoding::Columnar, Compression::Lz4),
        (
            "columnar, zstd 3 / bottommost 9, no dictionary",
            ChunkEncoding::Columnar,
            Compression::Zstd {
                level: 3,
                dictionary_bytes: 0,
            },
        ),
        (
            "columnar, zstd 3 / bottommost 9 + 16 KiB dictionary [default]",
            ChunkEncoding::Columnar,
            zstd,
        ),
    ];
    let mut baseline = None;
    for (name, encoding, compression) in variants {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open_with(
            dir.path(),
            BlockStoreOptions {
                encoding,
                compression,
                ..Default::default()
            },
        )
        .unwrap();
        let start = Instant::now();
        let samples = fill(&store, &models, 1, interval_ms);
        let elapsed = start.elapsed();
        let sst = store.disk_usage().unwrap();
        drop(store);
        let dir_bytes = block_data::dir_size(dir.path());
        let per_sample = dir_bytes as f64 / samples as f64;
        let base = *baseline.get_or_insert(per_sample);
        println!(
            "  {name:<78} {:>6.3} B/sample (SST only {:.3}; {:.2}× baseline), {samples} samples, write+compact {:.1} s",
            per_sample,
            sst as f64 / samples as f64,
            per_sample / base,
            elapsed.as_secs_f64()
        );
    }
}

/// Disk space before and after retention drops the two oldest of three compacted days.
fn expiry_table() {
    let nseries = env_usize("BLOCK_BENCH_SERIES", 2_000);
    let interval_ms = env_usize("BLOCK_BENCH_INTERVAL_MS", 15_000) as i64;
    let models = block_data::target(0, nseries, 42);
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let samples = fill(&store, &models, 3, interval_ms);
    let before = block_data::dir_size(dir.path());
    let policy = RetentionPolicy {
        max_age: sightline_core::duration::Duration::from_secs(86_400),
        ..RetentionPolicy::default()
    };
    let report = store.apply_retention(DAY0 + 3 * DAY, &policy).unwrap();
    let after = block_data::dir_size(dir.path());
    drop(store);
    let reopened = block_data::dir_size(dir.path());
    println!(
        "expiry: 3 compacted days ({samples} samples), retention 1 d at the end of day 3 drops {} day partitions: \
         directory {before} B -> {after} B right after ({:.1} % of before), {reopened} B after closing",
        report.partitions_dropped,
        after as f64 * 100.0 / before as f64
    );
}

fn reads(c: &mut Criterion) {
    // 1 series × 7 days: 7 day blocks of 1 000 series every 15 s.
    let dir7 = tempfile::tempdir().unwrap();
    let store7 = BlockStore::open(dir7.path()).unwrap();
    let models = block_data::target(0, 1_000, 42);
    let samples = fill(&store7, &models, 7, 15_000);
    println!(
        "7-day store: {samples} samples, {} blocks",
        store7.blocks().len()
    );
    let one = [
        Matcher::new(MatchOp::Equal, "__name__", "node_cpu_seconds_total").unwrap(),
        Matcher::new(MatchOp::Equal, "cpu", "3").unwrap(),
        Matcher::new(MatchOp::Equal, "mode", "user").unwrap(),
    ];
    let got = store7.select(&one, DAY0, DAY0 + 7 * DAY).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples(DAY0, DAY0 + 7 * DAY).count(), 7 * 5_760);
    held_by_a_day_of_reads(&store7);
    c.bench_function(
        "block select 1 series x 7 days (40 320 samples, decoded)",
        |b| {
            b.iter(|| {
                let series = store7
                    .select(black_box(&one), DAY0, DAY0 + 7 * DAY)
                    .unwrap();
                black_box(series[0].samples(DAY0, DAY0 + 7 * DAY).count())
            })
        },
    );

    // 10 000 series × 1 hour: one 2 h block of 10 targets × 1 000 series every 15 s.
    let dir10k = tempfile::tempdir().unwrap();
    let store10k = BlockStore::open(dir10k.path()).unwrap();
    let models: Vec<_> = (0..10)
        .flat_map(|t| block_data::target(t, 1_000, 42))
        .collect();
    let times = block_data::scrape_times(DAY0, 15_000, 480, 1);
    let series =
        block_data::block_series(&models, &times, DAY0, DAY0, DAY0 + DEFAULT_BLOCK_RANGE_MS);
    store10k
        .write_block(DAY0, DAY0 + DEFAULT_BLOCK_RANGE_MS, series)
        .unwrap();
    let all = [Matcher::new(MatchOp::Equal, "job", "bench").unwrap()];
    let hour = (DAY0 + 1_800_000, DAY0 + 5_400_000 - 1);
    let n = store10k.select(&all, hour.0, hour.1).unwrap().len();
    println!("10k store: {n} series selected by {{job=\"bench\"}}");
    c.bench_function(
        "block select 10k series x 1 hour (2.4 M samples, decoded)",
        |b| {
            b.iter(|| {
                let series = store10k.select(black_box(&all), hour.0, hour.1).unwrap();
                black_box(
                    series
                        .iter()
                        .map(|s| s.samples(hour.0, hour.1).count())
                        .sum::<usize>(),
                )
            })
        },
    );
}

/// Prints the growth of the peak RSS while every series of the 7-day store is selected over
/// one day and held, then read through: what a 24 h range query over them holds in memory.
fn held_by_a_day_of_reads(store: &BlockStore) {
    let every = [Matcher::new(MatchOp::Equal, "job", "bench").unwrap()];
    let day = (DAY0 + 3 * DAY, DAY0 + 4 * DAY - 1);
    reset_peak();
    let before = status_bytes("VmRSS");
    let series = store.select(&every, day.0, day.1).unwrap();
    let held = status_bytes("VmHWM").saturating_sub(before);
    let samples: usize = series.iter().map(|s| s.samples(day.0, day.1).count()).sum();
    let peak = status_bytes("VmHWM").saturating_sub(before);
    println!(
        "select {} series x 1 day ({samples} samples): peak RSS growth {:.1} MiB once selected, \
         {:.1} MiB once read through ({:.1} bytes per sample)",
        series.len(),
        held as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        peak as f64 / samples.max(1) as f64
    );
}

fn main() {
    let parts = std::env::var("BLOCK_BENCH_PARTS").unwrap_or_else(|_| "sizes,expiry,reads".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    if part("sizes") {
        size_table();
    }
    if part("expiry") {
        expiry_table();
    }
    if !part("reads") {
        return;
    }
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    reads(&mut c);
    c.final_summary();
}
