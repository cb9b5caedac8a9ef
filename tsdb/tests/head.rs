//! The head end to end on real files: appends, index queries, append semantics, WAL replay,
//! a damaged WAL tail, truncation with checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_tsdb::Error;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::storage::Querier;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn opts() -> HeadOptions {
    HeadOptions {
        wal_sync: Duration::ZERO,
        ..HeadOptions::default()
    }
}

fn open(dir: &Path) -> Arc<Head> {
    Arc::new(Head::open(dir, opts()).unwrap())
}

fn series(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

/// `job` values of the series selected, in result order.
fn jobs(head: &Head, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
    head.select(matchers, mint, maxt)
        .unwrap()
        .iter()
        .map(|s| s.labels.get("job").unwrap_or("-").to_owned())
        .collect()
}

fn samples(head: &Head, matchers: &[Matcher]) -> Vec<(i64, u64)> {
    let selected = head.select(matchers, i64::MIN, i64::MAX).unwrap();
    assert_eq!(selected.len(), 1, "{matchers:?}");
    selected[0]
        .samples(i64::MIN, i64::MAX)
        .map(|(t, v)| (t, v.to_bits()))
        .collect()
}

/// Five series of `up` and one of `other`; job values exercise literal, prefix and
/// alternation lookups; `env` is absent from some.
fn populate(head: &Arc<Head>) {
    let mut app = head.appender();
    let defs: &[&[(&str, &str)]] = &[
        &[("__name__", "up"), ("job", "node"), ("env", "prod")],
        &[
            ("__name__", "up"),
            ("job", "node-exporter"),
            ("env", "staging"),
        ],
        &[("__name__", "up"), ("job", "kube-state")],
        &[("__name__", "up"), ("job", "payments"), ("env", "prod")],
        &[("__name__", "up"), ("job", "checkout")],
        &[("__name__", "other"), ("job", "zzz"), ("env", "dev")],
    ];
    for (i, def) in defs.iter().enumerate() {
        for t in 0..300 {
            // Series i has samples from 1000*i on.
            app.append(&series(def), 1000 * i as i64 + t * 10, t as f64)
                .unwrap();
        }
    }
    let stats = app.commit().unwrap();
    assert_eq!(stats.appended, 6 * 300);
    assert_eq!(stats.new_series, 6);
}

#[test]
fn round_trip_with_every_matcher_kind() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path());
    populate(&head);
    let all = (i64::MIN, i64::MAX);
    let up = m(MatchOp::Equal, "__name__", "up");

    assert_eq!(jobs(&head, &[], all.0, all.1).len(), 6);
    assert_eq!(
        jobs(
            &head,
            &[up.clone(), m(MatchOp::Equal, "job", "node")],
            all.0,
            all.1
        ),
        ["node"]
    );
    // Regex answered from the index: prefix and alternation.
    let re = m(MatchOp::Regex, "job", "node.*|pay.*");
    assert!(re.value_patterns().is_some());
    let mut got = jobs(&head, &[re], all.0, all.1);
    got.sort();
    assert_eq!(got, ["node", "node-exporter", "payments"]);
    let mut got = jobs(
        &head,
        &[m(MatchOp::Regex, "job", "checkout|kube-state")],
        all.0,
        all.1,
    );
    got.sort();
    assert_eq!(got, ["checkout", "kube-state"]);
    // Regex that needs a scan of the values.
    let mut got = jobs(&head, &[m(MatchOp::Regex, "job", ".*-.*")], all.0, all.1);
    got.sort();
    assert_eq!(got, ["kube-state", "node-exporter"]);
    // != and !~ also select series without the label.
    let mut got = jobs(
        &head,
        &[up.clone(), m(MatchOp::NotEqual, "env", "prod")],
        all.0,
        all.1,
    );
    got.sort();
    assert_eq!(got, ["checkout", "kube-state", "node-exporter"]);
    let mut got = jobs(
        &head,
        &[up.clone(), m(MatchOp::NotRegex, "env", "prod|staging")],
        all.0,
        all.1,
    );
    got.sort();
    assert_eq!(got, ["checkout", "kube-state"]);
    // Absent-label semantics: env="" selects series without env; env!="" those with it.
    let mut got = jobs(&head, &[m(MatchOp::Equal, "env", "")], all.0, all.1);
    got.sort();
    assert_eq!(got, ["checkout", "kube-state"]);
    assert_eq!(
        jobs(
            &head,
            &[up.clone(), m(MatchOp::NotEqual, "env", "")],
            all.0,
            all.1
        )
        .len(),
        3
    );
    assert_eq!(
        jobs(&head, &[m(MatchOp::Regex, "env", "prod|")], all.0, all.1).len(),
        4
    );
    assert_eq!(
        jobs(&head, &[m(MatchOp::Regex, "nope", ".*")], all.0, all.1).len(),
        6
    );
    assert!(jobs(&head, &[m(MatchOp::Regex, "nope", ".+")], all.0, all.1).is_empty());
    assert!(jobs(&head, &[m(MatchOp::Equal, "job", "absent")], all.0, all.1).is_empty());

    // Time ranges: series i covers [1000 i, 1000 i + 2990].
    assert_eq!(jobs(&head, &[], 0, 999), ["node"]);
    assert_eq!(jobs(&head, &[], 7000, 7999), ["zzz"]);
    assert_eq!(jobs(&head, &[], 3000, 4000).len(), 4);
    assert!(jobs(&head, &[], 10_000, 20_000).is_empty());
    let selected = head
        .select(&[m(MatchOp::Equal, "job", "node")], 100, 200)
        .unwrap();
    let in_range: Vec<i64> = selected[0].samples(100, 200).map(|(t, _)| t).collect();
    assert_eq!(in_range, (100..=200).step_by(10).collect::<Vec<_>>());
    // Chunks were cut at 120 samples; the open one is returned too.
    assert_eq!(selected.len(), 1);
    assert_eq!(
        samples(&head, &[m(MatchOp::Equal, "job", "node")]).len(),
        300
    );

    // Label names and values, with matchers and time ranges.
    assert_eq!(
        head.label_names(&[], all.0, all.1).unwrap(),
        ["__name__", "env", "job"]
    );
    assert_eq!(
        head.label_names(&[m(MatchOp::Equal, "job", "checkout")], all.0, all.1)
            .unwrap(),
        ["__name__", "job"]
    );
    assert!(head.label_names(&[], 10_000, 20_000).unwrap().is_empty());
    assert_eq!(head.label_values("job", &[], 7000, 7999).unwrap(), ["zzz"]);
    assert_eq!(
        head.label_values("__name__", &[], all.0, all.1).unwrap(),
        ["other", "up"]
    );
    assert_eq!(
        head.label_values("env", std::slice::from_ref(&up), all.0, all.1)
            .unwrap(),
        ["prod", "staging"]
    );
    assert_eq!(head.label_values("env", &[], 0, 100).unwrap(), ["prod"]);
    assert!(
        head.label_values("missing", &[], all.0, all.1)
            .unwrap()
            .is_empty()
    );

    let stats = head.stats(10);
    assert_eq!(stats.num_series, 6);
    assert_eq!(stats.min_time, Some(0));
    assert_eq!(stats.max_time, Some(5000 + 2990));
    assert_eq!(stats.series_count_by_metric_name[0].name, "up");
    assert_eq!(stats.series_count_by_metric_name[0].value, 5);
    assert_eq!(stats.chunk_count, 6 * 3);
    assert_eq!(
        stats.series_count_by_label_value_pair[0].name,
        "__name__=up"
    );
    assert_eq!(stats.label_value_count_by_label_name[0].name, "job");
}

