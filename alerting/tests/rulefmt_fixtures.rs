//! Data-driven checks of `rulefmt` over `../shared/fixtures/rules` (see fixtures/SOURCES.md):
//! Prometheus's own `model/rulefmt` test files, and kube-prometheus's rules both as plain rule
//! files and as `PrometheusRule` objects.

use std::path::{Path, PathBuf};

use sightline_alerting::rulefmt::{NameValidation, Rule, RuleFile, RuleFileError};

fn fixtures() -> PathBuf {
    PathBuf::from("../../shared/fixtures/rules")
}

/// The YAML files of one fixture folder, sorted.
fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let dir = fixtures().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .map(|e| e.path())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What each `*.bad.yaml` must say: its scheme, `line:col`, and the message (a prefix, for the
/// PromQL parser's own wording).
fn expected_error(name: &str) -> Option<(NameValidation, &'static str, &'static str)> {
    use NameValidation::{Legacy, Utf8};
    Some(match name {
        // The `expr` value.
        "bad_expr.bad.yaml" => (
            Utf8,
            "5:15",
            "group \"yolo\", rule 1, \"yolo\": could not parse expression: ",
        ),
        // The unknown key, from the schema pass.
        "bad_field.bad.yaml" => (
            Utf8,
            "8:9",
            "groups[0].rules[0]: unknown field `annotation`",
        ),
        // The second group of that name.
        "duplicate_grp.bad.yaml" => (
            Utf8,
            "3:5",
            "group name \"yolo\" is repeated in the same file",
        ),
        // The label key.
        "invalid_label_name.bad.yaml" => (
            Utf8,
            "7:11",
            "group \"yolo\", rule 1, \"hola\": invalid label name: __name__",
        ),
        // The `record` value.
        "invalid_record_name.bad.yaml" => (
            Utf8,
            "4:17",
            "group \"yolo\", rule 1, \"strawberry{flavor=\\\"sweet\\\"}\": braces present in the \
             recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}",
        ),
        // The annotation key; valid under UTF-8 (see utf-8_annotation.good.yaml).
        "legacy_validation_annotation.bad.yaml" => (
            Legacy,
            "7:11",
            "group \"yolo\", rule 1, \"hola\": invalid annotation name: ins-tance",
        ),
        // The rule: there is no `record` or `alert` to point at.
        "no_rec_alert.bad.yaml" => (
            Utf8,
            "4:9",
            "group \"yolo\", rule 1: one of 'record' or 'alert' must be set",
        ),
        // The rule: there is no `expr` to point at.
        "noexpr.bad.yaml" => (
            Utf8,
            "4:9",
            "group \"yolo\", rule 1, \"ylo\": field 'expr' must be set in rule",
        ),
        // The `record` value.
        "record_and_alert.bad.yaml" => (
            Utf8,
            "4:17",
            "group \"yolo\", rule 1, \"Hello\": only one of 'record' and 'alert' must be set",
        ),
        // The `for` key.
        "record_and_for.bad.yaml" => (
            Utf8,
            "6:9",
            "group \"yolo\", rule 1, \"Hello\": invalid field 'for' in recording rule",
        ),
        // The `keep_firing_for` key.
        "record_and_keep_firing_for.bad.yaml" => (
            Utf8,
            "6:9",
            "group \"yolo\", rule 1, \"Hello\": invalid field 'keep_firing_for' in recording rule",
        ),
        _ => return None,
    })
}

/// Groups, alerting rules and recording rules.
fn counts(file: &RuleFile) -> [usize; 3] {
    let alerting = file
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| matches!(r, Rule::Alerting(_)))
        .count();
    [file.groups.len(), alerting, file.rule_count() - alerting]
}

