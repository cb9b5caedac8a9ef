//! ServiceMonitor and PodMonitor (monitoring.coreos.com/v1) turned into scrape jobs the way
//! prometheus-operator turns them into Prometheus configuration.
//!
//! Follows prometheus-operator's `pkg/prometheus/promcfg.go` and its API reference
//! (<https://prometheus-operator.dev/docs/api-reference/api/>): every endpoint of a
//! ServiceMonitor is a job `serviceMonitor/<namespace>/<name>/<index>` over `endpointslice`
//! (or `endpoints`) discovery, every endpoint of a PodMonitor a job
//! `podMonitor/<namespace>/<name>/<index>` over `pod` discovery, with the relabelings the
//! operator generates: keep on the selector (`matchLabels` and `matchExpressions`), drop
//! pods that are Failed or Succeeded, keep the named port / `targetPort` / `portNumber`,
//! set `namespace`, `service`, `pod`, `container`, `node`, the `targetLabels` and
//! `podTargetLabels`, `job` (service name, `<ns>/<name>` for PodMonitors, or `jobLabel`),
//! `endpoint`; then the object's own `relabelings`; `metricRelabelings` become
//! `metric_relabel_configs`. `namespaceSelector` gives the namespaces (`any: true`: all;
//! none given: the monitor's own).
//!
//! Decisions: the CRDs are read with our own serde types holding only the fields used, and
//! a `spec` that does not parse, or makes an invalid job (a timeout above the interval, say),
//! skips that monitor (or endpoint) with a warning instead of failing the others. Intervals
//! left unset inherit `global` as in the operator's output. Credentials come from Secrets in
//! the monitor's namespace (`basicAuth`, `bearerTokenSecret`, `authorization`), read by name
//! (see [`secret_references`]); an endpoint whose non-optional Secret key is missing is
//! skipped with a warning, as the operator skips it. `oauth2` and TLS material from Secrets
//! are not supported yet (warned); `bearerTokenFile` and `tlsConfig` file paths pass through.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::{Value, json};
use sightline_core::config::kubernetes::KubernetesConfig;
use sightline_core::config::{Config, ScrapeConfig};

use super::kubernetes::{Stores, sanitize};

