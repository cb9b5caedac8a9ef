//! The notifier: Alertmanager's configuration, routing tree, inhibition and time intervals.
//!
//! An unchanged `alertmanager.yml` loads with [`AlertmanagerConfig::load`]; the modules follow
//! Alertmanager's documented semantics (<https://prometheus.io/docs/alerting/latest/configuration/>)
//! and each says which edge cases it decides:
//! - [`config`]: the file, `global` defaults and the checks across sections;
//! - [`route`]: the routing tree, grouping and timings;
//! - [`inhibit`]: inhibit rules;
//! - [`time_interval`]: `time_intervals` for muting and activating routes;
//! - [`matchers`]: the matcher syntax;
//! - [`receivers`]: one module per integration Sightline sends to.
//!
//! Errors are one enum, [`ConfigError`], whose messages start with `file:line:col`.

pub mod config;
mod error;
pub mod inhibit;
pub mod matchers;
pub mod receivers;
pub mod route;
pub mod time_interval;

pub use config::{AlertmanagerConfig, GlobalConfig, Warning};
pub use error::{ConfigError, Problem};
