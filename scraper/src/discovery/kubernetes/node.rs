//! The `node` role: one target per node, at its kubelet port.
//!
//! Follows Prometheus's discovery/kubernetes/node.go: the address is the first of
//! InternalIP, InternalDNS, ExternalIP, ExternalDNS, LegacyHostIP, Hostname, joined with
//! the kubelet endpoint port; `instance` is the node name; every address type is exposed as
//! `__meta_kubernetes_node_address_<type>` (its first value). A node without any address is
//! skipped with a warning, as Prometheus does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use sightline_core::labels::Labels;

use super::{add_object_meta, join_host_port, sanitize};
use crate::discovery::TargetGroup;

const ADDRESS_PRIORITY: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// The group of one node, source `node/<name>`; `None` when it has no address.
pub fn group(node: &Node) -> Option<TargetGroup> {
    let name = node.metadata.name.as_deref().unwrap_or("");
    let status = node.status.as_ref();
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for address in status
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
    {
        by_type
            .entry(address.type_.as_str())
            .or_insert(address.address.as_str());
    }
    let Some(address) = ADDRESS_PRIORITY.iter().find_map(|t| by_type.get(t)) else {
        tracing::warn!(node = name, "kubernetes node has no address; skipped");
        return None;
    };
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .unwrap_or(0);
    let mut target = Labels::from_pairs([
        ("__address__", join_host_port(address, port)),
        ("instance", name.to_owned()),
        (
            "__meta_kubernetes_node_provider_id",
            node.spec
                .as_ref()
                .and_then(|s| s.provider_id.clone())
                .unwrap_or_default(),
        ),
    ]);
    add_object_meta(&mut target, &node.metadata, "__meta_kubernetes_node");
    for (kind, value) in by_type {
        target.set(
            &format!("__meta_kubernetes_node_address_{}", sanitize(kind)),
            value,
        );
    }
    Some(TargetGroup {
        source: format!("node/{name}"),
        targets: vec![target],
        labels: Labels::new(),
    })
}
