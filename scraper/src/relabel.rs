//! Relabeling: rewriting a label set by a list of `relabel_config` steps, as Prometheus does
//! for targets (`relabel_configs`), scraped series (`metric_relabel_configs`) and alerts.
//!
//! Follows Prometheus's `model/relabel` (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config):
//! source label values are joined with the separator (a missing label is the empty string);
//! regexes are fully anchored; `replace` expands `$1`/`${name}` in both the target label and
//! the replacement, skips when the regex does not match or the target expands to nothing, and
//! deletes the target when the replacement expands to nothing; `hashmod` takes the MD5 of the
//! joined values and uses its last 8 bytes as a big-endian integer, so shards agree with
//! Prometheus's; `labelmap`, `labeldrop` and `labelkeep` look at the label names as they were
//! before the step.

use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::Regex;
use sightline_core::config::relabel::{RelabelAction, RelabelConfig, RelabelRegex};
use sightline_core::labels::Labels;

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// The regex a step without `regex` uses: `(.*)`, anchored like any other.
static DEFAULT_REGEX: LazyLock<Option<RelabelRegex>> =
    LazyLock::new(|| RelabelRegex::new("(.*)").ok());

/// Applies `steps` in order; `None` when a step drops the label set.
pub fn relabel(labels: &Labels, steps: &[RelabelConfig]) -> Option<Labels> {
    let mut labels = labels.clone();
    for step in steps {
        if !apply(&mut labels, step) {
            return None;
        }
    }
    Some(labels)
}

