//! `kubernetes_sd_configs` against a fake API server on 127.0.0.1 that speaks the real
//! list/watch JSON: exact `__meta_kubernetes_*` labels, add/modify/delete events, a dropped
//! watch that is resumed and a `410 Gone` that forces a relist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod kubernetes_fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubernetes_fake::FakeApi;
use serde_json::{Value, json};
use sightline_core::config::Config;
use sightline_core::config::scrape::KubernetesSdConfig;
use sightline_core::labels::Labels;
use sightline_scraper::discovery::TargetGroup;
use sightline_scraper::discovery::kubernetes::KubernetesDiscovery;
use tokio::sync::Notify;

fn sd_config(yaml: &str) -> KubernetesSdConfig {
    let text =
        format!("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - {yaml}\n");
    Config::parse(Path::new("t.yml"), &text)
        .unwrap()
        .scrape_configs
        .remove(0)
        .kubernetes_sd_configs
        .remove(0)
}

/// Waits up to 10 s for the discovery's groups to satisfy `done`.
async fn wait_for(
    discovery: &KubernetesDiscovery,
    what: &str,
    done: impl Fn(&[TargetGroup]) -> bool,
) -> Vec<TargetGroup> {
    for _ in 0..200 {
        let groups = discovery.groups();
        if done(&groups) {
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}; groups: {:#?}; error: {:?}",
        discovery.groups(),
        discovery.error()
    );
}

fn addresses(groups: &[TargetGroup]) -> Vec<String> {
    let mut all: Vec<String> = groups
        .iter()
        .flat_map(|g| g.targets.iter())
        .map(|t| t.get("__address__").unwrap_or("").to_owned())
        .collect();
    all.sort();
    all
}

fn pod(namespace: &str, name: &str, ip: &str, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
            "annotations": {"prometheus.io/scrape": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                                 "uid": "rs1", "controller": true}]
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [
                {"name": "app", "image": "nginx:1.27", "ports": ports},
                {"name": "sidecar", "image": "busybox"}
            ]
        },
        "status": {
            "phase": "Running", "podIP": ip, "hostIP": "192.168.1.10",
            "podIPs": [{"ip": ip}, {"ip": "fd00::5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "containerID": "containerd://abc", "image": "nginx:1.27",
                                   "imageID": "", "ready": true, "restartCount": 0}]
        }
    })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[tokio::test]
