//! Workload controllers: `kube_deployment_*`, `kube_statefulset_*`, `kube_daemonset_*`,
//! `kube_replicaset_*`, `kube_job_*`, `kube_horizontalpodautoscaler_*` and
//! `kube_poddisruptionbudget_*` — desired and current replicas, generations, revisions,
//! owners and conditions.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::discovery::kubernetes::Stores;

use super::{Families, Metric, flag, gauge, name_of, owners, seconds, with};

/// `kube_<kind>_created` and `kube_<kind>_metadata_generation` of one kind.
struct Common {
    created: Metric,
    generation: Metric,
}

impl Common {
    fn render(&self, out: &mut Families, labels: &[(&str, &str)], meta: &ObjectMeta) {
        out.add_some(
            &self.created,
            labels,
            seconds(meta.creation_timestamp.as_ref()),
        );
        out.add_some(&self.generation, labels, generation(meta.generation));
    }
}

/// An optional count as a sample value.
fn count(value: Option<i32>) -> Option<f64> {
    value.map(f64::from)
}

/// An optional generation (`metadata.generation`, `status.observedGeneration`) as a sample
/// value.
fn generation(value: Option<i64>) -> Option<f64> {
    value.map(|g| g as f64)
}

/// Writes the series of every workload controller in `stores`.
pub(crate) fn render(out: &mut Families, stores: &Stores) {
    stores.deployments.values().for_each(|d| deployment(out, d));
    stores
        .stateful_sets
        .values()
        .for_each(|s| stateful_set(out, s));
    stores.daemon_sets.values().for_each(|d| daemon_set(out, d));
    stores
        .replica_sets
        .values()
        .for_each(|r| replica_set(out, r));
    stores.jobs.values().for_each(|j| job(out, j));
    stores
        .horizontal_pod_autoscalers
        .values()
        .for_each(|h| horizontal_pod_autoscaler(out, h));
    stores
        .pod_disruption_budgets
        .values()
        .for_each(|p| pod_disruption_budget(out, p));
}

const DEPLOYMENT: Common = Common {
    created: gauge("kube_deployment_created", "Unix creation timestamp"),
    generation: gauge(
        "kube_deployment_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
    ),
};
const DEPLOYMENT_SPEC_REPLICAS: Metric = gauge(
    "kube_deployment_spec_replicas",
    "Number of desired pods for a deployment.",
);
const DEPLOYMENT_SPEC_PAUSED: Metric = gauge(
    "kube_deployment_spec_paused",
    "Whether the deployment is paused and will not be processed by the deployment controller.",
);
const DEPLOYMENT_REPLICAS: Metric = gauge(
    "kube_deployment_status_replicas",
    "The number of replicas per deployment.",
);
const DEPLOYMENT_READY: Metric = gauge(
    "kube_deployment_status_replicas_ready",
    "The number of ready replicas per deployment.",
);
const DEPLOYMENT_AVAILABLE: Metric = gauge(
    "kube_deployment_status_replicas_available",
    "The number of available replicas per deployment.",
);
const DEPLOYMENT_UNAVAILABLE: Metric = gauge(
    "kube_deployment_status_replicas_unavailable",
    "The number of unavailable replicas per deployment.",
);
const DEPLOYMENT_UPDATED: Metric = gauge(
    "kube_deployment_status_replicas_updated",
    "The number of updated replicas per deployment.",
);
const DEPLOYMENT_OBSERVED: Metric = gauge(
    "kube_deployment_status_observed_generation",
    "The generation observed by the deployment controller.",
);
const DEPLOYMENT_CONDITION: Metric = gauge(
    "kube_deployment_status_condition",
    "The current status conditions of a deployment.",
);

