//! Running a log pipeline over entries: line filters, parsers, label filters, formatters,
//! following Loki's documented semantics
//! (<https://grafana.com/docs/loki/latest/query/log_queries/>).
//!
//! Edge cases decided here, as the documentation describes them:
//! - A parsed label that already exists as a stream label is stored as `<name>_extracted`.
//! - `json` flattens nested objects with `_` (`{"a":{"b":1}}` → `a_b="1"`), skips arrays, and
//!   replaces characters not allowed in label names with `_`; of keys that come out the same,
//!   the last in the line wins. A line that is not a JSON object
//!   gets `__error__="JSONParserErr"`; `logfmt --strict` errors give `LogfmtParserErr`.
//! - A numeric label filter whose label cannot be read as a number keeps the line and adds
//!   `__error__="LabelFilterErr"`; a missing label does not pass.
//! - `label_format` templates all see the labels as they were before the stage.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use memchr::memmem;
use regex::Regex;
use serde_json::Value as Json;
use sightline_core::matcher::MatchOp;

use super::ast::{
    Extraction, LabelFilter, LabelFormat, LineFilter, LineFilterOp, PatternPart, Stage, Unwrap,
    ValueKind,
};
use super::parser::{PathStep, json_path};
use super::source::LineHints;
use super::units;
use crate::store::{LineParser, Required, starts_json_object};

/// Labels while a pipeline runs: sorted, empty values allowed (as `--keep-empty` needs).
pub type LabelSet = BTreeMap<String, String>;

/// The label holding a stage's error.
pub const ERROR_LABEL: &str = "__error__";
/// The label holding the error's details.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// A compiled pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    stages: Vec<Stage>,
    /// Compiled json extraction paths, per stage index.
    paths: BTreeMap<usize, Vec<(String, Vec<PathStep>)>>,
    changes_labels: bool,
    parsed_value: Option<ParsedValue>,
}

/// A label a `json` or `logfmt` stage extracts and a later filter requires to equal a text:
/// `| json | level="error"`. The parsers copy values out of the line unchanged unless they
/// are escaped, so a line lacking both the text and an escape that could spell it cannot
/// pass, and is dropped before it is parsed — most lines, for the filters people write.
/// This does not hold when the stream or the entry's metadata already has the label (the
/// parsed one is renamed or the metadata one may stand), so those entries are parsed as
/// usual.
///
/// The escapes: logfmt turns `\x` into `x` for any `x`, so any backslash may hide the text.
/// In JSON only `\uXXXX` can stand for a character other than `"`, `\`, `/` and the
/// control characters that have short escapes; for a text without those, a line needs the
/// text or a `\u`. And `json` extracts nothing from a line that is not an object.
#[derive(Debug, Clone)]
struct ParsedValue {
    parser: LineParser,
    label: String,
    value: String,
    finder: memmem::Finder<'static>,
    escape: memmem::Finder<'static>,
}

impl ParsedValue {
    /// The first fitting equality of `stages`: after a `json` or `logfmt` stage without
    /// extractions that only line filters precede, with only filters between them; a value
    /// that is not a number (json prints numbers its own way).
    fn of(stages: &[Stage]) -> Option<ParsedValue> {
        let mut stages = stages.iter();
        let parser = loop {
            match stages.next()? {
                Stage::LineFilter(_) => {}
                Stage::Json(extractions) if extractions.is_empty() => break LineParser::Json,
                Stage::Logfmt { extractions, .. } if extractions.is_empty() => {
                    break LineParser::Logfmt;
                }
                _ => return None,
            }
        };
        fn equality(filter: &LabelFilter) -> Option<(&str, &str)> {
            match filter {
                LabelFilter::Matcher(m)
                    if m.op() == MatchOp::Equal
                        && !m.value().is_empty()
                        && m.value().parse::<f64>().is_err() =>
                {
                    Some((m.name(), m.value()))
                }
                LabelFilter::And(a, b) => equality(a).or_else(|| equality(b)),
                _ => None,
            }
        }
        for stage in stages {
            match stage {
                Stage::LineFilter(_) => {}
                Stage::LabelFilter(filter) => {
                    if let Some((label, value)) = equality(filter) {
                        let short_escapes = value
                            .chars()
                            .any(|c| matches!(c, '"' | '\\' | '/') || c.is_control());
                        let escape = if parser == LineParser::Json && !short_escapes {
                            "\\u"
                        } else {
                            "\\"
                        };
                        return Some(ParsedValue {
                            parser,
                            label: label.to_owned(),
                            value: value.to_owned(),
                            finder: memmem::Finder::new(value.as_bytes()).into_owned(),
                            escape: memmem::Finder::new(escape.as_bytes()).into_owned(),
                        });
                    }
                }
                _ => return None,
            }
        }
        None
    }

