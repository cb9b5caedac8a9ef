//! `file_sd_configs`: targets listed in JSON or YAML files, re-read when they change.
//!
//! Follows https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config:
//! each file holds a list of `{targets: [...], labels: {...}}`; every target gets
//! `__meta_filepath`; a group's source is `path:index`. Decisions: files are watched by
//! polling their modification times every few seconds (which also sees the symlink swaps of
//! a mounted ConfigMap, where inotify does not) and re-read in full every `refresh_interval`;
//! a file that stops parsing keeps its last good groups, and its error names `file:line:col`;
//! a file that disappears takes its groups with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use sightline_core::config::scrape::FileSdConfig;
use sightline_core::labels::Labels;
use sightline_core::yaml::{self, SourceError};

use super::TargetGroup;

/// One entry of a target file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// What is known about one matched file.
struct Known {
    modified: Option<SystemTime>,
    groups: Vec<TargetGroup>,
}

/// The state of one `file_sd_configs` entry: which files match and what they held.
pub struct FileDiscovery {
    config: FileSdConfig,
    base_dir: PathBuf,
    files: BTreeMap<PathBuf, Known>,
}

impl FileDiscovery {
    /// Discovery for `config`, with relative patterns resolved against `base_dir` (the
    /// config file's directory).
    pub fn new(config: FileSdConfig, base_dir: &Path) -> FileDiscovery {
        FileDiscovery {
            config,
            base_dir: base_dir.to_owned(),
            files: BTreeMap::new(),
        }
    }

    /// How often every file is re-read even when it seems unchanged.
    pub fn refresh_interval(&self) -> std::time::Duration {
        self.config.refresh_interval.as_std()
    }

    /// Re-reads the files that are new or changed (all of them when `force`), forgets the ones
    /// that are gone, and returns the errors of files that did not parse. True in the result
    /// when the groups changed.
    pub fn refresh(&mut self, force: bool) -> (bool, Vec<SourceError>) {
        let mut matched = Vec::new();
        for pattern in &self.config.files {
            let full = self.base_dir.join(pattern);
            matched.extend(
                glob::glob(&full.to_string_lossy())
                    .into_iter()
                    .flatten()
                    .flatten(),
            );
        }
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|path, _| matched.contains(path));
        changed |= self.files.len() != before;
        let mut errors = Vec::new();
        for path in matched {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let known = self.files.get(&path);
            if !force && known.is_some_and(|k| k.modified == modified && modified.is_some()) {
                continue;
            }
            match read_groups(&path) {
                Ok(groups) => {
                    let same = known.is_some_and(|k| k.groups == groups);
                    changed |= !same;
                    self.files.insert(path, Known { modified, groups });
                }
                Err(error) => {
                    tracing::warn!(
                        "file_sd: keeping the last good targets of a file that does not parse: {error}"
                    );
                    errors.push(error);
                }
            }
        }
        (changed, errors)
    }

    /// Every group of every file, in file order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|known| known.groups.iter().cloned())
            .collect()
    }
}

fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, SourceError> {
    let entries: Vec<FileGroup> = yaml::from_file(path)?;
    let file = path.to_string_lossy();
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let mut labels = Labels::from_pairs(entry.labels);
            labels.set("__meta_filepath", &file);
            TargetGroup {
                source: format!("{file}:{index}"),
                targets: entry
                    .targets
                    .iter()
                    .map(|address| Labels::from_pairs([("__address__", address.as_str())]))
                    .collect(),
                labels,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(dir: &Path, patterns: &[&str]) -> FileDiscovery {
        let config = FileSdConfig {
            files: patterns.iter().map(|p| p.to_string()).collect(),
            refresh_interval: sightline_core::duration::Duration::from_secs(300),
        };
        FileDiscovery::new(config, dir)
    }

    fn addresses(discovery: &FileDiscovery) -> Vec<String> {
        discovery
            .groups()
            .iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.get("__address__").unwrap_or("").to_owned())
            })
            .collect()
    }

    /// Writes a file and moves its modification time forward so a change is always seen.
    fn write(path: &Path, text: &str, age_secs: u64) {
        std::fs::write(path, text).unwrap();
        let time = SystemTime::now() - std::time::Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn reads_json_and_yaml_files_and_follows_changes() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("a.json");
        write(
            &json,
            r#"[{"targets": ["10.0.0.1:9100"], "labels": {"env": "lab"}}]"#,
            100,
        );
        write(
            &dir.path().join("b.yml"),
            "- targets: ['10.0.0.2:9100', '10.0.0.3:9100']\n",
            100,
        );
        let mut sd = discovery(dir.path(), &["*.json", "*.yml"]);
        let (changed, errors) = sd.refresh(false);
        assert!(changed && errors.is_empty());
        assert_eq!(
            addresses(&sd),
            ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"]
        );
        let first = &sd.groups()[0];
        assert_eq!(first.labels.get("env"), Some("lab"));
        assert_eq!(
            first.labels.get("__meta_filepath"),
            Some(json.to_str().unwrap())
        );
        assert_eq!(first.source, format!("{}:0", json.display()));

        assert!(!sd.refresh(false).0, "nothing changed");

        write(&json, r#"[{"targets": ["10.0.0.9:9100"]}]"#, 50);
        assert!(sd.refresh(false).0);
        assert_eq!(addresses(&sd)[0], "10.0.0.9:9100");

        std::fs::remove_file(dir.path().join("b.yml")).unwrap();
        assert!(sd.refresh(false).0);
        assert_eq!(addresses(&sd), ["10.0.0.9:9100"]);
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_targets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        write(&path, "- targets: ['10.0.0.1:9100']\n", 100);
        let mut sd = discovery(dir.path(), &["*.yaml"]);
        sd.refresh(false);
        write(&path, "- targets: ['10.0.0.1:9100']\n  labelz: {}\n", 50);
        let (changed, errors) = sd.refresh(false);
        assert!(!changed);
        assert_eq!(errors.len(), 1);
        let message = errors[0].to_string();
        assert!(
            message.starts_with(&format!(
                "{}:2:3: .[0]: unknown field `labelz`",
                path.display()
            )),
            "{message}"
        );
        assert_eq!(addresses(&sd), ["10.0.0.1:9100"]);
    }
}
