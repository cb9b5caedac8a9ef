//! The senders against local servers speaking each wire format (Pushover's form POST, the
//! Telegram Bot API's sendMessage, Alertmanager's webhook JSON), with answers that are
//! right, wrong, garbage, empty, 5xx or none at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Answer, FakeServer};
use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::alert::PostedAlert;
use sightline_alerting::notifier::service::{Notifier, RetryPolicy};
use sightline_core::labels::Labels;

const T0: i64 = 1_795_000_000_000;
const FAST: RetryPolicy = RetryPolicy {
    first_backoff: Duration::from_millis(10),
    max_backoff: Duration::from_millis(40),
};

fn notifier(config: &str) -> Arc<Notifier> {
    let config = AlertmanagerConfig::parse(Path::new("am.yml"), config).unwrap();
    let notifier = Notifier::new(config, None, FAST).unwrap();
    notifier.set_external_url("http://sightline.test:9090".to_owned());
    Arc::new(notifier)
}

fn disk_alert(ends_at: Option<i64>) -> PostedAlert {
    PostedAlert {
        labels: Labels::from_pairs([
            ("alertname", "DiskFull"),
            ("instance", "nas:9100"),
            ("severity", "critical"),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), "Disk almost full".to_owned())]),
        starts_at: Some(T0),
        ends_at,
        generator_url: "http://sightline.test:9090/graph".to_owned(),
    }
}

fn pushover_config(url: &str, extra: &str) -> String {
    format!(
        r#"
route:
  receiver: phone
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
receivers:
  - name: phone
    pushover_configs:
      - user_key: the-user
        token: the-token
        api_url: {url}
        priority: '{{{{ if eq .Status "firing" }}}}1{{{{ else }}}}0{{{{ end }}}}'
        html: true
{extra}"#
    )
}

#[tokio::test]
async fn pushover_gets_the_form_alertmanager_sends() {
    let server = FakeServer::start(
        vec![],
        Answer::Respond(200, r#"{"status":1,"request":"r"}"#),
    )
    .await;
    let notifier = notifier(&pushover_config(&server.url("/1/messages.json"), ""));
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].result, Ok(()));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.request_line, "POST /1/messages.json HTTP/1.1");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.field("token").as_deref(), Some("the-token"));
    assert_eq!(request.field("user").as_deref(), Some("the-user"));
    assert_eq!(request.field("priority").as_deref(), Some("1"));
    assert_eq!(
        request.field("title").as_deref(),
        Some("[FIRING:1] DiskFull")
    );
    let message = request.field("message").unwrap();
    assert!(message.contains(" - instance = nas:9100"), "{message}");
    assert!(
        message.contains(" - summary = Disk almost full"),
        "{message}"
    );
    assert_eq!(
        request.field("url").as_deref(),
        Some("http://sightline.test:9090/#/alerts?receiver=phone")
    );
    assert_eq!(request.field("html").as_deref(), Some("1"));
    assert_eq!(request.field("retry").as_deref(), Some("60"));
    assert_eq!(request.field("expire").as_deref(), Some("3600"));

    // Resolved: priority 0 and a RESOLVED title.
    notifier.receive(vec![disk_alert(Some(T0 + 60_000))], T0 + 60_000);
    let deliveries = notifier.flush_and_send(T0 + 5 * 60_000).await;
    assert_eq!(deliveries.len(), 1);
    let requests = server.requests();
    assert_eq!(requests[1].field("priority").as_deref(), Some("0"));
    assert_eq!(
        requests[1].field("title").as_deref(),
        Some("[RESOLVED] DiskFull")
    );
}

