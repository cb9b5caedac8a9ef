//! Focused tests of PromQL semantics that are easy to get subtly wrong: rate extrapolation,
//! staleness, lookback, vector-matching errors, limits, and the JSON shape of results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sightline_core::labels::Labels;
use sightline_tsdb::promql::{Engine, EngineOptions, Error, STALE_NAN_BITS, Sample, Value, parser};
use support::MemStore;

const MIN: i64 = 60_000;

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

/// A counter scraped every `step` ms: `(t, start + k * inc)`.
fn counter(store: &mut MemStore, labels: &[(&str, &str)], n: i64, step: i64, inc: f64) {
    let samples: Vec<(i64, f64)> = (0..n).map(|k| (k * step, k as f64 * inc)).collect();
    store.add(labels, &samples);
}

fn vector(value: Value) -> Vec<Sample> {
    match value {
        Value::Vector(v) => v,
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn single(store: &MemStore, query: &str, t: i64) -> f64 {
    let v = vector(engine().instant_query(store, query, t).unwrap().value);
    assert_eq!(v.len(), 1, "{query}: {v:?}");
    v[0].v
}

#[test]
fn rate_extrapolates_to_window_edges_but_not_below_zero() {
    let mut store = MemStore::default();
    // 0, 10, 20, … every 15 s: 1 per 1.5 s, i.e. 0.666…/s.
    counter(&mut store, &[("__name__", "c")], 41, 15_000, 10.0);
    // Window (4m, 5m]: samples at 4m15s … 5m, 5 samples spanning 45 s; the start gap
    // (15 s) is under 1.1 × the average interval, so extrapolate fully to 60 s.
    let rate = single(&store, "rate(c[1m])", 5 * MIN);
    assert!((rate - 10.0 / 15.0).abs() < 1e-9, "{rate}");
    let increase = single(&store, "increase(c[1m])", 5 * MIN);
    assert!((increase - 40.0).abs() < 1e-9, "{increase}");

    // A counter is not extrapolated back past the time it would have been zero: samples
    // 1, 11, 21 at 30 s, 45 s, 60 s; the start gap (30 s) exceeds 1.1 × 15 s so the
    // extrapolation would be 7.5 s, but zero is reached 1.5 s before the first sample.
    let mut store = MemStore::default();
    store.add(
        &[("__name__", "c")],
        &[(30_000, 1.0), (45_000, 11.0), (60_000, 21.0)],
    );
    let inc = single(&store, "increase(c[1m])", MIN);
    assert!((inc - 20.0 * (30.0 + 1.5) / 30.0).abs() < 1e-9, "{inc}");
}

#[test]
fn rate_handles_counter_resets() {
    let mut store = MemStore::default();
    store.add(
        &[("__name__", "c")],
        &[
            (0, 5.0),
            (15_000, 10.0),
            (30_000, 2.0),
            (45_000, 6.0),
            (60_000, 8.0),
        ],
    );
    // Raw increase 8 - 5 plus the pre-reset value 10 = 13 over 60 s; the window starts
    // 60 s before the first sample (more than 1.1 × 15 s), so it is extended by half an
    // interval (7.5 s); the zero point (60 s × 5/13) is further away.
    let inc = single(&store, "increase(c[2m])", MIN);
    assert!((inc - 13.0 * 67.5 / 60.0).abs() < 1e-9, "{inc}");
    assert_eq!(single(&store, "resets(c[2m])", MIN), 1.0);
}

#[test]
fn staleness_marker_ends_a_series_and_lookback_expires() {
    let mut store = MemStore::default();
    store.add(
        &[("__name__", "g")],
        &[
            (0, 1.0),
            (MIN, 2.0),
            (2 * MIN, f64::from_bits(STALE_NAN_BITS)),
        ],
    );
    assert_eq!(single(&store, "g", MIN + 30_000), 2.0);
    let after_stale = vector(engine().instant_query(&store, "g", 2 * MIN).unwrap().value);
    assert!(after_stale.is_empty(), "stale marker hides the series");
    // Range selectors drop the marker itself.
    assert_eq!(single(&store, "count_over_time(g[5m])", 2 * MIN), 2.0);

    // Without a marker the last sample is visible for the lookback delta (5 m), exclusive.
    let mut store = MemStore::default();
    store.add(&[("__name__", "h")], &[(0, 7.0)]);
    assert_eq!(single(&store, "h", 5 * MIN - 1), 7.0);
    assert!(vector(engine().instant_query(&store, "h", 5 * MIN).unwrap().value).is_empty());
}

#[test]
fn degenerate_ranges_do_not_panic() {
    let mut store = MemStore::default();
    counter(&mut store, &[("__name__", "c")], 10, 10_000, 1.0);
    for query in [
        "rate(c[1ms])",
        "c[1ms]",
        "max_over_time(c[1m:1ms] offset -1y)",
        "c @ 9223372036854775.807 offset 1y",
        "sum_over_time(c[1m] @ -9223372036854775.808)",
    ] {
        let result = engine().instant_query(&store, query, 50_000);
        assert!(
            result.is_ok() || matches!(result, Err(Error::Parse { .. })),
            "{query}: {result:?}"
        );
    }
}

#[test]
fn offset_and_at_shift_the_evaluation_time() {
    let mut store = MemStore::default();
    let samples: Vec<(i64, f64)> = (0..=10).map(|k| (k * MIN, k as f64)).collect();
    store.add(&[("__name__", "m")], &samples);
    assert_eq!(single(&store, "m offset 3m", 10 * MIN), 7.0);
    assert_eq!(single(&store, "m @ 120", 10 * MIN), 2.0);
    assert_eq!(single(&store, "m @ 300 offset -1m", 0), 6.0);
}

#[test]
fn one_to_one_matching_refuses_duplicates() {
    let mut store = MemStore::default();
    store.add(&[("__name__", "a"), ("job", "x"), ("i", "1")], &[(0, 1.0)]);
    store.add(&[("__name__", "a"), ("job", "x"), ("i", "2")], &[(0, 2.0)]);
    store.add(&[("__name__", "b"), ("job", "x")], &[(0, 10.0)]);
    let err = engine()
        .instant_query(&store, "a + on(job) b", 0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("many-to-one matching must be explicit"),
        "{err}"
    );
    let err = engine()
        .instant_query(&store, "b + on(job) a", 0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("many-to-many matching not allowed"),
        "{err}"
    );
    // group_left makes it explicit and copies nothing extra.
    let v = vector(
        engine()
            .instant_query(&store, "a + on(job) group_left b", 0)
            .unwrap()
            .value,
    );
    let mut values: Vec<f64> = v.iter().map(|s| s.v).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [11.0, 12.0]);
    assert!(v.iter().all(|s| s.metric.get("__name__").is_none()));
}

#[test]
fn comparison_filters_and_bool_returns_zero_or_one() {
    let mut store = MemStore::default();
    store.add(&[("__name__", "m"), ("k", "a")], &[(0, 1.0)]);
    store.add(&[("__name__", "m"), ("k", "b")], &[(0, 5.0)]);
    let kept = vector(engine().instant_query(&store, "m > 2", 0).unwrap().value);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].metric.get("__name__"),
        Some("m"),
        "filtering keeps the name"
    );
    let bools = vector(
        engine()
            .instant_query(&store, "m > bool 2", 0)
            .unwrap()
            .value,
    );
    assert_eq!(bools.len(), 2);
    assert!(bools.iter().all(|s| s.metric.get("__name__").is_none()));
}

