//! The tailer as the `log_collection:` section configures it, and the pod labels it reads
//! from the Kubernetes API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use sightline_core::config::kubernetes::KubernetesConfig;
use sightline_core::config::scrape::{KubernetesRole, KubernetesSdConfig, KubernetesSelector};
use sightline_core::config::{LineDropConfig, LogCollectionConfig};
use sightline_core::labels::Labels;
use sightline_logstore::push::PushLimits;
use tokio::sync::Notify;

use super::{LineDrop, PodMetadata, StaticFiles, TailerOptions};
use crate::discovery::kubernetes::KubernetesDiscovery;

impl TailerOptions {
    /// The options `config` describes; positions go to `positions_file`, lines are checked
    /// against `limits` as pushed ones are. The section was checked when the config loaded,
    /// so its regexes compile.
    pub fn from_config(
        config: &LogCollectionConfig,
        node: String,
        positions_file: PathBuf,
        limits: PushLimits,
    ) -> Result<TailerOptions, regex::Error> {
        let static_files = config
            .files
            .iter()
            .flat_map(|group| {
                let labels = Labels::from_pairs(&group.labels);
                group.paths.iter().map(move |path| StaticFiles {
                    path_glob: path.clone(),
                    labels: labels.clone(),
                })
            })
            .collect();
        let line_drops = config
            .drop
            .iter()
            .map(line_drop)
            .collect::<Result<_, _>>()?;
        Ok(TailerOptions {
            pods_root: config.pods_root.clone(),
            node,
            static_files,
            positions_file,
            relabel_configs: config.relabel_configs.clone(),
            line_drops,
            max_partial_line_size: usize::try_from(config.max_partial_line_size.0)
                .unwrap_or(usize::MAX),
            limits,
        })
    }
}

fn line_drop(config: &LineDropConfig) -> Result<LineDrop, regex::Error> {
    let selector = config
        .labels
        .iter()
        .map(|(name, pattern)| Ok((name.clone(), Regex::new(&format!("^(?:{pattern})$"))?)))
        .collect::<Result<_, regex::Error>>()?;
    Ok(LineDrop {
        selector,
        expression: Regex::new(&config.expression)?,
    })
}

/// The node name for the `node` label: the configured one, else `$NODE_NAME` (the downward
/// API), else the host name.
pub fn node_name(config: &LogCollectionConfig) -> String {
    if !config.node_name.is_empty() {
        return config.node_name.clone();
    }
    std::env::var("NODE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Keeps `metadata` in step with the labels of the pods on `node` (all pods when `node` is
/// empty), from a pod list/watch over the `kubernetes:` section's connection, until the
/// task is aborted. When the first list has not come within `wait` (the API is
/// unreachable, or RBAC refuses), pod files stop waiting for it and are read without the
/// labels, which later lists add to new streams.
pub async fn follow_pod_labels(
    section: &KubernetesConfig,
    base_dir: &Path,
    node: &str,
    metadata: PodMetadata,
    wait: std::time::Duration,
) {
    let config = KubernetesSdConfig {
        role: KubernetesRole::Pod,
        api_server: section.api_server.clone(),
        kubeconfig_file: section.kubeconfig_file.clone(),
        namespaces: Default::default(),
        selectors: vec![KubernetesSelector {
            role: KubernetesRole::Pod,
            label: None,
            field: (!node.is_empty()).then(|| format!("spec.nodeName={node}")),
        }],
        attach_metadata: Default::default(),
        basic_auth: None,
        authorization: None,
        bearer_token_file: None,
        tls_config: None,
    };
    let changed = Arc::new(Notify::new());
    let discovery = KubernetesDiscovery::spawn(&config, base_dir, changed.clone());
    if tokio::time::timeout(wait, changed.notified())
        .await
        .is_err()
    {
        tracing::warn!(
            "the Kubernetes API did not list this node's pods within {wait:?} \
             (log_collection.pod_labels_wait); reading pod logs without their app label until it does"
        );
        metadata.stop_waiting();
        changed.notified().await;
    }
    loop {
        let pods: BTreeMap<(String, String), Labels> = discovery.with_stores(|stores| {
            stores
                .pods
                .iter()
                .map(|(key, pod)| {
                    let labels = pod.metadata.labels.iter().flatten();
                    (key.clone(), Labels::from_pairs(labels))
                })
                .collect()
        });
        metadata.replace(pods);
        changed.notified().await;
    }
}
