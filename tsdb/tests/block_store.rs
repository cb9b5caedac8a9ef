//! The RocksDB block store on real temporary directories: round trips, every matcher kind,
//! compaction, retention (age, size, overrides) and a block write killed with SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Test code: a failure is a failed test.

#[path = "../benches/block_data/mod.rs"]
mod block_data;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration as StdDuration;

use sightline_core::duration::Duration;
use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_tsdb::block::{
    BlockStore, BlockStoreOptions, ChunkEncoding, Compression, DEFAULT_BLOCK_RANGE_MS,
    RetentionPolicy,
};
use sightline_tsdb::storage::{ChunkMeta, Querier};

use block_data::{dir_size, head_chunks};

/// 2025-11-20T00:00:00Z.
const DAY0: i64 = 1_763_596_800_000;
const DAY: i64 = 86_400_000;
const H2: i64 = DEFAULT_BLOCK_RANGE_MS;

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Samples every 15 s in `[mint, maxt)`, value = f(series index, t).
fn series_samples(index: usize, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    (mint..maxt)
        .step_by(15_000)
        .map(|t| (t, (index as f64) * 1000.0 + ((t - DAY0) / 15_000) as f64))
        .collect()
}

fn test_series() -> Vec<Labels> {
    vec![
        labels(&[("__name__", "up"), ("job", "node"), ("instance", "a:9100")]),
        labels(&[
            ("__name__", "up"),
            ("job", "node"),
            ("instance", "b:9100"),
            ("env", "prod"),
        ]),
        labels(&[
            ("__name__", "up"),
            ("job", "kube"),
            ("instance", "c:8080"),
            ("env", "dev"),
        ]),
        labels(&[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("handler", "/login"),
            ("env", "prod"),
        ]),
        labels(&[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("handler", "/logout"),
        ]),
        labels(&[
            ("__name__", "apiserver_request_total"),
            ("job", "kube"),
            ("verb", "GET"),
        ]),
    ]
}

fn write(store: &BlockStore, all: &[Labels], mint: i64, maxt: i64) {
    let series: Vec<(Labels, Vec<ChunkMeta>)> = all
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), head_chunks(&series_samples(i, mint, maxt))))
        .collect();
    store.write_block(mint, maxt, series).unwrap();
}

