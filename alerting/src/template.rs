//! Alert rule templates: Go `text/template` (through the `gotmpl` crate) with the data and the
//! function map Prometheus gives alert labels and annotations.
//!
//! Follows Prometheus's `template/template.go` and
//! <https://prometheus.io/docs/prometheus/latest/configuration/template_reference/>: the text
//! is prefixed with `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}`
//! `{{$externalURL := .ExternalURL}}{{$value := .Value}}`, and the functions are `query`,
//! `first`, `label`, `value`, `strvalue`, `sortByLabel`, `args`, `reReplaceAll`, `match`,
//! `safeHtml`, `title`, `toUpper`, `toLower`, `stripPort`, `stripDomain`, `humanize`,
//! `humanize1024`, `humanizeDuration`, `humanizePercentage`, `humanizeTimestamp`, `toTime`,
//! `toDuration`, `parseDuration`, `externalURL`, `pathPrefix`, `now` and `urlQueryEscape`.
//!
//! Edge cases decided here:
//! - Numbers are formatted with Go's `fmt` verbs through `gotmpl`'s `printf`, so
//!   `humanize` and friends print what Prometheus prints (`%.4g`).
//! - A label the alert does not have prints `<no value>`: `gotmpl` has no typed zero value
//!   for a missing map key, where Prometheus (`missingkey=zero` on a `map[string]string`)
//!   prints the empty string.
//! - A template that fails to parse or run yields an error; the caller (the rule evaluator)
//!   then uses Prometheus's `<error expanding template: …>` text, as upstream does.
//! - `query` runs through a [`QueryFn`] so that this module does not know the storage.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use gotmpl::{Template, TemplateError, Value, ValueFunc};
use sightline_core::labels::Labels;

/// Runs a PromQL instant query for the `query` template function at the evaluation time; the
/// result is one `(labels, value)` pair per sample (a scalar is one sample with no labels).
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

/// What a template sees.
#[derive(Clone)]
pub struct TemplateData {
    /// The alert's labels: `$labels`.
    pub labels: Labels,
    /// The global external labels: `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL: `$externalURL`.
    pub external_url: String,
    /// The sample value that raised the alert: `$value`.
    pub value: f64,
    /// The evaluation time in milliseconds (for `now`).
    pub time_ms: i64,
    /// Runs `query`.
    pub query: QueryFn,
}

/// The variable definitions Prometheus puts in front of every alert template.
const PRELUDE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
                       {{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands `text` (named `name` in error messages) with `data`.
pub fn expand(name: &str, text: &str, data: &TemplateData) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_owned());
    }
    let source = format!("{PRELUDE}{text}");
    let template = Template::new(name).funcs(functions(data)).parse(&source)?;
    let mut root = BTreeMap::new();
    root.insert(Arc::from("Labels"), labels_value(&data.labels));
    root.insert(
        Arc::from("ExternalLabels"),
        string_map(
            data.external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ),
    );
    root.insert(
        Arc::from("ExternalURL"),
        Value::String(Arc::from(data.external_url.as_str())),
    );
    root.insert(Arc::from("Value"), Value::Float(data.value));
    template.execute_to_string(&Value::Map(Arc::new(root)))
}

/// Checks that `text` parses as a template, without running it (`check rules`).
pub fn validate(name: &str, text: &str) -> Result<(), TemplateError> {
    let source = format!("{PRELUDE}{text}");
    Template::new(name)
        .funcs(static_functions())
        .parse(&source)?;
    Ok(())
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Map(Arc::new(
        pairs
            .map(|(k, v)| (Arc::from(k), Value::String(Arc::from(v))))
            .collect(),
    ))
}

fn labels_value(labels: &Labels) -> Value {
    string_map(
        labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str())),
    )
}

/// A query result sample as Prometheus's templates see it: `.Labels` and `.Value`.
fn sample_value(labels: &Labels, value: f64) -> Value {
    let mut map = BTreeMap::new();
    map.insert(Arc::from("Labels"), labels_value(labels));
    map.insert(Arc::from("Value"), Value::Float(value));
    Value::Map(Arc::new(map))
}

