//! The `ingress` role: one target per host and path of an Ingress (networking.k8s.io/v1),
//! at the rule's host — meant for blackbox probing.
//!
//! Follows Prometheus's discovery/kubernetes/ingress.go: a rule without paths has the path
//! `/`, an empty path is `/`; the scheme is `https` when a TLS entry lists the host (or a
//! `*.` wildcard of one DNS label matching it), else `http`.

use k8s_openapi::api::networking::v1::Ingress;
use sightline_core::labels::Labels;

use super::{NAMESPACE_LABEL, add_object_meta};
use crate::discovery::TargetGroup;

/// The group of one Ingress, source `ingress/<namespace>/<name>`.
pub fn group(ingress: &Ingress) -> TargetGroup {
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("");
    let name = ingress.metadata.name.as_deref().unwrap_or("");
    let spec = ingress.spec.as_ref();
    let mut labels = Labels::new();
    add_object_meta(&mut labels, &ingress.metadata, "__meta_kubernetes_ingress");
    labels.set(NAMESPACE_LABEL, namespace);
    labels.set(
        "__meta_kubernetes_ingress_class_name",
        spec.and_then(|s| s.ingress_class_name.as_deref())
            .unwrap_or(""),
    );
    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|tls| tls.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = rule.host.as_deref().unwrap_or("");
        let scheme = if tls_hosts.iter().any(|pattern| host_matches(pattern, host)) {
            "https"
        } else {
            "http"
        };
        let mut paths: Vec<&str> = rule
            .http
            .as_ref()
            .map(|http| {
                http.paths
                    .iter()
                    .map(|p| p.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/"))
                    .collect()
            })
            .unwrap_or_default();
        if paths.is_empty() {
            paths.push("/");
        }
        for path in paths {
            targets.push(Labels::from_pairs([
                ("__address__", host),
                ("__meta_kubernetes_ingress_scheme", scheme),
                ("__meta_kubernetes_ingress_path", path),
            ]));
        }
    }
    TargetGroup {
        source: format!("ingress/{namespace}/{name}"),
        targets,
        labels,
    }
}

/// `host` equals `pattern`, or `pattern` is `*.rest` and `host` is one label before `rest`.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(rest), Some((first, host_rest))) => !first.is_empty() && rest == host_rest,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_target_per_host_and_path_with_tls_scheme() {
        let ingress: Ingress = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "ingressClassName": "traefik",
                "tls": [{"hosts": ["*.lab.example"]}],
                "rules": [
                    {"host": "grafana.lab.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {}},
                        {"path": "/api", "pathType": "Prefix", "backend": {}}]}},
                    {"host": "plain.example"}
                ]
            }
        }))
        .unwrap();
        let group = group(&ingress);
        assert_eq!(group.source, "ingress/shop/web");
        assert_eq!(
            group.labels.get("__meta_kubernetes_ingress_class_name"),
            Some("traefik")
        );
        assert_eq!(
            group.labels.get("__meta_kubernetes_ingress_label_app"),
            Some("web")
        );
        let summary: Vec<String> = group
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{} {} {}",
                    t.get("__meta_kubernetes_ingress_scheme").unwrap(),
                    t.get("__address__").unwrap(),
                    t.get("__meta_kubernetes_ingress_path").unwrap()
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "https grafana.lab.example /",
                "https grafana.lab.example /api",
                "http plain.example /"
            ]
        );
        assert!(!host_matches("*.lab.example", "a.b.lab.example"));
    }
}
