//! The notifier's config checks, routing, inhibition and time intervals on small configs
//! written here: a table of broken configs with the exact `file:line:col: message` each
//! gives, and the seed homelab's routing from issue 8.

use std::path::Path;

use chrono::{DateTime, Utc};
use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::route::GroupBy;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;

fn parse(text: &str) -> Result<AlertmanagerConfig, String> {
    AlertmanagerConfig::parse(Path::new("am.yml"), text).map_err(|e| e.to_string())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const RECEIVERS: &str = "receivers:\n  - name: a\n  - name: b\n";

/// Broken configs and the exact error each gives (the whole message).
#[test]
fn bad_configs_name_the_position() {
    let cases: &[(&str, String, &str)] = &[
        (
            "no route",
            RECEIVERS.to_owned(),
            "am.yml:1:1: no route: the config needs a root `route` naming a default receiver",
        ),
        (
            "root without receiver",
            format!("route:\n  group_by: [x]\n{RECEIVERS}"),
            "am.yml:2:3: the root route must name a default receiver",
        ),
        (
            "root with matchers",
            format!("route:\n  receiver: a\n  matchers: ['x=\"y\"']\n{RECEIVERS}"),
            "am.yml:3:13: the root route must not have matchers: it receives every alert",
        ),
        (
            "undefined receiver in a child",
            format!("route:\n  receiver: a\n  routes:\n    - receiver: c\n{RECEIVERS}"),
            "am.yml:4:17: route names receiver \"c\", which is not defined in receivers",
        ),
        (
            "receiver twice",
            "route: {receiver: a}\nreceivers:\n  - name: a\n  - name: a\n".to_owned(),
            "am.yml:4:11: receiver name \"a\" is used twice",
        ),
        (
            "unknown key",
            format!("route:\n  receiver: a\n  group_wiat: 1m\n{RECEIVERS}"),
            "am.yml:3:3: route: unknown field `group_wiat`, expected one of `receiver`, \
             `group_by`, `continue`, `matchers`, `match`, `match_re`, `group_wait`, \
             `group_interval`, `repeat_interval`, `mute_time_intervals`, \
             `active_time_intervals`, `labels`, `routes`",
        ),
        (
            "zero group_interval",
            format!("route:\n  receiver: a\n  routes:\n    - group_interval: 0s\n{RECEIVERS}"),
            "am.yml:4:23: route.routes[0].group_interval: must be greater than zero",
        ),
        (
            "bad duration",
            format!("route:\n  receiver: a\n  repeat_interval: 4 hours\n{RECEIVERS}"),
            "am.yml:3:20: route.repeat_interval: not a valid duration string: \"4 hours\" \
             (use e.g. 30s, 5m, 1h30m, 7d)",
        ),
        (
            "group_by twice",
            format!("route:\n  receiver: a\n  group_by: [alertname, alertname]\n{RECEIVERS}"),
            "am.yml:3:13: route.group_by: group_by lists \"alertname\" twice",
        ),
        (
            "... with others",
            format!("route:\n  receiver: a\n  group_by: ['...', alertname]\n{RECEIVERS}"),
            "am.yml:3:13: route.group_by: group_by: '...' (group by every label) must be the \
             only entry",
        ),
        (
            "bad matcher",
            format!(
                "route:\n  receiver: a\n  routes:\n    - matchers:\n        - severity\n{RECEIVERS}"
            ),
            "am.yml:5:11: route.routes[0].matchers[0]: bad matcher \"severity\": expected one \
             of =, !=, =~, !~ after label name \"severity\"",
        ),
        (
            "bad match_re",
            format!(
                "route:\n  receiver: a\n  routes:\n    - match_re:\n        service: '(foo'\n{RECEIVERS}"
            ),
            "am.yml:5:18: route.routes[0].match_re.service: invalid regular expression \"(foo\" \
             in matcher for label \"\": unclosed group",
        ),
        (
            "undefined time interval",
            format!(
                "route:\n  receiver: a\n  routes:\n    - receiver: b\n      mute_time_intervals: [night]\n{RECEIVERS}"
            ),
            "am.yml:5:29: route names time interval \"night\", which is not defined in \
             time_intervals",
        ),
        (
            "time interval twice",
            format!(
                "route: {{receiver: a}}\n{RECEIVERS}time_intervals:\n  - name: n\n  - name: n\n\
                 mute_time_intervals:\n  - name: n\n"
            ),
            "am.yml:7:11: time interval name \"n\" is used twice\n\
             am.yml:9:11: time interval name \"n\" is used twice",
        ),
        (
            "continue on the root",
            format!("route:\n  receiver: a\n  continue: true\n{RECEIVERS}"),
            "am.yml:3:13: the root route cannot have continue: it has no siblings",
        ),
        (
            "root with mute_time_intervals",
            format!(
                "route:\n  receiver: a\n  mute_time_intervals: [n]\n{RECEIVERS}time_intervals:\n  - name: n\n"
            ),
            "am.yml:3:24: the root route must not have mute_time_intervals",
        ),
        (
            "time across midnight",
            format!(
                "route: {{receiver: a}}\n{RECEIVERS}time_intervals:\n  - name: night\n    \
                 time_intervals:\n      - times:\n          - start_time: '22:00'\n            \
                 end_time: '06:00'\n"
            ),
            "am.yml:9:13: time_intervals[0].time_intervals[0].times[0]: start_time 22:00 is \
             not before end_time 06:00; a range cannot cross midnight, write two ranges (up to \
             24:00 and from 00:00)",
        ),
        (
            "pushover without token",
            "route: {receiver: p}\nreceivers:\n  - name: p\n    pushover_configs:\n      \
             - user_key: u\n"
                .to_owned(),
            "am.yml:5:9: receivers[0].pushover_configs[0]: one of token or token_file is required",
        ),
        (
            "pushover user_key twice",
            "route: {receiver: p}\nreceivers:\n  - name: p\n    pushover_configs:\n      \
             - {user_key: u, user_key_file: /f, token: t}\n"
                .to_owned(),
            "am.yml:5:9: receivers[0].pushover_configs[0]: at most one of user_key and \
             user_key_file may be set",
        ),
        (
            "email without smarthost",
            "route: {receiver: m}\nreceivers:\n  - name: m\n    email_configs:\n      \
             - to: me@example.org\n        from: am@example.org\n"
                .to_owned(),
            "am.yml:5:9: email config has no smarthost, and global smtp_smarthost is not set",
        ),
        (
            "email without to",
            "global: {smtp_smarthost: 'h:25', smtp_from: f@x}\nroute: {receiver: m}\n\
             receivers:\n  - name: m\n    email_configs:\n      - send_resolved: true\n"
                .to_owned(),
            "am.yml:6:9: receivers[0].email_configs[0]: `to` is required: the address to send to",
        ),
        (
            "smarthost without port",
            "global: {smtp_smarthost: 'mail.example.org'}\nroute: {receiver: a}\n\
             receivers:\n  - name: a\n"
                .to_owned(),
            "am.yml:1:9: global: smtp_smarthost \"mail.example.org\" must be host:port",
        ),
        (
            "telegram without chat_id",
            "route: {receiver: t}\nreceivers:\n  - name: t\n    telegram_configs:\n      \
             - bot_token: x\n"
                .to_owned(),
            "am.yml:5:9: receivers[0].telegram_configs[0]: chat_id is required",
        ),
        (
            "telegram bad parse_mode",
            "route: {receiver: t}\nreceivers:\n  - name: t\n    telegram_configs:\n      \
             - {bot_token: x, chat_id: 1, parse_mode: markdown}\n"
                .to_owned(),
            "am.yml:5:9: receivers[0].telegram_configs[0]: parse_mode \"markdown\" is not one \
             of Markdown, MarkdownV2, HTML or empty",
        ),
        (
            "telegram without token anywhere",
            "route: {receiver: t}\nreceivers:\n  - name: t\n    telegram_configs:\n      \
             - chat_id: 1\n"
                .to_owned(),
            "am.yml:5:9: telegram config has no bot_token or bot_token_file, and global \
             telegram_bot_token is not set",
        ),
        (
            "webhook without scheme",
            "route: {receiver: w}\nreceivers:\n  - name: w\n    webhook_configs:\n      \
             - url: example.org/hook\n"
                .to_owned(),
            "am.yml:5:9: receivers[0].webhook_configs[0]: url \"example.org/hook\" must start \
             with http:// or https://",
        ),
        (
            "receiver without name",
            "route: {receiver: a}\nreceivers:\n  - name: ''\n".to_owned(),
            "am.yml:3:5: receivers[0]: a receiver needs a name",
        ),
        (
            "unknown integration key",
            "route: {receiver: a}\nreceivers:\n  - name: a\n    slack_config: []\n".to_owned(),
            "am.yml:4:5: receivers[0]: unknown field `slack_config`, expected one of `name`, \
             `pushover_configs`, `telegram_configs`, `webhook_configs`, `email_configs`, \
             `discord_configs`, `incidentio_configs`, `jira_configs`, `mattermost_configs`, \
             `msteams_configs`, `msteamsv2_configs`, `opsgenie_configs`, `pagerduty_configs`, \
             `rocketchat_configs`, `slack_configs`, `sns_configs`, `victorops_configs`, \
             `webex_configs`, `wechat_configs`",
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, expected) in cases {
        match parse(text) {
            Ok(_) => failures.push(format!("{name}: loaded, expected {expected}")),
            Err(error) if error != *expected => failures.push(format!(
                "{name}:\n  got      {error}\n  expected {expected}"
            )),
            Err(_) => {}
        }
    }
    eprintln!(
        "bad alertmanager configs: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The seed homelab's routing (issue 8): critical alerts to Pushover priority 1, warnings to
/// Pushover priority 0 outside quiet hours, Watchdog to a receiver that sends nothing.
const SEED: &str = r#"
route:
  receiver: pushover-warning
  group_by: [alertname, namespace]
  routes:
    - matchers: [alertname="Watchdog"]
      receiver: "null"
      repeat_interval: 1m
    - matchers: [severity="critical"]
      receiver: pushover-critical
      group_wait: 10s
    - matchers: ['severity =~ "warning|info"']
      receiver: pushover-warning
      mute_time_intervals: [quiet-hours]
time_intervals:
  - name: quiet-hours
    time_intervals:
      - times:
          - {start_time: '22:00', end_time: '24:00'}
          - {start_time: '00:00', end_time: '07:30'}
        location: Europe/Berlin
receivers:
  - name: "null"
  - name: pushover-critical
    pushover_configs:
      - user_key_file: /secrets/pushover-user
        token_file: /secrets/pushover-token
        priority: 1
        api_url: http://127.0.0.1:8099/1/messages.json
  - name: pushover-warning
    pushover_configs:
      - user_key: u
        token: t
        priority: '0'
        title: '{{ .CommonLabels.alertname }}'
"#;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn seed_homelab_routing() {
    let config = parse(SEED).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings().is_empty());
    let route_of = |pairs: &[(&str, &str)]| {
        let found = config.route.matches(&labels(pairs));
        assert_eq!(found.len(), 1);
        found[0]
    };
    let watchdog = route_of(&[("alertname", "Watchdog"), ("severity", "none")]);
    assert_eq!(watchdog.receiver(), "null");
    assert!(config.receiver("null").is_some_and(|r| r.sends_nothing()));

    let critical = route_of(&[("alertname", "NodeDown"), ("severity", "critical")]);
    let receiver = config
        .receiver(critical.receiver())
        .unwrap_or_else(|| panic!("receiver"));
    assert_eq!(receiver.pushover_configs[0].priority, "1");
    assert_eq!(
        receiver.pushover_configs[0].api_url,
        "http://127.0.0.1:8099/1/messages.json"
    );
    assert_eq!(critical.opts().group_wait, Duration::from_secs(10));
    assert_eq!(critical.opts().group_interval, Duration::from_secs(300));
    assert_eq!(
        critical.opts().repeat_interval,
        Duration::from_secs(4 * 3600)
    );

    let warning = route_of(&[("alertname", "DiskFilling"), ("severity", "warning")]);
    let receiver = config
        .receiver(warning.receiver())
        .unwrap_or_else(|| panic!("receiver"));
    assert_eq!(receiver.pushover_configs[0].priority, "0");
    assert_eq!(receiver.pushover_configs[0].retry, Duration::from_secs(60));
    // Quiet hours are 22:00–07:30 in Berlin (UTC+1 in November).
    assert!(!config.route_active_at(warning.opts(), &at("2026-11-22T22:30:00Z")));
    assert!(!config.route_active_at(warning.opts(), &at("2026-11-22T06:00:00Z")));
    assert!(config.route_active_at(warning.opts(), &at("2026-11-22T06:30:00Z")));
    assert!(config.route_active_at(warning.opts(), &at("2026-11-22T20:59:00Z")));
    assert!(!config.route_active_at(warning.opts(), &at("2026-11-22T21:00:00Z")));
    // Critical alerts are never muted.
    assert!(config.route_active_at(critical.opts(), &at("2026-11-22T22:30:00Z")));
}

#[test]
fn continue_and_nested_inheritance() {
    let config = parse(
        r#"
route:
  receiver: root
  group_by: [alertname]
  group_wait: 1s
  routes:
    - matchers: ['team="infra"']
      receiver: infra
      continue: true
      group_by: ['...']
      routes:
        - matchers: ['severity="critical"']
          receiver: infra-pager
          repeat_interval: 1h
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['team=~"infra|db"']
      receiver: ops
    - receiver: never
receivers: [{name: root}, {name: infra}, {name: infra-pager}, {name: pager}, {name: ops}, {name: never}]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names = |pairs: &[(&str, &str)]| -> Vec<String> {
        config
            .route
            .matches(&labels(pairs))
            .iter()
            .map(|n| n.receiver().to_owned())
            .collect()
    };
    assert_eq!(
        names(&[("team", "infra"), ("severity", "critical")]),
        ["infra-pager", "pager", "ops"]
    );
    assert_eq!(names(&[("team", "infra")]), ["infra", "ops"]);
    assert_eq!(names(&[("team", "web")]), ["never"]);
    assert_eq!(
        names(&[("team", "db"), ("severity", "critical")]),
        ["pager", "ops"]
    );

    let alert = labels(&[
        ("team", "infra"),
        ("severity", "critical"),
        ("alertname", "X"),
    ]);
    let found = config.route.matches(&alert);
    let nested = found[0];
    assert_eq!(nested.opts().group_by, GroupBy::All);
    assert_eq!(nested.opts().group_wait, Duration::from_secs(1));
    assert_eq!(nested.opts().repeat_interval, Duration::from_secs(3600));
    assert_eq!(nested.group_labels(&alert), alert);
    let pager = found[1];
    assert_eq!(
        pager.opts().group_by,
        GroupBy::Labels(vec!["alertname".into()])
    );
    assert_eq!(pager.group_labels(&alert), labels(&[("alertname", "X")]));
    assert_eq!(
        pager.group_key(&alert).to_string(),
        r#"{}/{severity="critical"}:{alertname="X"}"#
    );
    // A group_by label the alert lacks is left out.
    assert_eq!(
        pager.group_labels(&labels(&[("severity", "critical")])),
        Labels::new()
    );
}

#[test]
fn deprecated_inhibit_keys_and_the_two_sided_case() {
    let config = parse(
        r#"
route: {receiver: a}
receivers: [{name: a}]
inhibit_rules:
  - source_match: {severity: critical}
    target_match_re: {severity: 'warning|critical'}
    equal: [cluster]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rules = &config.inhibit_rules;
    let critical_a = labels(&[("alertname", "A"), ("severity", "critical")]);
    let critical_b = labels(&[("alertname", "B"), ("severity", "critical")]);
    let warning = labels(&[("alertname", "C"), ("severity", "warning")]);
    use sightline_alerting::notifier::inhibit::is_inhibited;
    // `cluster` is missing on both sides: equal.
    assert!(is_inhibited(rules, [&critical_a], &warning));
    // A critical alert matches both sides, so other two-sided alerts do not mute it.
    assert!(!is_inhibited(
        rules,
        [&critical_a, &critical_b],
        &critical_b
    ));
    assert!(!is_inhibited(
        rules,
        [&labels(&[("severity", "critical"), ("cluster", "x")])],
        &warning
    ));
}

#[test]
fn time_interval_weekdays_and_negative_days() {
    let config = parse(
        r#"
route:
  receiver: a
  routes:
    - receiver: a
      active_time_intervals: [office]
      mute_time_intervals: [month-end]
receivers: [{name: a}]
time_intervals:
  - name: office
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '17:00'}]
mute_time_intervals:
  - name: month-end
    time_intervals:
      - days_of_month: ['-2:-1']
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let node = config.route.root().routes()[0].opts();
    assert!(config.route_active_at(node, &at("2026-11-20T10:00:00Z"))); // Friday 20th
    assert!(!config.route_active_at(node, &at("2026-11-21T10:00:00Z"))); // Saturday
    assert!(!config.route_active_at(node, &at("2026-11-20T08:59:00Z")));
    assert!(!config.route_active_at(node, &at("2026-11-30T10:00:00Z"))); // Monday, last day
    assert!(config.route_active_at(node, &at("2026-11-27T10:00:00Z"))); // Friday 27th
    assert!(!config.route_active_at(node, &at("2026-12-31T10:00:00Z"))); // Thursday, last
    assert!(config.route_active_at(node, &at("2026-12-29T10:00:00Z")));
    assert_eq!(config.time_intervals.len(), 2);
}

#[test]
fn inline_section_of_a_larger_file() {
    let text = "storage:\n  path: /data\nalertmanager:\n  route:\n    receiver: a\n    \
                routes:\n      - receiver: b\n        group_by:\n  receivers: [{name: a}]\n";
    let error = AlertmanagerConfig::parse_inline(Path::new("sightline.yml"), text)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("sightline.yml:7:19: route names receiver \"b\", which is not defined in receivers")
    );
    let text = text.replace("[{name: a}]", "[{name: a}, {name: b}]");
    let config = AlertmanagerConfig::parse_inline(Path::new("sightline.yml"), &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no alertmanager section"));
    assert_eq!(config.route.root().routes()[0].receiver(), "b");
    let bad = "alertmanager:\n  route: {receiver: a, group_wait: soon}\n";
    let error = AlertmanagerConfig::parse_inline(Path::new("s.yml"), bad)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "s.yml:2:36: alertmanager.route.group_wait: not a valid duration string: \"soon\" \
             (use e.g. 30s, 5m, 1h30m, 7d)"
        )
    );
    assert!(
        AlertmanagerConfig::parse_inline(Path::new("s.yml"), "storage: {}\n")
            .is_ok_and(|c| c.is_none())
    );
}

#[test]
fn empty_group_by_inherits() {
    let config = parse(
        "route:\n  receiver: a\n  group_by: [alertname]\n  routes:\n    - receiver: a\n      \
         group_by:\n    - receiver: a\n      group_by: []\nreceivers: [{name: a}]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let routes = config.route.root().routes();
    assert_eq!(
        routes[0].opts().group_by,
        GroupBy::Labels(vec!["alertname".into()])
    );
    // As in Alertmanager, `[]` is no setting either.
    assert_eq!(
        routes[1].opts().group_by,
        GroupBy::Labels(vec!["alertname".into()])
    );
}
