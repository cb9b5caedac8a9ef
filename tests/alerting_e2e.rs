//! The seed homelab's alert routing end to end, over real HTTP on 127.0.0.1: rules over real
//! scraped data and alerts POSTed to `/api/v2/alerts` (as Prometheus and Flux's
//! notification-controller send them) reach a local fake Pushover server with the right
//! user, token, priority, title and message; Watchdog goes to a receiver that sends
//! nothing; a silence and an inhibit rule suppress; resolved alerts are notified; and the
//! real `amtool` reads alerts and silences. Timings with a controlled clock are shown in
//! `alerting/tests/notifier_dispatch.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Appliance, FakePushover, get_json, http, scraping_appliance_with, write_file};
use serde_json::{Value, json};

const RULES: &str = r#"
groups:
  - name: seed
    interval: 1s
    rules:
      - alert: Watchdog
        expr: vector(1)
        labels: {severity: none}
      - alert: SightlineScraped
        expr: up{job="sightline"} == 1
        labels: {severity: critical}
        annotations:
          summary: 'target {{ $labels.instance }} is up'
      - alert: SightlineWarning
        expr: up{job="sightline"} == 1
        labels: {severity: warning}
"#;

fn notifier_config(pushover: &str) -> String {
    format!(
        r#"
alertmanager:
  route:
    receiver: "null"
    group_by: [alertname]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
    routes:
      - matchers: [alertname="Watchdog"]
        receiver: "null"
      - matchers: [severity="critical"]
        receiver: pushover-critical
      - matchers: ['severity=~"warning|info"']
        receiver: pushover-warning
        mute_time_intervals: [quiet-hours]
  inhibit_rules:
    - source_matchers: [severity="critical"]
      target_matchers: [severity="warning"]
      equal: [instance]
  time_intervals:
    # Never now: the clock-driven muting is shown in alerting/tests/notifier_dispatch.rs.
    - name: quiet-hours
      time_intervals: [{{years: ['2000']}}]
  receivers:
    - name: "null"
    - name: pushover-critical
      pushover_configs:
        - user_key: user-1
          token: token-1
          api_url: {pushover}
          priority: '1'
          title: '{{{{ .Status }}}} {{{{ .CommonLabels.alertname }}}}'
          message: '{{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}}{{{{ end }}}}'
    - name: pushover-warning
      pushover_configs:
        - user_key: user-1
          token: token-1
          api_url: {pushover}
          priority: '0'
          title: '{{{{ .Status }}}} {{{{ .CommonLabels.alertname }}}}'
"#
    )
}

