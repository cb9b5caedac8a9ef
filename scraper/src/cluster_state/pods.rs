//! `kube_pod_*` and `kube_pod_container_*` / `kube_pod_init_container_*`: pod info and
//! owners, phase, readiness, scheduling and eviction reasons, and per container its state,
//! reasons, restarts and resource requests and limits.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};

use super::{Families, Metric, counter, flag, gauge, name_of, owners, quantity, seconds, with};

const INFO: Metric = gauge("kube_pod_info", "Information about pod.");
const OWNER: Metric = gauge("kube_pod_owner", "Information about the Pod's owner.");
const CREATED: Metric = gauge("kube_pod_created", "Unix creation timestamp");
const START_TIME: Metric = gauge(
    "kube_pod_start_time",
    "Start time in unix timestamp for a pod.",
);
const LABELS: Metric = gauge(
    "kube_pod_labels",
    "Kubernetes labels converted to Prometheus labels.",
);
const PHASE: Metric = gauge("kube_pod_status_phase", "The pods current phase.");
const READY: Metric = gauge(
    "kube_pod_status_ready",
    "Describes whether the pod is ready to serve requests.",
);
const SCHEDULED: Metric = gauge(
    "kube_pod_status_scheduled",
    "Describes the status of the scheduling process for the pod.",
);
const REASON: Metric = gauge("kube_pod_status_reason", "The pod status reasons");
const PHASES: &[&str] = &["Pending", "Succeeded", "Failed", "Unknown", "Running"];
const REASONS: &[&str] = &[
    "Evicted",
    "NodeAffinity",
    "NodeLost",
    "Shutdown",
    "UnexpectedAdmissionError",
    "SchedulingGated",
];

/// The families of one kind of container (`containers` or `initContainers`).
struct ContainerFamilies {
    info: Metric,
    ready: Metric,
    restarts: Metric,
    running: Metric,
    waiting: Metric,
    waiting_reason: Metric,
    terminated: Metric,
    terminated_reason: Metric,
    last_terminated_reason: Metric,
    last_terminated_exitcode: Metric,
    requests: Metric,
    limits: Metric,
}

const CONTAINERS: ContainerFamilies = ContainerFamilies {
    info: gauge(
        "kube_pod_container_info",
        "Information about a container in a pod.",
    ),
    ready: gauge(
        "kube_pod_container_status_ready",
        "Describes whether the containers readiness check succeeded.",
    ),
    restarts: counter(
        "kube_pod_container_status_restarts_total",
        "The number of container restarts per container.",
    ),
    running: gauge(
        "kube_pod_container_status_running",
        "Describes whether the container is currently in running state.",
    ),
    waiting: gauge(
        "kube_pod_container_status_waiting",
        "Describes whether the container is currently in waiting state.",
    ),
    waiting_reason: gauge(
        "kube_pod_container_status_waiting_reason",
        "Describes the reason the container is currently in waiting state.",
    ),
    terminated: gauge(
        "kube_pod_container_status_terminated",
        "Describes whether the container is currently in terminated state.",
    ),
    terminated_reason: gauge(
        "kube_pod_container_status_terminated_reason",
        "Describes the reason the container is currently in terminated state.",
    ),
    last_terminated_reason: gauge(
        "kube_pod_container_status_last_terminated_reason",
        "Describes the last reason the container was in terminated state.",
    ),
    last_terminated_exitcode: gauge(
        "kube_pod_container_status_last_terminated_exitcode",
        "Describes the exit code for the last container in terminated state.",
    ),
    requests: gauge(
        "kube_pod_container_resource_requests",
        "The number of requested request resource by a container.",
    ),
    limits: gauge(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container.",
    ),
};

const INIT_CONTAINERS: ContainerFamilies = ContainerFamilies {
    info: gauge(
        "kube_pod_init_container_info",
        "Information about an init container in a pod.",
    ),
    ready: gauge(
        "kube_pod_init_container_status_ready",
        "Describes whether the init containers readiness check succeeded.",
    ),
    restarts: counter(
        "kube_pod_init_container_status_restarts_total",
        "The number of restarts for the init container.",
    ),
    running: gauge(
        "kube_pod_init_container_status_running",
        "Describes whether the init container is currently in running state.",
    ),
    waiting: gauge(
        "kube_pod_init_container_status_waiting",
        "Describes whether the init container is currently in waiting state.",
    ),
    waiting_reason: gauge(
        "kube_pod_init_container_status_waiting_reason",
        "Describes the reason the init container is currently in waiting state.",
    ),
    terminated: gauge(
        "kube_pod_init_container_status_terminated",
        "Describes whether the init container is currently in terminated state.",
    ),
    terminated_reason: gauge(
        "kube_pod_init_container_status_terminated_reason",
        "Describes the reason the init container is currently in terminated state.",
    ),
    last_terminated_reason: gauge(
        "kube_pod_init_container_status_last_terminated_reason",
        "Describes the last reason the init container was in terminated state.",
    ),
    last_terminated_exitcode: gauge(
        "kube_pod_init_container_status_last_terminated_exitcode",
        "Describes the exit code for the last init container in terminated state.",
    ),
    requests: gauge(
        "kube_pod_init_container_resource_requests",
        "The number of requested request resource by an init container.",
    ),
    limits: gauge(
        "kube_pod_init_container_resource_limits",
        "The number of requested limit resource by an init container.",
    ),
};

/// Writes the series of `pods`.
pub(crate) fn render<'a>(out: &mut Families, pods: impl Iterator<Item = &'a Pod>) {
    for pod in pods {
        render_pod(out, pod);
    }
}

