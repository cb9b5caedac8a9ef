//! Data-driven checks of the notifier's config over `../shared/fixtures/alertmanager` (see
//! fixtures/SOURCES.md): Alertmanager's own examples and kube-prometheus's deployed config,
//! which must load unchanged, and kube-prometheus's routing tree and inhibit rules.

use std::path::{Path, PathBuf};

use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::inhibit::is_inhibited;
use sightline_alerting::notifier::route::GroupBy;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;

/// The shared fixtures, relative to the package root (where cargo runs tests).
const FIXTURES: &str = "../../shared/fixtures/alertmanager";

fn load(name: &str) -> AlertmanagerConfig {
    let path = Path::new(FIXTURES).join(name);
    AlertmanagerConfig::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `.stringData["alertmanager.yaml"]` of a Kubernetes Secret.
fn secret_config(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let secret: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| e.to_string())?;
    secret["stringData"]["alertmanager.yaml"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no stringData[\"alertmanager.yaml\"]".to_owned())
}

#[test]
fn every_fixture_loads() {
    let dir = Path::new(FIXTURES);
    let mut files: Vec<PathBuf> = ["", "kube-prometheus"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(dir.join(sub))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|entry| entry.ok().map(|e| e.path()))
        })
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let is_secret = path.to_string_lossy().ends_with("-secret.yaml");
        let result = if is_secret {
            secret_config(path)
                .and_then(|text| AlertmanagerConfig::parse(path, &text).map_err(|e| e.to_string()))
        } else {
            AlertmanagerConfig::load(path).map_err(|e| e.to_string())
        };
        match result {
            Ok(config) => {
                passed += 1;
                for warning in config.warnings() {
                    eprintln!("warning: {warning}");
                }
            }
            Err(error) => {
                failed += 1;
                failures.push(error);
            }
        }
    }
    eprintln!("alertmanager fixtures: {passed} passed, {failed} failed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(passed, 5, "expected 5 config files (4 yaml + the secret)");
}

