//! PrometheusRule objects from Kubernetes become rule groups: a local fake API server
//! speaking real list/watch JSON serves them; creating, changing and deleting objects changes
//! `/api/v1/rules` without a restart, and the groups of an unchanged object keep their state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;
#[path = "../scraper/tests/kubernetes_fake/mod.rs"]
mod kubernetes_fake;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Appliance, get_json, write_file};
use kubernetes_fake::FakeApi;
use serde_json::{Value, json};

fn prometheus_rule(namespace: &str, name: &str, labels: Value, groups: Value) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"groups": groups},
    })
}

/// Rule names by group file, from `/api/v1/rules`.
fn rules_by_file(app: &Appliance) -> BTreeMap<String, Vec<String>> {
    let answer = get_json(app, "/api/v1/rules");
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in answer["data"]["groups"].as_array().unwrap() {
        let names = group["rules"].as_array().unwrap().iter();
        files
            .entry(group["file"].as_str().unwrap().to_owned())
            .or_default()
            .extend(names.map(|rule| rule["name"].as_str().unwrap().to_owned()));
    }
    files
}

fn wait_for(app: &Appliance, what: &str, check: impl Fn(&BTreeMap<String, Vec<String>>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let files = rules_by_file(app);
        if check(&files) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {files:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `activeAt` of alert `name`'s first active alert.
fn active_at(app: &Appliance, name: &str) -> Option<String> {
    let answer = get_json(app, "/api/v1/alerts");
    answer["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["labels"]["alertname"] == name)
        .map(|alert| alert["activeAt"].as_str().unwrap().to_owned())
}

#[test]
fn prometheus_rules_from_kubernetes_follow_the_cluster() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(FakeApi::start());
    let selected = json!({"role": "alert-rules"});
    api.apply(prometheus_rule(
        "monitoring",
        "node",
        selected.clone(),
        json!([{"name": "node", "rules": [
            {"alert": "NodeSlow", "expr": "vector(1)", "for": "1h"},
        ]}]),
    ));
    api.apply(prometheus_rule(
        "media",
        "jellyfin",
        selected.clone(),
        json!([{"name": "jellyfin", "rules": [
            {"record": "jellyfin:up", "expr": "vector(1)"},
        ]}]),
    ));
    // Not selected by the rule selector.
    api.apply(prometheus_rule(
        "media",
        "other",
        json!({"role": "something-else"}),
        json!([{"name": "other", "rules": [{"record": "other:up", "expr": "vector(1)"}]}]),
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "global: {{evaluation_interval: 1s}}\nbuiltin_rules: {{enabled: false}}\nkubernetes:\n  api_server: {}\n  rule_selector: {{role: alert-rules}}\n",
            api.url
        ),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );

    wait_for(&app, "both selected objects load", |files| {
        files.get("prometheusrule/monitoring/node") == Some(&vec!["NodeSlow".to_owned()])
            && files.get("prometheusrule/media/jellyfin") == Some(&vec!["jellyfin:up".to_owned()])
            && !files.contains_key("prometheusrule/media/other")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let pending_since = loop {
        if let Some(at) = active_at(&app, "NodeSlow") {
            break at;
        }
        assert!(Instant::now() < deadline, "NodeSlow never became pending");
        std::thread::sleep(Duration::from_millis(200));
    };

    // A changed object replaces its groups; the other object's alert keeps its state.
    api.apply(prometheus_rule(
        "media",
        "jellyfin",
        selected.clone(),
        json!([{"name": "jellyfin", "rules": [
            {"record": "jellyfin:up", "expr": "vector(1)"},
            {"alert": "JellyfinDown", "expr": "vector(0) > 1"},
        ]}]),
    ));
    wait_for(&app, "the changed object reloads", |files| {
        files.get("prometheusrule/media/jellyfin").map(Vec::len) == Some(2)
    });
    assert_eq!(active_at(&app, "NodeSlow"), Some(pending_since));

    // A deleted object's groups go away.
    api.delete(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "media",
        "jellyfin",
    );
    wait_for(&app, "the deleted object unloads", |files| {
        !files.contains_key("prometheusrule/media/jellyfin")
            && files.contains_key("prometheusrule/monitoring/node")
    });

    // An invalid object is left out with a log line; the others stay.
    api.apply(prometheus_rule(
        "media",
        "broken",
        selected,
        json!([{"name": "broken", "rules": [{"alert": "Broken", "expr": "sum(("}]}]),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .log()
        .iter()
        .any(|line| line.contains("PrometheusRule left out") && line.contains("broken"))
    {
        assert!(Instant::now() < deadline, "{:#?}", app.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(rules_by_file(&app).contains_key("prometheusrule/monitoring/node"));
}
