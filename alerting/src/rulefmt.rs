//! Prometheus rule files, read and validated the way Prometheus 3's `model/rulefmt` (and so
//! `promtool check rules`) does, with every problem reported as `file:line:col: message`.
//!
//! Follows <https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/> and
//! <https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/>: a file is a
//! `groups:` list; a group has `name`, `interval`, `query_offset`, `limit`, `labels` and
//! `rules`; a rule is a recording rule (`record`) or an alerting rule (`alert`, `for`,
//! `keep_firing_for`, `annotations`), both with `expr` and `labels`. A `PrometheusRule` object
//! (`apiVersion: monitoring.coreos.com/v1`) is read through its `spec`, which has the same
//! shape; `metadata` and the rest of the Kubernetes envelope are ignored.
//!
//! Edge cases decided here:
//! - Reading takes two passes. The first ([`sightline_core::yaml`]) stops at the first syntax
//!   error, unknown key, wrong type or empty group name. The second checks every group and
//!   rule with its context (group name, rule number, [`NameValidation`]) and reports every
//!   problem, in file order, up to [`MAX_PROBLEMS`].
//! - The second pass finds a problem's position by reading the file again up to the node at
//!   fault, which costs nothing for a valid file. The node is the `expr` value for a PromQL
//!   error, the `record` value for a bad record name or for `record` with `alert`, the key for
//!   a bad label or annotation name and for `for`, `keep_firing_for` or `annotations` on a
//!   recording rule, the rule for a missing `expr`, `record` or `alert`, and the group for a
//!   group name used twice. Upstream points at `record` for the misplaced fields and at no
//!   position for names; the key is where the fix goes.
//! - `expr` may be any YAML scalar (`expr: 1`); it is kept as written and parsed.
//! - An empty `record` or `alert` counts as absent, and `for: 0s` or `keep_firing_for: 0s` on a
//!   recording rule is allowed, as upstream does.
//! - A recording rule name with `{` or `}` is reported as such (the selector belongs in
//!   `expr`), not as an invalid name, under both validation schemes.
//! - YAML merge keys (`<<: *anchor`, as in upstream's `test_aliases.yaml`) are applied in
//!   rules and in `labels` and `annotations`: yaml_serde does not apply them itself. Keys
//!   written in the mapping win over merged ones, earlier merged mappings over later ones.
//! - Label and annotation values are any UTF-8, which a Rust string already is. Alerting
//!   rule templates are not parsed here.
//! - LogQL rule files (Loki ruler style, [`QueryLanguage::LogQl`]) have the same shape; their
//!   `expr` must be a LogQL metric query (`count_over_time(...)`, `rate(...)`, ...): a log
//!   query returns lines, which no rule can use.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use promql_parser::parser::Expr;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use sightline_core::duration::Duration;
use sightline_core::yaml::{self, Check, Location, SourceError, Step, locate};
use sightline_logstore::logql;

/// The most problems one error reports; a file that breaks more is mostly noise after that,
/// and each located problem costs one more read of the file.
pub const MAX_PROBLEMS: usize = 100;

/// The `apiVersion` a `PrometheusRule` object must have.
const PROMETHEUS_RULE_API_VERSION: &str = "monitoring.coreos.com/v1";

/// Which label, annotation and metric names are valid.
///
/// Prometheus 3 accepts any non-empty UTF-8 name by default and keeps the older character
/// set behind `metric_name_validation_scheme: legacy`; rule files are checked against the
/// scheme the server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// Label and annotation names match `[a-zA-Z_][a-zA-Z0-9_]*`, metric names
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Legacy,
    /// Any non-empty UTF-8 name, the Prometheus 3 default.
    #[default]
    Utf8,
}

impl NameValidation {
    /// Whether `name` may be a label (or annotation) name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_name(name, false),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }

    /// Whether `name` may be a metric name (a recording rule's `record`) under this scheme.
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_legacy_name(name, true),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, with `:` allowed anywhere when `colons` (metric names).
fn is_legacy_name(name: &str, colons: bool) -> bool {
    let starts_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if starts_ok(first) => chars.all(|c| starts_ok(c) || c.is_ascii_digit()),
        _ => false,
    }
}

