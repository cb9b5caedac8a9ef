//! The dispatcher on a clock of the test's own: grouping (`group_by`, `...`), `group_wait`,
//! `group_interval`, `repeat_interval`, `continue`, mute time intervals, inhibition, silences,
//! resolved notifications, and a notification log that survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::alert::PostedAlert;
use sightline_alerting::notifier::dispatch::{Dispatcher, Notification};
use sightline_alerting::notifier::nflog::NotificationLog;
use sightline_alerting::notifier::silence::{SilenceMatcher, SilenceSpec, Silences};
use sightline_core::labels::Labels;

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [severity="page"]
      receiver: pager
      group_by: ['...']
      continue: true
    - matchers: ['severity=~"page|warning"']
      receiver: team
      mute_time_intervals: [weekends]
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warning"]
    equal: [instance]
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday', 'sunday']
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:9/team"}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:9/pager", send_resolved: false}]
"#;

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Monday 2026-11-23 10:00 UTC.
fn monday() -> i64 {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

fn config() -> Arc<AlertmanagerConfig> {
    Arc::new(AlertmanagerConfig::parse(Path::new("am.yml"), CONFIG).unwrap())
}

fn dispatcher() -> Dispatcher {
    Dispatcher::new(
        config(),
        NotificationLog::in_memory(),
        Silences::in_memory(),
    )
}

fn alert(pairs: &[(&str, &str)], starts_at: i64) -> PostedAlert {
    PostedAlert {
        labels: Labels::from_pairs(pairs.iter().copied()),
        annotations: BTreeMap::new(),
        starts_at: Some(starts_at),
        // As Prometheus does, an end well ahead, moved on by every re-send.
        ends_at: Some(starts_at + 24 * HOUR),
        generator_url: String::new(),
    }
}

fn resolved(pairs: &[(&str, &str)], starts_at: i64, ends_at: i64) -> PostedAlert {
    PostedAlert {
        ends_at: Some(ends_at),
        ..alert(pairs, starts_at)
    }
}

/// Flushes at `now`, records every notification as sent, and describes each as
/// `receiver status instance,instance…`.
fn flush(dispatcher: &mut Dispatcher, now: i64) -> Vec<String> {
    let notifications = dispatcher.flush(now);
    for notification in &notifications {
        dispatcher.record(notification);
    }
    notifications.iter().map(describe).collect()
}

fn describe(notification: &Notification) -> String {
    let alerts: Vec<String> = notification
        .alerts
        .iter()
        .map(|alert| {
            let state = if alert.resolved_at(notification.at) {
                "-"
            } else {
                "+"
            };
            format!("{state}{}", alert.labels.get("instance").unwrap_or("?"))
        })
        .collect();
    format!(
        "{} {} {}",
        notification.receiver,
        notification.status(),
        alerts.join(",")
    )
}

#[test]
fn group_wait_interval_and_repeat() {
    let t0 = monday();
    let mut d = dispatcher();
    d.receive(
        vec![alert(&[("alertname", "Disk"), ("instance", "a")], t0)],
        t0,
    );
    assert!(
        flush(&mut d, t0 + 29 * SECOND).is_empty(),
        "group_wait not over"
    );
    assert_eq!(flush(&mut d, t0 + 30 * SECOND), ["team firing +a"]);

    // A second alert joins the group: sent at the next group_interval, not before.
    d.receive(
        vec![alert(
            &[("alertname", "Disk"), ("instance", "b")],
            t0 + 40 * SECOND,
        )],
        t0 + 40 * SECOND,
    );
    assert!(flush(&mut d, t0 + 5 * MINUTE).is_empty());
    assert_eq!(
        flush(&mut d, t0 + 30 * SECOND + 5 * MINUTE),
        ["team firing +a,+b"]
    );

    // Nothing changed: quiet until repeat_interval, while the alerts are re-sent.
    let mut now = t0 + 30 * SECOND + 5 * MINUTE;
    let mut repeated_at = None;
    while now < t0 + 5 * HOUR {
        now += 5 * MINUTE;
        d.receive(
            vec![
                alert(&[("alertname", "Disk"), ("instance", "a")], t0),
                alert(
                    &[("alertname", "Disk"), ("instance", "b")],
                    t0 + 40 * SECOND,
                ),
            ],
            now,
        );
        let sent = flush(&mut d, now);
        if !sent.is_empty() {
            assert_eq!(sent, ["team firing +a,+b"]);
            repeated_at = Some(now);
            break;
        }
    }
    assert_eq!(repeated_at, Some(t0 + 30 * SECOND + 5 * MINUTE + 4 * HOUR));

    // One resolves: the resolved notification lists it, then it leaves the group.
    let at = repeated_at.unwrap() + MINUTE;
    d.receive(
        vec![resolved(
            &[("alertname", "Disk"), ("instance", "b")],
            t0,
            at,
        )],
        at,
    );
    assert_eq!(flush(&mut d, at + 4 * MINUTE), ["team firing +a,-b"]);
    assert_eq!(d.groups()[0].alerts.len(), 1);
    // The other resolves: a last, resolved notification; the group is gone.
    let later = at + 5 * MINUTE;
    d.receive(
        vec![resolved(
            &[("alertname", "Disk"), ("instance", "a")],
            t0,
            later,
        )],
        later,
    );
    assert_eq!(flush(&mut d, later + 4 * MINUTE), ["team resolved -a"]);
    assert!(d.groups().is_empty());
    assert!(d.alerts().is_empty());
}

#[test]
fn an_old_alert_is_sent_without_group_wait() {
    let t0 = monday();
    let mut d = dispatcher();
    d.receive(
        vec![alert(&[("alertname", "Old"), ("instance", "a")], t0 - HOUR)],
        t0,
    );
    assert_eq!(flush(&mut d, t0), ["team firing +a"]);
}

#[test]
fn group_by_all_and_continue_and_send_resolved_off() {
    let t0 = monday();
    let mut d = dispatcher();
    let page = |instance| {
        [
            ("alertname", "Down"),
            ("severity", "page"),
            ("instance", instance),
        ]
    };
    d.receive(vec![alert(&page("a"), t0), alert(&page("b"), t0)], t0);
    let mut sent = flush(&mut d, t0 + 30 * SECOND);
    sent.sort();
    // `...`: one pager group per alert; `continue`: the team route gets them too, in one
    // group by alertname.
    assert_eq!(
        sent,
        ["pager firing +a", "pager firing +b", "team firing +a,+b"]
    );

    // pager has send_resolved: false: a resolved alert is not sent there, team hears of it.
    let at = t0 + MINUTE;
    d.receive(vec![resolved(&page("a"), t0, at)], at);
    let mut sent = flush(&mut d, t0 + 30 * SECOND + 5 * MINUTE);
    sent.sort();
    assert_eq!(sent, ["team firing +b,-a"]);
}

#[test]
fn inhibition_mutes_the_warning_on_the_same_instance_only() {
    let t0 = monday();
    let mut d = dispatcher();
    d.receive(
        vec![
            alert(
                &[
                    ("alertname", "Down"),
                    ("severity", "page"),
                    ("instance", "a"),
                ],
                t0,
            ),
            alert(
                &[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "a"),
                ],
                t0,
            ),
            alert(
                &[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "b"),
                ],
                t0,
            ),
        ],
        t0,
    );
    let mut sent = flush(&mut d, t0 + 30 * SECOND);
    sent.sort();
    assert_eq!(
        sent,
        ["pager firing +a", "team firing +a", "team firing +b"],
        "Slow on a is inhibited by Down on a"
    );
    let slow_a = d
        .alerts()
        .into_iter()
        .find(|a| {
            a.labels.get("alertname") == Some("Slow") && a.labels.get("instance") == Some("a")
        })
        .unwrap();
    assert_eq!(d.muting(&slow_a, t0).inhibited_by.len(), 1);
}

