//! Notification templates: the text of titles, messages and URLs, from Alertmanager-style
//! templates over a notification's data.
//!
//! Follows Alertmanager's `template` package as far as Go templates without Go methods
//! allow. The data has `.Receiver`, `.Status` (`firing`/`resolved`), `.Alerts` (each with
//! `.Status`, `.Labels`, `.Annotations`, `.StartsAt`, `.EndsAt` (RFC 3339), `.GeneratorURL`,
//! `.Fingerprint`), `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL` and
//! `.GroupKey`. The functions are those of rule templates ([`crate::template`]: `toUpper`,
//! `title`, `reReplaceAll`, `humanize`…) plus `join`.
//!
//! Edge cases decided here:
//! - Go's methods on Alertmanager's data are not there: `.Alerts.Firing` and
//!   `.Alerts.Resolved`, the most used ones, are rewritten to the fields `.FiringAlerts` and
//!   `.ResolvedAlerts` before parsing; `.SortedPairs`, `.Names`, `.Values` and `.Remove` are
//!   not available (a map ranges in name order, so `range $name, $value := .Labels` does
//!   what `.SortedPairs` does).
//! - The default templates (`pushover.default.title` and the rest) are Sightline's: the
//!   title is `[FIRING:2] <group label values>`, the messages list each alert's labels,
//!   annotations and source as Alertmanager's do.
//! - The files named by the config's `templates` are parsed before the text, so their
//!   `define`s can be used; a file that cannot be read or parsed fails the notification.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use gotmpl::{Template, TemplateError, Value, ValueFunc};
use sightline_core::labels::Labels;

use super::alert::{Alert, fingerprint_hex};
use super::dispatch::Notification;

