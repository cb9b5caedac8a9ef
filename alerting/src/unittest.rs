//! Rule unit tests in promtool's test-file format (`promtool test rules`), so that existing
//! tests run unchanged under `sightline test rules`.
//!
//! Follows <https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/>:
//! a file names `rule_files` (relative to itself), an `evaluation_interval` (1m) and an
//! optional `group_eval_order`; each test loads `input_series` in the expanding notation
//! (one value per `interval`, from time 0), evaluates every group at each evaluation step up
//! to the last `eval_time`, and compares the firing alerts of `alert_rule_test` (labels with
//! `alertname`, and annotations, order-insensitive) and the samples of `promql_expr_test`
//! with what is expected. As promtool does, alerts are compared at the evaluation step whose
//! interval holds `eval_time`, and pending alerts do not count.
//!
//! Beyond promtool, for LogQL rules: `log_rule_files` names LogQL rule files, and a test's
//! `input_streams` writes log lines into a throw-away log store: each entry has a `stream`
//! selector, a `line`, and `counts` in the expanding notation, the number of copies of the
//! line written in each `interval` (spread evenly across it, from time 0).
//!
//! Decisions: every sample is loaded before evaluation starts (no query looks ahead of its
//! evaluation time, so this equals promtool's loading as time advances); values compare
//! equal within a relative 1e-9, as promtool's float comparison allows; a failing test
//! prints both sides in promtool's layout so that the diff reads the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;
use sightline_core::yaml::{self, SourceError};
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::promql::test_series::{Slot, parse_float, parse_labels, parse_values};
use sightline_tsdb::promql::{Engine, EngineOptions, Value};
use sightline_tsdb::storage::{Appendable, Querier};

use sightline_logstore::logql::QueryLimits;
use sightline_logstore::push::{Entry, PushStream};
use sightline_logstore::store::{LogStore, StoreOptions};

use crate::rulefmt::{NameValidation, QueryLanguage, RuleFile, RuleFileError};
use crate::rules::alert::AlertState;
use crate::rules::group::{EvalContext, Group, RuleState};

/// Why a test file could not be run at all (as opposed to a test failing).
#[derive(Debug, thiserror::Error)]
pub enum UnitTestError {
    /// The test file does not read or does not match the format.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A rule file it names does not load.
    #[error("{}: {source}", path.display())]
    RuleFile {
        /// The rule file.
        path: PathBuf,
        /// Why.
        source: RuleFileError,
    },
    /// A series or a value of the test does not parse.
    #[error("{0}")]
    Input(String),
    /// The temporary storage could not be set up.
    #[error("cannot set up the test storage: {0}")]
    Storage(String),
}

/// A test file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    log_rule_files: Vec<String>,
    #[serde(default = "one_minute")]
    evaluation_interval: Duration,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    #[serde(default = "one_minute")]
    interval: Duration,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    input_streams: Vec<InputStream>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

/// Copies of one log line in one stream: `counts` in the expanding notation says how many
/// in each interval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputStream {
    stream: String,
    line: String,
    counts: String,
}

/// More lines than a rule test needs: a typo in `counts` fails instead of filling the disk.
const MAX_INPUT_LINES: usize = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: Duration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedSample {
    #[serde(default)]
    labels: String,
    value: Number,
}

/// A YAML number as promtool reads it: an integer, a float, or a string such as `Inf`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Number {
    fn value(&self) -> Result<f64, String> {
        match self {
            Number::Int(i) => Ok(*i as f64),
            Number::Float(f) => Ok(*f),
            Number::Text(text) => {
                parse_float(text).ok_or_else(|| format!("value {text:?} is not a number"))
            }
        }
    }
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

/// An alert as compared: labels and annotations, both sorted.
type AlertView = (Labels, BTreeMap<String, String>);

/// Runs every test of the file at `path`; returns the failures, one text block per failed
/// check (empty: the file passed).
pub fn run_file(path: &Path) -> Result<Vec<String>, UnitTestError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: TestFile = yaml::from_str(path, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = load_rule_files(base, &file.rule_files, QueryLanguage::PromQl)?;
    rule_files.extend(load_rule_files(
        base,
        &file.log_rule_files,
        QueryLanguage::LogQl,
    )?);
    let mut failures = Vec::new();
    for test in &file.tests {
        failures.extend(run_test(&file, test, &rule_files)?);
    }
    Ok(failures)
}

/// The rule files `patterns` (globs relative to `base`) match, in `language`.
fn load_rule_files(
    base: &Path,
    patterns: &[String],
    language: QueryLanguage,
) -> Result<Vec<RuleFile>, UnitTestError> {
    let mut rule_files = Vec::new();
    for pattern in patterns {
        let full = base.join(pattern);
        let mut matched: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        if matched.is_empty() {
            matched.push(full);
        }
        matched.sort();
        for rule_path in matched {
            let loaded = RuleFile::load_as(&rule_path, NameValidation::default(), language)
                .map_err(|source| UnitTestError::RuleFile {
                    path: rule_path.clone(),
                    source,
                })?;
            rule_files.push(loaded);
        }
    }
    Ok(rule_files)
}

