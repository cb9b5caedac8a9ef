//! Rule evaluation over a real metric head (WAL on a temp dir): every fixture rule evaluates
//! without error, alerts move through pending / firing / resolved with `for` and
//! `keep_firing_for`, `ALERTS` and `ALERTS_FOR_STATE` are written, recording rules write their
//! series and staleness markers, and alert state survives a restart.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sightline_alerting::rules::alert::AlertState;
use sightline_alerting::rules::builtin::BuiltinRules;
use sightline_alerting::rules::group::RuleState;
use sightline_alerting::rules::manager::{RuleManager, RuleSettings};
use sightline_core::labels::Labels;
use sightline_logstore::logql::QueryLimits;
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::promql::{Engine, EngineOptions, Value};
use sightline_tsdb::storage::{Appendable, Querier};

const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

fn fixtures() -> PathBuf {
    PathBuf::from("../../shared/fixtures/rules")
}

fn open_head(dir: &Path) -> Arc<Head> {
    Arc::new(Head::open(dir, HeadOptions::default()).unwrap())
}

fn manager(head: &Arc<Head>) -> RuleManager {
    let querier: Arc<dyn Querier> = head.clone();
    let appendable: Arc<dyn Appendable> = Arc::new(head.clone());
    RuleManager::new(Engine::new(EngineOptions::default()), querier, appendable)
}

fn settings(files: Vec<PathBuf>) -> RuleSettings {
    RuleSettings {
        files,
        log_files: Vec::new(),
        objects: Vec::new(),
        evaluation_interval: Duration::from_secs(60),
        external_labels: BTreeMap::from([("cluster".to_owned(), "lab".to_owned())]),
        external_url: "http://sightline.lab:9090".to_owned(),
        // Each test counts the rules of its own files.
        builtin: BuiltinRules {
            enabled: false,
            ..BuiltinRules::default()
        },
        log_query_limits: QueryLimits::default(),
    }
}

/// A sample to append: label pairs, timestamp, value.
type RawSample<'a> = (&'a [(&'a str, &'a str)], i64, f64);

