//! The HTTP surface: every endpoint Sightline serves, on every listen address.
//!
//! Owns: routing, the Prometheus-, Loki- and Alertmanager-compatible JSON APIs, the embedded
//! web UI, request limits, authentication, and the mapping of each crate's errors to HTTP
//! status codes.
//!
//! Never owns: storage, query evaluation, rule state or config parsing — handlers call into
//! the crates that own those and only translate between HTTP and their APIs.

mod api;
mod auth;
mod backends;
mod body_limit;
pub mod dashboards;
mod federate;
mod http_metrics;
mod lifecycle;
mod memory_ceiling;
mod pages;
mod query_thread;
pub mod remote_write;
mod server;

pub use auth::exposure_warning;
pub use backends::{Backends, LogBackend, MetricBackend};
pub use lifecycle::Readiness;
pub use memory_ceiling::release_free_memory;
pub use server::{BuildInfo, HttpServer, ServeError};
