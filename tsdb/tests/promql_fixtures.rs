//! Runs Prometheus's PromQL test scripts (`../shared/fixtures/promql/testdata/*.test`, the
//! format is summarised in `FORMAT.md` there) against the engine, over an in-memory
//! [`Querier`].
//!
//! Prints "FILE: N passed, M failed, K skipped" per file and a total line, and fails when
//! the number of passing cases drops below [`PASS_FLOOR`], so regressions show while the
//! engine grows. Skipped, each with its reason: cases over native histograms (loaded with
//! `{{…}}`, `load_with_nhcb`, or expected as results), queries the parser cannot parse
//! (experimental syntax) unless a failure is expected, and features the engine answers as
//! unsupported. `expect warn`/`info`/`no_warn`/`no_info` are checked against the query's
//! warning and info annotations (their count is printed). Checked like upstream: every passing instant
//! vector eval is re-run as a range query around its time, and with `@` pinned at several
//! evaluation times (skipped for `ordered` evals and time-dependent functions).
//!
//! `PROMQL_FIXTURES_VERBOSE=1` prints each failure, `PROMQL_FIXTURES_SHOW_SKIPPED=1` also
//! each skipped case.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use promql_parser::parser::Expr;
use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_tsdb::promql::test_series::{Slot, parse_float, parse_labels, parse_values};
use sightline_tsdb::promql::{Engine, EngineOptions, Error, STALE_NAN_BITS, Value};
use support::MemStore;

/// Passing cases the suite must keep (raise it as the engine improves).
const PASS_FLOOR: usize = 1130;

/// Relative to the package root, where cargo runs tests and benches.
const TESTDATA: &str = "../../shared/fixtures/promql/testdata";

/// Parses a Prometheus duration (`1m30s`, `0`, `-5m`) into milliseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = if rest.starts_with("ms") {
            2
        } else {
            1.min(rest.len())
        };
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Some(if neg { -total } else { total })
}

/// Splits `name{labels} values` into the selector and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let mut in_quote = false;
    let mut escaped = false;
    let mut saw_brace = false;
    for (i, c) in line.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '{' => saw_brace = true,
            '}' if saw_brace => return (&line[..=i], line[i + 1..].trim()),
            c if c.is_whitespace() && !saw_brace => return (&line[..i], line[i..].trim()),
            _ => {}
        }
    }
    (line, "")
}

fn float_eq(expected: f64, got: f64) -> bool {
    if expected.is_nan() || got.is_nan() {
        let stale = |v: f64| v.to_bits() == STALE_NAN_BITS;
        return expected.is_nan() && got.is_nan() && stale(expected) == stale(got);
    }
    if expected == got {
        return true;
    }
    if expected == 0.0 || got == 0.0 {
        return (expected - got).abs() < 1e-300;
    }
    (expected - got).abs() / (expected.abs() + got.abs()) < 1e-6
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// `expect warn`/`info`/`no_warn`/`no_info` groups checked in cases that got a result.
    annotations_checked: usize,
}

/// How an `expect warn` / `expect info` line matches an annotation's text.
enum TextMatch {
    /// A bare line: any text.
    Any,
    /// `msg: <text>`: exactly this text.
    Exact(String),
    /// `regex: <re>`: contains a match.
    Regex(regex::Regex),
}

impl TextMatch {
    fn parse(suffix: &str) -> TextMatch {
        if let Some(text) = suffix.strip_prefix("msg:") {
            TextMatch::Exact(text.trim().to_owned())
        } else if let Some(re) = suffix.strip_prefix("regex:") {
            TextMatch::Regex(regex::Regex::new(re.trim()).expect("regex in an expect line"))
        } else {
            TextMatch::Any
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(exact) => text == exact,
            TextMatch::Regex(re) => re.is_match(text),
        }
    }
}