#[test]
fn append_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path());
    let mut app = head.appender();
    let a = series(&[("__name__", "a")]);
    let r = app.append(&a, 1000, 1.0).unwrap();
    app.append_ref(r, 2000, f64::from_bits(STALE_NAN)).unwrap();
    app.append_ref(r, 2000, f64::from_bits(STALE_NAN)).unwrap(); // exact duplicate
    app.append_ref(r, 2000, 5.0).unwrap(); // different value, same t
    app.append_ref(r, 1500, 5.0).unwrap(); // out of order
    app.append_ref(r, 3000, f64::NAN).unwrap();
    app.append_ref(r, 4000, 4.0).unwrap();
    let stats = app.commit().unwrap();
    assert_eq!(stats.appended, 4, "{stats:?}");
    assert_eq!(stats.exact_duplicates, 1);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.out_of_order, 1);
    assert_eq!(stats.rejected(), 2);
    assert_eq!(head.metrics().duplicate.get(), 1);
    assert_eq!(head.metrics().out_of_order.get(), 1);
    assert_eq!(head.metrics().samples_appended.get(), 4);
    let got = samples(&head, &[m(MatchOp::Equal, "__name__", "a")]);
    assert_eq!(
        got,
        [
            (1000, 1f64.to_bits()),
            (2000, STALE_NAN),
            (3000, f64::NAN.to_bits()),
            (4000, 4f64.to_bits())
        ]
    );
    // A later batch: exact duplicate of the last sample silent, older sample rejected.
    app.append_ref(r, 4000, 4.0).unwrap();
    app.append_ref(r, 3500, 1.0).unwrap();
    let stats = app.commit().unwrap();
    assert_eq!(
        (stats.appended, stats.exact_duplicates, stats.out_of_order),
        (0, 1, 1)
    );
    assert!(matches!(
        head.appender().append(&Labels::new(), 1, 1.0),
        Err(Error::EmptyLabels)
    ));

    // The staleness marker survives a restart bit for bit.
    drop(app);
    drop(head);
    let head = open(dir.path());
    assert_eq!(samples(&head, &[m(MatchOp::Equal, "__name__", "a")]), got);
}

