//! One evaluation cycle of every fixture rule file (`../shared/fixtures/rules/plain`: the
//! 234 kube-prometheus recording and alerting rules) over a head of about 50 000 series.
//!
//! The series look like a homelab cluster scaled up: `RULE_BENCH_NODES` nodes (default 500)
//! with node-exporter CPU (8 cores × 3 modes), load, memory, vmstat, filesystem and `up`
//! series, and `RULE_BENCH_PODS` pods (default 11 300) with kube-state-metrics series, each
//! with 10 minutes of samples every 30 s. The goal (issue 8) is one cycle under 1 s on one
//! core. The baseline in the same run is the same cycle over one node and one pod, which
//! shows what the rules cost before any data.
//!
//! Run: `/work/notes/cargo-release bench --bench rule_eval` (or `cargo bench --bench
//! rule_eval` outside the shared machine).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sightline_alerting::rules::builtin::BuiltinRules;
use sightline_alerting::rules::manager::{RuleManager, RuleSettings};
use sightline_core::labels::Labels;
use sightline_logstore::logql::QueryLimits;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::promql::{Engine, EngineOptions};
use sightline_tsdb::storage::{Appendable, Querier};

const END: i64 = 1_700_000_000_000;
const STEP: i64 = 30_000;
const SAMPLES: i64 = 21;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rule_files() -> Vec<PathBuf> {
    let dir = Path::new("../../shared/fixtures/rules/plain");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// The label sets of `nodes` nodes and `pods` pods.
fn series(nodes: usize, pods: usize) -> Vec<(Labels, f64)> {
    let mut all = Vec::new();
    for n in 0..nodes {
        let instance = format!("node-{n}:9100");
        let node = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("__name__", name.to_owned()),
                ("job", "node-exporter".to_owned()),
                ("instance", instance.clone()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            Labels::from_pairs(pairs)
        };
        for cpu in 0..8 {
            let cpu = cpu.to_string();
            for (mode, rate) in [("idle", 0.6), ("user", 0.3), ("system", 0.1)] {
                all.push((
                    node("node_cpu_seconds_total", &[("cpu", &cpu), ("mode", mode)]),
                    rate,
                ));
            }
        }
        for (name, rate) in [
            ("node_load1", 0.0),
            ("node_memory_MemAvailable_bytes", 0.0),
            ("node_memory_MemTotal_bytes", 0.0),
            ("node_vmstat_pgmajfault", 3.0),
            ("up", 0.0),
        ] {
            all.push((node(name, &[]), rate));
        }
        for name in [
            "node_filesystem_avail_bytes",
            "node_filesystem_size_bytes",
            "node_filesystem_readonly",
        ] {
            all.push((
                node(
                    name,
                    &[
                        ("device", "/dev/sda1"),
                        ("fstype", "ext4"),
                        ("mountpoint", "/"),
                    ],
                ),
                0.0,
            ));
        }
    }
    for p in 0..pods {
        let pod = format!("web-{p}");
        let namespace = format!("ns-{}", p % 40);
        for (name, rate) in [
            ("kube_pod_container_status_restarts_total", 0.01),
            ("kube_pod_container_resource_requests", 0.0),
            ("kube_pod_info", 0.0),
        ] {
            all.push((
                Labels::from_pairs([
                    ("__name__", name),
                    ("job", "kube-state-metrics"),
                    ("namespace", namespace.as_str()),
                    ("pod", pod.as_str()),
                    ("container", "web"),
                ]),
                rate,
            ));
        }
    }
    all
}

/// A head holding 10 minutes of samples of `nodes` nodes and `pods` pods, and a rule
/// manager with every fixture rule over it.
fn setup(dir: &Path, nodes: usize, pods: usize) -> (Arc<Head>, RuleManager, usize) {
    let head = Arc::new(Head::open(dir, HeadOptions::default()).unwrap());
    let series = series(nodes, pods);
    for step in 0..SAMPLES {
        let t = END - (SAMPLES - 1 - step) * STEP;
        let mut appender = head.appender();
        for (labels, rate) in &series {
            let value = if *rate == 0.0 {
                1.0
            } else {
                rate * (step as f64) * 30.0
            };
            appender.append(labels, t, value).unwrap();
        }
        appender.commit().unwrap();
    }
    let querier: Arc<dyn Querier> = head.clone();
    let appendable: Arc<dyn Appendable> = Arc::new(head.clone());
    let manager = RuleManager::new(Engine::new(EngineOptions::default()), querier, appendable);
    manager
        .update(RuleSettings {
            files: rule_files(),
            log_files: Vec::new(),
            objects: Vec::new(),
            evaluation_interval: Duration::from_secs(30),
            external_labels: Default::default(),
            external_url: String::new(),
            // The fixture rules alone, as measured before the built-in rules existed.
            builtin: BuiltinRules {
                enabled: false,
                ..BuiltinRules::default()
            },
            log_query_limits: QueryLimits::default(),
        })
        .unwrap();
    (head, manager, series.len())
}

fn bench(c: &mut Criterion) {
    let nodes = env_usize("RULE_BENCH_NODES", 500);
    let pods = env_usize("RULE_BENCH_PODS", 11_300);
    let mut group = c.benchmark_group("rule_eval");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, nodes, pods) in [("baseline_1_node", 1, 1), ("cluster", nodes, pods)] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (_head, manager, count) = setup(dir.path(), nodes, pods);
        println!("{name}: {count} series loaded in {:?}", started.elapsed());
        // Every cycle a little later, as the scheduler runs them (appends must move forward).
        let mut t = END;
        group.bench_function(format!("{name}_{count}_series"), |b| {
            b.iter(|| {
                t += 100;
                manager.evaluate_all(t);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
