//! The `pod` role: one target per declared container port, or one per container without
//! ports (address = the pod IP, the port left to relabeling).
//!
//! Follows Prometheus's discovery/kubernetes/pod.go. Init containers are listed after the
//! regular ones with `__meta_kubernetes_pod_container_init="true"`. A pod without an IP yet
//! (pending, evicted) is a group without targets. `_pod_ready` is the Ready condition's status
//! in lower case, `unknown` without one; the controller labels come from the owner reference
//! marked `controller: true`. `_pod_ipv4` / `_pod_ipv6` are the first address of each family
//! in `status.podIPs` (dual stack). Protocols are the object's own (the API server fills in
//! `TCP`), not defaulted here.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use sightline_core::labels::Labels;

use super::{add_object_meta, join_host_port};
use crate::discovery::TargetGroup;

const PREFIX: &str = "__meta_kubernetes_pod";

/// The group of one pod, source `pod/<namespace>/<name>`.
pub fn group(pod: &Pod) -> TargetGroup {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let source = format!("pod/{namespace}/{name}");
    let ip = pod_ip(pod);
    if ip.is_empty() {
        return TargetGroup {
            source,
            targets: Vec::new(),
            labels: Labels::new(),
        };
    }
    let mut targets = Vec::new();
    let status = pod.status.as_ref();
    for (container, init) in containers(pod) {
        let statuses = status.and_then(|s| {
            if init {
                s.init_container_statuses.as_ref()
            } else {
                s.container_statuses.as_ref()
            }
        });
        let id = container_id(statuses, &container.name);
        let mut base = Labels::from_pairs([
            (
                "__meta_kubernetes_pod_container_name",
                container.name.as_str(),
            ),
            ("__meta_kubernetes_pod_container_id", id),
            (
                "__meta_kubernetes_pod_container_image",
                container.image.as_deref().unwrap_or(""),
            ),
            (
                "__meta_kubernetes_pod_container_init",
                if init { "true" } else { "false" },
            ),
        ]);
        let ports = container.ports.as_deref().unwrap_or(&[]);
        if ports.is_empty() {
            // No port: the bare IP, bracketed when IPv6 (RFC 3986 has no `host:` form).
            let address = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            };
            base.set("__address__", &address);
            targets.push(base);
            continue;
        }
        for port in ports {
            let mut target = base.clone();
            let number = port.container_port.to_string();
            target.set("__address__", &join_host_port(ip, &number));
            target.set("__meta_kubernetes_pod_container_port_number", &number);
            target.set(
                "__meta_kubernetes_pod_container_port_name",
                port.name.as_deref().unwrap_or(""),
            );
            target.set(
                "__meta_kubernetes_pod_container_port_protocol",
                port.protocol.as_deref().unwrap_or(""),
            );
            targets.push(target);
        }
    }
    let mut labels = pod_labels(pod);
    labels.set(super::NAMESPACE_LABEL, namespace);
    TargetGroup {
        source,
        targets,
        labels,
    }
}

/// The pod's IP, empty when it has none yet.
pub fn pod_ip(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap_or("")
}

/// Regular containers, then init containers (`true`).
pub fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.map(|s| s.containers.as_slice()).unwrap_or(&[]);
    let init = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[]);
    regular
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)))
}

fn container_id<'a>(statuses: Option<&'a Vec<ContainerStatus>>, name: &str) -> &'a str {
    statuses
        .into_iter()
        .flatten()
        .find(|status| status.name == name)
        .and_then(|status| status.container_id.as_deref())
        .unwrap_or("")
}

/// Prometheus's `podLabels`: the pod's metadata, IP, readiness, phase, node, host IP, UID
/// and controller.
pub fn pod_labels(pod: &Pod) -> Labels {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".into());
    let mut labels = Labels::from_pairs([
        ("__meta_kubernetes_pod_ip", pod_ip(pod).to_owned()),
        ("__meta_kubernetes_pod_ready", ready),
        (
            "__meta_kubernetes_pod_phase",
            status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        ),
        (
            "__meta_kubernetes_pod_node_name",
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
        ),
        (
            "__meta_kubernetes_pod_host_ip",
            status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        ),
        (
            "__meta_kubernetes_pod_uid",
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
    ]);
    let ips = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten();
    let (mut v4, mut v6) = (None, None);
    for ip in ips.filter_map(|ip| ip.ip.parse::<std::net::IpAddr>().ok()) {
        match ip {
            std::net::IpAddr::V4(_) => v4 = v4.or(Some(ip)),
            std::net::IpAddr::V6(_) => v6 = v6.or(Some(ip)),
        }
    }
    if let Some(ip) = v4 {
        labels.set("__meta_kubernetes_pod_ipv4", &ip.to_string());
    }
    if let Some(ip) = v6 {
        labels.set("__meta_kubernetes_pod_ipv6", &ip.to_string());
    }
    add_object_meta(&mut labels, &pod.metadata, PREFIX);
    if let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
    {
        labels.set("__meta_kubernetes_pod_controller_kind", &owner.kind);
        labels.set("__meta_kubernetes_pod_controller_name", &owner.name);
    }
    labels
}