#[test]
fn sample_limit_and_timeout_are_enforced() {
    let mut store = MemStore::default();
    for i in 0..20 {
        let id = i.to_string();
        counter(
            &mut store,
            &[("__name__", "c"), ("i", &id)],
            30,
            10_000,
            1.0,
        );
    }
    let small = Engine::new(EngineOptions {
        max_samples: 50,
        ..EngineOptions::default()
    });
    let err = small.instant_query(&store, "c[5m]", 5 * MIN).unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 50 }), "{err}");
    let err = small
        .range_query(&store, "sum(c)", 0, 5 * MIN, 1_000)
        .unwrap_err();
    assert!(matches!(err, Error::TooManySamples { .. }), "{err}");

    let instant = Engine::new(EngineOptions {
        timeout: Some(Duration::ZERO),
        ..EngineOptions::default()
    });
    std::thread::sleep(Duration::from_millis(2));
    let err = instant.instant_query(&store, "c", 0).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");

    // A subquery of billions of empty steps is cut off by the timeout, not run to the end.
    let short = Engine::new(EngineOptions {
        timeout: Some(Duration::from_millis(50)),
        ..EngineOptions::default()
    });
    let err = short
        .instant_query(&store, "count_over_time(absent_metric[100y:1ms])", 0)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[test]
