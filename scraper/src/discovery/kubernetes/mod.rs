//! `kubernetes_sd_configs`: targets from the Kubernetes API, with Prometheus's
//! `__meta_kubernetes_*` labels.
//!
//! Follows <https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config>
//! and Prometheus's `discovery/kubernetes` package for the label names and which objects
//! become which targets (one module per role: [`node`], [`pod`], [`service`], [`endpoints`],
//! [`endpointslice`], [`ingress`]). Objects are followed with kube's list+watch [`kube::runtime::watcher()`],
//! which relists after `410 Gone` and resumes a dropped watch from the last resource version,
//! with backoff on errors.
//!
//! Decisions:
//! - Each watched kind (and namespace) is one task keeping a local copy of its objects; a
//!   relist replaces that copy whole, so objects deleted while the watch was down go away.
//! - Groups are rebuilt from the local copies when asked for ([`KubernetesDiscovery::groups`]),
//!   so that joins (endpoints with their pods and services) are always consistent; at homelab
//!   scale (thousands of objects) that is a millisecond, and it happens only after a change.
//! - A change bumps a generation ([`KubernetesDiscovery::generation`]) and wakes a [`Notify`]
//!   shared with the scrape manager, which then re-syncs the pools that use the discovery
//!   (pools with identical `kubernetes_sd_configs` share one discovery).
//! - `namespaces.own_namespace` reads the service account's namespace file, and falls back to
//!   the kubeconfig's default namespace outside a cluster.
//! - The API client: `api_server` with the config's own auth and TLS (CA file, server name,
//!   insecure; client certificates are not supported there — use a kubeconfig), else
//!   `kubeconfig_file` (relative to the config file), else the in-cluster service account.
//! - `attach_metadata.node` watches every node (the nodes' own selectors do not apply);
//!   `attach_metadata.namespace` watches namespaces; both are joined when groups are built.
//! - The same machinery follows the ServiceMonitors and PodMonitors of the `kubernetes:`
//!   section ([`KubernetesDiscovery::spawn_monitors`], read by [`super::monitors`]); the
//!   Secrets they name are fetched by name after each change and every minute, never listed.
//! - `metadata.managedFields` is dropped before an object is kept (often its largest part).
//! - Label and annotation names are sanitized to `[a-zA-Z0-9_]` as Prometheus does; an empty
//!   value means "absent", as everywhere in Prometheus.

pub mod endpoints;
pub mod endpointslice;
pub mod ingress;
pub mod node;
pub mod pod;
pub mod service;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::runtime::watcher;
use sightline_core::config::scrape::{AttachMetadata, KubernetesRole, KubernetesSdConfig};
use sightline_core::labels::Labels;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::TargetGroup;
use super::monitors::{PodMonitor, PrometheusRule, ServiceMonitor};

/// `__meta_kubernetes_namespace`.
pub const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why a Kubernetes discovery cannot reach its API server.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// The kubeconfig file does not load.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Not running in a cluster and neither `api_server` nor `kubeconfig_file` is set.
    #[error(
        "no in-cluster service account ({0}); set api_server or kubeconfig_file in kubernetes_sd_configs"
    )]
    InCluster(String),
    /// `api_server` or a credential does not make a valid request.
    #[error("kubernetes_sd_configs: {0}")]
    Settings(String),
    /// A credential file cannot be read.
    #[error("kubernetes_sd_configs: cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The client cannot be built (TLS setup).
    #[error("kubernetes client: {0}")]
    Client(String),
}

/// Objects of one kind, by `(namespace, name)` (namespace empty for nodes).
pub type Store<K> = BTreeMap<(String, String), K>;

