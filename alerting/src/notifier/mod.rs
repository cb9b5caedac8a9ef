//! The notifier: Alertmanager's configuration, routing tree, inhibition, time intervals,
//! grouping, silences, the notification log and the senders.
//!
//! An unchanged `alertmanager.yml` loads with [`AlertmanagerConfig::load`] (or from
//! Sightline's config with [`AlertmanagerConfig::from_sightline`]); the modules follow
//! Alertmanager's documented semantics (<https://prometheus.io/docs/alerting/latest/configuration/>)
//! and each says which edge cases it decides:
//! - [`config`]: the file, `global` defaults and the checks across sections;
//! - [`route`]: the routing tree, grouping and timings;
//! - [`inhibit`]: inhibit rules;
//! - [`time_interval`]: `time_intervals` for muting and activating routes;
//! - [`matchers`]: the matcher syntax;
//! - [`receivers`]: one module per integration Sightline sends to, config and sender;
//! - [`alert`]: alerts as received and merged;
//! - [`dispatch`]: aggregation groups, their timings, muting and deduplication;
//! - [`nflog`] and [`silence`]: the state kept in the data directory;
//! - [`message`]: notification templates;
//! - [`metrics`]: attempts and failures, under Alertmanager's metric names;
//! - [`service`]: the running notifier with its clock, lock and retries.
//!
//! Errors are one enum, [`ConfigError`], whose messages start with `file:line:col`.

pub mod alert;
pub mod config;
pub mod dispatch;
mod error;
pub mod inhibit;
pub mod matchers;
pub mod message;
pub mod metrics;
pub mod nflog;
pub mod receivers;
pub mod route;
pub mod service;
pub mod silence;
pub mod time_interval;

pub use config::{AlertmanagerConfig, GlobalConfig, Warning};
pub use error::{ConfigError, Problem};
