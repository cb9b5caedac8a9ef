//! `line_format` and `label_format` templates: Go `text/template` through the `gotmpl` crate,
//! with the functions of Loki's template reference that people use
//! (<https://grafana.com/docs/loki/latest/query/template_functions/>).
//!
//! Functions: `__line__`, `__timestamp__`, `ToUpper`, `ToLower`, `upper`, `lower`, `title`,
//! `Replace`, `replace`, `trunc`, `substr`, `default`, `trim`, `TrimSpace`, `TrimPrefix`,
//! `TrimSuffix`, `contains`, `hasPrefix`, `hasSuffix`, `regexReplaceAll`, plus `gotmpl`'s
//! builtins (`printf`, `len`, `index`, `eq`, `if`, …).
//!
//! Edge cases decided here:
//! - A label the line does not have prints as the empty string, as Loki's templates run with
//!   `missingkey=zero` over a `map[string]string`: every `.name` the template refers to is
//!   given an empty value when missing.
//! - `__timestamp__` prints as Go prints a `time.Time` in UTC
//!   (`2024-01-02 03:04:05.5 +0000 UTC`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex};

use gotmpl::{TemplateError, Value, ValueFunc};
use regex::Regex;

/// What the per-line functions read: the line and its timestamp.
#[derive(Debug, Default)]
struct LineContext {
    line: String,
    timestamp_ns: i64,
}

/// A parsed template, ready to run on many lines.
#[derive(Clone)]
pub struct Template {
    text: String,
    compiled: Arc<gotmpl::Template>,
    fields: Arc<BTreeSet<String>>,
    context: Arc<Mutex<LineContext>>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.text).finish()
    }
}

fn string(text: &str) -> Value {
    Value::String(Arc::from(text))
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn arg(name: &str, args: &[Value], index: usize) -> Result<String, TemplateError> {
    args.get(index)
        .map(text_of)
        .ok_or_else(|| TemplateError::Exec(format!("{name}: missing argument {}", index + 1)))
}

fn int_arg(name: &str, args: &[Value], index: usize) -> Result<i64, TemplateError> {
    match args.get(index) {
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Uint(u)) => Ok(i64::try_from(*u).unwrap_or(i64::MAX)),
        Some(Value::Float(f)) => Ok(*f as i64),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| TemplateError::Exec(format!("{name}: {s:?} is not an integer"))),
        _ => Err(TemplateError::Exec(format!(
            "{name}: argument {} must be an integer",
            index + 1
        ))),
    }
}

fn string_fn(f: fn(&str) -> String) -> ValueFunc {
    Arc::new(move |args: &[Value]| Ok(string(&f(&arg("function", args, 0)?))))
}

fn predicate(f: fn(&str, &str) -> bool) -> ValueFunc {
    // sprig order: the needle first, the piped string last.
    Arc::new(move |args: &[Value]| {
        Ok(Value::Bool(f(
            &arg("function", args, 1)?,
            &arg("function", args, 0)?,
        )))
    })
}

fn char_slice(text: &str, start: i64, end: i64) -> String {
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let clamp = |i: i64| i.clamp(0, len) as usize;
    let (start, end) = (clamp(start), clamp(end));
    if start >= end {
        return String::new();
    }
    chars[start..end].iter().collect()
}

fn build_static() -> BTreeMap<String, ValueFunc> {
    let mut map: BTreeMap<String, ValueFunc> = BTreeMap::new();
    for name in ["ToUpper", "upper"] {
        map.insert(name.into(), string_fn(str::to_uppercase));
    }
    for name in ["ToLower", "lower"] {
        map.insert(name.into(), string_fn(str::to_lowercase));
    }
    for name in ["TrimSpace", "trim"] {
        map.insert(name.into(), string_fn(|s| s.trim().to_owned()));
    }
    map.insert(
        "title".into(),
        string_fn(|s| {
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            out
        }),
    );
    map.insert("contains".into(), predicate(|needle, s| s.contains(needle)));
    map.insert(
        "hasPrefix".into(),
        predicate(|needle, s| s.starts_with(needle)),
    );
    map.insert(
        "hasSuffix".into(),
        predicate(|needle, s| s.ends_with(needle)),
    );
    // Go's strings.Replace(s, old, new, n).
    map.insert(
        "Replace".into(),
        Arc::new(|args: &[Value]| {
            let (s, old, new) = (
                arg("Replace", args, 0)?,
                arg("Replace", args, 1)?,
                arg("Replace", args, 2)?,
            );
            let n = int_arg("Replace", args, 3)?;
            Ok(string(&if n < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            }))
        }),
    );
    // sprig's replace old new s.
    map.insert(
        "replace".into(),
        Arc::new(|args: &[Value]| {
            let (old, new, s) = (
                arg("replace", args, 0)?,
                arg("replace", args, 1)?,
                arg("replace", args, 2)?,
            );
            Ok(string(&s.replace(&old, &new)))
        }),
    );
    map.insert(
        "TrimPrefix".into(),
        Arc::new(|args: &[Value]| {
            let (s, prefix) = (arg("TrimPrefix", args, 0)?, arg("TrimPrefix", args, 1)?);
            Ok(string(s.strip_prefix(prefix.as_str()).unwrap_or(&s)))
        }),
    );
    map.insert(
        "TrimSuffix".into(),
        Arc::new(|args: &[Value]| {
            let (s, suffix) = (arg("TrimSuffix", args, 0)?, arg("TrimSuffix", args, 1)?);
            Ok(string(s.strip_suffix(suffix.as_str()).unwrap_or(&s)))
        }),
    );
    // sprig's trunc n s: the first n characters, or the last -n.
    map.insert(
        "trunc".into(),
        Arc::new(|args: &[Value]| {
            let n = int_arg("trunc", args, 0)?;
            let s = arg("trunc", args, 1)?;
            let len = s.chars().count() as i64;
            Ok(string(&if n >= 0 {
                char_slice(&s, 0, n)
            } else {
                char_slice(&s, len + n, len)
            }))
        }),
    );
    // sprig's substr start end s.
    map.insert(
        "substr".into(),
        Arc::new(|args: &[Value]| {
            let (start, end) = (int_arg("substr", args, 0)?, int_arg("substr", args, 1)?);
            let s = arg("substr", args, 2)?;
            let end = if end < 0 {
                s.chars().count() as i64
            } else {
                end
            };
            Ok(string(&char_slice(&s, start, end)))
        }),
    );
    // sprig's default d given: `given` unless it is empty.
    map.insert(
        "default".into(),
        Arc::new(|args: &[Value]| {
            let fallback = args.first().cloned().unwrap_or(Value::Nil);
            Ok(match args.get(1) {
                Some(value) if gotmpl::is_true(value) => value.clone(),
                _ => fallback,
            })
        }),
    );
    map.insert(
        "regexReplaceAll".into(),
        Arc::new(|args: &[Value]| {
            let (pattern, s, replacement) = (
                arg("regexReplaceAll", args, 0)?,
                arg("regexReplaceAll", args, 1)?,
                arg("regexReplaceAll", args, 2)?,
            );
            let regex = Regex::new(&pattern)
                .map_err(|e| TemplateError::Exec(format!("regexReplaceAll: {e}")))?;
            Ok(string(&regex.replace_all(&s, replacement.as_str())))
        }),
    );
    map
}

