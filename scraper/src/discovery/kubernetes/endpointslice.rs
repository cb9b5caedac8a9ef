//! The `endpointslice` role: one target per endpoint address and port of an EndpointSlice
//! (discovery.k8s.io/v1), joined with its pods and its service.
//!
//! Follows Prometheus's discovery/kubernetes/endpointslice.go: the service is the one named
//! by the `kubernetes.io/service-name` label; condition labels are set only when the
//! condition is; pods are joined as in the `endpoints` role ([`super::endpoints::PodJoin`]).

use k8s_openapi::api::discovery::v1::EndpointSlice;
use sightline_core::labels::Labels;

use super::endpoints::PodJoin;
use super::service::service_labels;
use super::{NAMESPACE_LABEL, Stores, add_object_meta, join_host_port, sanitize};
use crate::discovery::TargetGroup;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The group of one EndpointSlice, source `endpointslice/<namespace>/<name>`.
pub fn group(slice: &EndpointSlice, stores: &Stores) -> TargetGroup {
    let namespace = slice.metadata.namespace.as_deref().unwrap_or("");
    let name = slice.metadata.name.as_deref().unwrap_or("");
    let mut labels = Labels::from_pairs([(
        "__meta_kubernetes_endpointslice_address_type",
        slice.address_type.as_str(),
    )]);
    add_object_meta(
        &mut labels,
        &slice.metadata,
        "__meta_kubernetes_endpointslice",
    );
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .and_then(|service| {
            stores
                .services
                .get(&(namespace.to_owned(), service.clone()))
        });
    if let Some(service) = service {
        for label in &service_labels(service) {
            labels.set(&label.name, &label.value);
        }
    }
    labels.set(NAMESPACE_LABEL, namespace);
    let mut join = PodJoin::default();
    let mut targets = Vec::new();
    for endpoint in &slice.endpoints {
        for port in slice.ports.iter().flatten() {
            for address in &endpoint.addresses {
                let mut target = Labels::new();
                let bool_text = |b: bool| if b { "true" } else { "false" };
                target.set(
                    "__address__",
                    &match port.port {
                        Some(number) => join_host_port(address, number),
                        None => address.clone(),
                    },
                );
                let prefix = "__meta_kubernetes_endpointslice";
                let optional = [
                    ("port_name", port.name.clone()),
                    ("port_protocol", port.protocol.clone()),
                    ("port", port.port.map(|p| p.to_string())),
                    ("port_app_protocol", port.app_protocol.clone()),
                    (
                        "endpoint_conditions_ready",
                        endpoint
                            .conditions
                            .as_ref()
                            .and_then(|c| c.ready)
                            .map(|b| bool_text(b).to_owned()),
                    ),
                    (
                        "endpoint_conditions_serving",
                        endpoint
                            .conditions
                            .as_ref()
                            .and_then(|c| c.serving)
                            .map(|b| bool_text(b).to_owned()),
                    ),
                    (
                        "endpoint_conditions_terminating",
                        endpoint
                            .conditions
                            .as_ref()
                            .and_then(|c| c.terminating)
                            .map(|b| bool_text(b).to_owned()),
                    ),
                    ("endpoint_hostname", endpoint.hostname.clone()),
                    (
                        "address_target_kind",
                        endpoint.target_ref.as_ref().and_then(|r| r.kind.clone()),
                    ),
                    (
                        "address_target_name",
                        endpoint.target_ref.as_ref().and_then(|r| r.name.clone()),
                    ),
                    ("endpoint_node_name", endpoint.node_name.clone()),
                    ("endpoint_zone", endpoint.zone.clone()),
                ];
                for (suffix, value) in optional {
                    if let Some(value) = value {
                        target.set(&format!("{prefix}_{suffix}"), &value);
                    }
                }
                for (key, value) in endpoint.deprecated_topology.iter().flatten() {
                    let key = sanitize(key);
                    target.set(&format!("{prefix}_endpoint_topology_{key}"), value);
                    target.set(&format!("{prefix}_endpoint_topology_present_{key}"), "true");
                }
                join.add(stores, endpoint.target_ref.as_ref(), port.port, &mut target);
                targets.push(target);
            }
        }
    }
    targets.extend(join.unseen_ports());
    TargetGroup {
        source: format!("endpointslice/{namespace}/{name}"),
        targets,
        labels,
    }
}
