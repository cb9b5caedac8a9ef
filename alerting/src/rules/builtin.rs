//! Sightline's built-in rule set: the homelab alert rules of `alerting/builtin/` (PromQL and
//! LogQL), compiled into the binary and on by default (the `builtin_rules:` config section). A rule is left
//! out when it is switched off by name, or when a user rule file has a rule of the same
//! name: the user's rule replaces it.

use std::collections::BTreeSet;
use std::path::Path;

use crate::rulefmt::{NameValidation, QueryLanguage, RuleFile, RuleFileError};

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
}

impl Default for BuiltinRules {
    fn default() -> Self {
        BuiltinRules {
            enabled: true,
            disabled: BTreeSet::new(),
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
        for (name, text, language) in shipped {
            let mut file =
                RuleFile::parse_as(Path::new(name), text, NameValidation::default(), language)?;
            for group in &mut file.groups {
                group.rules.retain(|rule| {
                    !self.disabled.contains(rule.name()) && !overridden.contains(rule.name())
                });
            }
            file.groups.retain(|group| !group.rules.is_empty());
            if !file.groups.is_empty() {
                files.push(file);
            }
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
        };
        let files = settings.rule_files(&[user]).unwrap();
        let names = names(&files);
        assert!(!names.contains(&"Watchdog") && !names.contains(&"TargetDown"));
        assert!(names.contains(&"KubeNodeNotReady"));
        let off = BuiltinRules {
            enabled: false,
            disabled: BTreeSet::new(),
        };
        assert!(off.rule_files(&[]).unwrap().is_empty());
    }
}
