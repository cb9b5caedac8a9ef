//! Target discovery: where the lists of scrape targets come from.
//!
//! Every mechanism produces [`TargetGroup`]s in Prometheus's shape — a source name, targets
//! (each a label set holding at least `__address__`), and labels shared by the group — so
//! that relabeling and scraping do not care which mechanism found a target.

pub mod file;
pub mod kubernetes;
pub mod monitors;

use sightline_core::config::ScrapeConfig;
use sightline_core::labels::Labels;

/// Targets found together, with labels they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its mechanism (Prometheus's `source`).
    pub source: String,
    /// One label set per target, `__address__` included.
    pub targets: Vec<Labels>,
    /// Labels every target of the group gets unless it has its own.
    pub labels: Labels,
}

/// The groups of a job's `static_configs`, one per entry, named by position as Prometheus
/// names them.
pub fn static_groups(job: &ScrapeConfig) -> Vec<TargetGroup> {
    job.static_configs
        .iter()
        .enumerate()
        .map(|(index, config)| TargetGroup {
            source: index.to_string(),
            targets: config
                .targets
                .iter()
                .map(|address| Labels::from_pairs([("__address__", address.as_str())]))
                .collect(),
            labels: Labels::from_pairs(config.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        })
        .collect()
}
