//! The pod-log tailer against a temp directory laid out like `/var/log/pods`, storing into a
//! real logstore: CRI full and partial lines, Docker JSON, rotation by rename while lines
//! are written, copytruncate, restart with persisted positions, discovery of new pods,
//! labels from pod metadata, drop rules, static files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat};
use regex::Regex;
use sightline_core::config::relabel::RelabelConfig;
use sightline_core::labels::Labels;
use sightline_logstore::store::{Direction, LogStore, StoreOptions};
use sightline_scraper::tailer::{LineDrop, PodMetadata, StaticFiles, Tailer, TailerOptions};

fn now_ns() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

fn rfc3339(ns: i64) -> String {
    DateTime::from_timestamp(
        ns / 1_000_000_000,
        u32::try_from(ns % 1_000_000_000).unwrap(),
    )
    .unwrap()
    .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn cri(stream: &str, tag: &str, content: &str) -> String {
    format!("{} {stream} {tag} {content}\n", rfc3339(now_ns()))
}

fn docker(stream: &str, log: &str) -> String {
    let object = serde_json::json!({"log": log, "stream": stream, "time": rfc3339(now_ns())});
    format!("{object}\n")
}

fn container_dir(root: &Path, ns: &str, pod: &str, container: &str) -> PathBuf {
    let dir = root
        .join(format!("{ns}_{pod}_0000-uid-{pod}"))
        .join(container);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store_dir: PathBuf,
    options: TailerOptions,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    fs::create_dir_all(&root).unwrap();
    let options = TailerOptions {
        pods_root: Some(root.clone()),
        node: "node-a".into(),
        positions_file: dir.path().join("positions.json"),
        max_partial_line_size: 64,
        ..TailerOptions::default()
    };
    Setup {
        store_dir: dir.path().join("logs"),
        root,
        options,
        _dir: dir,
    }
}

/// Every stored (labels, line), streams in label order, lines in time order.
fn stored(store: &LogStore) -> Vec<(Labels, String)> {
    let (start, end) = (now_ns() - 3_600_000_000_000, now_ns() + 3_600_000_000_000);
    let mut out = Vec::new();
    for stream in store.streams(&[], start, end).unwrap() {
        for entry in store
            .entries(stream.id, start, end, Direction::Forward, 0)
            .unwrap()
            .entries
        {
            out.push((stream.labels.clone(), entry.line));
        }
    }
    out
}

fn lines_of(store: &LogStore, container: &str) -> Vec<String> {
    stored(store)
        .into_iter()
        .filter(|(labels, _)| labels.get("container") == Some(container))
        .map(|(_, line)| line)
        .collect()
}

/// The stdout lines of a container, in time order.
fn stdout_of(store: &LogStore, container: &str) -> Vec<String> {
    stored(store)
        .into_iter()
        .filter(|(labels, _)| {
            labels.get("container") == Some(container) && labels.get("stream") == Some("stdout")
        })
        .map(|(_, line)| line)
        .collect()
}

#[test]
fn cri_and_docker_lines_with_partials_and_labels() {
    let s = setup();
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let pods = PodMetadata::default();
    pods.set(
        "shop",
        "web-1",
        Labels::from_pairs([("app.kubernetes.io/name", "web"), ("tier", "x")]),
    );
    let web = container_dir(&s.root, "shop", "web-1", "nginx").join("0.log");
    append(&web, &cri("stdout", "F", "first line"));
    append(&web, &cri("stdout", "P", "second "));
    append(&web, &cri("stdout", "P", "line in "));
    append(&web, &cri("stdout", "F", "three parts"));
    append(&web, &cri("stderr", "F", "an error"));
    append(
        &web,
        &cri("stdout", "P", "a fragment whose end is not written yet"),
    );
    let legacy = container_dir(&s.root, "legacy", "old-0", "app").join("0.log");
    append(&legacy, &docker("stdout", "docker line\n"));
    append(&legacy, &docker("stderr", "joined "));
    append(&legacy, &docker("stderr", "docker line\n"));
    let mut tailer = Tailer::new(s.options.clone(), pods);
    let stats = tailer.poll(&store).unwrap();
    assert_eq!(stats.lines, 5);
    assert_eq!(
        stdout_of(&store, "nginx"),
        ["first line", "second line in three parts"]
    );
    let mut docker_lines = lines_of(&store, "app");
    docker_lines.sort();
    assert_eq!(docker_lines, ["docker line", "joined docker line"]);
    let all = stored(&store);
    let (labels, _) = all.iter().find(|(_, line)| line == "an error").unwrap();
    assert_eq!(
        labels.to_string(),
        r#"{app="web", container="nginx", namespace="shop", node="node-a", pod="web-1", stream="stderr"}"#
    );
    let (labels, _) = all.iter().find(|(_, line)| line == "docker line").unwrap();
    assert_eq!(labels.get("app"), None, "no pod metadata yet: no app label");
    assert_eq!(labels.get("namespace"), Some("legacy"));
    // The fragment completes; an over-long reassembled line is cut at the cap (64 bytes).
    append(&web, &cri("stdout", "F", " (now it is)"));
    append(&web, &cri("stdout", "P", &"x".repeat(50)));
    append(&web, &cri("stdout", "F", &"y".repeat(50)));
    tailer.poll(&store).unwrap();
    let nginx = stdout_of(&store, "nginx");
    assert_eq!(
        nginx[2],
        "a fragment whose end is not written yet (now it is)"
    );
    assert_eq!(nginx[3], format!("{}{}", "x".repeat(50), "y".repeat(14)));
}

#[test]
fn rotation_by_rename_while_writing_loses_and_duplicates_nothing() {
    let s = setup();
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let dir = container_dir(&s.root, "ns", "busy-0", "writer");
    let live = dir.join("0.log");
    const LINES: usize = 3000;
    let writer = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let mut file = File::create(dir.join("0.log")).unwrap();
            for i in 0..LINES {
                file.write_all(cri("stdout", "F", &format!("line {i}")).as_bytes())
                    .unwrap();
                if i % 500 == 499 {
                    // kubelet: rename the live file away, the runtime reopens 0.log.
                    fs::rename(dir.join("0.log"), dir.join(format!("0.log.{i}"))).unwrap();
                    file = File::create(dir.join("0.log")).unwrap();
                }
                // Slow enough that each file is seen by some poll: a file created and
                // rotated away between two polls is never seen (as with Promtail).
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
    while !writer.is_finished() {
        tailer.poll(&store).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    writer.join().unwrap();
    tailer.poll(&store).unwrap();
    tailer.poll(&store).unwrap();
    assert!(live.exists());
    let lines = lines_of(&store, "writer");
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i}")).collect();
    let mut sorted = lines.clone();
    sorted.sort_by_key(|line| line[5..].parse::<usize>().unwrap());
    let firsts: Vec<&String> = sorted.iter().step_by(100).collect();
    assert_eq!(sorted.len(), LINES, "every line exactly once: {firsts:?}");
    assert_eq!(sorted, expected);
}

#[test]
fn copytruncate_reads_the_file_again_from_zero() {
    let s = setup();
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let live = container_dir(&s.root, "ns", "ct-0", "c").join("0.log");
    for i in 0..20 {
        append(
            &live,
            &cri("stdout", "F", &format!("before {i} with some padding")),
        );
    }
    let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
    tailer.poll(&store).unwrap();
    fs::copy(&live, live.with_extension("log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&live, &cri("stdout", "F", "after 0"));
    append(&live, &cri("stdout", "F", "after 1"));
    tailer.poll(&store).unwrap();
    let lines = lines_of(&store, "c");
    assert_eq!(lines.len(), 22);
    assert_eq!(&lines[20..], ["after 0", "after 1"]);
}

#[test]
fn restart_with_positions_neither_duplicates_nor_loses() {
    let s = setup();
    let live = container_dir(&s.root, "ns", "rs-0", "c").join("0.log");
    for i in 0..100 {
        append(&live, &cri("stdout", "F", &format!("l{i}")));
    }
    {
        let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
        let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
        assert_eq!(tailer.poll(&store).unwrap().lines, 100);
        for i in 100..150 {
            append(&live, &cri("stdout", "F", &format!("l{i}")));
        }
        append(&live, &cri("stdout", "P", "l150 first half,"));
        assert_eq!(tailer.poll(&store).unwrap().lines, 50);
        tailer.save_positions().unwrap();
        // Lines written while the tailer is down, and a half-written line.
        append(&live, &cri("stdout", "F", " second half"));
        append(&live, "2024-01-01T00:00:00Z stdout F torn, no newl");
    }
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
    assert_eq!(tailer.poll(&store).unwrap().lines, 1);
    let lines = lines_of(&store, "c");
    let mut expected: Vec<String> = (0..150).map(|i| format!("l{i}")).collect();
    expected.push("l150 first half, second half".into());
    assert_eq!(lines, expected);
}

#[test]
fn new_pods_are_discovered_and_drop_rules_apply() {
    let mut s = setup();
    s.options.relabel_configs = serde_json::from_value::<Vec<RelabelConfig>>(serde_json::json!([
        {"source_labels": ["namespace", "container"], "regex": "kube-system;noisy", "action": "drop"}
    ]))
    .unwrap();
    s.options.line_drops = vec![LineDrop {
        selector: vec![("namespace".into(), Regex::new("kube-system").unwrap())],
        expression: Regex::new(r"GET /(healthz|readyz)").unwrap(),
    }];
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
    assert_eq!(tailer.poll(&store).unwrap().lines, 0);
    let dns = container_dir(&s.root, "kube-system", "coredns-1", "coredns").join("0.log");
    append(&dns, &cri("stdout", "F", "GET /healthz 200"));
    append(&dns, &cri("stdout", "F", "real query answered"));
    append(&dns, &cri("stdout", "F", "GET /readyz 200"));
    let noisy = container_dir(&s.root, "kube-system", "coredns-1", "noisy").join("0.log");
    append(&noisy, &cri("stdout", "F", "dropped by relabel"));
    let app = container_dir(&s.root, "default", "api-1", "api").join("0.log");
    append(&app, &cri("stdout", "F", "GET /healthz 200"));
    let stats = tailer.poll(&store).unwrap();
    assert_eq!((stats.lines, stats.dropped), (2, 3));
    assert_eq!(lines_of(&store, "coredns"), ["real query answered"]);
    assert_eq!(
        lines_of(&store, "api"),
        ["GET /healthz 200"],
        "rule only for kube-system"
    );
    assert!(lines_of(&store, "noisy").is_empty());
}

#[test]
fn static_files_get_their_labels_and_filename() {
    let mut s = setup();
    let logs = s.root.parent().unwrap().join("varlog");
    fs::create_dir_all(&logs).unwrap();
    s.options.pods_root = None;
    s.options.static_files = vec![StaticFiles {
        path_glob: format!("{}/*.log", logs.display()),
        labels: Labels::from_pairs([("job", "varlogs"), ("host", "laptop")]),
    }];
    append(&logs.join("syslog.log"), "plain text line\n");
    append(&logs.join("other.txt"), "not matched\n");
    let store = LogStore::open(&s.store_dir, StoreOptions::default()).unwrap();
    let mut tailer = Tailer::new(s.options.clone(), PodMetadata::default());
    tailer.poll(&store).unwrap();
    let all = stored(&store);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1, "plain text line");
    assert_eq!(all[0].0.get("job"), Some("varlogs"));
    assert_eq!(
        all[0].0.get("filename"),
        Some(logs.join("syslog.log").to_str().unwrap())
    );
}