/// A validated rule file: what the rule manager evaluates and `/api/v1/rules` lists.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// The file as the user named it, shown as the groups' `file` in the API.
    pub path: PathBuf,
    /// The groups in file order; group names are unique within the file.
    pub groups: Vec<RuleGroup>,
}

/// Rules evaluated one after the other at the same interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// Unique within its file.
    pub name: String,
    /// How often the group runs; the global evaluation interval when absent.
    pub interval: Option<Duration>,
    /// How far in the past the group queries; the global `query_offset` when absent.
    pub query_offset: Option<Duration>,
    /// Most alerts or series one rule may produce per evaluation; 0 means no limit.
    pub limit: u64,
    /// Labels added to every rule's result, below the rule's own labels.
    pub labels: BTreeMap<String, String>,
    /// The rules in evaluation order.
    pub rules: Vec<Rule>,
}

/// The query language of a rule file's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    /// Prometheus rule files (`rule_files`), over the metric store.
    #[default]
    PromQl,
    /// Loki ruler files (`log_rule_files`), over the log store.
    LogQl,
}

/// A rule's parsed expression, for the evaluator.
#[derive(Debug, Clone)]
pub enum RuleQuery {
    /// A PromQL expression.
    PromQl(Expr),
    /// A LogQL metric query.
    LogQl(Arc<logql::MetricExpr>),
}

/// Equal when both are of one language and, for PromQL, the same expression. LogQL's syntax
/// tree has no equality: rules compare their `expr` text as well, and the text decides it.
impl PartialEq for RuleQuery {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RuleQuery::PromQl(a), RuleQuery::PromQl(b)) => a == b,
            (RuleQuery::LogQl(_), RuleQuery::LogQl(_)) => true,
            _ => false,
        }
    }
}

/// One rule of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Writes the expression's result as a new series.
    Recording(RecordingRule),
    /// Fires an alert for each series the expression returns.
    Alerting(AlertingRule),
}

/// A rule that stores its expression's result under a new metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// The metric name written.
    pub record: String,
    /// The expression as written in the file, for the API and error messages.
    pub expr: String,
    /// The parsed expression, for the evaluator.
    pub query: RuleQuery,
    /// Labels set on (or replaced in) every result series.
    pub labels: BTreeMap<String, String>,
}

/// A rule that raises an alert for each series its expression returns.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// The alert name, set as the `alertname` label.
    pub alert: String,
    /// The expression as written in the file, for the API and error messages.
    pub expr: String,
    /// The parsed expression, for the evaluator.
    pub query: RuleQuery,
    /// How long a series must keep matching before the alert fires (`for`); zero fires at once.
    pub for_duration: Duration,
    /// How long the alert keeps firing after the series stops matching.
    pub keep_firing_for: Duration,
    /// Labels added to the alert; values are templates, rendered at evaluation.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the alert; values are templates, rendered at evaluation.
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The alert name or the recorded metric name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(rule) => &rule.record,
            Rule::Alerting(rule) => &rule.alert,
        }
    }

    /// The expression as written in the file.
    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording(rule) => &rule.expr,
            Rule::Alerting(rule) => &rule.expr,
        }
    }

    /// The parsed expression.
    pub fn query(&self) -> &RuleQuery {
        match self {
            Rule::Recording(rule) => &rule.query,
            Rule::Alerting(rule) => &rule.query,
        }
    }

    /// The rule's own labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            Rule::Recording(rule) => &rule.labels,
            Rule::Alerting(rule) => &rule.labels,
        }
    }
}

/// One thing wrong with a rule file, and where.
pub use sightline_core::yaml::Problem;

/// Why a rule file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    /// The file could not be read, is not YAML, or does not match the schema (an unknown
    /// key, a wrong type, a bad duration, an empty group name). Reading stops at the first.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The file matches the schema but breaks Prometheus's rules; one line per problem.
    #[error("{}", list_problems(.problems, *.omitted))]
    Invalid {
        /// The problems found, in file order, at most [`MAX_PROBLEMS`].
        problems: Vec<Problem>,
        /// How many more problems were found but not listed.
        omitted: usize,
    },
}