async fn pod_with_two_ports_and_node_have_prometheus_labels() {
    let api = FakeApi::start().await;
    api.apply(pod(
        "shop",
        "web-1",
        "10.1.0.5",
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"},
               {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]),
    ));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a"},
                     "annotations": {"node.alpha/ttl": "0"}},
        "spec": {"providerID": "k3s://node-a"},
        "status": {
            "addresses": [{"type": "Hostname", "address": "node-a"},
                          {"type": "InternalIP", "address": "192.168.1.10"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let notify = Arc::new(Notify::new());
    let pods = KubernetesDiscovery::spawn(
        &sd_config(&format!(
            "{{role: pod, kubeconfig_file: {}}}",
            kubeconfig.display()
        )),
        dir.path(),
        notify.clone(),
    );
    let nodes = KubernetesDiscovery::spawn(
        &sd_config(&format!("{{role: node, api_server: '{}'}}", api.url)),
        dir.path(),
        notify,
    );

    let groups = wait_for(&pods, "the pod", |g| !g.is_empty()).await;
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.source, "pod/shop/web-1");
    assert_eq!(
        group.labels,
        labels(&[
            ("__meta_kubernetes_namespace", "shop"),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true"
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
                "true"
            ),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            ("__meta_kubernetes_pod_controller_name", "web-5d8f"),
            ("__meta_kubernetes_pod_host_ip", "192.168.1.10"),
            ("__meta_kubernetes_pod_ip", "10.1.0.5"),
            ("__meta_kubernetes_pod_ipv4", "10.1.0.5"),
            ("__meta_kubernetes_pod_ipv6", "fd00::5"),
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"),
            ("__meta_kubernetes_pod_label_tier", "front"),
            (
                "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
                "true"
            ),
            ("__meta_kubernetes_pod_labelpresent_tier", "true"),
            ("__meta_kubernetes_pod_name", "web-1"),
            ("__meta_kubernetes_pod_node_name", "node-a"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_uid", "uid-web-1"),
        ])
    );
    let container = |port: &str, name: &str, protocol: &str| {
        labels(&[
            ("__address__", &format!("10.1.0.5:{port}")),
            ("__meta_kubernetes_pod_container_id", "containerd://abc"),
            ("__meta_kubernetes_pod_container_image", "nginx:1.27"),
            ("__meta_kubernetes_pod_container_init", "false"),
            ("__meta_kubernetes_pod_container_name", "app"),
            ("__meta_kubernetes_pod_container_port_name", name),
            ("__meta_kubernetes_pod_container_port_number", port),
            ("__meta_kubernetes_pod_container_port_protocol", protocol),
        ])
    };
    assert_eq!(
        group.targets,
        vec![
            container("8080", "http", "TCP"),
            container("9100", "metrics", "TCP"),
            labels(&[
                ("__address__", "10.1.0.5"),
                ("__meta_kubernetes_pod_container_image", "busybox"),
                ("__meta_kubernetes_pod_container_init", "false"),
                ("__meta_kubernetes_pod_container_name", "sidecar"),
            ]),
        ]
    );

    let groups = wait_for(&nodes, "the node", |g| !g.is_empty()).await;
    assert_eq!(groups[0].source, "node/node-a");
    assert!(groups[0].labels.is_empty());
    assert_eq!(
        groups[0].targets,
        vec![labels(&[
            ("__address__", "192.168.1.10:10250"),
            ("__meta_kubernetes_node_address_Hostname", "node-a"),
            ("__meta_kubernetes_node_address_InternalIP", "192.168.1.10"),
            ("__meta_kubernetes_node_annotation_node_alpha_ttl", "0"),
            (
                "__meta_kubernetes_node_annotationpresent_node_alpha_ttl",
                "true"
            ),
            (
                "__meta_kubernetes_node_label_kubernetes_io_hostname",
                "node-a"
            ),
            (
                "__meta_kubernetes_node_labelpresent_kubernetes_io_hostname",
                "true"
            ),
            ("__meta_kubernetes_node_name", "node-a"),
            ("__meta_kubernetes_node_provider_id", "k3s://node-a"),
            ("instance", "node-a"),
        ])]
    );
}

#[tokio::test]
async fn follows_changes_resumes_dropped_watches_and_relists_after_gone() {
    let api = FakeApi::start().await;
    let one_port = || json!([{"name": "metrics", "containerPort": 9100}]);
    api.apply(pod("a", "p1", "10.0.0.1", one_port()));
    api.apply(pod("b", "p2", "10.0.0.2", one_port()));
    let discovery = KubernetesDiscovery::spawn(
        &sd_config(&format!(
            "{{role: pod, api_server: '{}', namespaces: {{names: [a, c]}}}}",
            api.url
        )),
        Path::new("."),
        Arc::new(Notify::new()),
    );
    let only = |expected: &'static [&'static str]| {
        move |groups: &[TargetGroup]| {
            addresses(groups)
                .iter()
                .filter(|a| a.contains(':'))
                .map(String::as_str)
                .collect::<Vec<_>>()
                == expected
        }
    };
    wait_for(
        &discovery,
        "p1 only (namespace b not watched)",
        only(&["10.0.0.1:9100"]),
    )
    .await;
    let generation = discovery.generation();
    assert!(generation > 0);

    // ADDED in a watched namespace, MODIFIED, DELETED.
    api.apply(pod("c", "p3", "10.0.0.3", one_port()));
    wait_for(
        &discovery,
        "p3 added",
        only(&["10.0.0.1:9100", "10.0.0.3:9100"]),
    )
    .await;
    api.apply(pod("c", "p3", "10.0.0.33", one_port()));
    wait_for(
        &discovery,
        "p3 modified",
        only(&["10.0.0.1:9100", "10.0.0.33:9100"]),
    )
    .await;
    api.delete("v1", "Pod", "a", "p1");
    wait_for(&discovery, "p1 deleted", only(&["10.0.0.33:9100"])).await;
    assert!(discovery.generation() >= generation + 3);

    // A dropped watch is resumed from its resource version: what happened while it was
    // down arrives as events, without a relist.
    let (lists_before, watches_before) = api.requests();
    api.drop_watches();
    api.apply(pod("a", "p4", "10.0.0.4", one_port()));
    wait_for(
        &discovery,
        "p4 after resume",
        only(&["10.0.0.33:9100", "10.0.0.4:9100"]),
    )
    .await;
    let (lists, watches) = api.requests();
    assert_eq!(lists, lists_before, "a resumed watch does not relist");
    assert!(watches > watches_before);

    // Dropped again after the history was compacted: the resumed watch gets 410 Gone, the
    // client relists, and an object deleted in between is gone although no event said so.
    api.compact();
    api.delete_silently("v1", "Pod", "c", "p3");
    api.drop_watches();
    wait_for(&discovery, "relist after 410", only(&["10.0.0.4:9100"])).await;
    assert!(api.requests().0 > lists);
}