/// The local copies of every kind a discovery watches.
#[derive(Debug, Default)]
pub struct Stores {
    /// Pods.
    pub pods: Store<Pod>,
    /// Services.
    pub services: Store<Service>,
    /// Endpoints.
    pub endpoints: Store<Endpoints>,
    /// EndpointSlices.
    pub endpoint_slices: Store<EndpointSlice>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// Ingresses.
    pub ingresses: Store<Ingress>,
    /// Namespaces (for `attach_metadata.namespace`), keyed `("", name)`.
    pub namespaces: Store<Namespace>,
    /// ServiceMonitors (monitoring.coreos.com/v1).
    pub service_monitors: Store<ServiceMonitor>,
    /// PodMonitors (monitoring.coreos.com/v1).
    pub pod_monitors: Store<PodMonitor>,
    /// PrometheusRules (monitoring.coreos.com/v1), when the `kubernetes:` section reads them.
    pub prometheus_rules: Store<PrometheusRule>,
    /// The Secrets monitors refer to for credentials (only those are fetched).
    pub secrets: Store<Secret>,
    /// ConfigMaps labelled `grafana_dashboard: "1"`, when the `kubernetes:` section reads them.
    pub dashboards: Store<ConfigMap>,
    /// Deployments. This kind and those below, with every pod, node and namespace, are kept
    /// by the discovery behind the cluster's `kube_*` series
    /// ([`KubernetesDiscovery::spawn_cluster_state`]).
    pub deployments: Store<Deployment>,
    /// StatefulSets.
    pub stateful_sets: Store<StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Store<DaemonSet>,
    /// ReplicaSets.
    pub replica_sets: Store<ReplicaSet>,
    /// Jobs.
    pub jobs: Store<Job>,
    /// HorizontalPodAutoscalers (autoscaling/v2).
    pub horizontal_pod_autoscalers: Store<HorizontalPodAutoscaler>,
    /// PodDisruptionBudgets.
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    /// PersistentVolumeClaims.
    pub persistent_volume_claims: Store<PersistentVolumeClaim>,
    /// PersistentVolumes, keyed `("", name)`.
    pub persistent_volumes: Store<PersistentVolume>,
    /// ResourceQuotas.
    pub resource_quotas: Store<ResourceQuota>,
    /// How the lists and watches of each resource (by plural name) went: `(resource,
    /// request, succeeded)` → count, for kube-state-metrics' `kube_state_metrics_list_total`
    /// and `kube_state_metrics_watch_total`.
    pub requests: BTreeMap<(String, Request, bool), u64>,
}

/// A kind of API request a watch makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Request {
    /// The (re)list of every object.
    List,
    /// A watch from a resource version.
    Watch,
}

impl Stores {
    /// Counts one list or watch of kind `K` and whether it succeeded.
    fn count_request<K: kube::Resource<DynamicType = ()>>(&mut self, request: Request, ok: bool) {
        let resource = K::plural(&()).into_owned();
        *self.requests.entry((resource, request, ok)).or_default() += 1;
    }