#[test]
fn restart_replays_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path());
    populate(&head);
    let before = head.select(&[], i64::MIN, i64::MAX).unwrap();
    drop(head);
    let head = open(dir.path());
    let report = head.replay_report();
    assert_eq!((report.series, report.samples), (6, 1800));
    assert!(report.wal.corruptions.is_empty());
    let after = head.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.labels, a.labels);
        let bs: Vec<_> = b.samples(i64::MIN, i64::MAX).collect();
        let as_: Vec<_> = a.samples(i64::MIN, i64::MAX).collect();
        assert_eq!(bs, as_);
    }
    // Refs handed out after a restart do not collide with replayed ones, and appends go on.
    let mut app = head.appender();
    let r = app
        .append(&series(&[("__name__", "new")]), 10, 1.0)
        .unwrap();
    app.append(
        &series(&[("__name__", "up"), ("job", "node"), ("env", "prod")]),
        100_000,
        7.0,
    )
    .unwrap();
    assert_eq!(app.commit().unwrap().appended, 2);
    assert!(r.get() >= 6);
    drop(app);
    drop(head);
    let head = open(dir.path());
    assert_eq!(head.num_series(), 7);
    assert_eq!(
        samples(&head, &[m(MatchOp::Equal, "job", "node")]).len(),
        301
    );
}