    /// Whether the entry cannot pass the filter whatever its parse gives.
    fn rules_out(
        &self,
        stream_labels: &LabelSet,
        metadata: &[(String, String)],
        line: &str,
    ) -> bool {
        let line = line.as_bytes();
        !stream_labels.contains_key(&self.label)
            && !metadata.iter().any(|(name, _)| *name == self.label)
            && ((self.parser == LineParser::Json && !starts_json_object(line))
                || (self.finder.find(line).is_none() && self.escape.find(line).is_none()))
    }
}

/// An entry that passed the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed<'a> {
    /// The line, changed by `line_format`/`decolorize` or not.
    pub line: Cow<'a, str>,
    /// The labels after the pipeline, when a stage may have changed them (`None`: the
    /// stream's labels as they are).
    pub labels: Option<LabelSet>,
}

fn set_error(labels: &mut LabelSet, error: &str, details: String) {
    if !labels.contains_key(ERROR_LABEL) {
        labels.insert(ERROR_LABEL.to_owned(), error.to_owned());
        labels.insert(ERROR_DETAILS_LABEL.to_owned(), details);
    }
}

/// A label name as Loki sanitizes parsed keys: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn sanitize(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

static ANSI: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").ok());

impl Pipeline {
    /// Compiles `stages` (already validated by the parser).
    pub fn new(stages: &[Stage]) -> Pipeline {
        let mut paths = BTreeMap::new();
        for (i, stage) in stages.iter().enumerate() {
            if let Stage::Json(extractions) = stage
                && !extractions.is_empty()
            {
                paths.insert(
                    i,
                    extractions
                        .iter()
                        .filter_map(|e| Some((e.label.clone(), json_path(&e.expression).ok()?)))
                        .collect(),
                );
            }
        }
        Pipeline {
            stages: stages.to_vec(),
            paths,
            changes_labels: stages.iter().any(|s| !matches!(s, Stage::LineFilter(_))),
            parsed_value: ParsedValue::of(stages),
        }
    }

    /// Whether any stage may change labels (otherwise the stream's labels are the result's).
    pub fn changes_labels(&self) -> bool {
        self.changes_labels
    }

    /// What every line this pipeline keeps from a stream with `stream_labels` contains, for
    /// a line index to skip chunks: the texts of the line filters before the first stage that
    /// changes the line (one requirement per filter, any of its texts suffices), and the
    /// value a label filter requires of a parsed label (see [`ParsedValue`]).
    pub fn line_hints(&self, stream_labels: &LabelSet) -> LineHints {
        let mut required = Vec::new();
        for stage in &self.stages {
            match stage {
                Stage::LineFilter(LineFilter {
                    op: LineFilterOp::Contains,
                    patterns,
                    ..
                }) if patterns.iter().all(|p| !p.is_empty()) => required.push(Required {
                    texts: patterns.clone(),
                    parsed: None,
                }),
                Stage::LineFormat(_) | Stage::Decolorize => break,
                _ => {}
            }
        }
        if let Some(parsed) = &self.parsed_value
            && !stream_labels.contains_key(&parsed.label)
        {
            required.push(Required {
                texts: vec![parsed.value.clone()],
                parsed: Some(parsed.parser),
            });
        }
        LineHints { required }
    }

