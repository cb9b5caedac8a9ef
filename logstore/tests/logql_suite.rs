//! The LogQL suite: every `tests/logql/*.txt` file is a store and a list of queries with the
//! results Loki's documentation says they give. Each file gets a fresh RocksDB store in a
//! temp dir; the runner prints every mismatch and a one-line "N passed, M failed".
//!
//! File format (blocks separated by blank lines, `#` starts a comment line):
//! - `push {labels}` then `<seconds> <line>` rows: entries pushed (times are seconds after
//!   2024-01-01T00:00:00Z, fractions allowed).
//! - `logs <start> <end> <forward|backward> <limit> <query>` then `{labels} <seconds> <line>`
//!   rows: the entries, streams in label order, each stream's entries in the direction.
//! - `instant <time> <query>` then `{labels} <value>` rows (or `scalar <value>`), in result
//!   order.
//! - `range <start> <end> <step> <query>` then `{labels} <t>:<v> <t>:<v> …` rows.
//! - `error <query>` then one row: the start of the error message.
//!
//! A block with no result rows expects an empty result.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // Test runner: a failure is a failed test.

use std::fmt::Write as _;
use std::path::Path;

use sightline_core::labels::Labels;
use sightline_logstore::logql::{Evaluator, Expr, LabelSet, MetricResult, QueryLimits, parse};
use sightline_logstore::push::{Entry, PushStream, parse_label_text};
use sightline_logstore::store::{Direction, LogStore, StoreOptions};

/// 2024-01-01T00:00:00Z in nanoseconds.
const BASE_NS: i64 = 1_704_067_200_000_000_000;

fn ns(seconds: &str) -> i64 {
    let value: f64 = seconds
        .parse()
        .unwrap_or_else(|_| panic!("bad time {seconds:?}"));
    BASE_NS + (value * 1e9).round() as i64
}

fn seconds(ns: i64) -> String {
    let s = (ns - BASE_NS) as f64 / 1e9;
    format!("{s}")
}

fn labels_text(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let rounded = (v * 1e6).round() / 1e6;
        format!("{rounded}")
    }
}

/// What a query block produced, in the file's row format.
fn run(store: &LogStore, header: &str) -> Vec<String> {
    let (kind, rest) = header.split_once(' ').unwrap_or((header, ""));
    let limits = QueryLimits::default();
    let mut evaluator = Evaluator::new(store, limits);
    let result: Result<Vec<String>, String> = (|| match kind {
        "logs" => {
            let mut parts = rest.splitn(5, ' ');
            let (start, end, direction, limit, query) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let Expr::Log(log) = parse(query).map_err(|e| e.to_string())? else {
                return Err("not a log query".into());
            };
            let direction = if direction == "forward" {
                Direction::Forward
            } else {
                Direction::Backward
            };
            let streams = evaluator
                .logs(&log, ns(start), ns(end), direction, limit.parse().unwrap())
                .map_err(|e| e.to_string())?;
            Ok(streams
                .iter()
                .flat_map(|s| {
                    s.entries.iter().map(|(ts, line)| {
                        format!("{} {} {line}", labels_text(&s.labels), seconds(*ts))
                    })
                })
                .collect())
        }
        "instant" | "range" => {
            let mut parts = rest.splitn(if kind == "instant" { 2 } else { 4 }, ' ');
            let (start, end, step) = if kind == "instant" {
                let t = parts.next().unwrap();
                (t, t, "0")
            } else {
                (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                )
            };
            let query = parts.next().unwrap();
            let Expr::Metric(metric) = parse(query).map_err(|e| e.to_string())? else {
                return Err("not a metric query".into());
            };
            let step_ns = (step.parse::<f64>().unwrap() * 1e9) as i64;
            let result = evaluator
                .metric(&metric, ns(start), ns(end), step_ns)
                .map_err(|e| e.to_string())?;
            Ok(match result {
                MetricResult::Scalar(points) => points
                    .iter()
                    .map(|(_, v)| format!("scalar {}", value_text(*v)))
                    .take(1)
                    .collect(),
                MetricResult::Series(series) => series
                    .iter()
                    .map(|s| {
                        let mut row = labels_text(&s.labels);
                        for (t, v) in &s.points {
                            if kind == "instant" {
                                write!(row, " {}", value_text(*v)).unwrap();
                            } else {
                                write!(row, " {}:{}", seconds(*t), value_text(*v)).unwrap();
                            }
                        }
                        row
                    })
                    .collect(),
            })
        }
        "error" => match parse(rest) {
            Err(error) => Err(error.to_string()),
            Ok(Expr::Metric(metric)) => evaluator
                .metric(&metric, ns("0"), ns("600"), 60_000_000_000)
                .map(|_| vec!["(no error)".to_owned()])
                .map_err(|e| e.to_string()),
            Ok(Expr::Log(log)) => evaluator
                .logs(&log, ns("0"), ns("600"), Direction::Backward, 100)
                .map(|_| vec!["(no error)".to_owned()])
                .map_err(|e| e.to_string()),
        },
        other => panic!("unknown block kind {other:?}"),
    })();
    match result {
        Ok(rows) => rows,
        Err(message) => vec![format!("error: {message}")],
    }
}

/// Where the pushed entries are when the queries run.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// In the heads, as right after a push.
    Heads,
    /// In stored chunks: the store is flushed after every push block, so a stream pushed in
    /// several blocks has several (possibly overlapping) chunks.
    Chunks,
}

fn run_file(path: &Path, placement: Placement, report: &mut String) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
    let (mut passed, mut failed) = (0, 0);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for block in lines.split(|l| l.trim().is_empty()) {
        let Some((header, rows)) = block.split_first() else {
            continue;
        };
        if let Some(labels) = header.strip_prefix("push ") {
            let labels = Labels::from_pairs(parse_label_text(labels).unwrap());
            let entries = rows
                .iter()
                .map(|row| {
                    let (t, line) = row.split_once(' ').unwrap_or((row, ""));
                    Entry {
                        timestamp_ns: ns(t),
                        line: line.to_owned(),
                        metadata: Vec::new(),
                    }
                })
                .collect();
            store
                .push(&[PushStream {
                    labels,
                    entries,
                    ..PushStream::default()
                }])
                .unwrap();
            if let Placement::Chunks = placement {
                store.flush().unwrap();
            }
            continue;
        }
        let got = run(&store, header);
        let ok = if header.starts_with("error ") {
            rows.len() == 1
                && got.len() == 1
                && got[0]
                    .strip_prefix("error: ")
                    .is_some_and(|m| m.starts_with(rows[0]))
        } else {
            got == rows
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
            writeln!(
                report,
                "FAIL {} ({placement:?}): {header}\n  expected:\n    {}\n  got:\n    {}",
                path.display(),
                rows.join("\n    "),
                got.join("\n    ")
            )
            .unwrap();
        }
    }
    (passed, failed)
}

#[test]
fn logql_suite() {
    let dir = Path::new("tests/logql");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no suite files in {}", dir.display());
    let mut report = String::new();
    let (mut passed, mut failed) = (0, 0);
    for placement in [Placement::Heads, Placement::Chunks] {
        for file in &files {
            let (p, f) = run_file(file, placement, &mut report);
            passed += p;
            failed += f;
        }
    }
    println!("{report}");
    println!(
        "LogQL suite: {passed} passed, {failed} failed (each query over heads, then over chunks)"
    );
    assert_eq!(failed, 0, "{report}");
}
