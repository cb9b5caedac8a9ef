//! `kube_persistentvolumeclaim_*` and `kube_persistentvolume_*`: claims' phase, storage
//! class, requested size and access modes; volumes' phase, capacity and claim.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use crate::discovery::kubernetes::Stores;

use super::{Families, Metric, gauge, name_of, quantity, seconds};

const CLAIM_INFO: Metric = gauge(
    "kube_persistentvolumeclaim_info",
    "Information about persistent volume claim.",
);
const CLAIM_LABELS: Metric = gauge(
    "kube_persistentvolumeclaim_labels",
    "Kubernetes labels converted to Prometheus labels.",
);
const CLAIM_CREATED: Metric = gauge(
    "kube_persistentvolumeclaim_created",
    "Unix creation timestamp",
);
const CLAIM_PHASE: Metric = gauge(
    "kube_persistentvolumeclaim_status_phase",
    "The phase the persistent volume claim is currently in.",
);
const CLAIM_REQUEST: Metric = gauge(
    "kube_persistentvolumeclaim_resource_requests_storage_bytes",
    "The capacity of storage requested by the persistent volume claim.",
);
const CLAIM_ACCESS_MODE: Metric = gauge(
    "kube_persistentvolumeclaim_access_mode",
    "The access mode(s) specified by the persistent volume claim.",
);
const CLAIM_PHASES: &[&str] = &["Lost", "Bound", "Pending"];

const VOLUME_INFO: Metric = gauge(
    "kube_persistentvolume_info",
    "Information about persistentvolume.",
);
const VOLUME_CREATED: Metric = gauge("kube_persistentvolume_created", "Unix creation timestamp");
const VOLUME_PHASE: Metric = gauge(
    "kube_persistentvolume_status_phase",
    "The phase indicates if a volume is available, bound to a claim, or released by a claim.",
);
const VOLUME_CAPACITY: Metric = gauge(
    "kube_persistentvolume_capacity_bytes",
    "Persistentvolume capacity in bytes.",
);
const VOLUME_CLAIM_REF: Metric = gauge(
    "kube_persistentvolume_claim_ref",
    "Information about the Persistent Volume Claim Reference.",
);
const VOLUME_PHASES: &[&str] = &["Pending", "Available", "Bound", "Released", "Failed"];

/// Writes the series of every claim and volume in `stores`.
pub(crate) fn render(out: &mut Families, stores: &Stores) {
    stores
        .persistent_volume_claims
        .values()
        .for_each(|claim| persistent_volume_claim(out, claim));
    stores
        .persistent_volumes
        .values()
        .for_each(|volume| persistent_volume(out, volume));
}

fn persistent_volume_claim(out: &mut Families, claim: &PersistentVolumeClaim) {
    let (namespace, name) = name_of(&claim.metadata);
    let labels = [("namespace", namespace), ("persistentvolumeclaim", name)];
    let spec = claim.spec.as_ref();
    out.add(
        &CLAIM_INFO,
        &[
            ("namespace", namespace),
            ("persistentvolumeclaim", name),
            (
                "storageclass",
                spec.and_then(|s| s.storage_class_name.as_deref())
                    .unwrap_or(""),
            ),
            (
                "volumename",
                spec.and_then(|s| s.volume_name.as_deref()).unwrap_or(""),
            ),
            (
                "volumemode",
                spec.and_then(|s| s.volume_mode.as_deref()).unwrap_or(""),
            ),
        ],
        1.0,
    );
    out.add(&CLAIM_LABELS, &labels, 1.0);
    out.add_some(
        &CLAIM_CREATED,
        &labels,
        seconds(claim.metadata.creation_timestamp.as_ref()),
    );
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase.is_some() {
        out.add_one_of(&CLAIM_PHASE, &labels, "phase", CLAIM_PHASES, phase);
    }
    let storage = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|requests| requests.get("storage"));
    out.add_some(&CLAIM_REQUEST, &labels, storage.and_then(quantity::value));
    for mode in spec.and_then(|s| s.access_modes.as_deref()).unwrap_or(&[]) {
        out.add(
            &CLAIM_ACCESS_MODE,
            &[
                ("namespace", namespace),
                ("persistentvolumeclaim", name),
                ("access_mode", mode),
            ],
            1.0,
        );
    }
}

fn persistent_volume(out: &mut Families, volume: &PersistentVolume) {
    let name = volume.metadata.name.as_deref().unwrap_or("");
    let labels = [("persistentvolume", name)];
    let spec = volume.spec.as_ref();
    out.add(
        &VOLUME_INFO,
        &[
            ("persistentvolume", name),
            (
                "storageclass",
                spec.and_then(|s| s.storage_class_name.as_deref())
                    .unwrap_or(""),
            ),
            (
                "host_path",
                spec.and_then(|s| s.host_path.as_ref())
                    .map_or("", |h| h.path.as_str()),
            ),
            (
                "local_path",
                spec.and_then(|s| s.local.as_ref())
                    .map_or("", |l| l.path.as_str()),
            ),
            (
                "csi_driver",
                spec.and_then(|s| s.csi.as_ref())
                    .map_or("", |c| c.driver.as_str()),
            ),
        ],
        1.0,
    );
    out.add_some(
        &VOLUME_CREATED,
        &labels,
        seconds(volume.metadata.creation_timestamp.as_ref()),
    );
    let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase.is_some() {
        out.add_one_of(&VOLUME_PHASE, &labels, "phase", VOLUME_PHASES, phase);
    }
    let capacity = spec
        .and_then(|s| s.capacity.as_ref())
        .and_then(|capacity| capacity.get("storage"));
    out.add_some(
        &VOLUME_CAPACITY,
        &labels,
        capacity.and_then(quantity::value),
    );
    if let Some(claim) = spec.and_then(|s| s.claim_ref.as_ref()) {
        out.add(
            &VOLUME_CLAIM_REF,
            &[
                ("persistentvolume", name),
                ("claim_namespace", claim.namespace.as_deref().unwrap_or("")),
                ("name", claim.name.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
}