/// `field` references (`.name`) in a template, so missing labels can print empty.
static FIELD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\.([A-Za-z_][A-Za-z0-9_]*)").ok());

/// Go's `time.Time.String()` of a UTC timestamp.
fn go_time(ns: i64) -> String {
    let seconds = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Some(time) = chrono::DateTime::from_timestamp(seconds, nanos) else {
        return String::new();
    };
    let mut fraction = String::new();
    if nanos > 0 {
        fraction = format!(".{nanos:09}").trim_end_matches('0').to_owned();
    }
    format!("{}{fraction} +0000 UTC", time.format("%Y-%m-%d %H:%M:%S"))
}

impl Template {
    /// Parses `text`; the error is the template parser's message.
    pub fn parse(text: &str) -> Result<Template, String> {
        static FUNCTIONS: LazyLock<BTreeMap<String, ValueFunc>> = LazyLock::new(build_static);
        let context = Arc::new(Mutex::new(LineContext::default()));
        let mut functions = FUNCTIONS.clone();
        let line_context = context.clone();
        functions.insert(
            "__line__".into(),
            Arc::new(move |_: &[Value]| {
                let context = line_context.lock().unwrap_or_else(|e| e.into_inner());
                Ok(string(&context.line))
            }),
        );
        let time_context = context.clone();
        functions.insert(
            "__timestamp__".into(),
            Arc::new(move |_: &[Value]| {
                let context = time_context.lock().unwrap_or_else(|e| e.into_inner());
                Ok(string(&go_time(context.timestamp_ns)))
            }),
        );
        let compiled = gotmpl::Template::new("line")
            .funcs(functions)
            .parse(text)
            .map_err(|e| e.to_string())?;
        let fields = FIELD
            .as_ref()
            .map(|regex| {
                regex
                    .captures_iter(text)
                    .filter_map(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Template {
            text: text.to_owned(),
            compiled: Arc::new(compiled),
            fields: Arc::new(fields),
            context,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs the template over a line's labels.
    pub fn render(
        &self,
        labels: &BTreeMap<String, String>,
        line: &str,
        timestamp_ns: i64,
    ) -> Result<String, String> {
        {
            let mut context = self.context.lock().unwrap_or_else(|e| e.into_inner());
            context.line.clear();
            context.line.push_str(line);
            context.timestamp_ns = timestamp_ns;
        }
        let mut data: BTreeMap<Arc<str>, Value> = labels
            .iter()
            .map(|(k, v)| (Arc::from(k.as_str()), string(v)))
            .collect();
        for field in self.fields.iter() {
            data.entry(Arc::from(field.as_str()))
                .or_insert_with(|| string(""));
        }
        self.compiled
            .execute_to_string(&Value::Map(Arc::new(data)))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn functions_of_loki_templates() {
        let l = labels(&[("app", "api"), ("status", "500")]);
        let render = |text: &str| {
            Template::parse(text)
                .unwrap()
                .render(&l, "the line", 1_500_000_000)
                .unwrap()
        };
        assert_eq!(render("{{.app | ToUpper}} {{.status}}"), "API 500");
        assert_eq!(render("{{ToLower \"ABC\"}}"), "abc");
        assert_eq!(render("{{.missing}}|"), "|");
        assert_eq!(render("{{.missing | default \"none\"}}"), "none");
        assert_eq!(render("{{.app | trunc 2}}"), "ap");
        assert_eq!(render("{{.app | replace \"p\" \"P\"}}"), "aPi");
        assert_eq!(render("{{printf \"%s-%s\" .app .status}}"), "api-500");
        assert_eq!(render("{{__line__}}"), "the line");
        assert_eq!(
            render("{{__timestamp__}}"),
            "1970-01-01 00:00:01.5 +0000 UTC"
        );
        assert!(Template::parse("{{.app").is_err());
    }
}