macro_rules! monitor_resource {
    ($name:ident, $kind:literal, $plural:literal) => {
        #[doc = concat!("A `", $kind, "` (monitoring.coreos.com/v1); the spec is parsed when used.")]
        #[derive(Debug, Clone, Deserialize)]
        pub struct $name {
            /// Name, namespace, labels.
            pub metadata: ObjectMeta,
            /// The spec as sent; see the module docs for the fields read.
            #[serde(default)]
            pub spec: Value,
        }

        impl kube::Resource for $name {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("monitoring.coreos.com")
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("v1")
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

monitor_resource!(ServiceMonitor, "ServiceMonitor", "servicemonitors");
monitor_resource!(PodMonitor, "PodMonitor", "podmonitors");
monitor_resource!(PrometheusRule, "PrometheusRule", "prometheusrules");

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceMonitorSpec {
    job_label: String,
    target_labels: Vec<String>,
    pod_target_labels: Vec<String>,
    endpoints: Vec<Endpoint>,
    selector: LabelSelector,
    namespace_selector: NamespaceSelector,
    #[serde(flatten)]
    limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PodMonitorSpec {
    job_label: String,
    pod_target_labels: Vec<String>,
    pod_metrics_endpoints: Vec<Endpoint>,
    selector: LabelSelector,
    namespace_selector: NamespaceSelector,
    #[serde(flatten)]
    limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Limits {
    sample_limit: Option<u64>,
    target_limit: Option<u64>,
    label_limit: Option<u64>,
    label_name_length_limit: Option<u64>,
    label_value_length_limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LabelSelector {
    match_labels: BTreeMap<String, String>,
    match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LabelSelectorRequirement {
    key: String,
    operator: String,
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NamespaceSelector {
    any: bool,
    match_names: Vec<String>,
}

/// An entry of `endpoints` (ServiceMonitor) or `podMetricsEndpoints` (PodMonitor).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Endpoint {
    port: String,
    port_number: Option<u32>,
    target_port: Option<Value>,
    path: Option<String>,
    scheme: Option<String>,
    params: BTreeMap<String, Vec<String>>,
    interval: Option<String>,
    scrape_timeout: Option<String>,
    honor_labels: bool,
    honor_timestamps: Option<bool>,
    follow_redirects: Option<bool>,
    filter_running: Option<bool>,
    bearer_token_file: Option<String>,
    tls_config: Option<TlsConfig>,
    relabelings: Vec<Relabeling>,
    metric_relabelings: Vec<Relabeling>,
    basic_auth: Option<BasicAuthRef>,
    bearer_token_secret: Option<SecretKey>,
    authorization: Option<AuthorizationRef>,
    oauth2: Option<Value>,
}

/// A key of a Secret in the monitor's namespace.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SecretKey {
    name: String,
    key: String,
    optional: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BasicAuthRef {
    username: Option<SecretKey>,
    password: Option<SecretKey>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AuthorizationRef {
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials: Option<SecretKey>,
}

impl Endpoint {
    fn secret_keys(&self) -> impl Iterator<Item = &SecretKey> {
        let basic = self.basic_auth.as_ref();
        [
            basic.and_then(|b| b.username.as_ref()),
            basic.and_then(|b| b.password.as_ref()),
            self.bearer_token_secret.as_ref(),
            self.authorization
                .as_ref()
                .and_then(|a| a.credentials.as_ref()),
        ]
        .into_iter()
        .flatten()
    }
}

/// The Secrets (`(namespace, name)`) the monitors in `stores` take credentials from.
pub fn secret_references(stores: &Stores) -> BTreeSet<(String, String)> {
    let mut wanted = BTreeSet::new();
    let mut add = |meta: &ObjectMeta, endpoints: &[Endpoint]| {
        let namespace = meta.namespace.clone().unwrap_or_default();
        for key in endpoints.iter().flat_map(Endpoint::secret_keys) {
            wanted.insert((namespace.clone(), key.name.clone()));
        }
    };
    for monitor in stores.service_monitors.values() {
        if let Ok(spec) = serde_json::from_value::<ServiceMonitorSpec>(monitor.spec.clone()) {
            add(&monitor.metadata, &spec.endpoints);
        }
    }
    for monitor in stores.pod_monitors.values() {
        if let Ok(spec) = serde_json::from_value::<PodMonitorSpec>(monitor.spec.clone()) {
            add(&monitor.metadata, &spec.pod_metrics_endpoints);
        }
    }
    wanted
}

/// The value of a Secret key; `Ok(None)` for a missing optional one.
fn secret_value(
    stores: &Stores,
    namespace: &str,
    key: &SecretKey,
) -> Result<Option<String>, String> {
    let value = stores
        .secrets
        .get(&(namespace.to_owned(), key.name.clone()))
        .and_then(|secret| secret.data.as_ref())
        .and_then(|data| data.get(&key.key));
    match value {
        Some(bytes) => String::from_utf8(bytes.0.clone())
            .map(Some)
            .map_err(|_| format!("key {:?} of secret {:?} is not UTF-8", key.key, key.name)),
        None if key.optional => Ok(None),
        None => Err(format!(
            "secret {namespace}/{} has no key {:?} (or cannot be read)",
            key.name, key.key
        )),
    }
}

/// Sets `basic_auth` / `authorization` on `job` from the endpoint's Secret references.
fn add_credentials(
    job: &mut Value,
    endpoint: &Endpoint,
    stores: &Stores,
    namespace: &str,
) -> Result<(), String> {
    let read = |key: &Option<SecretKey>| match key {
        Some(key) => secret_value(stores, namespace, key),
        None => Ok(None),
    };
    if let Some(basic) = &endpoint.basic_auth {
        job["basic_auth"] = json!({
            "username": read(&basic.username)?.unwrap_or_default(),
            "password": read(&basic.password)?.unwrap_or_default(),
        });
    }
    if let Some(token) = read(&endpoint.bearer_token_secret)? {
        job["authorization"] = json!({"type": "Bearer", "credentials": token});
    }
    if let Some(authorization) = &endpoint.authorization
        && let Some(credentials) = read(&authorization.credentials)?
    {
        let kind = authorization
            .kind
            .clone()
            .unwrap_or_else(|| "Bearer".into());
        job["authorization"] = json!({"type": kind, "credentials": credentials});
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TlsConfig {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    server_name: Option<String>,
    insecure_skip_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Relabeling {
    source_labels: Vec<String>,
    separator: Option<String>,
    target_label: Option<String>,
    regex: Option<String>,
    modulus: Option<u64>,
    replacement: Option<String>,
    action: Option<String>,
}

impl Relabeling {
    fn to_prometheus(&self) -> Value {
        let mut out = serde_json::Map::new();
        if !self.source_labels.is_empty() {
            out.insert("source_labels".into(), json!(self.source_labels));
        }
        let optional = [
            ("separator", self.separator.clone()),
            ("target_label", self.target_label.clone()),
            ("regex", self.regex.clone()),
            ("replacement", self.replacement.clone()),
            ("action", self.action.as_ref().map(|a| a.to_lowercase())),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.insert(name.into(), json!(value));
            }
        }
        if let Some(modulus) = self.modulus {
            out.insert("modulus".into(), json!(modulus));
        }
        Value::Object(out)
    }
}

/// The scrape jobs the monitors in `stores` make, in job-name order. `kubernetes` says how
/// the jobs' discovery reaches the API; `config` supplies `global` and the user's job names
/// (a monitor job never replaces one of those).
pub fn scrape_configs(
    stores: &Stores,
    config: &Config,
    kubernetes: &KubernetesConfig,
) -> Vec<ScrapeConfig> {
    let mut jobs = Vec::new();
    // One job per endpoint of a monitor, built by `job_of(endpoint, index)`.
    let mut add =
        |meta: &ObjectMeta, endpoints: &[Endpoint], job_of: &dyn Fn(&Endpoint, usize) -> Value| {
            for (index, endpoint) in endpoints.iter().enumerate() {
                jobs.extend(
                    with_credentials(job_of(endpoint, index), endpoint, stores, meta)
                        .and_then(|job| parse_job(config, job)),
                );
            }
        };
    for monitor in stores.service_monitors.values() {
        let meta = &monitor.metadata;
        match serde_json::from_value::<ServiceMonitorSpec>(monitor.spec.clone()) {
            Ok(spec) => add(meta, &spec.endpoints, &|endpoint, index| {
                service_monitor_job(meta, &spec, endpoint, index, kubernetes)
            }),
            Err(error) => warn_skip("ServiceMonitor", meta, &error.to_string()),
        }
    }
    for monitor in stores.pod_monitors.values() {
        let meta = &monitor.metadata;
        match serde_json::from_value::<PodMonitorSpec>(monitor.spec.clone()) {
            Ok(spec) => add(meta, &spec.pod_metrics_endpoints, &|endpoint, index| {
                pod_monitor_job(meta, &spec, endpoint, index, kubernetes)
            }),
            Err(error) => warn_skip("PodMonitor", meta, &error.to_string()),
        }
    }
    jobs.retain(|job: &ScrapeConfig| {
        let taken = config
            .scrape_configs
            .iter()
            .any(|own| own.job_name == job.job_name);
        if taken {
            tracing::warn!(
                job = job.job_name,
                "a scrape_configs job has the name of a monitor's job; the monitor's is skipped"
            );
        }
        !taken
    });
    jobs.sort_by(|a, b| a.job_name.cmp(&b.job_name));
    jobs
}

/// `job` with the endpoint's credentials, or `None` (warned) when a Secret is missing, as
/// prometheus-operator skips such a monitor.
fn with_credentials(
    mut job: Value,
    endpoint: &Endpoint,
    stores: &Stores,
    meta: &ObjectMeta,
) -> Option<Value> {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    match add_credentials(&mut job, endpoint, stores, namespace) {
        Ok(()) => Some(job),
        Err(error) => {
            warn_skip("endpoint of monitor", meta, &error);
            None
        }
    }
}

fn warn_skip(kind: &str, meta: &ObjectMeta, error: &str) {
    tracing::warn!(
        "{kind} {}/{} skipped: {error}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    );
}

/// Checks a generated job as if it were in the config file, with `global` inherited.
fn parse_job(config: &Config, job: Value) -> Option<ScrapeConfig> {
    let name = job["job_name"].as_str().unwrap_or("").to_owned();
    let global = match serde_json::to_value(&config.global) {
        Ok(global) => global,
        Err(error) => {
            tracing::warn!(job = name, "cannot render global settings: {error}");
            return None;
        }
    };
    let document = json!({"global": global, "scrape_configs": [job]});
    match Config::parse(Path::new(&name), &document.to_string()) {
        Ok(mut parsed) => parsed.scrape_configs.pop(),
        Err(error) => {
            tracing::warn!(job = name, "monitor endpoint skipped: {error}");
            None
        }
    }
}

fn relabel(source: &[&str], target: &str, regex: Option<&str>, replacement: Option<&str>) -> Value {
    let mut rule = json!({"target_label": target});
    if !source.is_empty() {
        rule["source_labels"] = json!(source);
    }
    if let Some(regex) = regex {
        rule["regex"] = json!(regex);
    }
    if let Some(replacement) = replacement {
        rule["replacement"] = json!(replacement);
    }
    rule
}

fn filter(action: &str, source: &[String], regex: &str) -> Value {
    json!({"action": action, "source_labels": source, "regex": regex})
}

/// The operator's keep/drop rules for a label selector over `<prefix>_label_*`.
fn selector_rules(selector: &LabelSelector, prefix: &str) -> Vec<Value> {
    let label = |key: &str| format!("{prefix}_label_{}", sanitize(key));
    let present = |key: &str| format!("{prefix}_labelpresent_{}", sanitize(key));
    let mut rules = Vec::new();
    for (key, value) in &selector.match_labels {
        rules.push(filter(
            "keep",
            &[label(key), present(key)],
            &format!("({value});true"),
        ));
    }
    for requirement in &selector.match_expressions {
        let key = &requirement.key;
        let values = requirement.values.join("|");
        match requirement.operator.as_str() {
            "In" => rules.push(filter(
                "keep",
                &[label(key), present(key)],
                &format!("({values});true"),
            )),
            "NotIn" => rules.push(filter(
                "drop",
                &[label(key), present(key)],
                &format!("({values});true"),
            )),
            "Exists" => rules.push(filter("keep", &[present(key)], "true")),
            "DoesNotExist" => rules.push(filter("drop", &[present(key)], "true")),
            other => tracing::warn!("label selector operator {other:?} is not known; ignored"),
        }
    }
    rules
}

/// `namespaces` of the discovery: `None` for all.
fn namespaces(selector: &NamespaceSelector, own: &str) -> Option<Vec<String>> {
    if selector.any {
        None
    } else if selector.match_names.is_empty() {
        Some(vec![own.to_owned()])
    } else {
        Some(selector.match_names.clone())
    }
}

/// The parts of a job that do not depend on the monitor's kind.
fn base_job(
    name: String,
    role: &str,
    namespaces: Option<Vec<String>>,
    endpoint: &Endpoint,
    limits: &Limits,
    kubernetes: &KubernetesConfig,
    meta: &ObjectMeta,
) -> Value {
    let mut sd = json!({"role": role});
    if let Some(names) = namespaces {
        sd["namespaces"] = json!({"names": names});
    }
    if let Some(url) = &kubernetes.api_server {
        sd["api_server"] = json!(url.as_str());
    }
    if let Some(path) = &kubernetes.kubeconfig_file {
        sd["kubeconfig_file"] = json!(path);
    }
    let mut job = json!({
        "job_name": name,
        "honor_labels": endpoint.honor_labels,
        "kubernetes_sd_configs": [sd],
        "metric_relabel_configs": endpoint.metric_relabelings.iter().map(Relabeling::to_prometheus).collect::<Vec<_>>(),
    });
    let optional = [
        ("metrics_path", endpoint.path.clone()),
        ("scheme", endpoint.scheme.as_ref().map(|s| s.to_lowercase())),
        ("scrape_interval", endpoint.interval.clone()),
        ("scrape_timeout", endpoint.scrape_timeout.clone()),
        ("bearer_token_file", endpoint.bearer_token_file.clone()),
    ];
    for (key, value) in optional {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            job[key] = json!(value);
        }
    }
    if !endpoint.params.is_empty() {
        job["params"] = json!(endpoint.params);
    }
    if let Some(value) = endpoint.honor_timestamps {
        job["honor_timestamps"] = json!(value);
    }
    if let Some(value) = endpoint.follow_redirects {
        job["follow_redirects"] = json!(value);
    }
    if let Some(tls) = &endpoint.tls_config {
        let mut out = json!({"insecure_skip_verify": tls.insecure_skip_verify});
        for (key, value) in [
            ("ca_file", &tls.ca_file),
            ("cert_file", &tls.cert_file),
            ("key_file", &tls.key_file),
            ("server_name", &tls.server_name),
        ] {
            if let Some(value) = value {
                out[key] = json!(value);
            }
        }
        job["tls_config"] = out;
    }
    let limits = [
        ("sample_limit", limits.sample_limit),
        ("target_limit", limits.target_limit),
        ("label_limit", limits.label_limit),
        ("label_name_length_limit", limits.label_name_length_limit),
        ("label_value_length_limit", limits.label_value_length_limit),
    ];
    for (key, value) in limits {
        if let Some(value) = value {
            job[key] = json!(value);
        }
    }
    if endpoint.oauth2.is_some() {
        tracing::warn!(
            "{}/{}: oauth2 is not supported yet; scraping without it",
            meta.namespace.as_deref().unwrap_or(""),
            meta.name.as_deref().unwrap_or("")
        );
    }
    job
}

fn target_port(endpoint: &Endpoint) -> Option<(bool, String)> {
    match &endpoint.target_port {
        Some(Value::Number(number)) => Some((true, number.to_string())),
        Some(Value::String(name)) if !name.is_empty() => Some((false, name.clone())),
        _ => None,
    }
}

fn service_monitor_job(
    meta: &ObjectMeta,
    spec: &ServiceMonitorSpec,
    endpoint: &Endpoint,
    index: usize,
    kubernetes: &KubernetesConfig,
) -> Value {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let name = meta.name.as_deref().unwrap_or("");
    let slices = kubernetes.use_endpointslices.unwrap_or(true);
    let (role, prefix) = if slices {
        ("endpointslice", "__meta_kubernetes_endpointslice")
    } else {
        ("endpoints", "__meta_kubernetes_endpoint")
    };
    let mut job = base_job(
        format!("serviceMonitor/{namespace}/{name}/{index}"),
        role,
        namespaces(&spec.namespace_selector, namespace),
        endpoint,
        &spec.limits,
        kubernetes,
        meta,
    );
    let mut rules = vec![relabel(&["job"], "__tmp_prometheus_job_name", None, None)];
    rules.extend(selector_rules(&spec.selector, "__meta_kubernetes_service"));
    if !endpoint.port.is_empty() {
        let port_name = if slices {
            "__meta_kubernetes_endpointslice_port_name"
        } else {
            "__meta_kubernetes_endpoint_port_name"
        };
        rules.push(filter("keep", &[port_name.into()], &endpoint.port));
    } else if let Some((numeric, port)) = target_port(endpoint) {
        let label = if numeric {
            "__meta_kubernetes_pod_container_port_number"
        } else {
            "__meta_kubernetes_pod_container_port_name"
        };
        rules.push(filter("keep", &[label.into()], &port));
    }
    let kind = format!("{prefix}_address_target_kind");
    let target = format!("{prefix}_address_target_name");
    for (object, label) in [("Node", "node"), ("Pod", "pod")] {
        rules.push(json!({
            "source_labels": [kind, target], "separator": ";",
            "regex": format!("{object};(.*)"), "replacement": "${1}", "target_label": label,
        }));
    }
    if endpoint.filter_running.unwrap_or(true) {
        rules.push(filter(
            "drop",
            &["__meta_kubernetes_pod_phase".into()],
            "(Failed|Succeeded)",
        ));
    }
    rules.push(relabel(
        &["__meta_kubernetes_namespace"],
        "namespace",
        None,
        None,
    ));
    rules.push(relabel(
        &["__meta_kubernetes_service_name"],
        "service",
        None,
        None,
    ));
    rules.push(relabel(&["__meta_kubernetes_pod_name"], "pod", None, None));
    rules.push(relabel(
        &["__meta_kubernetes_pod_container_name"],
        "container",
        None,
        None,
    ));
    for label in &spec.target_labels {
        let source = format!("__meta_kubernetes_service_label_{}", sanitize(label));
        rules.push(relabel(
            &[&source],
            &sanitize(label),
            Some("(.+)"),
            Some("${1}"),
        ));
    }
    for label in &spec.pod_target_labels {
        let source = format!("__meta_kubernetes_pod_label_{}", sanitize(label));
        rules.push(relabel(
            &[&source],
            &sanitize(label),
            Some("(.+)"),
            Some("${1}"),
        ));
    }
    rules.push(relabel(
        &["__meta_kubernetes_service_name"],
        "job",
        None,
        Some("${1}"),
    ));
    if !spec.job_label.is_empty() {
        let source = format!(
            "__meta_kubernetes_service_label_{}",
            sanitize(&spec.job_label)
        );
        rules.push(relabel(&[&source], "job", Some("(.+)"), Some("${1}")));
    }
    if !endpoint.port.is_empty() {
        rules.push(relabel(&[], "endpoint", None, Some(&endpoint.port)));
    } else if let Some((_, port)) = target_port(endpoint) {
        rules.push(relabel(&[], "endpoint", None, Some(&port)));
    }
    rules.extend(endpoint.relabelings.iter().map(Relabeling::to_prometheus));
    job["relabel_configs"] = json!(rules);
    job
}

fn pod_monitor_job(
    meta: &ObjectMeta,
    spec: &PodMonitorSpec,
    endpoint: &Endpoint,
    index: usize,
    kubernetes: &KubernetesConfig,
) -> Value {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let name = meta.name.as_deref().unwrap_or("");
    let mut job = base_job(
        format!("podMonitor/{namespace}/{name}/{index}"),
        "pod",
        namespaces(&spec.namespace_selector, namespace),
        endpoint,
        &spec.limits,
        kubernetes,
        meta,
    );
    let mut rules = vec![relabel(&["job"], "__tmp_prometheus_job_name", None, None)];
    rules.extend(selector_rules(&spec.selector, "__meta_kubernetes_pod"));
    if endpoint.filter_running.unwrap_or(true) {
        rules.push(filter(
            "drop",
            &["__meta_kubernetes_pod_phase".into()],
            "(Failed|Succeeded)",
        ));
    }
    let port_label = if !endpoint.port.is_empty() {
        let name = "__meta_kubernetes_pod_container_port_name";
        rules.push(filter("keep", &[name.into()], &endpoint.port));
        Some(endpoint.port.clone())
    } else if let Some(number) = endpoint.port_number {
        let label = "__meta_kubernetes_pod_container_port_number";
        rules.push(filter("keep", &[label.into()], &number.to_string()));
        Some(number.to_string())
    } else if let Some((numeric, port)) = target_port(endpoint) {
        let label = if numeric {
            "__meta_kubernetes_pod_container_port_number"
        } else {
            "__meta_kubernetes_pod_container_port_name"
        };
        rules.push(filter("keep", &[label.into()], &port));
        Some(port)
    } else {
        None
    };
    rules.push(relabel(
        &["__meta_kubernetes_namespace"],
        "namespace",
        None,
        None,
    ));
    rules.push(relabel(
        &["__meta_kubernetes_pod_container_name"],
        "container",
        None,
        None,
    ));
    rules.push(relabel(&["__meta_kubernetes_pod_name"], "pod", None, None));
    for label in &spec.pod_target_labels {
        let source = format!("__meta_kubernetes_pod_label_{}", sanitize(label));
        rules.push(relabel(
            &[&source],
            &sanitize(label),
            Some("(.+)"),
            Some("${1}"),
        ));
    }
    rules.push(relabel(
        &[],
        "job",
        None,
        Some(&format!("{namespace}/{name}")),
    ));
    if !spec.job_label.is_empty() {
        let source = format!("__meta_kubernetes_pod_label_{}", sanitize(&spec.job_label));
        rules.push(relabel(&[&source], "job", Some("(.+)"), Some("${1}")));
    }
    if let Some(port) = port_label {
        rules.push(relabel(&[], "endpoint", None, Some(&port)));
    }
    rules.extend(endpoint.relabelings.iter().map(Relabeling::to_prometheus));
    job["relabel_configs"] = json!(rules);
    job
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sightline_core::labels::Labels;

    use super::*;
    use crate::target::Target;

    fn monitor(spec: Value) -> ServiceMonitor {
        ServiceMonitor {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            },
            spec,
        }
    }

    fn jobs(spec: Value) -> Vec<ScrapeConfig> {
        jobs_with(spec, &KubernetesConfig::default())
    }

    fn jobs_with(spec: Value, kubernetes: &KubernetesConfig) -> Vec<ScrapeConfig> {
        let mut stores = Stores::default();
        stores
            .service_monitors
            .insert(("shop".into(), "web".into()), monitor(spec));
        let config = Config::parse(Path::new("t.yml"), "global: {scrape_interval: 20s}\n").unwrap();
        scrape_configs(&stores, &config, kubernetes)
    }

    /// The labels of a discovered endpointslice target after the job's relabeling, or None
    /// when it is dropped.
    fn after(job: &ScrapeConfig, pairs: &[(&str, &str)]) -> Option<Labels> {
        let target = Labels::from_pairs(pairs.iter().copied());
        Target::populate(job, &target, &Labels::new())
            .unwrap()
            .map(|t| t.labels())
    }

    #[test]
    fn selector_ports_and_labels_follow_the_operator() {
        let jobs = jobs(json!({
            "jobLabel": "app.kubernetes.io/name",
            "targetLabels": ["tier"],
            "podTargetLabels": ["version"],
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                    {"key": "canary", "operator": "DoesNotExist"}
                ]
            },
            "namespaceSelector": {"matchNames": ["shop", "shop-staging"]},
            "endpoints": [
                {"targetPort": 8080, "path": "/stats", "scheme": "HTTPS", "params": {"format": ["prometheus"]}},
                {"port": "admin", "interval": "1m", "scrapeTimeout": "90s"}
            ]
        }));
        // The second endpoint's timeout is above its interval: skipped, as Prometheus
        // would reject it.
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.job_name, "serviceMonitor/shop/web/0");
        assert_eq!(job.scrape_interval.to_string(), "20s");
        assert_eq!(job.metrics_path, "/stats");
        assert_eq!(
            job.kubernetes_sd_configs[0].namespaces.names,
            ["shop", "shop-staging"]
        );

        let base = [
            ("__address__", "10.1.0.5:8080"),
            ("__meta_kubernetes_namespace", "shop"),
            ("__meta_kubernetes_service_name", "web-svc"),
            (
                "__meta_kubernetes_service_label_app_kubernetes_io_name",
                "web",
            ),
            (
                "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name",
                "true",
            ),
            ("__meta_kubernetes_service_label_tier", "front"),
            ("__meta_kubernetes_service_labelpresent_tier", "true"),
            ("__meta_kubernetes_pod_name", "web-1"),
            ("__meta_kubernetes_pod_label_version", "v2"),
            ("__meta_kubernetes_pod_container_name", "app"),
            ("__meta_kubernetes_pod_container_port_number", "8080"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            (
                "__meta_kubernetes_endpointslice_address_target_name",
                "web-1",
            ),
        ];
        assert_eq!(
            after(job, &base),
            Some(Labels::from_pairs([
                ("container", "app"),
                ("endpoint", "8080"),
                ("instance", "10.1.0.5:8080"),
                ("job", "web"),
                ("namespace", "shop"),
                ("pod", "web-1"),
                ("service", "web-svc"),
                ("tier", "front"),
                ("version", "v2"),
            ]))
        );
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            after(job, &pairs)
        };
        assert_eq!(
            with(&[("__meta_kubernetes_service_labelpresent_canary", "true")]),
            None
        );
        assert_eq!(
            with(&[("__meta_kubernetes_service_label_tier", "back")]),
            None
        );
        assert_eq!(
            with(&[("__meta_kubernetes_pod_container_port_number", "9090")]),
            None
        );
        assert_eq!(with(&[("__meta_kubernetes_pod_phase", "Succeeded")]), None);
        let kept = Target::populate(job, &Labels::from_pairs(base), &Labels::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            kept.url().unwrap().as_str(),
            "https://10.1.0.5:8080/stats?format=prometheus"
        );
    }

    #[test]
    fn a_spec_that_does_not_parse_skips_only_its_monitor() {
        assert!(jobs(json!({"endpoints": "not a list"})).is_empty());
        assert_eq!(
            jobs(json!({"endpoints": [{"port": "web"}], "selector": {}})).len(),
            1
        );
    }

    #[test]
    fn endpoints_discovery_when_endpointslices_are_off() {
        let kubernetes = KubernetesConfig {
            use_endpointslices: Some(false),
            ..KubernetesConfig::default()
        };
        let spec = json!({"endpoints": [{"port": "web"}], "namespaceSelector": {"any": true}});
        let jobs = jobs_with(spec, &kubernetes);
        let job = &jobs[0];
        assert_eq!(
            job.kubernetes_sd_configs[0].role,
            sightline_core::config::scrape::KubernetesRole::Endpoints
        );
        assert!(job.kubernetes_sd_configs[0].namespaces.names.is_empty());
        let target = [
            ("__address__", "10.1.0.5:80"),
            ("__meta_kubernetes_endpoint_port_name", "web"),
            ("__meta_kubernetes_endpoint_address_target_kind", "Node"),
            ("__meta_kubernetes_endpoint_address_target_name", "node-a"),
            ("__meta_kubernetes_service_name", "web"),
        ];
        let labels = after(job, &target).unwrap();
        assert_eq!(labels.get("node"), Some("node-a"));
        assert_eq!(labels.get("endpoint"), Some("web"));
        let mut other_port = target.to_vec();
        other_port[1].1 = "admin";
        assert_eq!(after(job, &other_port), None);
    }

    #[test]
    fn every_kube_prometheus_service_monitor_endpoint_becomes_a_job() {
        // Relative to the package root, where cargo runs tests.
        let dir = "../../shared/fixtures/scrape/kube-prometheus";
        let mut stores = Stores::default();
        let mut endpoints = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().contains("-serviceMonitor") {
                continue;
            }
            let monitor: ServiceMonitor =
                yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            endpoints += monitor.spec["endpoints"].as_array().unwrap().len();
            stores.service_monitors.insert(
                (
                    monitor.metadata.namespace.clone().unwrap_or_default(),
                    monitor.metadata.name.clone().unwrap_or_default(),
                ),
                monitor,
            );
        }
        assert!(stores.service_monitors.len() >= 10);
        let config = Config::parse(Path::new("t.yml"), "").unwrap();
        let jobs = scrape_configs(&stores, &config, &KubernetesConfig::default());
        assert_eq!(
            jobs.len(),
            endpoints,
            "{:?}",
            jobs.iter().map(|j| &j.job_name).collect::<Vec<_>>()
        );
        let kubelet: Vec<&ScrapeConfig> = jobs
            .iter()
            .filter(|j| j.job_name.starts_with("serviceMonitor/monitoring/kubelet/"))
            .collect();
        assert!(!kubelet.is_empty());
        assert!(
            kubelet
                .iter()
                .all(|j| j.kubernetes_sd_configs[0].namespaces.names == ["kube-system"])
        );
    }
}
