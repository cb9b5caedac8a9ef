//! The log store on a real RocksDB in a temp dir: durability across reopen, chunk cutting,
//! the read API with chunk skipping, out-of-order entries, and retention by whole days.

#![allow(clippy::unwrap_used)] // Test helpers: a failure is a failed test.

use std::time::Duration;

use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_logstore::logql::{self, Evaluator, Expr, MetricResult, QueryLimits};
use sightline_logstore::push::{Entry, PushStream};
use sightline_logstore::store::{Direction, LogStore, StoreOptions};

const SECOND: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SECOND;
/// 2026-11-22T00:00:00Z.
const MIDNIGHT: i64 = 20_414 * DAY;

fn stream(labels: &[(&str, &str)], entries: &[(i64, &str)]) -> PushStream {
    PushStream {
        labels: Labels::from_pairs(labels.iter().copied()),
        entries: entries
            .iter()
            .map(|(timestamp_ns, line)| Entry {
                timestamp_ns: *timestamp_ns,
                line: (*line).into(),
                metadata: Vec::new(),
            })
            .collect(),
        ..PushStream::default()
    }
}

fn matcher(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn lines(store: &LogStore, id: u64, start: i64, end: i64, direction: Direction) -> Vec<String> {
    store
        .entries(id, start, end, direction, 0)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.line)
        .collect()
}

fn only_stream(store: &LogStore, app: &str) -> u64 {
    let found = store
        .streams(
            &[matcher(MatchOp::Equal, "app", app)],
            i64::MIN + 1,
            i64::MAX,
        )
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].id
}

fn small_chunks() -> StoreOptions {
    StoreOptions {
        chunk_target_bytes: 64,
        wal_segment_bytes: 256,
        ..StoreOptions::default()
    }
}

#[test]
fn out_of_order_entries_survive_reopen_with_and_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let t = MIDNIGHT + 3600 * SECOND;
    {
        let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .push(&[stream(&[("app", "api")], &[(t + 30, "c"), (t + 10, "a")])])
            .unwrap();
        store
            .push(&[stream(&[("app", "api")], &[(t + 20, "b"), (t + 10, "a2")])])
            .unwrap();
        let id = only_stream(&store, "api");
        assert_eq!(
            lines(&store, id, t, t + 100, Direction::Forward),
            ["a", "a2", "b", "c"]
        );
    }
    // Reopened: the heads come back from the WAL.
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.stats().replayed_entries, 4);
    let id = only_stream(&store, "api");
    assert_eq!(
        lines(&store, id, t, t + 100, Direction::Backward),
        ["c", "b", "a2", "a"]
    );
    store.flush().unwrap();
    store
        .push(&[stream(&[("app", "api")], &[(t + 15, "late")])])
        .unwrap();
    drop(store);
    // Reopened after a flush: chunks plus one replayed entry, nothing twice.
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.stats().replayed_entries, 1);
    let id = only_stream(&store, "api");
    assert_eq!(
        lines(&store, id, t, t + 100, Direction::Forward),
        ["a", "a2", "late", "b", "c"]
    );
    let limited = store
        .entries(id, t, t + 100, Direction::Backward, 2)
        .unwrap();
    let limited: Vec<_> = limited.entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(limited, ["c", "b"]);
}

#[test]
fn size_cut_chunks_are_not_replayed_twice_and_wal_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let t = MIDNIGHT;
    let line = "x".repeat(40);
    {
        let store = LogStore::open(dir.path(), small_chunks()).unwrap();
        for i in 0..20 {
            store
                .push(&[stream(&[("app", "api")], &[(t + i, &line)])])
                .unwrap();
        }
        // 64-byte chunks: every second entry cuts one.
        assert_eq!(store.stats().chunks, 10);
        store.maintain().unwrap();
    }
    let wal_files = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(
        wal_files <= 2,
        "{wal_files} WAL segments left after truncation"
    );
    let store = LogStore::open(dir.path(), small_chunks()).unwrap();
    let id = only_stream(&store, "api");
    let page = store
        .entries(id, t, t + 100, Direction::Forward, 0)
        .unwrap();
    let stamps: Vec<i64> = page.entries.iter().map(|e| e.timestamp_ns - t).collect();
    assert_eq!(stamps, (0..20).collect::<Vec<_>>());
    // Reading a narrow range skips the chunks around it.
    let page = store
        .entries(id, t + 6, t + 8, Direction::Forward, 0)
        .unwrap();
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.chunks_read, 1);
    assert!(page.chunks_skipped >= 4, "{page:?}");
}

