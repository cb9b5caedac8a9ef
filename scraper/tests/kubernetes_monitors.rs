//! ServiceMonitors and PodMonitors from a fake API server become scrape pools with the
//! targets prometheus-operator would give Prometheus: the kube-prometheus fixtures applied,
//! services and EndpointSlices for two of them, then a PodMonitor added and removed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod kubernetes_fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubernetes_fake::FakeApi;
use serde_json::{Value, json};
use sightline_core::config::Config;
use sightline_core::labels::Labels;
use sightline_scraper::manager::ScrapeManager;
use sightline_tsdb::storage::{Appendable, Appender, CommitSummary, SeriesRef};
use tokio_util::sync::CancellationToken;

/// Storage that forgets everything: these tests look at targets, not samples.
struct NoStorage;

impl Appendable for NoStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(NoStorage)
    }
}

impl Appender for NoStorage {
    fn append(&mut self, _: &Labels, _: i64, _: f64) -> sightline_tsdb::Result<SeriesRef> {
        Ok(0)
    }
    fn append_ref(&mut self, _: SeriesRef, _: i64, _: f64) -> sightline_tsdb::Result<()> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> sightline_tsdb::Result<CommitSummary> {
        Ok(CommitSummary::default())
    }
}

/// The shared fixtures, relative to the package root (where cargo runs tests).
const FIXTURES: &str = "../../shared/fixtures/scrape/kube-prometheus";

fn fixture_monitors() -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-serviceMonitor"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "fixtures: {paths:?}");
    paths
        .iter()
        .map(|p| yaml_serde::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn service(name: &str, labels: Value, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "monitoring", "labels": labels},
           "spec": {"type": "ClusterIP", "clusterIP": "None", "ports": ports}})
}

fn pod(name: &str, ip: &str, labels: Value, containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "monitoring", "labels": labels},
           "spec": {"nodeName": "node-a", "containers": containers},
           "status": {"phase": "Running", "podIP": ip}})
}

fn slice(service: &str, pod: &str, ip: &str, ports: Value) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("{service}-x1"), "namespace": "monitoring",
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-a",
                          "targetRef": {"kind": "Pod", "name": pod, "namespace": "monitoring"}}],
           "ports": ports})
}

/// `(job pool, labels)` of every active target.
fn targets(manager: &ScrapeManager) -> Vec<(String, Labels)> {
    manager
        .active_targets()
        .into_iter()
        .map(|t| (t.scrape_pool, t.target.labels()))
        .collect()
}

