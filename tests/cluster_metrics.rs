//! Built-in cluster metrics: a local fake Kubernetes API server speaking real list/watch JSON
//! holds a small cluster with something wrong in every kind (a crash-looping pod, a
//! deployment short of replicas, a NotReady node, a failed job and volume, …). The appliance
//! renders kube-state-metrics' series on `/metrics/cluster`, scrapes them as job
//! `kube-state-metrics`, and the kube-prometheus fixture rules, run unchanged, find exactly
//! what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;
#[path = "../scraper/tests/kubernetes_fake/mod.rs"]
mod kubernetes_fake;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Appliance, get_json, http, scraping_appliance_with};
use kubernetes_fake::FakeApi;
use serde_json::{Value, json};

/// Relative to the package root, where cargo runs tests.
const RULES: &str = "../shared/fixtures/rules/crd/kubernetesControlPlane-prometheusRule.yaml";

/// Relative to the package root, where cargo runs tests.
const KUBE_STATE_RULES: &str = "../shared/fixtures/rules/crd/kubeStateMetrics-prometheusRule.yaml";

fn meta(namespace: &str, name: &str) -> Value {
    json!({"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
           "creationTimestamp": "2026-12-01T10:00:00Z"})
}

fn owned(namespace: &str, name: &str, kind: &str, owner: &str) -> Value {
    let mut meta = meta(namespace, name);
    meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
                                      "uid": format!("uid-{owner}"), "controller": true}]);
    meta
}