fn wal_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("wal")).unwrap().count()
}

/// The lines of every record, in order.
fn record_lines(records: &[sightline_logstore::store::WalRecord]) -> Vec<String> {
    records
        .iter()
        .flat_map(|record| &record.streams)
        .flat_map(|stream| &stream.entries)
        .map(|entry| entry.line.clone())
        .collect()
}

#[test]
fn a_wal_follower_reads_every_push_and_holds_what_it_has_not_released() {
    let dir = tempfile::tempdir().unwrap();
    let t = MIDNIGHT;
    let store = LogStore::open(dir.path(), small_chunks()).unwrap();
    let mut follower = store.follow_wal(None, 1 << 20);
    assert!(follower.read(100).unwrap().is_empty());
    let pushed: Vec<String> = (0..30)
        .map(|i| format!("line {i:02} {}", "x".repeat(30)))
        .collect();
    for (i, line) in pushed.iter().enumerate() {
        store
            .push(&[stream(&[("app", "api")], &[(t + i as i64, line)])])
            .unwrap();
    }
    // Everything is cut and persisted, yet the segments the follower has not released stay.
    store.flush().unwrap();
    assert!(wal_segments(dir.path()) > 10, "256-byte segments, all held");
    let first = follower.read(10).unwrap();
    assert_eq!(first.len(), 10);
    let rest = follower.read(100).unwrap();
    assert_eq!(rest.len(), 20);
    let mut all = first.clone();
    all.extend(rest);
    assert_eq!(record_lines(&all), pushed);
    assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(
        all[0].streams[0].labels,
        Labels::from_pairs([("app", "api")])
    );
    assert_eq!(follower.skipped_records(), 0);
    // Released: the next truncation deletes them.
    follower.release_before(follower.position());
    store.flush().unwrap();
    assert!(
        wal_segments(dir.path()) <= 2,
        "{}",
        wal_segments(dir.path())
    );

    // A follower resumed from a saved position after a restart reads on from there.
    let saved = follower.position();
    drop(follower);
    store
        .push(&[stream(&[("app", "api")], &[(t + 100, "after")])])
        .unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), small_chunks()).unwrap();
    let mut follower = store.follow_wal(Some(saved), 1 << 20);
    store.flush().unwrap();
    assert_eq!(record_lines(&follower.read(100).unwrap()), ["after"]);
    // A position past the WAL's end (an older copy of the data directory) starts at the end.
    let mut ahead = store.follow_wal(Some(u64::MAX), 1 << 20);
    store
        .push(&[stream(&[("app", "api")], &[(t + 150, "next")])])
        .unwrap();
    assert_eq!(record_lines(&ahead.read(100).unwrap()), ["next"]);
    drop(ahead);
    follower.read(100).unwrap();

    // A byte budget bounds what is held: past it the oldest segments go, and the follower
    // counts what it could not read.
    let mut bounded = store.follow_wal(None, 600);
    for i in 0..30 {
        store
            .push(&[stream(&[("app", "api")], &[(t + 200 + i, &pushed[0])])])
            .unwrap();
    }
    drop(follower);
    store.flush().unwrap();
    let read = bounded.read(100).unwrap();
    assert!(bounded.skipped_records() > 0, "{}", read.len());
    assert_eq!(read.len() as u64 + bounded.skipped_records(), 30);
    assert!(
        wal_segments(dir.path()) <= 6,
        "{}",
        wal_segments(dir.path())
    );
}

