//! The `kubernetes:` section: which prometheus-operator objects (ServiceMonitor, PodMonitor,
//! monitoring.coreos.com/v1) Sightline reads from the cluster, and how it reaches the API.
//!
//! The selector is a label selector map, as a Prometheus custom resource's
//! `serviceMonitorSelector.matchLabels` (e.g. `release: kube-prometheus-stack` in
//! kube-prometheus-stack clusters); an empty map selects every object. Objects are watched
//! in every namespace unless `namespaces` names some.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::yaml::{Check, checked};

/// The `kubernetes:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Labels a ServiceMonitor or PodMonitor must have to be used; all when empty.
    pub monitor_selector: BTreeMap<String, String>,
    /// Namespaces whose monitors are read; all when empty.
    pub namespaces: Vec<String>,
    /// API server URL; in-cluster config when neither this nor `kubeconfig_file` is set.
    pub api_server: Option<url::Url>,
    /// Kubeconfig file, relative to the config file's directory.
    pub kubeconfig_file: Option<PathBuf>,
    /// Read ServiceMonitors and PodMonitors as scrape jobs (the default) or not (`false`).
    pub monitors: Option<bool>,
    /// Discover a ServiceMonitor's targets through EndpointSlices (the default, as
    /// prometheus-operator does on current Kubernetes) or through Endpoints (`false`).
    pub use_endpointslices: Option<bool>,
    /// Read PrometheusRule objects as rule groups (the default) or not (`false`).
    pub prometheus_rules: Option<bool>,
    /// Labels a PrometheusRule must have to be used (prometheus-operator's `ruleSelector`);
    /// all when empty.
    pub rule_selector: BTreeMap<String, String>,
    /// Read ConfigMaps labelled `grafana_dashboard: "1"` as dashboards (the default), as
    /// Grafana's dashboard sidecar does, or not (`false`).
    pub dashboards: Option<bool>,
    /// Render kube-state-metrics' `kube_*` series of the cluster's objects on
    /// `/metrics/cluster` (the default) or not (`false`).
    pub cluster_metrics: Option<bool>,
}

impl KubernetesConfig {
    /// The `monitor_selector` as an API label selector (`a=b,c=d`), or `None` when
    /// ServiceMonitors and PodMonitors are not read.
    pub fn label_selector(&self) -> Option<String> {
        self.monitors
            .unwrap_or(true)
            .then(|| selector_text(&self.monitor_selector))
    }

    /// The `rule_selector` as an API label selector, or `None` when PrometheusRules are not
    /// read.
    pub fn rule_label_selector(&self) -> Option<String> {
        self.prometheus_rules
            .unwrap_or(true)
            .then(|| selector_text(&self.rule_selector))
    }
}

impl KubernetesConfig {
    /// The label selector of dashboard ConfigMaps, or `None` when they are not read.
    pub fn dashboard_label_selector(&self) -> Option<String> {
        self.dashboards
            .unwrap_or(true)
            .then(|| "grafana_dashboard=1".to_owned())
    }
}

/// A label selector map as the API's `labelSelector` text (`a=b,c=d`).
fn selector_text(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Check for KubernetesConfig {
    fn check(&self) -> Result<(), String> {
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            return Err("cannot use 'kubeconfig_file' and 'api_server' simultaneously".into());
        }
        for (name, value) in self.monitor_selector.iter().chain(&self.rule_selector) {
            let valid = |text: &str, max: usize| {
                text.len() <= max
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
            };
            if name.is_empty() || !valid(name, 316) || !valid(value, 63) || value.contains('/') {
                return Err(format!(
                    "monitor_selector {name}: {value:?} is not a valid Kubernetes label; names and values are letters, digits, '-', '_' and '.'"
                ));
            }
        }
        Ok(())
    }
}

/// Deserializes the optional section and checks it at its own position.
pub(super) fn optional_checked<'de, D>(
    deserializer: D,
) -> Result<Option<KubernetesConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    checked(deserializer).map(Some)
}