/// A small homelab cluster with one problem per kind.
fn cluster() -> Vec<Value> {
    let ready = |status: &str| json!({"type": "Ready", "status": status});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "media"},
               "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "node-a", "labels": {"node-role.kubernetes.io/control-plane": ""}},
               "spec": {"podCIDR": "10.42.0.0/24"},
               "status": {"conditions": [ready("True"), {"type": "MemoryPressure", "status": "False"}],
                          "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                          "allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110"},
                          "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
                          "nodeInfo": {"kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12",
                                       "containerRuntimeVersion": "containerd://1.7", "kubeletVersion": "v1.33.1",
                                       "kubeProxyVersion": "v1.33.1", "machineID": "m", "systemUUID": "u",
                                       "bootID": "b", "operatingSystem": "linux", "architecture": "amd64"}}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-b"},
               "spec": {"unschedulable": false,
                        "taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]},
               "status": {"conditions": [ready("False")]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "jellyfin", "namespace": "media", "generation": 3},
               "spec": {"replicas": 2, "selector": {}, "template": {}},
               "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                          "unavailableReplicas": 1, "updatedReplicas": 2, "observedGeneration": 3,
                          "conditions": [{"type": "Available", "status": "False"},
                                         {"type": "Progressing", "status": "True"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": owned("media", "jellyfin-7d9f", "Deployment", "jellyfin"),
               "spec": {"replicas": 2, "selector": {}}, "status": {"replicas": 2, "readyReplicas": 1}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": owned("media", "jellyfin-7d9f-abcde", "ReplicaSet", "jellyfin-7d9f"),
               "spec": {"nodeName": "node-a", "containers": [{"name": "jellyfin", "image": "jellyfin/jellyfin:10.10",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}]},
               "status": {"phase": "Running", "podIP": "10.42.0.7", "hostIP": "192.168.1.10",
                          "conditions": [ready("True")],
                          "containerStatuses": [{"name": "jellyfin", "ready": true, "restartCount": 0,
                                                 "image": "docker.io/jellyfin/jellyfin:10.10", "imageID": "sha256:1",
                                                 "state": {"running": {"startedAt": "2026-12-01T10:00:05Z"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": owned("media", "jellyfin-7d9f-fghij", "ReplicaSet", "jellyfin-7d9f"),
               "spec": {"containers": [{"name": "jellyfin", "image": "jellyfin/jellyfin:10.10",
                        "resources": {"requests": {"cpu": "500m"}}}]},
               "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                              "reason": "Unschedulable"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "sonarr", "namespace": "media", "generation": 1},
               "spec": {"replicas": 1, "selector": {}, "serviceName": "sonarr", "template": {}},
               "status": {"replicas": 1, "readyReplicas": 0, "currentReplicas": 1, "updatedReplicas": 1,
                          "observedGeneration": 1, "currentRevision": "sonarr-abc", "updateRevision": "sonarr-abc"}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": owned("media", "sonarr-0", "StatefulSet", "sonarr"),
               "spec": {"nodeName": "node-a", "containers": [{"name": "sonarr", "image": "linuxserver/sonarr"}]},
               "status": {"phase": "Running", "conditions": [ready("False")],
                          "containerStatuses": [{"name": "sonarr", "ready": false, "restartCount": 7,
                                                 "image": "linuxserver/sonarr", "imageID": "sha256:2",
                                                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                                 "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "sightline", "namespace": "monitoring", "generation": 1},
               "spec": {"selector": {}, "template": {}},
               "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberAvailable": 1,
                          "numberMisscheduled": 0, "numberReady": 1, "numberUnavailable": 1,
                          "updatedNumberScheduled": 2, "observedGeneration": 1}}),
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": owned("media", "backup-123", "CronJob", "backup"),
               "spec": {"template": {}, "completions": 1, "parallelism": 1},
               "status": {"failed": 1, "startTime": "2026-12-01T03:00:00Z",
                          "conditions": [{"type": "Failed", "status": "True"}]}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("media", "config"),
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path", "volumeName": "pv-1",
                        "resources": {"requests": {"storage": "10Gi"}}},
               "status": {"phase": "Bound"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
               "spec": {"capacity": {"storage": "10Gi"}, "storageClassName": "local-path",
                        "hostPath": {"path": "/srv/config"},
                        "claimRef": {"namespace": "media", "name": "config"}},
               "status": {"phase": "Bound"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-2"},
               "spec": {"capacity": {"storage": "1Gi"}}, "status": {"phase": "Failed"}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "jellyfin", "namespace": "media", "generation": 1},
               "spec": {"minReplicas": 1, "maxReplicas": 3,
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "jellyfin"}},
               "status": {"currentReplicas": 2, "desiredReplicas": 3}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "jellyfin", "namespace": "media"},
               "status": {"currentHealthy": 1, "desiredHealthy": 2, "disruptionsAllowed": 0, "expectedPods": 2}}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("media", "quota"),
               "status": {"hard": {"requests.cpu": "4"}, "used": {"requests.cpu": "1500m"}}}),
    ]
}

/// `/metrics/cluster` once it shows every kind of the cluster.
fn cluster_text(app: &Appliance) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = http()
            .get(app.url("/metrics/cluster"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if text.contains("kube_resourcequota{")
            && text.contains("kube_pod_container_status_waiting_reason{")
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "cluster metrics incomplete:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `expr` of the kubernetes fixture rule named `name` (an alert or a recording rule).
fn fixture_expr(name: &str) -> String {
    rule_expr(RULES, name)
}

/// The `expr` of the kube-state-metrics fixture alert named `name`.
fn kube_state_rule(name: &str) -> String {
    rule_expr(KUBE_STATE_RULES, name)
}

/// The `expr` of the rule named `name` in the PrometheusRule file `path`.
fn rule_expr(path: &str, name: &str) -> String {
    let rule_file: Value = yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    rule_file["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .find(|rule| rule["alert"] == name || rule["record"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {path}"))["expr"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `label` of every series `expr` returns now.
fn query_label(app: &Appliance, expr: &str, label: &str) -> BTreeSet<String> {
    let path = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(expr.as_bytes()).collect::<String>()
    );
    let answer = get_json(app, &path);
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| series["metric"][label].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn kube_state_series_feed_the_kube_prometheus_rules() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(FakeApi::start());
    for object in cluster() {
        api.apply(object);
    }
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance_with(
        dir.path(),
        &format!(
            "  - job_name: kube-state-metrics\n    honor_labels: true\n    scrape_interval: 1s\n    metrics_path: /metrics/cluster\n    static_configs: [{{targets: ['127.0.0.1:{{port}}']}}]\nbuiltin_rules: {{enabled: false}}\nkubernetes:\n  api_server: {}\n  prometheus_rules: false\n  dashboards: false\n",
            api.url
        ),
    );

    // kube-state-metrics' names, labels and units.
    let text = cluster_text(&app);
    for line in [
        r#"kube_pod_info{namespace="media",pod="jellyfin-7d9f-abcde",uid="uid-jellyfin-7d9f-abcde",host_ip="192.168.1.10",pod_ip="10.42.0.7",node="node-a",created_by_kind="ReplicaSet",created_by_name="jellyfin-7d9f",priority_class="",host_network="false"} 1"#,
        r#"kube_pod_owner{namespace="media",pod="sonarr-0",uid="uid-sonarr-0",owner_kind="StatefulSet",owner_name="sonarr",owner_is_controller="true"} 1"#,
        r#"kube_pod_created{namespace="media",pod="sonarr-0",uid="uid-sonarr-0"} 1796119200"#,
        r#"kube_pod_status_phase{namespace="media",pod="jellyfin-7d9f-fghij",uid="uid-jellyfin-7d9f-fghij",phase="Pending"} 1"#,
        r#"kube_pod_status_phase{namespace="media",pod="jellyfin-7d9f-fghij",uid="uid-jellyfin-7d9f-fghij",phase="Running"} 0"#,
        r#"kube_pod_status_ready{namespace="media",pod="sonarr-0",uid="uid-sonarr-0",condition="false"} 1"#,
        r#"kube_pod_status_scheduled{namespace="media",pod="jellyfin-7d9f-fghij",uid="uid-jellyfin-7d9f-fghij",condition="false"} 1"#,
        r#"kube_pod_container_status_waiting_reason{namespace="media",pod="sonarr-0",uid="uid-sonarr-0",container="sonarr",reason="CrashLoopBackOff"} 1"#,
        r#"kube_pod_container_status_last_terminated_reason{namespace="media",pod="sonarr-0",uid="uid-sonarr-0",container="sonarr",reason="Error"} 1"#,
        r#"kube_pod_container_status_restarts_total{namespace="media",pod="sonarr-0",uid="uid-sonarr-0",container="sonarr"} 7"#,
        r#"kube_pod_container_status_running{namespace="media",pod="jellyfin-7d9f-abcde",uid="uid-jellyfin-7d9f-abcde",container="jellyfin"} 1"#,
        r#"kube_pod_container_resource_requests{namespace="media",pod="jellyfin-7d9f-abcde",uid="uid-jellyfin-7d9f-abcde",container="jellyfin",node="node-a",resource="cpu",unit="core"} 0.5"#,
        r#"kube_pod_container_resource_requests{namespace="media",pod="jellyfin-7d9f-abcde",uid="uid-jellyfin-7d9f-abcde",container="jellyfin",node="node-a",resource="memory",unit="byte"} 1073741824"#,
        r#"kube_pod_container_resource_limits{namespace="media",pod="jellyfin-7d9f-abcde",uid="uid-jellyfin-7d9f-abcde",container="jellyfin",node="node-a",resource="memory",unit="byte"} 2147483648"#,
        r#"kube_node_info{node="node-a",kernel_version="6.1.0",os_image="Debian GNU/Linux 12",container_runtime_version="containerd://1.7",kubelet_version="v1.33.1",kubeproxy_version="v1.33.1",provider_id="",pod_cidr="10.42.0.0/24",system_uuid="u",internal_ip="192.168.1.10"} 1"#,
        r#"kube_node_role{node="node-a",role="control-plane"} 1"#,
        r#"kube_node_status_condition{node="node-b",condition="Ready",status="false"} 1"#,
        r#"kube_node_status_condition{node="node-b",condition="Ready",status="true"} 0"#,
        r#"kube_node_status_allocatable{node="node-a",resource="cpu",unit="core"} 3.8"#,
        r#"kube_node_status_capacity{node="node-a",resource="pods",unit="integer"} 110"#,
        r#"kube_node_spec_unschedulable{node="node-b"} 0"#,
        r#"kube_node_spec_taint{node="node-b",key="node.kubernetes.io/unreachable",value="",effect="NoSchedule"} 1"#,
        r#"kube_deployment_spec_replicas{namespace="media",deployment="jellyfin"} 2"#,
        r#"kube_deployment_status_replicas_available{namespace="media",deployment="jellyfin"} 1"#,
        r#"kube_deployment_status_condition{namespace="media",deployment="jellyfin",condition="Available",status="false"} 1"#,
        r#"kube_deployment_metadata_generation{namespace="media",deployment="jellyfin"} 3"#,
        r#"kube_replicaset_owner{namespace="media",replicaset="jellyfin-7d9f",owner_kind="Deployment",owner_name="jellyfin",owner_is_controller="true"} 1"#,
        r#"kube_statefulset_status_replicas_ready{namespace="media",statefulset="sonarr"} 0"#,
        r#"kube_statefulset_status_update_revision{namespace="media",statefulset="sonarr",revision="sonarr-abc"} 1"#,
        r#"kube_daemonset_status_number_unavailable{namespace="monitoring",daemonset="sightline"} 1"#,
        r#"kube_job_owner{namespace="media",job_name="backup-123",owner_kind="CronJob",owner_name="backup",owner_is_controller="true"} 1"#,
        r#"kube_job_failed{namespace="media",job_name="backup-123",condition="true"} 1"#,
        r#"kube_job_status_start_time{namespace="media",job_name="backup-123"} 1796094000"#,
        r#"kube_persistentvolumeclaim_info{namespace="media",persistentvolumeclaim="config",storageclass="local-path",volumename="pv-1",volumemode=""} 1"#,
        r#"kube_persistentvolumeclaim_status_phase{namespace="media",persistentvolumeclaim="config",phase="Bound"} 1"#,
        r#"kube_persistentvolumeclaim_resource_requests_storage_bytes{namespace="media",persistentvolumeclaim="config"} 10737418240"#,
        r#"kube_persistentvolumeclaim_access_mode{namespace="media",persistentvolumeclaim="config",access_mode="ReadWriteOnce"} 1"#,
        r#"kube_persistentvolume_status_phase{persistentvolume="pv-2",phase="Failed"} 1"#,
        r#"kube_persistentvolume_claim_ref{persistentvolume="pv-1",claim_namespace="media",name="config"} 1"#,
        r#"kube_horizontalpodautoscaler_status_desired_replicas{namespace="media",horizontalpodautoscaler="jellyfin"} 3"#,
        r#"kube_horizontalpodautoscaler_spec_max_replicas{namespace="media",horizontalpodautoscaler="jellyfin"} 3"#,
        r#"kube_poddisruptionbudget_status_desired_healthy{namespace="media",poddisruptionbudget="jellyfin"} 2"#,
        r#"kube_resourcequota{namespace="media",resourcequota="quota",resource="requests.cpu",type="used"} 1.5"#,
        r#"kube_namespace_status_phase{namespace="media",phase="Active"} 1"#,
        r#"kube_state_metrics_total_shards 1"#,
        r#"kube_state_metrics_shard_ordinal{shard_ordinal="0"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line}\nin:\n{text}"
        );
    }

    // Every kind was listed, and its watch started.
    for kind in [
        "pods",
        "nodes",
        "deployments",
        "jobs",
        "persistentvolumes",
        "resourcequotas",
    ] {
        for family in [
            "kube_state_metrics_list_total",
            "kube_state_metrics_watch_total",
        ] {
            let prefix = format!(r#"{family}{{resource="{kind}",result="success"}} "#);
            let count: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix}"))
                .parse()
                .unwrap();
            assert!(count >= 1.0, "{prefix}{count}");
        }
    }

    // Scraped as job kube-state-metrics, the fixture rules run unchanged and find what is wrong.
    let deadline = Instant::now() + Duration::from_secs(20);
    while query_label(&app, "kube_resourcequota", "resourcequota").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the kube-state-metrics job stored nothing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The scrape that stored the quota may predate other kinds' first lists (the watches
    // start together): each alert gets until a later scrape has them.
    let fires = |alert: &str, label: &str, expected: &[&str]| {
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = query_label(&app, &fixture_expr(alert), label);
            if found == expected || Instant::now() >= deadline {
                assert_eq!(found, expected, "{alert}");
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    fires("KubePodCrashLooping", "pod", &["sonarr-0"]);
    fires(
        "KubePodNotReady",
        "pod",
        &["jellyfin-7d9f-fghij", "sonarr-0"],
    );
    fires(
        "KubeDeploymentReplicasMismatch",
        "deployment",
        &["jellyfin"],
    );
    fires(
        "KubeStatefulSetReplicasMismatch",
        "statefulset",
        &["sonarr"],
    );
    fires("KubeDaemonSetRolloutStuck", "daemonset", &["sightline"]);
    fires("KubeJobFailed", "job_name", &["backup-123"]);
    fires(
        "KubeHpaReplicasMismatch",
        "horizontalpodautoscaler",
        &["jellyfin"],
    );
    fires("KubePersistentVolumeErrors", "persistentvolume", &["pv-2"]);
    fires("KubeNodeNotReady", "node", &["node-b"]);
    fires("KubeNodeUnreachable", "node", &["node-b"]);
    // The rules about kube-state-metrics itself stay quiet: no failed list or watch, one shard.
    for alert in [
        "KubeStateMetricsListErrors",
        "KubeStateMetricsWatchErrors",
        "KubeStateMetricsShardingMismatch",
        "KubeStateMetricsShardsMissing",
    ] {
        assert!(
            query_label(&app, &kube_state_rule(alert), "cluster").is_empty(),
            "{alert}"
        );
    }
    // RBAC stops allowing PodDisruptionBudgets: restarting the dropped watch fails, and keeps
    // failing with backoff, which KubeStateMetricsWatchErrors reports.
    api.forbid("/apis/policy/v1/poddisruptionbudgets");
    api.drop_watches();
    let watch_errors = kube_state_rule("KubeStateMetricsWatchErrors");
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_label(&app, &watch_errors, "cluster").is_empty() {
        assert!(
            Instant::now() < deadline,
            "KubeStateMetricsWatchErrors never fired:\n{}",
            cluster_text(&app)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Recording rules the resource dashboards read: requests of pods that are Pending or
    // Running, per namespace.
    let cpu = get_json(
        &app,
        &format!(
            "/api/v1/query?query={}",
            url::form_urlencoded::byte_serialize(
                fixture_expr("namespace_cpu:kube_pod_container_resource_requests:sum").as_bytes()
            )
            .collect::<String>()
        ),
    );
    assert_eq!(
        cpu["data"]["result"][0]["metric"]["namespace"], "media",
        "{cpu}"
    );
    assert_eq!(cpu["data"]["result"][0]["value"][1], "1", "{cpu}");
}
