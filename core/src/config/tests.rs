use std::path::Path;

use super::*;
use crate::config::relabel::RelabelAction;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("sightline.yml"), text).map_err(|error| error.to_string())
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(message) => message,
    }
}

#[test]
fn embedded_default_scrapes_itself_every_15s_and_keeps_7_days() {
    let config = Config::embedded_default().unwrap();
    let job = &config.scrape_configs[0];
    assert_eq!(job.job_name, "sightline");
    assert_eq!(job.static_configs[0].targets, ["127.0.0.1:9090"]);
    assert_eq!(job.scrape_interval.to_string(), "15s");
    assert_eq!(job.scrape_timeout.to_string(), "10s");
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(config.storage.metrics.retention.to_string(), "1w");
    assert_eq!(config.storage.logs.retention.to_string(), "1w");
    assert_eq!(config.storage.path.as_deref(), Some(Path::new("./data")));
    assert_eq!(config.storage.wal_sync.to_string(), "1s");
    assert_eq!(
        config.web.listen,
        [std::net::SocketAddr::from(([127, 0, 0, 1], 9090))]
    );
}

#[test]
fn empty_file_is_all_defaults() {
    let config = parse("# nothing here\n").unwrap();
    assert_eq!(config.global.scrape_interval.to_string(), "1m");
    assert_eq!(config.global.scrape_timeout.to_string(), "10s");
    assert!(config.scrape_configs.is_empty());
    assert_eq!(config.limits.request_body_size.to_string(), "32MiB");
}

/// A configuration in the shape Prometheus users run, with every section Sightline reads.
const PROMETHEUS_STYLE: &str = r#"
global:
  scrape_interval: 30s
  evaluation_interval: 30s
  sample_limit: 50000
  external_labels:
    cluster: homelab