#[test]
fn corrupted_wal_tail_is_truncated_with_a_warning_and_counter() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path());
    populate(&head);
    let mut app = head.appender();
    app.append(&series(&[("__name__", "late")]), 1, 1.0)
        .unwrap();
    app.commit().unwrap();
    drop(app);
    drop(head);
    // Damage the last bytes of the newest segment: the last record's checksum fails.
    let wal = dir.path().join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let len = bytes.len();
    bytes[len - 3] ^= 0xff;
    bytes.extend_from_slice(&[1, 2, 3]); // and a torn frame header after it
    std::fs::write(last, &bytes).unwrap();

    let head = open(dir.path());
    let report = head.replay_report();
    assert_eq!(report.wal.corruptions.len(), 1);
    assert!(report.wal.corruptions[0].truncated);
    assert_eq!(head.metrics().wal_corruptions.get(), 1);
    // Everything before the damaged record is intact; the damaged sample is gone.
    assert_eq!(report.samples, 1800);
    assert!(
        head.select(&[m(MatchOp::Equal, "__name__", "late")], i64::MIN, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(head.select(&[], i64::MIN, i64::MAX).unwrap().len(), 6);
    // The head keeps working and the next restart is clean.
    let mut app = head.appender();
    app.append(&series(&[("__name__", "late")]), 2, 2.0)
        .unwrap();
    app.commit().unwrap();
    drop(app);
    drop(head);
    let head = open(dir.path());
    assert!(head.replay_report().wal.corruptions.is_empty());
    assert_eq!(
        samples(&head, &[m(MatchOp::Equal, "__name__", "late")]),
        [(2, 2f64.to_bits())]
    );
}

fn wal_bytes(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    p.metadata().unwrap().len()
                }
            })
            .sum()
    }
    walk(&dir.join("wal"))
}

#[test]
fn truncate_before_checkpoints_and_shrinks_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let small_segments = HeadOptions {
        segment_size: 16 * 1024,
        ..opts()
    };
    let head = Arc::new(Head::open(dir.path(), small_segments).unwrap());
    let mut app = head.appender();
    // 200 series for [0, 100 s); from 50 s on, only the even ones go on.
    let labels: Vec<Labels> = (0..200)
        .map(|i| series(&[("__name__", "m"), ("i", &i.to_string())]))
        .collect();
    let mut refs = Vec::new();
    for t in (0..100_000).step_by(1000) {
        for (i, l) in labels.iter().enumerate() {
            if t < 50_000 || i % 2 == 0 {
                let r = app.append(l, t, (t + i as i64) as f64).unwrap();
                if t == 0 {
                    refs.push(r);
                }
            }
        }
        app.commit().unwrap();
    }
    let before = wal_bytes(dir.path());

    // What a block writer would take for [0, 60 s).
    let cut = head.series_in_range(0, 60_000).unwrap();
    assert_eq!(cut.len(), 200);
    let n: usize = cut[0].1.iter().map(|c| c.chunk.num_samples()).sum();
    assert_eq!(n, 60);
    assert!(
        cut.iter()
            .all(|(_, chunks)| chunks.iter().all(|c| c.max_time < 60_000))
    );

    let dropped = head.truncate_before(60_000).unwrap();
    assert_eq!(dropped, 100, "odd series have no samples left");
    assert_eq!(head.num_series(), 100);
    let after = wal_bytes(dir.path());
    assert!(after < before / 2, "WAL {before} -> {after} bytes");
    assert!(dir.path().join("wal").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("checkpoint.")
    }));
    // Old samples are refused now; new ones are accepted.
    let mut app = head.appender();
    let r = app.append(&labels[0], 59_000, 1.0).unwrap();
    app.append_ref(r, 100_000, 1.0).unwrap();
    let stats = app.commit().unwrap();
    assert_eq!((stats.out_of_order, stats.appended), (1, 1));
    let expect = |head: &Head| {
        let all = head.select(&[], i64::MIN, i64::MAX).unwrap();
        assert_eq!(all.len(), 100);
        let s0: Vec<i64> = head
            .select(&[m(MatchOp::Equal, "i", "0")], i64::MIN, i64::MAX)
            .unwrap()[0]
            .samples(i64::MIN, i64::MAX)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(s0, (60_000..=100_000).step_by(1000).collect::<Vec<_>>());
    };
    expect(&head);
    drop(app);
    drop(head);
    let head = Head::open(dir.path(), small_segments).unwrap();
    assert_eq!(head.replay_report().checkpoint_mint, Some(60_000));
    expect(&head);
    assert_eq!(head.min_valid_time(), 60_000);
    // Dropped refs are answered as unknown.
    let head = Arc::new(head);
    let mut app = head.appender();
    let err = app.append_ref(refs[1], 200_000, 1.0);
    assert!(
        matches!(err, Err(Error::UnknownSeriesRef { .. })),
        "{err:?}"
    );
    app.append_ref(refs[2], 200_000, 1.0).unwrap();
}