fn deployment(out: &mut Families, deployment: &Deployment) {
    let (namespace, name) = name_of(&deployment.metadata);
    let labels = [("namespace", namespace), ("deployment", name)];
    DEPLOYMENT.render(out, &labels, &deployment.metadata);
    let spec = deployment.spec.as_ref();
    // The API defaults an unset spec.replicas to 1.
    out.add(
        &DEPLOYMENT_SPEC_REPLICAS,
        &labels,
        f64::from(spec.and_then(|s| s.replicas).unwrap_or(1)),
    );
    out.add(
        &DEPLOYMENT_SPEC_PAUSED,
        &labels,
        flag(spec.and_then(|s| s.paused).unwrap_or(false)),
    );
    let status = deployment.status.as_ref();
    for (metric, value) in [
        (&DEPLOYMENT_REPLICAS, status.and_then(|s| s.replicas)),
        (&DEPLOYMENT_READY, status.and_then(|s| s.ready_replicas)),
        (
            &DEPLOYMENT_AVAILABLE,
            status.and_then(|s| s.available_replicas),
        ),
        (
            &DEPLOYMENT_UNAVAILABLE,
            status.and_then(|s| s.unavailable_replicas),
        ),
        (&DEPLOYMENT_UPDATED, status.and_then(|s| s.updated_replicas)),
    ] {
        out.add(metric, &labels, f64::from(value.unwrap_or(0)));
    }
    out.add_some(
        &DEPLOYMENT_OBSERVED,
        &labels,
        status.and_then(|s| generation(s.observed_generation)),
    );
    for condition in status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]) {
        let mut all = labels.to_vec();
        all.push(("condition", &condition.type_));
        out.add_condition(&DEPLOYMENT_CONDITION, &all, "status", &condition.status);
    }
}

const STATEFUL_SET: Common = Common {
    created: gauge("kube_statefulset_created", "Unix creation timestamp"),
    generation: gauge(
        "kube_statefulset_metadata_generation",
        "Sequence number representing a specific generation of the desired state for the StatefulSet.",
    ),
};
const STATEFUL_SET_REPLICAS: Metric = gauge(
    "kube_statefulset_replicas",
    "Number of desired pods for a StatefulSet.",
);
const STATEFUL_SET_STATUS_REPLICAS: Metric = gauge(
    "kube_statefulset_status_replicas",
    "The number of replicas per StatefulSet.",
);
const STATEFUL_SET_READY: Metric = gauge(
    "kube_statefulset_status_replicas_ready",
    "The number of ready replicas per StatefulSet.",
);
const STATEFUL_SET_AVAILABLE: Metric = gauge(
    "kube_statefulset_status_replicas_available",
    "The number of available replicas per StatefulSet.",
);
const STATEFUL_SET_CURRENT: Metric = gauge(
    "kube_statefulset_status_replicas_current",
    "The number of current replicas per StatefulSet.",
);
const STATEFUL_SET_UPDATED: Metric = gauge(
    "kube_statefulset_status_replicas_updated",
    "The number of updated replicas per StatefulSet.",
);
const STATEFUL_SET_OBSERVED: Metric = gauge(
    "kube_statefulset_status_observed_generation",
    "The generation observed by the StatefulSet controller.",
);
const STATEFUL_SET_CURRENT_REVISION: Metric = gauge(
    "kube_statefulset_status_current_revision",
    "Indicates the version of the StatefulSet used to generate Pods in the sequence [0,currentReplicas).",
);
const STATEFUL_SET_UPDATE_REVISION: Metric = gauge(
    "kube_statefulset_status_update_revision",
    "Indicates the version of the StatefulSet used to generate Pods in the sequence [replicas-updatedReplicas,replicas)",
);