    /// Runs the pipeline over one entry of a stream with `stream_labels`; `None` when a stage
    /// filtered it out.
    pub fn process<'a>(
        &self,
        stream_labels: &LabelSet,
        metadata: &[(String, String)],
        timestamp_ns: i64,
        line: &'a str,
    ) -> Option<Processed<'a>> {
        let mut line: Cow<'a, str> = Cow::Borrowed(line);
        if !self.changes_labels {
            for stage in &self.stages {
                if let Stage::LineFilter(filter) = stage
                    && !line_passes(filter, &line)
                {
                    return None;
                }
            }
            return Some(Processed { line, labels: None });
        }
        if self
            .parsed_value
            .as_ref()
            .is_some_and(|value| value.rules_out(stream_labels, metadata, &line))
        {
            return None;
        }
        let mut labels = stream_labels.clone();
        for (name, value) in metadata {
            labels.insert(name.clone(), value.clone());
        }
        for (i, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::LineFilter(filter) => {
                    if !line_passes(filter, &line) {
                        return None;
                    }
                }
                Stage::Json(extractions) => {
                    json_stage(
                        &line,
                        extractions,
                        self.paths.get(&i),
                        stream_labels,
                        &mut labels,
                    );
                }
                Stage::Logfmt {
                    strict,
                    keep_empty,
                    extractions,
                } => logfmt_stage(
                    &line,
                    *strict,
                    *keep_empty,
                    extractions,
                    stream_labels,
                    &mut labels,
                ),
                Stage::Regexp(regex) => {
                    if let Some(captures) = regex.captures(&line) {
                        for name in regex.capture_names().flatten() {
                            if let Some(m) = captures.name(name) {
                                add_parsed(&mut labels, stream_labels, name, m.as_str());
                            }
                        }
                    }
                }
                Stage::Pattern { parts, .. } => {
                    if let Some(captured) = match_pattern(parts, &line) {
                        for (name, value) in captured {
                            add_parsed(&mut labels, stream_labels, name, value);
                        }
                    }
                }
                Stage::Unpack => {
                    if let Some(entry) = unpack_stage(&line, stream_labels, &mut labels) {
                        line = Cow::Owned(entry);
                    }
                }
                Stage::LabelFilter(filter) => {
                    if !label_filter_passes(filter, &mut labels) {
                        return None;
                    }
                }
                Stage::LineFormat(template) => {
                    match template.render(&labels, &line, timestamp_ns) {
                        Ok(rendered) => line = Cow::Owned(rendered),
                        Err(message) => set_error(&mut labels, "TemplateFormatErr", message),
                    }
                }
                Stage::LabelFormat(formats) => {
                    let before = labels.clone();
                    for format in formats {
                        match format {
                            LabelFormat::Rename { dst, src } => {
                                let value = before.get(src).cloned().unwrap_or_default();
                                labels.remove(src);
                                labels.insert(dst.clone(), value);
                            }
                            LabelFormat::Template { dst, template } => {
                                match template.render(&before, &line, timestamp_ns) {
                                    Ok(value) => {
                                        labels.insert(dst.clone(), value);
                                    }
                                    Err(message) => {
                                        set_error(&mut labels, "TemplateFormatErr", message);
                                    }
                                }
                            }
                        }
                    }
                }
                Stage::Drop(selects) => {
                    labels.retain(|name, value| !selects.iter().any(|s| s.selects(name, value)));
                }
                Stage::Keep(selects) => {
                    labels.retain(|name, value| selects.iter().any(|s| s.selects(name, value)));
                }
                Stage::Decolorize => {
                    if let Some(ansi) = ANSI.as_ref()
                        && let Cow::Owned(clean) = ansi.replace_all(&line, "")
                    {
                        line = Cow::Owned(clean);
                    }
                }
            }
        }
        Some(Processed {
            line,
            labels: Some(labels),
        })
    }
}