fn exec_error(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

/// The functions that depend on the data of one expansion, added to [`static_functions`].
fn functions(data: &TemplateData) -> BTreeMap<String, ValueFunc> {
    let mut map = static_functions();
    let query = data.query.clone();
    map.insert(
        "query".into(),
        Arc::new(move |args: &[Value]| {
            let text = string_arg("query", args, 0)?;
            let samples = query(&text).map_err(|e| exec_error(format!("query {text:?}: {e}")))?;
            Ok(Value::List(
                samples
                    .iter()
                    .map(|(labels, value)| sample_value(labels, *value))
                    .collect(),
            ))
        }),
    );
    let url = data.external_url.clone();
    let url_for_link = url.clone();
    map.insert(
        "externalURL".into(),
        Arc::new(move |_: &[Value]| Ok(Value::String(Arc::from(url.as_str())))),
    );
    map.insert(
        "pathPrefix".into(),
        Arc::new(move |_: &[Value]| {
            let path = url::Url::parse(&url_for_link)
                .map(|parsed| parsed.path().trim_end_matches('/').to_owned())
                .unwrap_or_default();
            Ok(Value::String(Arc::from(path.as_str())))
        }),
    );
    let now_seconds = data.time_ms as f64 / 1000.0;
    map.insert(
        "now".into(),
        Arc::new(move |_: &[Value]| Ok(Value::Float(now_seconds))),
    );
    map
}

/// The functions that need nothing but their arguments, built once.
pub(crate) fn static_functions() -> BTreeMap<String, ValueFunc> {
    static FUNCTIONS: LazyLock<BTreeMap<String, ValueFunc>> = LazyLock::new(build_static);
    FUNCTIONS.clone()
}

fn build_static() -> BTreeMap<String, ValueFunc> {
    let mut map: BTreeMap<String, ValueFunc> = BTreeMap::new();
    let mut add = |name: &str, f: ValueFunc| {
        map.insert(name.to_owned(), f);
    };
    add(
        "first",
        Arc::new(|args| match args.first() {
            Some(Value::List(list)) => list
                .first()
                .cloned()
                .ok_or_else(|| exec_error("first() called on vector with no elements")),
            _ => Err(exec_error("first: expects a query result")),
        }),
    );
    add(
        "label",
        Arc::new(|args| {
            let name = string_arg("label", args, 0)?;
            let labels = args.get(1).and_then(|s| s.field("Labels"));
            Ok(labels
                .and_then(|l| l.field(&name))
                .cloned()
                .unwrap_or_else(|| Value::String(Arc::from(""))))
        }),
    );
    add(
        "value",
        Arc::new(|args| {
            args.first()
                .and_then(|s| s.field("Value"))
                .cloned()
                .ok_or_else(|| exec_error("value: expects a query result sample"))
        }),
    );
    add(
        "strvalue",
        Arc::new(|args| {
            let labels = args.first().and_then(|s| s.field("Labels"));
            Ok(labels
                .and_then(|l| l.field("__value__"))
                .cloned()
                .unwrap_or_else(|| Value::String(Arc::from(""))))
        }),
    );
    add(
        "sortByLabel",
        Arc::new(|args| {
            let name = string_arg("sortByLabel", args, 0)?;
            let Some(Value::List(list)) = args.get(1) else {
                return Err(exec_error("sortByLabel: expects a query result"));
            };
            let mut sorted: Vec<Value> = list.to_vec();
            let key = |v: &Value| {
                v.field("Labels")
                    .and_then(|l| l.field(&name))
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            };
            sorted.sort_by_key(key);
            Ok(Value::List(sorted.into()))
        }),
    );
    add(
        "args",
        Arc::new(|args| {
            Ok(Value::Map(Arc::new(
                args.iter()
                    .enumerate()
                    .map(|(i, v)| (Arc::from(format!("arg{i}").as_str()), v.clone()))
                    .collect(),
            )))
        }),
    );
    add(
        "reReplaceAll",
        Arc::new(|args| {
            let pattern = string_arg("reReplaceAll", args, 0)?;
            let replacement = string_arg("reReplaceAll", args, 1)?;
            let text = string_arg("reReplaceAll", args, 2)?;
            let regex = compile(&pattern)?;
            let replaced = regex.replace_all(&text, replacement.as_str());
            Ok(Value::String(Arc::from(replaced.as_ref())))
        }),
    );
    add(
        "match",
        Arc::new(|args| {
            let pattern = string_arg("match", args, 0)?;
            let text = string_arg("match", args, 1)?;
            Ok(Value::Bool(compile(&pattern)?.is_match(&text)))
        }),
    );
    add(
        "safeHtml",
        Arc::new(|args| {
            Ok(Value::String(Arc::from(
                string_arg("safeHtml", args, 0)?.as_str(),
            )))
        }),
    );
    add("title", string_fn("title", title));
    add("toUpper", string_fn("toUpper", |s| s.to_uppercase()));
    add("toLower", string_fn("toLower", |s| s.to_lowercase()));
    add("stripPort", string_fn("stripPort", strip_port));
    add("stripDomain", string_fn("stripDomain", strip_domain));
    add(
        "urlQueryEscape",
        string_fn("urlQueryEscape", |s| {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
        }),
    );
    add("humanize", number_fn("humanize", humanize));
    add("humanize1024", number_fn("humanize1024", humanize1024));
    add(
        "humanizeDuration",
        number_fn("humanizeDuration", humanize_duration),
    );
    add(
        "humanizePercentage",
        number_fn("humanizePercentage", |v| {
            Ok(format!("{}%", go_g4(v * 100.0)?))
        }),
    );
    add(
        "humanizeTimestamp",
        number_fn("humanizeTimestamp", humanize_timestamp),
    );
    add(
        "toTime",
        number_fn("toTime", |v| {
            if !v.is_finite() {
                return Err(exec_error(format!("cannot convert {v} to time")));
            }
            Ok(go_time(v))
        }),
    );
    add(
        "toDuration",
        number_fn("toDuration", |v| Ok(go_duration(v))),
    );
    add(
        "parseDuration",
        Arc::new(|args| {
            let text = string_arg("parseDuration", args, 0)?;
            let duration: sightline_core::duration::Duration = text
                .parse()
                .map_err(|e| exec_error(format!("parseDuration: {e}")))?;
            Ok(Value::Float(duration.as_millis() as f64 / 1000.0))
        }),
    );
    map
}

/// Go's `regexp.MustCompile`: unanchored, as `reReplaceAll` and `match` use it.
fn compile(pattern: &str) -> Result<regex::Regex, TemplateError> {
    regex::Regex::new(pattern)
        .map_err(|e| exec_error(format!("invalid regular expression {pattern:?}: {e}")))
}

fn string_arg(function: &str, args: &[Value], index: usize) -> Result<String, TemplateError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(other) => Ok(other.to_string()),
        None => Err(exec_error(format!(
            "{function}: expects at least {} arguments",
            index + 1
        ))),
    }
}