rule_files:
  - rules/*.yaml
scrape_configs:
  - job_name: node
    scrape_interval: 5s
    static_configs:
      - targets: ['127.0.0.1:9100']
        labels: {role: host}
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
        namespaces: {names: [default, monitoring]}
        selectors:
          - role: pod
            label: "app=web"
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: '([^:]+)(?::\d+)?;(\d+)'
        replacement: $1:$2
        target_label: __address__
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_gc_.*
        action: drop
  - job_name: files
    scheme: https
    sample_limit: 10
    body_size_limit: 10MB
    authorization: {credentials_file: /var/run/token}
    tls_config: {ca_file: /etc/ca.pem, insecure_skip_verify: false}
    file_sd_configs:
      - files: ['targets/*.json']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:9093']
storage:
  wal_sync: 0s
  metrics: {retention: 30d, retention_size: 20GiB}
web:
  listen: ['0.0.0.0:9090', '[::1]:9091']
  external_url: https://lab.example/sightline/
"#;

#[test]
fn prometheus_style_config_loads_with_inheritance() {
    let config = parse(PROMETHEUS_STYLE).unwrap();
    let [node, pods, files] = &config.scrape_configs[..] else {
        panic!("three jobs expected")
    };
    assert_eq!(
        (
            node.scrape_interval.to_string(),
            node.scrape_timeout.to_string()
        ),
        ("5s".into(), "5s".into())
    );
    assert_eq!(pods.scrape_interval.to_string(), "30s");
    assert_eq!(pods.scrape_timeout.to_string(), "10s");
    assert_eq!(pods.sample_limit, 50_000, "inherited from global");
    assert_eq!(files.sample_limit, 10, "own value wins");
    assert_eq!(files.body_size_limit.bytes(), 10 << 20);
    assert_eq!(pods.relabel_configs[0].action, RelabelAction::Keep);
    let address = &pods.relabel_configs[1];
    assert!(
        address
            .regex
            .as_ref()
            .unwrap()
            .regex()
            .is_match("10.0.0.1:80;8080")
    );
    assert!(
        !address
            .regex
            .as_ref()
            .unwrap()
            .regex()
            .is_match("x10.0.0.1;8080;"),
        "anchored"
    );
    assert_eq!(config.global.external_labels["cluster"], "homelab");
    assert_eq!(config.storage.metrics.retention_size.bytes(), 20 << 30);
    assert!(config.storage.wal_sync.is_zero());
    assert_eq!(config.web.route_prefix(), "/sightline");
    assert_eq!(
        config.alerting.alertmanagers[0].static_configs[0].targets,
        ["127.0.0.1:9093"]
    );
}

#[test]
fn rule_file_patterns_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for name in ["b.yaml", "a.yaml", "c.txt"] {
        std::fs::write(dir.path().join("rules").join(name), "groups: []\n").unwrap();
    }
    let config = parse("rule_files: ['rules/*.yaml']\n").unwrap();
    let paths = config.rule_file_paths(dir.path());
    assert_eq!(
        paths,
        [
            dir.path().join("rules/a.yaml"),
            dir.path().join("rules/b.yaml")
        ]
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "global:\n  scrape_interval: 15s\nscrape_config: []\n",
            "sightline.yml:3:1: unknown field `scrape_config`, expected one of",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
            "sightline.yml:3:5: scrape_configs[0]: unknown field `scrape_intervall`",
        ),
        (
            "global:\n  scrape_interval: 15\n",
            "sightline.yml:2:20: global.scrape_interval: not a valid duration string: \"15\"",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        action: replace\n",
            "sightline.yml:4:9: scrape_configs[0].relabel_configs[0]: relabel configuration for replace action requires 'target_label' value",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: '(unclosed'\n        action: labeldrop\n",
            "sightline.yml:4:16: scrape_configs[0].relabel_configs[0].regex: invalid regex \"(unclosed\"",
        ),
        (
            "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
            "sightline.yml:2:3: scrape_configs: found multiple scrape configs with job name \"a\"",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            "sightline.yml:2:5: scrape_configs[0]: scrape timeout greater than scrape interval for scrape config with job name \"a\"",
        ),
        (
            "global:\n  scrape_timeout: 20s\n  scrape_interval: 15s\n",
            "sightline.yml:2:3: global: global scrape timeout greater than scrape interval",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['*/x.json']\n",
            "sightline.yml:4:9: scrape_configs[0].file_sd_configs[0]: path name \"*/x.json\" is not valid for file discovery",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pods\n",
            "sightline.yml:4:15: scrape_configs[0].kubernetes_sd_configs[0].role: unknown variant `pods`",
        ),
        (
            "web:\n  auth:\n    basic_auth_users: {admin: secret}\n",
            "sightline.yml:3:5: web.auth: basic_auth_users: the password of \"admin\" must be a bcrypt hash",
        ),
        (
            "web:\n  auth:\n    viewers: [bob]\n",
            "sightline.yml:3:5: web.auth: viewers: \"bob\" is not one of basic_auth_users",
        ),
        (
            "web:\n  auth:\n    bearer_tokens: [{token: short, role: push}]\n",
            "sightline.yml:3:5: web.auth: bearer_tokens[0]: a token needs at least 16 characters",
        ),
        (
            "web:\n  auth:\n    bearer_tokens: [{token: 0123456789abcdef, role: root}]\n",
            "sightline.yml:3:53: web.auth.bearer_tokens[0].role: unknown variant `root`, expected one of `viewer`, `admin`, `push`",
        ),
        (
            "web:\n  listen: ['localhost']\n",
            "sightline.yml:2:12: web.listen[0]: invalid socket address syntax",
        ),
        (
            "log_collection:\n  files:\n    - paths: ['/var/log/[x.log']\n",
            "sightline.yml:3:7: log_collection.files[0]: bad glob \"/var/log/[x.log\"",
        ),
        (
            "log_collection:\n  drop:\n    - expression: '(unclosed'\n",
            "sightline.yml:3:7: log_collection.drop[0]: expression: bad regex",
        ),
        (
            "log_collection:\n  relabel_configs:\n    - action: replace\n      source_labels: [pod]\n",
            "sightline.yml:3:7: log_collection.relabel_configs[0]: relabel configuration for replace action requires 'target_label' value",
        ),
        (
            "storage:\n  logs: {retention: 0s}\n",
            "sightline.yml:2:9: storage.logs: retention must be longer than 0s",
        ),
        (
            "storage:\n  metrics:\n    retention_overrides:\n      - matchers: '{job=\"node\"'\n        retention: 30d\n",
            "sightline.yml:4:19: storage.metrics.retention_overrides[0].matchers: invalid series selector",
        ),
        (
            "storage:\n  metrics:\n    retention_overrides:\n      - {matchers: 'up', retention: 30d}\n      - {matchers: 'rate(up[5m])', retention: 2d}\n",
            "sightline.yml:5:20: storage.metrics.retention_overrides[1].matchers: \"rate(up[5m])\" is not a series selector",
        ),
        (
            "storage:\n  metrics:\n    retention_overrides:\n      - matchers: '{job=\"node\"}'\n        retention: 30 days\n",
            "sightline.yml:5:20: storage.metrics.retention_overrides[0].retention: not a valid duration string: \"30 days\"",
        ),
        (
            "storage:\n  metrics:\n    retention_overrides:\n      - {matchers: 'up', retention: 0s}\n",
            "sightline.yml:4:9: storage.metrics.retention_overrides[0]: retention must be longer than 0s",
        ),
        (
            "storage:\n  metrics:\n    block_range: 7m\n",
            "sightline.yml:3:5: storage.metrics: block_range must be at least 1m and divide 24h evenly",
        ),
        (
            "rule_files: ['rules/[x.yaml']\n",
            "sightline.yml:1:14: rule_files[0]: invalid rule file path \"rules/[x.yaml\"",
        ),
        (
            "kubernetes:\n  monitor_selectr: {release: x}\n",
            "sightline.yml:2:3: kubernetes: unknown field `monitor_selectr`",
        ),
        (
            "kubernetes:\n  monitor_selector: {release: 'a b'}\n",
            "sightline.yml:2:3: kubernetes: monitor_selector release: \"a b\" is not a valid Kubernetes label",
        ),
        (
            "global:\n  scrape_interval: \"15s\n",
            "sightline.yml:3:1: found unexpected end of stream, while scanning a quoted scalar at line 2 column 20",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(text);
        assert!(
            message.starts_with(expected),
            "for {text:?}\n  got: {message}\n want: {expected}…"
        );
    }
}