/// The groups to evaluate, in `group_eval_order` first, then in file order.
fn groups(file: &TestFile, rule_files: &[RuleFile], interval_ms: i64) -> Vec<Group> {
    let mut groups: Vec<Group> = rule_files
        .iter()
        .flat_map(|rules| {
            let name = rules.path.display().to_string();
            rules
                .groups
                .iter()
                .map(move |spec| Group::new(name.clone(), spec.clone(), interval_ms))
        })
        .collect();
    groups.sort_by_key(|group| {
        file.group_eval_order
            .iter()
            .position(|name| *name == group.spec.name)
            .unwrap_or(usize::MAX)
    });
    groups
}

fn run_test(
    file: &TestFile,
    test: &TestGroup,
    rule_files: &[RuleFile],
) -> Result<Vec<String>, UnitTestError> {
    let storage = tempfile::tempdir().map_err(|e| UnitTestError::Storage(e.to_string()))?;
    let head = Arc::new(
        Head::open(storage.path(), HeadOptions::default())
            .map_err(|e| UnitTestError::Storage(e.to_string()))?,
    );
    load_series(&head, test)?;
    let logs = LogStore::open(storage.path().join("logs"), StoreOptions::default())
        .map_err(|e| UnitTestError::Storage(e.to_string()))?;
    load_streams(&logs, test)?;
    let querier: Arc<dyn Querier> = head.clone();
    let engine = Engine::new(EngineOptions::default());
    let eval_ms = file.evaluation_interval.as_millis().max(1) as i64;
    let mut groups = groups(file, rule_files, eval_ms);
    let ctx = EvalContext {
        engine: &engine,
        querier: querier.clone(),
        logs: Some(&logs),
        appendable: &head,
        external_labels: &test.external_labels,
        external_url: &test.external_url,
        log_query_limits: &QueryLimits::default(),
    };

    let mut alert_tests: Vec<&AlertTest> = test.alert_rule_test.iter().collect();
    alert_tests.sort_by_key(|t| t.eval_time.as_millis());
    let last_ms = alert_tests
        .iter()
        .map(|t| t.eval_time.as_millis())
        .chain(
            test.promql_expr_test
                .iter()
                .map(|t| t.eval_time.as_millis()),
        )
        .max()
        .unwrap_or(0) as i64;
    let mut failures = Vec::new();
    let mut next_alert_test = 0;
    let mut ts = 0;
    while ts <= last_ms {
        for group in &mut groups {
            if let Err(error) = group.evaluate(&ctx, ts) {
                failures.push(format!("    group {:?}: {error}", group.spec.name));
            }
        }
        while let Some(alert_test) = alert_tests.get(next_alert_test) {
            let at = alert_test.eval_time.as_millis() as i64;
            if !(ts <= at && at < ts + eval_ms) {
                break;
            }
            if let Some(failure) = check_alerts(test, alert_test, &groups) {
                failures.push(failure);
            }
            next_alert_test += 1;
        }
        ts += eval_ms;
    }
    for expr_test in &test.promql_expr_test {
        if let Some(failure) = check_expr(test, expr_test, &engine, querier.as_ref()) {
            failures.push(failure);
        }
    }
    Ok(failures)
}

/// Appends the test's input series, one value per `interval` from time 0.
fn load_series(head: &Arc<Head>, test: &TestGroup) -> Result<(), UnitTestError> {
    let step_ms = test.interval.as_millis() as i64;
    let mut appender = Appendable::appender(head);
    for input in &test.input_series {
        let labels = parse_labels(&input.series)
            .map_err(|e| UnitTestError::Input(format!("input series {}: {e}", input.series)))?;
        let slots = parse_values(&input.values)
            .map_err(|e| UnitTestError::Input(format!("values of {}: {e}", input.series)))?;
        for (index, slot) in slots.iter().enumerate() {
            if let Slot::Value(value) = slot {
                appender
                    .append(&labels, index as i64 * step_ms, *value)
                    .map_err(|e| UnitTestError::Input(format!("{}: {e}", input.series)))?;
            }
        }
    }
    appender
        .commit()
        .map_err(|e| UnitTestError::Storage(e.to_string()))?;
    Ok(())
}