fn render_pod(out: &mut Families, pod: &Pod) {
    let (namespace, name) = name_of(&pod.metadata);
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let labels = [("namespace", namespace), ("pod", name), ("uid", uid)];
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let owners = owners(&pod.metadata);
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true));
    let host_network = spec
        .and_then(|s| s.host_network)
        .unwrap_or(false)
        .to_string();
    out.add(
        &INFO,
        &[
            ("namespace", namespace),
            ("pod", name),
            ("uid", uid),
            (
                "host_ip",
                status.and_then(|s| s.host_ip.as_deref()).unwrap_or(""),
            ),
            (
                "pod_ip",
                status.and_then(|s| s.pod_ip.as_deref()).unwrap_or(""),
            ),
            ("node", node),
            (
                "created_by_kind",
                controller.map_or("", |c| c.kind.as_str()),
            ),
            (
                "created_by_name",
                controller.map_or("", |c| c.name.as_str()),
            ),
            (
                "priority_class",
                spec.and_then(|s| s.priority_class_name.as_deref())
                    .unwrap_or(""),
            ),
            ("host_network", &host_network),
        ],
        1.0,
    );
    for owner in &owners {
        out.add(&OWNER, &with(&labels, owner), 1.0);
    }
    out.add(&LABELS, &labels, 1.0);
    out.add_some(
        &CREATED,
        &labels,
        seconds(pod.metadata.creation_timestamp.as_ref()),
    );
    out.add_some(
        &START_TIME,
        &labels,
        seconds(status.and_then(|s| s.start_time.as_ref())),
    );
    let phase = status.and_then(|s| s.phase.as_deref());
    if phase.is_some() {
        out.add_one_of(&PHASE, &labels, "phase", PHASES, phase);
    }
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    for condition in conditions {
        match condition.type_.as_str() {
            "Ready" => out.add_condition(&READY, &labels, "condition", &condition.status),
            "PodScheduled" => {
                out.add_condition(&SCHEDULED, &labels, "condition", &condition.status)
            }
            _ => {}
        }
    }
    let scheduling_gated = conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    let reason = status.and_then(|s| s.reason.as_deref());
    for &candidate in REASONS {
        let set = reason == Some(candidate) || (candidate == "SchedulingGated" && scheduling_gated);
        let mut all = labels.to_vec();
        all.push(("reason", candidate));
        out.add(&REASON, &all, flag(set));
    }
    let no_statuses: &[ContainerStatus] = &[];
    if let Some(spec) = spec {
        render_containers(
            out,
            &CONTAINERS,
            &labels,
            node,
            &spec.containers,
            status
                .and_then(|s| s.container_statuses.as_deref())
                .unwrap_or(no_statuses),
        );
        render_containers(
            out,
            &INIT_CONTAINERS,
            &labels,
            node,
            spec.init_containers.as_deref().unwrap_or(&[]),
            status
                .and_then(|s| s.init_container_statuses.as_deref())
                .unwrap_or(no_statuses),
        );
    }
}

/// The series of one kind of container: resources from the spec, state from the statuses.
fn render_containers(
    out: &mut Families,
    families: &ContainerFamilies,
    pod: &[(&str, &str)],
    node: &str,
    containers: &[Container],
    statuses: &[ContainerStatus],
) {
    for container in containers {
        let mut labels = pod.to_vec();
        labels.push(("container", &container.name));
        let resources = container.resources.as_ref();
        for (metric, quantities) in [
            (
                &families.requests,
                resources.and_then(|r| r.requests.as_ref()),
            ),
            (&families.limits, resources.and_then(|r| r.limits.as_ref())),
        ] {
            for (resource, amount) in quantities.into_iter().flatten() {
                let label = quantity::resource_label(resource);
                let mut all = labels.clone();
                all.extend([
                    ("node", node),
                    ("resource", &label),
                    ("unit", quantity::unit(resource)),
                ]);
                out.add_some(metric, &all, quantity::value(amount));
            }
        }
    }
    for status in statuses {
        let mut labels = pod.to_vec();
        labels.push(("container", &status.name));
        let image_spec = containers
            .iter()
            .find(|c| c.name == status.name)
            .and_then(|c| c.image.as_deref())
            .unwrap_or("");
        let mut info = labels.clone();
        info.extend([
            ("image_spec", image_spec),
            ("image", status.image.as_str()),
            ("image_id", status.image_id.as_str()),
            ("container_id", status.container_id.as_deref().unwrap_or("")),
        ]);
        out.add(&families.info, &info, 1.0);
        out.add(&families.ready, &labels, flag(status.ready));
        out.add(&families.restarts, &labels, f64::from(status.restart_count));
        let state = status.state.as_ref();
        let waiting = state.and_then(|s| s.waiting.as_ref());
        let terminated = state.and_then(|s| s.terminated.as_ref());
        out.add(
            &families.running,
            &labels,
            flag(state.is_some_and(|s| s.running.is_some())),
        );
        out.add(&families.waiting, &labels, flag(waiting.is_some()));
        out.add(&families.terminated, &labels, flag(terminated.is_some()));
        if let Some(reason) = waiting.and_then(|w| w.reason.as_deref()) {
            let mut all = labels.clone();
            all.push(("reason", reason));
            out.add(&families.waiting_reason, &all, 1.0);
        }
        if let Some(reason) = terminated.and_then(|t| t.reason.as_deref()) {
            let mut all = labels.clone();
            all.push(("reason", reason));
            out.add(&families.terminated_reason, &all, 1.0);
        }
        if let Some(last) = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
        {
            if let Some(reason) = last.reason.as_deref() {
                let mut all = labels.clone();
                all.push(("reason", reason));
                out.add(&families.last_terminated_reason, &all, 1.0);
            }
            out.add(
                &families.last_terminated_exitcode,
                &labels,
                f64::from(last.exit_code),
            );
        }
    }
}
