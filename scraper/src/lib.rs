//! Everything that moves data on its own schedule: in, and out again.
//!
//! Owns: target discovery (static, file, Kubernetes, ServiceMonitor/PodMonitor), relabeling,
//! scrape loops and exposition-format parsing, pod-log tailing, the built-in host and
//! kube-state collectors, remote write out and log forwarding (the Prometheus and Loki
//! protocols' HTTP clients live here together). It appends to `sightline-tsdb`, pushes to
//! `sightline-logstore`, and sends from the metric and log WALs to other stores.
//!
//! Never owns: storage formats, query evaluation, HTTP serving, or alert state.

pub mod cluster_state;
pub mod discovery;
pub mod exposition;
pub mod host;
pub mod log_forward;
pub mod manager;
mod outbound;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
pub mod tailer;
pub mod target;
