//! `sightline check config` and `sightline check rules`, in promtool's output format:
//! progress on stdout, each problem on stderr as `file:line:col: message`, exit status 1 on
//! any failure.

#![allow(clippy::print_stdout)] // Reporting to the terminal is this module's job.

use std::path::{Path, PathBuf};

use sightline_alerting::rulefmt::{NameValidation, RuleFile};
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
    let base_dir = ConfigSource::File(file.to_owned()).base_dir().to_owned();
    let rule_files = config.rule_file_paths(&base_dir);
    println!("  SUCCESS: {} rule files found", rule_files.len());
    println!(
        " SUCCESS: {} is valid sightline config file syntax",
        file.display()
    );
    println!();
    rules(&rule_files)
}

/// Checks rule files; true when all are valid.
pub fn rules(files: &[PathBuf]) -> bool {
    let mut all_valid = true;
    for file in files {
        println!("Checking {}", file.display());
        match RuleFile::load(file, NameValidation::default()) {
            Ok(rules) => println!("  SUCCESS: {} rules found", rules.rule_count()),
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
