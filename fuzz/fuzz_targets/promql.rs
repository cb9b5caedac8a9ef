//! PromQL: a query parsed and evaluated, instant and over a range, against a few counters,
//! gauges and histogram buckets, under small sample and time limits.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sightline_fuzz::mem_store::MemStore;
use sightline_tsdb::promql::{Engine, EngineOptions};

fn series() -> &'static MemStore {
    static STORE: OnceLock<MemStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut store = MemStore::default();
        let minute = 60_000;
        for (job, scale) in [("node", 1.0), ("api", 7.5)] {
            let counter: Vec<_> = (0..30).map(|i| (i * minute, i as f64 * scale)).collect();
            store.add(&[("__name__", "requests_total"), ("job", job)], &counter);
            let gauge: Vec<_> = (0..30)
                .map(|i| (i * minute, (i as f64 * scale).sin()))
                .collect();
            store.add(&[("__name__", "temperature"), ("job", job)], &gauge);
            for (le, share) in [("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)] {
                let bucket: Vec<_> = (0..30)
                    .map(|i| (i * minute, (i as f64 * scale * share).floor()))
                    .collect();
                store.add(
                    &[("__name__", "latency_bucket"), ("job", job), ("le", le)],
                    &bucket,
                );
            }
        }
        store.add(
            &[("__name__", "up"), ("job", "node")],
            &[
                (0, 1.0),
                (
                    minute,
                    f64::from_bits(sightline_tsdb::promql::STALE_NAN_BITS),
                ),
            ],
        );
        store
    })
}

fuzz_target!(|query: &[u8]| {
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let engine = Engine::new(EngineOptions {
        max_samples: 100_000,
        timeout: Some(Duration::from_secs(1)),
        ..EngineOptions::default()
    });
    let store = series();
    let _ = engine.instant_query(store, query, 15 * 60_000);
    let _ = engine.range_query(store, query, 0, 30 * 60_000, 60_000);
});
