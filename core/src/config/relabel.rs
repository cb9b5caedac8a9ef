//! `relabel_configs` and `metric_relabel_configs` entries, as Prometheus reads them.
//!
//! Follows https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config
//! and the checks of Prometheus's `model/relabel`: regexes are fully anchored (`^(?s:re)$`,
//! so `.` also matches a newline), label names follow Prometheus 3's UTF-8 rule (any
//! non-empty string), and each action accepts only the fields it uses.

use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use crate::yaml::Check;

/// One relabeling step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins source label values; `;` when absent.
    pub separator: Option<String>,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`, `keepequal`, `dropequal`.
    pub target_label: Option<String>,
    /// Matched against the joined source values (or label names for `label*` actions); `(.*)` when absent.
    pub regex: Option<RelabelRegex>,
    /// Modulus for `hashmod`.
    pub modulus: Option<u64>,
    /// Replacement with `$1`-style group references; `$1` when absent.
    pub replacement: Option<String>,
    /// What to do; `replace` when absent.
    #[serde(default)]
    pub action: RelabelAction,
}

/// The relabel actions Prometheus 3 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    /// Write `replacement` (expanded) into `target_label` when `regex` matches.
    #[default]
    Replace,
    /// Keep the target or series only when `regex` matches.
    Keep,
    /// Drop the target or series when `regex` matches.
    Drop,
    /// Keep when the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drop when the joined source values equal `target_label`'s value.
    DropEqual,
    /// Write the hash of the source values modulo `modulus` into `target_label`.
    HashMod,
    /// Copy labels whose names match `regex` to names built from `replacement`.
    LabelMap,
    /// Remove labels whose names match `regex`.
    LabelDrop,
    /// Remove labels whose names do not match `regex`.
    LabelKeep,
    /// Write the lower-cased source values into `target_label`.
    Lowercase,
    /// Write the upper-cased source values into `target_label`.
    Uppercase,
}

impl RelabelAction {
    fn name(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }
}

impl Check for RelabelConfig {
    fn check(&self) -> Result<(), String> {
        use RelabelAction::*;
        let action = self.action.name();
        let needs_target = matches!(
            self.action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        if self.action == HashMod && self.modulus.unwrap_or(0) == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(self.action, KeepEqual | DropEqual)
            && (self.regex.is_some()
                || self.modulus.is_some()
                || self.separator.is_some()
                || self.replacement.is_some())
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and 'target_label', and no other fields"
            ));
        }
        if matches!(self.action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || self.target_label.is_some()
                || self.modulus.is_some()
                || self.separator.is_some()
                || self.replacement.is_some())
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        if let Some(empty) = self.source_labels.iter().find(|name| name.is_empty()) {
            return Err(format!(
                "{empty:?} is not a valid label name in 'source_labels'"
            ));
        }
        Ok(())
    }
}

/// A relabel regex, anchored at both ends as Prometheus anchors it.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    anchored: regex::Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored as `^(?s:source)$`.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let anchored = regex::Regex::new(&format!("^(?s:{source})$"))?;
        Ok(RelabelRegex {
            source: source.to_owned(),
            anchored,
        })
    }

    /// The regex as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled, anchored regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.anchored
    }
}

/// Two regexes are equal when written the same way.
impl PartialEq for RelabelRegex {
    fn eq(&self, other: &RelabelRegex) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelabelRegex({:?})", self.source)
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::yaml::from_string(deserializer, "a regular expression", |source| {
            RelabelRegex::new(source).map_err(|error| {
                // The syntax error's last line names the problem; the lines above draw the
                // anchored pattern, which the user never wrote.
                let error = error.to_string();
                let reason = error.lines().last().unwrap_or_default();
                format!(
                    "invalid regex {source:?}: {}",
                    reason.trim_start_matches("error: ")
                )
            })
        })
    }
}