/// Checks one fixture; `Err` says what went wrong.
fn check_rulefmt_file(path: &Path) -> Result<(), String> {
    let name = file_name(path);
    if !name.ends_with(".bad.yaml") {
        // `legacy_validation_annotation.good.yaml` must pass under both schemes.
        let schemes: &[NameValidation] = if name.starts_with("legacy_") {
            &[NameValidation::Legacy, NameValidation::Utf8]
        } else {
            &[NameValidation::Utf8]
        };
        for &names in schemes {
            RuleFile::load(path, names).map_err(|e| format!("{names:?}: {e}"))?;
        }
        return Ok(());
    }
    let (names, position, message) =
        expected_error(&name).ok_or_else(|| "no expected error written down".to_owned())?;
    let error = match RuleFile::load(path, names) {
        Ok(_) => return Err(format!("loaded under {names:?}, expected an error")),
        Err(error) => error,
    };
    // The first problem, as the user sees it.
    let first = error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let expected = format!("{}:{position}: {message}", path.display());
    if !first.starts_with(&expected) {
        return Err(format!("got      {first}\nexpected {expected}"));
    }
    if name.starts_with("legacy_")
        && let Err(e) = RuleFile::load(path, NameValidation::Utf8)
    {
        return Err(format!("must load under Utf8: {e}"));
    }
    Ok(())
}

#[test]
fn every_rule_fixture() {
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut record = |path: &Path, result: Result<(), String>| match result {
        Ok(()) => passed += 1,
        Err(why) => failures.push(format!("{}: {why}", path.display())),
    };

    for path in yaml_files("rulefmt") {
        let result = check_rulefmt_file(&path);
        record(&path, result);
    }

    // kube-prometheus, as plain files and as PrometheusRule objects: same totals each.
    for folder in ["plain", "crd"] {
        let mut total = [0; 3];
        let files = yaml_files(folder);
        assert_eq!(files.len(), 8, "{folder}: fixture files");
        for path in files {
            let result = RuleFile::load(&path, NameValidation::Utf8)
                .map(|file| {
                    for (sum, n) in total.iter_mut().zip(counts(&file)) {
                        *sum += n;
                    }
                })
                .map_err(|e| e.to_string());
            record(&path, result);
        }
        assert_eq!(
            total,
            [38, 139, 95],
            "{folder}: groups, alerting and recording rules"
        );
    }

    println!("rule fixtures: {passed} passed, {} failed", failures.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn plain_files_equal_their_prometheus_rule_objects() {
    for plain in yaml_files("plain") {
        let stem = file_name(&plain).trim_end_matches(".yaml").to_owned();
        let crd = fixtures().join(format!("crd/{stem}-prometheusRule.yaml"));
        let plain = RuleFile::load(&plain, NameValidation::Utf8).unwrap();
        let crd = RuleFile::load(&crd, NameValidation::Utf8).unwrap();
        assert_eq!(plain.groups, crd.groups, "{stem}");
    }
}

#[test]
fn aliases_and_merge_keys_resolve_like_upstream() {
    let path = fixtures().join("rulefmt/test_aliases.yaml");
    let file = RuleFile::load(&path, NameValidation::Utf8).unwrap();
    let expr = "sum without(instance) (rate(errors_total[5m]))\n/\nsum without(instance) (rate(requests_total[5m]))\n";
    assert_eq!(file.groups.len(), 2);
    for group in &file.groups {
        let alert = |i: usize| match &group.rules[i] {
            Rule::Alerting(rule) => rule,
            other => panic!("rule {i}: expected an alerting rule, got {other:?}"),
        };
        assert_eq!(alert(0).alert, "HighAlert");
        assert_eq!(alert(0).labels["severity"], "critical");
        assert_eq!(
            alert(0).annotations["description"],
            "stuff's happening with {{ $.labels.service }}"
        );
        assert_eq!(group.rules[1].name(), "new_metric");
        assert!(matches!(group.rules[1], Rule::Recording(_)));
        assert_eq!(alert(2).alert, "HighAlert");
        assert_eq!(alert(2).labels["severity"], "critical");
        assert_eq!(alert(3).alert, "HighAlert2");
        assert_eq!(alert(3).labels["severity"], "critical");
        for rule in &group.rules {
            assert_eq!(rule.expr(), expr);
        }
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let path = fixtures().join("rulefmt/does-not-exist.yaml");
    let error = RuleFile::load(&path, NameValidation::Utf8).unwrap_err();
    assert!(matches!(error, RuleFileError::Source(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("does-not-exist.yaml: cannot read file"),
        "{error}"
    );
}