/// One eval's expectations on one kind of annotation (FORMAT.md, `expect <kind>`).
#[derive(Default)]
struct ExpectedAnnotations {
    /// `expect warn` / `expect info` lines.
    lines: Vec<TextMatch>,
    /// `expect no_warn` / `expect no_info`.
    none: bool,
}

impl ExpectedAnnotations {
    fn is_checked(&self) -> bool {
        self.none || !self.lines.is_empty()
    }

    /// Every line matches a returned annotation and every returned one matches a line;
    /// with `none`, nothing came back.
    fn check(&self, got: &[String]) -> Result<(), String> {
        if self.none {
            return match got {
                [] => Ok(()),
                _ => Err(format!("expected none, got {got:?}")),
            };
        }
        if got.is_empty() {
            return Err("expected some, got none".to_owned());
        }
        if let Some(text) = got
            .iter()
            .find(|text| !self.lines.iter().any(|line| line.matches(text)))
        {
            return Err(format!("{text:?} was not expected"));
        }
        if self
            .lines
            .iter()
            .any(|line| !got.iter().any(|text| line.matches(text)))
        {
            return Err(format!("an expected one is missing from {got:?}"));
        }
        Ok(())
    }
}

struct Case<'a> {
    line: usize,
    header: &'a str,
    body: Vec<&'a str>,
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Metric names whose selectors touch native-histogram data in the current store.
fn touches_histograms(expr: &Expr, names: &HashSet<String>) -> bool {
    if names.is_empty() {
        return false;
    }
    let sel = |vs: &promql_parser::parser::VectorSelector| match &vs.name {
        Some(n) => names.contains(n),
        None => {
            let by_name: Vec<_> = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name == METRIC_NAME)
                .collect();
            by_name.is_empty() || names.iter().any(|n| by_name.iter().all(|m| m.is_match(n)))
        }
    };
    match expr {
        Expr::VectorSelector(vs) => sel(vs),
        Expr::MatrixSelector(ms) => sel(&ms.vs),
        Expr::Aggregate(a) => {
            touches_histograms(&a.expr, names)
                || a.param
                    .as_ref()
                    .is_some_and(|p| touches_histograms(p, names))
        }
        Expr::Unary(u) => touches_histograms(&u.expr, names),
        Expr::Binary(b) => touches_histograms(&b.lhs, names) || touches_histograms(&b.rhs, names),
        Expr::Paren(p) => touches_histograms(&p.expr, names),
        Expr::Subquery(s) => touches_histograms(&s.expr, names),
        Expr::Call(c) => c.args.args.iter().any(|a| touches_histograms(a, names)),
        _ => false,
    }
}