fn append(head: &Arc<Head>, samples: &[RawSample<'_>]) {
    let mut appender = head.appender();
    for (labels, t, v) in samples {
        appender
            .append(&Labels::from_pairs(labels.iter().copied()), *t, *v)
            .unwrap();
    }
    appender.commit().unwrap();
}

fn query(head: &Arc<Head>, q: &str, t: i64) -> Vec<(String, f64)> {
    let engine = Engine::new(EngineOptions::default());
    match engine.instant_query(head.as_ref(), q, t).unwrap().value {
        Value::Vector(samples) => samples
            .into_iter()
            .map(|s| (s.metric.to_string(), s.v))
            .collect(),
        other => panic!("{q}: unexpected {other:?}"),
    }
}

/// Samples of node-exporter, kube-state-metrics and cAdvisor series that the kube-prometheus
/// rules read, every 30 s over 10 minutes.
fn seed_cluster_data(head: &Arc<Head>, end: i64) {
    let node = [("job", "node-exporter"), ("instance", "node-1:9100")];
    let mut t = end - 10 * MINUTE;
    let mut step = 0.0;
    while t <= end {
        let mut batch: Vec<(Vec<(&str, &str)>, f64)> = Vec::new();
        for (mode, rate) in [("idle", 0.6), ("user", 0.3), ("system", 0.1)] {
            let mut l = node.to_vec();
            l.extend([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", mode),
            ]);
            batch.push((l, step * 30.0 * rate));
        }
        for (name, v) in [
            ("node_load1", 0.5),
            ("node_memory_MemAvailable_bytes", 1e9),
            ("node_memory_MemTotal_bytes", 4e9),
            ("node_vmstat_pgmajfault", step * 3.0),
            ("up", 1.0),
        ] {
            let mut l = node.to_vec();
            l.push(("__name__", name));
            batch.push((l, v));
        }
        for (name, v) in [
            ("node_filesystem_avail_bytes", 5e9 - step * 1e8),
            ("node_filesystem_size_bytes", 1e11),
            ("node_filesystem_readonly", 0.0),
        ] {
            let mut l = node.to_vec();
            l.extend([
                ("__name__", name),
                ("device", "/dev/sda1"),
                ("fstype", "ext4"),
                ("mountpoint", "/"),
            ]);
            batch.push((l, v));
        }
        let pod = [
            ("job", "kube-state-metrics"),
            ("namespace", "default"),
            ("pod", "web-0"),
            ("container", "web"),
        ];
        for (name, v) in [
            ("kube_pod_container_status_restarts_total", step),
            ("kube_pod_container_resource_requests", 0.1),
            ("kube_pod_info", 1.0),
        ] {
            let mut l = pod.to_vec();
            l.push(("__name__", name));
            batch.push((l, v));
        }
        let mut appender = head.appender();
        for (labels, v) in &batch {
            appender
                .append(&Labels::from_pairs(labels.iter().copied()), t, *v)
                .unwrap();
        }
        appender.commit().unwrap();
        t += 30_000;
        step += 1.0;
    }
}

#[test]
fn every_fixture_rule_evaluates_without_error() {
    let dir = tempfile::tempdir().unwrap();
    let head = open_head(dir.path());
    let end = T0;
    seed_cluster_data(&head, end);
    let mut files = Vec::new();
    for folder in ["plain", "crd"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(fixtures().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        found.sort();
        files.extend(found);
    }
    let manager = manager(&head);
    manager.update(settings(files)).unwrap();
    // Three cycles, so that `for` clauses, staleness and restore all run.
    for cycle in 0..3 {
        manager.evaluate_all(end + cycle * MINUTE);
    }
    let mut passed = 0;
    let mut failed = Vec::new();
    for group in manager.groups() {
        for (rule, health) in group.spec.rules.iter().zip(&group.health) {
            assert!(
                health.last_evaluation.is_some(),
                "{} never ran",
                rule.name()
            );
            match &health.last_error {
                None => passed += 1,
                Some(error) => failed.push(format!("{} / {}: {error}", group.file, rule.name())),
            }
        }
    }
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // 234 rules in plain/ and the same 234 as PrometheusRule objects in crd/.
    assert_eq!(passed, 2 * 234);
    // A recording rule wrote its series from the seeded data.
    let recorded = query(&head, "instance:node_num_cpu:sum", end + 2 * MINUTE);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].1, 1.0);
}