fn line_passes(filter: &LineFilter, line: &str) -> bool {
    match filter.op {
        LineFilterOp::Contains => filter.patterns.iter().any(|p| line.contains(p.as_str())),
        LineFilterOp::NotContains => !filter.patterns.iter().any(|p| line.contains(p.as_str())),
        LineFilterOp::Match => filter.regexes.iter().any(|r| r.is_match(line)),
        LineFilterOp::NotMatch => !filter.regexes.iter().any(|r| r.is_match(line)),
    }
}

fn add_parsed(labels: &mut LabelSet, stream_labels: &LabelSet, key: &str, value: &str) {
    let mut name = sanitize(key);
    if name.is_empty() {
        return;
    }
    if stream_labels.contains_key(&name) {
        name.push_str("_extracted");
    }
    labels.insert(name, value.to_owned());
}

fn json_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// The labels `json` without parameters takes from an object: nested objects flattened
/// with `_`, arrays and nulls skipped, names sanitized. Read in one pass as the parser meets
/// them, without building the document (most of the stage's time when it was built).
struct FlatLabels<'o> {
    prefix: Option<String>,
    out: &'o mut Vec<(String, String)>,
}

impl<'de> serde::de::Visitor<'de> for FlatLabels<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let name = match &self.prefix {
                None => sanitize(&key),
                Some(prefix) => format!("{prefix}_{}", sanitize(&key)),
            };
            map.next_value_seed(FlatField {
                name,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// One member of an object for [`FlatLabels`]: a scalar becomes a label, an object is
/// flattened under the member's name, anything else is skipped.
struct FlatField<'o> {
    name: String,
    out: &'o mut Vec<(String, String)>,
}

impl<'de> serde::de::DeserializeSeed<'de> for FlatField<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FlatField<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.out.push((self.name, value.to_owned()));
        Ok(())
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.out.push((self.name, value.to_string()));
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.out.push((self.name, value.to_string()));
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.out.push((self.name, value.to_string()));
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        // As the document's number would print.
        if let Some(number) = serde_json::Number::from_f64(value) {
            self.out.push((self.name, number.to_string()));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        FlatLabels {
            prefix: Some(self.name),
            out: self.out,
        }
        .visit_map(map)
    }
}

/// The flattened labels of a JSON object line, or why it is not one.
fn flat_labels(line: &str) -> Result<Vec<(String, String)>, String> {
    if !starts_json_object(line.as_bytes()) {
        return Err("the line is not a JSON object".into());
    }
    let mut pairs = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(line);
    serde::Deserializer::deserialize_map(
        &mut deserializer,
        FlatLabels {
            prefix: None,
            out: &mut pairs,
        },
    )
    .and_then(|()| deserializer.end())
    .map_err(|error| error.to_string())?;
    Ok(pairs)
}

fn json_stage(
    line: &str,
    extractions: &[Extraction],
    paths: Option<&Vec<(String, Vec<PathStep>)>>,
    stream_labels: &LabelSet,
    labels: &mut LabelSet,
) {
    if extractions.is_empty() {
        match flat_labels(line) {
            Ok(pairs) => {
                for (name, value) in pairs {
                    add_parsed(labels, stream_labels, &name, &value);
                }
            }
            Err(error) => set_error(labels, "JSONParserErr", error),
        }
        return;
    }
    let parsed: Json = match serde_json::from_str(line) {
        Ok(Json::Object(object)) => Json::Object(object),
        Ok(_) => {
            set_error(
                labels,
                "JSONParserErr",
                "the line is not a JSON object".into(),
            );
            return;
        }
        Err(error) => {
            set_error(labels, "JSONParserErr", error.to_string());
            return;
        }
    };
    for (label, path) in paths.into_iter().flatten() {
        let mut at = Some(&parsed);
        for step in path {
            at = at.and_then(|value| match step {
                PathStep::Field(name) => value.get(name),
                PathStep::Index(i) => value.get(*i),
            });
        }
        let value = at.and_then(json_text).unwrap_or_default();
        add_parsed(labels, stream_labels, label, &value);
    }
}

