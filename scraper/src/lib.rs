//! Everything that brings data in on its own schedule.
//!
//! Owns: target discovery (static, file, Kubernetes, ServiceMonitor/PodMonitor), relabeling,
//! scrape loops and exposition-format parsing, pod-log tailing, and the built-in host and
//! kube-state collectors. It appends to `sightline-tsdb` and pushes to `sightline-logstore`.
//!
//! Never owns: storage formats, query evaluation, HTTP serving, or alert state.

pub mod cluster_state;
pub mod discovery;
pub mod exposition;
pub mod host;
pub mod manager;
pub mod relabel;
pub mod scrape;
pub mod tailer;
pub mod target;