#[tokio::test]
async fn endpointslice_targets_join_pods_and_services() {
    let api = FakeApi::start().await;
    api.apply(pod(
        "shop",
        "web-1",
        "10.1.0.5",
        json!([{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]),
    ));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.9",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }));
    api.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": true},
                       "nodeName": "node-a",
                       "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }));
    let discovery = KubernetesDiscovery::spawn(
        &sd_config(&format!(
            "{{role: endpointslice, api_server: '{}'}}",
            api.url
        )),
        Path::new("."),
        Arc::new(Notify::new()),
    );
    let groups = wait_for(&discovery, "slice joined with pod and service", |g| {
        g.first().is_some_and(|g| {
            g.targets.len() == 2 && g.labels.get("__meta_kubernetes_service_name").is_some()
        })
    })
    .await;
    let group = &groups[0];
    assert_eq!(group.source, "endpointslice/shop/web-abcde");
    assert_eq!(
        group
            .labels
            .get("__meta_kubernetes_endpointslice_address_type"),
        Some("IPv4")
    );
    assert_eq!(
        group.labels.get("__meta_kubernetes_service_label_app"),
        Some("web")
    );
    let first = &group.targets[0];
    for (name, value) in [
        ("__address__", "10.1.0.5:8080"),
        ("__meta_kubernetes_endpointslice_port", "8080"),
        ("__meta_kubernetes_endpointslice_port_name", "http"),
        ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            "node-a",
        ),
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        (
            "__meta_kubernetes_endpointslice_address_target_name",
            "web-1",
        ),
        ("__meta_kubernetes_pod_name", "web-1"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
    ] {
        assert_eq!(first.get(name), Some(value), "{name} in {first}");
    }
    // The pod's other declared port is a target of its own.
    assert_eq!(group.targets[1].get("__address__"), Some("10.1.0.5:9100"));
    assert_eq!(
        group.targets[1].get("__meta_kubernetes_pod_container_port_name"),
        Some("metrics")
    );
    assert_eq!(
        group.targets[1].get("__meta_kubernetes_endpointslice_port"),
        None
    );
}

#[tokio::test]
async fn label_selectors_are_passed_to_the_api_server() {
    let api = FakeApi::start().await;
    let mut selected = pod("a", "web-1", "10.0.0.1", json!([{"containerPort": 80}]));
    selected["metadata"]["labels"] = json!({"app": "web"});
    let mut other = pod("a", "db-1", "10.0.0.2", json!([{"containerPort": 5432}]));
    other["metadata"]["labels"] = json!({"app": "db"});
    api.apply(selected);
    api.apply(other);
    let discovery = KubernetesDiscovery::spawn(
        &sd_config(&format!(
            "{{role: pod, api_server: '{}', selectors: [{{role: pod, label: 'app=web'}}]}}",
            api.url
        )),
        Path::new("."),
        Arc::new(Notify::new()),
    );
    let groups = wait_for(&discovery, "the selected pod", |g| !g.is_empty()).await;
    // Its port, and its port-less sidecar at the bare IP.
    assert_eq!(addresses(&groups), ["10.0.0.1", "10.0.0.1:80"]);
    // A later pod that the selector excludes never shows up.
    let mut later = pod("a", "db-2", "10.0.0.3", json!([{"containerPort": 5432}]));
    later["metadata"]["labels"] = json!({"app": "db"});
    api.apply(later);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(addresses(&discovery.groups()), ["10.0.0.1", "10.0.0.1:80"]);
}

#[tokio::test]
async fn attach_metadata_joins_node_and_namespace_labels() {
    let api = FakeApi::start().await;
    api.apply(pod(
        "shop",
        "web-1",
        "10.1.0.5",
        json!([{"containerPort": 80}]),
    ));
    api.apply(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "attic"}},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "web"}}}));
    let discovery = KubernetesDiscovery::spawn(
        &sd_config(&format!(
            "{{role: pod, api_server: '{}', attach_metadata: {{node: true, namespace: true}}}}",
            api.url
        )),
        Path::new("."),
        Arc::new(Notify::new()),
    );
    let groups = wait_for(&discovery, "node and namespace labels", |g| {
        g.first().is_some_and(|g| {
            g.labels.get("__meta_kubernetes_node_name").is_some()
                && g.labels
                    .get("__meta_kubernetes_namespace_label_team")
                    .is_some()
        })
    })
    .await;
    let labels = &groups[0].labels;
    assert_eq!(labels.get("__meta_kubernetes_node_name"), Some("node-a"));
    assert_eq!(
        labels.get("__meta_kubernetes_node_label_topology_kubernetes_io_zone"),
        Some("attic")
    );
    assert_eq!(
        labels.get("__meta_kubernetes_namespace_labelpresent_team"),
        Some("true")
    );
}