    /// Prometheus's `attach_metadata`: the node's name, labels and annotations on pod targets
    /// (by the pod's node) and endpoint targets (by the address's Node target or the
    /// endpoint's node name); the namespace's labels and annotations on every group of a
    /// namespaced role.
    fn attach_metadata(
        &self,
        role: KubernetesRole,
        attach: &AttachMetadata,
        groups: &mut [TargetGroup],
    ) {
        let node_meta = |name: &str| {
            self.nodes
                .get(&(String::new(), name.to_owned()))
                .map(|node| {
                    let mut labels = Labels::new();
                    add_object_meta(&mut labels, &node.metadata, "__meta_kubernetes_node");
                    labels
                })
        };
        let merge = |into: &mut Labels, from: &Labels| {
            for label in from {
                into.set(&label.name, &label.value);
            }
        };
        for group in groups.iter_mut() {
            if attach.node {
                match role {
                    KubernetesRole::Pod => {
                        let node = group.labels.get("__meta_kubernetes_pod_node_name");
                        if let Some(meta) = node.and_then(node_meta) {
                            merge(&mut group.labels, &meta);
                        }
                    }
                    KubernetesRole::Endpoints | KubernetesRole::EndpointSlice => {
                        let prefix = if role == KubernetesRole::Endpoints {
                            "__meta_kubernetes_endpoint"
                        } else {
                            "__meta_kubernetes_endpointslice"
                        };
                        let node_label = if role == KubernetesRole::Endpoints {
                            "__meta_kubernetes_endpoint_node_name"
                        } else {
                            "__meta_kubernetes_endpointslice_endpoint_node_name"
                        };
                        for target in &mut group.targets {
                            let kind = target.get(&format!("{prefix}_address_target_kind"));
                            let node = if kind == Some("Node") {
                                target.get(&format!("{prefix}_address_target_name"))
                            } else {
                                target.get(node_label)
                            };
                            if let Some(meta) = node.and_then(node_meta) {
                                merge(target, &meta);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if attach.namespace && role != KubernetesRole::Node {
                let namespace = group.labels.get(NAMESPACE_LABEL).unwrap_or("").to_owned();
                if let Some(object) = self.namespaces.get(&(String::new(), namespace)) {
                    let mut labels = Labels::new();
                    add_map(
                        &mut labels,
                        object.metadata.labels.as_ref(),
                        "__meta_kubernetes_namespace_label",
                    );
                    add_map(
                        &mut labels,
                        object.metadata.annotations.as_ref(),
                        "__meta_kubernetes_namespace_annotation",
                    );
                    merge(&mut group.labels, &labels);
                }
            }
        }
    }

    /// The groups of `role` built from these objects, sorted by source.
    pub fn groups(&self, role: KubernetesRole) -> Vec<TargetGroup> {
        match role {
            KubernetesRole::Node => self.nodes.values().filter_map(node::group).collect(),
            KubernetesRole::Pod => self.pods.values().map(pod::group).collect(),
            KubernetesRole::Service => self.services.values().map(service::group).collect(),
            KubernetesRole::Endpoints => self
                .endpoints
                .values()
                .map(|object| endpoints::group(object, self))
                .collect(),
            KubernetesRole::EndpointSlice => self
                .endpoint_slices
                .values()
                .map(|object| endpointslice::group(object, self))
                .collect(),
            KubernetesRole::Ingress => self.ingresses.values().map(ingress::group).collect(),
        }
    }
}

/// What the watch tasks share with the discovery handle.
struct Shared {
    stores: Mutex<Stores>,
    generation: AtomicU64,
    error: Mutex<Option<String>>,
    notify: Arc<Notify>,
    /// Wakes the task that fetches the Secrets monitors refer to.
    secrets_wanted: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Stores> {
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_one();
        self.secrets_wanted.notify_one();
    }
}

/// What a discovery watches.
#[derive(Debug, Clone)]
enum Plan {
    /// The kinds a `kubernetes_sd_configs` role needs.
    Role(KubernetesRole),
    /// ServiceMonitors and PodMonitors with these labels, in these namespaces (all: empty),
    /// PrometheusRules with `rule_selector`'s labels and dashboard ConfigMaps with
    /// `dashboard_selector`'s, each unless `None`.
    Monitors {
        label_selector: Option<String>,
        rule_selector: Option<String>,
        dashboard_selector: Option<String>,
        namespaces: Vec<String>,
    },
    /// Every object the cluster's `kube_*` series are made of, in all namespaces. Apart from
    /// the monitors: a pod's status changing must not make the scrape manager rebuild its
    /// monitor jobs or fetch Secrets again.
    ClusterState,
}

/// One `kubernetes_sd_configs` entry (or the `kubernetes:` section's monitors) being
/// followed. Dropping it stops its watches.
pub struct KubernetesDiscovery {
    plan: Plan,
    attach: AttachMetadata,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl KubernetesDiscovery {
    /// Starts following `config` on the current tokio runtime; `base_dir` resolves a relative
    /// `kubeconfig_file` and credential files; `notify` is woken after every change.
    pub fn spawn(config: &KubernetesSdConfig, base_dir: &Path, notify: Arc<Notify>) -> Self {
        Self::spawn_plan(config, Plan::Role(config.role), base_dir, notify)
    }

    /// Starts following the ServiceMonitors and PodMonitors `config` selects, cluster-wide
    /// (or in its namespaces); read them with [`KubernetesDiscovery::with_stores`].
    pub fn spawn_monitors(
        config: &sightline_core::config::kubernetes::KubernetesConfig,
        base_dir: &Path,
        notify: Arc<Notify>,
    ) -> Self {
        let plan = Plan::Monitors {
            label_selector: config.label_selector(),
            rule_selector: config.rule_label_selector(),
            dashboard_selector: config.dashboard_label_selector(),
            namespaces: config.namespaces.clone(),
        };
        Self::spawn_plan(&section_connection(config), plan, base_dir, notify)
    }

    /// Starts following, over the `kubernetes:` section's connection, every object the
    /// cluster's `kube_*` series are made of ([`cluster_state`](crate::cluster_state)); read
    /// them with [`KubernetesDiscovery::with_stores`]. Nothing is woken on changes: the
    /// series are rendered from the copies when scraped.
    pub fn spawn_cluster_state(
        config: &sightline_core::config::kubernetes::KubernetesConfig,
        base_dir: &Path,
    ) -> Self {
        Self::spawn_plan(
            &section_connection(config),
            Plan::ClusterState,
            base_dir,
            Arc::new(Notify::new()),
        )
    }

    fn spawn_plan(
        config: &KubernetesSdConfig,
        plan: Plan,
        base_dir: &Path,
        notify: Arc<Notify>,
    ) -> Self {
        let shared = Arc::new(Shared {
            stores: Mutex::new(Stores::default()),
            generation: AtomicU64::new(0),
            error: Mutex::new(None),
            notify,
            secrets_wanted: Notify::new(),
        });
        let task = tokio::spawn(run(
            config.clone(),
            plan.clone(),
            base_dir.to_owned(),
            shared.clone(),
        ));
        KubernetesDiscovery {
            plan,
            attach: config.attach_metadata.clone(),
            shared,
            task,
        }
    }

    /// The current groups, one per object of the role (none for the monitors' discovery).
    pub fn groups(&self) -> Vec<TargetGroup> {
        match self.plan {
            Plan::Role(role) => {
                let stores = self.shared.lock();
                let mut groups = stores.groups(role);
                stores.attach_metadata(role, &self.attach, &mut groups);
                groups
            }
            Plan::Monitors { .. } | Plan::ClusterState => Vec::new(),
        }
    }

    /// Reads the local copies of the watched objects.
    pub fn with_stores<T>(&self, read: impl FnOnce(&Stores) -> T) -> T {
        read(&self.shared.lock())
    }

    /// A number that grows with every change of the watched objects (a relist included).
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Why the discovery could not start, if it could not.
    pub fn error(&self) -> Option<String> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for KubernetesDiscovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds the client and runs one watch per kind and namespace until aborted.
async fn run(config: KubernetesSdConfig, plan: Plan, base_dir: PathBuf, shared: Arc<Shared>) {
    let client = match client(&config, &base_dir).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!("{error}");
            *shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let role = match plan {
        Plan::Role(role) => role,
        Plan::ClusterState => {
            follow_cluster_state(&mut tasks, &client, &shared);
            while tasks.join_next().await.is_some() {}
            return;
        }
        Plan::Monitors {
            label_selector,
            rule_selector,
            dashboard_selector,
            namespaces,
        } => {
            let namespaces: Vec<Option<String>> = if namespaces.is_empty() {
                vec![None]
            } else {
                namespaces.into_iter().map(Some).collect()
            };
            for namespace in namespaces {
                if let Some(label_selector) = &label_selector {
                    let selectors = watcher::Config::default().labels(label_selector);
                    tasks.spawn(watch::follow(
                        api::<ServiceMonitor>(client.clone(), namespace.as_deref()),
                        selectors.clone(),
                        namespace.clone(),
                        shared.clone(),
                        |stores| &mut stores.service_monitors,
                    ));
                    tasks.spawn(watch::follow(
                        api::<PodMonitor>(client.clone(), namespace.as_deref()),
                        selectors,
                        namespace.clone(),
                        shared.clone(),
                        |stores| &mut stores.pod_monitors,
                    ));
                }
                if let Some(dashboard_selector) = &dashboard_selector {
                    tasks.spawn(watch::follow(
                        api::<ConfigMap>(client.clone(), namespace.as_deref()),
                        watcher::Config::default().labels(dashboard_selector),
                        namespace.clone(),
                        shared.clone(),
                        |stores| &mut stores.dashboards,
                    ));
                }
                if let Some(rule_selector) = &rule_selector {
                    tasks.spawn(watch::follow(
                        api::<PrometheusRule>(client.clone(), namespace.as_deref()),
                        watcher::Config::default().labels(rule_selector),
                        namespace,
                        shared.clone(),
                        |stores| &mut stores.prometheus_rules,
                    ));
                }
            }
            tasks.spawn(fetch_secrets(client.clone(), shared.clone()));
            while tasks.join_next().await.is_some() {}
            return;
        }
    };
    let namespaces = namespaces(&config, &client);
    let with_nodes = config.attach_metadata.node
        && matches!(
            role,
            KubernetesRole::Pod | KubernetesRole::Endpoints | KubernetesRole::EndpointSlice
        );
    if with_nodes {
        tasks.spawn(watch::follow(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            None,
            shared.clone(),
            |stores| &mut stores.nodes,
        ));
    }
    if config.attach_metadata.namespace && role != KubernetesRole::Node {
        tasks.spawn(watch::follow(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            None,
            shared.clone(),
            |stores| &mut stores.namespaces,
        ));
    }
    let kinds: &[KubernetesRole] = match role {
        KubernetesRole::Node => &[KubernetesRole::Node],
        KubernetesRole::Pod => &[KubernetesRole::Pod],
        KubernetesRole::Service => &[KubernetesRole::Service],
        KubernetesRole::Endpoints => &[
            KubernetesRole::Endpoints,
            KubernetesRole::Service,
            KubernetesRole::Pod,
        ],
        KubernetesRole::EndpointSlice => &[
            KubernetesRole::EndpointSlice,
            KubernetesRole::Service,
            KubernetesRole::Pod,
        ],
        KubernetesRole::Ingress => &[KubernetesRole::Ingress],
    };
    for &kind in kinds {
        let selectors = watcher_config(&config, kind);
        if kind == KubernetesRole::Node {
            tasks.spawn(watch::follow(
                Api::<Node>::all(client.clone()),
                selectors,
                None,
                shared.clone(),
                |stores| &mut stores.nodes,
            ));
            continue;
        }
        for namespace in &namespaces {
            let namespace = namespace.clone();
            let (c, s, sh) = (client.clone(), selectors.clone(), shared.clone());
            match kind {
                KubernetesRole::Pod => tasks.spawn(watch::follow(
                    api::<Pod>(c, namespace.as_deref()),
                    s,
                    namespace,
                    sh,
                    |stores| &mut stores.pods,
                )),
                KubernetesRole::Service => tasks.spawn(watch::follow(
                    api::<Service>(c, namespace.as_deref()),
                    s,
                    namespace,
                    sh,
                    |stores| &mut stores.services,
                )),
                KubernetesRole::Endpoints => tasks.spawn(watch::follow(
                    api::<Endpoints>(c, namespace.as_deref()),
                    s,
                    namespace,
                    sh,
                    |stores| &mut stores.endpoints,
                )),
                KubernetesRole::EndpointSlice => tasks.spawn(watch::follow(
                    api::<EndpointSlice>(c, namespace.as_deref()),
                    s,
                    namespace,
                    sh,
                    |stores| &mut stores.endpoint_slices,
                )),
                KubernetesRole::Ingress => tasks.spawn(watch::follow(
                    api::<Ingress>(c, namespace.as_deref()),
                    s,
                    namespace,
                    sh,
                    |stores| &mut stores.ingresses,
                )),
                KubernetesRole::Node => continue,
            };
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// How often the Secrets monitors refer to are fetched again without a monitor change.
const SECRET_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps `stores.secrets` to the Secrets the monitors refer to: fetched after every change
/// and every minute (a Secret's rotation shows within that), forgotten when no longer
/// referred to. Only referenced Secrets are read, by name, so no Secret list is held.
async fn fetch_secrets(client: kube::Client, shared: Arc<Shared>) {
    loop {
        let wanted = super::monitors::secret_references(&shared.lock());
        let mut fetched = Store::new();
        for (namespace, name) in &wanted {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            match api.get_opt(name).await {
                Ok(Some(secret)) => {
                    fetched.insert((namespace.clone(), name.clone()), secret);
                }
                Ok(None) => {
                    tracing::warn!("secret {namespace}/{name} named by a monitor does not exist")
                }
                Err(error) => tracing::warn!("cannot read secret {namespace}/{name}: {error}"),
            }
        }
        let changed = {
            let mut stores = shared.lock();
            let same = stores.secrets.len() == fetched.len()
                && stores
                    .secrets
                    .iter()
                    .zip(&fetched)
                    .all(|((k1, a), (k2, b))| k1 == k2 && a.data == b.data);
            stores.secrets = fetched;
            !same
        };
        if changed {
            shared.mark_changed();
        }
        let _ = tokio::time::timeout(SECRET_REFRESH, shared.secrets_wanted.notified()).await;
    }
}

/// A role-less `kubernetes_sd_configs` entry with the `kubernetes:` section's connection
/// (API server or kubeconfig), for the section's own watches.
fn section_connection(
    config: &sightline_core::config::kubernetes::KubernetesConfig,
) -> KubernetesSdConfig {
    KubernetesSdConfig {
        role: KubernetesRole::Pod,
        api_server: config.api_server.clone(),
        kubeconfig_file: config.kubeconfig_file.clone(),
        namespaces: Default::default(),
        selectors: Vec::new(),
        attach_metadata: Default::default(),
        basic_auth: None,
        authorization: None,
        bearer_token_file: None,
        tls_config: None,
    }
}

/// Follows, in all namespaces, every kind the cluster's `kube_*` series are made of.
fn follow_cluster_state(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &kube::Client,
    shared: &Arc<Shared>,
) {
    fn everywhere<K>(
        tasks: &mut tokio::task::JoinSet<()>,
        client: &kube::Client,
        shared: &Arc<Shared>,
        pick: fn(&mut Stores) -> &mut Store<K>,
    ) where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        tasks.spawn(watch::follow(
            Api::<K>::all(client.clone()),
            watcher::Config::default(),
            None,
            shared.clone(),
            pick,
        ));
    }
    everywhere(tasks, client, shared, |stores| &mut stores.pods);
    everywhere(tasks, client, shared, |stores| &mut stores.nodes);
    everywhere(tasks, client, shared, |stores| &mut stores.namespaces);
    everywhere(tasks, client, shared, |stores| &mut stores.deployments);
    everywhere(tasks, client, shared, |stores| &mut stores.stateful_sets);
    everywhere(tasks, client, shared, |stores| &mut stores.daemon_sets);
    everywhere(tasks, client, shared, |stores| &mut stores.replica_sets);
    everywhere(tasks, client, shared, |stores| &mut stores.jobs);
    everywhere(tasks, client, shared, |stores| {
        &mut stores.horizontal_pod_autoscalers
    });
    everywhere(tasks, client, shared, |stores| {
        &mut stores.pod_disruption_budgets
    });
    everywhere(tasks, client, shared, |stores| {
        &mut stores.persistent_volume_claims
    });
    everywhere(tasks, client, shared, |stores| {
        &mut stores.persistent_volumes
    });
    everywhere(tasks, client, shared, |stores| &mut stores.resource_quotas);
}

fn api<K>(client: kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    }
}

/// The namespaces to watch: `None` alone for all of them.
fn namespaces(config: &KubernetesSdConfig, client: &kube::Client) -> Vec<Option<String>> {
    let mut names: Vec<String> = config.namespaces.names.clone();
    if config.namespaces.own_namespace {
        let own = std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| client.default_namespace().to_owned());
        names.push(own);
    }
    if names.is_empty() {
        return vec![None];
    }
    names.sort();
    names.dedup();
    names.into_iter().map(Some).collect()
}

/// The label and field selectors the config sets for `kind`.
fn watcher_config(config: &KubernetesSdConfig, kind: KubernetesRole) -> watcher::Config {
    let mut result = watcher::Config::default();
    for selector in config.selectors.iter().filter(|s| s.role == kind) {
        if let Some(label) = &selector.label {
            result = result.labels(label);
        }
        if let Some(field) = &selector.field {
            result = result.fields(field);
        }
    }
    result
}

/// The API client `config` asks for.
async fn client(
    config: &KubernetesSdConfig,
    base_dir: &Path,
) -> Result<kube::Client, KubernetesError> {
    let settings = if let Some(url) = &config.api_server {
        let uri = url
            .as_str()
            .parse()
            .map_err(|error| KubernetesError::Settings(format!("api_server {url}: {error}")))?;
        let mut settings = kube::Config::new(uri);
        apply_auth(config, base_dir, &mut settings)?;
        settings
    } else if let Some(path) = &config.kubeconfig_file {
        let path = base_dir.join(path);
        let kubeconfig_error = |message: String| KubernetesError::Kubeconfig {
            path: path.clone(),
            message,
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .map_err(|error| kubeconfig_error(error.to_string()))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|error| kubeconfig_error(error.to_string()))?
    } else {
        kube::Config::incluster().map_err(|error| KubernetesError::InCluster(error.to_string()))?
    };
    kube::Client::try_from(settings).map_err(|error| KubernetesError::Client(error.to_string()))
}

/// Applies `basic_auth`, `authorization`, `bearer_token_file` and `tls_config` of an
/// `api_server` config.
fn apply_auth(
    config: &KubernetesSdConfig,
    base_dir: &Path,
    settings: &mut kube::Config,
) -> Result<(), KubernetesError> {
    let read = |path: &Path| {
        let path = base_dir.join(path);
        std::fs::read_to_string(&path)
            .map(|text| text.trim().to_owned())
            .map_err(|source| KubernetesError::ReadFile { path, source })
    };
    let mut header = None;
    if let Some(basic) = &config.basic_auth {
        use base64::Engine as _;
        let username = match &basic.username_file {
            Some(path) => read(path)?,
            None => basic.username.clone(),
        };
        let password = match (&basic.password, &basic.password_file) {
            (_, Some(path)) => read(path)?,
            (Some(password), None) => password.clone(),
            (None, None) => String::new(),
        };
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        header = Some(format!("Basic {encoded}"));
    }
    if let Some(authorization) = &config.authorization {
        let credentials = match (&authorization.credentials, &authorization.credentials_file) {
            (_, Some(path)) => read(path)?,
            (Some(credentials), None) => credentials.clone(),
            (None, None) => String::new(),
        };
        header = Some(format!("{} {credentials}", authorization.kind));
    }
    if let Some(path) = &config.bearer_token_file {
        settings.auth_info.token_file = Some(base_dir.join(path).to_string_lossy().into_owned());
    }
    if let Some(value) = header {
        let name = "authorization"
            .parse()
            .map_err(|_| KubernetesError::Settings("bad header name".into()))?;
        let value = value.parse().map_err(|_| {
            KubernetesError::Settings("credentials hold characters a header cannot".into())
        })?;
        settings.headers.push((name, value));
    }
    if let Some(tls) = &config.tls_config {
        if let Some(ca) = &tls.ca_file {
            settings.root_cert_file = Some(base_dir.join(ca));
        }
        settings.accept_invalid_certs = tls.insecure_skip_verify;
        settings.tls_server_name.clone_from(&tls.server_name);
        if tls.cert_file.is_some() {
            return Err(KubernetesError::Settings(
                "tls_config cert_file/key_file are not supported with api_server; use kubeconfig_file"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// A label name made of `[a-zA-Z0-9_]` only, as Prometheus's `strutil.SanitizeLabelName`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Prometheus's `addObjectMetaLabels`: `<prefix>_name` and `<prefix>_label_*`,
/// `_labelpresent_*`, `_annotation_*`, `_annotationpresent_*`, where `prefix` is e.g.
/// `__meta_kubernetes_pod`. The namespace is not among them: each role sets it where
/// Prometheus does.
pub fn add_object_meta(labels: &mut Labels, meta: &ObjectMeta, prefix: &str) {
    labels.set(
        &format!("{prefix}_name"),
        meta.name.as_deref().unwrap_or(""),
    );
    add_map(labels, meta.labels.as_ref(), &format!("{prefix}_label"));
    add_map(
        labels,
        meta.annotations.as_ref(),
        &format!("{prefix}_annotation"),
    );
}

fn add_map(labels: &mut Labels, map: Option<&BTreeMap<String, String>>, prefix: &str) {
    for (name, value) in map.into_iter().flatten() {
        let name = sanitize(name);
        labels.set(&format!("{prefix}_{name}"), value);
        labels.set(&format!("{prefix}present_{name}"), "true");
    }
}

/// `(namespace, name)` of an object.
pub(crate) fn key(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// `host:port`, bracketing IPv6 hosts as Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