/// logfmt pairs of a line, as go-logfmt decodes them; `Err` on malformed input.
fn logfmt_pairs(line: &str) -> (Vec<(String, Option<String>)>, Option<String>) {
    let mut pairs = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut error = None;
    loop {
        while chars.peek().is_some_and(|(_, c)| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c == ' ' || c == '\t' || c == '"' {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let key = &line[start..end];
        if key.is_empty() {
            // A stray `=` or quote: skip to the next space.
            error.get_or_insert_with(|| format!("unexpected character at byte {start}"));
            while chars.peek().is_some_and(|(_, c)| *c != ' ') {
                chars.next();
            }
            continue;
        }
        if chars.peek().is_some_and(|(_, c)| *c == '=') {
            chars.next();
            let mut value = String::new();
            if chars.peek().is_some_and(|(_, c)| *c == '"') {
                chars.next();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, 'r')) => value.push('\r'),
                            Some((_, other)) => value.push(other),
                            None => break,
                        },
                        other => value.push(other),
                    }
                }
                if !closed {
                    error.get_or_insert_with(|| format!("unterminated quoted value of {key}"));
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c == ' ' || c == '\t' {
                        break;
                    }
                    if c == '"' || c == '=' {
                        error.get_or_insert_with(|| format!("unexpected {c:?} in value of {key}"));
                    }
                    value.push(c);
                    chars.next();
                }
            }
            pairs.push((key.to_owned(), Some(value)));
        } else {
            pairs.push((key.to_owned(), None));
        }
    }
    (pairs, error)
}

fn logfmt_stage(
    line: &str,
    strict: bool,
    keep_empty: bool,
    extractions: &[Extraction],
    stream_labels: &LabelSet,
    labels: &mut LabelSet,
) {
    let (pairs, error) = logfmt_pairs(line);
    if strict && let Some(error) = error {
        set_error(labels, "LogfmtParserErr", error);
        return;
    }
    for (key, value) in pairs {
        let value = match value {
            Some(value) if !value.is_empty() => value,
            Some(_) | None if keep_empty => String::new(),
            _ => continue,
        };
        if extractions.is_empty() {
            add_parsed(labels, stream_labels, &key, &value);
        }
        for extraction in extractions.iter().filter(|e| e.expression == key) {
            add_parsed(labels, stream_labels, &extraction.label, &value);
        }
    }
}

fn unpack_stage(line: &str, stream_labels: &LabelSet, labels: &mut LabelSet) -> Option<String> {
    let object = match serde_json::from_str::<Json>(line) {
        Ok(Json::Object(object)) => object,
        _ => {
            set_error(
                labels,
                "JSONParserErr",
                "the line is not a JSON object".into(),
            );
            return None;
        }
    };
    let mut entry = None;
    for (key, value) in object {
        let Json::String(text) = value else {
            continue;
        };
        if key == "_entry" {
            entry = Some(text);
        } else {
            add_parsed(labels, stream_labels, &key, &text);
        }
    }
    entry
}

/// Matches a `pattern` expression against a line: the captures, or `None`.
fn match_pattern<'p, 'l>(
    parts: &'p [PatternPart],
    line: &'l str,
) -> Option<Vec<(&'p str, &'l str)>> {
    let mut captured = Vec::new();
    let mut rest = line;
    let mut pending: Option<&Option<String>> = None;
    for part in parts {
        match part {
            PatternPart::Capture(name) => pending = Some(name),
            PatternPart::Literal(literal) => {
                let at = rest.find(literal.as_str())?;
                if let Some(name) = pending.take() {
                    if let Some(name) = name {
                        captured.push((name.as_str(), &rest[..at]));
                    }
                } else if at != 0 {
                    return None;
                }
                rest = &rest[at + literal.len()..];
            }
        }
    }
    if let Some(Some(name)) = pending {
        captured.push((name.as_str(), rest));
    }
    Some(captured)
}

/// Reads a label value as a number of the given kind.
pub fn read_value(kind: ValueKind, text: &str) -> Option<f64> {
    match kind {
        ValueKind::Number => units::parse_number(text),
        ValueKind::Duration => units::parse_duration_seconds(text.trim()),
        ValueKind::Bytes => units::parse_bytes(text),
    }
}

