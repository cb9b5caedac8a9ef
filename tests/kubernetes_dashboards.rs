//! Dashboards from Kubernetes: ConfigMaps labelled `grafana_dashboard: "1"` (kube-prometheus's
//! dashboard definitions, served by a local fake API server speaking real list/watch JSON)
//! show in the dashboard list under their `grafana_folder` annotation or namespace, follow
//! changes and deletions without a restart, and can be switched off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;
#[path = "../scraper/tests/kubernetes_fake/mod.rs"]
mod kubernetes_fake;

use std::time::{Duration, Instant};

use common::{Appliance, get_json, write_file};
use kubernetes_fake::FakeApi;
use serde_json::{Value, json};

/// The ConfigMaps of kube-prometheus's `grafana-dashboardDefinitions.yaml`.
fn fixture_config_maps() -> Vec<Value> {
    let path = common::package_path(
        "../shared/fixtures/dashboards/configmap/grafana-dashboardDefinitions.yaml",
    );
    let text = std::fs::read_to_string(path).unwrap();
    let list: Value = yaml_serde::from_str(&text).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// `(folder, title)` of every dashboard `/api/search` lists, but the built-in ones (the
/// browser test shows those).
fn listed(app: &Appliance) -> Vec<(String, String)> {
    get_json(app, "/api/search")
        .as_array()
        .unwrap()
        .iter()
        .filter(|hit| hit["folderTitle"] != "Sightline")
        .map(|hit| {
            (
                hit["folderTitle"].as_str().unwrap().to_owned(),
                hit["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_for(app: &Appliance, what: &str, check: impl Fn(&[(String, String)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hits = listed(app);
        if check(&hits) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {hits:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn labelled_config_maps_become_dashboards_and_follow_the_cluster() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(FakeApi::start());
    let maps = fixture_config_maps();
    let total = maps.len();
    // Every fixture ConfigMap, labelled as kube-prometheus-stack labels them; the first
    // one also names a folder. One more ConfigMap has the label with another value.
    for (index, map) in maps.iter().enumerate() {
        let mut map = map.clone();
        map["metadata"]["labels"]["grafana_dashboard"] = json!("1");
        if index == 0 {
            map["metadata"]["annotations"] = json!({"grafana_folder": "Alerting"});
        }
        api.apply(map);
    }
    api.apply(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "not-selected", "namespace": "monitoring",
                     "labels": {"grafana_dashboard": "0"}},
        "data": {"other.json": "{\"uid\": \"other\", \"title\": \"Other\", \"panels\": []}"},
    }));

    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!("kubernetes:\n  api_server: {}\n", api.url),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for(&app, "every labelled ConfigMap is a dashboard", |hits| {
        hits.len() == total
    });
    let hits = listed(&app);
    assert!(
        hits.contains(&("Alerting".to_owned(), "Alertmanager / Overview".to_owned())),
        "{hits:#?}"
    );
    assert!(
        hits.iter()
            .filter(|(folder, _)| folder == "monitoring")
            .count()
            == total - 1
    );
    let nodes = get_json(&app, "/api/dashboards/uid/7d57716318ee0dddbac5a7f451fb7753");
    assert_eq!(
        nodes["dashboard"]["title"], "Node Exporter / Nodes",
        "{nodes:#}"
    );
    assert_eq!(nodes["meta"]["provisioned"], true);
    eprintln!("{total} ConfigMap dashboards listed");

    // A change shows without a restart; a deleted ConfigMap's dashboard goes away.
    let mut renamed = maps[0].clone();
    renamed["metadata"]["labels"]["grafana_dashboard"] = json!("1");
    let key = renamed["data"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let text = renamed["data"][&key].as_str().unwrap().replace(
        "\"title\": \"Alertmanager / Overview\"",
        "\"title\": \"Alertmanager / Renamed\"",
    );
    renamed["data"][&key] = json!(text);
    api.apply(renamed);
    wait_for(&app, "the changed ConfigMap", |hits| {
        hits.iter()
            .any(|(_, title)| title == "Alertmanager / Renamed")
    });
    let name = maps[1]["metadata"]["name"].as_str().unwrap();
    api.delete("v1", "ConfigMap", "monitoring", name);
    wait_for(&app, "the deleted ConfigMap", |hits| {
        hits.len() == total - 1
    });
}

#[test]
fn config_map_dashboards_can_be_switched_off() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(FakeApi::start());
    let mut map = fixture_config_maps()[0].clone();
    map["metadata"]["labels"]["grafana_dashboard"] = json!("1");
    api.apply(map);
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "kubernetes:\n  api_server: {}\n  dashboards: false\n",
            api.url
        ),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    // The monitors' watches run (their list requests arrive); no dashboard appears.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.requests().0 == 0 {
        assert!(
            Instant::now() < deadline,
            "no list request reached the API server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(listed(&app), Vec::<(String, String)>::new());
}