/// Applies one step; false when the label set is dropped.
fn apply(labels: &mut Labels, step: &RelabelConfig) -> bool {
    let separator = step.separator.as_deref().unwrap_or(DEFAULT_SEPARATOR);
    let joined = step
        .source_labels
        .iter()
        .map(|name| labels.get(name).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(separator);
    let Some(regex) = step
        .regex
        .as_ref()
        .or(DEFAULT_REGEX.as_ref())
        .map(RelabelRegex::regex)
    else {
        return true;
    };
    let regex_matches = |text: &str| regex.is_match(text);
    let target = step.target_label.as_deref().unwrap_or("");
    let replacement = step.replacement.as_deref().unwrap_or(DEFAULT_REPLACEMENT);
    match step.action {
        RelabelAction::Keep => return regex_matches(&joined),
        RelabelAction::Drop => return !regex_matches(&joined),
        RelabelAction::KeepEqual => return labels.get(target).unwrap_or("") == joined,
        RelabelAction::DropEqual => return labels.get(target).unwrap_or("") != joined,
        RelabelAction::Replace => replace(labels, regex, &joined, target, replacement),
        RelabelAction::Lowercase => labels.set(target, &joined.to_lowercase()),
        RelabelAction::Uppercase => labels.set(target, &joined.to_uppercase()),
        RelabelAction::HashMod => {
            let digest = Md5::digest(joined.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            let modulus = step.modulus.unwrap_or(1).max(1);
            labels.set(target, &(u64::from_be_bytes(tail) % modulus).to_string());
        }
        RelabelAction::LabelMap => {
            let before = labels.clone();
            for label in &before {
                if regex_matches(&label.name) {
                    let name = regex.replace(&label.name, replacement);
                    labels.set(&name, &label.value);
                }
            }
        }
        RelabelAction::LabelDrop => *labels = labels.without(|name| regex_matches(name)),
        RelabelAction::LabelKeep => *labels = labels.without(|name| !regex_matches(name)),
    }
    true
}

/// The `replace` action: writes the expanded replacement into the expanded target label.
fn replace(labels: &mut Labels, regex: &Regex, joined: &str, target: &str, replacement: &str) {
    let Some(captures) = regex.captures(joined) else {
        return;
    };
    let mut target_name = String::new();
    captures.expand(target, &mut target_name);
    if target_name.is_empty() {
        return;
    }
    let mut value = String::new();
    captures.expand(replacement, &mut value);
    labels.set(&target_name, &value);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sightline_core::config::Config;

    use super::*;

    /// Parses `steps` (a YAML list) as the relabel_configs of a job.
    fn steps(yaml: &str) -> Vec<RelabelConfig> {
        let text = format!("scrape_configs:\n  - job_name: t\n    relabel_configs: {yaml}\n");
        let config = Config::parse(Path::new("t.yml"), &text).unwrap();
        config.scrape_configs[0].relabel_configs.clone()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
        relabel(&labels(input), &steps(yaml))
    }

    #[test]
    fn keep_and_drop_match_the_joined_sources() {
        let keep = r#"[{source_labels: [a, b], regex: "x;y", action: keep}]"#;
        assert!(run(keep, &[("a", "x"), ("b", "y")]).is_some());
        assert!(run(keep, &[("a", "x"), ("b", "yy")]).is_none(), "anchored");
        let drop = r#"[{source_labels: [a], separator: "-", regex: "x-?", action: drop}]"#;
        assert!(run(drop, &[("a", "x")]).is_none());
        assert!(run(drop, &[("a", "z")]).is_some());
        // A missing label joins as the empty string.
        let keep_empty = r#"[{source_labels: [missing], regex: "", action: keep}]"#;
        assert!(run(keep_empty, &[("a", "1")]).is_some());
    }

    #[test]
    fn replace_expands_groups_in_target_and_replacement() {
        let address = r#"[{source_labels: [__address__, port], regex: '([^:]+)(?::\d+)?;(\d+)', replacement: '$1:$2', target_label: __address__}]"#;
        let out = run(address, &[("__address__", "10.0.0.1:80"), ("port", "9100")]).unwrap();
        assert_eq!(out.get("__address__"), Some("10.0.0.1:9100"));

        let copy = "[{source_labels: [a], target_label: b}]";
        assert_eq!(run(copy, &[("a", "v")]).unwrap().get("b"), Some("v"));

        let templated = r#"[{source_labels: [kind], regex: "(.*)", target_label: "is_${1}", replacement: "yes"}]"#;
        assert_eq!(
            run(templated, &[("kind", "db")]).unwrap().get("is_db"),
            Some("yes")
        );

        let no_match = r#"[{source_labels: [a], regex: "z", target_label: b, replacement: c}]"#;
        assert_eq!(run(no_match, &[("a", "v")]).unwrap(), labels(&[("a", "v")]));

        let delete = r#"[{source_labels: [a], regex: ".*", target_label: b, replacement: ""}]"#;
        assert_eq!(
            run(delete, &[("a", "v"), ("b", "old")]).unwrap(),
            labels(&[("a", "v")])
        );

        let missing_group = r#"[{source_labels: [a], target_label: b, replacement: "$10"}]"#;
        assert_eq!(
            run(missing_group, &[("a", "v")]).unwrap().get("b"),
            None,
            "$10 is group 10"
        );
    }

    #[test]
    fn hashmod_agrees_with_prometheus() {
        // md5("10.0.0.1:9100"), last 8 bytes big-endian, mod 8 = 5 (checked with Python's hashlib).
        let shard =
            "[{source_labels: [__address__], modulus: 8, target_label: shard, action: hashmod}]";
        let out = run(shard, &[("__address__", "10.0.0.1:9100")]).unwrap();
        assert_eq!(out.get("shard"), Some("5"));
        let out = run(shard, &[("__address__", "a")]).unwrap();
        assert_eq!(out.get("shard"), Some("1"));
    }

    #[test]
    fn label_name_actions() {
        let map = r#"[{action: labelmap, regex: "__meta_pod_label_(.+)"}]"#;
        let out = run(map, &[("__meta_pod_label_app", "web"), ("x", "1")]).unwrap();
        assert_eq!(out.get("app"), Some("web"));
        assert_eq!(
            out.get("__meta_pod_label_app"),
            Some("web"),
            "labelmap copies"
        );

        let drop = r#"[{action: labeldrop, regex: "tmp_.*"}]"#;
        assert_eq!(
            run(drop, &[("tmp_a", "1"), ("keep", "2")]).unwrap(),
            labels(&[("keep", "2")])
        );
        let keep = r#"[{action: labelkeep, regex: "__name__|job"}]"#;
        assert_eq!(
            run(keep, &[("__name__", "up"), ("job", "j"), ("pod", "p")]).unwrap(),
            labels(&[("__name__", "up"), ("job", "j")])
        );
    }

    #[test]
    fn case_and_equality_actions() {
        let lower = "[{source_labels: [a], target_label: b, action: lowercase}]";
        assert_eq!(
            run(lower, &[("a", "MiXeD")]).unwrap().get("b"),
            Some("mixed")
        );
        let upper = "[{source_labels: [a], target_label: b, action: uppercase}]";
        assert_eq!(
            run(upper, &[("a", "MiXeD")]).unwrap().get("b"),
            Some("MIXED")
        );
        let keep_equal = "[{source_labels: [port], target_label: expected, action: keepequal}]";
        assert!(run(keep_equal, &[("port", "80"), ("expected", "80")]).is_some());
        assert!(run(keep_equal, &[("port", "80"), ("expected", "81")]).is_none());
        let drop_equal = "[{source_labels: [port], target_label: expected, action: dropequal}]";
        assert!(run(drop_equal, &[("port", "80"), ("expected", "80")]).is_none());
    }

    #[test]
    fn steps_apply_in_order() {
        let chain = r#"[{source_labels: [a], target_label: b}, {source_labels: [b], regex: "x", action: drop}]"#;
        assert!(run(chain, &[("a", "x")]).is_none());
        assert!(run(chain, &[("a", "y")]).is_some());
    }
}
