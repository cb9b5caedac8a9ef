//! Sightline's alerting: the Prometheus rule side and the Alertmanager side in one crate.
//!
//! Owns: rule files and rule groups (loading and validating Prometheus rule files and
//! `PrometheusRule` objects, see [`rulefmt`]), rule evaluation (PromQL and LogQL recording and
//! alerting rules, pending/firing state, see [`rules`], with Prometheus's templates in
//! [`template`]), rule unit tests in promtool's format ([`unittest`]), and the notifier: the
//! routing tree, grouping,
//! inhibition, silences and the receivers (Pushover, Telegram, webhook, email), starting from
//! Alertmanager's configuration format (see [`notifier`]).
//!
//! Errors: each area has one documented `thiserror` enum with `file:line:col` messages —
//! [`rulefmt::RuleFileError`] for rule files,
//! [`rules::RuleError`] for a rule's evaluation, [`notifier::ConfigError`] for the notifier.
//!
//! Never owns: HTTP routing or status codes (the `ui` crate maps this crate's errors to
//! responses), storage formats (metrics and logs are read through the query engines of
//! `tsdb` and `logstore`), or configuration loading beyond its own rule files.

pub mod notifier;
pub mod rulefmt;
pub mod rules;
pub mod template;
pub mod unittest;