fn errors_are_typed() {
    let store = MemStore::default();
    assert!(matches!(
        engine().instant_query(&store, "sum(", 0),
        Err(Error::Parse { .. })
    ));
    assert!(matches!(
        engine().range_query(&store, "1", 10, 0, 1),
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        engine().range_query(&store, "1", 0, 10, 0),
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        engine().instant_query(&store, "start_timestamp(up)", 0),
        Err(Error::Unsupported { .. })
    ));
    assert!(parser::parse("rate(x[5m])").is_ok());
}

#[test]
fn range_query_returns_sorted_matrix_in_prometheus_json() {
    let mut store = MemStore::default();
    store.add(&[("__name__", "m"), ("k", "b")], &[(0, 1.0), (MIN, 2.0)]);
    store.add(&[("__name__", "m"), ("k", "a")], &[(0, 3.0)]);
    let result = engine().range_query(&store, "m * 2", 0, MIN, MIN).unwrap();
    let Value::Matrix(series) = &result.value else {
        panic!("{:?}", result.value);
    };
    assert_eq!(series[0].metric, Labels::from_pairs([("k", "a")]));
    let json = serde_json::to_string(&result.value).unwrap();
    assert_eq!(
        json,
        r#"{"resultType":"matrix","result":[{"metric":{"k":"a"},"values":[[0,"6"],[60,"6"]]},{"metric":{"k":"b"},"values":[[0,"2"],[60,"4"]]}]}"#
    );
}

#[test]
fn histogram_quantile_interpolates_classic_buckets() {
    let mut store = MemStore::default();
    for (le, v) in [("0.1", 10.0), ("0.5", 50.0), ("1", 90.0), ("+Inf", 100.0)] {
        store.add(&[("__name__", "h_bucket"), ("le", le)], &[(0, v)]);
    }
    // Rank 50 falls exactly on the 0.5 bucket's count.
    assert!((single(&store, "histogram_quantile(0.5, h_bucket)", 0) - 0.5).abs() < 1e-9);
    // Rank 95 is in the +Inf bucket: the highest finite bound is returned.
    assert_eq!(single(&store, "histogram_quantile(0.95, h_bucket)", 0), 1.0);
}

/// The warnings and infos of an instant query at `t`.
fn annotations(store: &MemStore, query: &str, t: i64) -> (Vec<String>, Vec<String>) {
    let result = engine().instant_query(store, query, t).unwrap();
    (result.warnings, result.infos)
}

