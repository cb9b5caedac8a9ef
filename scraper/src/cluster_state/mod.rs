//! Built-in cluster metrics: the `kube_*` series of kube-state-metrics (v2 names, labels and
//! units), rendered from the objects the `kubernetes:` section's watches keep, so that the
//! kube-prometheus rules and dashboards work without a kube-state-metrics Deployment.
//!
//! [`render`] writes them in the text format; the server exposes that on `/metrics/cluster`,
//! which the deploy/ configs scrape as job `kube-state-metrics`. One module per group of
//! kinds: [`pods`], [`nodes`], [`workloads`] (Deployments, StatefulSets, DaemonSets,
//! ReplicaSets, Jobs, HorizontalPodAutoscalers, PodDisruptionBudgets), [`storage`]
//! (PersistentVolumeClaims and PersistentVolumes) and [`namespaces`] (Namespaces and
//! ResourceQuotas).
//!
//! Decisions, following kube-state-metrics' documented behaviour:
//! - Object labels and annotations (`kube_*_labels`, `kube_*_annotations`) carry no
//!   `label_*` labels, as kube-state-metrics without `--metric-labels-allowlist`.
//! - A condition is three samples, `status="true"`, `"false"` and `"unknown"`, one of them 1;
//!   a phase is one sample per possible phase, the current one 1.
//! - A missing owner is written as empty `owner_kind`, `owner_name` and
//!   `owner_is_controller` (so absent labels, which the kube-prometheus rules test for).
//! - Resource quantities are numbers in base units (`cpu` in cores, memory in bytes) with the
//!   resource name sanitized (`nvidia.com/gpu` → `nvidia_com_gpu`) and a `unit` label.
//! - Of kube-state-metrics' own series, those the kube-prometheus rules read: list and watch
//!   outcomes per resource, and one shard.
//! - Not provided: CronJobs, Services, Endpoints, Ingresses, Secrets, ConfigMaps, Leases,
//!   StorageClasses, certificates, webhooks and VerticalPodAutoscalers.

pub mod namespaces;
pub mod nodes;
pub mod pods;
pub mod quantity;
pub mod storage;
pub mod workloads;

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::discovery::kubernetes::{Request, Stores};
use crate::host::text::{Exposition, Kind};

/// The `kube_*` series of every object in `stores`, in the text format.
pub fn render(stores: &Stores) -> String {
    let mut out = Families::default();
    pods::render(&mut out, stores.pods.values());
    nodes::render(&mut out, stores.nodes.values());
    workloads::render(&mut out, stores);
    storage::render(&mut out, stores);
    namespaces::render(&mut out, stores);
    render_self(&mut out, stores);
    out.finish()
}

const LIST_TOTAL: Metric = counter(
    "kube_state_metrics_list_total",
    "Number of total resource list in kube-state-metrics",
);
const WATCH_TOTAL: Metric = counter(
    "kube_state_metrics_watch_total",
    "Number of total resource watches in kube-state-metrics",
);
const TOTAL_SHARDS: Metric = gauge("kube_state_metrics_total_shards", "The number of shards.");
const SHARD_ORDINAL: Metric = gauge(
    "kube_state_metrics_shard_ordinal",
    "Current sharding ordinal of this instance.",
);

/// kube-state-metrics' own series that the kube-prometheus rules watch: list and watch
/// outcomes per resource (`resource` is the plural name, e.g. `pods`; a watch counts as a
/// success when it starts after a successful list), and one shard.
fn render_self(out: &mut Families, stores: &Stores) {
    for ((resource, request, ok), count) in &stores.requests {
        let metric = match request {
            Request::List => &LIST_TOTAL,
            Request::Watch => &WATCH_TOTAL,
        };
        let result = if *ok { "success" } else { "error" };
        out.add(
            metric,
            &[("resource", resource), ("result", result)],
            *count as f64,
        );
    }
    out.add(&TOTAL_SHARDS, &[], 1.0);
    out.add(&SHARD_ORDINAL, &[("shard_ordinal", "0")], 0.0);
}

/// A metric family: name, help text and type.
#[derive(Debug)]
pub struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

/// A gauge family.
pub(crate) const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Gauge,
    }
}

/// A counter family.
pub(crate) const fn counter(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Counter,
    }
}

/// Samples gathered per family and written family by family (the text format wants a
/// family's samples together), in the order the families were first used.
#[derive(Debug, Default)]
pub(crate) struct Families {
    order: Vec<&'static str>,
    by_name: HashMap<&'static str, Exposition>,
}