fn list_problems(problems: &[Problem], omitted: usize) -> String {
    let mut text = problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if omitted > 0 {
        text.push_str(&format!("\n… and {omitted} more problems"));
    }
    text
}

impl RuleFile {
    /// Reads and validates the rule file (or `PrometheusRule` object) at `path`.
    pub fn load(path: &Path, names: NameValidation) -> Result<RuleFile, RuleFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, names)
    }

    /// Reads and validates the rule file at `path`, whose expressions are in `language`.
    pub fn load_as(
        path: &Path,
        names: NameValidation,
        language: QueryLanguage,
    ) -> Result<RuleFile, RuleFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_as(path, &text, names, language)
    }

    /// Validates `text` as a rule file or a `PrometheusRule` object, naming
    /// `path_for_messages` in errors.
    pub fn parse(
        path_for_messages: &Path,
        text: &str,
        names: NameValidation,
    ) -> Result<RuleFile, RuleFileError> {
        Self::parse_as(path_for_messages, text, names, QueryLanguage::PromQl)
    }

    /// Validates `text` as a rule file whose expressions are in `language`.
    pub fn parse_as(
        path_for_messages: &Path,
        text: &str,
        names: NameValidation,
        language: QueryLanguage,
    ) -> Result<RuleFile, RuleFileError> {
        let path = path_for_messages;
        let mut validator = Validator {
            path,
            text,
            names,
            language,
            base: Vec::new(),
            problems: Vec::new(),
            omitted: 0,
        };
        let raw = if is_prometheus_rule(text) {
            let object: RawPrometheusRule = yaml::from_str(path, text)?;
            if object.api_version != PROMETHEUS_RULE_API_VERSION {
                validator.report(
                    &[Step::Key("apiVersion")],
                    format!(
                        "PrometheusRule apiVersion is {:?}, expected {PROMETHEUS_RULE_API_VERSION:?}",
                        object.api_version
                    ),
                );
            }
            validator.base.push(Step::Key("spec"));
            object.spec
        } else {
            yaml::from_str::<RawFile>(path, text)?
        };
        let groups = validator.groups(raw);
        validator.finish()?;
        Ok(RuleFile {
            path: path.to_owned(),
            groups,
        })
    }

    /// The rule groups of a PrometheusRule object read from Kubernetes (its `spec`), named
    /// `prometheusrule/<namespace>/<name>` in the APIs and in errors.
    pub fn from_prometheus_rule(
        namespace: &str,
        name: &str,
        spec: &serde_json::Value,
    ) -> Result<RuleFile, RuleFileError> {
        let path = PathBuf::from(format!("prometheusrule/{namespace}/{name}"));
        // JSON is YAML: the spec is validated as a rule file, positions in this text.
        let text = serde_json::to_string_pretty(spec).unwrap_or_default();
        Self::parse_as(
            &path,
            &text,
            NameValidation::default(),
            QueryLanguage::PromQl,
        )
    }

    /// The number of rules over all groups.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|group| group.rules.len()).sum()
    }
}

/// Whether the document is a Kubernetes object of kind `PrometheusRule`. Anything that does
/// not even read as a mapping is left to the rule file parser, which reports it.
fn is_prometheus_rule(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    yaml_serde::from_str::<Kind>(text)
        .ok()
        .and_then(|probe| probe.kind)
        .is_some_and(|kind| kind == "PrometheusRule")
}

// ---------------------------------------------------------------------------------------
// The schema as written (first pass).

/// A `PrometheusRule` object; fields other than these (metadata, status) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a PrometheusRule object")]
struct RawPrometheusRule {
    api_version: String,
    spec: RawFile,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule file (a mapping with `groups`)"
)]
struct RawFile {
    #[serde(default, deserialize_with = "yaml::checked_each")]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule group (a mapping with `name` and `rules`)"
)]
struct RawGroup {
    name: String,
    interval: Option<Duration>,
    query_offset: Option<Duration>,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    labels: StringMap,
    #[serde(default)]
    rules: Vec<RawRule>,
}

