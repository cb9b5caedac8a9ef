//! LogQL: a query parsed and evaluated over a log store holding JSON, logfmt and plain
//! lines — as a log query in both directions, or as a metric query over a range.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sightline_fuzz::{log_store, now};
use sightline_logstore::logql::{Evaluator, Expr, QueryLimits, parse};
use sightline_logstore::store::Direction;

fuzz_target!(|query: &[u8]| {
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(expr) = parse(query) else {
        return;
    };
    let limits = QueryLimits {
        max_entries: 100,
        max_samples: 100_000,
        timeout: Duration::from_secs(1),
        max_memory: 64 << 20,
        ..QueryLimits::default()
    };
    let end_ns = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let start_ns = end_ns - 120_000_000_000;
    let store = log_store();
    match expr {
        Expr::Log(log) => {
            for direction in [Direction::Forward, Direction::Backward] {
                let _ = Evaluator::new(store, limits.clone())
                    .logs(&log, start_ns, end_ns, direction, 50);
            }
        }
        Expr::Metric(metric) => {
            let _ = Evaluator::new(store, limits).metric(&metric, start_ns, end_ns, 15_000_000_000);
        }
    }
});