fn string_fn(name: &'static str, f: fn(&str) -> String) -> ValueFunc {
    Arc::new(move |args| {
        Ok(Value::String(Arc::from(
            f(&string_arg(name, args, 0)?).as_str(),
        )))
    })
}

fn number_fn(name: &'static str, f: fn(f64) -> Result<String, TemplateError>) -> ValueFunc {
    Arc::new(move |args| {
        let v = to_float(name, args.first())?;
        Ok(Value::String(Arc::from(f(v)?.as_str())))
    })
}

/// Prometheus's `convertToFloat`: numbers, and strings that parse as numbers.
fn to_float(function: &str, arg: Option<&Value>) -> Result<f64, TemplateError> {
    match arg {
        Some(Value::Float(v)) => Ok(*v),
        Some(Value::Int(v)) => Ok(*v as f64),
        Some(Value::Uint(v)) => Ok(*v as f64),
        Some(Value::String(s)) => parse_go_float(s)
            .ok_or_else(|| exec_error(format!("{function}: cannot convert {s:?} to a number"))),
        Some(other) => Err(exec_error(format!(
            "{function}: cannot convert {} to a number",
            other.type_name()
        ))),
        None => Err(exec_error(format!("{function}: expects one argument"))),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// Go's `fmt.Sprintf("%.4g", v)`, through `gotmpl`'s `printf`.
fn go_g4(v: f64) -> Result<String, TemplateError> {
    static G4: LazyLock<Result<Template, TemplateError>> =
        LazyLock::new(|| Template::new("g4").parse(r#"{{ printf "%.4g" . }}"#));
    match &*G4 {
        Ok(template) => template.execute_to_string(&Value::Float(v)),
        Err(error) => Err(exec_error(error.to_string())),
    }
}

fn humanize(mut v: f64) -> Result<String, TemplateError> {
    if v == 0.0 || !v.is_finite() {
        return go_g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    Ok(format!("{}{prefix}", go_g4(v)?))
}

fn humanize1024(mut v: f64) -> Result<String, TemplateError> {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    Ok(format!("{}{prefix}", go_g4(v)?))
}

fn humanize_duration(mut v: f64) -> Result<String, TemplateError> {
    if !v.is_finite() {
        return go_g4(v);
    }
    if v == 0.0 {
        return Ok(format!("{}s", go_g4(v)?));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 3600) % 24;
        let days = duration / 86_400;
        return Ok(if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_g4(v)?)
        });
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    Ok(format!("{}{prefix}s", go_g4(v)?))
}

fn humanize_timestamp(v: f64) -> Result<String, TemplateError> {
    if !v.is_finite() {
        return go_g4(v);
    }
    Ok(go_time(v))
}

/// Prometheus's float-seconds to time conversion (`model.TimeFromUnixNano`, so truncated to
/// the millisecond), printed as Go's `time.Time.String()` in UTC:
/// `2006-01-02 15:04:05.999 +0000 UTC`.
fn go_time(seconds: f64) -> String {
    let millis = (seconds * 1e9) as i64 / 1_000_000;
    let Some(time) = chrono::DateTime::from_timestamp_millis(millis) else {
        return go_g4(seconds).unwrap_or_default();
    };
    let mut fraction = format!("{:03}", time.timestamp_subsec_millis());
    while fraction.ends_with('0') {
        fraction.pop();
    }
    let dot = if fraction.is_empty() { "" } else { "." };
    format!(
        "{}{dot}{fraction} +0000 UTC",
        time.format("%Y-%m-%d %H:%M:%S")
    )
}

/// Go's `time.Duration.String()` of a duration in seconds: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(seconds: f64) -> String {
    if seconds == 0.0 || !seconds.is_finite() {
        return "0s".to_owned();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let nanos = (seconds.abs() * 1e9).round() as u128;
    if nanos < 1_000 {
        return format!("{sign}{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let rest = nanos % 60_000_000_000;
    let mut out = sign.to_owned();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_fraction(rest, 1_000_000_000)));
    out
}

/// `value / unit` with the fraction's trailing zeros removed.
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `cases.Title(language.AmericanEnglish, cases.NoLower)`: the first letter of every
/// word upper-cased, the rest left alone.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if at_word_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !(c.is_alphanumeric() || c == '\'');
    }
    out
}

/// Prometheus's `stripPort`: the host of `host:port` (and of `[v6]:port`).
fn strip_port(hostport: &str) -> String {
    if let Some(rest) = hostport.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !port.is_empty() => host.to_owned(),
        _ => hostport.to_owned(),
    }
}