impl Check for RawGroup {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("group name must not be empty".to_owned());
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule (a mapping with `record` or `alert`, and `expr`)"
)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    /// Any scalar: yaml_serde hands a plain `1` to a string as written.
    expr: Option<String>,
    #[serde(rename = "for")]
    for_duration: Option<Duration>,
    keep_firing_for: Option<Duration>,
    labels: Option<StringMap>,
    annotations: Option<StringMap>,
    #[serde(rename = "<<", default)]
    merged: Merged<RawRule>,
}

impl RawRule {
    /// Applies the merge key: fields written here win, then earlier merged mappings.
    fn resolve(self) -> RawRule {
        let RawRule {
            mut record,
            mut alert,
            mut expr,
            mut for_duration,
            mut keep_firing_for,
            mut labels,
            mut annotations,
            merged,
        } = self;
        for base in merged.0 {
            let base = base.resolve();
            record = record.or(base.record);
            alert = alert.or(base.alert);
            expr = expr.or(base.expr);
            for_duration = for_duration.or(base.for_duration);
            keep_firing_for = keep_firing_for.or(base.keep_firing_for);
            labels = labels.or(base.labels);
            annotations = annotations.or(base.annotations);
        }
        RawRule {
            record,
            alert,
            expr,
            for_duration,
            keep_firing_for,
            labels,
            annotations,
            merged: Merged::default(),
        }
    }
}

/// The value of a merge key: one mapping or a list of them.
struct Merged<T>(Vec<T>);

impl<T> Default for Merged<T> {
    fn default() -> Self {
        Merged(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Merged<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MergedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MergedVisitor<T> {
            type Value = Merged<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping or a list of mappings to merge")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| Merged(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(Merged(all))
            }
        }
        deserializer.deserialize_any(MergedVisitor(PhantomData))
    }
}

/// A `labels` or `annotations` mapping of strings, with merge keys applied and repeated keys
/// rejected (as Go's yaml.v3 does).
#[derive(Default)]
struct StringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                let mut written = BTreeMap::new();
                let mut merged = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "<<" {
                        merged.extend(map.next_value::<Merged<StringMap>>()?.0);
                        continue;
                    }
                    let value = map.next_value::<String>()?;
                    if written.contains_key(&key) {
                        return Err(de::Error::custom(format!(
                            "key {key:?} is repeated in this mapping"
                        )));
                    }
                    written.insert(key, value);
                }
                for base in merged {
                    for (key, value) in base.0 {
                        written.entry(key).or_insert(value);
                    }
                }
                Ok(StringMap(written))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Validation in context (second pass).

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    names: NameValidation,
    language: QueryLanguage,
    /// Where the `groups` list sits: the root, or `spec` of a `PrometheusRule`.
    base: Vec<Step<'static>>,
    problems: Vec<Problem>,
    omitted: usize,
}

