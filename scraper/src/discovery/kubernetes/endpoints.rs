//! The `endpoints` role: one target per address and port of an Endpoints object, joined
//! with its pods and its service.
//!
//! Follows Prometheus's discovery/kubernetes/endpoints.go: ready addresses get
//! `_endpoint_ready="true"`, not-ready ones `"false"`; an address whose target is a pod gets
//! the pod's labels and, when a container declares the endpoint's port, that container's
//! labels; every other declared port of a pod seen in the object becomes a target of its own
//! (so sidecar ports are discoverable); the service of the same name adds its labels to the
//! group. The [`PodJoin`] here is shared with the `endpointslice` role.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Pod};
use sightline_core::labels::Labels;

use super::pod::{containers, pod_ip, pod_labels};
use super::service::service_labels;
use super::{NAMESPACE_LABEL, Stores, add_object_meta, join_host_port};
use crate::discovery::TargetGroup;

/// The group of one Endpoints object, source `endpoints/<namespace>/<name>`.
pub fn group(object: &Endpoints, stores: &Stores) -> TargetGroup {
    let namespace = object.metadata.namespace.as_deref().unwrap_or("");
    let name = object.metadata.name.as_deref().unwrap_or("");
    let mut labels = Labels::new();
    add_object_meta(&mut labels, &object.metadata, "__meta_kubernetes_endpoints");
    if let Some(service) = stores
        .services
        .get(&(namespace.to_owned(), name.to_owned()))
    {
        for label in &service_labels(service) {
            labels.set(&label.name, &label.value);
        }
    }
    labels.set(NAMESPACE_LABEL, namespace);
    let mut join = PodJoin::default();
    let mut targets = Vec::new();
    for subset in object.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            let addresses = [
                (subset.addresses.as_deref().unwrap_or(&[]), "true"),
                (
                    subset.not_ready_addresses.as_deref().unwrap_or(&[]),
                    "false",
                ),
            ];
            for (list, ready) in addresses {
                for address in list {
                    let mut target = Labels::from_pairs([
                        ("__address__", join_host_port(&address.ip, port.port)),
                        (
                            "__meta_kubernetes_endpoint_port_name",
                            port.name.clone().unwrap_or_default(),
                        ),
                        (
                            "__meta_kubernetes_endpoint_port_protocol",
                            port.protocol.clone().unwrap_or_default(),
                        ),
                        ("__meta_kubernetes_endpoint_ready", ready.to_owned()),
                        (
                            "__meta_kubernetes_endpoint_hostname",
                            address.hostname.clone().unwrap_or_default(),
                        ),
                        (
                            "__meta_kubernetes_endpoint_node_name",
                            address.node_name.clone().unwrap_or_default(),
                        ),
                        (
                            "__meta_kubernetes_endpoint_port_app_protocol",
                            port.app_protocol.clone().unwrap_or_default(),
                        ),
                    ]);
                    if let Some(reference) = &address.target_ref {
                        target.set(
                            "__meta_kubernetes_endpoint_address_target_kind",
                            reference.kind.as_deref().unwrap_or(""),
                        );
                        target.set(
                            "__meta_kubernetes_endpoint_address_target_name",
                            reference.name.as_deref().unwrap_or(""),
                        );
                    }
                    join.add(
                        stores,
                        address.target_ref.as_ref(),
                        Some(port.port),
                        &mut target,
                    );
                    targets.push(target);
                }
            }
        }
    }
    targets.extend(join.unseen_ports());
    TargetGroup {
        source: format!("endpoints/{namespace}/{name}"),
        targets,
        labels,
    }
}

/// The pods the addresses of one endpoints object point at, and which of their ports the
/// object covered.
#[derive(Default)]
pub struct PodJoin<'a> {
    seen: BTreeMap<(String, String), (&'a Pod, Vec<i32>)>,
}

impl<'a> PodJoin<'a> {
    /// Adds the labels of the pod `reference` names (if it is a known pod) and of its
    /// container declaring `port` to `target`.
    pub fn add(
        &mut self,
        stores: &'a Stores,
        reference: Option<&ObjectReference>,
        port: Option<i32>,
        target: &mut Labels,
    ) {
        let Some(reference) = reference.filter(|r| r.kind.as_deref() == Some("Pod")) else {
            return;
        };
        let key = (
            reference.namespace.clone().unwrap_or_default(),
            reference.name.clone().unwrap_or_default(),
        );
        let Some(pod) = stores.pods.get(&key) else {
            return;
        };
        for label in &pod_labels(pod) {
            target.set(&label.name, &label.value);
        }
        let declaring = port.and_then(|port| {
            containers(pod).find_map(|(c, init)| {
                c.ports
                    .iter()
                    .flatten()
                    .find(|p| p.container_port == port)
                    .map(|p| (c, p, init))
            })
        });
        if let Some((container, declared, init)) = declaring {
            set_container(target, container, declared, init);
        }
        let entry = self.seen.entry(key).or_insert_with(|| (pod, Vec::new()));
        entry.1.extend(port);
    }