struct Runner {
    store: MemStore,
    histogram_names: HashSet<String>,
    engine: Engine,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            store: MemStore::default(),
            histogram_names: HashSet::new(),
            engine: Engine::new(EngineOptions {
                max_samples: 10_000,
                ..EngineOptions::default()
            }),
        }
    }

    fn load(&mut self, header: &str, body: &[&str]) -> Result<(), String> {
        let mut words = header.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let step = words
            .next()
            .and_then(parse_duration)
            .ok_or_else(|| format!("bad load header {header}"))?;
        let nhcb = kind == "load_with_nhcb";
        for line in body {
            let (selector, values) = split_series(line);
            if selector.contains("@st") || values.starts_with("@st") {
                return Err("start timestamps are not modelled".to_owned());
            }
            let labels = parse_labels(selector)?;
            if nhcb && let Some(name) = labels.metric_name() {
                for suffix in ["_bucket", "_count", "_sum"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        self.histogram_names.insert(base.to_owned());
                    }
                }
            }
            match parse_values(values) {
                Ok(slots) => {
                    let series = self.store.series.entry(labels).or_default();
                    for (k, slot) in slots.into_iter().enumerate() {
                        if let Slot::Value(v) = slot {
                            series.insert(k as i64 * step, v);
                        }
                    }
                }
                Err(e) if e == "native histogram" => {
                    if let Some(name) = labels.metric_name() {
                        self.histogram_names.insert(name.to_owned());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn eval(&mut self, case: &Case<'_>, counts: &mut Counts) -> Outcome {
        let header = case.header;
        let mut words = header.split_whitespace();
        let first = words.next().unwrap_or_default().to_ascii_lowercase();
        let mut expect_fail = first == "eval_fail";
        let mut ordered = first == "eval_ordered";
        let mut fail_msg: Option<String> = None;
        let mut fail_regex: Option<String> = None;
        let mode = words.next().unwrap_or_default();
        // The rest after the time spec.
        let (range, query) = match mode {
            "instant" => {
                let rest = header.splitn(4, char::is_whitespace).collect::<Vec<_>>();
                if rest.len() < 4 || rest[2] != "at" {
                    return Outcome::Fail(format!("bad eval header {header}"));
                }
                let parts: Vec<&str> = rest[3].trim().splitn(2, char::is_whitespace).collect();
                let Some(t) = parse_duration(parts[0]) else {
                    return Outcome::Fail(format!("bad time in {header}"));
                };
                ((t, t, 0, false), parts.get(1).copied().unwrap_or("").trim())
            }
            "range" => {
                // eval range from <s> to <e> step <st> <query>
                let text: Vec<&str> = header.split_whitespace().collect();
                if text.len() < 9 || text[2] != "from" || text[4] != "to" || text[6] != "step" {
                    return Outcome::Fail(format!("bad eval header {header}"));
                }
                let (Some(s), Some(e), Some(st)) = (
                    parse_duration(text[3]),
                    parse_duration(text[5]),
                    parse_duration(text[7]),
                ) else {
                    return Outcome::Fail(format!("bad times in {header}"));
                };
                let idx = nth_word_end(header, 8);
                ((s, e, st, true), header[idx..].trim())
            }
            _ => return Outcome::Fail(format!("bad eval header {header}")),
        };

        let mut expected_scalar: Option<f64> = None;
        let mut expected_string: Option<String> = None;
        let mut range_vector: Option<(i64, i64, i64)> = None;
        let mut expected_series: Vec<(Labels, Vec<Slot>)> = Vec::new();
        let mut warn = ExpectedAnnotations::default();
        let mut info = ExpectedAnnotations::default();
        for line in &case.body {
            if let Some(rest) = line.strip_prefix("expect ") {
                let rest = rest.trim();
                if let Some(r) = rest.strip_prefix("range vector ") {
                    let w: Vec<&str> = r.split_whitespace().collect();
                    if w.len() != 6 {
                        return Outcome::Fail(format!("bad line {line}"));
                    }
                    match (
                        parse_duration(w[1]),
                        parse_duration(w[3]),
                        parse_duration(w[5]),
                    ) {
                        (Some(a), Some(b), Some(c)) => range_vector = Some((a, b, c)),
                        _ => return Outcome::Fail(format!("bad line {line}")),
                    }
                    continue;
                }
                if let Some(s) = rest.strip_prefix("string ") {
                    let s = s.trim();
                    let unq = if s.starts_with('`') {
                        s.trim_matches('`').to_owned()
                    } else {
                        match serde_json::from_str::<String>(s) {
                            Ok(v) => v,
                            Err(_) => return Outcome::Fail(format!("bad string {s}")),
                        }
                    };
                    expected_string = Some(unq);
                    continue;
                }
                let (kind, suffix) = match rest.split_once(char::is_whitespace) {
                    Some((k, s)) => (k, s.trim()),
                    None => (rest, ""),
                };
                match kind {
                    "fail" => {
                        expect_fail = true;
                        if let Some(m) = suffix.strip_prefix("msg:") {
                            fail_msg = Some(m.trim().to_owned());
                        } else if let Some(r) = suffix.strip_prefix("regex:") {
                            fail_regex = Some(r.trim().to_owned());
                        }
                    }
                    "ordered" => ordered = true,
                    "warn" => warn.lines.push(TextMatch::parse(suffix)),
                    "info" => info.lines.push(TextMatch::parse(suffix)),
                    "no_warn" => warn.none = true,
                    "no_info" => info.none = true,
                    _ => return Outcome::Fail(format!("bad expect line {line}")),
                }
                continue;
            }
            if let Some(v) = parse_float(line.trim()) {
                expected_scalar = Some(v);
                continue;
            }
            let (sel, values) = split_series(line);
            if values.contains("{{") {
                return Outcome::Skip("native histogram in the expected result".to_owned());
            }
            let labels = match parse_labels(sel) {
                Ok(l) => l,
                Err(e) => return Outcome::Fail(e),
            };
            match parse_values(values) {
                Ok(v) => expected_series.push((labels, v)),
                Err(e) => return Outcome::Fail(e),
            }
        }

        let expr = match promql_parser::parser::parse(query) {
            Ok(e) => e,
            Err(e) => {
                if expect_fail {
                    return Outcome::Pass;
                }
                return Outcome::Skip(format!("parser cannot parse: {}", short(&e)));
            }
        };
        if touches_histograms(&expr, &self.histogram_names) {
            return Outcome::Skip("selects native-histogram series".to_owned());
        }
        let (start, end, step, is_range) = range;
        // The query text, not the parsed expression: annotation positions refer to it.
        let result = if is_range {
            self.engine
                .range_query(&self.store, query, start, end, step)
        } else {
            self.engine.instant_query(&self.store, query, start)
        };
        let result = match result {
            Err(Error::Unsupported { feature }) => {
                return Outcome::Skip(format!("unsupported: {feature}"));
            }
            Err(e) => {
                if !expect_fail {
                    return Outcome::Fail(format!("unexpected error: {e}"));
                }
                let text = e.to_string();
                if let Some(m) = fail_msg
                    && text != m
                {
                    return Outcome::Fail(format!("error {text:?} is not {m:?}"));
                }
                if let Some(r) = fail_regex
                    && !regex::Regex::new(&r).is_ok_and(|re| re.is_match(&text))
                {
                    return Outcome::Fail(format!("error {text:?} does not match /{r}/"));
                }
                return Outcome::Pass;
            }
            Ok(r) => r,
        };
        if expect_fail {
            return Outcome::Fail("expected an error, got a result".to_owned());
        }
        for (kind, expected, got) in [
            ("warning", &warn, &result.warnings),
            ("info", &info, &result.infos),
        ] {
            if expected.is_checked() {
                counts.annotations_checked += 1;
                if let Err(e) = expected.check(got) {
                    return Outcome::Fail(format!("{kind} annotations: {e}"));
                }
            }
        }
        let value = result.value;
        if let Some(s) = expected_string {
            return match value {
                Value::String { v, .. } if v == s => Outcome::Pass,
                other => Outcome::Fail(format!("expected string {s:?}, got {other:?}")),
            };
        }
        if let Some(x) = expected_scalar {
            return match value {
                Value::Scalar { v, .. } if float_eq(x, v) => Outcome::Pass,
                other => Outcome::Fail(format!("expected scalar {x}, got {}", brief(&other))),
            };
        }
        if let Some((s, e, st)) = range_vector {
            let Value::Matrix(series) = value else {
                return Outcome::Fail(format!("expected a range vector, got {}", brief(&value)));
            };
            return compare_matrix(&expected_series, &series, s, e, st);
        }
        if is_range {
            let Value::Matrix(series) = value else {
                return Outcome::Fail(format!("expected a matrix, got {}", brief(&value)));
            };
            return compare_matrix(&expected_series, &series, start, end, step);
        }
        let Value::Vector(samples) = value else {
            return Outcome::Fail(format!("expected a vector, got {}", brief(&value)));
        };
        let mut expected = Vec::new();
        for (labels, slots) in &expected_series {
            match slots.iter().find_map(|s| match s {
                Slot::Value(v) => Some(*v),
                Slot::Empty => None,
            }) {
                Some(v) => expected.push((labels, v)),
                None => return Outcome::Fail("expected series without a value".to_owned()),
            }
        }
        if expected.len() != samples.len() {
            return Outcome::Fail(format!(
                "expected {} samples, got {}: {}",
                expected.len(),
                samples.len(),
                brief(&Value::Vector(samples.clone()))
            ));
        }
        for (i, (labels, v)) in expected.iter().enumerate() {
            let found = if ordered {
                Some(&samples[i]).filter(|s| &&s.metric == labels)
            } else {
                samples.iter().find(|s| &&s.metric == labels)
            };
            match found {
                Some(s) if float_eq(*v, s.v) => {}
                Some(s) => {
                    return Outcome::Fail(format!("{labels}: expected {v}, got {}", s.v));
                }
                None => {
                    return Outcome::Fail(format!(
                        "{labels} {v} missing{}; got {}",
                        if ordered { " (ordered)" } else { "" },
                        brief(&Value::Vector(samples.clone()))
                    ));
                }
            }
        }
        // The upstream harness's range-mode re-check: the middle step of a range query
        // from t-1m to t+1m must equal the instant result.
        let time_functions = ["start()", "end()", "range()", "step()"];
        if !ordered && !time_functions.iter().any(|f| query.contains(f)) {
            let got: Vec<(Labels, f64)> = samples.iter().map(|s| (s.metric.clone(), s.v)).collect();
            if let Some(why) = self.range_mode_check(&expr, start, &got) {
                return Outcome::Fail(format!("range-mode re-check: {why}"));
            }
        }
        // The upstream harness's @ re-check: with every selector and subquery pinned to the
        // evaluation time, the result must not depend on when the query runs.
        if !ordered && !uses_time_dependent_function(&expr) {
            let mut pinned = expr.clone();
            pin_at(&mut pinned, start);
            let times: Vec<i64> = if start == 0 {
                vec![-1000, 1000]
            } else {
                vec![-10 * start, 0, start / 5, start, 10 * start]
            };
            for at in times {
                let value = match self.engine.instant_expr(&self.store, &pinned, at) {
                    Ok(r) => r.value,
                    Err(e) => return Outcome::Fail(format!("@ re-check at {at} ms failed: {e}")),
                };
                let Value::Vector(again) = value else {
                    return Outcome::Fail(format!("@ re-check at {at} ms: {}", brief(&value)));
                };
                let same = again.len() == samples.len()
                    && samples.iter().all(|s| {
                        again
                            .iter()
                            .any(|a| a.metric == s.metric && float_eq(s.v, a.v))
                    });
                if !same {
                    return Outcome::Fail(format!(
                        "@ re-check at {at} ms: {}",
                        brief(&Value::Vector(again))
                    ));
                }
            }
        }
        Outcome::Pass
    }

    fn range_mode_check(&self, expr: &Expr, t: i64, instant: &[(Labels, f64)]) -> Option<String> {
        let result = self
            .engine
            .range_expr(&self.store, expr, t - 60_000, t + 60_000, 60_000);
        let series = match result {
            Ok(r) => match r.value {
                Value::Matrix(m) => m,
                other => return Some(format!("range query returned {}", brief(&other))),
            },
            Err(e) => return Some(format!("range query failed: {e}")),
        };
        let middle: Vec<(&Labels, f64)> = series
            .iter()
            .filter_map(|s| s.points.iter().find(|p| p.0 == t).map(|p| (&s.metric, p.1)))
            .collect();
        if middle.len() != instant.len() {
            return Some(format!(
                "{} series at the middle step, {} in the instant result",
                middle.len(),
                instant.len()
            ));
        }
        for (labels, v) in instant {
            match middle.iter().find(|(l, _)| *l == labels) {
                Some((_, got)) if float_eq(*v, *got) => {}
                other => return Some(format!("{labels}: instant {v}, range {other:?}")),
            }
        }
        None
    }
}

/// Functions whose result depends on the evaluation time even with `@` (upstream's
/// `AtModifierUnsafeFunctions`).
fn uses_time_dependent_function(expr: &Expr) -> bool {
    const UNSAFE: &[&str] = &[
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "hour",
        "minute",
        "month",
        "year",
        "predict_linear",
        "time",
        "timestamp",
    ];
    match expr {
        Expr::Call(c) => {
            UNSAFE.contains(&c.func.name)
                || c.args.args.iter().any(|a| uses_time_dependent_function(a))
        }
        Expr::Aggregate(a) => {
            uses_time_dependent_function(&a.expr)
                || a.param
                    .as_ref()
                    .is_some_and(|p| uses_time_dependent_function(p))
        }
        Expr::Unary(u) => uses_time_dependent_function(&u.expr),
        Expr::Binary(b) => {
            uses_time_dependent_function(&b.lhs) || uses_time_dependent_function(&b.rhs)
        }
        Expr::Paren(p) => uses_time_dependent_function(&p.expr),
        Expr::Subquery(s) => uses_time_dependent_function(&s.expr),
        _ => false,
    }
}

/// Adds `@ t` to every selector and outermost subquery that has no `@`.
fn pin_at(expr: &mut Expr, t: i64) {
    use promql_parser::parser::AtModifier;
    use std::time::{Duration, UNIX_EPOCH};
    let at = || {
        let time = if t >= 0 {
            UNIX_EPOCH + Duration::from_millis(t.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(t.unsigned_abs())
        };
        Some(AtModifier::At(time))
    };
    match expr {
        Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = at(),
        Expr::MatrixSelector(ms) if ms.vs.at.is_none() => ms.vs.at = at(),
        Expr::Subquery(sq) if sq.at.is_none() => sq.at = at(),
        Expr::Aggregate(a) => {
            pin_at(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                pin_at(p, t);
            }
        }
        Expr::Unary(u) => pin_at(&mut u.expr, t),
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t);
            pin_at(&mut b.rhs, t);
        }
        Expr::Paren(p) => pin_at(&mut p.expr, t),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                pin_at(a, t);
            }
        }
        _ => {}
    }
}

