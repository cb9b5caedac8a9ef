//! `GET /federate`: the latest sample of every series the `match[]` selectors pick, in the
//! Prometheus text format, so that another Prometheus can scrape Sightline
//! (https://prometheus.io/docs/prometheus/latest/federation/).
//!
//! Follows Prometheus's web/federate.go: each series' newest sample no older than the
//! engine's lookback delta (5 m) is written with its timestamp; a series whose newest sample
//! is a staleness marker is left out (the text format cannot carry one); families are sorted
//! by metric name and each is typed `untyped` with no help text; the global `external_labels`
//! are appended to series that lack them, and `instance=""` too when no external label names
//! `instance`, exactly as Prometheus does; a series without a metric name is skipped. No
//! `match[]` gives an empty answer. Values are written as Go's `strconv.FormatFloat(v, 'g',
//! -1, 64)` writes them (`1e+06`), so the body is byte-for-byte what Prometheus would send.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_tsdb::promql;

use crate::api::Params;
use crate::api::prometheus::{backend, now_ms, selectors};
use crate::server::AppState;

/// The text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /federate`
pub(crate) async fn federate(State(state): State<AppState>, params: Params) -> Response {
    match federate_text(&state, &params) {
        Ok(body) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response(),
        Err((status, message)) => (status, format!("{message}\n")).into_response(),
    }
}

fn federate_text(state: &AppState, params: &Params) -> Result<String, (StatusCode, String)> {
    let selectors = selectors(params).map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("error parsing match[]: {}", error.message()),
        )
    })?;
    let backend = backend(state)
        .map_err(|error| (StatusCode::SERVICE_UNAVAILABLE, error.message().to_owned()))?;
    let maxt = now_ms();
    let mint = maxt - backend.engine.options().lookback_delta_ms;
    let mut latest: BTreeMap<(String, Labels), (i64, f64)> = BTreeMap::new();
    for matchers in &selectors {
        let series = backend
            .querier
            .select(matchers, mint, maxt)
            .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        for series in series {
            let Some(name) = series.labels.metric_name().map(str::to_owned) else {
                continue;
            };
            let Some(sample) = series.samples(mint, maxt).last() else {
                continue;
            };
            if !promql::is_stale_nan(sample.1) {
                latest.insert((name, series.labels), sample);
            }
        }
    }
    let mut external: BTreeMap<String, String> =
        state.config.current().global.external_labels.clone();
    external.entry("instance".to_owned()).or_default();
    let mut body = String::new();
    let mut family = "";
    for ((name, labels), (t, v)) in &latest {
        if name != family {
            let _ = writeln!(body, "# TYPE {name} untyped");
            family = name;
        }
        body.push_str(name);
        let mut first = true;
        let mut pair = |body: &mut String, name: &str, value: &str| {
            body.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(body, "{name}=\"{}\"", escape_label_value(value));
        };
        for label in labels {
            if label.name != METRIC_NAME && !label.value.is_empty() {
                pair(&mut body, &label.name, &label.value);
            }
        }
        for (name, value) in &external {
            if labels.get(name).is_none_or(str::is_empty) {
                pair(&mut body, name, value);
            }
        }
        if !first {
            body.push('}');
        }
        let _ = writeln!(body, " {} {t}", go_float(*v));
    }
    Ok(body)
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn escape_label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it, as Prometheus's text
/// encoder does: the shortest digits that read back exactly, in exponent form when the
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`), and `+Inf`, `-Inf`, `NaN`.
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let scientific = format!("{v:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) || v == 0.0 {
        return v.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        for (v, go) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1.7e9, "1.7e+09"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.5e-7, "-1.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(go_float(v), go, "{v}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