fn label_filter_passes(filter: &LabelFilter, labels: &mut LabelSet) -> bool {
    match filter {
        LabelFilter::And(a, b) => label_filter_passes(a, labels) && label_filter_passes(b, labels),
        LabelFilter::Or(a, b) => label_filter_passes(a, labels) || label_filter_passes(b, labels),
        LabelFilter::Matcher(m) => m.matches(labels.get(m.name()).map_or("", String::as_str)),
        LabelFilter::Compare {
            name,
            op,
            kind,
            value,
            ..
        } => {
            let Some(text) = labels.get(name) else {
                return false;
            };
            match read_value(*kind, text) {
                Some(actual) => op.holds(actual, *value),
                None => {
                    let details = format!("cannot read {name}={text:?} as a {kind:?}");
                    set_error(labels, "LabelFilterErr", details);
                    true
                }
            }
        }
    }
}

/// Takes the unwrapped value out of `labels` (the label is removed, as the series is about
/// its value, not it), then applies the post-unwrap filters. `None`: filtered out.
pub fn unwrap_value(unwrap: &Unwrap, labels: &mut LabelSet) -> Option<f64> {
    let value = match labels.remove(&unwrap.label) {
        Some(text) => match read_value(unwrap.kind, &text) {
            Some(value) => value,
            None => {
                set_error(
                    labels,
                    "SampleExtractionErr",
                    format!(
                        "cannot read {}={text:?} as a {:?}",
                        unwrap.label, unwrap.kind
                    ),
                );
                0.0
            }
        },
        None => {
            set_error(
                labels,
                "SampleExtractionErr",
                format!("the line has no label {}", unwrap.label),
            );
            0.0
        }
    };
    for filter in &unwrap.post_filters {
        if !label_filter_passes(&filter.0, labels) {
            return None;
        }
    }
    Some(value)
}