    /// A target for every declared container port of a seen pod that no endpoint covered.
    pub fn unseen_ports(self) -> Vec<Labels> {
        let mut targets = Vec::new();
        for (pod, covered) in self.seen.into_values() {
            let ip = pod_ip(pod);
            if ip.is_empty() {
                continue;
            }
            for (container, init) in containers(pod) {
                for port in container.ports.iter().flatten() {
                    if covered.contains(&port.container_port) {
                        continue;
                    }
                    let mut target = pod_labels(pod);
                    target.set("__address__", &join_host_port(ip, port.container_port));
                    set_container(&mut target, container, port, init);
                    targets.push(target);
                }
            }
        }
        targets
    }
}

fn set_container(
    target: &mut Labels,
    container: &k8s_openapi::api::core::v1::Container,
    port: &k8s_openapi::api::core::v1::ContainerPort,
    init: bool,
) {
    target.set("__meta_kubernetes_pod_container_name", &container.name);
    target.set(
        "__meta_kubernetes_pod_container_image",
        container.image.as_deref().unwrap_or(""),
    );
    target.set(
        "__meta_kubernetes_pod_container_port_name",
        port.name.as_deref().unwrap_or(""),
    );
    target.set(
        "__meta_kubernetes_pod_container_port_number",
        &port.container_port.to_string(),
    );
    target.set(
        "__meta_kubernetes_pod_container_port_protocol",
        port.protocol.as_deref().unwrap_or(""),
    );
    target.set(
        "__meta_kubernetes_pod_container_init",
        if init { "true" } else { "false" },
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn endpoints_and_service_roles_have_prometheus_labels() {
        let mut stores = Stores::default();
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "data", "labels": {"app": "db"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.7",
                     "ports": [{"name": "metrics", "port": 9187, "protocol": "TCP"}]}
        }))
        .unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db-0", "namespace": "data", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "exporter", "image": "pgx",
                "ports": [{"name": "metrics", "containerPort": 9187, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": "10.42.0.9"}
        }))
        .unwrap();
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "data"},
            "subsets": [{
                "addresses": [{"ip": "10.42.0.9", "nodeName": "n1",
                               "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "data"}}],
                "notReadyAddresses": [{"ip": "10.42.0.10"}],
                "ports": [{"name": "metrics", "port": 9187, "protocol": "TCP"}]
            }]
        }))
        .unwrap();

        let service_group = super::super::service::group(&service);
        assert_eq!(service_group.source, "svc/data/db");
        assert_eq!(
            service_group.targets,
            vec![labels(&[
                ("__address__", "db.data.svc:9187"),
                ("__meta_kubernetes_service_cluster_ip", "10.43.0.7"),
                ("__meta_kubernetes_service_port_name", "metrics"),
                ("__meta_kubernetes_service_port_number", "9187"),
                ("__meta_kubernetes_service_port_protocol", "TCP"),
                ("__meta_kubernetes_service_type", "ClusterIP"),
            ])]
        );
        assert_eq!(
            service_group.labels,
            labels(&[
                ("__meta_kubernetes_namespace", "data"),
                ("__meta_kubernetes_service_label_app", "db"),
                ("__meta_kubernetes_service_labelpresent_app", "true"),
                ("__meta_kubernetes_service_name", "db"),
            ])
        );

        stores
            .services
            .insert(("data".into(), "db".into()), service.clone());
        stores.pods.insert(("data".into(), "db-0".into()), pod);
        let group = group(&endpoints, &stores);
        assert_eq!(group.source, "endpoints/data/db");
        assert_eq!(
            group.labels,
            labels(&[
                ("__meta_kubernetes_endpoints_name", "db"),
                ("__meta_kubernetes_namespace", "data"),
                ("__meta_kubernetes_service_label_app", "db"),
                ("__meta_kubernetes_service_labelpresent_app", "true"),
                ("__meta_kubernetes_service_name", "db"),
            ])
        );
        assert_eq!(
            group.targets,
            vec![
                labels(&[
                    ("__address__", "10.42.0.9:9187"),
                    ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpoint_address_target_name", "db-0"),
                    ("__meta_kubernetes_endpoint_node_name", "n1"),
                    ("__meta_kubernetes_endpoint_port_name", "metrics"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "true"),
                    ("__meta_kubernetes_pod_container_image", "pgx"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                    ("__meta_kubernetes_pod_container_name", "exporter"),
                    ("__meta_kubernetes_pod_container_port_name", "metrics"),
                    ("__meta_kubernetes_pod_container_port_number", "9187"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_ip", "10.42.0.9"),
                    ("__meta_kubernetes_pod_name", "db-0"),
                    ("__meta_kubernetes_pod_node_name", "n1"),
                    ("__meta_kubernetes_pod_phase", "Running"),
                    ("__meta_kubernetes_pod_ready", "unknown"),
                    ("__meta_kubernetes_pod_uid", "u1"),
                ]),
                labels(&[
                    ("__address__", "10.42.0.10:9187"),
                    ("__meta_kubernetes_endpoint_port_name", "metrics"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "false"),
                ]),
            ]
        );
    }
}