fn post(app: &Appliance, path: &str, body: &Value) -> (u16, String) {
    let response = http()
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn rfc3339_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn seed_routing_end_to_end() {
    let pushover = FakePushover::start();
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "rules.yaml", RULES);
    let extra = format!(
        "rule_files: [rules.yaml]\n{}",
        notifier_config(&pushover.url())
    );
    let app = scraping_appliance_with(dir.path(), &extra);

    // A condition made true on real scraped data: critical goes out with priority 1.
    let critical = pushover.wait_for("firing SightlineScraped");
    assert_eq!(critical["user"], "user-1");
    assert_eq!(critical["token"], "token-1");
    assert_eq!(critical["priority"], "1");
    assert!(
        critical["message"].starts_with("target 127.0.0.1:"),
        "{critical:?}"
    );

    // The warning on the same instance is inhibited by the critical one.
    let warnings = get_json(
        &app,
        "/api/v2/alerts?filter=alertname%3D%22SightlineWarning%22",
    );
    assert_eq!(warnings[0]["status"]["state"], "suppressed", "{warnings}");
    assert_eq!(
        warnings[0]["status"]["inhibitedBy"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A warning elsewhere goes out with priority 0 (quiet hours are never now).
    let (status, body) = post(
        &app,
        "/api/v2/alerts",
        &json!([{"labels": {"alertname": "DiskSlow", "severity": "warning", "instance": "nas"}}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(pushover.wait_for("firing DiskSlow")["priority"], "0");

    // A silence suppresses: the silenced alert is posted before a marker alert, and only
    // the marker arrives.
    let (status, body) = post(
        &app,
        "/api/v2/silences",
        &json!({
            "matchers": [{"name": "alertname", "value": "Silenced", "isRegex": false, "isEqual": true}],
            "startsAt": rfc3339_in(0),
            "endsAt": rfc3339_in(3600),
            "createdBy": "test",
            "comment": "maintenance",
        }),
    );
    assert_eq!(status, 200, "{body}");
    let silence_id = serde_json::from_str::<Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &app,
        "/api/v2/alerts",
        &json!([{"labels": {"alertname": "Silenced", "severity": "critical"}}]),
    );
    // Flux's notification-controller (provider type `alertmanager`) posts events like this.
    let flux = json!([{
        "labels": {
            "alertname": "FluxHelmReleaseFailed",
            "severity": "critical",
            "kind": "HelmRelease",
            "name": "sightline",
            "namespace": "monitoring",
            "reason": "UpgradeFailed",
        },
        "annotations": {"summary": "Helm upgrade failed", "revision": "1.2.3"},
        "startsAt": rfc3339_in(0),
        "generatorURL": "",
    }]);
    assert_eq!(post(&app, "/api/v2/alerts", &flux).0, 200);
    let flux_note = pushover.wait_for("firing FluxHelmReleaseFailed");
    assert_eq!(flux_note["priority"], "1");
    assert_eq!(flux_note["message"], "Helm upgrade failed");
    assert!(
        pushover
            .forms()
            .iter()
            .all(|f| f["title"] != "firing Silenced"),
        "the silenced alert was sent: {:#?}",
        pushover.forms()
    );
    let silenced = get_json(&app, "/api/v2/alerts?filter=alertname%3D%22Silenced%22");
    assert_eq!(silenced[0]["status"]["silencedBy"], json!([silence_id]));

    // Watchdog reaches the notifier and its null receiver, and is never sent.
    let watchdog = get_json(&app, "/api/v2/alerts?filter=alertname%3D%22Watchdog%22");
    assert_eq!(
        watchdog[0]["receivers"],
        json!([{"name": "null"}]),
        "{watchdog}"
    );
    assert!(
        pushover
            .forms()
            .iter()
            .all(|f| !f["title"].contains("Watchdog"))
    );

    // Resolved: the Flux alert posted again with an end.
    let mut resolved = flux.clone();
    resolved[0]["endsAt"] = json!(rfc3339_in(0));
    assert_eq!(post(&app, "/api/v2/alerts", &resolved).0, 200);
    pushover.wait_for("resolved FluxHelmReleaseFailed");

    // Groups, receivers and status.
    let groups = get_json(&app, "/api/v2/alerts/groups");
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["labels"] == json!({"alertname": "SightlineScraped"})
                && g["receiver"]["name"] == "pushover-critical"),
        "{groups}"
    );
    let receivers = get_json(&app, "/api/v2/receivers");
    assert_eq!(
        receivers,
        json!([{"name": "null"}, {"name": "pushover-critical"}, {"name": "pushover-warning"}])
    );
    assert_eq!(
        get_json(&app, "/api/v2/status")["cluster"]["status"],
        "disabled"
    );

    // The real amtool reads alerts and silences.
    let amtool = |args: &[&str]| {
        let output = Command::new("amtool")
            .arg(format!("--alertmanager.url=http://{}", app.address))
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "amtool did not run ({e}); install it: apt-get install prometheus-alertmanager"
                )
            });
        assert!(
            output.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let alerts = amtool(&["alert", "query", "-o", "json", "alertname=DiskSlow"]);
    let alerts: Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(alerts[0]["labels"]["instance"], "nas", "{alerts}");
    let silences = amtool(&["silence", "query", "-q"]);
    assert_eq!(silences.trim(), silence_id);
    amtool(&["silence", "expire", &silence_id]);
    let silence = get_json(&app, &format!("/api/v2/silence/{silence_id}"));
    assert_eq!(silence["status"]["state"], "expired");
    let added = amtool(&[
        "silence",
        "add",
        "alertname=DiskSlow",
        "--comment=by amtool",
        "--author=me",
        "--duration=1h",
    ]);
    let listed = get_json(&app, "/api/v2/silences");
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == added.trim() && s["createdBy"] == "me"),
        "{listed}"
    );

    // Bad input is refused with Alertmanager's 400.
    let (status, body) = post(&app, "/api/v2/alerts", &json!([{"labels": {}}]));
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(&app, "/api/v2/silences", &json!({"matchers": []}));
    assert_eq!(status, 400);
    let deleted = http()
        .delete(app.url("/api/v2/silence/no-such-id"))
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 404);
}