#[test]
fn annotations_follow_prometheus_wording_and_positions() {
    let mut store = MemStore::default();
    counter(
        &mut store,
        &[("__name__", "requests_total")],
        21,
        15_000,
        1.0,
    );
    counter(
        &mut store,
        &[("__name__", "temperature"), ("room", "a")],
        21,
        15_000,
        1.0,
    );
    counter(
        &mut store,
        &[("__name__", "temperature"), ("room", "b")],
        21,
        15_000,
        1.0,
    );
    for (le, inc) in [("0.1", 3.0), ("1", 2.0), ("+Inf", 4.0), ("big", 1.0)] {
        counter(
            &mut store,
            &[("__name__", "latency_bucket"), ("le", le)],
            21,
            15_000,
            inc,
        );
    }

    // A counter's name: nothing to say.
    assert_eq!(
        annotations(&store, "rate(requests_total[1m])", 5 * MIN),
        (vec![], vec![])
    );
    // Two series of one non-counter name give one info, positioned at the range argument.
    assert_eq!(
        annotations(&store, "sum(increase(temperature[1m]))", 5 * MIN),
        (
            vec![],
            vec![
                "PromQL info: metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: \"temperature\" (1:14)"
                    .to_owned()
            ]
        )
    );
    // The `le="big"` bucket is malformed, and the counts (3, 2, 4 per step) decrease.
    let (warnings, infos) = annotations(
        &store,
        "histogram_quantile(0.9, rate(latency_bucket[1m]))",
        5 * MIN,
    );
    assert_eq!(
        warnings,
        [
            "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"big\" \
          for metric name \"\" (1:25)"
        ]
    );
    assert_eq!(
        infos,
        [
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see \
          https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
          for metric name \"\" (1:25)"
        ]
    );
    // Quantiles and ratios out of range, even when nothing is selected.
    assert_eq!(
        annotations(&store, "histogram_quantile(NaN, absent_bucket)", 0).0,
        ["PromQL warning: quantile value should be between 0 and 1, got NaN (1:20)"]
    );
    assert_eq!(
        annotations(&store, "quantile(-0.5, temperature)", MIN).0,
        ["PromQL warning: quantile value should be between 0 and 1, got -0.5 (1:10)"]
    );
    assert_eq!(
        annotations(&store, "quantile_over_time(2, temperature[1m])", MIN).0,
        ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:20)"]
    );
    assert_eq!(
        annotations(&store, "limit_ratio(1.5, temperature)", MIN).0,
        ["PromQL warning: ratio value should be between -1 and 1, got 1.5, capping to 1 (1:13)"]
    );

    // `sort` is pointless in a range query only.
    assert_eq!(
        annotations(&store, "sort(temperature)", MIN),
        (vec![], vec![])
    );
    let range = engine()
        .range_query(&store, "sum(sort(temperature))", 0, MIN, 15_000)
        .unwrap();
    assert_eq!(
        range.warnings,
        [
            "PromQL warning: sort is ineffective for range queries since results are always \
          ordered by labels (1:5)"
        ]
    );
}

