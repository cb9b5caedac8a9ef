//! Chunk compression level: ingest the same loggen lines into a fresh store per zstd level
//! (push through the WAL, cut and pack, flush RocksDB) and compare process CPU time and bytes
//! on disk.
//!
//! Input: `loggen --sample N` output (labels TAB line), path in `LOGSTORE_BENCH_SAMPLE`:
//!
//! ```text
//! loggen --sample 4000 --seed 42 > /tmp/loggen_4000.tsv
//! LOGSTORE_BENCH_SAMPLE=/tmp/loggen_4000.tsv cargo bench -p sightline-logstore --bench store
//! ```
//!
//! Time is the whole process's CPU time (`cpu-time`'s `ProcessTime`), RocksDB's background
//! flush threads included; criterion's throughput is per raw line byte. The bytes on disk
//! per raw byte of each level are printed once per level on stderr (`disk/raw`), the WAL
//! excluded (the flush deletes it).

use std::collections::HashMap;
use std::time::Duration;

use cpu_time::ProcessTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_core::labels::Labels;
use sightline_logstore::push::{Entry, PushStream, parse_label_text};
use sightline_logstore::store::{LogStore, StoreOptions};

/// Entries per push, per stream.
const BATCH: usize = 200;

fn load() -> (Vec<Vec<PushStream>>, u64) {
    let Ok(path) = std::env::var("LOGSTORE_BENCH_SAMPLE") else {
        panic!(
            "set LOGSTORE_BENCH_SAMPLE to a `loggen --sample N` file (see the bench's doc); \
             build loggen from shared/bench/logs/loggen"
        );
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {path}: {e}"),
    };
    let mut streams: Vec<(Labels, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in text.lines() {
        let Some((labels, line)) = row.split_once('\t') else {
            continue;
        };
        let at = *index.entry(labels.to_owned()).or_insert_with(|| {
            let Ok(parsed) = parse_label_text(labels) else {
                panic!("bad labels {labels:?} in {path}")
            };
            streams.push((Labels::from_pairs(parsed), Vec::new()));
            streams.len() - 1
        });
        streams[at].1.push(line.to_owned());
    }
    // Pushes of BATCH lines per stream, timestamps one millisecond apart within a day.
    let base = 20_414 * 86_400 * 1_000_000_000i64;
    let rounds = streams
        .iter()
        .map(|(_, l)| l.len())
        .max()
        .unwrap_or(0)
        .div_ceil(BATCH);
    let mut raw = 0u64;
    let mut pushes = Vec::new();
    for round in 0..rounds {
        let mut push = Vec::new();
        for (labels, lines) in &streams {
            let entries: Vec<Entry> = lines
                .iter()
                .enumerate()
                .skip(round * BATCH)
                .take(BATCH)
                .map(|(i, line)| Entry {
                    timestamp_ns: base + i as i64 * 1_000_000,
                    line: line.clone(),
                    metadata: Vec::new(),
                })
                .collect();
            raw += entries.iter().map(|e| e.line.len() as u64).sum::<u64>();
            if !entries.is_empty() {
                push.push(PushStream {
                    labels: labels.clone(),
                    entries,
                    ..PushStream::default()
                });
            }
        }
        pushes.push(push);
    }
    (pushes, raw)
}

fn ingest(pushes: &[Vec<PushStream>], compression_level: i32) -> u64 {
    let Ok(dir) = tempfile::tempdir() else {
        panic!("no temp dir")
    };
    let options = StoreOptions {
        compression_level,
        ..StoreOptions::default()
    };
    let store = match LogStore::open(dir.path(), options) {
        Ok(store) => store,
        Err(e) => panic!("open: {e}"),
    };
    for push in pushes {
        if let Err(e) = store.push(push) {
            panic!("push: {e}");
        }
    }
    if let Err(e) = store.flush() {
        panic!("flush: {e}");
    }
    match store.disk_usage() {
        Ok(bytes) => bytes,
        Err(e) => panic!("disk usage: {e}"),
    }
}

fn compression(c: &mut Criterion) {
    let (pushes, raw) = load();
    let mut group = c.benchmark_group("store_ingest");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(raw));
    for level in [1, 2, 3, 4, 5, 6, 9] {
        let name = format!("zstd{level}");
        let disk = ingest(&pushes, level);
        eprintln!(
            "{name}: raw {raw} bytes, disk {disk} bytes, disk/raw {:.4}",
            disk as f64 / raw as f64
        );
        group.bench_function(&name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let start = ProcessTime::now();
                    std::hint::black_box(ingest(&pushes, level));
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compression);
criterion_main!(benches);