#[test]
fn conf_good_warns_about_unsupported_integrations() {
    let config = load("conf.good.yml");
    let warnings: Vec<String> = config.warnings().iter().map(ToString::to_string).collect();
    let path = Path::new(FIXTURES).join("conf.good.yml");
    assert!(
        warnings.contains(&format!(
            "unsupported receiver integration pagerduty_configs in receiver \"team-X-pager\" \
             at {}:93:7; alerts routed there are logged, not sent",
            path.display()
        )),
        "{warnings:#?}"
    );
    assert_eq!(warnings.len(), 6, "{warnings:#?}");
    // Global SMTP settings reach the e-mail configs.
    let mails = config
        .receiver("team-X-mails")
        .unwrap_or_else(|| panic!("receiver"));
    assert_eq!(mails.email_configs[0].smarthost, "localhost:25");
    assert_eq!(mails.email_configs[0].from, "alertmanager@example.org");
    assert_eq!(mails.email_configs[0].hello, "host.example.org");
    assert_eq!(mails.email_configs[0].require_tls, Some(true));
    let pushover = config
        .receiver("pushover-receiver")
        .unwrap_or_else(|| panic!("receiver"));
    assert_eq!(
        pushover.pushover_configs[0].api_url,
        "https://api.pushover.net/1/messages.json"
    );
    assert_eq!(config.templates, ["/etc/alertmanager/template/*.tmpl"]);
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn receivers(config: &AlertmanagerConfig, pairs: &[(&str, &str)]) -> Vec<String> {
    config
        .route
        .matches(&labels(pairs))
        .iter()
        .map(|node| node.receiver().to_owned())
        .collect()
}

#[test]
fn kube_prometheus_routing() {
    let config = load("kube-prometheus/alertmanager.yaml");
    assert_eq!(
        receivers(&config, &[("alertname", "Watchdog")]),
        ["Watchdog"]
    );
    assert_eq!(
        receivers(
            &config,
            &[("alertname", "InfoInhibitor"), ("severity", "none")]
        ),
        ["null"]
    );
    assert_eq!(
        receivers(
            &config,
            &[
                ("alertname", "KubePodCrashLooping"),
                ("severity", "critical")
            ]
        ),
        ["Critical"]
    );
    assert_eq!(
        receivers(
            &config,
            &[("alertname", "KubeCPUOvercommit"), ("severity", "warning")]
        ),
        ["Default"]
    );
    // Every node inherits the root's timings and grouping.
    for node in config.route.nodes() {
        assert_eq!(
            node.opts().group_by,
            GroupBy::Labels(vec!["namespace".into()])
        );
        assert_eq!(node.opts().group_wait, Duration::from_secs(30));
        assert_eq!(node.opts().group_interval, Duration::from_secs(300));
        assert_eq!(node.opts().repeat_interval, Duration::from_secs(12 * 3600));
    }
    let alert = labels(&[
        ("alertname", "KubePodCrashLooping"),
        ("severity", "critical"),
        ("namespace", "media"),
        ("pod", "jellyfin-0"),
    ]);
    let node = config.route.matches(&alert)[0];
    assert_eq!(
        node.group_key(&alert).to_string(),
        r#"{}/{severity="critical"}:{namespace="media"}"#
    );
    assert_eq!(config.global.resolve_timeout, Duration::from_secs(300));
}

#[test]
fn kube_prometheus_inhibition() {
    let config = load("kube-prometheus/alertmanager.yaml");
    let rules = &config.inhibit_rules;
    assert_eq!(rules.len(), 3);
    let critical = labels(&[
        ("alertname", "X"),
        ("namespace", "a"),
        ("severity", "critical"),
    ]);
    let warning = labels(&[
        ("alertname", "X"),
        ("namespace", "a"),
        ("severity", "warning"),
    ]);
    let info = labels(&[("alertname", "X"), ("namespace", "a"), ("severity", "info")]);
    let other_ns = labels(&[
        ("alertname", "X"),
        ("namespace", "b"),
        ("severity", "warning"),
    ]);
    let other_name = labels(&[("alertname", "Y"), ("namespace", "a"), ("severity", "info")]);
    let info_inhibitor = labels(&[("alertname", "InfoInhibitor"), ("namespace", "a")]);

    // Rule 1: critical mutes warning and info of the same alertname and namespace.
    assert!(is_inhibited(rules, [&critical], &warning));
    assert!(is_inhibited(rules, [&critical], &info));
    assert!(!is_inhibited(rules, [&critical], &other_ns));
    assert!(!is_inhibited(rules, [&critical], &critical));
    // Rule 2: warning mutes info.
    assert!(is_inhibited(rules, [&warning], &info));
    assert!(!is_inhibited(rules, [&warning], &other_name));
    // Rule 3: InfoInhibitor mutes every info alert of its namespace.
    assert!(is_inhibited(rules, [&info_inhibitor], &other_name));
    assert!(!is_inhibited(
        rules,
        [&labels(&[
            ("alertname", "InfoInhibitor"),
            ("namespace", "b")
        ])],
        &other_name
    ));
    // Nothing firing, nothing muted; alerts do not mute themselves.
    assert!(!is_inhibited(rules, [], &info));
    assert!(!is_inhibited(rules, [&warning], &warning));
}

#[test]
fn simple_yml_routing_with_continue_and_overrides() {
    let config = load("simple.yml");
    // The database subtree: owner team-X continues to its sibling's check.
    assert_eq!(
        receivers(&config, &[("service", "database"), ("owner", "team-X")]),
        ["team-X-pager"]
    );
    assert_eq!(
        receivers(&config, &[("service", "database"), ("owner", "team-Y")]),
        ["team-Y-pager"]
    );
    assert_eq!(
        receivers(&config, &[("service", "database")]),
        ["team-DB-pager"]
    );
    assert_eq!(
        receivers(&config, &[("service", "foo2"), ("severity", "critical")]),
        ["team-X-pager"]
    );
    assert_eq!(receivers(&config, &[("service", "foo3")]), ["team-X-mails"]);
    let db = config
        .route
        .matches(&labels(&[("service", "database"), ("owner", "team-Y")]))[0];
    assert_eq!(
        db.opts().group_by,
        GroupBy::Labels(vec![
            "alertname".into(),
            "cluster".into(),
            "database".into()
        ])
    );
    assert_eq!(db.opts().repeat_interval, Duration::from_secs(3 * 3600));
    assert_eq!(db.id(), r#"{}/{service="database"}/{owner="team-Y"}/1"#);
}

#[test]
fn conf_good_legacy_match_routes_like_simple_yml() {
    let legacy = load("conf.good.yml");
    let modern = load("simple.yml");
    for alert in [
        vec![("service", "foo1"), ("severity", "critical")],
        vec![("service", "files")],
        vec![("service", "files"), ("severity", "critical")],
        vec![("service", "database"), ("owner", "team-Y")],
        vec![("service", "unknown")],
    ] {
        assert_eq!(
            receivers(&legacy, &alert),
            receivers(&modern, &alert),
            "{alert:?}"
        );
    }
}

#[test]
fn route_labels_are_inherited_and_overridden() {
    let config = load("route_labels.yml");
    let node = config.route.matches(&labels(&[
        ("alertname", "DiskFull"),
        ("service", "database"),
    ]))[0];
    assert_eq!(node.receiver(), "dba");
    assert_eq!(
        node.opts().labels.get("reason").map(String::as_str),
        Some("database {{ .GroupLabels.database }}")
    );
    assert!(
        node.opts()
            .labels
            .get("description")
            .is_some_and(|d| d.contains(r#"routeLabels "reason""#))
    );
}