fn nth_word_end(s: &str, n: usize) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if in_word {
                count += 1;
                in_word = false;
                if count == n {
                    return i;
                }
            }
        } else {
            in_word = true;
        }
    }
    s.len()
}

fn short(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect()
}

fn brief(v: &Value) -> String {
    let text = format!("{v:?}");
    text.chars().take(300).collect()
}

fn compare_matrix(
    expected: &[(Labels, Vec<Slot>)],
    got: &[sightline_tsdb::promql::Series],
    start: i64,
    end: i64,
    step: i64,
) -> Outcome {
    let mut want = Vec::new();
    for (labels, slots) in expected {
        let mut points = Vec::new();
        for (k, slot) in slots.iter().enumerate() {
            let t = start + k as i64 * step;
            if t > end {
                return Outcome::Fail(format!("{labels}: more values than steps"));
            }
            if let Slot::Value(v) = slot {
                points.push((t, *v));
            }
        }
        if !points.is_empty() {
            want.push((labels, points));
        }
    }
    if want.len() != got.len() {
        return Outcome::Fail(format!(
            "expected {} series, got {}: {}",
            want.len(),
            got.len(),
            brief(&Value::Matrix(got.to_vec()))
        ));
    }
    for (labels, points) in want {
        let Some(s) = got.iter().find(|s| &s.metric == labels) else {
            return Outcome::Fail(format!(
                "series {labels} missing; got {}",
                brief(&Value::Matrix(got.to_vec()))
            ));
        };
        let same = s.points.len() == points.len()
            && s.points
                .iter()
                .zip(&points)
                .all(|(a, b)| a.0 == b.0 && float_eq(b.1, a.1));
        if !same {
            return Outcome::Fail(format!("{labels}: expected {points:?}, got {:?}", s.points));
        }
    }
    Outcome::Pass
}