#[test]
fn streams_by_matchers_over_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .push(&[
            stream(
                &[("app", "api"), ("env", "prod")],
                &[(MIDNIGHT - SECOND, "yesterday")],
            ),
            stream(
                &[("app", "web"), ("env", "prod")],
                &[(MIDNIGHT + SECOND, "today")],
            ),
            stream(
                &[("app", "db"), ("env", "dev")],
                &[(MIDNIGHT + SECOND, "today")],
            ),
        ])
        .unwrap();
    let check = |store: &LogStore| {
        let apps = |matchers: &[Matcher], start: i64, end: i64| -> Vec<String> {
            store
                .streams(matchers, start, end)
                .unwrap()
                .into_iter()
                .map(|s| s.labels.get("app").unwrap_or("").to_owned())
                .collect()
        };
        let prod = [matcher(MatchOp::Equal, "env", "prod")];
        assert_eq!(apps(&prod, MIDNIGHT - DAY, MIDNIGHT + DAY), ["api", "web"]);
        assert_eq!(apps(&prod, MIDNIGHT, MIDNIGHT + DAY), ["web"]);
        let regex = [matcher(MatchOp::Regex, "app", "d.|w.*")];
        assert_eq!(apps(&regex, MIDNIGHT - DAY, MIDNIGHT + DAY), ["db", "web"]);
        let not_web = [
            matcher(MatchOp::NotEqual, "app", "web"),
            matcher(MatchOp::Regex, "env", ".+"),
        ];
        assert_eq!(
            apps(&not_web, MIDNIGHT - DAY, MIDNIGHT + DAY),
            ["api", "db"]
        );
        assert!(apps(&prod, MIDNIGHT + DAY, MIDNIGHT + 2 * DAY).is_empty());
    };
    check(&store);
    store.flush().unwrap();
    check(&store);
}

#[test]
fn retention_drops_exactly_the_expired_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let now = MIDNIGHT + 12 * 3600 * SECOND;
    // Eleven days of 200 KB of random letters each, noon of every day from ten days ago to
    // today.
    let payload = random_letters(200_000, 1);
    for back in 0..=10 {
        let t = now - back * DAY;
        store
            .push(&[stream(
                &[("app", "api")],
                &[(t, &payload), (t + 1, "marker")],
            )])
            .unwrap();
    }
    store.flush().unwrap();
    // Retention 7 d: the first kept instant is 7 d ago at noon, so that day stays whole and
    // the three days before it go.
    let dropped = store.expire(now, Duration::from_secs(7 * 86_400)).unwrap();
    let today = 20_414;
    assert_eq!(dropped, [today - 10, today - 9, today - 8]);
    let id = only_stream(&store, "api");
    let kept: Vec<i64> = store
        .entries(id, now - 11 * DAY, now + DAY, Direction::Forward, 0)
        .unwrap()
        .entries
        .iter()
        .filter(|e| e.line == "marker")
        .map(|e| (e.timestamp_ns - 1 - now) / DAY)
        .collect();
    assert_eq!(kept, (-7..=0).collect::<Vec<_>>());
    assert_eq!(
        store.expire(now, Duration::from_secs(7 * 86_400)).unwrap(),
        Vec::<i32>::new()
    );
}

/// `len` pseudo-random lowercase letters (they compress to about 60 %).
fn random_letters(len: usize, seed: u64) -> String {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

/// The entries of `dir` with their metadata, leaving out those deleted between the listing
/// and the look (RocksDB's background compactions delete table files at any moment).
fn entries(dir: &std::path::Path) -> Vec<(std::path::PathBuf, std::fs::Metadata)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|item| {
            let item = item.ok()?;
            let meta = item.metadata().ok()?;
            Some((item.path(), meta))
        })
        .collect()
}

/// Bytes the files under `dir` occupy on disk (allocated blocks), recursively.
fn disk_blocks(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    entries(dir)
        .into_iter()
        .map(|(path, meta)| {
            if meta.is_dir() {
                disk_blocks(&path)
            } else {
                meta.blocks() * 512
            }
        })
        .sum()
}

/// Bytes of RocksDB's table files in `dir`: what dropping days must free.
fn sst_bytes(dir: &std::path::Path) -> u64 {
    entries(dir)
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|ext| ext == "sst"))
        .map(|(_, meta)| meta.len())
        .sum()
}