#[test]
fn concurrent_appenders_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(
        Head::open(
            dir.path(),
            HeadOptions {
                wal_sync: Duration::from_millis(50),
                ..HeadOptions::default()
            },
        )
        .unwrap(),
    );
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let head = Arc::clone(&head);
            std::thread::spawn(move || {
                let mut app = head.appender();
                let labels: Vec<Labels> = (0..50)
                    .map(|i| {
                        series(&[
                            ("__name__", "c"),
                            ("w", &w.to_string()),
                            ("i", &i.to_string()),
                        ])
                    })
                    .collect();
                // Every writer also appends to one shared series: only one of them can win
                // each timestamp, the others are exact duplicates or rejected.
                let shared = series(&[("__name__", "shared")]);
                for t in 0..200 {
                    for l in &labels {
                        app.append(l, t, t as f64).unwrap();
                    }
                    app.append(&shared, t, t as f64).unwrap();
                    app.commit().unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let head = Arc::clone(&head);
        std::thread::spawn(move || {
            for _ in 0..50 {
                for s in head
                    .select(&[m(MatchOp::Equal, "__name__", "c")], 0, 1000)
                    .unwrap()
                {
                    let ts: Vec<i64> = s.samples(0, 1000).map(|(t, _)| t).collect();
                    assert!(
                        ts.windows(2).all(|w| w[1] == w[0] + 1),
                        "gap in {}",
                        s.labels
                    );
                }
                head.label_values("w", &[], 0, 1000).unwrap();
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(head.num_series(), 201);
    assert_eq!(
        samples(&head, &[m(MatchOp::Equal, "__name__", "shared")]).len(),
        200
    );
    assert_eq!(head.metrics().samples_appended.get(), 4 * 50 * 200 + 200);
    drop(head);
    let head = open(dir.path());
    assert_eq!(head.replay_report().samples, 4 * 50 * 200 + 200);
}

/// The index answers every matcher kind as testing each series' labels would.
#[test]
fn index_agrees_with_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path());
    let mut app = head.appender();
    let mut state = 0x1234_5678_u64;
    let mut rand = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let values = [
        "a",
        "ab",
        "abc",
        "b",
        "ba",
        "x-1",
        "x-2",
        "",
        "prod",
        "production",
    ];
    let mut all = Vec::new();
    for i in 0..300 {
        let mut pairs = vec![("__name__".to_owned(), format!("m{}", i % 3))];
        for name in ["env", "job", "zone"] {
            let v = values[rand(values.len() as u64) as usize];
            pairs.push((name.to_owned(), v.to_owned()));
        }
        let labels = Labels::from_pairs(pairs);
        app.append(&labels, i, 1.0).unwrap();
        all.push(labels);
    }
    app.commit().unwrap();
    all.sort();
    all.dedup();
    let patterns = [
        "",
        "a",
        "ab",
        "a.*",
        "ab.*",
        "a|b",
        "x-.*|prod",
        "prod.*",
        ".*",
        ".+",
        "b.|ab",
        "(a|b)c?",
        "x-[12]",
        "nope",
    ];
    let ops = [
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ];
    for name in ["env", "job", "missing"] {
        for op in ops {
            for pattern in patterns {
                for second in [None, Some(m(MatchOp::NotEqual, "zone", "a"))] {
                    let mut matchers = vec![m(op, name, pattern)];
                    matchers.extend(second.clone());
                    let expected: Vec<&Labels> = all
                        .iter()
                        .filter(|l| {
                            matchers
                                .iter()
                                .all(|m| m.matches(l.get(m.name()).unwrap_or("")))
                        })
                        .collect();
                    let got = head.select(&matchers, i64::MIN, i64::MAX).unwrap();
                    let got: Vec<&Labels> = got.iter().map(|s| &s.labels).collect();
                    assert_eq!(got, expected, "{matchers:?}");
                }
            }
        }
    }
}