#[test]
fn silence_mutes_until_it_ends() {
    let t0 = monday();
    let mut d = dispatcher();
    d.silences_mut()
        .set(
            SilenceSpec {
                id: None,
                matchers: vec![SilenceMatcher {
                    name: "alertname".to_owned(),
                    value: "Disk".to_owned(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at: t0,
                ends_at: t0 + 10 * MINUTE,
                created_by: "test".to_owned(),
                comment: "disk swap".to_owned(),
            },
            t0,
        )
        .unwrap();
    d.receive(
        vec![alert(&[("alertname", "Disk"), ("instance", "a")], t0)],
        t0,
    );
    assert!(flush(&mut d, t0 + 30 * SECOND).is_empty(), "silenced");
    assert!(
        flush(&mut d, t0 + 30 * SECOND + 5 * MINUTE).is_empty(),
        "still silenced"
    );
    assert_eq!(
        flush(&mut d, t0 + 30 * SECOND + 10 * MINUTE),
        ["team firing +a"],
        "the silence ended"
    );
}

#[test]
fn mute_time_interval_holds_warnings_on_weekends() {
    let saturday = monday() - 2 * 24 * HOUR;
    let mut d = dispatcher();
    let warning = [
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("instance", "a"),
    ];
    d.receive(vec![alert(&warning, saturday)], saturday);
    assert!(
        flush(&mut d, saturday + 30 * SECOND).is_empty(),
        "muted on Saturday"
    );
    let monday = monday();
    d.receive(vec![alert(&warning, monday)], monday);
    let due = d.next_flush().unwrap();
    assert!(due <= monday, "the group kept its schedule");
    assert_eq!(flush(&mut d, monday), ["team firing +a"]);
}

#[test]
fn notification_log_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("nflog.json");
    let t0 = monday();
    let firing = alert(&[("alertname", "Disk"), ("instance", "a")], t0);
    let mut d = Dispatcher::new(config(), NotificationLog::open(&log), Silences::in_memory());
    d.receive(vec![firing.clone()], t0);
    assert_eq!(flush(&mut d, t0 + 30 * SECOND), ["team firing +a"]);
    drop(d);

    // Restarted ten minutes later: the alert comes again, and is not sent again...
    let restart = t0 + 10 * MINUTE;
    let mut d = Dispatcher::new(config(), NotificationLog::open(&log), Silences::in_memory());
    d.receive(vec![firing.clone()], restart);
    assert!(flush(&mut d, restart).is_empty());
    assert!(
        flush(&mut d, restart + 30 * SECOND).is_empty(),
        "no flood after a restart"
    );
    // ...but its resolution is.
    let end = restart + MINUTE;
    d.receive(
        vec![resolved(
            &[("alertname", "Disk"), ("instance", "a")],
            t0,
            end,
        )],
        end,
    );
    assert_eq!(
        flush(&mut d, restart + 30 * SECOND + 5 * MINUTE),
        ["team resolved -a"]
    );
}

#[test]
fn new_config_regroups_without_repeating() {
    let t0 = monday();
    let mut d = dispatcher();
    d.receive(
        vec![alert(&[("alertname", "Disk"), ("instance", "a")], t0)],
        t0,
    );
    assert_eq!(flush(&mut d, t0 + 30 * SECOND), ["team firing +a"]);
    d.set_config(config(), t0 + MINUTE);
    assert_eq!(d.groups().len(), 1);
    assert!(
        flush(&mut d, t0 + 2 * MINUTE).is_empty(),
        "already notified"
    );
}