impl Families {
    /// Adds one sample of `metric`.
    pub(crate) fn add(&mut self, metric: &Metric, labels: &[(&str, &str)], value: f64) {
        let order = &mut self.order;
        let family = self.by_name.entry(metric.name).or_insert_with(|| {
            order.push(metric.name);
            let mut family = Exposition::default();
            family.family(metric.name, metric.help, metric.kind);
            family
        });
        family.sample(metric.name, labels, value);
    }

    /// Adds `metric` with `value` if there is one.
    pub(crate) fn add_some(
        &mut self,
        metric: &Metric,
        labels: &[(&str, &str)],
        value: Option<f64>,
    ) {
        if let Some(value) = value {
            self.add(metric, labels, value);
        }
    }

    /// Adds one sample per possible value of `label` (a phase): 1 for `current`, 0 for the
    /// others.
    pub(crate) fn add_one_of(
        &mut self,
        metric: &Metric,
        labels: &[(&str, &str)],
        label: &str,
        values: &[&str],
        current: Option<&str>,
    ) {
        for &value in values {
            let mut all = labels.to_vec();
            all.push((label, value));
            self.add(metric, &all, flag(current == Some(value)));
        }
    }

    /// Adds a condition's three samples, `status="true"|"false"|"unknown"`, the one matching
    /// the condition's status (`True`, `False`, else unknown) 1. `status_label` is the label
    /// kube-state-metrics names it with (`status` or `condition`).
    pub(crate) fn add_condition(
        &mut self,
        metric: &Metric,
        labels: &[(&str, &str)],
        status_label: &str,
        status: &str,
    ) {
        let current = match status {
            "True" => "true",
            "False" => "false",
            _ => "unknown",
        };
        self.add_one_of(
            metric,
            labels,
            status_label,
            &["true", "false", "unknown"],
            Some(current),
        );
    }

    /// The families in the text format.
    pub(crate) fn finish(mut self) -> String {
        let mut text = String::new();
        for name in self.order {
            if let Some(family) = self.by_name.remove(name) {
                text.push_str(&family.finish());
            }
        }
        text
    }
}

/// 1 for true, 0 for false.
pub(crate) fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// A timestamp as Unix seconds.
pub(crate) fn seconds(time: Option<&Time>) -> Option<f64> {
    time.map(|time| time.0.as_millisecond() as f64 / 1000.0)
}

/// An object's name and namespace (empty when unset).
pub(crate) fn name_of(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or(""),
    )
}

/// `kube_<kind>_owner`-style labels of an object's owners: one set per owner, or one set of
/// empty labels when it has none.
pub(crate) fn owners(meta: &ObjectMeta) -> Vec<[(&'static str, String); 3]> {
    let references: &[OwnerReference] = meta.owner_references.as_deref().unwrap_or(&[]);
    if references.is_empty() {
        return vec![[
            ("owner_kind", String::new()),
            ("owner_name", String::new()),
            ("owner_is_controller", String::new()),
        ]];
    }
    references
        .iter()
        .map(|owner| {
            [
                ("owner_kind", owner.kind.clone()),
                ("owner_name", owner.name.clone()),
                (
                    "owner_is_controller",
                    owner.controller.unwrap_or(false).to_string(),
                ),
            ]
        })
        .collect()
}

/// `labels` followed by `extra`, borrowed, for one sample.
pub(crate) fn with<'a>(
    labels: &[(&'a str, &'a str)],
    extra: &'a [(&'static str, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = labels.to_vec();
    all.extend(extra.iter().map(|(name, value)| (*name, value.as_str())));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_together_in_first_use_order() {
        let mut out = Families::default();
        let a = gauge("kube_a", "A.");
        let b = counter("kube_b_total", "B.");
        out.add(&a, &[("x", "1")], 1.0);
        out.add(&b, &[], 2.0);
        out.add(&a, &[("x", "2")], 0.0);
        assert_eq!(
            out.finish(),
            "# HELP kube_a A.\n# TYPE kube_a gauge\nkube_a{x=\"1\"} 1\nkube_a{x=\"2\"} 0\n\
             # HELP kube_b_total B.\n# TYPE kube_b_total counter\nkube_b_total 2\n"
        );
    }

    #[test]
    fn a_condition_is_three_samples_one_of_them_set() {
        let mut out = Families::default();
        let ready = gauge("kube_pod_status_ready", "Ready.");
        out.add_condition(&ready, &[("pod", "p")], "condition", "Maybe");
        let text = out.finish();
        assert!(text.contains("kube_pod_status_ready{pod=\"p\",condition=\"true\"} 0\n"));
        assert!(text.contains("kube_pod_status_ready{pod=\"p\",condition=\"false\"} 0\n"));
        assert!(text.contains("kube_pod_status_ready{pod=\"p\",condition=\"unknown\"} 1\n"));
    }
}
