//! Rule evaluation: recording and alerting rules of Prometheus rule files, run group by group
//! at their interval over the PromQL engine, results written back to the metric store.
//!
//! Follows Prometheus's `rules` package
//! (<https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/>,
//! <https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/>): [`alert`]
//! holds an alerting rule's state machine, [`group`] evaluates one group at one timestamp
//! (and restores alert state after a restart), [`manager`] schedules the groups and reloads
//! them from the rule files, and [`builtin`] holds Sightline's own homelab rules.
//!
//! Not yet: LogQL rules (Loki ruler style), and handing firing alerts to the notifier.

pub mod alert;
pub mod builtin;
pub mod group;
pub mod manager;

/// Why a rule's evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The PromQL engine failed on the rule's expression.
    #[error("query failed: {0}")]
    Query(String),
    /// The expression returned a string or a range vector, which no rule can use.
    #[error("rule result is a {0}, expected a vector or a scalar")]
    ResultType(&'static str),
    /// Two result series have the same labels once the rule's labels are applied.
    #[error(
        "rule {rule:?}: vector contains metrics with the same labelset after applying rule \
         labels: {labels}"
    )]
    DuplicateLabels {
        /// The rule's alert or record name.
        rule: String,
        /// The label set produced twice.
        labels: String,
    },
    /// The rule produced more series or alerts than the group's `limit`.
    #[error(
        "rule {rule:?}: exceeded limit of {limit} with {got} series or alerts; raise the group's `limit`"
    )]
    Limit {
        /// The rule's alert or record name.
        rule: String,
        /// The group's limit.
        limit: u64,
        /// How many there were.
        got: u64,
    },
    /// Writing the results to the metric store failed.
    #[error("cannot store rule results: {0}")]
    Storage(#[from] sightline_tsdb::Error),
}