fn write_rules(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("rules.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const ALERT_RULES: &str = r#"
groups:
  - name: room
    labels:
      team: home
    rules:
      - alert: RoomTooHot
        expr: temperature_celsius > 25
        for: 2m
        keep_firing_for: 1m
        labels:
          severity: '{{ if gt $value 35.0 }}critical{{ else }}warning{{ end }}'
        annotations:
          summary: 'Room {{ $labels.room }} is at {{ printf "%.1f" $value }}°C'
          cluster: '{{ $externalLabels.cluster }}'
      - record: room:temperature_celsius:max
        expr: max by (room) (temperature_celsius)
"#;

fn temperature(head: &Arc<Head>, t: i64, v: f64) {
    append(
        head,
        &[(
            &[("__name__", "temperature_celsius"), ("room", "attic")],
            t,
            v,
        )],
    );
}

fn alerts(manager: &RuleManager) -> Vec<(AlertState, i64, String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for group in manager.groups() {
        for state in &group.rules {
            if let RuleState::Alerting(rule) = state {
                for alert in rule.active.values() {
                    out.push((
                        alert.state,
                        alert.active_at,
                        alert.labels.to_string(),
                        alert.annotations.clone(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn alert_goes_pending_firing_keeps_firing_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let head = open_head(&dir.path().join("head"));
    let rules = write_rules(dir.path(), ALERT_RULES);
    let manager = manager(&head);
    manager.update(settings(vec![rules])).unwrap();

    temperature(&head, T0 - 15_000, 30.0);
    manager.evaluate_all(T0);
    let now = alerts(&manager);
    assert_eq!(now.len(), 1);
    let (state, active_at, labels, annotations) = &now[0];
    assert_eq!((*state, *active_at), (AlertState::Pending, T0));
    assert_eq!(
        labels,
        r#"{alertname="RoomTooHot", room="attic", severity="warning", team="home"}"#
    );
    assert_eq!(annotations["summary"], "Room attic is at 30.0°C");
    assert_eq!(annotations["cluster"], "lab");
    assert_eq!(
        query(&head, "ALERTS", T0),
        vec![(
            r#"{__name__="ALERTS", alertname="RoomTooHot", alertstate="pending", room="attic", severity="warning", team="home"}"#
                .to_owned(),
            1.0
        )]
    );
    assert_eq!(
        query(&head, "ALERTS_FOR_STATE", T0)[0].1,
        (T0 / 1000) as f64
    );
    assert_eq!(query(&head, "room:temperature_celsius:max", T0)[0].1, 30.0);

    temperature(&head, T0 + 45_000, 31.0);
    manager.evaluate_all(T0 + MINUTE);
    assert_eq!(alerts(&manager)[0].0, AlertState::Pending);
    temperature(&head, T0 + 105_000, 32.0);
    manager.evaluate_all(T0 + 2 * MINUTE);
    assert_eq!(alerts(&manager)[0].0, AlertState::Firing);
    assert_eq!(alerts(&manager)[0].3["summary"], "Room attic is at 32.0°C");
    assert_eq!(
        query(&head, r#"ALERTS{alertstate="firing"}"#, T0 + 2 * MINUTE).len(),
        1
    );

    // Cooler: the series stops matching; keep_firing_for holds it one more minute.
    temperature(&head, T0 + 165_000, 20.0);
    manager.evaluate_all(T0 + 3 * MINUTE);
    assert_eq!(alerts(&manager)[0].0, AlertState::Firing);
    temperature(&head, T0 + 225_000, 20.0);
    manager.evaluate_all(T0 + 4 * MINUTE);
    assert_eq!(alerts(&manager)[0].0, AlertState::Inactive);
    // ALERTS got a staleness marker: the series is gone at once.
    assert!(query(&head, "ALERTS", T0 + 4 * MINUTE).is_empty());
    // Resolved alerts are kept 15 minutes for the notifier, then dropped.
    manager.evaluate_all(T0 + 20 * MINUTE);
    assert!(alerts(&manager).is_empty());
}

#[test]
fn recording_rule_series_goes_stale_when_its_input_does() {
    let dir = tempfile::tempdir().unwrap();
    let head = open_head(&dir.path().join("head"));
    let rules = write_rules(dir.path(), ALERT_RULES);
    let manager = manager(&head);
    manager.update(settings(vec![rules])).unwrap();
    temperature(&head, T0 - 15_000, 21.0);
    manager.evaluate_all(T0);
    assert_eq!(query(&head, "room:temperature_celsius:max", T0).len(), 1);
    // Six minutes later the input is out of the lookback window: no result, stale marker.
    manager.evaluate_all(T0 + 6 * MINUTE);
    assert!(query(&head, "room:temperature_celsius:max", T0 + 6 * MINUTE).is_empty());
    let stored = head
        .select(
            &[sightline_core::matcher::Matcher::new(
                sightline_core::matcher::MatchOp::Equal,
                "__name__",
                "room:temperature_celsius:max",
            )
            .unwrap()],
            T0,
            T0 + 6 * MINUTE,
        )
        .unwrap();
    let samples: Vec<(i64, f64)> = stored[0].samples(T0, T0 + 6 * MINUTE).collect();
    assert_eq!(samples.len(), 2);
    assert!(sightline_tsdb::promql::is_stale_nan(samples[1].1));
}

#[test]
fn bad_rule_results_are_reported_per_rule_and_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let head = open_head(&dir.path().join("head"));
    let rules = write_rules(
        dir.path(),
        r#"
groups:
  - name: mixed
    limit: 1
    rules:
      - record: two_series
        expr: temperature_celsius
      - alert: Duplicate
        expr: label_replace(temperature_celsius, "room", "same", "", "")
      - record: one
        expr: vector(1)
"#,
    );
    append(
        &head,
        &[
            (
                &[("__name__", "temperature_celsius"), ("room", "a")],
                T0,
                1.0,
            ),
            (
                &[("__name__", "temperature_celsius"), ("room", "b")],
                T0,
                2.0,
            ),
        ],
    );
    let manager = manager(&head);
    manager.update(settings(vec![rules])).unwrap();
    manager.evaluate_all(T0);
    let group = &manager.groups()[0];
    let errors: Vec<Option<String>> = group.health.iter().map(|h| h.last_error.clone()).collect();
    assert!(
        errors[0]
            .as_deref()
            .unwrap()
            .contains("exceeded limit of 1"),
        "{errors:?}"
    );
    assert!(
        errors[1].as_deref().unwrap().contains("same labelset"),
        "{errors:?}"
    );
    assert_eq!(errors[2], None);
    assert_eq!(query(&head, "one", T0).len(), 1);
}

#[test]
fn pending_state_is_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let head_dir = dir.path().join("head");
    let rules = write_rules(
        dir.path(),
        r#"
groups:
  - name: slow
    rules:
      - alert: LongHot
        expr: temperature_celsius > 25
        for: 30m
"#,
    );
    {
        let head = open_head(&head_dir);
        let manager = manager(&head);
        manager.update(settings(vec![rules.clone()])).unwrap();
        for minute in 0..=5 {
            temperature(&head, T0 + minute * MINUTE - 1_000, 30.0);
            manager.evaluate_all(T0 + minute * MINUTE);
        }
        assert_eq!(alerts(&manager)[0].1, T0);
        head.sync().unwrap();
    }
    // Down from minute 5 to minute 10. Prometheus shifts active_at by the downtime so that
    // the alert still waits its full 30 minutes of observed time.
    let head = open_head(&head_dir);
    let manager = manager(&head);
    manager.update(settings(vec![rules])).unwrap();
    temperature(&head, T0 + 10 * MINUTE - 1_000, 30.0);
    manager.evaluate_all(T0 + 10 * MINUTE);
    let restored = alerts(&manager);
    assert_eq!(
        (restored[0].0, restored[0].1),
        (AlertState::Pending, T0 + 5 * MINUTE)
    );
    temperature(&head, T0 + 34 * MINUTE, 30.0);
    manager.evaluate_all(T0 + 34 * MINUTE + 1_000);
    assert_eq!(alerts(&manager)[0].0, AlertState::Pending);
    temperature(&head, T0 + 35 * MINUTE, 30.0);
    manager.evaluate_all(T0 + 35 * MINUTE + 1_000);
    assert_eq!(alerts(&manager)[0].0, AlertState::Firing);
}

#[test]
fn a_reload_keeps_unchanged_alerts_and_a_bad_file_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let head = open_head(&dir.path().join("head"));
    let rules = write_rules(dir.path(), ALERT_RULES);
    let manager = manager(&head);
    manager.update(settings(vec![rules.clone()])).unwrap();
    temperature(&head, T0 - 1_000, 30.0);
    manager.evaluate_all(T0);
    manager.update(settings(vec![rules.clone()])).unwrap();
    assert_eq!(alerts(&manager)[0].1, T0);

    std::fs::write(
        &rules,
        "groups:\n  - name: broken\n    rules:\n      - alert: X\n        expr: up ==\n",
    )
    .unwrap();
    let errors = manager.update(settings(vec![rules])).unwrap_err();
    assert!(
        errors[0].to_string().contains("rules.yaml:5:"),
        "{}",
        errors[0]
    );
    assert_eq!(manager.groups()[0].spec.name, "room");
}