#[tokio::test]
async fn pushover_secrets_come_from_files_and_templates_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user"), "file-user\n").unwrap();
    std::fs::write(dir.path().join("token"), "file-token\n").unwrap();
    std::fs::write(
        dir.path().join("phone.tmpl"),
        r#"{{ define "phone.title" }}{{ len .Alerts.Firing }} firing: {{ .CommonAnnotations.summary }}{{ end }}"#,
    )
    .unwrap();
    let server = FakeServer::start(vec![], Answer::Respond(200, r#"{"status":1}"#)).await;
    let config = format!(
        r#"
templates: ['*.tmpl']
route:
  receiver: phone
  group_wait: 0s
receivers:
  - name: phone
    pushover_configs:
      - user_key_file: {dir}/user
        token_file: {dir}/token
        api_url: {url}
        title: '{{{{ template "phone.title" . }}}}'
"#,
        dir = dir.path().display(),
        url = server.url("/p")
    );
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, &config).unwrap();
    let config = AlertmanagerConfig::load(&path).unwrap();
    let notifier = Arc::new(Notifier::new(config, None, FAST).unwrap());
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries[0].result, Ok(()));
    let request = &server.requests()[0];
    assert_eq!(request.field("user").as_deref(), Some("file-user"));
    assert_eq!(request.field("token").as_deref(), Some("file-token"));
    assert_eq!(
        request.field("title").as_deref(),
        Some("1 firing: Disk almost full")
    );
}

/// `(alertmanager_notifications_total, alertmanager_notifications_failed_total)` of
/// `integration`, as `/metrics` would show them.
fn counted(notifier: &Notifier, integration: &str) -> (u64, u64) {
    let registry = prometheus::Registry::new();
    notifier.metrics().register(&registry).unwrap();
    let value = |name: &str| {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .find(|metric| {
                metric
                    .get_label()
                    .iter()
                    .any(|label| label.name() == "integration" && label.value() == integration)
            })
            .map_or(u64::MAX, |metric| metric.get_counter().get_value() as u64)
    };
    (
        value("alertmanager_notifications_total"),
        value("alertmanager_notifications_failed_total"),
    )
}

#[tokio::test]
async fn bad_answers_are_retried_until_one_is_right() {
    let server = FakeServer::start(
        vec![
            Answer::Respond(503, "overloaded"),
            Answer::Respond(200, "<html>captive portal</html>"),
            Answer::Respond(200, ""),
            Answer::Close,
            Answer::Respond(200, r#"{"status":0,"errors":["busy"]}"#),
        ],
        Answer::Respond(200, r#"{"status":1}"#),
    )
    .await;
    let notifier = notifier(&pushover_config(&server.url("/p"), ""));
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries[0].result, Ok(()));
    assert_eq!(deliveries[0].attempts, 6);
    assert_eq!(server.requests().len(), 6);
    assert_eq!(
        counted(&notifier, "pushover"),
        (6, 5),
        "attempts and failures"
    );
    assert_eq!(counted(&notifier, "webhook"), (0, 0));
    // Delivered once: the log keeps it from being sent again (the alert, re-sent as
    // Prometheus does, still fires).
    notifier.receive(vec![disk_alert(None)], T0 + 60_000);
    assert!(notifier.flush_and_send(T0 + 5 * 60_000).await.is_empty());
}

#[tokio::test]
async fn a_receiver_that_never_answers_right_gives_up_at_the_deadline_and_is_tried_again() {
    let server = FakeServer::start(vec![], Answer::Respond(500, "down")).await;
    let config = pushover_config(&server.url("/p"), "")
        .replace("group_interval: 5m", "group_interval: 200ms");
    let notifier = notifier(&config);
    notifier.receive(vec![disk_alert(None)], T0);
    let started = std::time::Instant::now();
    let deliveries = notifier.flush_and_send(T0).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.retryable);
    assert!(error.message.contains("500"), "{error}");
    assert!(deliveries[0].attempts > 1);
    // Not logged as sent: the next flush tries again.
    assert_eq!(notifier.flush_and_send(T0 + 200).await.len(), 1);
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let server = FakeServer::start(
        vec![],
        Answer::Respond(400, r#"{"status":0,"errors":["user key is invalid"]}"#),
    )
    .await;
    let notifier = notifier(&pushover_config(&server.url("/p"), ""));
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    let error = deliveries[0].result.clone().unwrap_err();
    assert!(!error.retryable);
    assert!(error.message.contains("user key is invalid"), "{error}");
    assert_eq!(deliveries[0].attempts, 1);
}

fn telegram_config(url: &str) -> String {
    format!(
        r#"
route:
  receiver: chat
  group_wait: 0s
receivers:
  - name: chat
    telegram_configs:
      - bot_token: "123:abc"
        chat_id: -1001
        api_url: {url}
        message_thread_id: 7
"#
    )
}

#[tokio::test]
async fn telegram_gets_send_message_and_an_empty_result_is_fine() {
    let server = FakeServer::start(
        vec![Answer::Respond(200, "{}"), Answer::Respond(502, "")],
        Answer::Respond(200, r#"{"ok":true,"result":{}}"#),
    )
    .await;
    let notifier = notifier(&telegram_config(&server.url("")));
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries[0].result, Ok(()));
    assert_eq!(deliveries[0].attempts, 3, "{{}} and a 502 are retried");
    let request = &server.requests()[2];
    assert_eq!(
        request.request_line,
        "POST /bot123:abc/sendMessage HTTP/1.1"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["chat_id"], -1001);
    assert_eq!(body["message_thread_id"], 7);
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_notification"], false);
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("[FIRING:1]"), "{text}");
    assert!(text.contains("alertname = DiskFull"), "{text}");
}