impl Validator<'_> {
    fn groups(&mut self, raw: RawFile) -> Vec<RuleGroup> {
        let mut seen = HashSet::new();
        let mut groups = Vec::with_capacity(raw.groups.len());
        for (g, group) in raw.groups.into_iter().enumerate() {
            let at_group = [Step::Key("groups"), Step::Index(g)];
            if !seen.insert(group.name.clone()) {
                self.report(
                    &at_group,
                    format!("group name {:?} is repeated in the same file", group.name),
                );
            }
            for name in group.labels.0.keys() {
                if !self.names.is_valid_label_name(name) || name == "__name__" {
                    self.report(
                        &[&at_group[..], &[Step::Key("labels"), Step::KeyItself(name)]].concat(),
                        format!("group {:?}: invalid label name: {name}", group.name),
                    );
                }
            }
            let rules = group
                .rules
                .into_iter()
                .enumerate()
                .filter_map(|(r, rule)| self.rule(&group.name, [g, r], rule))
                .collect();
            groups.push(RuleGroup {
                name: group.name,
                interval: group.interval,
                query_offset: group.query_offset,
                limit: group.limit,
                labels: group.labels.0,
                rules,
            });
        }
        groups
    }

    /// Checks one rule; `Some` when it is complete enough to build, which a rule with a bad
    /// label name still is (the caller fails the file on any problem).
    fn rule(&mut self, group: &str, [g, r]: [usize; 2], raw: RawRule) -> Option<Rule> {
        let raw = raw.resolve();
        let record = raw.record.filter(|name| !name.is_empty());
        let alert = raw.alert.filter(|name| !name.is_empty());
        let context = match alert.as_ref().or(record.as_ref()) {
            Some(name) => format!("group {group:?}, rule {}, {name:?}", r + 1),
            None => format!("group {group:?}, rule {}", r + 1),
        };
        let at_rule = [
            Step::Key("groups"),
            Step::Index(g),
            Step::Key("rules"),
            Step::Index(r),
        ];
        let at = |tail: &[Step<'static>]| [&at_rule[..], tail].concat();

        match (&record, &alert) {
            (Some(_), Some(_)) => self.report(
                &at(&[Step::Key("record")]),
                format!("{context}: only one of 'record' and 'alert' must be set"),
            ),
            (None, None) => self.report(
                &at_rule,
                format!("{context}: one of 'record' or 'alert' must be set"),
            ),
            _ => {}
        }

        let expr = raw.expr.unwrap_or_default();
        let query = if expr.is_empty() {
            self.report(
                &at(&[Step::Key("expr")]),
                format!("{context}: field 'expr' must be set in rule"),
            );
            None
        } else {
            let parsed = match self.language {
                QueryLanguage::PromQl => {
                    promql_parser::parser::parse(&expr).map(RuleQuery::PromQl)
                }
                QueryLanguage::LogQl => match logql::parse(&expr) {
                    Ok(logql::Expr::Metric(metric)) => Ok(RuleQuery::LogQl(Arc::new(metric))),
                    Ok(logql::Expr::Log(_)) => Err(
                        "a LogQL rule needs a metric query such as count_over_time(...), not a log query"
                            .to_owned(),
                    ),
                    Err(error) => Err(error.to_string()),
                },
            };
            match parsed {
                Ok(query) => Some(query),
                Err(message) => {
                    self.report(
                        &at(&[Step::Key("expr")]),
                        format!("{context}: could not parse expression: {message}"),
                    );
                    None
                }
            }
        };

        let for_duration = raw.for_duration.unwrap_or_default();
        let keep_firing_for = raw.keep_firing_for.unwrap_or_default();
        let labels = raw.labels.unwrap_or_default().0;
        let annotations = raw.annotations.unwrap_or_default().0;

        if let Some(record) = &record {
            if !annotations.is_empty() {
                self.report(
                    &at(&[Step::KeyItself("annotations")]),
                    format!("{context}: invalid field 'annotations' in recording rule"),
                );
            }
            if !for_duration.is_zero() {
                self.report(
                    &at(&[Step::KeyItself("for")]),
                    format!("{context}: invalid field 'for' in recording rule"),
                );
            }
            if !keep_firing_for.is_zero() {
                self.report(
                    &at(&[Step::KeyItself("keep_firing_for")]),
                    format!("{context}: invalid field 'keep_firing_for' in recording rule"),
                );
            }
            if record.contains(['{', '}']) {
                self.report(
                    &at(&[Step::Key("record")]),
                    format!(
                        "{context}: braces present in the recording rule name; \
                         should it be in expr?: {record}"
                    ),
                );
            } else if !self.names.is_valid_metric_name(record) {
                self.report(
                    &at(&[Step::Key("record")]),
                    format!("{context}: invalid recording rule name: {record}"),
                );
            }
        }

        for name in labels.keys() {
            if !self.names.is_valid_label_name(name) || name == "__name__" {
                self.report(
                    &[&at_rule[..], &[Step::Key("labels"), Step::KeyItself(name)]].concat(),
                    format!("{context}: invalid label name: {name}"),
                );
            }
        }
        for name in annotations.keys() {
            if !self.names.is_valid_label_name(name) {
                self.report(
                    &[
                        &at_rule[..],
                        &[Step::Key("annotations"), Step::KeyItself(name)],
                    ]
                    .concat(),
                    format!("{context}: invalid annotation name: {name}"),
                );
            }
        }

        let query = query?;
        match (record, alert) {
            (Some(record), None) => Some(Rule::Recording(RecordingRule {
                record,
                expr,
                query,
                labels,
            })),
            (None, Some(alert)) => Some(Rule::Alerting(AlertingRule {
                alert,
                expr,
                query,
                for_duration,
                keep_firing_for,
                labels,
                annotations,
            })),
            _ => None,
        }
    }

    /// Records a problem at the node `steps` leads to below the `groups` list's parent.
    fn report(&mut self, steps: &[Step<'_>], message: String) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.omitted += 1;
            return;
        }
        let full: Vec<Step<'_>> = self.base.iter().chain(steps).copied().collect();
        let location = Location {
            file: self.path.to_owned(),
            line_column: locate(self.text, &full),
        };
        self.problems.push(Problem { location, message });
    }

    fn finish(mut self) -> Result<(), RuleFileError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        // Stable: problems at one node keep the order they were found in.
        self.problems
            .sort_by_key(|problem| problem.location.line_column);
        Err(RuleFileError::Invalid {
            problems: self.problems,
            omitted: self.omitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile, RuleFileError> {
        RuleFile::parse(Path::new("r.yml"), text, NameValidation::Utf8)
    }

    fn error_of(text: &str, names: NameValidation) -> String {
        match RuleFile::parse(Path::new("r.yml"), text, names) {
            Ok(file) => panic!("expected an error, got {file:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn utf8_error(text: &str) -> String {
        error_of(text, NameValidation::Utf8)
    }

    #[test]
    fn valid_file_keeps_every_field() {
        let file = parse(
            "groups:
  - name: g
    interval: 30s
    query_offset: 1m
    limit: 10
    labels: {team: infra}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {source: rule}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 10m
        labels: {severity: page}
        annotations: {summary: '{{ $labels.instance }} is down'}
",
        )
        .unwrap();
        assert_eq!(file.rule_count(), 2);
        let group = &file.groups[0];
        assert_eq!(group.interval, Some(Duration::from_secs(30)));
        assert_eq!(group.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(group.limit, 10);
        assert_eq!(group.labels["team"], "infra");
        let Rule::Recording(record) = &group.rules[0] else {
            panic!("expected a recording rule")
        };
        assert_eq!(record.record, "job:up:sum");
        assert_eq!(record.labels["source"], "rule");
        let Rule::Alerting(alert) = &group.rules[1] else {
            panic!("expected an alerting rule")
        };
        assert_eq!(alert.alert, "Down");
        assert_eq!(alert.expr, "up == 0");
        assert_eq!(alert.for_duration, Duration::from_secs(300));
        assert_eq!(alert.keep_firing_for, Duration::from_secs(600));
        assert_eq!(
            alert.annotations["summary"],
            "{{ $labels.instance }} is down"
        );
        assert_eq!(group.rules[1].name(), "Down");
        assert!(matches!(
            group.rules[1].query(),
            RuleQuery::PromQl(Expr::Binary(_))
        ));
    }

    #[test]
    fn numeric_expr_is_a_query() {
        let file = parse("groups:\n- name: g\n  rules:\n  - record: one\n    expr: 1\n").unwrap();
        assert_eq!(file.groups[0].rules[0].expr(), "1");
        assert!(matches!(
            file.groups[0].rules[0].query(),
            RuleQuery::PromQl(Expr::NumberLiteral(_))
        ));
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert_eq!(parse("").unwrap().groups.len(), 0);
        assert_eq!(parse("groups: []\n").unwrap().groups.len(), 0);
    }

    #[test]
    fn unknown_key_is_a_schema_error() {
        let message = utf8_error(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotation: {}\n",
        );
        assert!(
            message.starts_with("r.yml:6:5: groups[0].rules[0]: unknown field `annotation`"),
            "{message}"
        );
    }

    #[test]
    fn empty_group_name() {
        let message = utf8_error("groups:\n- name: ''\n");
        assert_eq!(
            message,
            "r.yml:2:3: groups[0]: group name must not be empty"
        );
    }

    #[test]
    fn wrong_shape_names_the_schema_type() {
        let message = utf8_error("- a\n");
        assert_eq!(
            message,
            "r.yml:1:1: invalid type: sequence, expected a rule file (a mapping with `groups`)"
        );
        let message =
            utf8_error("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5\n");
        assert!(
            message.starts_with("r.yml:6:10: groups[0].rules[0].for: "),
            "{message}"
        );
    }

    #[test]
    fn missing_group_name() {
        let message = utf8_error("groups:\n- rules: []\n");
        assert!(
            message.starts_with("r.yml:2:3: groups[0]: missing field `name`"),
            "{message}"
        );
    }

    #[test]
    fn repeated_group_name_points_at_the_second_group() {
        let message = utf8_error("groups:\n- name: a\n- name: b\n- name: a\n");
        assert_eq!(
            message,
            "r.yml:4:3: group name \"a\" is repeated in the same file"
        );
    }

    #[test]
    fn record_and_alert_together() {
        let message =
            utf8_error("groups:\n- name: g\n  rules:\n  - record: r\n    alert: A\n    expr: up\n");
        assert_eq!(
            message,
            "r.yml:4:13: group \"g\", rule 1, \"A\": only one of 'record' and 'alert' must be set"
        );
    }

    #[test]
    fn neither_record_nor_alert() {
        let message =
            utf8_error("groups:\n- name: g\n  rules:\n  - expr: up\n    labels: {a: b}\n");
        assert_eq!(
            message,
            "r.yml:4:5: group \"g\", rule 1: one of 'record' or 'alert' must be set"
        );
        // An empty name counts as absent.
        let message = utf8_error("groups:\n- name: g\n  rules:\n  - alert: ''\n    expr: up\n");
        assert_eq!(
            message,
            "r.yml:4:5: group \"g\", rule 1: one of 'record' or 'alert' must be set"
        );
    }

    #[test]
    fn missing_or_empty_expr() {
        let message = utf8_error("groups:\n- name: g\n  rules:\n  - alert: A\n");
        assert_eq!(
            message,
            "r.yml:4:5: group \"g\", rule 1, \"A\": field 'expr' must be set in rule"
        );
        let message = utf8_error("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: ''\n");
        assert_eq!(
            message,
            "r.yml:5:11: group \"g\", rule 1, \"A\": field 'expr' must be set in rule"
        );
    }

    #[test]
    fn bad_expr_points_at_the_expression() {
        let message = utf8_error("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n");
        assert!(
            message.starts_with(
                "r.yml:5:11: group \"g\", rule 1, \"A\": could not parse expression: "
            ),
            "{message}"
        );
    }

    #[test]
    fn recording_rule_fields_that_belong_to_alerts() {
        let message = utf8_error(
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n    keep_firing_for: 2m\n    annotations: {a: b}\n",
        );
        assert_eq!(
            message,
            "r.yml:6:5: group \"g\", rule 1, \"r\": invalid field 'for' in recording rule\n\
             r.yml:7:5: group \"g\", rule 1, \"r\": invalid field 'keep_firing_for' in recording rule\n\
             r.yml:8:5: group \"g\", rule 1, \"r\": invalid field 'annotations' in recording rule"
        );
        // Zero durations are allowed, as upstream.
        parse("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 0s\n").unwrap();
    }

    #[test]
    fn recording_rule_names() {
        let braces = "groups:\n- name: g\n  rules:\n  - record: up{job=\"a\"}\n    expr: up\n";
        let expected = "r.yml:4:13: group \"g\", rule 1, \"up{job=\\\"a\\\"}\": braces present in the \
                        recording rule name; should it be in expr?: up{job=\"a\"}";
        assert_eq!(utf8_error(braces), expected);
        assert_eq!(error_of(braces, NameValidation::Legacy), expected);

        let dashed = "groups:\n- name: g\n  rules:\n  - record: a-b\n    expr: up\n";
        parse(dashed).unwrap();
        assert_eq!(
            error_of(dashed, NameValidation::Legacy),
            "r.yml:4:13: group \"g\", rule 1, \"a-b\": invalid recording rule name: a-b"
        );
    }

    #[test]
    fn label_names() {
        let reserved = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      ok: x\n      __name__: y\n";
        assert_eq!(
            utf8_error(reserved),
            "r.yml:8:7: group \"g\", rule 1, \"A\": invalid label name: __name__"
        );
        let dashed =
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {a-b: x}\n";
        parse(dashed).unwrap();
        assert_eq!(
            error_of(dashed, NameValidation::Legacy),
            "r.yml:6:14: group \"g\", rule 1, \"A\": invalid label name: a-b"
        );
    }

    #[test]
    fn group_label_names() {
        let text = "groups:\n- name: g\n  labels:\n    __name__: x\n";
        assert_eq!(
            utf8_error(text),
            "r.yml:4:5: group \"g\": invalid label name: __name__"
        );
    }

    #[test]
    fn annotation_names() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      a.b: x\n";
        parse(text).unwrap();
        assert_eq!(
            error_of(text, NameValidation::Legacy),
            "r.yml:7:7: group \"g\", rule 1, \"A\": invalid annotation name: a.b"
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n  - record: r\n  - expr: up\n- name: g\n";
        let Err(RuleFileError::Invalid { problems, omitted }) = parse(text) else {
            panic!("expected problems")
        };
        assert_eq!(omitted, 0);
        let positions: Vec<_> = problems.iter().map(|p| p.location.line_column).collect();
        assert_eq!(
            positions,
            [Some((5, 11)), Some((6, 5)), Some((7, 5)), Some((8, 3))]
        );
    }

    #[test]
    fn problems_are_capped() {
        let mut text = String::from("groups:\n- name: g\n  rules:\n");
        for _ in 0..(MAX_PROBLEMS + 5) {
            text.push_str("  - expr: up\n");
        }
        let Err(RuleFileError::Invalid { problems, omitted }) = parse(&text) else {
            panic!("expected problems")
        };
        assert_eq!((problems.len(), omitted), (MAX_PROBLEMS, 5));
    }

    #[test]
    fn repeated_label_key_is_rejected() {
        let message = utf8_error(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      a: x\n      a: y\n",
        );
        assert!(
            message.contains("key \"a\" is repeated in this mapping"),
            "{message}"
        );
    }

    #[test]
    fn merge_keys_in_rules_and_maps() {
        let file = parse(
            "groups:
- name: g
  rules:
  - &base
    alert: A
    expr: up == 0
    for: 5m
    labels: &common {severity: warning, team: infra}
  - <<: *base
    alert: B
  - <<: [*base]
    alert: C
    labels:
      <<: *common
      severity: critical
",
        )
        .unwrap();
        let rules = &file.groups[0].rules;
        let Rule::Alerting(b) = &rules[1] else {
            panic!()
        };
        assert_eq!((b.alert.as_str(), b.expr.as_str()), ("B", "up == 0"));
        assert_eq!(b.for_duration, Duration::from_secs(300));
        assert_eq!(b.labels["severity"], "warning");
        let Rule::Alerting(c) = &rules[2] else {
            panic!()
        };
        assert_eq!(c.labels["severity"], "critical");
        assert_eq!(c.labels["team"], "infra");
    }

    #[test]
    fn prometheus_rule_object() {
        let text = "apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: x
  labels: {role: alert-rules}
spec:
  groups:
  - name: g
    rules:
    - alert: A
      expr: up ==
";
        let message = utf8_error(text);
        assert!(
            message
                .starts_with("r.yml:11:13: group \"g\", rule 1, \"A\": could not parse expression"),
            "{message}"
        );
        let file = parse(&text.replace("up ==", "up == 0")).unwrap();
        assert_eq!(file.rule_count(), 1);

        let wrong_version = text.replace("coreos.com/v1", "coreos.com/v2");
        assert!(
            utf8_error(&wrong_version).starts_with("r.yml:1:13: PrometheusRule apiVersion is"),
            "{}",
            utf8_error(&wrong_version)
        );
        let unknown = text.replace("  groups:", "  grups:");
        assert!(
            utf8_error(&unknown).starts_with("r.yml:7:3: spec: unknown field `grups`"),
            "{}",
            utf8_error(&unknown)
        );
    }

    #[test]
    fn legacy_names() {
        assert!(is_legacy_name("a_b1", false));
        assert!(!is_legacy_name("a:b", false));
        assert!(is_legacy_name("a:b", true));
        assert!(!is_legacy_name("1a", true));
        assert!(!is_legacy_name("", true));
        assert!(!is_legacy_name("é", false));
    }
}