#[test]
fn queries_beyond_max_concurrency_wait_for_a_slot_until_their_timeout() {
    let store = std::sync::Arc::new(MemStore::default());
    let one_at_a_time = Engine::new(EngineOptions {
        max_concurrency: 1,
        timeout: Some(Duration::from_millis(500)),
        ..EngineOptions::default()
    });
    let holder = {
        let (engine, store) = (one_at_a_time.clone(), std::sync::Arc::clone(&store));
        std::thread::spawn(move || {
            engine
                .instant_query(
                    store.as_ref(),
                    "count_over_time(absent_metric[100y:1ms])",
                    0,
                )
                .unwrap_err()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let err = one_at_a_time
        .with_shorter_timeout(Duration::from_millis(100))
        .instant_query(store.as_ref(), "vector(1)", 0)
        .unwrap_err();
    assert_eq!(err.to_string(), "query timed out in query queue");
    assert_eq!(
        holder.join().unwrap().to_string(),
        "query timed out in expression evaluation"
    );
    // The slot was given back.
    assert!(
        one_at_a_time
            .instant_query(store.as_ref(), "vector(1)", 0)
            .is_ok()
    );
}

/// A range query equals the instant query at each of its steps: range queries evaluate
/// selectors, range functions and the folding aggregations over them in batches of steps,
/// series by series, and must agree with the step-by-step evaluation across batch
/// boundaries (300 steps), gaps, staleness markers, series that start and end inside the
/// range, `offset` and `@` — in values, in name removal, and in the order of groups (which
/// `topk` over an aggregation shows through its ties).
#[test]
fn range_queries_match_instant_queries_at_every_step() {
    let mut store = MemStore::default();
    counter(
        &mut store,
        &[("__name__", "c"), ("i", "a")],
        400,
        15_000,
        3.0,
    );
    let gappy: Vec<(i64, f64)> = (0..400)
        .filter(|k| k % 37 > 9)
        .map(|k| {
            (
                k * 15_000,
                if k % 53 == 0 {
                    f64::from_bits(STALE_NAN_BITS)
                } else {
                    (k % 11) as f64
                },
            )
        })
        .collect();
    store.add(&[("__name__", "c"), ("i", "b")], &gappy);
    let late: Vec<(i64, f64)> = (150..250).map(|k| (k * 15_000, k as f64)).collect();
    store.add(&[("__name__", "c"), ("i", "c")], &late);
    let queries = [
        "c",
        "c offset 2m",
        "rate(c[1m])",
        "sum by (i) (increase(c[5m]))",
        "max_over_time(c[3m] offset 1m)",
        "quantile_over_time(0.5, c[2m])",
        "predict_linear(c[4m], 60)",
        "last_over_time(c[2m] @ 1800)",
        "count(c @ 900)",
        "topk(2, c)",
        "sum(c)",
        "avg by (i) (c)",
        "min(c offset 1m)",
        "max without (i) (rate(c[1m]))",
        "count by (__name__) (c)",
        "group(c)",
        "stddev(c)",
        "stdvar by (i) (delta(c[2m]))",
        "sum by (__name__) (rate(c[1m]))",
        "topk(1, count by (i) (c{i!=\"a\"}))",
    ];
    for query in queries {
        assert_range_matches_instants(&store, query, 10 * MIN, 85 * MIN, 15_000);
    }
}

/// Checks that the range query of `query` from `start` to `end` gives at each step what its
/// instant query gives there, bit for bit, and that it has points at half the steps or more
/// (so that the comparison is not vacuous).
fn assert_range_matches_instants(store: &MemStore, query: &str, start: i64, end: i64, step: i64) {
    let Value::Matrix(series) = engine()
        .range_query(store, query, start, end, step)
        .unwrap()
        .value
    else {
        panic!("{query}: not a matrix");
    };
    let mut from_range: Vec<(i64, Labels, u64)> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|&(t, v)| (t, s.metric.clone(), v.to_bits()))
        })
        .collect();
    let mut from_instants = Vec::new();
    let mut t = start;
    while t <= end {
        for s in vector(engine().instant_query(store, query, t).unwrap().value) {
            from_instants.push((t, s.metric, s.v.to_bits()));
        }
        t += step;
    }
    from_range.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    from_instants.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let steps = ((end - start) / step + 1) as usize;
    assert!(
        from_range.len() * 2 >= steps,
        "{query}: {} points for {steps} steps",
        from_range.len()
    );
    assert_eq!(from_range, from_instants, "{query}");
}

/// An aggregation into about as many groups as it has series holds no more group states
/// than its budget allows: with 3,000 series its batches are a few steps long (the first
/// one sized by the series, the next by the groups), and it still agrees with the instant
/// queries at every step.
#[test]
fn aggregations_into_many_groups_take_short_batches() {
    let mut store = MemStore::default();
    for i in 0..3_000 {
        let id = i.to_string();
        let group = (i % 1_500).to_string();
        counter(
            &mut store,
            &[("__name__", "c"), ("i", &id), ("g", &group)],
            40,
            15_000,
            1.0 + (i % 7) as f64,
        );
    }
    for query in ["sum by (i) (c)", "max by (g) (rate(c[1m]))", "count(c)"] {
        assert_range_matches_instants(&store, query, 0, 9 * MIN, 15_000);
    }
}
