//! Inhibition: an alert that is firing mutes others that share some labels with it.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#inhibit_rule> and
//! Alertmanager's `inhibit/inhibit.go`: a target alert (matching `target_matchers`) is muted
//! while some firing source alert (matching `source_matchers`) has the same value for every
//! label in `equal`.
//!
//! Edge cases decided here, as Alertmanager decides them:
//! - A label missing on both sides counts as equal (`equal: [cluster]` with no `cluster`
//!   label anywhere inhibits).
//! - When the target also matches the source matchers, sources that also match the target
//!   matchers are ignored: an alert does not inhibit itself, and two alerts that each match
//!   both sides do not inhibit each other.
//! - `source_match`/`source_match_re`/`target_match`/`target_match_re` are added to the
//!   `*_matchers` lists.

use serde::Deserialize;
use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;
use sightline_core::yaml::Check;

use super::matchers::{self, all_match};

/// One inhibit rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawInhibitRule")]
pub struct InhibitRule {
    /// What a muting alert matches.
    pub source_matchers: Vec<Matcher>,
    /// What a muted alert matches.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values must be equal on both.
    pub equal: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default, deserialize_with = "matchers::matcher_list")]
    source_matchers: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::equal_map")]
    source_match: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::regex_map")]
    source_match_re: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::matcher_list")]
    target_matchers: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::equal_map")]
    target_match: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::regex_map")]
    target_match_re: Vec<Matcher>,
    #[serde(default)]
    equal: Vec<String>,
}

impl From<RawInhibitRule> for InhibitRule {
    fn from(raw: RawInhibitRule) -> InhibitRule {
        let mut source_matchers = raw.source_match;
        source_matchers.extend(raw.source_match_re);
        source_matchers.extend(raw.source_matchers);
        let mut target_matchers = raw.target_match;
        target_matchers.extend(raw.target_match_re);
        target_matchers.extend(raw.target_matchers);
        InhibitRule {
            source_matchers,
            target_matchers,
            equal: raw.equal,
        }
    }
}

impl Check for InhibitRule {
    fn check(&self) -> Result<(), String> {
        for name in &self.equal {
            matchers::check_label_name(name).map_err(|e| format!("equal: {e}"))?;
        }
        Ok(())
    }
}

impl InhibitRule {
    /// Whether the firing alert `source` mutes `target` under this rule.
    pub fn inhibits(&self, source: &Labels, target: &Labels) -> bool {
        if !all_match(&self.target_matchers, target) || !all_match(&self.source_matchers, source) {
            return false;
        }
        let equal = self
            .equal
            .iter()
            .all(|name| source.get(name).unwrap_or("") == target.get(name).unwrap_or(""));
        if !equal {
            return false;
        }
        let target_is_two_sided = all_match(&self.source_matchers, target);
        !(target_is_two_sided && all_match(&self.target_matchers, source))
    }
}

/// Whether `target` is muted by any rule, given the alerts firing now (which may include
/// `target` itself).
pub fn is_inhibited<'a>(
    rules: &[InhibitRule],
    firing: impl IntoIterator<Item = &'a Labels>,
    target: &Labels,
) -> bool {
    let rules: Vec<&InhibitRule> = rules
        .iter()
        .filter(|rule| all_match(&rule.target_matchers, target))
        .collect();
    if rules.is_empty() {
        return false;
    }
    firing
        .into_iter()
        .any(|source| rules.iter().any(|rule| rule.inhibits(source, target)))
}
