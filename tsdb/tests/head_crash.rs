//! Crash test: a child process ingests into a head and is killed with SIGKILL; the parent
//! reopens the head and checks that nothing acknowledged is lost and nothing is corrupt.
//!
//! The child is this test binary itself, re-run with `CRASH_CHILD_DIR` set so that
//! [`crash_child`] ingests instead of returning. After every commit it records the batch
//! timestamp in a side file (written to a temporary name and renamed, so it is never torn).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_core::labels::Labels;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::storage::Querier;

const DIR_VAR: &str = "CRASH_CHILD_DIR";
const SYNC_VAR: &str = "CRASH_CHILD_WAL_SYNC_MS";
const SERIES: usize = 200;

fn options(sync_ms: u64) -> HeadOptions {
    HeadOptions {
        wal_sync: Duration::from_millis(sync_ms),
        // Small segments, so that kills also land around segment rotation.
        segment_size: 256 * 1024,
        ..HeadOptions::default()
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "node_cpu_seconds_total"),
        ("cpu", &(i % 16).to_string()),
        ("instance", &format!("host-{}:9100", i / 16)),
        ("job", "node"),
        ("mode", "user"),
    ])
}

/// The ingesting child; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let sync_ms: u64 = std::env::var(SYNC_VAR).unwrap().parse().unwrap();
    let dir = Path::new(&dir);
    let head = Arc::new(Head::open(dir, options(sync_ms)).unwrap());
    let mut app = head.appender();
    let mut refs = Vec::new();
    let mut last_t = head.stats(1).max_time.unwrap_or(0);
    let side = dir.join("acked");
    let side_tmp = dir.join("acked.tmp");
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let t = now.max(last_t + 1);
        for i in 0..SERIES {
            if refs.len() == SERIES {
                app.append_ref(refs[i], t, (t + i as i64) as f64).unwrap();
            } else {
                refs.push(app.append(&labels(i), t, (t + i as i64) as f64).unwrap());
            }
        }
        let stats = app.commit().unwrap();
        assert_eq!(stats.appended as usize, SERIES);
        last_t = t;
        std::fs::write(&side_tmp, t.to_string()).unwrap();
        std::fs::rename(&side_tmp, &side).unwrap();
        head.sync_if_due().unwrap();
    }
}

/// Runs the child on `dir` for about `run`, kills it with SIGKILL, returns the last acked
/// timestamp.
fn run_and_kill(dir: &Path, sync_ms: u64, run: Duration) -> i64 {
    let _ = std::fs::remove_file(dir.join("acked"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(SYNC_VAR, sync_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kills the child even if an assertion below fails, so no ingesting process outlives
    // the test.
    let mut child = KillOnDrop(child);
    let started = Instant::now();
    while !dir.join("acked").exists() || started.elapsed() < run {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "child made no progress"
        );
        assert!(child.0.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-KILL", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.0.wait().unwrap();
    std::fs::read_to_string(dir.join("acked"))
        .unwrap()
        .parse()
        .unwrap()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Already dead after a successful run; then this fails harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reopens the head and checks it: every series has the same timestamps (a batch is all or
/// nothing), values are intact, and the newest is at least `must_have`.
fn check(dir: &Path, sync_ms: u64, acked: i64, must_have: i64) {
    let head = Head::open(dir, options(sync_ms)).unwrap();
    let all = head.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(all.len(), SERIES);
    let reference: Vec<i64> = all[0].samples(i64::MIN, i64::MAX).map(|s| s.0).collect();
    for series in &all {
        let i: usize = {
            let cpu: usize = series.labels.get("cpu").unwrap().parse().unwrap();
            let host: usize = series.labels.get("instance").unwrap()[5..]
                .trim_end_matches(":9100")
                .parse()
                .unwrap();
            host * 16 + cpu
        };
        let samples: Vec<(i64, f64)> = series.samples(i64::MIN, i64::MAX).collect();
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        assert_eq!(ts, reference, "series {} differs", series.labels);
        for &(t, v) in &samples {
            assert_eq!(
                v,
                (t + i as i64) as f64,
                "corrupt value in {}",
                series.labels
            );
        }
    }
    let newest = *reference.last().unwrap();
    assert!(
        newest >= must_have,
        "newest sample {newest} older than required {must_have} (acked {acked})"
    );
}

#[test]
fn sigkill_with_sync_every_batch_loses_no_acked_batch() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let acked = run_and_kill(dir.path(), 0, Duration::from_millis(700));
        check(dir.path(), 0, acked, acked);
        eprintln!("round {round}: acked {acked} present");
    }
}

#[test]
fn sigkill_with_interval_sync_loses_at_most_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let acked = run_and_kill(dir.path(), 1000, Duration::from_millis(1500));
        // The contract: everything older than the sync interval before the last ack. (A
        // SIGKILL leaves the page cache intact, so in practice every ack survives.)
        check(dir.path(), 1000, acked, acked - 1000);
        eprintln!("round {round}: acked {acked}, required {}", acked - 1000);
    }
}