/// Selected series by their `instance` or `handler`/`verb` label, sorted, for short asserts.
fn select_ids(store: &BlockStore, matchers: &[Matcher]) -> Vec<String> {
    let mut ids: Vec<String> = store
        .select(matchers, DAY0, DAY0 + 10 * DAY)
        .unwrap()
        .iter()
        .map(|s| {
            let l = &s.labels;
            l.get("instance")
                .or(l.get("handler"))
                .or(l.get("verb"))
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let all = test_series();
    {
        let store = BlockStore::open(dir.path()).unwrap();
        assert_eq!(store.max_time(), None);
        write(&store, &all, DAY0, DAY0 + H2);
        write(&store, &all, DAY0 + H2, DAY0 + 2 * H2);
        assert_eq!(store.blocks().len(), 2);
    }
    let store = BlockStore::open(dir.path()).unwrap();
    let blocks = store.blocks();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].partition, "metrics-2025-11-20");
    assert_eq!(store.max_time(), Some(DAY0 + 2 * H2));
    let got = store.select(&[], DAY0, DAY0 + 2 * H2).unwrap();
    assert_eq!(got.len(), all.len());
    let mut sorted = all.clone();
    sorted.sort();
    for (series, labels) in got.iter().zip(&sorted) {
        assert_eq!(&series.labels, labels);
        let index = all.iter().position(|l| l == labels).unwrap();
        let samples: Vec<(i64, f64)> = series.samples(DAY0, DAY0 + 2 * H2).collect();
        assert_eq!(samples, series_samples(index, DAY0, DAY0 + 2 * H2));
    }
    // A range across the block boundary returns the samples of both blocks, exactly.
    let mid: Vec<i64> = store
        .select(
            &[m(MatchOp::Equal, "instance", "a:9100")],
            DAY0 + H2 - 30_000,
            DAY0 + H2 + 15_000,
        )
        .unwrap()[0]
        .samples(DAY0 + H2 - 30_000, DAY0 + H2 + 15_000)
        .map(|s| s.0)
        .collect();
    assert_eq!(
        mid,
        [
            DAY0 + H2 - 30_000,
            DAY0 + H2 - 15_000,
            DAY0 + H2,
            DAY0 + H2 + 15_000
        ]
    );
    // Outside every block: nothing.
    assert!(
        store
            .select(&[], DAY0 + 3 * H2, DAY0 + 4 * H2)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn every_encoding_round_trips() {
    for encoding in [
        ChunkEncoding::XorAsGiven,
        ChunkEncoding::XorMerged,
        ChunkEncoding::Columnar,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = BlockStoreOptions {
            encoding,
            compression: Compression::Lz4,
            ..Default::default()
        };
        let store = BlockStore::open_with(dir.path(), options).unwrap();
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = vec![
            (DAY0, 1.5),
            (DAY0 + 1, stale),
            (DAY0 + 7, -0.0),
            (DAY0 + 9, f64::INFINITY),
            (DAY0 + 20, 0.1),
        ];
        store
            .write_block(
                DAY0,
                DAY0 + H2,
                [(labels(&[("__name__", "x")]), head_chunks(&samples))],
            )
            .unwrap();
        let got: Vec<(i64, u64)> = store.select(&[], DAY0, DAY0 + H2).unwrap()[0]
            .samples(DAY0, DAY0 + H2)
            .map(|(t, v)| (t, v.to_bits()))
            .collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want, "{encoding:?}");
    }
}

#[test]
fn matchers_and_absent_labels() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    write(&store, &test_series(), DAY0, DAY0 + H2);
    let ids = |ms: &[Matcher]| select_ids(&store, ms);
    use MatchOp::*;
    assert_eq!(ids(&[m(Equal, "job", "node")]), ["a:9100", "b:9100"]);
    assert_eq!(
        ids(&[m(Equal, "__name__", "up"), m(NotEqual, "job", "node")]),
        ["c:8080"]
    );
    // Literal alternation and prefix regexes (answered from the index).
    assert_eq!(
        ids(&[m(Regex, "instance", "a:9100|c:8080")]),
        ["a:9100", "c:8080"]
    );
    assert_eq!(ids(&[m(Regex, "handler", "/log.*")]), ["/login", "/logout"]);
    // A regex that needs the values scanned.
    assert_eq!(
        ids(&[m(Regex, "instance", "[ab]:9\\d+")]),
        ["a:9100", "b:9100"]
    );
    assert_eq!(
        ids(&[m(NotRegex, "job", "node|api"), m(Equal, "__name__", "up")]),
        ["c:8080"]
    );
    // Absent labels match as "": `env=""` selects series without env.
    assert_eq!(
        ids(&[m(Equal, "env", ""), m(Equal, "job", "node")]),
        ["a:9100"]
    );
    assert_eq!(
        ids(&[m(NotEqual, "env", "prod")]),
        ["/logout", "GET", "a:9100", "c:8080"]
    );
    assert_eq!(ids(&[m(NotRegex, "env", "p.*")]).len(), 4);
    assert_eq!(ids(&[m(Regex, "env", "prod|")]).len(), 5, "prod or absent");
    assert_eq!(
        ids(&[m(Regex, "env", ".+")]),
        ["/login", "b:9100", "c:8080"]
    );
    assert_eq!(ids(&[m(Regex, "env", ".*")]).len(), 6);
    assert_eq!(ids(&[m(NotEqual, "nosuchlabel", "x")]).len(), 6);
    assert!(ids(&[m(Equal, "nosuchlabel", "x")]).is_empty());
    assert!(ids(&[m(Equal, "job", "node"), m(Equal, "job", "api")]).is_empty());
    assert_eq!(ids(&[]).len(), 6);

    let range = (DAY0, DAY0 + H2);
    assert_eq!(
        store.label_names(&[], range.0, range.1).unwrap(),
        ["__name__", "env", "handler", "instance", "job", "verb"]
    );
    assert_eq!(
        store
            .label_names(&[m(Equal, "job", "node")], range.0, range.1)
            .unwrap(),
        ["__name__", "env", "instance", "job"]
    );
    assert_eq!(
        store.label_values("job", &[], range.0, range.1).unwrap(),
        ["api", "kube", "node"]
    );
    assert_eq!(
        store
            .label_values("job", &[m(Equal, "env", "prod")], range.0, range.1)
            .unwrap(),
        ["api", "node"]
    );
    // Time ranges outside the block see nothing.
    assert!(
        store
            .label_names(&[], DAY0 + H2, DAY0 + 2 * H2)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .label_values("job", &[], DAY0 - H2, DAY0 - 1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn invalid_blocks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let chunks = head_chunks(&[(DAY0 + 5, 1.0)]);
    let one = |c: Vec<ChunkMeta>| [(labels(&[("__name__", "x")]), c)];
    assert!(store.write_block(DAY0, DAY0, one(chunks.clone())).is_err());
    assert!(
        store
            .write_block(DAY0 + DAY - H2, DAY0 + DAY + H2, one(chunks.clone()))
            .is_err()
    );
    assert!(
        store
            .write_block(DAY0 + 10, DAY0 + H2, one(chunks))
            .is_err(),
        "chunk before mint"
    );
    assert!(store.blocks().is_empty());
}

#[test]
fn compaction_into_day_blocks_keeps_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let all = test_series();
    // Day 0 complete (12 blocks), day 1 partially (3 blocks).
    for i in 0..15 {
        write(&store, &all, DAY0 + i * H2, DAY0 + (i + 1) * H2);
    }
    let before = store.select(&[], DAY0, DAY0 + 2 * DAY).unwrap();
    // Day 1 has not ended: only day 0 is compacted.
    let written = store
        .compact(DAY0 + DAY + 7 * H2, &RetentionPolicy::default())
        .unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].mint, written[0].maxt), (DAY0, DAY0 + DAY));
    assert!(written[0].compacted);
    assert_eq!(written[0].num_samples, 6 * 5760);
    assert_eq!(store.blocks().len(), 4);
    let after = store.select(&[], DAY0, DAY0 + 2 * DAY).unwrap();
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.labels, b.labels);
        let a: Vec<_> = a.samples(DAY0, DAY0 + 2 * DAY).collect();
        let b: Vec<_> = b.samples(DAY0, DAY0 + 2 * DAY).collect();
        assert_eq!(a, b);
    }
    // Compacting again does nothing; reopening sees the day block.
    assert!(
        store
            .compact(DAY0 + DAY + 7 * H2, &RetentionPolicy::default())
            .unwrap()
            .is_empty()
    );
    drop(store);
    let store = BlockStore::open(dir.path()).unwrap();
    assert_eq!(store.blocks().len(), 4);
    let node = store
        .select(&[m(MatchOp::Equal, "job", "node")], DAY0, DAY0 + DAY - 1)
        .unwrap();
    assert_eq!(node.len(), 2);
    assert_eq!(node[0].samples(DAY0, DAY0 + DAY - 1).count(), 5760);
}

