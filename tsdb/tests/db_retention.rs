//! Retention overrides end to end: `storage.metrics` as a user writes it → the Db's
//! retention policy → samples appended to the head, cut into blocks, compacted into day
//! blocks — and exactly the series the overrides name are kept or expired.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sightline_core::config::Config;
use sightline_core::labels::Labels;
use sightline_tsdb::block::RetentionPolicy;
use sightline_tsdb::db::{Db, DbOptions};
use sightline_tsdb::storage::Querier;

/// 2025-11-20T00:00:00Z.
const DAY0: i64 = 1_763_596_800_000;
const DAY: i64 = 86_400_000;

const CONFIG: &str = r#"
storage:
  metrics:
    retention: 3d
    block_range: 1h
    retention_overrides:
      - matchers: '{job="node"}'
        retention: 30d
      - matchers: '{__name__=~"apiserver_.*"}'
        retention: 1d
"#;

fn options(yaml: &str) -> DbOptions {
    let config = Config::parse(Path::new("sightline.yml"), yaml).unwrap();
    DbOptions {
        block_range_ms: config.storage.metrics.block_range.as_millis() as i64,
        retention: RetentionPolicy::from(&config.storage.metrics),
        ..DbOptions::default()
    }
}

fn series() -> Vec<Labels> {
    [
        ("up", "node"),
        ("node_load1", "node"),
        ("up", "kube"),
        ("apiserver_request_total", "kube"),
        ("apiserver_request_total", "node"),
    ]
    .iter()
    .map(|(name, job)| Labels::from_pairs([("__name__", *name), ("job", *job)]))
    .collect()
}

/// `name/job` of every series with data on `day`.
fn series_on(db: &Db, day: i64) -> Vec<String> {
    let mut found: Vec<String> = db
        .querier()
        .select(&[], DAY0 + day * DAY, DAY0 + (day + 1) * DAY - 1)
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.labels.metric_name().unwrap(),
                s.labels.get("job").unwrap()
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn overrides_from_the_config_keep_and_expire_exactly_their_series_at_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(CONFIG)).unwrap();
    // Five days, one sample per series every 10 minutes.
    let all = series();
    let mut appender = db.head().appender();
    for step in 0..5 * 144 {
        let t = DAY0 + step * 600_000;
        for labels in &all {
            appender.append(labels, t, step as f64).unwrap();
        }
        appender.commit().unwrap();
    }
    let now = DAY0 + 5 * DAY;
    let cut = db.cut_blocks(now).unwrap();
    assert_eq!(
        cut.len(),
        5 * 24 - 1,
        "1 h blocks up to half an hour before now"
    );
    db.compact_and_expire(now).unwrap();
    assert!(
        db.blocks().blocks().iter().all(|b| b.compacted),
        "day blocks only"
    );

    let everything = [
        "apiserver_request_total/kube",
        "apiserver_request_total/node",
        "node_load1/node",
        "up/kube",
        "up/node",
    ];
    // Days 0–1 ended 3 days or more before now: only job="node" (30 d) stays, and of it
    // apiserver_* too, because the first matching override wins.
    for day in 0..2 {
        assert_eq!(
            series_on(&db, day),
            ["apiserver_request_total/node", "node_load1/node", "up/node"],
            "day {day}"
        );
    }
    // Days 2–3 are within 3 d but ended a day or more ago: apiserver_* of other jobs (1 d)
    // is gone.
    for day in 2..4 {
        assert_eq!(
            series_on(&db, day),
            [
                "apiserver_request_total/node",
                "node_load1/node",
                "up/kube",
                "up/node"
            ],
            "day {day}"
        );
    }
    // Day 4 is younger than every age: everything.
    assert_eq!(series_on(&db, 4), everything);
    // Every sample of a kept series is still there.
    let node = db
        .querier()
        .select(
            &[sightline_core::matcher::Matcher::new(
                sightline_core::matcher::MatchOp::Equal,
                "__name__",
                "node_load1",
            )
            .unwrap()],
            DAY0,
            now,
        )
        .unwrap();
    assert_eq!(node[0].samples(DAY0, now).count(), 5 * 144);

    // A reload without overrides: the next compaction applies 3 d to job="node" too.
    db.set_retention(options("storage: {metrics: {retention: 3d, block_range: 1h}}").retention);
    db.compact_and_expire(now).unwrap();
    assert!(series_on(&db, 0).is_empty() && series_on(&db, 1).is_empty());
    assert_eq!(series_on(&db, 2).len(), 4);
}