fn stateful_set(out: &mut Families, set: &StatefulSet) {
    let (namespace, name) = name_of(&set.metadata);
    let labels = [("namespace", namespace), ("statefulset", name)];
    STATEFUL_SET.render(out, &labels, &set.metadata);
    out.add(
        &STATEFUL_SET_REPLICAS,
        &labels,
        f64::from(set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
    );
    let Some(status) = set.status.as_ref() else {
        return;
    };
    out.add(
        &STATEFUL_SET_STATUS_REPLICAS,
        &labels,
        f64::from(status.replicas),
    );
    for (metric, value) in [
        (&STATEFUL_SET_READY, status.ready_replicas),
        (&STATEFUL_SET_AVAILABLE, status.available_replicas),
        (&STATEFUL_SET_CURRENT, status.current_replicas),
        (&STATEFUL_SET_UPDATED, status.updated_replicas),
    ] {
        out.add(metric, &labels, f64::from(value.unwrap_or(0)));
    }
    out.add_some(
        &STATEFUL_SET_OBSERVED,
        &labels,
        generation(status.observed_generation),
    );
    for (metric, revision) in [
        (&STATEFUL_SET_CURRENT_REVISION, &status.current_revision),
        (&STATEFUL_SET_UPDATE_REVISION, &status.update_revision),
    ] {
        if let Some(revision) = revision {
            out.add(
                metric,
                &[
                    ("namespace", namespace),
                    ("statefulset", name),
                    ("revision", revision),
                ],
                1.0,
            );
        }
    }
}

const DAEMON_SET: Common = Common {
    created: gauge("kube_daemonset_created", "Unix creation timestamp"),
    generation: gauge(
        "kube_daemonset_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
    ),
};
const DAEMON_SET_CURRENT: Metric = gauge(
    "kube_daemonset_status_current_number_scheduled",
    "The number of nodes running at least one daemon pod and are supposed to.",
);
const DAEMON_SET_DESIRED: Metric = gauge(
    "kube_daemonset_status_desired_number_scheduled",
    "The number of nodes that should be running the daemon pod.",
);
const DAEMON_SET_AVAILABLE: Metric = gauge(
    "kube_daemonset_status_number_available",
    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available",
);
const DAEMON_SET_MISSCHEDULED: Metric = gauge(
    "kube_daemonset_status_number_misscheduled",
    "The number of nodes running a daemon pod but are not supposed to.",
);
const DAEMON_SET_READY: Metric = gauge(
    "kube_daemonset_status_number_ready",
    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
);
const DAEMON_SET_UNAVAILABLE: Metric = gauge(
    "kube_daemonset_status_number_unavailable",
    "The number of nodes that should be running the daemon pod and have none of the daemon pod running and available",
);
const DAEMON_SET_UPDATED: Metric = gauge(
    "kube_daemonset_status_updated_number_scheduled",
    "The total number of nodes that are running updated daemon pod",
);
const DAEMON_SET_OBSERVED: Metric = gauge(
    "kube_daemonset_status_observed_generation",
    "The most recent generation observed by the daemon set controller.",
);

fn daemon_set(out: &mut Families, set: &DaemonSet) {
    let (namespace, name) = name_of(&set.metadata);
    let labels = [("namespace", namespace), ("daemonset", name)];
    DAEMON_SET.render(out, &labels, &set.metadata);
    let Some(status) = set.status.as_ref() else {
        return;
    };
    for (metric, value) in [
        (&DAEMON_SET_CURRENT, Some(status.current_number_scheduled)),
        (&DAEMON_SET_DESIRED, Some(status.desired_number_scheduled)),
        (&DAEMON_SET_AVAILABLE, status.number_available),
        (&DAEMON_SET_MISSCHEDULED, Some(status.number_misscheduled)),
        (&DAEMON_SET_READY, Some(status.number_ready)),
        (&DAEMON_SET_UNAVAILABLE, status.number_unavailable),
        (&DAEMON_SET_UPDATED, status.updated_number_scheduled),
    ] {
        out.add(metric, &labels, f64::from(value.unwrap_or(0)));
    }
    out.add_some(
        &DAEMON_SET_OBSERVED,
        &labels,
        generation(status.observed_generation),
    );
}

const REPLICA_SET: Common = Common {
    created: gauge("kube_replicaset_created", "Unix creation timestamp"),
    generation: gauge(
        "kube_replicaset_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
    ),
};
const REPLICA_SET_OWNER: Metric = gauge(
    "kube_replicaset_owner",
    "Information about the ReplicaSet's owner.",
);
const REPLICA_SET_SPEC_REPLICAS: Metric = gauge(
    "kube_replicaset_spec_replicas",
    "Number of desired pods for a ReplicaSet.",
);
const REPLICA_SET_REPLICAS: Metric = gauge(
    "kube_replicaset_status_replicas",
    "The number of replicas per ReplicaSet.",
);
const REPLICA_SET_READY: Metric = gauge(
    "kube_replicaset_status_ready_replicas",
    "The number of ready replicas per ReplicaSet.",
);
const REPLICA_SET_FULLY_LABELED: Metric = gauge(
    "kube_replicaset_status_fully_labeled_replicas",
    "The number of fully labeled replicas per ReplicaSet.",
);
const REPLICA_SET_OBSERVED: Metric = gauge(
    "kube_replicaset_status_observed_generation",
    "The generation observed by the ReplicaSet controller.",
);

fn replica_set(out: &mut Families, set: &ReplicaSet) {
    let (namespace, name) = name_of(&set.metadata);
    let labels = [("namespace", namespace), ("replicaset", name)];
    REPLICA_SET.render(out, &labels, &set.metadata);
    for owner in owners(&set.metadata) {
        out.add(&REPLICA_SET_OWNER, &with(&labels, &owner), 1.0);
    }
    out.add(
        &REPLICA_SET_SPEC_REPLICAS,
        &labels,
        f64::from(set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
    );
    let Some(status) = set.status.as_ref() else {
        return;
    };
    out.add(&REPLICA_SET_REPLICAS, &labels, f64::from(status.replicas));
    out.add(
        &REPLICA_SET_READY,
        &labels,
        f64::from(status.ready_replicas.unwrap_or(0)),
    );
    out.add(
        &REPLICA_SET_FULLY_LABELED,
        &labels,
        f64::from(status.fully_labeled_replicas.unwrap_or(0)),
    );
    out.add_some(
        &REPLICA_SET_OBSERVED,
        &labels,
        generation(status.observed_generation),
    );
}

const JOB_CREATED: Metric = gauge("kube_job_created", "Unix creation timestamp");
const JOB_OWNER: Metric = gauge("kube_job_owner", "Information about the Job's owner.");
const JOB_INFO: Metric = gauge("kube_job_info", "Information about job.");
const JOB_PARALLELISM: Metric = gauge(
    "kube_job_spec_parallelism",
    "The maximum desired number of pods the job should run at any given time.",
);
const JOB_COMPLETIONS: Metric = gauge(
    "kube_job_spec_completions",
    "The desired number of successfully finished pods the job should be run with.",
);
const JOB_ACTIVE: Metric = gauge(
    "kube_job_status_active",
    "The number of actively running pods.",
);
const JOB_SUCCEEDED: Metric = gauge(
    "kube_job_status_succeeded",
    "The number of pods which reached Phase Succeeded.",
);
const JOB_FAILED_PODS: Metric = gauge(
    "kube_job_status_failed",
    "The number of pods which reached Phase Failed and the reason for failure.",
);
const JOB_START: Metric = gauge(
    "kube_job_status_start_time",
    "StartTime represents time when the job was acknowledged by the Job Manager.",
);
const JOB_COMPLETION: Metric = gauge(
    "kube_job_status_completion_time",
    "CompletionTime represents time when the job was completed.",
);
const JOB_COMPLETE: Metric = gauge("kube_job_complete", "The job has completed its execution.");
const JOB_FAILED: Metric = gauge("kube_job_failed", "The job has failed its execution.");

fn job(out: &mut Families, job: &Job) {
    let (namespace, name) = name_of(&job.metadata);
    let labels = [("namespace", namespace), ("job_name", name)];
    out.add(&JOB_INFO, &labels, 1.0);
    out.add_some(
        &JOB_CREATED,
        &labels,
        seconds(job.metadata.creation_timestamp.as_ref()),
    );
    for owner in owners(&job.metadata) {
        out.add(&JOB_OWNER, &with(&labels, &owner), 1.0);
    }
    let spec = job.spec.as_ref();
    out.add_some(
        &JOB_PARALLELISM,
        &labels,
        count(spec.and_then(|s| s.parallelism)),
    );
    out.add_some(
        &JOB_COMPLETIONS,
        &labels,
        count(spec.and_then(|s| s.completions)),
    );
    let status = job.status.as_ref();
    for (metric, value) in [
        (&JOB_ACTIVE, status.and_then(|s| s.active)),
        (&JOB_SUCCEEDED, status.and_then(|s| s.succeeded)),
        (&JOB_FAILED_PODS, status.and_then(|s| s.failed)),
    ] {
        out.add(metric, &labels, f64::from(value.unwrap_or(0)));
    }
    out.add_some(
        &JOB_START,
        &labels,
        seconds(status.and_then(|s| s.start_time.as_ref())),
    );
    out.add_some(
        &JOB_COMPLETION,
        &labels,
        seconds(status.and_then(|s| s.completion_time.as_ref())),
    );
    for condition in status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]) {
        let metric = match condition.type_.as_str() {
            "Complete" => &JOB_COMPLETE,
            "Failed" => &JOB_FAILED,
            _ => continue,
        };
        out.add_condition(metric, &labels, "condition", &condition.status);
    }
}

