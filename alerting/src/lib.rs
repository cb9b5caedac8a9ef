//! Sightline's alerting: the Prometheus rule side and the Alertmanager side in one crate.
//!
//! Owns: rule files and rule groups (loading and validating Prometheus rule files and
//! `PrometheusRule` objects, see [`rulefmt`]), rule evaluation (PromQL and LogQL recording and
//! alerting rules, pending/firing state), and the notifier: the routing tree, grouping,
//! inhibition, silences and the receivers (Pushover, Telegram, webhook, email).
//!
//! Never owns: HTTP routing or status codes (the `ui` crate maps this crate's errors to
//! responses), storage formats (metrics and logs are read through the query engines of
//! `tsdb` and `logstore`), or configuration loading beyond its own rule files.

pub mod rulefmt;