#[test]
fn inherited_timeout_above_interval_names_the_job() {
    let message = error_of(
        "global:\n  scrape_interval: 1m\n  scrape_timeout: 30s\nscrape_configs:\n  - job_name: fast\n    scrape_interval: 10s\n    scrape_timeout: 20s\n",
    );
    assert!(
        message.contains("scrape timeout greater than scrape interval"),
        "{message}"
    );
    let inherited = parse("global:\n  scrape_interval: 1m\n  scrape_timeout: 30s\nscrape_configs:\n  - job_name: fast\n    scrape_interval: 10s\n").unwrap();
    assert_eq!(
        inherited.scrape_configs[0].scrape_timeout.to_string(),
        "10s",
        "capped at the job's interval"
    );
}

#[test]
fn store_reload_keeps_old_config_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sightline.yml");
    std::fs::write(&path, "global:\n  scrape_interval: 20s\n").unwrap();
    let store = ConfigStore::open(ConfigSource::File(path.clone())).unwrap();
    let mut updates = store.subscribe();
    assert_eq!(store.current().global.scrape_interval.to_string(), "20s");

    std::fs::write(&path, "global:\n  scrape_interval: 40s\n").unwrap();
    store.reload().unwrap();
    assert!(updates.has_changed().unwrap());
    assert_eq!(
        updates
            .borrow_and_update()
            .global
            .scrape_interval
            .to_string(),
        "40s"
    );

    std::fs::write(&path, "global:\n  scrape_interval: nope\n").unwrap();
    let error = store.reload().unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("{}:2:20: ", path.display())),
        "{error}"
    );
    assert!(!updates.has_changed().unwrap());
    assert_eq!(store.current().global.scrape_interval.to_string(), "40s");
}

