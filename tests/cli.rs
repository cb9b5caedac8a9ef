//! The command line: `check config`, `check rules`, `config default`, `version`.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{binary, write_file};

fn run(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    common::package_path("../shared/fixtures")
}

#[test]
fn check_config_accepts_a_good_file_and_its_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::copy(
        fixtures().join("rules/plain/nodeExporter.yaml"),
        dir.path().join("rules/node.yaml"),
    )
    .unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "rule_files: [rules/*.yaml]\nscrape_configs:\n  - job_name: node\n    static_configs: [{targets: ['127.0.0.1:9100']}]\n",
    );
    let output = run(&["check", "config", config.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    assert!(out.contains("SUCCESS: 41 rules found"), "{out}");
}

#[test]
fn check_config_reports_the_exact_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "bad.yml",
        "scrape_configs:\n  - job_name: node\n    metric_relabel_configs:\n      - action: hashmod\n        target_label: shard\n",
    );
    let output = run(&["check", "config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAILED"));
    assert_eq!(
        stderr(&output),
        format!(
            "{}:4:9: scrape_configs[0].metric_relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus\n",
            config.display()
        )
    );
}

#[test]
fn check_config_covers_the_notifier_config_file_and_inline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("alertmanager/kube-prometheus/alertmanager.yaml"),
        dir.path().join("alertmanager.yaml"),
    )
    .unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "alertmanager_config_file: alertmanager.yaml\n",
    );
    let output = run(&["check", "config", config.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("SUCCESS: notifier config with"),
        "{}",
        stdout(&output)
    );

    let inline = write_file(
        dir.path(),
        "inline.yml",
        "global:\n  scrape_interval: 15s\nalertmanager:\n  route:\n    receiver: phone\n  receivers:\n    - name: pager\n",
    );
    let output = run(&["check", "config", inline.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "{}:5:15: route names receiver \"phone\", which is not defined in receivers\n",
            inline.display()
        )
    );
}

#[test]
fn check_config_fails_on_a_bad_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("rules/rulefmt/noexpr.bad.yaml"),
        dir.path().join("rules.yaml"),
    )
    .unwrap();
    let config = write_file(dir.path(), "sightline.yml", "rule_files: [rules.yaml]\n");
    let output = run(&["check", "config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!("{}:4:", dir.path().join("rules.yaml").display())),
        "{err}"
    );
}

#[test]
fn check_rules_reports_each_file() {
    let good = fixtures().join("rules/plain/kubePrometheus.yaml");
    let bad = fixtures().join("rules/rulefmt/bad_field.bad.yaml");
    let output = run(&[
        "check",
        "rules",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("SUCCESS: 12 rules found"),
        "{}",
        stdout(&output)
    );
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!("{}:8:9: ", bad.display())),
        "{err}"
    );
    assert!(err.contains("unknown field `annotation`"), "{err}");

    let output = run(&["check", "rules", good.to_str().unwrap()]);
    assert!(output.status.success());
}

