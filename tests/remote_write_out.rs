//! Remote write out, end to end over 127.0.0.1: Sightline scrapes itself every second and
//! sends every sample it stores to a real receiver — VictoriaMetrics (Debian
//! `victoria-metrics`) and Prometheus 2.x (Debian `prometheus` with
//! `--web.enable-remote-write-receiver`) — which is stopped in the middle of the test while
//! scraping goes on, and started again: afterwards the receiver holds exactly the samples
//! Sightline holds, series by series.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, free_port, get_json, http, scraping_appliance_with, write_file};
use serde_json::Value;

/// Sample timestamps (ms) by series (its labels, sorted, as text).
type Samples = BTreeMap<String, Vec<i64>>;

fn series_key(metric: &serde_json::Map<String, Value>) -> String {
    let mut pairs: Vec<String> = metric
        .iter()
        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// A receiver of remote write, run from its Debian package on a loopback port.
struct Receiver {
    program: &'static str,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Receiver {
    fn victoria_metrics(dir: &Path) -> Receiver {
        let port = free_port();
        Receiver::start(
            "victoria-metrics",
            vec![
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("vm").display()),
                "-retentionPeriod=1d".into(),
            ],
            port,
        )
    }

    fn prometheus(dir: &Path) -> Receiver {
        let port = free_port();
        let config = write_file(dir, "prometheus.yml", "global: {}\n");
        Receiver::start(
            "prometheus",
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.join("prometheus").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--web.enable-remote-write-receiver".into(),
            ],
            port,
        )
    }

    fn start(program: &'static str, args: Vec<String>, port: u16) -> Receiver {
        let path = PathBuf::from("/usr/bin").join(program);
        assert!(
            path.exists(),
            "{} is missing: install the Debian package {} (scripts/test does)",
            path.display(),
            if program == "prometheus" {
                "prometheus"
            } else {
                "victoria-metrics"
            }
        );
        let mut receiver = Receiver {
            program,
            args,
            port,
            child: None,
        };
        receiver.resume();
        receiver
    }

    /// Starts the program (again) and waits until it answers.
    fn resume(&mut self) {
        let child = Command::new(PathBuf::from("/usr/bin").join(self.program))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the receiver starts");
        self.child = Some(child);
        let ready = if self.program == "prometheus" {
            "/-/ready"
        } else {
            "/health"
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http()
            .get(self.url(ready))
            .send()
            .is_ok_and(|response| response.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{} did not get ready",
                self.program
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the program (SIGTERM, as a rollout would) and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Both take remote write 1.0 at the same path.
    fn write_url(&self) -> String {
        self.url("/api/v1/write")
    }

    /// Every sample of `{job="sightline"}` it holds.
    fn samples(&self) -> Samples {
        let mut samples = Samples::new();
        if self.program == "prometheus" {
            let text = http()
                .get(self.url("/api/v1/query?query=%7Bjob%3D%22sightline%22%7D%5B1h%5D"))
                .send()
                .unwrap()
                .text()
                .unwrap();
            samples = matrix_samples(&serde_json::from_str(&text).unwrap());
        } else {
            http()
                .get(self.url("/internal/force_flush"))
                .send()
                .unwrap();
            let text = http()
                .get(self.url("/api/v1/export?match[]=%7Bjob%3D%22sightline%22%7D"))
                .send()
                .unwrap()
                .text()
                .unwrap();
            for line in text.lines().filter(|line| !line.is_empty()) {
                let series: Value = serde_json::from_str(line).unwrap();
                let times = series["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap())
                    .collect();
                samples.insert(series_key(series["metric"].as_object().unwrap()), times);
            }
        }
        samples
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every sample of `{job="sightline"}` Sightline holds.
fn stored(app: &Appliance) -> Samples {
    let answer = get_json(
        app,
        "/api/v1/query?query=%7Bjob%3D%22sightline%22%7D%5B1h%5D",
    );
    matrix_samples(&answer)
}

/// The sample timestamps of a Prometheus API range-vector answer, by series.
fn matrix_samples(answer: &Value) -> Samples {
    let mut samples = Samples::new();
    for series in answer["data"]["result"].as_array().unwrap() {
        let times = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect();
        samples.insert(series_key(series["metric"].as_object().unwrap()), times);
    }
    samples
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The newest `up` sample the receiver has, in ms.
fn newest_up(receiver: &Receiver) -> i64 {
    receiver
        .samples()
        .iter()
        .filter(|(key, _)| key.contains("__name__=up,"))
        .flat_map(|(_, times)| times.last().copied())
        .max()
        .unwrap_or(i64::MIN)
}

/// Scrapes go on while the receiver is down; once it is back, it catches up and holds every
/// sample Sightline stored up to then.
fn nothing_is_lost_across_a_receiver_restart(mut receiver: Receiver, dir: &Path) {
    let extra = format!(
        "remote_write:\n  - url: {}\n    name: receiver\n    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n",
        receiver.write_url()
    );
    let app = scraping_appliance_with(dir, &extra);
    let deadline = Instant::now() + Duration::from_secs(30);
    while newest_up(&receiver) == i64::MIN {
        assert!(Instant::now() < deadline, "no sample reached the receiver");
        std::thread::sleep(Duration::from_millis(250));
    }

    let stopped_at = now_ms();
    receiver.stop();
    std::thread::sleep(Duration::from_secs(4));
    let metrics = http()
        .get(app.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .contains("prometheus_remote_storage_samples_retried_total{remote_name=\"receiver\""),
        "{metrics}"
    );
    receiver.resume();

    let cutoff = now_ms();
    let deadline = Instant::now() + Duration::from_secs(40);
    while newest_up(&receiver) < cutoff + 2_000 {
        assert!(Instant::now() < deadline, "the receiver did not catch up");
        std::thread::sleep(Duration::from_millis(250));
    }
    let up_to = |samples: Samples| -> Samples {
        samples
            .into_iter()
            .map(|(key, times)| {
                (
                    key,
                    times
                        .into_iter()
                        .filter(|t| *t <= cutoff)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, times)| !times.is_empty())
            .collect()
    };
    let sent = up_to(stored(&app));
    let received = up_to(receiver.samples());
    let count: usize = sent.values().map(Vec::len).sum();
    assert!(count > 100, "{count} samples");
    let missing: Vec<String> = sent
        .iter()
        .filter(|(key, times)| received.get(*key) != Some(*times))
        .map(|(key, times)| {
            let got = received.get(key).cloned().unwrap_or_default();
            let lost: Vec<i64> = times.iter().filter(|t| !got.contains(t)).copied().collect();
            let extra: Vec<i64> = got.iter().filter(|t| !times.contains(t)).copied().collect();
            format!(
                "{key}: sent {} samples, received {}; not received {lost:?}, not sent {extra:?}",
                times.len(),
                got.len(),
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} series differ (receiver stopped at {stopped_at}, started again by {cutoff}):\n{}",
        missing.len(),
        sent.len(),
        missing.join("\n")
    );
    eprintln!(
        "{}: {count} samples of {} series arrived",
        receiver.program,
        sent.len()
    );
}

#[test]
fn every_sample_reaches_victoria_metrics_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::victoria_metrics(dir.path());
    nothing_is_lost_across_a_receiver_restart(receiver, dir.path());
}

#[test]
fn every_sample_reaches_prometheus_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::prometheus(dir.path());
    nothing_is_lost_across_a_receiver_restart(receiver, dir.path());
}