#[test]
fn kubernetes_section_reads_the_monitor_selector() {
    let config = Config::parse(
        Path::new("sightline.yml"),
        "kubernetes:\n  monitor_selector: {release: kube-prometheus-stack, team: ops}\n  namespaces: [monitoring]\n",
    )
    .unwrap();
    let kubernetes = config.kubernetes.unwrap();
    assert_eq!(
        kubernetes.label_selector().as_deref(),
        Some("release=kube-prometheus-stack,team=ops")
    );
    assert_eq!(kubernetes.namespaces, ["monitoring"]);
    assert!(
        Config::parse(Path::new("s.yml"), "web: {}\n")
            .unwrap()
            .kubernetes
            .is_none()
    );
}

#[test]
fn metric_retention_overrides_keep_their_order_and_selectors() {
    let config = parse(
        r#"
storage:
  metrics:
    retention: 7d
    block_range: 5m
    retention_overrides:
      - matchers: '{job="node"}'
        retention: 30d
      - matchers: '{__name__=~"apiserver_.*"}'
        retention: 2d
"#,
    )
    .unwrap();
    let metrics = &config.storage.metrics;
    assert_eq!(metrics.block_range.to_string(), "5m");
    let shown: Vec<(String, u64)> = metrics
        .retention_overrides
        .iter()
        .map(|o| (o.matchers.to_string(), o.retention.as_millis() / 86_400_000))
        .collect();
    assert_eq!(
        shown,
        [
            (r#"{job="node"}"#.to_owned(), 30),
            (r#"{__name__=~"apiserver_.*"}"#.to_owned(), 2)
        ]
    );
    let matcher = &metrics.retention_overrides[1].matchers.matchers()[0];
    assert!(matcher.matches("apiserver_request_total") && !matcher.matches("up"));
    assert!(
        parse("")
            .unwrap()
            .storage
            .metrics
            .retention_overrides
            .is_empty()
    );
    assert_eq!(
        parse("").unwrap().storage.metrics.block_range.to_string(),
        "2h"
    );
}

#[test]
fn query_section_sets_engine_limits_and_refuses_zero() {
    let defaults = parse("").unwrap().query;
    assert_eq!(defaults.max_samples, 50_000_000);
    assert_eq!(defaults.timeout.to_string(), "2m");
    assert_eq!(defaults.max_concurrency, 20);
    assert_eq!(defaults.lookback_delta.to_string(), "5m");

    let config = parse(
        "query:\n  max_samples: 1000\n  timeout: 30s\n  max_concurrency: 4\n  lookback_delta: 1m\n",
    )
    .unwrap();
    assert_eq!(config.query.max_samples, 1000);
    assert_eq!(config.query.timeout.to_string(), "30s");
    assert_eq!(config.query.max_concurrency, 4);
    assert_eq!(config.query.lookback_delta.to_string(), "1m");

    let error = error_of("query:\n  max_concurrency: 0\n");
    assert!(
        error.contains("max_concurrency must be at least 1"),
        "{error}"
    );
    let error = error_of("query:\n  timeout: 0s\n");
    assert!(error.contains("timeout must be longer than 0s"), "{error}");
    let error = error_of("query:\n  max_sample: 10\n");
    assert!(error.contains("max_sample"), "{error}");
}

#[test]
fn alertmanager_inline_and_file_keys_are_accepted_and_exclusive() {
    let inline = parse("alertmanager:\n  route:\n    receiver: x\n").unwrap();
    assert!(inline.alertmanager.is_some());
    let file = parse("alertmanager_config_file: am/alertmanager.yml\n").unwrap();
    assert_eq!(
        file.alertmanager_config_path(Path::new("/etc/sightline")),
        Some(Path::new("/etc/sightline/am/alertmanager.yml").to_owned())
    );
    let both =
        error_of("alertmanager_config_file: am.yml\nalertmanager:\n  route:\n    receiver: x\n");
    assert!(
        both.starts_with("sightline.yml:2:1: alertmanager and alertmanager_config_file"),
        "{both}"
    );
}

#[test]
fn remote_write_entries_are_read_with_prometheus_defaults_and_checked() {
    let config = parse(
        "remote_write:\n  - url: http://mimir:8080/api/v1/push\n    headers: {X-Scope-OrgID: lab}\n    queue_config: {max_shards: 4}\n",
    )
    .unwrap();
    let entry = &config.remote_write[0];
    assert_eq!(entry.queue_name(), "mimir:8080/api/v1/push");
    assert_eq!(entry.queue_config.max_shards, 4);
    assert_eq!(entry.queue_config.min_shards, 1);
    assert_eq!(entry.queue_config.max_samples_per_send, 2000);
    assert_eq!(entry.queue_config.batch_send_deadline.as_millis(), 5000);
    assert!(entry.metadata_config.send);
    assert_eq!(entry.remote_timeout.as_millis(), 30_000);

    let cases: &[(&str, &str)] = &[
        (
            "remote_write:\n  - url: ftp://x/\n",
            "sightline.yml:2:5: remote_write[0]: url ftp://x/ must be http or https",
        ),
        (
            "remote_write:\n  - url: http://x/\n    headers: {Content-Type: text/plain}\n",
            "sightline.yml:2:5: remote_write[0]: header \"Content-Type\" is set by remote write and cannot be configured",
        ),
        (
            "remote_write:\n  - url: http://x/\n    queue_config: {min_shards: 5, max_shards: 2}\n",
            "sightline.yml:3:19: remote_write[0].queue_config: min_shards (5) must be at least 1 and at most max_shards (2)",
        ),
        (
            "remote_write:\n  - url: http://x/a\n  - url: http://x/a\n",
            "sightline.yml:2:3: remote_write: found multiple remote_write entries named \"x/a\"; give each a unique name",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&error_of(text), expected, "{text}");
    }
}

#[test]
fn log_forward_entries_are_read_with_alloy_defaults_and_checked() {
    let config = parse(
        "logs:\n  forward:\n    - url: http://loki:3100/loki/api/v1/push\n      tenant_id: lab\n      external_labels: {cluster: home}\n      batch_size: 256KiB\n",
    )
    .unwrap();
    let entry = &config.logs.forward[0];
    assert_eq!(entry.queue_name(), "loki:3100/loki/api/v1/push");
    assert_eq!(entry.tenant_id, "lab");
    assert_eq!(entry.batch_size.bytes(), 256 << 10);
    assert_eq!(entry.batch_wait.as_millis(), 1000);
    assert_eq!(entry.min_backoff_period.as_millis(), 500);
    assert_eq!(entry.max_backoff_period.as_millis(), 300_000);
    assert_eq!(entry.remote_timeout.as_millis(), 10_000);
    assert!(entry.retry_on_http_429);
    assert_eq!(entry.max_backlog.bytes(), 1 << 30);
    assert_eq!(entry.external_labels["cluster"], "home");

    let cases: &[(&str, &str)] = &[
        (
            "logs:\n  forward:\n    - url: ftp://x/\n",
            "sightline.yml:3:7: logs.forward[0]: url ftp://x/ must be http or https",
        ),
        (
            "logs:\n  forward:\n    - url: http://x/\n      headers: {X-Scope-OrgID: a}\n",
            "sightline.yml:3:7: logs.forward[0]: header \"X-Scope-OrgID\" is set by the push itself (X-Scope-OrgID by tenant_id) and cannot be configured",
        ),
        (
            "logs:\n  forward:\n    - url: http://x/\n      min_backoff_period: 1m\n      max_backoff_period: 1s\n",
            "sightline.yml:3:7: logs.forward[0]: min_backoff_period must not exceed max_backoff_period",
        ),
        (
            "logs:\n  forward:\n    - url: http://x/a\n      name: b\n    - url: http://y/\n      name: b\n",
            "sightline.yml:3:5: logs.forward: found multiple logs.forward entries named \"b\"; give each a unique name",
        ),
        (
            "logs:\n  forwards: []\n",
            "sightline.yml:2:3: logs: unknown field `forwards`, expected `forward`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&error_of(text), expected, "{text}");
    }
}