#[test]
fn retention_drops_expired_days_and_the_directory_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    // Enough data per day that SST files dominate the directory.
    let models = block_data::target(0, 500, 7);
    for day in 0..4 {
        for block in 0..2 {
            let mint = DAY0 + day * DAY + block * H2;
            let times = block_data::scrape_times(mint, 15_000, 480, day as u64);
            store
                .write_block(
                    mint,
                    mint + H2,
                    block_data::block_series(&models, &times, DAY0, mint, mint + H2),
                )
                .unwrap();
        }
    }
    let now = DAY0 + 4 * DAY;
    store.compact(now, &RetentionPolicy::default()).unwrap();
    assert_eq!(store.blocks().len(), 4);
    let size_before = dir_size(dir.path());
    let policy = RetentionPolicy {
        max_age: Duration::from_secs(2 * 86_400),
        ..Default::default()
    };
    let report = store.apply_retention(now, &policy).unwrap();
    assert_eq!((report.blocks_dropped, report.partitions_dropped), (2, 2));
    let blocks = store.blocks();
    assert_eq!(
        blocks.iter().map(|b| b.day()).collect::<Vec<_>>(),
        [DAY0 / DAY + 2, DAY0 / DAY + 3]
    );
    // Exactly the expired days are gone.
    assert!(
        store
            .select(&[], DAY0, DAY0 + 2 * DAY - 1)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.select(&[], DAY0 + 2 * DAY, now).unwrap().len(),
        models.len()
    );
    let size_after = dir_size(dir.path());
    println!("directory {size_before} B -> {size_after} B");
    assert!(
        (size_after as f64) < size_before as f64 * 0.65,
        "directory went from {size_before} to {size_after} bytes"
    );
    // Size limit: keep dropping the oldest day until under it, never the newest day.
    let report = store
        .apply_retention(
            now,
            &RetentionPolicy {
                max_size_bytes: 1,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(report.partitions_dropped, 1);
    assert_eq!(store.blocks().len(), 1);
    drop(store);
    assert_eq!(BlockStore::open(dir.path()).unwrap().blocks().len(), 1);
}

#[test]
fn retention_overrides_keep_and_drop_the_right_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let all = test_series();
    // Ten days of one 2 h block each, compacted into day blocks.
    for day in 0..10 {
        write(&store, &all, DAY0 + day * DAY, DAY0 + day * DAY + H2);
    }
    let now = DAY0 + 10 * DAY;
    let policy = RetentionPolicy {
        max_age: Duration::from_secs(7 * 86_400),
        max_size_bytes: 0,
        overrides: vec![
            (
                vec![m(MatchOp::Equal, "job", "node")],
                Duration::from_secs(30 * 86_400),
            ),
            (
                vec![m(MatchOp::Regex, "__name__", "apiserver_.*")],
                Duration::from_secs(2 * 86_400),
            ),
        ],
    };
    store.compact(now, &policy).unwrap();
    let series_on = |day: i64| -> Vec<String> {
        store
            .select(&[], DAY0 + day * DAY, DAY0 + day * DAY + DAY - 1)
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s.labels.get("job").unwrap(),
                    s.labels.metric_name().unwrap()
                )
            })
            .collect()
    };
    // Days 0–2 are older than 7 d: only job="node" (30 d) is left.
    for day in 0..3 {
        assert_eq!(series_on(day), ["node/up", "node/up"], "day {day}");
    }
    // Days 3–7: everything but apiserver_* (2 d).
    for day in 3..8 {
        assert_eq!(series_on(day).len(), 5, "day {day}");
        assert!(!series_on(day).contains(&"kube/apiserver_request_total".to_owned()));
    }
    // Days 8–9: everything.
    for day in 8..10 {
        assert_eq!(series_on(day).len(), 6, "day {day}");
    }
    // Later, retention (not compaction) expires day 3 for the default age.
    let report = store.apply_retention(now + DAY, &policy).unwrap();
    assert_eq!(
        report.blocks_rewritten, 2,
        "day 3 loses default-age series, day 8 apiserver_*"
    );
    assert_eq!(series_on(3), ["node/up", "node/up"]);
    assert_eq!(series_on(8).len(), 5);
    let report = store.apply_retention(now + DAY, &policy).unwrap();
    assert_eq!(report, Default::default(), "a second run changes nothing");
    // Past 30 days everything goes, whole days at a time.
    let report = store.apply_retention(DAY0 + 41 * DAY, &policy).unwrap();
    assert_eq!(report.partitions_dropped, 10);
    assert!(store.blocks().is_empty());
}

