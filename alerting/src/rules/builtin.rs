//! Sightline's built-in rule set: the homelab alert rules of `alerting/builtin/` (PromQL and
//! LogQL), compiled into the binary and on by default (the `builtin_rules:` config section). A rule is left
//! out when it is switched off by name, or when a user rule file has a rule of the same
//! name: the user's rule replaces it. An override (`builtin_rules.overrides`) changes the
//! `for` and labels of every built-in alert of its name; one naming no built-in alert is
//! reported in the log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sightline_core::config::BuiltinRuleOverride;

use crate::rulefmt::{NameValidation, QueryLanguage, Rule, RuleFile, RuleFileError};

/// The name the built-in rules go by: the `file` of their groups in the APIs.
pub const BUILTIN_RULES_FILE: &str = "builtin:homelab.rules.yaml";

/// The rule file, as shipped (its unit tests are `homelab.rules.test.yaml` beside it).
pub const BUILTIN_RULES_TEXT: &str = include_str!("../../builtin/homelab.rules.yaml");

/// The name the built-in LogQL rules go by.
pub const BUILTIN_LOG_RULES_FILE: &str = "builtin:homelab.log-rules.yaml";

/// The LogQL rule file, as shipped.
pub const BUILTIN_LOG_RULES_TEXT: &str = include_str!("../../builtin/homelab.log-rules.yaml");

/// Which built-in rules run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinRules {
    /// Whether any run.
    pub enabled: bool,
    /// Rule names switched off.
    pub disabled: BTreeSet<String>,
    /// Changes by alert name.
    pub overrides: BTreeMap<String, BuiltinRuleOverride>,
}

impl Default for BuiltinRules {
    fn default() -> Self {
        BuiltinRules {
            enabled: true,
            disabled: BTreeSet::new(),
            overrides: BTreeMap::new(),
        }
    }
}

impl BuiltinRules {
    /// The built-in rule files (PromQL, then LogQL) that run next to `user_files`, each
    /// without the rules switched off or replaced; files left empty are left out.
    pub fn rule_files(&self, user_files: &[RuleFile]) -> Result<Vec<RuleFile>, RuleFileError> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let overridden: BTreeSet<&str> = user_files
            .iter()
            .flat_map(|file| &file.groups)
            .flat_map(|group| &group.rules)
            .map(|rule| rule.name())
            .collect();
        let shipped = [
            (
                BUILTIN_RULES_FILE,
                BUILTIN_RULES_TEXT,
                QueryLanguage::PromQl,
            ),
            (
                BUILTIN_LOG_RULES_FILE,
                BUILTIN_LOG_RULES_TEXT,
                QueryLanguage::LogQl,
            ),
        ];
        let mut files = Vec::new();
        let mut unused: BTreeSet<&str> = self.overrides.keys().map(String::as_str).collect();
        for (name, text, language) in shipped {
            let mut file =
                RuleFile::parse_as(Path::new(name), text, NameValidation::default(), language)?;
            for group in &mut file.groups {
                group.rules.retain(|rule| {
                    !self.disabled.contains(rule.name()) && !overridden.contains(rule.name())
                });
                for rule in &mut group.rules {
                    if let Rule::Alerting(alert) = rule
                        && let Some(change) = self.overrides.get(&alert.alert)
                    {
                        unused.remove(alert.alert.as_str());
                        if let Some(for_duration) = change.for_duration {
                            alert.for_duration = for_duration;
                        }
                        alert.labels.extend(change.labels.clone());
                    }
                }
            }
            file.groups.retain(|group| !group.rules.is_empty());
            if !file.groups.is_empty() {
                files.push(file);
            }
        }
        for name in unused {
            tracing::warn!(
                "builtin_rules.overrides names {name:?}, which is no running built-in alert"
            );
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

    use super::*;

    fn names(files: &[RuleFile]) -> Vec<&str> {
        files
            .iter()
            .flat_map(|file| &file.groups)
            .flat_map(|group| &group.rules)
            .map(|rule| rule.name())
            .collect()
    }

    #[test]
    fn all_built_in_rules_load_and_run_by_default() {
        let files = BuiltinRules::default().rule_files(&[]).unwrap();
        let names = names(&files);
        for expected in [
            "KubePodCrashLooping",
            "KubeNodeNotReady",
            "TargetDown",
            "NodeFilesystemSpaceFillingUp",
            "NodeMemoryHighUtilization",
            "KubeDeploymentReplicasMismatch",
            "KubePersistentVolumeFillingUp",
            "CertManagerCertExpirySoon",
            "FluxReconciliationFailure",
            "Watchdog",
            "LogErrorBurst",
            "OOMKillLogged",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert_eq!(files[0].path, Path::new(BUILTIN_RULES_FILE));
        assert_eq!(files[1].path, Path::new(BUILTIN_LOG_RULES_FILE));
    }

    #[test]
    fn switched_off_and_user_defined_rules_are_left_out() {
        let user = RuleFile::parse(
            Path::new("mine.yaml"),
            "groups:\n  - name: mine\n    rules:\n      - alert: TargetDown\n        expr: up == 0\n        for: 1h\n",
            NameValidation::default(),
        )
        .unwrap();
        let settings = BuiltinRules {
            enabled: true,
            disabled: BTreeSet::from(["Watchdog".to_owned()]),
            ..BuiltinRules::default()
        };
        let files = settings.rule_files(&[user]).unwrap();
        let names = names(&files);
        assert!(!names.contains(&"Watchdog") && !names.contains(&"TargetDown"));
        assert!(names.contains(&"KubeNodeNotReady"));
        let off = BuiltinRules {
            enabled: false,
            ..BuiltinRules::default()
        };
        assert!(off.rule_files(&[]).unwrap().is_empty());
    }

    #[test]
    fn overrides_change_for_and_labels_of_every_rule_of_the_name() {
        let settings = BuiltinRules {
            overrides: BTreeMap::from([(
                "NodeFilesystemSpaceFillingUp".to_owned(),
                BuiltinRuleOverride {
                    for_duration: Some(sightline_core::duration::Duration::from_secs(2)),
                    labels: BTreeMap::from([("team".to_owned(), "home".to_owned())]),
                },
            )]),
            ..BuiltinRules::default()
        };
        let files = settings.rule_files(&[]).unwrap();
        let alerts: Vec<_> = files
            .iter()
            .flat_map(|file| &file.groups)
            .flat_map(|group| &group.rules)
            .filter_map(|rule| match rule {
                Rule::Alerting(alert) => Some(alert),
                Rule::Recording(_) => None,
            })
            .collect();
        let changed: Vec<_> = alerts
            .iter()
            .filter(|alert| alert.alert == "NodeFilesystemSpaceFillingUp")
            .collect();
        assert_eq!(changed.len(), 3);
        for alert in changed {
            assert_eq!(alert.for_duration.as_millis(), 2000);
            assert_eq!(alert.labels["team"], "home");
            assert!(alert.labels.contains_key("severity"), "kept its own labels");
        }
        let untouched = alerts.iter().find(|a| a.alert == "TargetDown").unwrap();
        assert_eq!(untouched.for_duration.as_millis(), 600_000);
    }
}