async fn wait_for(
    manager: &ScrapeManager,
    what: &str,
    done: impl Fn(&[(String, Labels)]) -> bool,
) -> Vec<(String, Labels)> {
    for _ in 0..200 {
        let now = targets(manager);
        if done(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}; targets: {:#?}",
        targets(manager)
    );
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[tokio::test]
async fn kube_prometheus_service_monitors_become_pools_with_operator_labels() {
    let api = FakeApi::start().await;
    for monitor in fixture_monitors() {
        api.apply(monitor);
    }
    // Not selected: lacks the selector's label.
    api.apply(
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "other", "namespace": "monitoring"},
        "spec": {"endpoints": [{"port": "web"}], "selector": {"matchLabels": {"app": "x"}}}}),
    );

    let node_exporter = json!({"app.kubernetes.io/component": "exporter",
        "app.kubernetes.io/name": "node-exporter", "app.kubernetes.io/part-of": "kube-prometheus"});
    api.apply(service(
        "node-exporter",
        node_exporter.clone(),
        json!([{"name": "https", "port": 9100, "targetPort": "https"}]),
    ));
    api.apply(pod(
        "node-exporter-abcde",
        "192.168.1.10",
        node_exporter,
        json!([{"name": "kube-rbac-proxy", "ports": [{"name": "https", "containerPort": 9100}]}]),
    ));
    api.apply(slice(
        "node-exporter",
        "node-exporter-abcde",
        "192.168.1.10",
        json!([{"name": "https", "port": 9100, "protocol": "TCP"}]),
    ));

    let ksm = json!({"app.kubernetes.io/component": "exporter",
        "app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/part-of": "kube-prometheus"});
    api.apply(service(
        "kube-state-metrics",
        ksm.clone(),
        json!([{"name": "https-main", "port": 8443}, {"name": "https-self", "port": 9443}]),
    ));
    api.apply(pod("kube-state-metrics-0", "10.42.0.7", ksm,
        json!([{"name": "kube-rbac-proxy-main", "ports": [{"name": "https-main", "containerPort": 8443}]},
               {"name": "kube-rbac-proxy-self", "ports": [{"name": "https-self", "containerPort": 9443}]}])));
    api.apply(slice(
        "kube-state-metrics",
        "kube-state-metrics-0",
        "10.42.0.7",
        json!([{"name": "https-main", "port": 8443}, {"name": "https-self", "port": 9443}]),
    ));

    let text = format!(
        "global: {{scrape_interval: 1m}}\nkubernetes:\n  api_server: '{}'\n  monitor_selector: {{app.kubernetes.io/part-of: kube-prometheus}}\n",
        api.url
    );
    let config = Config::parse(Path::new("sightline.yml"), &text).unwrap();
    let manager = Arc::new(ScrapeManager::new(Arc::new(NoStorage), ".".into()));
    let (_config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    let stop = CancellationToken::new();
    tokio::spawn(manager.clone().run(config_rx, stop.clone()));

    let found = wait_for(
        &manager,
        "node-exporter and both kube-state-metrics targets",
        |t| t.len() == 3,
    )
    .await;
    assert_eq!(
        found,
        vec![
            (
                "serviceMonitor/monitoring/kube-state-metrics/0".to_owned(),
                labels(&[
                    ("container", "kube-rbac-proxy-main"),
                    ("instance", "10.42.0.7:8443"),
                    ("job", "kube-state-metrics"),
                ])
            ),
            (
                "serviceMonitor/monitoring/kube-state-metrics/1".to_owned(),
                labels(&[
                    ("container", "kube-rbac-proxy-self"),
                    ("endpoint", "https-self"),
                    ("instance", "10.42.0.7:9443"),
                    ("job", "kube-state-metrics"),
                    ("namespace", "monitoring"),
                    ("pod", "kube-state-metrics-0"),
                    ("service", "kube-state-metrics"),
                ])
            ),
            (
                "serviceMonitor/monitoring/node-exporter/0".to_owned(),
                labels(&[
                    ("container", "kube-rbac-proxy"),
                    ("endpoint", "https"),
                    ("instance", "node-a"),
                    ("job", "node-exporter"),
                    ("namespace", "monitoring"),
                    ("pod", "node-exporter-abcde"),
                    ("service", "node-exporter"),
                ])
            ),
        ]
    );
    let active = manager.active_targets();
    let ksm_main = &active[0];
    assert_eq!(
        ksm_main.target.url().unwrap().as_str(),
        "https://10.42.0.7:8443/metrics"
    );
    assert_eq!(ksm_main.target.interval().to_string(), "30s");
    assert_eq!(ksm_main.target.timeout().to_string(), "30s");

    // A PodMonitor appears, then goes away with its pool.
    api.apply(
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "ksm-pods", "namespace": "monitoring",
                     "labels": {"app.kubernetes.io/part-of": "kube-prometheus"}},
        "spec": {"podMetricsEndpoints": [{"port": "https-self", "interval": "15s"}],
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "kube-state-metrics"}}}}),
    );
    let found = wait_for(&manager, "the PodMonitor's target", |t| t.len() == 4).await;
    let (pool, pod_target) = &found[0];
    assert_eq!(pool, "podMonitor/monitoring/ksm-pods/0", "sorted by pool");
    assert_eq!(
        *pod_target,
        labels(&[
            ("container", "kube-rbac-proxy-self"),
            ("endpoint", "https-self"),
            ("instance", "10.42.0.7:9443"),
            ("job", "monitoring/ksm-pods"),
            ("namespace", "monitoring"),
            ("pod", "kube-state-metrics-0"),
        ])
    );
    api.delete(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        "monitoring",
        "ksm-pods",
    );
    wait_for(&manager, "the PodMonitor's pool to go", |t| t.len() == 3).await;

    // The service's pod goes away: its targets go too.
    api.delete(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "monitoring",
        "node-exporter-x1",
    );
    wait_for(&manager, "node-exporter gone", |t| {
        t.len() == 2 && t.iter().all(|(pool, _)| !pool.contains("node-exporter"))
    })
    .await;
    stop.cancel();
}