/// Runs one script; returns its counts and printable failure details.
fn run_file(path: &Path, skip_reasons: &mut BTreeMap<String, usize>) -> (Counts, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("read test file");
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut runner = Runner::new();
    // Split into commands: header + body lines up to a blank or comment line.
    let mut commands: Vec<Case<'_>> = Vec::new();
    let mut current: Option<Case<'_>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            if let Some(c) = current.take() {
                commands.push(c);
            }
            continue;
        }
        match &mut current {
            Some(c) => c.body.push(line),
            None => {
                let case = Case {
                    line: i + 1,
                    header: line,
                    body: Vec::new(),
                };
                // `clear` takes no body: the next line starts a new command.
                if line.eq_ignore_ascii_case("clear") {
                    commands.push(case);
                } else {
                    current = Some(case);
                }
            }
        }
    }
    if let Some(c) = current.take() {
        commands.push(c);
    }
    let mut load_broken: Option<String> = None;
    let mut skipped_cases = Vec::new();
    for case in &commands {
        let word = case
            .header
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if word == "clear" {
            runner.store = MemStore::default();
            runner.histogram_names.clear();
            load_broken = None;
        } else if word.starts_with("load") {
            if let Err(e) = runner.load(case.header, &case.body) {
                load_broken = Some(e);
            }
        } else if word.starts_with("eval") {
            let outcome = match &load_broken {
                Some(reason) => Outcome::Skip(format!("data not loadable: {reason}")),
                None => runner.eval(case, &mut counts),
            };
            match outcome {
                Outcome::Pass => counts.passed += 1,
                Outcome::Fail(why) => {
                    counts.failed += 1;
                    failures.push(format!(
                        "  line {}: {}\n    {}",
                        case.line, case.header, why
                    ));
                }
                Outcome::Skip(why) => {
                    counts.skipped += 1;
                    skipped_cases.push(format!(
                        "  line {}: {}\n    skipped: {}",
                        case.line, case.header, why
                    ));
                    *skip_reasons.entry(why).or_default() += 1;
                }
            }
        } else {
            counts.failed += 1;
            failures.push(format!(
                "  line {}: unknown command {}",
                case.line, case.header
            ));
        }
    }
    if std::env::var_os("PROMQL_FIXTURES_SHOW_SKIPPED").is_some() {
        failures.extend(skipped_cases);
    }
    (counts, failures)
}

#[test]
fn promql_fixtures() {
    let dir = Path::new(TESTDATA);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures directory ../shared/fixtures/promql/testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let verbose = std::env::var_os("PROMQL_FIXTURES_VERBOSE").is_some();
    let mut total = Counts::default();
    let mut skip_reasons = BTreeMap::new();
    for file in &files {
        let (counts, failures) = run_file(file, &mut skip_reasons);
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "{name}: {} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.skipped
        );
        if verbose {
            for f in &failures {
                println!("{f}");
            }
        }
        total.passed += counts.passed;
        total.failed += counts.failed;
        total.skipped += counts.skipped;
        total.annotations_checked += counts.annotations_checked;
    }
    println!("skipped, by reason:");
    for (reason, n) in &skip_reasons {
        println!("  {n:5}  {reason}");
    }
    println!(
        "annotation expectations (warn/info/no_warn/no_info) checked in passed and failed \
         cases: {}",
        total.annotations_checked
    );
    println!(
        "promql fixtures: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    assert!(
        total.passed >= PASS_FLOOR,
        "promql fixtures regressed: {} passed, floor is {PASS_FLOOR}",
        total.passed
    );
}
