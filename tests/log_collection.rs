//! Log collection in the running appliance (`log_collection:`): files tailed with their
//! labels, drop rules, exactly once across a `kill -9` (positions in the data directory);
//! pod logs under a `/var/log/pods` layout labelled with namespace, pod, container, node and
//! the `app` label of the pod, read from a local fake Kubernetes API server speaking real
//! list/watch JSON, which is asked for this node's pods only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;
#[path = "../scraper/tests/kubernetes_fake/mod.rs"]
mod kubernetes_fake;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use common::{Appliance, get_json, scraping_appliance_with, write_file};
use kubernetes_fake::FakeApi;
use serde_json::{Value, json};

fn append(path: &Path, lines: &[String]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// `(stream labels, line)` of every entry `query` selects in the last hour, oldest first.
fn entries(app: &Appliance, query: &str) -> Vec<(Value, String)> {
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let path = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&direction=forward&limit=1000",
        url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>(),
        now - 3_600_000_000_000,
        now + 60_000_000_000
    );
    let answer = get_json(app, &path);
    let mut out: Vec<(String, Value, String)> = Vec::new();
    for stream in answer["data"]["result"].as_array().unwrap() {
        for value in stream["values"].as_array().unwrap() {
            out.push((
                value[0].as_str().unwrap().to_owned(),
                stream["stream"].clone(),
                value[1].as_str().unwrap().to_owned(),
            ));
        }
    }
    out.sort_by_key(|(ts, _, _)| ts.parse::<i128>().unwrap());
    out.into_iter()
        .map(|(_, labels, line)| (labels, line))
        .collect()
}

fn wait_for_lines(app: &Appliance, query: &str, count: usize) -> Vec<(Value, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = entries(app, query);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: {count} lines expected, got {found:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn files_are_tailed_with_their_labels_once_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("var-log").join("app.log");
    append(
        &log,
        &["line 1".into(), "GET /healthz 200".into(), "line 2".into()],
    );
    let extra = format!(
        "log_collection:\n  poll_interval: 200ms\n  files:\n    - paths: ['{}/*.log']\n      labels: {{job: varlogs}}\n  drop:\n    - labels: {{job: varlogs}}\n      expression: healthz\n",
        log.parent().unwrap().display()
    );
    let mut app = scraping_appliance_with(dir.path(), &extra);
    let found = wait_for_lines(&app, "{job=\"varlogs\"}", 2);
    let lines: Vec<&str> = found.iter().map(|(_, line)| line.as_str()).collect();
    assert_eq!(lines, ["line 1", "line 2"], "the healthz line is dropped");
    assert_eq!(
        found[0].0,
        json!({"job": "varlogs", "filename": log.to_str().unwrap()})
    );
    let metrics = app.wait_for_metric("sightline_tailer_dropped_lines_total");
    assert!(metrics.ends_with(" 1"), "{metrics}");

    // Killed without a chance to save anything: the positions saved after each stored
    // batch are what the restart resumes from.
    app.signal("KILL");
    assert!(app.wait_for_exit(Duration::from_secs(10)).is_some());
    append(&log, &["line 3".into(), "line 4".into()]);
    let listen = app.address.to_string();
    let config = dir.path().join("sightline.yml");
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap(), "--listen", &listen],
    );
    wait_for_lines(&app, "{job=\"varlogs\"}", 4);
    std::thread::sleep(Duration::from_millis(600));
    let lines: Vec<String> = entries(&app, "{job=\"varlogs\"}")
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"]);
}

fn pod(namespace: &str, name: &str, node: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "main"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    })
}

/// A CRI line (`<time> <stream> <P|F> <content>`) stamped now.
fn cri(tag: &str, content: &str) -> String {
    format!(
        "{} stdout {tag} {content}",
        Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
}

/// The appliance tailing `<dir>/pods` as node `node-a` every 200 ms, with the pods' labels
/// from the API at `api_server`; `extra` adds `log_collection` keys (indented by 2).
fn pod_log_appliance(dir: &Path, api_server: &str, extra: &str) -> Appliance {
    let config = write_file(
        dir,
        "sightline.yml",
        &format!(
            "kubernetes:\n  api_server: {api_server}\nlog_collection:\n  pods_root: {}\n  node_name: node-a\n  poll_interval: 200ms\n{extra}",
            dir.join("pods").display()
        ),
    );
    Appliance::start(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

#[test]
fn pod_logs_carry_the_pods_labels_from_the_api() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(FakeApi::start());
    api.apply(pod(
        "media",
        "jellyfin-0",
        "node-a",
        json!({"app.kubernetes.io/name": "jellyfin"}),
    ));
    api.apply(pod("shop", "web-1", "node-b", json!({"app": "web"})));
    api.apply(pod(
        "kube-system",
        "coredns-1",
        "node-a",
        json!({"app": "coredns"}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    append(
        &pods.join("media_jellyfin-0_uid-jellyfin-0/jellyfin/0.log"),
        &[cri("P", "transcode "), cri("F", "started")],
    );
    // On another node in the API: no `app` label comes from there.
    append(
        &pods.join("shop_web-1_uid-web-1/web/0.log"),
        &[cri("F", "GET /cart")],
    );
    append(
        &pods.join("kube-system_coredns-1_uid-coredns-1/coredns/0.log"),
        &[cri("F", "GET /healthz 200"), cri("F", "serving DNS")],
    );
    let app = pod_log_appliance(
        dir.path(),
        &api.url,
        "  drop:\n    - labels: {namespace: kube-system}\n      expression: 'GET /healthz'\n",
    );
    let media = wait_for_lines(&app, "{namespace=\"media\"}", 1);
    assert_eq!(
        media,
        [(
            json!({"namespace": "media", "pod": "jellyfin-0", "container": "jellyfin",
                   "node": "node-a", "app": "jellyfin", "stream": "stdout"}),
            "transcode started".to_owned()
        )],
        "partial lines are joined, and the pod's labels come from the API"
    );
    let shop = wait_for_lines(&app, "{namespace=\"shop\"}", 1);
    assert!(shop[0].0.get("app").is_none(), "{shop:?}");
    let dns = wait_for_lines(&app, "{namespace=\"kube-system\"}", 1);
    std::thread::sleep(Duration::from_millis(600));
    let dns_lines: Vec<String> = entries(&app, "{namespace=\"kube-system\"}")
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(dns_lines, ["serving DNS"], "{dns:?}");
    assert_eq!(dns[0].0["app"], "coredns");
}

#[test]
fn pod_logs_are_read_without_app_labels_when_the_api_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    append(
        &pods.join("media_jellyfin-0_uid-jellyfin-0/jellyfin/0.log"),
        &[cri("F", "started")],
    );
    // Nothing listens on the API port: the first list never comes.
    let closed = common::free_port();
    let app = pod_log_appliance(
        dir.path(),
        &format!("http://127.0.0.1:{closed}"),
        "  pod_labels_wait: 1s\n",
    );
    let media = wait_for_lines(&app, "{namespace=\"media\"}", 1);
    assert_eq!(
        media,
        [(
            json!({"namespace": "media", "pod": "jellyfin-0", "container": "jellyfin",
                   "node": "node-a", "stream": "stdout"}),
            "started".to_owned()
        )]
    );
    assert!(
        app.log()
            .iter()
            .any(|line| line.contains("did not list this node's pods within 1s")),
        "{:#?}",
        app.log()
    );
}
