//! `kube_namespace_*` and `kube_resourcequota`: namespaces' phase, and each quota's hard
//! limits and usage per resource.

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};

use crate::discovery::kubernetes::Stores;

use super::{Families, Metric, gauge, name_of, quantity, seconds};

const CREATED: Metric = gauge("kube_namespace_created", "Unix creation timestamp");
const LABELS: Metric = gauge(
    "kube_namespace_labels",
    "Kubernetes labels converted to Prometheus labels.",
);
const PHASE: Metric = gauge(
    "kube_namespace_status_phase",
    "kubernetes namespace status phase.",
);
const PHASES: &[&str] = &["Active", "Terminating"];
const QUOTA: Metric = gauge("kube_resourcequota", "Information about resource quota.");
const QUOTA_CREATED: Metric = gauge("kube_resourcequota_created", "Unix creation timestamp");

/// Writes the series of every namespace and resource quota in `stores`.
pub(crate) fn render(out: &mut Families, stores: &Stores) {
    stores.namespaces.values().for_each(|n| namespace(out, n));
    stores
        .resource_quotas
        .values()
        .for_each(|q| resource_quota(out, q));
}

fn namespace(out: &mut Families, namespace: &Namespace) {
    let name = namespace.metadata.name.as_deref().unwrap_or("");
    let labels = [("namespace", name)];
    out.add_some(
        &CREATED,
        &labels,
        seconds(namespace.metadata.creation_timestamp.as_ref()),
    );
    out.add(&LABELS, &labels, 1.0);
    let phase = namespace.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase.is_some() {
        out.add_one_of(&PHASE, &labels, "phase", PHASES, phase);
    }
}

fn resource_quota(out: &mut Families, quota: &ResourceQuota) {
    let (namespace, name) = name_of(&quota.metadata);
    out.add_some(
        &QUOTA_CREATED,
        &[("namespace", namespace), ("resourcequota", name)],
        seconds(quota.metadata.creation_timestamp.as_ref()),
    );
    let Some(status) = quota.status.as_ref() else {
        return;
    };
    for (kind, resources) in [
        ("hard", status.hard.as_ref()),
        ("used", status.used.as_ref()),
    ] {
        for (resource, amount) in resources.into_iter().flatten() {
            out.add_some(
                &QUOTA,
                &[
                    ("namespace", namespace),
                    ("resourcequota", name),
                    ("resource", resource),
                    ("type", kind),
                ],
                quantity::value(amount),
            );
        }
    }
}