/// A target that answers only with the right basic auth; `up` then says the credentials
/// from the Secret were used.
async fn start_protected_target() -> u16 {
    use axum::http::{HeaderMap, StatusCode};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|headers: HeaderMap| async move {
            // "scraper:s3cret"
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Basic c2NyYXBlcjpzM2NyZXQ=")
            {
                (StatusCode::OK, "up_check 1\n")
            } else {
                (StatusCode::UNAUTHORIZED, "")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn basic_auth_comes_from_the_secret_the_monitor_names() {
    let port = start_protected_target().await;
    let api = FakeApi::start().await;
    let app = json!({"app": "guarded"});
    api.apply(service(
        "guarded",
        app.clone(),
        json!([{"name": "web", "port": port}]),
    ));
    api.apply(pod(
        "guarded-0",
        "127.0.0.1",
        app,
        json!([{"name": "app", "ports": [{"name": "web", "containerPort": port}]}]),
    ));
    api.apply(slice(
        "guarded",
        "guarded-0",
        "127.0.0.1",
        json!([{"name": "web", "port": port}]),
    ));
    api.apply(json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "guarded", "namespace": "monitoring", "labels": {"release": "lab"}},
        "spec": {"selector": {"matchLabels": {"app": "guarded"}},
                 "endpoints": [{"port": "web", "interval": "1s",
                                "basicAuth": {"username": {"name": "guarded-auth", "key": "user"},
                                              "password": {"name": "guarded-auth", "key": "pass"}}}]}}));
    let text = format!(
        "kubernetes:\n  api_server: '{}'\n  monitor_selector: {{release: lab}}\n",
        api.url
    );
    let config = Config::parse(Path::new("sightline.yml"), &text).unwrap();
    let manager = Arc::new(ScrapeManager::new(Arc::new(NoStorage), ".".into()));
    let (_config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    let stop = CancellationToken::new();
    tokio::spawn(manager.clone().run(config_rx, stop.clone()));

    // Without the Secret the endpoint is skipped, as the operator skips it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(targets(&manager).is_empty(), "{:?}", targets(&manager));

    // "scraper" / "s3cret", base64 in the Secret's data.
    api.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "guarded-auth", "namespace": "monitoring"},
        "data": {"user": "c2NyYXBlcg==", "pass": "czNjcmV0"}}));
    // The Secret is fetched again within a minute or after a monitor change; change the
    // monitor (a label) to have it now.
    api.apply(json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "guarded", "namespace": "monitoring",
                     "labels": {"release": "lab", "touched": "yes"}},
        "spec": {"selector": {"matchLabels": {"app": "guarded"}},
                 "endpoints": [{"port": "web", "interval": "1s",
                                "basicAuth": {"username": {"name": "guarded-auth", "key": "user"},
                                              "password": {"name": "guarded-auth", "key": "pass"}}}]}}));
    for _ in 0..100 {
        let active = manager.active_targets();
        if active.first().is_some_and(|t| t.status.up) {
            assert_eq!(active[0].scrape_pool, "serviceMonitor/monitoring/guarded/0");
            stop.cancel();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never up: {:?}",
        manager
            .active_targets()
            .iter()
            .map(|t| &t.status)
            .collect::<Vec<_>>()
    );
}

/// Runs a manager on `text` (a config) until `stop` is cancelled.
fn run_manager(text: &str, stop: &CancellationToken) -> Arc<ScrapeManager> {
    let config = Config::parse(Path::new("sightline.yml"), text).unwrap();
    let manager = Arc::new(ScrapeManager::new(Arc::new(NoStorage), ".".into()));
    let (config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    tokio::spawn(manager.clone().run(config_rx, stop.clone()));
    // The sender lives as long as the manager runs.
    tokio::spawn(async move {
        config_tx.closed().await;
    });
    manager
}

#[tokio::test]
async fn every_kind_of_cluster_object_can_be_switched_off() {
    let api = FakeApi::start().await;
    for monitor in fixture_monitors() {
        api.apply(monitor);
    }
    let stop = CancellationToken::new();
    let on = run_manager(
        &format!("kubernetes:\n  api_server: '{}'\n", api.url),
        &stop,
    );
    // With the defaults, the monitors become pools and the cluster's series render.
    let mut waited = 0;
    while on
        .cluster_metrics()
        .is_none_or(|text| !text.contains("kube_state_metrics_list_total"))
    {
        assert!(waited < 200, "cluster metrics never rendered");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();

    let off = FakeApi::start().await;
    for monitor in fixture_monitors() {
        off.apply(monitor);
    }
    let stop = CancellationToken::new();
    let manager = run_manager(
        &format!(
            "kubernetes:\n  api_server: '{}'\n  monitors: false\n  prometheus_rules: false\n  dashboards: false\n  cluster_metrics: false\n",
            off.url
        ),
        &stop,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(targets(&manager).is_empty());
    assert!(manager.cluster_metrics().is_none());
    assert!(manager.dashboards().is_empty());
    assert!(manager.prometheus_rules().is_empty());
    assert_eq!(off.requests(), (0, 0), "nothing is listed or watched");
    stop.cancel();
}
