//! `sightline check config` and `sightline check rules`, in promtool's output format:
//! progress on stdout, each problem on stderr as `file:line:col: message`, exit status 1 on
//! any failure.

#![allow(clippy::print_stdout)] // Reporting to the terminal is this module's job.

use std::path::{Path, PathBuf};

use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::rulefmt::{NameValidation, QueryLanguage, Rule, RuleFile};
use sightline_alerting::template;
use sightline_core::config::{Config, ConfigSource};

/// Checks a config file and every rule file it references; true when all are valid.
pub fn config(file: &Path) -> bool {
    println!("Checking {}", file.display());
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(error) => {
            println!("  FAILED:");
            eprintln!("{error}");
            return false;
        }
    };
    let source = ConfigSource::File(file.to_owned());
    let base_dir = source.base_dir().to_owned();
    let rule_files = config.rule_file_paths(&base_dir);
    let log_rule_files = config.log_rule_file_paths(&base_dir);
    println!("  SUCCESS: {} rule files found", rule_files.len());
    if !log_rule_files.is_empty() {
        println!("  SUCCESS: {} LogQL rule files found", log_rule_files.len());
    }
    let notifier_valid = notifier(&config, &source);
    if notifier_valid {
        println!(
            " SUCCESS: {} is valid sightline config file syntax",
            file.display()
        );
    }
    println!();
    let rules_valid = rules(&rule_files, QueryLanguage::PromQl);
    rules(&log_rule_files, QueryLanguage::LogQl) && rules_valid && notifier_valid
}

/// Checks the notifier's config (inline `alertmanager:` or `alertmanager_config_file:`);
/// warnings (integrations that are not sent to) go to stderr and do not fail the check.
fn notifier(config: &Config, source: &ConfigSource) -> bool {
    match AlertmanagerConfig::from_sightline(config, source) {
        Ok(notifier) => {
            println!(
                "  SUCCESS: notifier config with {} receivers found",
                notifier.receivers.len()
            );
            for warning in notifier.warnings() {
                eprintln!("warning: {warning}");
            }
            true
        }
        Err(error) => {
            println!("  FAILED:");
            eprintln!("{error}");
            false
        }
    }
}

/// Checks rule files whose expressions are in `language`; true when all are valid.
pub fn rules(files: &[PathBuf], language: QueryLanguage) -> bool {
    let mut all_valid = true;
    for file in files {
        println!("Checking {}", file.display());
        match RuleFile::load_as(file, NameValidation::default(), language) {
            Ok(rules) => {
                let problems = template_problems(&rules);
                if problems.is_empty() {
                    println!("  SUCCESS: {} rules found", rules.rule_count());
                } else {
                    println!("  FAILED:");
                    for problem in problems {
                        eprintln!("{}: {problem}", file.display());
                    }
                    all_valid = false;
                }
            }
            Err(error) => {
                println!("  FAILED:");
                eprintln!("{error}");
                all_valid = false;
            }
        }
        println!();
    }
    all_valid
}

/// Alert label and annotation templates that do not parse, as promtool reports them:
/// `group "g", rule 3, "Alert": annotation "summary": template: …`.
fn template_problems(file: &RuleFile) -> Vec<String> {
    let mut problems = Vec::new();
    for group in &file.groups {
        for (index, rule) in group.rules.iter().enumerate() {
            let Rule::Alerting(alert) = rule else {
                continue;
            };
            let fields = alert
                .labels
                .iter()
                .map(|field| ("label", field))
                .chain(alert.annotations.iter().map(|field| ("annotation", field)));
            for (kind, (name, text)) in fields {
                let template_name = format!("__alert_{}", alert.alert);
                if let Err(error) = template::validate(&template_name, text) {
                    problems.push(format!(
                        "group {:?}, rule {}, {:?}: {kind} {name:?}: {error}",
                        group.name,
                        index + 1,
                        alert.alert
                    ));
                }
            }
        }
    }
    problems
}

/// Runs rule unit test files in promtool's format; true when every test passes.
pub fn rule_tests(files: &[PathBuf]) -> bool {
    let mut all_passed = true;
    for file in files {
        println!("Unit Testing:  {}", file.display());
        match sightline_alerting::unittest::run_file(file) {
            Ok(failures) if failures.is_empty() => println!("  SUCCESS"),
            Ok(failures) => {
                println!("  FAILED:");
                for failure in failures {
                    println!("{failure}");
                }
                all_passed = false;
            }
            Err(error) => {
                println!("  FAILED:");
                eprintln!("{error}");
                all_passed = false;
            }
        }
        println!();
    }
    all_passed
}
