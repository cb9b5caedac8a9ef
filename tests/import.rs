//! `sightline import …` on the real binary over 127.0.0.1: silences from the real
//! Alertmanager (Debian `prometheus-alertmanager`, silences made with `amtool`), dashboards
//! from exported files and from a Grafana API (a second Sightline serves Grafana's), log
//! history from a second Sightline's Loki API with an interruption in the middle. Each
//! import is run twice: the second run adds nothing. A running instance's lock refuses an
//! import.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, binary, free_port, get_json, http, write_file};
use serde_json::{Value, json};
use sightline_core::labels::Labels;
use sightline_logstore::push::{Entry, PushRequest, PushStream, protobuf};

/// Runs `sightline import ARGS`.
fn import(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("import")
        .args(args)
        .output()
        .expect("sightline runs")
}

/// Runs `sightline import ARGS` and kills it (SIGKILL) once it has reported progress, as
/// an interruption would.
fn import_interrupted(args: &[&str]) {
    let mut running = Command::new(binary())
        .arg("import")
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("sightline runs");
    let progress = BufReader::new(running.stderr.take().expect("stderr is piped"))
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains('%'));
    let _ = running.kill();
    let _ = running.wait();
    assert!(
        progress.is_some(),
        "no progress line before the interruption"
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `program` with `args` and waits until `/-/ready` on `port` answers 200.
fn start_ready(program: &Path, args: &[String], port: u16) -> Child {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("{} does not start: {error}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http()
        .get(format!("http://127.0.0.1:{port}/-/ready"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not get ready", program.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// The real Alertmanager on a loopback port, clustering off.
struct Alertmanager {
    child: Child,
    url: String,
}

impl Alertmanager {
    fn start(dir: &Path) -> Alertmanager {
        let program = Path::new("/usr/bin/prometheus-alertmanager");
        assert!(
            program.exists(),
            "{} is missing: install the Debian package prometheus-alertmanager (scripts/test does)",
            program.display()
        );
        let config = write_file(
            dir,
            "alertmanager.yml",
            "route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n",
        );
        let port = free_port();
        let child = start_ready(
            program,
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", dir.join("am").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".to_owned(),
            ],
            port,
        );
        let url = format!("http://127.0.0.1:{port}/");
        Alertmanager { child, url }
    }

    /// `amtool ARGS --alertmanager.url URL`, its standard output.
    fn amtool(&self, args: &[&str]) -> String {
        let output = Command::new("amtool")
            .args(args)
            .arg(format!("--alertmanager.url={}", self.url))
            .output()
            .expect("amtool runs (Debian prometheus-alertmanager)");
        assert!(
            output.status.success(),
            "amtool {args:?}: {}",
            stderr(&output)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alertmanager_silences_arrive_once_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(dir.path());
    let add = |matcher: &str| {
        am.amtool(&[
            "silence",
            "add",
            matcher,
            "--author=ops",
            "--comment=maintenance",
            "--duration=2h",
        ])
    };
    let disk = add("alertname=DiskFull");
    let node = add("instance=~node-[12]");
    let gone = add("alertname=Old");
    am.amtool(&["silence", "expire", &gone]);
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();

    let first = import(&["alertmanager", "--url", &am.url, "--data-dir", data_arg]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("imported 2 silences") && stderr(&first).contains("1 expired"),
        "{}",
        stderr(&first)
    );
    let again = import(&["alertmanager", "--url", &am.url, "--data-dir", data_arg]);
    assert!(
        stderr(&again).contains("imported 0 silences")
            && stderr(&again).contains("2 were already there"),
        "{}",
        stderr(&again)
    );

    let app = Appliance::start(&data, &[]);
    let locked = import(&["alertmanager", "--url", &am.url, "--data-dir", data_arg]);
    assert!(!locked.status.success());
    assert!(
        stderr(&locked).contains("is in use by pid"),
        "{}",
        stderr(&locked)
    );
    let silences = get_json(&app, "/api/v2/silences");
    let mut ids: Vec<&str> = silences
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![disk.as_str(), node.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let node_silence = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == node.as_str())
        .unwrap();
    assert_eq!(node_silence["matchers"][0]["isRegex"], true);
    assert_eq!(node_silence["createdBy"], "ops");
    assert_eq!(node_silence["status"]["state"], "active");
}

fn dashboard(uid: &str, title: &str) -> Value {
    json!({"uid": uid, "title": title, "panels": [{"type": "timeseries", "title": "CPU"}]})
}

/// `(uid, folder)` of every dashboard `app` lists, built-ins left out.
fn listed(app: &Appliance) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = get_json(app, "/api/search")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["folderTitle"] != "Sightline")
        .map(|d| {
            (
                d["uid"].as_str().unwrap().to_owned(),
                d["folderTitle"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn grafana_dashboards_from_files_and_from_an_api() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir_all(export.join("Infra")).unwrap();
    let write_json = |path: PathBuf, value: Value| std::fs::write(path, value.to_string()).unwrap();
    write_json(export.join("home.json"), dashboard("home", "Home"));
    write_json(
        export.join("Infra").join("nodes.json"),
        dashboard("nodes", "Nodes"),
    );
    write_json(
        export.join("api-form.json"),
        json!({"dashboard": dashboard("apps", "Apps"), "meta": {"folderTitle": "Teams"}}),
    );
    std::fs::write(
        export.join("notes.json"),
        "{\"title\": \"not a dashboard\"}",
    )
    .unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let export_arg = export.to_str().unwrap();

    let first = import(&["grafana", "--dir", export_arg, "--data-dir", data_arg]);
    assert!(
        !first.status.success(),
        "the file that is no dashboard fails the import"
    );
    let text = stderr(&first);
    assert!(text.contains("imported 3 dashboards"), "{text}");
    assert!(
        text.contains("notes.json: not a Grafana dashboard"),
        "{text}"
    );
    std::fs::remove_file(export.join("notes.json")).unwrap();
    let again = import(&["grafana", "--dir", export_arg, "--data-dir", data_arg]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("3 were already there"),
        "{}",
        stderr(&again)
    );

    // A "Grafana" with one dashboard of its own besides the built-ins: another Sightline.
    let source = Appliance::start(&dir.path().join("source"), &[]);
    let saved = http()
        .post(source.url("/api/dashboards/db"))
        .header("Content-Type", "application/json")
        .body(json!({"dashboard": dashboard("remote", "Remote"), "folderTitle": "Lab"}).to_string())
        .send()
        .unwrap();
    assert!(saved.status().is_success());
    let from_api = import(&["grafana", "--url", &source.url("/"), "--data-dir", data_arg]);
    assert!(from_api.status.success(), "{}", stderr(&from_api));
    let text = stderr(&from_api);
    assert!(
        text.contains("imported 1 dashboards") && text.contains("5 are Sightline's own"),
        "{text}"
    );

    let app = Appliance::start(&data, &[]);
    assert_eq!(
        listed(&app),
        [
            ("apps".to_owned(), "Teams".to_owned()),
            ("home".to_owned(), "General".to_owned()),
            ("nodes".to_owned(), "Infra".to_owned()),
            ("remote".to_owned(), "Lab".to_owned()),
        ]
    );
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Every line of `{job="app"}` over the last 4 h, as (labels, timestamp, line), sorted.
fn all_lines(app: &Appliance) -> Vec<(String, i64, String)> {
    let answer = get_json(
        app,
        "/loki/api/v1/query_range?query=%7Bjob%3D%22app%22%7D&limit=5000&direction=forward&since=4h",
    );
    let mut lines = Vec::new();
    for stream in answer["data"]["result"].as_array().unwrap() {
        for value in stream["values"].as_array().unwrap() {
            lines.push((
                stream["stream"].to_string(),
                value[0].as_str().unwrap().parse().unwrap(),
                value[1].as_str().unwrap().to_owned(),
            ));
        }
    }
    lines.sort();
    lines
}

#[test]
fn loki_history_resumes_after_an_interruption_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let source = Appliance::start(&dir.path().join("source"), &[]);
    // Three streams over the last three hours; five lines share each timestamp, so that
    // pages of 100 end in the middle of a timestamp.
    let now = now_ns();
    for (pod, offset) in [("a", 0), ("b", 7), ("c", 13)] {
        let entries: Vec<Entry> = (0..600)
            .map(|i| Entry {
                timestamp_ns: now - 3 * 3_600_000_000_000 + (i / 5) * 90_000_000_000 + offset,
                line: format!("pod {pod} line {i}"),
                metadata: Vec::new(),
            })
            .collect();
        let body = protobuf::encode(&PushRequest {
            streams: vec![PushStream {
                labels: Labels::from_pairs([("job", "app"), ("pod", pod)]),
                entries,
                ..PushStream::default()
            }],
        });
        let pushed = http()
            .post(source.url("/loki/api/v1/push"))
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(pushed.status().as_u16(), 204, "{:?}", pushed.text());
    }
    let expected = all_lines(&source);
    assert_eq!(expected.len(), 1800);

    let data = dir.path().join("data");
    let url = source.url("/");
    let args = [
        "loki",
        "--url",
        &url,
        "--since",
        "4h",
        "--slice",
        "10m",
        "--limit",
        "100",
        "--query",
        "{job=\"app\"}",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    import_interrupted(&args);

    let resumed = import(&args);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let text = stderr(&resumed);
    assert!(text.contains("imported 1800 log lines"), "{text}");
    // Without its progress file the import reads everything again and stores nothing.
    std::fs::remove_dir_all(data.join("import")).unwrap();
    let again = import(&args);
    assert!(
        stderr(&again).contains("0 of them in this run; 1800 were already stored"),
        "{}",
        stderr(&again)
    );

    let app = Appliance::start(&data, &[]);
    assert_eq!(all_lines(&app), expected);
}

/// The real Prometheus on a loopback port, scraping itself every second.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    fn start(dir: &Path) -> Prometheus {
        let program = Path::new("/usr/bin/prometheus");
        assert!(
            program.exists(),
            "{} is missing: install the Debian package prometheus (scripts/test does)",
            program.display()
        );
        let port = free_port();
        let config = write_file(
            dir,
            "prometheus.yml",
            &format!(
                "scrape_configs:\n  - job_name: prometheus\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            ),
        );
        let child = start_ready(
            program,
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.join("prometheus").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            port,
        );
        let url = format!("http://127.0.0.1:{port}/");
        Prometheus { child, url }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The series and samples `selector[1h]` selects at `time` (Unix seconds) through the
/// Prometheus HTTP API at `base` (ending in `/`).
fn range_counts(base: &str, selector: &str, time: f64) -> (usize, usize) {
    let mut url = url::Url::parse(&format!("{base}api/v1/query")).unwrap();
    url.query_pairs_mut()
        .append_pair("query", &format!("{selector}[1h]"))
        .append_pair("time", &time.to_string());
    let text = http().get(url).send().unwrap().text().unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let series = answer["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{selector}: {text}"));
    let samples = series
        .iter()
        .map(|one| one["values"].as_array().map_or(0, Vec::len))
        .sum();
    (series.len(), samples)
}

#[test]
fn prometheus_history_arrives_whole_and_once_through_remote_read() {
    let dir = tempfile::tempdir().unwrap();
    let source = Prometheus::start(dir.path());
    std::thread::sleep(Duration::from_secs(30));
    // Compared up to a time a little in the past: both sides hold every sample up to it.
    let at = now_ns() as f64 / 1e9 - 5.0;
    let selector = "{job=\"prometheus\"}";
    let (want_series, want_samples) = range_counts(&source.url, selector, at);
    assert!(want_samples > 3_000, "{want_samples} samples");

    let data = dir.path().join("data");
    let args = [
        "prometheus",
        "--url",
        &source.url,
        "--since",
        "10h",
        "--match",
        "{job=\"prometheus\"}",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    import_interrupted(&args);
    let resumed = import(&args);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let text = stderr(&resumed);
    let imported: usize = text
        .split("imported ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        imported >= want_samples,
        "{text} (source: {want_samples} up to {at})"
    );
    // Run again from scratch: every block is written a second time, and read once.
    std::fs::remove_dir_all(data.join("import")).unwrap();
    let again = import(&args);
    assert!(again.status.success(), "{}", stderr(&again));

    let app = Appliance::start(&data, &[]);
    assert_eq!(
        range_counts(&app.url("/"), selector, at),
        (want_series, want_samples)
    );
}
