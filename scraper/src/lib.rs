//! Everything that moves data on its own schedule: in, and out again.
//!
//! Owns: target discovery (static, file, Kubernetes, ServiceMonitor/PodMonitor), relabeling,
//! scrape loops and exposition-format parsing, pod-log tailing, the built-in host and
//! kube-state collectors, and remote write out (the Prometheus protocols' HTTP clients live
//! here together). It appends to `sightline-tsdb`, pushes to `sightline-logstore`, and sends
//! from the metric WAL to other stores.
//!
//! Never owns: storage formats, query evaluation, HTTP serving, or alert state.

pub mod cluster_state;
pub mod discovery;
pub mod exposition;
pub mod host;
pub mod manager;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
pub mod tailer;
pub mod target;
