//! The `service` role: one target per service port, at `<name>.<namespace>.svc:<port>`.
//!
//! Follows Prometheus's discovery/kubernetes/service.go: `_service_cluster_ip` except for
//! `ExternalName` services, which get `_service_external_name` instead.

use k8s_openapi::api::core::v1::Service;
use sightline_core::labels::Labels;

use super::{NAMESPACE_LABEL, add_object_meta, join_host_port};
use crate::discovery::TargetGroup;

/// The group of one service, source `svc/<namespace>/<name>`.
pub fn group(service: &Service) -> TargetGroup {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("");
    let name = service.metadata.name.as_deref().unwrap_or("");
    let spec = service.spec.as_ref();
    let kind = spec.and_then(|s| s.type_.as_deref()).unwrap_or("");
    let targets = spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|port| {
            let number = port.port.to_string();
            let mut target = Labels::from_pairs([
                (
                    "__address__",
                    join_host_port(&format!("{name}.{namespace}.svc"), &number),
                ),
                (
                    "__meta_kubernetes_service_port_name",
                    port.name.clone().unwrap_or_default(),
                ),
                ("__meta_kubernetes_service_port_number", number),
                (
                    "__meta_kubernetes_service_port_protocol",
                    port.protocol.clone().unwrap_or_default(),
                ),
                ("__meta_kubernetes_service_type", kind.to_owned()),
            ]);
            if kind == "ExternalName" {
                target.set(
                    "__meta_kubernetes_service_external_name",
                    spec.and_then(|s| s.external_name.as_deref()).unwrap_or(""),
                );
            } else {
                target.set(
                    "__meta_kubernetes_service_cluster_ip",
                    spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or(""),
                );
            }
            target
        })
        .collect();
    TargetGroup {
        source: format!("svc/{namespace}/{name}"),
        targets,
        labels: service_labels(service),
    }
}

/// Prometheus's `serviceLabels`: namespace, `_service_name`, labels and annotations.
pub fn service_labels(service: &Service) -> Labels {
    let mut labels = Labels::new();
    add_object_meta(&mut labels, &service.metadata, "__meta_kubernetes_service");
    labels.set(
        NAMESPACE_LABEL,
        service.metadata.namespace.as_deref().unwrap_or(""),
    );
    labels
}