/// Writes the test's input streams: each line `counts` times per interval, spread evenly.
fn load_streams(store: &LogStore, test: &TestGroup) -> Result<(), UnitTestError> {
    let step_ns = test.interval.as_millis() as i64 * 1_000_000;
    let mut streams: Vec<PushStream> = Vec::new();
    let mut total = 0;
    for input in &test.input_streams {
        let labels = parse_labels(&input.stream)
            .map_err(|e| UnitTestError::Input(format!("input stream {}: {e}", input.stream)))?;
        let slots = parse_values(&input.counts)
            .map_err(|e| UnitTestError::Input(format!("counts of {}: {e}", input.stream)))?;
        let index = match streams.iter().position(|s| s.labels == labels) {
            Some(index) => index,
            None => {
                streams.push(PushStream {
                    labels,
                    malformed_labels: None,
                    entries: Vec::new(),
                });
                streams.len() - 1
            }
        };
        for (slot_index, slot) in slots.iter().enumerate() {
            let Slot::Value(count) = slot else { continue };
            if !(count.fract() == 0.0 && *count >= 0.0) {
                return Err(UnitTestError::Input(format!(
                    "counts of {}: {count} is not a number of lines",
                    input.stream
                )));
            }
            let count = *count as usize;
            total += count;
            if total > MAX_INPUT_LINES {
                return Err(UnitTestError::Input(format!(
                    "input streams: more than {MAX_INPUT_LINES} lines"
                )));
            }
            let start = slot_index as i64 * step_ns;
            streams[index].entries.extend((0..count).map(|k| Entry {
                timestamp_ns: start + step_ns * k as i64 / count as i64,
                line: input.line.clone(),
                metadata: Vec::new(),
            }));
        }
    }
    for stream in &mut streams {
        stream.entries.sort_by_key(|entry| entry.timestamp_ns);
    }
    store
        .push(&streams)
        .map_err(|e| UnitTestError::Storage(e.to_string()))
}

/// Compares the firing alerts named `alertname` with the expected ones.
fn check_alerts(test: &TestGroup, alert_test: &AlertTest, groups: &[Group]) -> Option<String> {
    let mut got: Vec<AlertView> = groups
        .iter()
        .flat_map(|group| &group.rules)
        .filter_map(|state| match state {
            RuleState::Alerting(rule) if rule.rule.alert == alert_test.alertname => Some(rule),
            _ => None,
        })
        .flat_map(|rule| rule.active.values())
        .filter(|alert| alert.state == AlertState::Firing)
        .map(|alert| (alert.labels.clone(), alert.annotations.clone()))
        .collect();
    let mut expected: Vec<AlertView> = alert_test
        .exp_alerts
        .iter()
        .map(|alert| {
            let mut labels = Labels::from_pairs(alert.exp_labels.iter());
            labels.set("alertname", &alert_test.alertname);
            (labels, alert.exp_annotations.clone())
        })
        .collect();
    got.sort();
    expected.sort();
    if got == expected {
        return None;
    }
    Some(format!(
        "{}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}\n",
        name_line(test),
        alert_test.alertname,
        alert_test.eval_time,
        alert_list(&expected),
        alert_list(&got)
    ))
}

/// promtool's `name:` line of a failure, for tests that have a name.
fn name_line(test: &TestGroup) -> String {
    if test.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", test.name)
    }
}

fn alert_list(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return "[]".to_owned();
    }
    let mut text = String::from("[\n");
    for (index, (labels, annotations)) in alerts.iter().enumerate() {
        let annotations: Vec<String> = annotations
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        let _ = write!(
            text,
            "            {index}:\n              Labels:{labels}\n              Annotations:{{{}}}\n",
            annotations.join(", ")
        );
    }
    text.push_str("            ]");
    text
}

/// Evaluates a `promql_expr_test` and compares its samples with the expected ones.
fn check_expr(
    test: &TestGroup,
    expr_test: &ExprTest,
    engine: &Engine,
    querier: &dyn Querier,
) -> Option<String> {
    let at = expr_test.eval_time.as_millis() as i64;
    let failure = |message: String| {
        Some(format!(
            "{}    expr: {:?}, time: {},\n{message}\n",
            name_line(test),
            expr_test.expr,
            expr_test.eval_time
        ))
    };
    let result = match engine.instant_query(querier, &expr_test.expr, at) {
        Ok(result) => result,
        Err(error) => return failure(format!("        error: {error}")),
    };
    let mut got: Vec<(Labels, f64)> = match result.value {
        Value::Vector(samples) => samples.into_iter().map(|s| (s.metric, s.v)).collect(),
        Value::Scalar { v, .. } => vec![(Labels::new(), v)],
        other => {
            return failure(format!(
                "        error: the expression returns a {}",
                other.type_name()
            ));
        }
    };
    let mut expected = Vec::new();
    for sample in &expr_test.exp_samples {
        match expected_labels(&sample.labels).and_then(|l| Ok((l, sample.value.value()?))) {
            Ok(expected_sample) => expected.push(expected_sample),
            Err(error) => return failure(format!("        error: {error}")),
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == expected.len()
        && got
            .iter()
            .zip(&expected)
            .all(|((gl, gv), (el, ev))| gl == el && values_equal(*gv, *ev));
    if same {
        return None;
    }
    failure(format!(
        "        exp: {}\n        got: {}",
        sample_list(&expected),
        sample_list(&got)
    ))
}

/// Labels of an expected sample: a series descriptor, or empty for a scalar or a result
/// without labels.
fn expected_labels(text: &str) -> Result<Labels, String> {
    if text.trim().is_empty() {
        return Ok(Labels::new());
    }
    parse_labels(text)
}

fn values_equal(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn sample_list(samples: &[(Labels, f64)]) -> String {
    let items: Vec<String> = samples
        .iter()
        .map(|(labels, value)| format!("{labels} {value}"))
        .collect();
    if items.is_empty() {
        "nil".to_owned()
    } else {
        items.join(", ")
    }
}