/// Pushes one 1 MB line (different per day) at noon of each of the `days` days up to today,
/// then flushes; returns noon today.
fn fill_days(store: &LogStore, days: i64) -> i64 {
    let now = MIDNIGHT + 12 * 3600 * SECOND;
    for back in 0..days {
        let payload = random_letters(1 << 20, back as u64 + 7);
        store
            .push(&[stream(&[("app", "api")], &[(now - back * DAY, &payload)])])
            .unwrap();
    }
    store.flush().unwrap();
    now
}

#[test]
fn expired_days_give_their_disk_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let now = fill_days(&store, 10);
    let tables = sst_bytes(dir.path());
    let before = disk_blocks(dir.path());
    // Ten days of about 600 KB compressed each.
    assert!(tables > 10 * 500_000, "{tables} bytes of tables");
    // Retention 3 d keeps today and the three days before it: six days go.
    let dropped = store.expire(now, Duration::from_secs(3 * 86_400)).unwrap();
    assert_eq!(dropped.len(), 6, "{dropped:?}");
    let after = disk_blocks(dir.path());
    let freed = before.saturating_sub(after);
    assert!(
        freed >= tables * 6 / 10 * 9 / 10,
        "only {freed} of {before} bytes freed by dropping 6 of 10 days ({tables} bytes of tables)"
    );
    assert!(sst_bytes(dir.path()) <= tables * 4 / 10 * 11 / 10);
    drop(store);
    // And they stay gone: reopening finds four days.
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let id = only_stream(&store, "api");
    let page = store
        .entries(id, now - 20 * DAY, now + DAY, Direction::Forward, 0)
        .unwrap();
    assert_eq!(page.entries.len(), 4);
    // Reopening writes RocksDB's LOG, OPTIONS and MANIFEST files anew (~70 KB); a day that
    // came back would add ~600 KB.
    assert!(disk_blocks(dir.path()) <= after + (192 << 10));
}

#[test]
fn retention_size_drops_the_oldest_whole_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let now = fill_days(&store, 10);
    let usage = sst_bytes(dir.path());
    let before = disk_blocks(dir.path());
    // Room for five and a half days: the five oldest go (the WAL does not count).
    let limit = usage * 55 / 100;
    let today = 20_414;
    let dropped = store.expire_to_size(limit).unwrap();
    assert_eq!(dropped, (today - 9..=today - 5).collect::<Vec<_>>());
    let left = sst_bytes(dir.path());
    assert!(left <= limit && left > limit * 8 / 10, "{left} > {limit}");
    assert!(disk_blocks(dir.path()) + usage * 4 / 10 <= before);
    assert_eq!(store.expire_to_size(limit).unwrap(), Vec::<i32>::new());
    // Below one day's size: everything but the newest day goes.
    assert_eq!(
        store.expire_to_size(1).unwrap(),
        (today - 4..today).collect::<Vec<_>>()
    );
    let id = only_stream(&store, "api");
    let page = store
        .entries(id, now - 20 * DAY, now + DAY, Direction::Forward, 0)
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].timestamp_ns, now);
}

/// Ten chunks of 40 lines in stream `{app="api"}` from 01:00 on the day at `MIDNIGHT`, one
/// chunk per push; line 17 of chunk 6 is the only one with `zqxNeedle7f3a`. Returns 01:00.
fn ten_chunks_one_with_a_needle(store: &LogStore) -> i64 {
    let t = MIDNIGHT + 3600 * SECOND;
    for chunk in 0..10i64 {
        let mut lines: Vec<String> = (0..40)
            .map(|i| format!("GET /api/items/{i} status=200 chunk={chunk}"))
            .collect();
        if chunk == 6 {
            lines[17] = "disk error: zqxNeedle7f3a seen".into();
        }
        let entries: Vec<(i64, &str)> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| (t + chunk * 1000 + i as i64, line.as_str()))
            .collect();
        store.push(&[stream(&[("app", "api")], &entries)]).unwrap();
        // One chunk per push.
        store.flush().unwrap();
    }
    assert_eq!(store.stats().chunks, 10);
    t
}