/// Waits (at most 10 s) until `/api/v2/receivers` lists `names`.
fn wait_for_receivers(app: &Appliance, names: Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let receivers = get_json(app, "/api/v2/receivers");
        if receivers == names {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "receivers {receivers}, want {names}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn notifier_config_reloads_with_the_config_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let inline = |receiver: &str| {
        format!(
            "alertmanager:\n  route:\n    receiver: {receiver}\n  receivers:\n    - name: {receiver}\n"
        )
    };
    let config = write_file(dir.path(), "sightline.yml", &inline("first"));
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    wait_for_receivers(&app, json!([{"name": "first"}]));

    // A file instead of the inline section, applied by /-/reload.
    write_file(
        dir.path(),
        "am.yml",
        "route: {receiver: second}\nreceivers: [{name: second}]\n",
    );
    write_file(
        dir.path(),
        "sightline.yml",
        "alertmanager_config_file: am.yml\n",
    );
    let reload = || {
        http()
            .post(app.url("/-/reload"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(reload(), 200);
    wait_for_receivers(&app, json!([{"name": "second"}]));

    // A broken notifier config: logged with its position, the running one stays.
    write_file(
        dir.path(),
        "am.yml",
        "route: {receiver: third}\nreceivers: [{name: second}]\n",
    );
    assert_eq!(reload(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = format!(
        "{}:1:19: route names receiver \"third\", which is not defined in receivers; the notifier config loaded before stays in force",
        dir.path().join("am.yml").display()
    );
    while !app.log().iter().any(|line| line.contains(&expected)) {
        assert!(
            Instant::now() < deadline,
            "no error logged: {:#?}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_receivers(&app, json!([{"name": "second"}]));
}

const LOG_RULES: &str = r#"
groups:
  - name: logs
    interval: 1s
    rules:
      - record: app:log_errors:count1m
        expr: sum by (app) (count_over_time({namespace="media"} |= "level=error" [1m]))
      - alert: ErrorBurst
        expr: sum by (app) (count_over_time({namespace="media"} |= "level=error" [1m])) > 2
        labels: {severity: critical}
        annotations:
          summary: '{{ $labels.app }} logged {{ $value }} errors in a minute'
"#;

/// A LogQL alerting rule (Loki ruler style, `log_rule_files`) over pushed lines reaches the
/// phone through the same routing; a LogQL recording rule's series is queried with PromQL.
#[test]
fn logql_rules_alert_on_pushed_lines_and_record_series() {
    let pushover = FakePushover::start();
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "log-rules.yaml", LOG_RULES);
    let extra = format!(
        "log_rule_files: [log-rules.yaml]\nbuiltin_rules: {{enabled: false}}\n{}",
        notifier_config(&pushover.url())
    );
    let app = scraping_appliance_with(dir.path(), &extra);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let values: Vec<Value> = (0..3_u32)
        .map(|i| {
            json!([
                (now_ns + u128::from(i)).to_string(),
                format!("level=error msg=\"transcode failed {i}\"")
            ])
        })
        .chain([json!([(now_ns + 10).to_string(), "level=info msg=ok"])])
        .collect();
    let body = json!({"streams": [{"stream": {"namespace": "media", "app": "jellyfin"}, "values": values}]});
    assert_eq!(post(&app, "/loki/api/v1/push", &body).0, 204);

    let form = pushover.wait_for("firing ErrorBurst");
    assert_eq!(form["priority"], "1");
    assert_eq!(form["message"], "jellyfin logged 3 errors in a minute");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get_json(&app, "/api/v1/query?query=app:log_errors:count1m");
        if let Some(sample) = answer["data"]["result"].as_array().unwrap().first() {
            assert_eq!(sample["metric"]["app"], "jellyfin");
            assert_eq!(sample["value"][1], "3");
            break;
        }
        assert!(Instant::now() < deadline, "no recorded series: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rules = get_json(&app, "/api/v1/rules?type=alert");
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "logs");
    assert_eq!(group["rules"][0]["health"], "ok", "{group}");
}

/// LogQL rules query under the configured limits, as the query API does: with
/// `limits.logs.max_query_series: 1`, a rule grouping two apps fails with Loki's message.
#[test]
fn logql_rules_query_under_the_configured_limits() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "log-rules.yaml", LOG_RULES);
    let extra = "log_rule_files: [log-rules.yaml]\nbuiltin_rules: {enabled: false}\n\
                 limits:\n  logs: {max_query_series: 1}\n";
    let app = scraping_appliance_with(dir.path(), extra);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let streams: Vec<Value> = ["jellyfin", "sonarr"]
        .iter()
        .map(|app| {
            json!({"stream": {"namespace": "media", "app": app},
                   "values": [[now_ns.to_string(), "level=error msg=\"failed\""]]})
        })
        .collect();
    assert_eq!(
        post(&app, "/loki/api/v1/push", &json!({"streams": streams})).0,
        204
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rules = get_json(&app, "/api/v1/rules?type=record");
        let rule = &rules["data"]["groups"][0]["rules"][0];
        if rule["health"] == "err" {
            let error = rule["lastError"].as_str().unwrap();
            assert!(error.contains("maximum number of series (1)"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "the rule did not fail: {rules}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The built-in LogQL rules on pushed lines: an error burst in one namespace goes pending (it
/// fires after 5 m), a quieter namespace does not; an OOM kill logged by the kubelet fires at
/// once for its node, a node without one stays quiet.
#[test]
fn builtin_log_rules_fire_on_error_bursts_and_oom_kills() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "global: {evaluation_interval: 1s}\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let lines = |count: u32, text: &str| -> Vec<Value> {
        (0..count)
            .map(|i| json!([(now_ns + u128::from(i)).to_string(), format!("{text} {i}")]))
            .collect()
    };
    let body = json!({"streams": [
        {"stream": {"namespace": "media", "app": "jellyfin"}, "values": lines(150, "level=error msg=\"transcode failed\"")},
        {"stream": {"namespace": "home", "app": "mosquitto"}, "values": lines(50, r#"{"level":"error","msg":"client gone"}"#)},
        {"stream": {"job": "kubelet", "node": "homelab-1"}, "values": lines(1, "Container jellyfin in pod media/jellyfin-0 was OOMKilled")},
        {"stream": {"job": "kubelet", "node": "homelab-2"}, "values": lines(3, "Pod sync succeeded")},
    ]});
    assert_eq!(post(&app, "/loki/api/v1/push", &body).0, 204);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = get_json(&app, "/api/v1/alerts");
        let find = |name: &str, label: &str, value: &str| {
            alerts["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["labels"]["alertname"] == name && a["labels"][label] == value)
                .map(|a| a["state"].as_str().unwrap().to_owned())
        };
        let burst = find("LogErrorBurst", "namespace", "media");
        let oom = find("OOMKillLogged", "node", "homelab-1");
        if burst.is_some() && oom.is_some() {
            assert_eq!(burst.as_deref(), Some("pending"));
            assert_eq!(oom.as_deref(), Some("firing"));
            assert_eq!(find("LogErrorBurst", "namespace", "home"), None);
            assert_eq!(find("OOMKillLogged", "node", "homelab-2"), None);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "built-in log rules did not trigger: {alerts}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