/// Where in-cluster clients find the service account, inside the private mount namespace
/// [`in_cluster_service_account_is_used_without_api_server_or_kubeconfig`] makes.
const SERVICE_ACCOUNT_DIR: &str = "/run/secrets/kubernetes.io/serviceaccount";

/// A CA made for the test, and the rustls configuration of a server certificate it signed
/// for the IP address 127.0.0.1: the CA's PEM and that configuration.
fn certificate_for_localhost() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![server.der().clone()], key)
    .unwrap();
    (ca.pem(), Arc::new(config))
}

/// With neither `api_server` nor `kubeconfig_file`, discovery connects as the pod's service
/// account: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, its CA, token and namespace
/// from the service-account mount. The mount is made in a private mount namespace (`unshare
/// -m`, a tmpfs over /run) for a child process that runs [`in_cluster_child`].
#[tokio::test]
async fn in_cluster_service_account_is_used_without_api_server_or_kubeconfig() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    assert!(
        is_root && Path::new("/usr/bin/unshare").exists(),
        "this test runs a child in a private mount namespace: it needs root and `unshare` \
         (apt-get install util-linux)"
    );
    let (ca_pem, tls) = certificate_for_localhost();
    let api = FakeApi::start_tls(tls).await;
    api.apply(pod(
        "shop",
        "web-1",
        "10.1.0.5",
        json!([{"containerPort": 8080}]),
    ));
    api.apply(pod(
        "other",
        "web-2",
        "10.1.0.6",
        json!([{"containerPort": 8080}]),
    ));
    let account = tempfile::tempdir().unwrap();
    std::fs::write(account.path().join("ca.crt"), ca_pem).unwrap();
    std::fs::write(account.path().join("token"), "service-account-token").unwrap();
    std::fs::write(account.path().join("namespace"), "shop").unwrap();
    let port = api.url.rsplit(':').next().unwrap().to_owned();

    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p {SERVICE_ACCOUNT_DIR} && \
         cp \"$1\"/* {SERVICE_ACCOUNT_DIR}/ && exec \"$2\" in_cluster_child --exact --ignored --nocapture"
    );
    let child = tokio::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(account.path())
        .arg(std::env::current_exe().unwrap())
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the child finishes within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the service account's own namespace (the port-less sidecar is a target too, as in
    // Prometheus), reached with its token.
    assert!(
        stdout.contains(r#"discovered: ["10.1.0.5", "10.1.0.5:8080"]"#),
        "{stdout}"
    );
    assert!(
        api.authorizations()
            .iter()
            .all(|authorization| authorization == "Bearer service-account-token")
            && !api.authorizations().is_empty(),
        "{:?}",
        api.authorizations()
    );
}

/// The child of [`in_cluster_service_account_is_used_without_api_server_or_kubeconfig`]:
/// discovers pods of its own namespace in-cluster and prints their addresses.
#[tokio::test]
#[ignore = "run by in_cluster_service_account_is_used_without_api_server_or_kubeconfig in a private mount namespace"]
async fn in_cluster_child() {
    assert!(
        Path::new(SERVICE_ACCOUNT_DIR).join("token").exists(),
        "only meaningful inside the mount namespace its parent test makes"
    );
    let dir = tempfile::tempdir().unwrap();
    let pods = KubernetesDiscovery::spawn(
        &sd_config("{role: pod, namespaces: {own_namespace: true}}"),
        dir.path(),
        Arc::new(Notify::new()),
    );
    let groups = wait_for(&pods, "the pod of the own namespace", |g| !g.is_empty()).await;
    println!("discovered: {:?}", addresses(&groups));
}