#[tokio::test]
async fn telegram_ok_false_is_retried_and_reported() {
    let server = FakeServer::start(
        vec![Answer::Respond(
            200,
            r#"{"ok":false,"description":"flood wait"}"#,
        )],
        Answer::Respond(200, r#"{"ok":true,"result":{"message_id":1}}"#),
    )
    .await;
    let notifier = notifier(&telegram_config(&server.url("")));
    notifier.receive(vec![disk_alert(None)], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries[0].result, Ok(()));
    assert_eq!(deliveries[0].attempts, 2);
}

#[tokio::test]
async fn webhook_gets_alertmanagers_json_version_4() {
    let server = FakeServer::start(vec![], Answer::Respond(200, "whatever")).await;
    let config = format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        max_alerts: 1
        http_config:
          basic_auth: {{username: u, password: p}}
"#,
        url = server.url("/hook")
    );
    let notifier = notifier(&config);
    let mut second = disk_alert(None);
    second.labels = Labels::from_pairs([
        ("alertname", "DiskFull"),
        ("instance", "pi:9100"),
        ("severity", "critical"),
    ]);
    notifier.receive(vec![disk_alert(None), second], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries[0].result, Ok(()));
    let request = &server.requests()[0];
    assert_eq!(request.request_line, "POST /hook HTTP/1.1");
    assert_eq!(request.header("authorization"), Some("Basic dTpw"));
    let body = request.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["groupKey"], "{}:{alertname=\"DiskFull\"}");
    assert_eq!(
        body["groupLabels"],
        serde_json::json!({"alertname": "DiskFull"})
    );
    assert_eq!(
        body["commonLabels"],
        serde_json::json!({"alertname": "DiskFull", "severity": "critical"})
    );
    assert_eq!(body["commonAnnotations"]["summary"], "Disk almost full");
    assert_eq!(body["externalURL"], "http://sightline.test:9090");
    assert_eq!(body["truncatedAlerts"], 1);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["labels"]["instance"], "nas:9100");
    assert_eq!(alerts[0]["startsAt"], "2026-11-18T11:06:40.000Z");
    assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        alerts[0]["generatorURL"],
        "http://sightline.test:9090/graph"
    );
    assert_eq!(alerts[0]["fingerprint"].as_str().unwrap().len(), 16);
}
