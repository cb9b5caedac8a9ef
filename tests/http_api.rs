//! The Prometheus HTTP API beyond queries, over real HTTP on 127.0.0.1: metadata, status,
//! `format_query`, `/federate` (read by our own exposition parser and by the real Debian
//! `prometheus` binary), the remote-write receiver (real snappy + protobuf bodies, and the
//! real `prometheus` remote-writing to Sightline), and a replay of the requests Grafana's
//! Prometheus data source makes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    Appliance, free_port, get_json, http, remote_write, remote_write_body as write_body,
    scraping_appliance, scraping_appliance_with, write_file,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sightline_scraper::exposition::{Entry, Format, Parser};

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn post_form(app: &Appliance, path: &str, pairs: &[(&str, &str)]) -> Value {
    let response = http()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .unwrap();
    let text = response.text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}: {text}"))
}

/// Polls `path` until `done` holds for its JSON, for at most `limit`.
fn wait_json(app: &Appliance, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let value = get_json(app, path);
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {value}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn error_of(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!(text)),
    )
}

#[test]
fn metadata_from_the_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance(dir.path());
    let all = wait_json(&app, "/api/v1/metadata", Duration::from_secs(10), |v| {
        v["data"]["process_resident_memory_bytes"].is_array()
    });
    assert_eq!(all["status"], "success");
    assert_eq!(
        all["data"]["process_resident_memory_bytes"],
        json!([{"type": "gauge", "help": "Resident memory size in bytes.", "unit": ""}])
    );
    assert_eq!(
        all["data"]["sightline_http_requests_total"][0]["type"],
        "counter"
    );
    assert!(all["data"].get("up").is_none(), "up has no metadata: {all}");

    let one = get_json(
        &app,
        "/api/v1/metadata?metric=process_resident_memory_bytes",
    );
    assert_eq!(one["data"].as_object().unwrap().len(), 1, "{one}");
    let limited = get_json(&app, "/api/v1/metadata?limit=2&limit_per_metric=1");
    assert_eq!(limited["data"].as_object().unwrap().len(), 2, "{limited}");
    assert_eq!(
        get_json(&app, "/api/v1/metadata?metric=no_such_metric")["data"],
        json!({})
    );
    let (status, body) = error_of(
        http()
            .get(app.url("/api/v1/metadata?limit=ten"))
            .send()
            .unwrap(),
    );
    assert_eq!((status, &body["errorType"]), (400, &json!("bad_data")));
    assert_eq!(body["error"], "limit must be a number");

    let target = get_json(
        &app,
        "/api/v1/targets/metadata?match_target=%7Bjob%3D%22sightline%22%7D&metric=process_resident_memory_bytes",
    );
    let entries = target["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{target}");
    assert_eq!(entries[0]["target"]["job"], "sightline");
    assert_eq!(entries[0]["type"], "gauge");
    assert!(entries[0].get("metric").is_none(), "{target}");
    let listed = get_json(&app, "/api/v1/targets/metadata?limit=1");
    assert!(listed["data"][0]["metric"].is_string(), "{listed}");
    assert_eq!(
        get_json(
            &app,
            "/api/v1/targets/metadata?match_target=%7Bjob%3D%22other%22%7D"
        )["data"],
        json!([])
    );
    let (status, _) = error_of(
        http()
            .get(app.url("/api/v1/targets/metadata?match_target=%7Bjob%3D"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
}

#[test]
fn status_config_flags_and_runtime_information() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance_with(
        dir.path(),
        "  - job_name: guarded\n    basic_auth: {username: scraper, password: hunter2}\n    static_configs: [{targets: ['127.0.0.1:1']}]\n",
    );
    let config = get_json(&app, "/api/v1/status/config");
    let yaml = config["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("job_name: guarded"), "{yaml}");
    assert!(yaml.contains("password: <secret>"), "{yaml}");
    assert!(!yaml.contains("hunter2"), "{yaml}");

    let flags = get_json(&app, "/api/v1/status/flags");
    // Appliance::start listens on port 0, scraping_appliance on a fixed port too.
    assert!(
        flags["data"]["listen"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:0,127.0.0.1:"),
        "{flags}"
    );
    assert_eq!(flags["data"]["log-level"], "info");
    assert!(
        flags["data"]["config"]
            .as_str()
            .unwrap()
            .ends_with("sightline.yml"),
        "{flags}"
    );
    assert!(
        flags["data"]["data-dir"]
            .as_str()
            .unwrap()
            .ends_with("data")
    );

    let runtime = get_json(&app, "/api/v1/status/runtimeinfo")["data"].clone();
    assert_eq!(runtime["reloadConfigSuccess"], true);
    assert_eq!(runtime["storageRetention"], "1w"); // 7d, written as Prometheus writes it.
    assert!(runtime["goroutineCount"].as_u64().unwrap() > 0, "{runtime}");
    for time in ["startTime", "lastConfigTime"] {
        let text = runtime[time].as_str().unwrap();
        assert!(
            text.starts_with("20") && text.contains('T'),
            "{time}: {runtime}"
        );
    }
}

#[test]
fn format_query_prettifies_as_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    // The example of Prometheus's API documentation.
    assert_eq!(
        get_json(&app, "/api/v1/format_query?query=foo/bar"),
        json!({"status": "success", "data": "foo / bar"})
    );
    assert_eq!(
        post_form(
            &app,
            "/api/v1/format_query",
            &[("query", "sum(rate(http_requests_total[5m]))by(job)")]
        )["data"],
        "sum by (job) (rate(http_requests_total[5m]))"
    );
    // Longer than 100 characters: split and indented as Prometheus's Pretty does (its
    // printer writes `group_left ()` with empty parentheses too).
    let long = "sum by (job, instance) (rate(http_requests_total{code=\"200\"}[5m])) / on (job, instance) group_left sum by (job, instance) (rate(http_requests_total[5m]))";
    assert_eq!(
        post_form(&app, "/api/v1/format_query", &[("query", long)])["data"],
        "  sum by (job, instance) (rate(http_requests_total{code=\"200\"}[5m]))\n\
         / on (job, instance) group_left ()\n\
         \x20 sum by (job, instance) (rate(http_requests_total[5m]))"
    );

    let (status, body) = error_of(
        http()
            .get(app.url("/api/v1/format_query?query=foo%7B"))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, &body["errorType"]),
        (400, &json!("bad_data")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\""),
        "{body}"
    );
}

/// One series of a remote-write body: its labels and its `(timestamp ms, value)` samples.
#[test]
fn remote_write_stores_good_bodies_and_refuses_bad_ones_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "limits: {request_body_size: 1MiB}\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let now = now_ms();
    let body = write_body(&[
        (
            &[("__name__", "rw_temperature"), ("room", "attic")],
            &[(now - 2000, 20.5), (now - 1000, 21.0)],
        ),
        (
            &[
                ("__name__", "rw_temperature"),
                ("room", "cellar"),
                ("empty", ""),
            ],
            &[(now - 1000, 12.0)],
        ),
        // No metric name: skipped, the rest is stored, as Prometheus does.
        (&[("room", "nowhere")], &[(now - 1000, 1.0)]),
    ]);
    assert_eq!(remote_write(&app, body, "snappy"), (204, String::new()));
    let stored = get_json(
        &app,
        &format!(
            "/api/v1/query?query=rw_temperature&time={}",
            now as f64 / 1000.0
        ),
    );
    let result = stored["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{stored}");
    assert_eq!(
        result[0]["metric"],
        json!({"__name__": "rw_temperature", "room": "attic"})
    );
    assert_eq!(result[0]["value"][1], "21");
    assert_eq!(result[1]["value"][1], "12");
    assert_eq!(
        get_json(&app, "/api/v1/series?match[]=%7Broom%3D%22nowhere%22%7D")["data"],
        json!([])
    );

    // An older sample of a stored series: refused like Prometheus (400, not retried).
    let (status, message) = remote_write(
        &app,
        write_body(&[(
            &[("__name__", "rw_temperature"), ("room", "attic")],
            &[(now - 5000, 19.0)],
        )]),
        "snappy",
    );
    assert_eq!(status, 400, "{message}");
    assert!(
        message.starts_with("out of order sample: 1 samples refused"),
        "{message}"
    );

    let (status, message) = remote_write(&app, b"this is not snappy".to_vec(), "snappy");
    assert_eq!(status, 400);
    assert!(message.contains("snappy"), "{message}");
    let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 64]).unwrap();
    let (status, message) = remote_write(&app, garbage, "snappy");
    assert_eq!(status, 400);
    assert!(
        message.contains("prometheus.WriteRequest protobuf"),
        "{message}"
    );
    let (status, message) = remote_write(&app, write_body(&[]), "gzip");
    assert_eq!(status, 415, "{message}");
    // Small on the wire, 4 MiB once decompressed: refused before it is inflated.
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0; 4 << 20])
        .unwrap();
    assert!(bomb.len() < 1 << 20);
    let (status, message) = remote_write(&app, bomb, "snappy");
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("limits.request_body_size"), "{message}");
    assert_eq!(oversized_remote_write(&app, 2 << 20), 413);
    // Still serving after all that.
    assert_eq!(remote_write(&app, write_body(&[]), "snappy").0, 204);
    for counted in [
        "sightline_remote_write_samples_total{outcome=\"stored\"} 3",
        "sightline_remote_write_samples_total{outcome=\"rejected\"} 1",
        "sightline_remote_write_samples_total{outcome=\"invalid_labels\"} 1",
    ] {
        assert_eq!(app.wait_for_metric(counted), counted);
    }
}