/// The child side of the crash test: writes one block, says so, then writes a large one
/// until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("SIGHTLINE_BLOCK_CRASH_DIR") else {
        return;
    };
    let store = BlockStore::open(&dir).unwrap();
    let models = block_data::target(0, 200, 1);
    let times = block_data::scrape_times(DAY0, 15_000, 480, 1);
    store
        .write_block(
            DAY0,
            DAY0 + H2,
            block_data::block_series(&models, &times, DAY0, DAY0, DAY0 + H2),
        )
        .unwrap();
    println!("committed");
    // A block large enough to take a while: 20 000 series.
    let big: Vec<(Labels, Vec<ChunkMeta>)> = (0..100)
        .flat_map(|target| block_data::target(target, 200, 2))
        .map(|model| {
            let times = block_data::scrape_times(DAY0 + H2, 15_000, 480, 2);
            (
                model.labels.clone(),
                head_chunks(&block_data::samples(&model, &times, DAY0)),
            )
        })
        .collect();
    println!("writing");
    store.write_block(DAY0 + H2, DAY0 + 2 * H2, big).unwrap();
    println!("done");
}

#[test]
fn a_write_killed_with_sigkill_leaves_no_partial_block() {
    for delay_ms in [50u64, 400, 1500] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("SIGHTLINE_BLOCK_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut finished = false;
        for line in lines.by_ref() {
            if line.unwrap() == "writing" {
                break;
            }
        }
        std::thread::sleep(StdDuration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        for line in lines {
            finished |= line.unwrap() == "done";
        }
        child.wait().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        let blocks = store.blocks();
        if finished {
            assert_eq!(blocks.len(), 2);
        } else {
            assert_eq!(blocks.len(), 1, "the killed block must not be visible");
            assert_eq!(blocks[0].mint, DAY0);
        }
        // The committed block is intact.
        let series = store.select(&[], DAY0, DAY0 + H2 - 1).unwrap();
        assert_eq!(series.len(), block_data::target(0, 200, 1).len());
        assert!(
            series
                .iter()
                .all(|s| s.samples(DAY0, DAY0 + H2).count() == 480)
        );
        println!(
            "killed after {delay_ms} ms: finished={finished}, blocks={}",
            blocks.len()
        );
    }
}

#[test]
fn an_unknown_format_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let all = test_series();
    write(
        &BlockStore::open(dir.path()).unwrap(),
        &all,
        DAY0,
        DAY0 + H2,
    );
    {
        // What a newer Sightline would leave: version 2 in the default column family.
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), &names).unwrap();
        db.put(b"sightline.blocks.version", 2u32.to_be_bytes())
            .unwrap();
    }
    let error = BlockStore::open(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("format version 2") && message.contains("reads version 1"),
        "{message}"
    );
    // Nothing was modified: the blocks are still there for the newer reader.
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    assert!(names.contains(&"metrics-2025-11-20".to_owned()));
}