const HPA_INFO: Metric = gauge(
    "kube_horizontalpodautoscaler_info",
    "Information about this autoscaler.",
);
const HPA_GENERATION: Metric = gauge(
    "kube_horizontalpodautoscaler_metadata_generation",
    "The generation observed by the HorizontalPodAutoscaler controller.",
);
const HPA_MIN: Metric = gauge(
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
);
const HPA_MAX: Metric = gauge(
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
);
const HPA_CURRENT: Metric = gauge(
    "kube_horizontalpodautoscaler_status_current_replicas",
    "Current number of replicas of pods managed by this autoscaler.",
);
const HPA_DESIRED: Metric = gauge(
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "Desired number of replicas of pods managed by this autoscaler.",
);
const HPA_CONDITION: Metric = gauge(
    "kube_horizontalpodautoscaler_status_condition",
    "The condition of this autoscaler.",
);

fn horizontal_pod_autoscaler(out: &mut Families, hpa: &HorizontalPodAutoscaler) {
    let (namespace, name) = name_of(&hpa.metadata);
    let labels = [("namespace", namespace), ("horizontalpodautoscaler", name)];
    out.add_some(
        &HPA_GENERATION,
        &labels,
        generation(hpa.metadata.generation),
    );
    if let Some(spec) = hpa.spec.as_ref() {
        let target = &spec.scale_target_ref;
        out.add(
            &HPA_INFO,
            &[
                ("namespace", namespace),
                ("horizontalpodautoscaler", name),
                (
                    "scaletargetref_api_version",
                    target.api_version.as_deref().unwrap_or(""),
                ),
                ("scaletargetref_kind", &target.kind),
                ("scaletargetref_name", &target.name),
            ],
            1.0,
        );
        out.add(&HPA_MIN, &labels, f64::from(spec.min_replicas.unwrap_or(1)));
        out.add(&HPA_MAX, &labels, f64::from(spec.max_replicas));
    }
    let Some(status) = hpa.status.as_ref() else {
        return;
    };
    out.add(
        &HPA_CURRENT,
        &labels,
        f64::from(status.current_replicas.unwrap_or(0)),
    );
    out.add(&HPA_DESIRED, &labels, f64::from(status.desired_replicas));
    for condition in status.conditions.as_deref().unwrap_or(&[]) {
        let mut all = labels.to_vec();
        all.push(("condition", &condition.type_));
        out.add_condition(&HPA_CONDITION, &all, "status", &condition.status);
    }
}

