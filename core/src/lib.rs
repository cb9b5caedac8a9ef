//! The vocabulary every other Sightline crate shares.
//!
//! Owns: label sets and matchers, the configuration schema and its loading and reloading, Prometheus-style durations
//! and byte sizes, and YAML reading with `file:line:col` errors.
//!
//! Never owns: I/O beyond reading config files, storage, networking, or anything that depends
//! on another crate of this workspace — every other crate depends on this one.

pub mod byte_size;
pub mod config;
pub mod duration;
pub mod labels;
pub mod matcher;
pub mod selector;
pub mod yaml;