/// Prometheus's `stripDomain`: the first label of a host name, keeping the port; IP
/// addresses are left as they are.
fn strip_domain(hostport: &str) -> String {
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (hostport, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() || hostport.starts_with('[') {
        return hostport.to_owned();
    }
    let first = host.split('.').next().unwrap_or(host);
    match port {
        Some(port) => format!("{first}:{port}"),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(labels: &[(&str, &str)], value: f64) -> TemplateData {
        TemplateData {
            labels: Labels::from_pairs(labels.iter().copied()),
            external_labels: BTreeMap::from([("cluster".to_owned(), "lab".to_owned())]),
            external_url: "http://lab.example/sightline/".to_owned(),
            value,
            time_ms: 0,
            query: Arc::new(|q: &str| {
                if q == "up" {
                    Ok(vec![(Labels::from_pairs([("job", "node")]), 1.0)])
                } else {
                    Err(format!("unknown query {q}"))
                }
            }),
        }
    }

    fn render(text: &str, d: &TemplateData) -> String {
        match expand("test", text, d) {
            Ok(out) => out,
            Err(e) => format!("ERROR: {e}"),
        }
    }

    #[test]
    fn fixture_constructs_render_like_prometheus() {
        let d = data(&[("instance", "node-1:9100"), ("job", "node")], 0.123_456);
        let cases = [
            ("{{ $labels.instance }} down", "node-1:9100 down"),
            ("{{$labels.job}}", "node"),
            ("{{ $value | humanizePercentage }}", "12.35%"),
            (r#"{{ printf "%.2f" $value }}"#, "0.12"),
            (r#"{{ printf "%.4g" $value }}"#, "0.1235"),
            ("{{ $value }}", "0.123456"),
            ("{{ $value | humanize }}", "123.5m"),
            (r#"{{ "43200" | humanizeDuration }}"#, "12h 0m 0s"),
            ("{{ with $labels.job -}} job={{ . }} {{- end }}", "job=node"),
            ("{{ $externalLabels.cluster }}", "lab"),
            ("{{ $externalURL }}", "http://lab.example/sightline/"),
            ("{{ pathPrefix }}", "/sightline"),
            (r#"{{ "disk full" | title }}"#, "Disk Full"),
            (r#"{{ "warn" | toUpper }}"#, "WARN"),
            (
                r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#,
                "node-1",
            ),
            (
                r#"{{ with query "up" }}{{ . | first | value }}{{ end }}"#,
                "1",
            ),
            (
                r#"{{ with query "up" }}{{ . | first | label "job" }}{{ end }}"#,
                "node",
            ),
            (
                r#"{{ range query "up" }}{{ .Labels.job }}={{ .Value }}{{ end }}"#,
                "node=1",
            ),
            ("{{ $labels.instance | stripPort }}", "node-1"),
            (r#"{{ "a.b.c:80" | stripDomain }}"#, "a:80"),
            ("{{ 1048576 | humanize1024 }}", "1Mi"),
            ("{{ 1234567 | humanize }}", "1.235M"),
            ("{{ 0.0012 | humanizeDuration }}", "1.2ms"),
            ("{{ 90061 | humanizeDuration }}", "1d 1h 1m 1s"),
            ("{{ 1.5 | humanizeDuration }}", "1.5s"),
            (
                "{{ 1435065584.128 | humanizeTimestamp }}",
                "2015-06-23 13:19:44.128 +0000 UTC",
            ),
            ("{{ 3661.5 | toDuration }}", "1h1m1.5s"),
            (r#"{{ match "^node" $labels.instance }}"#, "true"),
            (r#"{{ (args 1 "x").arg1 }}"#, "x"),
            (r#"{{ parseDuration "1m30s" }}"#, "90"),
            ("no template", "no template"),
        ];
        let mut failed = Vec::new();
        for (text, want) in cases {
            let got = render(text, &d);
            if got != want {
                failed.push(format!("{text}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn errors_are_reported() {
        let d = data(&[], 1.0);
        assert!(expand("t", "{{ nope }}", &d).is_err());
        assert!(expand("t", "{{ if }}", &d).is_err());
        assert!(expand("t", r#"{{ query "bad" | first }}"#, &d).is_err());
        assert!(validate("t", "{{ $labels.x }} {{ humanize $value }}").is_ok());
        assert!(validate("t", "{{ if }}").is_err());
    }
}
