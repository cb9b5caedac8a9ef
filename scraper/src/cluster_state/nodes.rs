//! `kube_node_*`: node info, roles, taints, schedulability, conditions, capacity and
//! allocatable resources.

use k8s_openapi::api::core::v1::Node;

use super::{Families, Metric, flag, gauge, quantity, seconds};

const INFO: Metric = gauge("kube_node_info", "Information about a cluster node.");
const CREATED: Metric = gauge("kube_node_created", "Unix creation timestamp");
const LABELS: Metric = gauge(
    "kube_node_labels",
    "Kubernetes labels converted to Prometheus labels.",
);
const ROLE: Metric = gauge("kube_node_role", "The role of a cluster node.");
const TAINT: Metric = gauge("kube_node_spec_taint", "The taint of a cluster node.");
const UNSCHEDULABLE: Metric = gauge(
    "kube_node_spec_unschedulable",
    "Whether a node can schedule new pods.",
);
const CONDITION: Metric = gauge(
    "kube_node_status_condition",
    "The condition of a cluster node.",
);
const CAPACITY: Metric = gauge(
    "kube_node_status_capacity",
    "The capacity for different resources of a node.",
);
const ALLOCATABLE: Metric = gauge(
    "kube_node_status_allocatable",
    "The allocatable for different resources of a node that are available for scheduling.",
);

/// The label prefix of a node role (`node-role.kubernetes.io/control-plane`).
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";

/// Writes the series of `nodes`.
pub(crate) fn render<'a>(out: &mut Families, nodes: impl Iterator<Item = &'a Node>) {
    for node in nodes {
        render_node(out, node);
    }
}

fn render_node(out: &mut Families, node: &Node) {
    let name = node.metadata.name.as_deref().unwrap_or("");
    let labels = [("node", name)];
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    let info = status.and_then(|s| s.node_info.as_ref());
    let field =
        |pick: fn(&k8s_openapi::api::core::v1::NodeSystemInfo) -> &str| info.map_or("", pick);
    let internal_ip = status
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[])
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map_or("", |a| a.address.as_str());
    out.add(
        &INFO,
        &[
            ("node", name),
            ("kernel_version", field(|i| &i.kernel_version)),
            ("os_image", field(|i| &i.os_image)),
            (
                "container_runtime_version",
                field(|i| &i.container_runtime_version),
            ),
            ("kubelet_version", field(|i| &i.kubelet_version)),
            ("kubeproxy_version", field(|i| &i.kube_proxy_version)),
            (
                "provider_id",
                spec.and_then(|s| s.provider_id.as_deref()).unwrap_or(""),
            ),
            (
                "pod_cidr",
                spec.and_then(|s| s.pod_cidr.as_deref()).unwrap_or(""),
            ),
            ("system_uuid", field(|i| &i.system_uuid)),
            ("internal_ip", internal_ip),
        ],
        1.0,
    );
    out.add_some(
        &CREATED,
        &labels,
        seconds(node.metadata.creation_timestamp.as_ref()),
    );
    out.add(&LABELS, &labels, 1.0);
    for key in node.metadata.labels.iter().flatten().map(|(key, _)| key) {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            out.add(&ROLE, &[("node", name), ("role", role)], 1.0);
        }
    }
    for taint in spec.and_then(|s| s.taints.as_deref()).unwrap_or(&[]) {
        out.add(
            &TAINT,
            &[
                ("node", name),
                ("key", &taint.key),
                ("value", taint.value.as_deref().unwrap_or("")),
                ("effect", &taint.effect),
            ],
            1.0,
        );
    }
    out.add(
        &UNSCHEDULABLE,
        &labels,
        flag(spec.and_then(|s| s.unschedulable).unwrap_or(false)),
    );
    for condition in status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]) {
        out.add_condition(
            &CONDITION,
            &[("node", name), ("condition", &condition.type_)],
            "status",
            &condition.status,
        );
    }
    for (metric, resources) in [
        (&CAPACITY, status.and_then(|s| s.capacity.as_ref())),
        (&ALLOCATABLE, status.and_then(|s| s.allocatable.as_ref())),
    ] {
        for (resource, amount) in resources.into_iter().flatten() {
            let label = quantity::resource_label(resource);
            out.add_some(
                metric,
                &[
                    ("node", name),
                    ("resource", &label),
                    ("unit", quantity::unit(resource)),
                ],
                quantity::value(amount),
            );
        }
    }
}