/// Sightline's default notification templates.
pub const DEFAULT_TEMPLATES: &str = r#"
{{ define "__subject" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ len .FiringAlerts }}{{ end }}]{{ range .GroupLabels }} {{ . }}{{ end }}{{ end }}
{{ define "__alertmanagerURL" }}{{ .ExternalURL }}/#/alerts?receiver={{ .Receiver | urlquery }}{{ end }}
{{ define "__text_alert_list" }}{{ range . }}Labels:
{{ range $name, $value := .Labels }} - {{ $name }} = {{ $value }}
{{ end }}Annotations:
{{ range $name, $value := .Annotations }} - {{ $name }} = {{ $value }}
{{ end }}Source: {{ .GeneratorURL }}
{{ end }}{{ end }}
{{ define "__text_alerts" }}{{ if .FiringAlerts }}Alerts Firing:
{{ template "__text_alert_list" .FiringAlerts }}{{ end }}{{ if .ResolvedAlerts }}Alerts Resolved:
{{ template "__text_alert_list" .ResolvedAlerts }}{{ end }}{{ end }}
{{ define "pushover.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "pushover.default.message" }}{{ template "__text_alerts" . }}{{ end }}
{{ define "pushover.default.url" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "telegram.default.message" }}{{ template "__subject" . }}
{{ template "__text_alerts" . }}{{ end }}
{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}
{{ define "email.default.html" }}<pre>{{ template "__text_alerts" . }}</pre>{{ end }}
"#;

/// Renders the texts of one notification.
pub struct Renderer {
    data: Value,
    /// The template files' texts, parsed in front of every text.
    files: Arc<Vec<String>>,
}

impl Renderer {
    /// A renderer for `notification`, with the `templates` files' texts and the server's
    /// external URL.
    pub fn new(
        notification: &Notification,
        files: Arc<Vec<String>>,
        external_url: &str,
    ) -> Renderer {
        Renderer {
            data: data(notification, external_url),
            files,
        }
    }

    /// Expands `text` (named `name` in errors).
    pub fn render(&self, name: &str, text: &str) -> Result<String, TemplateError> {
        let mut template = Template::new(name)
            .funcs(functions())
            .parse(DEFAULT_TEMPLATES)?;
        for file in self.files.iter() {
            template = template.parse(&rewrite_methods(file))?;
        }
        template
            .parse(&rewrite_methods(text))?
            .execute_to_string(&self.data)
    }
}

fn rewrite_methods(text: &str) -> String {
    text.replace(".Alerts.Firing", ".FiringAlerts")
        .replace(".Alerts.Resolved", ".ResolvedAlerts")
}

fn functions() -> BTreeMap<String, ValueFunc> {
    let mut map = crate::template::static_functions();
    map.insert(
        "join".to_owned(),
        Arc::new(|args: &[Value]| {
            let separator = match args.first() {
                Some(Value::String(s)) => s.to_string(),
                _ => return Err(TemplateError::Exec("join: expects a separator".to_owned())),
            };
            let items: Vec<String> = match args.get(1) {
                Some(Value::List(list)) => list.iter().map(ToString::to_string).collect(),
                Some(Value::Map(map)) => map.values().map(ToString::to_string).collect(),
                _ => return Err(TemplateError::Exec("join: expects a list".to_owned())),
            };
            Ok(Value::String(Arc::from(items.join(&separator).as_str())))
        }),
    );
    map
}

fn string(text: &str) -> Value {
    Value::String(Arc::from(text))
}

fn labels_map(labels: &Labels) -> Value {
    Value::Map(Arc::new(
        labels
            .iter()
            .map(|label| (Arc::from(label.name.as_str()), string(&label.value)))
            .collect(),
    ))
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Map(Arc::new(
        map.iter()
            .map(|(name, value)| (Arc::from(name.as_str()), string(value)))
            .collect(),
    ))
}

/// RFC 3339 with milliseconds, as the API and webhook payloads write times.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn alert_value(alert: &Alert, at: i64) -> Value {
    let status = if alert.resolved_at(at) {
        "resolved"
    } else {
        "firing"
    };
    let mut map = BTreeMap::new();
    map.insert(Arc::from("Status"), string(status));
    map.insert(Arc::from("Labels"), labels_map(&alert.labels));
    map.insert(Arc::from("Annotations"), string_map(&alert.annotations));
    map.insert(Arc::from("StartsAt"), string(&rfc3339(alert.starts_at)));
    let ends = if alert.resolved_at(at) {
        rfc3339(alert.ends_at)
    } else {
        "0001-01-01T00:00:00Z".to_owned()
    };
    map.insert(Arc::from("EndsAt"), string(&ends));
    map.insert(Arc::from("GeneratorURL"), string(&alert.generator_url));
    map.insert(
        Arc::from("Fingerprint"),
        string(&fingerprint_hex(alert.fingerprint())),
    );
    Value::Map(Arc::new(map))
}

/// Labels every alert has with the same value.
pub fn common_labels(alerts: &[Alert]) -> Labels {
    let Some((first, rest)) = alerts.split_first() else {
        return Labels::new();
    };
    first.labels.without(|name| {
        rest.iter()
            .any(|a| a.labels.get(name) != first.labels.get(name))
    })
}

/// Annotations every alert has with the same value.
pub fn common_annotations(alerts: &[Alert]) -> BTreeMap<String, String> {
    let Some((first, rest)) = alerts.split_first() else {
        return BTreeMap::new();
    };
    first
        .annotations
        .iter()
        .filter(|(name, value)| rest.iter().all(|a| a.annotations.get(*name) == Some(value)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn data(notification: &Notification, external_url: &str) -> Value {
    let at = notification.at;
    let list = |filter: &dyn Fn(&Alert) -> bool| {
        Value::List(
            notification
                .alerts
                .iter()
                .filter(|a| filter(a))
                .map(|a| alert_value(a, at))
                .collect(),
        )
    };
    let mut map = BTreeMap::new();
    map.insert(Arc::from("Receiver"), string(&notification.receiver));
    map.insert(Arc::from("Status"), string(notification.status()));
    map.insert(Arc::from("Alerts"), list(&|_| true));
    map.insert(Arc::from("FiringAlerts"), list(&|a| !a.resolved_at(at)));
    map.insert(Arc::from("ResolvedAlerts"), list(&|a| a.resolved_at(at)));
    map.insert(
        Arc::from("GroupLabels"),
        labels_map(&notification.group_key.labels),
    );
    map.insert(
        Arc::from("CommonLabels"),
        labels_map(&common_labels(&notification.alerts)),
    );
    map.insert(
        Arc::from("CommonAnnotations"),
        string_map(&common_annotations(&notification.alerts)),
    );
    map.insert(Arc::from("ExternalURL"), string(external_url));
    map.insert(
        Arc::from("GroupKey"),
        string(&notification.group_key.to_string()),
    );
    Value::Map(Arc::new(map))
}