const PDB_CREATED: Metric = gauge(
    "kube_poddisruptionbudget_created",
    "Unix creation timestamp",
);
const PDB_CURRENT: Metric = gauge(
    "kube_poddisruptionbudget_status_current_healthy",
    "Current number of healthy pods",
);
const PDB_DESIRED: Metric = gauge(
    "kube_poddisruptionbudget_status_desired_healthy",
    "Minimum desired number of healthy pods",
);
const PDB_ALLOWED: Metric = gauge(
    "kube_poddisruptionbudget_status_pod_disruptions_allowed",
    "Number of pod disruptions that are currently allowed",
);
const PDB_EXPECTED: Metric = gauge(
    "kube_poddisruptionbudget_status_expected_pods",
    "Total number of pods counted by this disruption budget",
);
const PDB_OBSERVED: Metric = gauge(
    "kube_poddisruptionbudget_status_observed_generation",
    "Most recent generation observed when updating this PDB status",
);

fn pod_disruption_budget(out: &mut Families, budget: &PodDisruptionBudget) {
    let (namespace, name) = name_of(&budget.metadata);
    let labels = [("namespace", namespace), ("poddisruptionbudget", name)];
    out.add_some(
        &PDB_CREATED,
        &labels,
        seconds(budget.metadata.creation_timestamp.as_ref()),
    );
    let Some(status) = budget.status.as_ref() else {
        return;
    };
    out.add(&PDB_CURRENT, &labels, f64::from(status.current_healthy));
    out.add(&PDB_DESIRED, &labels, f64::from(status.desired_healthy));
    out.add(&PDB_ALLOWED, &labels, f64::from(status.disruptions_allowed));
    out.add(&PDB_EXPECTED, &labels, f64::from(status.expected_pods));
    out.add_some(
        &PDB_OBSERVED,
        &labels,
        generation(status.observed_generation),
    );
}