#[test]
fn logql_needle_queries_read_only_the_chunks_the_line_index_allows() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let t = ten_chunks_one_with_a_needle(&store);
    let (start, end) = (t, t + DAY / 2);
    let logs = |query: &str| {
        let Ok(Expr::Log(expr)) = logql::parse(query) else {
            panic!("{query} is not a log query")
        };
        let mut evaluator = Evaluator::new(&store, QueryLimits::default());
        let streams = evaluator
            .logs(&expr, start, end, Direction::Forward, 0)
            .unwrap();
        let lines: Vec<String> = streams
            .into_iter()
            .flat_map(|s| s.entries.into_iter().map(|(_, line)| line))
            .collect();
        (lines, evaluator.stats())
    };
    let (lines, stats) = logs(r#"{app="api"} |= "zqxNeedle7f3a""#);
    assert_eq!(lines, ["disk error: zqxNeedle7f3a seen"]);
    assert_eq!(
        (stats.chunks_read, stats.chunks_skipped),
        (1, 9),
        "{stats:?}"
    );
    // A filter every chunk can match reads them all.
    let (lines, stats) = logs(r#"{app="api"} |= "status=200""#);
    assert_eq!(lines.len(), 399);
    assert_eq!(
        (stats.chunks_read, stats.chunks_skipped),
        (10, 0),
        "{stats:?}"
    );
    // Metric queries go through the same skipping.
    let Ok(Expr::Metric(metric)) =
        logql::parse(r#"count_over_time({app="api"} |= "zqxNeedle7f3a" [1d])"#)
    else {
        panic!("not a metric query")
    };
    let mut evaluator = Evaluator::new(&store, QueryLimits::default());
    let MetricResult::Series(series) = evaluator.metric(&metric, end, end, 0).unwrap() else {
        panic!("not series")
    };
    assert_eq!(series[0].points[0].1, 1.0);
    let stats = evaluator.stats();
    assert_eq!(
        (stats.chunks_read, stats.chunks_skipped),
        (1, 9),
        "{stats:?}"
    );
}

#[test]
fn or_chains_and_parsed_values_skip_chunks_by_the_line_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let t = MIDNIGHT + DAY / 4;
    let metadata = |entries: PushStream| PushStream {
        entries: entries
            .entries
            .into_iter()
            .map(|e| Entry {
                metadata: vec![("level".into(), "error".into())],
                ..e
            })
            .collect(),
        ..entries
    };
    // One chunk each: plain infos, a plain error, an escaped error, an error in metadata, an
    // error in logfmt (no JSON object).
    let chunks = [
        stream(&[("app", "api")], &[(t, r#"{"level":"info","n":"alpha"}"#)]),
        stream(
            &[("app", "api")],
            &[(t + 1, r#"{"level":"error","n":"bravo"}"#)],
        ),
        stream(&[("app", "api")], &[(t + 2, r#"{"level":"\u0065rror"}"#)]),
        metadata(stream(&[("app", "api")], &[(t + 3, r#"{"n":"delta"}"#)])),
        stream(&[("app", "api")], &[(t + 4, "level=error n=echo")]),
    ];
    for chunk in chunks {
        store.push(&[chunk]).unwrap();
        store.flush().unwrap();
    }
    let count = |query: &str| {
        let Ok(Expr::Metric(metric)) = logql::parse(query) else {
            panic!("{query} is not a metric query")
        };
        let mut evaluator = Evaluator::new(&store, QueryLimits::default());
        let MetricResult::Series(series) = evaluator.metric(&metric, t + DAY, t + DAY, 0).unwrap()
        else {
            panic!("not series")
        };
        let stats = evaluator.stats();
        (
            series.first().map_or(0.0, |s| s.points[0].1),
            (stats.chunks_read, stats.chunks_skipped),
        )
    };
    // Either text of an `or` chain: the chunks with neither are not read.
    assert_eq!(
        count(r#"sum(count_over_time({app="api"} |= "alpha" or "bravo" [2d]))"#),
        (2.0, (2, 3))
    );
    // A parsed value: the plain chunk without it is not read, nor (for json) the one without
    // a JSON object; the escaped one and the one with metadata are, and count.
    assert_eq!(
        count(r#"sum(count_over_time({app="api"} | json | level="error" [2d]))"#),
        (3.0, (3, 2))
    );
    // logfmt reads the chunk with the text whatever its lines look like.
    assert_eq!(
        count(r#"sum(count_over_time({app="api"} | logfmt | level="error" [2d]))"#),
        (2.0, (4, 1))
    );
}

#[test]
fn queries_stop_at_their_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let t = ten_chunks_one_with_a_needle(&store);
    let end = t + DAY / 2;
    // Room for a chunk being read (40 entries) and a little more.
    let limits = QueryLimits {
        max_memory: 6 << 10,
        ..QueryLimits::default()
    };
    let metric = |query: &str| {
        let Ok(Expr::Metric(metric)) = logql::parse(query) else {
            panic!("{query} is not a metric query")
        };
        Evaluator::new(&store, limits.clone())
            .metric(&metric, end, end, 0)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    // Sums per series: little held.
    assert_eq!(metric(r#"count_over_time({app="api"}[1d])"#), Ok(()));
    // Every sample kept (400 × 24 bytes and more): over the limit.
    let kept = metric(r#"quantile_over_time(0.5, {app="api"} | logfmt | unwrap chunk [1d])"#);
    assert!(
        kept.as_ref()
            .is_err_and(|e| e.contains("would hold more than 6144 bytes of memory")),
        "{kept:?}"
    );
    // Lines kept by a log query count too.
    let Ok(Expr::Log(log)) = logql::parse(r#"{app="api"}"#) else {
        panic!("not a log query")
    };
    let lines = Evaluator::new(&store, limits.clone()).logs(&log, t, end, Direction::Forward, 400);
    assert!(lines.is_err());
    let few = Evaluator::new(&store, limits).logs(&log, t, end, Direction::Forward, 10);
    assert_eq!(few.unwrap()[0].entries.len(), 10);
}

#[test]
fn line_index_skips_chunks_without_the_needle_and_goes_with_its_day() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::default();
    let store = LogStore::open(dir.path(), options.clone()).unwrap();
    let t = ten_chunks_one_with_a_needle(&store);
    let id = only_stream(&store, "api");
    let all = store
        .entries(id, t, t + DAY / 2, Direction::Forward, 0)
        .unwrap();
    assert_eq!((all.chunks_read, all.entries.len()), (10, 400));
    // The needle (any case) is in one chunk: the other nine are never read.
    for needle in ["zqxNeedle7f3a", "ZQXNEEDLE7F3A", "needle7f"] {
        let page = store
            .entries_containing(id, t, t + DAY / 2, Direction::Forward, 0, &[needle])
            .unwrap();
        assert_eq!((page.chunks_read, page.chunks_skipped), (1, 9), "{needle}");
        assert!(
            page.entries
                .iter()
                .any(|e| e.line.contains("zqxNeedle7f3a"))
        );
    }
    // Several literals must all be in a chunk; one missing everywhere skips all of them.
    let page = store
        .entries_containing(
            id,
            t,
            t + DAY / 2,
            Direction::Forward,
            0,
            &["disk error", "absent!"],
        )
        .unwrap();
    assert_eq!((page.chunks_read, page.entries.len()), (0, 0));
    // Literals too short for a trigram skip nothing.
    let page = store
        .entries_containing(id, t, t + DAY / 2, Direction::Forward, 0, &["zq"])
        .unwrap();
    assert_eq!(page.chunks_read, 10);
    assert!(store.line_index_usage() > 0);
    drop(store);
    // The committed index survives a reopen; expiring the day deletes it.
    let store = LogStore::open(dir.path(), options).unwrap();
    let page = store
        .entries_containing(
            id,
            t,
            t + DAY / 2,
            Direction::Forward,
            0,
            &["zqxneedle7f3a"],
        )
        .unwrap();
    assert_eq!(page.chunks_read, 1);
    let index_dir = dir.path().join("index").join("day-020414");
    assert!(index_dir.exists());
    let dropped = store
        .expire(t + 3 * DAY, Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(dropped, [20_414]);
    assert!(!index_dir.exists());
    assert_eq!(store.line_index_usage(), 0);
}