#[test]
fn config_default_prints_a_config_that_checks() {
    let output = run(&["config", "default"]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert_eq!(text, sightline_core::config::DEFAULT_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "default.yml", &text);
    let check = run(&["check", "config", path.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn version_names_the_build() {
    let output = run(&["version"]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "sightline, version {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains("rustc version: rustc "), "{text}");
}

#[test]
fn output_to_a_reader_that_stopped_reading_is_not_a_crash() {
    for args in [&["version"][..], &["config", "default"]] {
        // The read end is closed before the child writes: its write meets a broken pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(binary())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[test]
fn check_rules_reports_a_template_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "rules.yaml",
        "groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: up == 0\n        annotations:\n          summary: '{{ if }}'\n",
    );
    let output = run(&["check", "rules", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!(
            "{}: group \"g\", rule 1, \"Broken\": annotation \"summary\": ",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn check_rules_logql_reports_bad_expressions_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(
        dir.path(),
        "good.yaml",
        "groups:\n  - name: logs\n    rules:\n      - alert: Errors\n        expr: sum(count_over_time({app=\"a\"} |= \"error\" [5m])) > 10\n",
    );
    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "groups:\n  - name: logs\n    rules:\n      - alert: Lines\n        expr: '{app=\"a\"} |= \"error\"'\n      - record: broken\n        expr: count_over_time({app=\"a\"}[5m]\n",
    );
    let output = run(&["check", "rules", "--logql", good.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("SUCCESS: 1 rules found"));

    let output = run(&["check", "rules", "--logql", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{}:5:15: ", bad.display()))
            && err.contains("needs a metric query such as count_over_time"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:7:15: ", bad.display())) && err.contains("parse error"),
        "{err}"
    );
    // The same file is a PromQL error as a Prometheus rule file.
    let output = run(&["check", "rules", good.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
}

fn test_rules(file: &Path) -> Output {
    run(&["test", "rules", file.to_str().unwrap()])
}

#[test]
fn test_rules_runs_promtool_test_files_unchanged() {
    let fixture = fixtures().join("rules/unittest/kube-state-metrics/tests/rules/alerts-test.yaml");
    let output = test_rules(&fixture);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(stdout(&output).contains("SUCCESS"));
}

#[test]
fn test_rules_reports_a_broken_expectation_as_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("rules/unittest/kube-state-metrics");
    std::fs::create_dir_all(dir.path().join("examples/prometheus-alerting-rules")).unwrap();
    std::fs::create_dir_all(dir.path().join("tests/rules")).unwrap();
    std::fs::copy(
        source.join("examples/prometheus-alerting-rules/alerts.yaml"),
        dir.path()
            .join("examples/prometheus-alerting-rules/alerts.yaml"),
    )
    .unwrap();
    let tests = std::fs::read_to_string(source.join("tests/rules/alerts-test.yaml")).unwrap();
    let broken = tests.replacen("severity: critical", "severity: warning", 1);
    assert_ne!(broken, tests);
    let file = write_file(&dir.path().join("tests/rules"), "alerts-test.yaml", &broken);
    let output = test_rules(&file);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains("FAILED:"), "{out}");
    assert!(
        out.contains("alertname: KubeStateMetricsShardingMismatch, time: 25m")
            && out.contains("exp:[")
            && out.contains("got:[")
            && out.contains(r#"severity="warning""#)
            && out.contains(r#"severity="critical""#),
        "{out}"
    );
}

#[test]
fn builtin_rules_pass_their_unit_tests_and_a_changed_threshold_fails_them() {
    let builtin = common::package_path("alerting/builtin");
    let output = test_rules(&builtin.join("homelab.rules.test.yaml"));
    assert!(output.status.success(), "{}", stdout(&output));

    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(builtin.join("homelab.rules.yaml")).unwrap();
    write_file(
        dir.path(),
        "homelab.rules.yaml",
        &rules.replace("> 90\n", "> 96\n"),
    );
    std::fs::copy(
        builtin.join("homelab.rules.test.yaml"),
        dir.path().join("homelab.rules.test.yaml"),
    )
    .unwrap();
    let output = test_rules(&dir.path().join("homelab.rules.test.yaml"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("alertname: NodeFilesystemSpaceFillingUp, time: 40m"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn builtin_log_rules_pass_their_unit_tests_and_a_changed_threshold_fails_them() {
    let builtin = common::package_path("alerting/builtin");
    let output = test_rules(&builtin.join("homelab.log-rules.test.yaml"));
    assert!(output.status.success(), "{}", stdout(&output));

    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(builtin.join("homelab.log-rules.yaml")).unwrap();
    let changed = rules.replace(") > 100\n", ") > 200\n");
    assert_ne!(changed, rules);
    write_file(dir.path(), "homelab.log-rules.yaml", &changed);
    std::fs::copy(
        builtin.join("homelab.log-rules.test.yaml"),
        dir.path().join("homelab.log-rules.test.yaml"),
    )
    .unwrap();
    let output = test_rules(&dir.path().join("homelab.log-rules.test.yaml"));
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.contains("alertname: LogErrorBurst, time: 15m") && out.contains("got:[]"),
        "{out}"
    );
}