/// POSTs a `size`-byte remote-write body the way curl sends large ones, with
/// `Expect: 100-continue`, and returns the final status. The server refuses an oversized
/// length before the body is sent; sending it anyway (as a plain client does) races the
/// server closing the connection, and the client may see a broken pipe, not the answer.
fn oversized_remote_write(app: &Appliance, size: usize) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(app.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: {}\r\nContent-Encoding: snappy\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {size}\r\n\
         Expect: 100-continue\r\n\r\n",
        app.address
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {status_line:?}"));
        // Skip the headers.
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        if status != 100 {
            return status;
        }
        stream.write_all(&vec![0; size]).unwrap();
    }
}

#[test]
fn federate_serves_the_latest_fresh_samples_in_the_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance_with(dir.path(), "global:\n  external_labels: {site: home}\n");
    let now = now_ms();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let body = write_body(&[
        (
            &[("__name__", "fed_test"), ("case", "fresh")],
            &[(now - 90_000, 1.0), (now - 60_000, 2.0)],
        ),
        (
            &[("__name__", "fed_test"), ("case", "old")],
            &[(now - 400_000, 3.0)],
        ),
        (
            &[("__name__", "fed_test"), ("case", "stale")],
            &[(now - 90_000, 4.0), (now - 30_000, stale)],
        ),
        (
            &[("__name__", "fed_big"), ("instance", "box")],
            &[(now - 1000, 1234567.0)],
        ),
    ]);
    assert_eq!(remote_write(&app, body, "snappy").0, 204);

    let response = http()
        .get(
            app.url("/federate?match[]=fed_test&match[]=%7B__name__%3D%22fed_big%22%7D&match[]=up"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().unwrap();
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with('#'))
            .collect::<Vec<_>>(),
        [
            "# TYPE fed_big untyped",
            "# TYPE fed_test untyped",
            "# TYPE up untyped"
        ],
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fed_big{{instance=\"box\",site=\"home\"}} 1.234567e+06 {}\n",
            now - 1000
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fed_test{{case=\"fresh\",instance=\"\",site=\"home\"}} 2 {}\n",
            now - 60_000
        )),
        "{text}"
    );
    let mut samples = Vec::new();
    let mut parser = Parser::new(&text, Format::PrometheusText);
    while let Some(entry) = parser.next_entry() {
        if let Entry::Sample(sample) = entry.unwrap() {
            let labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .map(|l| (l.name.to_owned(), l.value.to_owned()))
                .collect();
            samples.push((
                sample.name.to_owned(),
                labels,
                sample.value,
                sample.timestamp_ms,
            ));
        }
    }
    assert_eq!(samples.len(), 3, "{text}");
    let up = samples.iter().find(|s| s.0 == "up").unwrap();
    assert_eq!(up.2, 1.0);
    assert!(up.3.unwrap() > now - 5000, "{text}");
    assert!(up.1.contains(&("job".into(), "sightline".into())));

    assert_eq!(
        http()
            .get(app.url("/federate"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        ""
    );
    let bad = http()
        .get(app.url("/federate?match[]=rate(up[5m])"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().starts_with("error parsing match[]:"));
}

/// The Debian `prometheus` binary, running on a loopback port until dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Prometheus {
        let binary = "/usr/bin/prometheus";
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install the Debian package `prometheus` (apt-get install prometheus)"
        );
        let port = free_port();
        let config = write_file(
            dir,
            "prometheus.yml",
            &config.replace("PROMETHEUS_PORT", &port.to_string()),
        );
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http()
            .get(prometheus.url("/-/ready"))
            .send()
            .map(|r| r.status())
            .ok()
            != Some(StatusCode::OK)
        {
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The instant vector of `query`, polled until it is not empty.
    fn wait_for(&self, query: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = self.url(&format!("/api/v1/query?{}", form(&[("query", query)])));
        loop {
            let answer: Value =
                serde_json::from_str(&http().get(&url).send().unwrap().text().unwrap()).unwrap();
            if answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return answer["data"]["result"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "prometheus never had {query}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn real_prometheus_federates_from_sightline() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance(dir.path());
    let prometheus = Prometheus::start(
        dir.path(),
        &format!(
            "global: {{scrape_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: federate\n  honor_labels: true\n  metrics_path: /federate\n  \
               params: {{'match[]': ['{{job=\"sightline\"}}']}}\n  \
               static_configs: [{{targets: ['{}']}}]\n",
            app.address
        ),
    );
    let own = get_json(&app, "/api/v1/query?query=up");
    let federated = prometheus.wait_for("up{job=\"sightline\"}");
    assert_eq!(
        federated[0]["metric"]["instance"],
        own["data"]["result"][0]["metric"]["instance"]
    );
    assert_eq!(federated[0]["value"][1], "1");
    let health = prometheus.wait_for("up{job=\"federate\"}");
    assert_eq!(health[0]["value"][1], "1", "the federation scrape failed");
    let samples = prometheus.wait_for("scrape_samples_scraped{job=\"federate\"}");
    assert!(
        samples[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 10.0
    );
}

#[test]
fn real_prometheus_remote_writes_to_sightline() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let _prometheus = Prometheus::start(
        dir.path(),
        &format!(
            "global: {{scrape_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: prometheus\n  static_configs: [{{targets: ['127.0.0.1:PROMETHEUS_PORT']}}]\n\
             remote_write:\n\
             - url: http://{}/api/v1/write\n  queue_config: {{batch_send_deadline: 1s}}\n",
            app.address
        ),
    );
    let arrived = wait_json(
        &app,
        "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D",
        Duration::from_secs(40),
        |v| {
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    assert_eq!(arrived["data"]["result"][0]["value"][1], "1", "{arrived}");
    let count = wait_json(
        &app,
        "/api/v1/query?query=count(%7Bjob%3D%22prometheus%22%7D)",
        Duration::from_secs(10),
        |v| v["data"]["result"][0]["value"][1].as_str().is_some(),
    );
    let series: f64 = count["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(series > 100.0, "only {series} series arrived");
}

/// The requests Grafana's Prometheus data source (Grafana 10/11) makes, as it sends them:
/// the health check, the label browser, variable queries, a panel's range query with
/// `$__rate_interval` and step-aligned range, the metadata for the query builder, and the
/// build info it uses to pick features.
#[test]
fn grafana_prometheus_data_source_requests() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance(dir.path());
    wait_json(
        &app,
        "/api/v1/query?query=count_over_time(up%5B1m%5D)",
        Duration::from_secs(15),
        |v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| n >= 5.0)
        },
    );
    let now = now_ms() / 1000;
    let start = (now - 300).to_string();
    let end = now.to_string();

    // Save & test: `1+1` at the current time.
    let health = get_json(&app, &format!("/api/v1/query?query=1%2B1&time={now}"));
    assert_eq!(health["status"], "success");
    assert_eq!(health["data"]["resultType"], "scalar");
    assert_eq!(health["data"]["result"][1], "2");
    assert!(health["data"]["result"][0].is_number());

    let build = get_json(&app, "/api/v1/status/buildinfo");
    assert!(build["data"]["version"].is_string());

    // Label browser and variables.
    let labels = get_json(&app, &format!("/api/v1/labels?start={start}&end={end}"));
    assert!(
        labels["data"].as_array().unwrap().contains(&json!("job")),
        "{labels}"
    );
    let values = get_json(
        &app,
        &format!("/api/v1/label/job/values?match[]=up&start={start}&end={end}"),
    );
    assert_eq!(values["data"], json!(["sightline"]));
    let series = post_form(
        &app,
        "/api/v1/series",
        &[("match[]", "up"), ("start", &start), ("end", &end)],
    );
    assert_eq!(series["status"], "success");
    let first = series["data"][0].as_object().unwrap();
    assert_eq!(first["__name__"], "up");
    assert!(first.values().all(Value::is_string), "{series}");

    // A panel: Grafana aligns start and end to multiples of the step and expands
    // `$__rate_interval` to max(4 × scrape interval, step + scrape interval).
    let step = 2;
    let aligned_start = (now - 120) / step * step;
    let aligned_end = now / step * step;
    let range = post_form(
        &app,
        "/api/v1/query_range",
        &[
            (
                "query",
                "sum by (job) (rate(sightline_http_requests_total[4s]))",
            ),
            ("start", &aligned_start.to_string()),
            ("end", &aligned_end.to_string()),
            ("step", &step.to_string()),
        ],
    );
    assert_eq!(range["status"], "success", "{range}");
    assert_eq!(range["data"]["resultType"], "matrix");
    let result = &range["data"]["result"][0];
    assert_eq!(result["metric"], json!({"job": "sightline"}));
    let points = result["values"].as_array().unwrap();
    assert!(!points.is_empty());
    for point in points {
        let t = point[0]
            .as_i64()
            .expect("an aligned timestamp is a whole number");
        assert_eq!(t % step, 0, "{point}");
        assert!((aligned_start..=aligned_end).contains(&t));
        point[1].as_str().unwrap().parse::<f64>().unwrap();
    }

    // Instant query as a table panel sends it.
    let instant = post_form(
        &app,
        "/api/v1/query",
        &[("query", "up"), ("time", &now.to_string())],
    );
    assert_eq!(instant["data"]["resultType"], "vector");
    assert_eq!(instant["data"]["result"][0]["value"][1], "1");

    // The query builder's metric metadata.
    let metadata = get_json(&app, "/api/v1/metadata");
    assert_eq!(metadata["status"], "success");
    let entry = &metadata["data"]["sightline_http_requests_total"][0];
    assert_eq!(entry["type"], "counter");
    assert!(entry["help"].is_string() && entry["unit"].is_string());
}

/// `/api/v1/targets` as Prometheus answers it: labels before and after relabeling, health
/// and the last error per target, targets relabeling dropped, and the `state` filter.
#[test]
fn targets_show_relabeling_health_and_dropped_targets() {
    let dir = tempfile::tempdir().unwrap();
    let refused = free_port();
    let app = scraping_appliance_with(
        dir.path(),
        &format!(
            "  - job_name: relabeled\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{refused}', 'drop.example:80']\n        labels: {{team: infra}}\n    relabel_configs:\n      - {{source_labels: [__address__], regex: 'drop\\..*', action: drop}}\n      - {{source_labels: [team], target_label: owner}}\n"
        ),
    );
    let targets = wait_json(&app, "/api/v1/targets", Duration::from_secs(10), |v| {
        v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["health"] != "unknown")
    });
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    let down = active
        .iter()
        .find(|t| t["scrapePool"] == "relabeled")
        .unwrap();
    let address = format!("127.0.0.1:{refused}");
    assert_eq!(
        down["discoveredLabels"],
        json!({"__address__": address, "__metrics_path__": "/metrics", "__scheme__": "http",
               "__scrape_interval__": "1s", "__scrape_timeout__": "1s", "job": "relabeled",
               "team": "infra"})
    );
    assert_eq!(
        down["labels"],
        json!({"instance": address, "job": "relabeled", "owner": "infra", "team": "infra"})
    );
    assert_eq!(down["scrapeUrl"], format!("http://{address}/metrics"));
    assert!(
        down["lastError"].as_str().unwrap().contains("refused"),
        "{down}"
    );
    let up = active
        .iter()
        .find(|t| t["scrapePool"] == "sightline")
        .unwrap();
    assert_eq!(
        (&up["health"], &up["lastError"]),
        (&json!("up"), &json!(""))
    );
    assert_eq!(
        targets["data"]["droppedTargets"],
        json!([{"scrapePool": "relabeled", "discoveredLabels": {
            "__address__": "drop.example:80", "__metrics_path__": "/metrics", "__scheme__": "http",
            "__scrape_interval__": "1s", "__scrape_timeout__": "1s", "job": "relabeled",
            "team": "infra"}}])
    );
    assert_eq!(
        targets["data"]["droppedTargetCounts"],
        json!({"relabeled": 1})
    );

    let only_dropped = get_json(&app, "/api/v1/targets?state=dropped");
    assert_eq!(only_dropped["data"]["activeTargets"], json!([]));
    assert_eq!(
        only_dropped["data"]["droppedTargets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let only_active = get_json(&app, "/api/v1/targets?state=active");
    assert_eq!(only_active["data"]["droppedTargets"], json!([]));
    assert_eq!(
        only_active["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// `/api/v1/rules` with upstream's filters and pagination.
#[test]
fn rules_api_filters_and_pages_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "a.yaml",
        "groups:\n  - name: g1\n    rules:\n      - record: r1\n        expr: vector(1)\n        labels: {team: a}\n      - alert: A1\n        expr: vector(1)\n        labels: {severity: page}\n  - name: g2\n    rules:\n      - alert: A2\n        expr: vector(1)\n        labels: {severity: warn}\n",
    );
    write_file(
        dir.path(),
        "b.yaml",
        "groups:\n  - name: g3\n    rules:\n      - record: r3\n        expr: vector(3)\n",
    );
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "global: {evaluation_interval: 1s}\nrule_files: [a.yaml, b.yaml]\nbuiltin_rules: {enabled: false}\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let names = |value: &Value| -> Vec<String> {
        value["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| {
                let rules: Vec<&str> = group["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|rule| rule["name"].as_str().unwrap())
                    .collect();
                format!("{}:{}", group["name"].as_str().unwrap(), rules.join(","))
            })
            .collect()
    };
    let all = wait_json(&app, "/api/v1/rules", Duration::from_secs(10), |v| {
        v["data"]["groups"][0]["rules"][1]["alerts"]
            .as_array()
            .is_some_and(|alerts| !alerts.is_empty())
    });
    assert_eq!(names(&all), ["g1:r1,A1", "g2:A2", "g3:r3"]);
    let file_b = all["data"]["groups"][2]["file"]
        .as_str()
        .unwrap()
        .to_owned();

    let cases: Vec<(String, Vec<&str>)> = vec![
        ("rule_group[]=g2".into(), vec!["g2:A2"]),
        (
            "rule_group[]=g1&rule_group[]=g3".into(),
            vec!["g1:r1,A1", "g3:r3"],
        ),
        (
            format!(
                "file[]={}",
                url::form_urlencoded::byte_serialize(file_b.as_bytes()).collect::<String>()
            ),
            vec!["g3:r3"],
        ),
        ("rule_name[]=A1".into(), vec!["g1:A1"]),
        (
            "rule_name[]=r1&rule_name[]=r3".into(),
            vec!["g1:r1", "g3:r3"],
        ),
        ("type=record&rule_name[]=A1".into(), vec![]),
        (
            "match[]=%7Bseverity%3D~%22page%7Cwarn%22%7D".into(),
            vec!["g1:A1", "g2:A2"],
        ),
        (
            "match[]=%7Bteam%3D%22a%22%7D&match[]=%7Bseverity%3D%22warn%22%7D".into(),
            vec!["g1:r1", "g2:A2"],
        ),
        ("type=alert&rule_group[]=g1".into(), vec!["g1:A1"]),
    ];
    for (query, expected) in cases {
        let listed = get_json(&app, &format!("/api/v1/rules?{query}"));
        assert_eq!(names(&listed), expected, "{query}");
    }

    let without_alerts = get_json(&app, "/api/v1/rules?exclude_alerts=true&rule_name[]=A1");
    assert_eq!(
        without_alerts["data"]["groups"][0]["rules"][0]["alerts"],
        Value::Null
    );
    assert_eq!(
        without_alerts["data"]["groups"][0]["rules"][0]["state"],
        "firing"
    );

    let first = get_json(&app, "/api/v1/rules?group_limit=2");
    assert_eq!(names(&first), ["g1:r1,A1", "g2:A2"]);
    let token = first["data"]["groupNextToken"].as_str().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let second = get_json(
        &app,
        &format!("/api/v1/rules?group_limit=2&group_next_token={encoded}"),
    );
    assert_eq!(names(&second), ["g3:r3"]);
    assert_eq!(second["data"].get("groupNextToken"), None);

    for (query, message) in [
        ("group_limit=0", "group_limit"),
        ("group_next_token=nope", "invalid group_next_token"),
        ("exclude_alerts=maybe", "exclude_alerts"),
        ("type=both", "type"),
        ("match[]=%7B", "parse error"),
    ] {
        let (status, body) = error_of(
            http()
                .get(app.url(&format!("/api/v1/rules?{query}")))
                .send()
                .unwrap(),
        );
        assert_eq!(
            (status, &body["errorType"]),
            (400, &json!("bad_data")),
            "{query}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
}

#[test]
fn builtin_rules_run_by_default_and_yield_to_user_rules_and_switches() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "mine.yaml",
        "groups:\n  - name: mine\n    rules:\n      - alert: TargetDown\n        expr: up == 0\n        for: 1h\n",
    );
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "global: {evaluation_interval: 1s}\nrule_files: [mine.yaml]\nbuiltin_rules: {disabled: [KubeNodeNotReady]}\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let rules = get_json(&app, "/api/v1/rules");
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            by_name
                .entry(rule["name"].as_str().unwrap().to_owned())
                .or_default()
                .push(group["file"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        by_name["TargetDown"],
        [dir.path().join("mine.yaml").display().to_string()],
        "the user's rule replaces the built-in"
    );
    assert!(
        !by_name.contains_key("KubeNodeNotReady"),
        "switched off by name"
    );
    assert_eq!(
        by_name["NodeFilesystemSpaceFillingUp"],
        ["builtin:homelab.rules.yaml"; 3]
    );
    // Watchdog fires from the first evaluation on.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alerts = get_json(&app, "/api/v1/alerts");
        if alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|alert| alert["labels"]["alertname"] == "Watchdog" && alert["state"] == "firing")
        {
            break;
        }
        assert!(Instant::now() < deadline, "Watchdog did not fire: {alerts}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the `/metrics` line that starts with `prefix` (a name and its labels).
fn metric_value(app: &Appliance, prefix: &str) -> f64 {
    let line = app.wait_for_metric(prefix);
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The metrics the built-in Sightline rules and dashboard read: a scrape over its
/// `sample_limit` is counted under Prometheus's name, stored log lines and bytes are
/// counted, and the storage gauges describe the data directory and the retention settings.
#[test]
fn self_metrics_count_sample_limits_log_intake_and_storage() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "  - job_name: limited\n    scrape_interval: 1s\n    sample_limit: 5\n    metrics_path: /metrics/node\n    static_configs: [{targets: ['127.0.0.1:{port}']}]\nstorage:\n  logs: {retention: 3d, retention_size: 1GiB}\n";
    let app = scraping_appliance_with(dir.path(), extra);
    let push = json!({"streams": [{"stream": {"job": "self"}, "values": [
        [(now_ms() * 1_000_000).to_string(), "one line"],
        [(now_ms() * 1_000_000 + 1).to_string(), "another"],
    ]}]});
    let response = http()
        .post(app.url("/loki/api/v1/push"))
        .header("content-type", "application/json")
        .body(push.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let deadline = Instant::now() + Duration::from_secs(10);
    while metric_value(
        &app,
        "prometheus_target_scrapes_exceeded_sample_limit_total ",
    ) < 2.0
    {
        assert!(
            Instant::now() < deadline,
            "sample_limit scrapes were not counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let targets = get_json(&app, "/api/v1/targets?state=active");
    let limited = targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == "limited")
        .unwrap();
    assert!(
        limited["lastError"]
            .as_str()
            .unwrap()
            .contains("sample limit exceeded"),
        "{limited}"
    );
    assert_eq!(
        metric_value(&app, "sightline_logs_ingested_lines_total "),
        2.0
    );
    assert_eq!(
        metric_value(&app, "sightline_logs_ingested_bytes_total "),
        "one line".len() as f64 + "another".len() as f64
    );
    assert_eq!(
        metric_value(&app, "sightline_storage_retention_seconds{store=\"logs\"} "),
        3.0 * 86_400.0
    );
    assert_eq!(
        metric_value(
            &app,
            "sightline_storage_retention_size_bytes{store=\"logs\"} "
        ),
        f64::from(1u32 << 30)
    );
    assert_eq!(
        metric_value(
            &app,
            "sightline_storage_retention_seconds{store=\"metrics\"} "
        ),
        7.0 * 86_400.0
    );
    let size = metric_value(&app, "sightline_storage_filesystem_size_bytes ");
    let avail = metric_value(&app, "sightline_storage_filesystem_avail_bytes ");
    assert!(
        size > 0.0 && (0.0..=size).contains(&avail),
        "{avail} of {size}"
    );
    assert!(metric_value(&app, "sightline_storage_disk_usage_bytes{store=\"logs\"} ") > 0.0);
    assert_eq!(
        metric_value(
            &app,
            "alertmanager_notifications_total{integration=\"pushover\"} "
        ),
        0.0
    );
}