/// Labels a set of names keeps when grouping `by` or drops `without`.
pub fn group_labels(labels: &LabelSet, without: bool, names: &BTreeSet<&str>) -> LabelSet {
    labels
        .iter()
        .filter(|(name, _)| names.contains(name.as_str()) != without)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::ast::{Expr, LogExpr};
    use crate::logql::parser::parse;

    fn run(query: &str, line: &str) -> Option<(String, LabelSet)> {
        let Ok(Expr::Log(LogExpr { stages, .. })) = parse(query) else {
            panic!("not a log query: {query}");
        };
        let stream: LabelSet = [("app".to_owned(), "api".to_owned())].into();
        let pipeline = Pipeline::new(&stages);
        pipeline.process(&stream, &[], 0, line).map(|p| {
            (
                p.line.into_owned(),
                p.labels.unwrap_or_else(|| stream.clone()),
            )
        })
    }

    fn label(result: &Option<(String, LabelSet)>, name: &str) -> Option<String> {
        result.as_ref().and_then(|(_, l)| l.get(name).cloned())
    }

    fn pipeline(query: &str) -> Pipeline {
        let Ok(Expr::Log(LogExpr { stages, .. })) = parse(query) else {
            panic!("not a log query: {query}");
        };
        Pipeline::new(&stages)
    }

    #[test]
    fn parsed_value_hints_come_only_from_equalities_right_after_a_parser() {
        let hint = |query: &str| pipeline(query).parsed_value.map(|v| v.label);
        let level = Some("level".to_owned());
        assert_eq!(hint(r#"{a="b"} | json | level="error""#), level);
        assert_eq!(
            hint(r#"{a="b"} |= "x" | logfmt | n > 1 | level="error""#),
            level
        );
        assert_eq!(hint(r#"{a="b"} | logfmt | n > 1 and level="error""#), level);
        // Not a fitting equality, or something between that may change the label.
        assert_eq!(hint(r#"{a="b"} | json | level=~"error""#), None);
        assert_eq!(hint(r#"{a="b"} | json | level="error" or n="1""#), None);
        assert_eq!(hint(r#"{a="b"} | json | level="5""#), None);
        assert_eq!(hint(r#"{a="b"} | json | level="""#), None);
        assert_eq!(hint(r#"{a="b"} | json lvl="level" | lvl="error""#), None);
        assert_eq!(
            hint(r#"{a="b"} | label_format level="x" | json | level="error""#),
            None
        );
        assert_eq!(hint(r#"{a="b"} | json | drop n | level="error""#), None);
        assert_eq!(
            hint(r#"{a="b"} | regexp "(?P<level>\\w+)" | level="error""#),
            None
        );
    }

    #[test]
    fn metadata_of_the_parsed_name_keeps_an_entry_the_line_alone_would_rule_out() {
        let pipeline = pipeline(r#"{app="api"} | json | level="error""#);
        let stream: LabelSet = [("app".to_owned(), "api".to_owned())].into();
        let metadata = [("level".to_owned(), "error".to_owned())];
        assert!(pipeline.process(&stream, &[], 0, r#"{"n":1}"#).is_none());
        let kept = pipeline.process(&stream, &metadata, 0, r#"{"n":1}"#);
        assert_eq!(
            kept.and_then(|p| p.labels)
                .and_then(|l| l.get("level").cloned())
                .as_deref(),
            Some("error")
        );
    }

    #[test]
    fn json_lines_flatten_in_one_pass_as_the_document_would() {
        let line = r#"{"a":1,"b":1.5,"c":true,"d":null,"e":[1,{"x":2}],"f":{"g":{"h":"i"}},"j k":"l\u0021","m":-0.0,"n":1e3}"#;
        let pairs = flat_labels(line).unwrap();
        let expected: Vec<(String, String)> = [
            ("a", "1"),
            ("b", "1.5"),
            ("c", "true"),
            ("f_g_h", "i"),
            ("j_k", "l!"),
            ("m", "-0.0"),
            ("n", "1000.0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(pairs, expected);
        // What the document model printed for the same values.
        let document: Json = serde_json::from_str(line).unwrap();
        assert_eq!(document["n"].to_string(), "1000.0");
        assert_eq!(document["m"].to_string(), "-0.0");
        assert_eq!(
            flat_labels("[1]"),
            Err("the line is not a JSON object".to_owned())
        );
        assert!(flat_labels(r#"{"a":1} x"#).is_err());
        assert!(flat_labels(r#"{"a":"#).is_err());
    }

    #[test]
    fn parsers_extract_labels() {
        let r = run(
            r#"{app="api"} | json"#,
            r#"{"level":"info","req":{"path":"/x"},"app":"a","n":[1]}"#,
        );
        assert_eq!(label(&r, "level").as_deref(), Some("info"));
        assert_eq!(label(&r, "req_path").as_deref(), Some("/x"));
        assert_eq!(label(&r, "app_extracted").as_deref(), Some("a"));
        assert_eq!(label(&r, "n"), None);
        let r = run(
            r#"{app="api"} | json p="req.path""#,
            r#"{"req":{"path":"/x"}}"#,
        );
        assert_eq!(label(&r, "p").as_deref(), Some("/x"));
        let r = run(r#"{app="api"} | json"#, "not json");
        assert_eq!(label(&r, "__error__").as_deref(), Some("JSONParserErr"));
        let r = run(
            r#"{app="api"} | logfmt"#,
            r#"level=warn msg="a b" empty= flag"#,
        );
        assert_eq!(label(&r, "msg").as_deref(), Some("a b"));
        assert_eq!(label(&r, "empty"), None);
        let r = run(
            r#"{app="api"} | logfmt --keep-empty"#,
            r#"level=warn empty= flag"#,
        );
        assert_eq!(label(&r, "flag").as_deref(), Some(""));
        let r = run(r#"{app="api"} | logfmt --strict"#, r#"level=warn a"b=c"#);
        assert_eq!(label(&r, "__error__").as_deref(), Some("LogfmtParserErr"));
        let r = run(
            r#"{app="api"} | pattern "<ip> - <_> <method> <path>""#,
            "1.2.3.4 - x GET /a",
        );
        assert_eq!(label(&r, "method").as_deref(), Some("GET"));
        assert_eq!(label(&r, "path").as_deref(), Some("/a"));
        let r = run(
            r#"{app="api"} | regexp "(?P<code>\\d{3})""#,
            "status 404 here",
        );
        assert_eq!(label(&r, "code").as_deref(), Some("404"));
        let r = run(r#"{app="api"} | unpack"#, r#"{"_entry":"raw","pod":"p1"}"#);
        assert_eq!(r.as_ref().map(|(l, _)| l.as_str()), Some("raw"));
        assert_eq!(label(&r, "pod").as_deref(), Some("p1"));
    }

    #[test]
    fn line_hints_stop_at_the_first_line_change() {
        let pipeline = pipeline(
            r#"{app="api"} |= "a" or "b" != "c" | logfmt |= "d" | line_format "x" |= "e""#,
        );
        let text = |texts: &[&str]| Required {
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            parsed: None,
        };
        assert_eq!(
            pipeline.line_hints(&LabelSet::new()).required,
            vec![text(&["a", "b"]), text(&["d"])]
        );
    }

    #[test]
    fn line_hints_hold_a_parsed_value_unless_the_stream_has_the_label() {
        let pipeline = pipeline(r#"{app="api"} |= "GET" | json | level="error""#);
        let stream: LabelSet = [("app".to_owned(), "api".to_owned())].into();
        let get = Required::text("GET");
        let error = Required {
            texts: vec!["error".to_owned()],
            parsed: Some(LineParser::Json),
        };
        assert_eq!(
            pipeline.line_hints(&stream).required,
            vec![get.clone(), error]
        );
        let mut labelled = stream.clone();
        labelled.insert("level".to_owned(), "error".to_owned());
        assert_eq!(pipeline.line_hints(&labelled).required, vec![get]);
    }

    #[test]
    fn filters_and_formats() {
        assert!(run(r#"{app="api"} |= "a" or "b" != "c""#, "xbx").is_some());
        assert!(run(r#"{app="api"} |= "a" or "b" != "c""#, "abc").is_none());
        assert!(run(r#"{app="api"} |~ "e.r""#, "error").is_some());
        let q = r#"{app="api"} | logfmt | d > 1s and (size >= 1KB or code="500")"#;
        assert!(run(q, "d=2s size=2000").is_some());
        assert!(run(q, "d=2s size=200").is_none());
        assert!(run(q, "d=2s size=200 code=500").is_some());
        assert!(run(q, "d=500ms code=500").is_none());
        let r = run(r#"{app="api"} | logfmt | n > 1"#, "n=abc");
        assert_eq!(label(&r, "__error__").as_deref(), Some("LabelFilterErr"));
        let r = run(
            r#"{app="api"} | logfmt | line_format "{{.level | ToUpper}}: {{__line__}}""#,
            "level=warn",
        );
        assert_eq!(
            r.as_ref().map(|(l, _)| l.as_str()),
            Some("WARN: level=warn")
        );
        let r = run(
            r#"{app="api"} | logfmt | label_format lvl=level, app="{{.app}}-x""#,
            "level=warn",
        );
        assert_eq!(label(&r, "lvl").as_deref(), Some("warn"));
        assert_eq!(label(&r, "level"), None);
        assert_eq!(label(&r, "app").as_deref(), Some("api-x"));
        let r = run(
            r#"{app="api"} | logfmt | drop level, x="2""#,
            "level=warn x=1 y=2",
        );
        assert_eq!(label(&r, "x").as_deref(), Some("1"));
        assert_eq!(label(&r, "level"), None);
        let r = run(r#"{app="api"} | logfmt | keep y"#, "level=warn y=2");
        assert_eq!(r.map(|(_, l)| l.len()), Some(1));
        let r = run(r#"{app="api"} | decolorize"#, "\u{1b}[31mred\u{1b}[0m");
        assert_eq!(r.map(|(l, _)| l), Some("red".to_owned()));
    }
}
