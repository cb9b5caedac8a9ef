//! Runs the real `sightline` binary on a loopback port for end-to-end tests.

#![allow(dead_code)] // Each test binary uses a different part of this helper.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test support: a failure is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use sightline_ui::remote_write::prompb;

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `sightline` binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_sightline")
}

/// `relative` (to the package root) as an absolute path, safe to hand to the appliance.
///
/// Found through the working directory cargo gives tests (the package root) rather than a
/// compile-time `env!("CARGO_MANIFEST_DIR")`, which goes stale when two checkouts share a
/// target directory and cargo reuses the test binary.
pub fn package_path(relative: &str) -> PathBuf {
    std::path::absolute(relative).unwrap()
}

/// A running `sightline serve` whose log lines are collected.
pub struct Appliance {
    child: Child,
    /// The HTTP address it bound.
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Appliance {
    /// Starts `sightline` with `args` plus `--listen 127.0.0.1:0` and `--data-dir DIR`, and
    /// waits until it has bound its port.
    pub fn start(data_dir: &Path, args: &[&str]) -> Appliance {
        Appliance::start_under(data_dir, args, "")
    }

    /// Like [`Appliance::start`], for routes under `prefix` (from `web.external_url`).
    pub fn start_under(data_dir: &Path, args: &[&str], prefix: &str) -> Appliance {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sightline starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("address=").nth(1) {
                    let _ = address_tx.send(address.trim().parse::<SocketAddr>());
                }
                collected.lock().unwrap().push(line);
            }
        });
        let address = match address_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(address)) => address,
            other => {
                let _ = child.kill();
                panic!(
                    "sightline did not report a listen address ({other:?}); log: {:#?}",
                    log.lock().unwrap()
                );
            }
        };
        let appliance = Appliance {
            child,
            address,
            log,
        };
        appliance.wait_until_ready(prefix);
        appliance
    }

    /// Polls `/-/ready` until it answers 200: storage recovery has finished.
    fn wait_until_ready(&self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = http();
        loop {
            let url = self.url(&format!("{prefix}/-/ready"));
            match client.get(url).send().map(|r| r.status().as_u16()) {
                Ok(200) => return,
                Ok(503) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => panic!(
                    "sightline did not become ready ({other:?}); log: {:#?}",
                    self.log()
                ),
            }
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Whether a logged line contains `text` within `timeout`: the child's output reaches
    /// [`log`](Self::log) through a pipe and a reader thread, a little after the child wrote it.
    pub fn logged_within(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().iter().any(|line| line.contains(text)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal by name (`TERM`, `HUP`, `KILL`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Polls `/metrics` until a line starts with `prefix`, returning that line.
    pub fn wait_for_metric(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = http()
                .get(self.url("/metrics"))
                .send()
                .unwrap()
                .text()
                .unwrap();
            if let Some(line) = text.lines().find(|line| line.starts_with(prefix)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no metric line starting with {prefix:?} in\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that only talks to loopback and does not follow redirects.
pub fn http() -> reqwest::blocking::Client {
    // reqwest is built without a TLS crypto provider of its own (see Cargo.toml); an error
    // means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .no_proxy()
        // Responses are checked as sent: compressed when the test asks for it.
        .no_gzip()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs a Loki JSON push `body` to `app` with `client`.
pub fn push_json(
    client: &reqwest::blocking::Client,
    app: &Appliance,
    body: impl Into<reqwest::blocking::Body>,
) -> reqwest::blocking::Response {
    client
        .post(app.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The appliance with a 1 s self-scrape job on a fixed loopback port, once it has data.
pub fn scraping_appliance(dir: &Path) -> Appliance {
    scraping_appliance_with(dir, "")
}

/// Like [`scraping_appliance`], with `extra` appended to the config (more jobs, more
/// sections: YAML at the top level, or more entries of `scrape_configs` indented by 2);
/// `{port}` in `extra` is the appliance's own port.
pub fn scraping_appliance_with(dir: &Path, extra: &str) -> Appliance {
    let port = free_port();
    let config = write_file(
        dir,
        "sightline.yml",
        &format!(
            "scrape_configs:\n  - job_name: sightline\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n{}",
            extra.replace("{port}", &port.to_string())
        ),
    );
    let app = Appliance::start(
        &dir.join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while get_json(&app, "/api/v1/query?query=up")["data"]["result"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "no `up` sample arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    app
}

/// GETs `path` and parses the answer as JSON.
pub fn get_json(app: &Appliance, path: &str) -> serde_json::Value {
    let text = http().get(app.url(path)).send().unwrap().text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}: {text}"))
}

/// One series of a remote-write body: labels and `(timestamp ms, value)` samples.
pub type WriteSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// A remote-write 1.0 body: the series' labels and samples as a snappy-compressed
/// `prometheus.WriteRequest`.
pub fn remote_write_body(series: &[WriteSeries]) -> Vec<u8> {
    let request = prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| prompb::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(name, value)| prompb::Label {
                        name: (*name).into(),
                        value: (*value).into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
                    .collect(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&request))
        .unwrap()
}

/// POSTs a remote-write `body` with `encoding` (`snappy` for a valid one); returns the
/// status and the answer.
pub fn remote_write(app: &Appliance, body: Vec<u8>, encoding: &str) -> (u16, String) {
    let response = http()
        .post(app.url("/api/v1/write"))
        .header("content-encoding", encoding)
        .header("content-type", "application/x-protobuf")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// A local HTTP server standing in for a notification service: it records every request
/// body it receives and answers each with `200` and a fixed JSON body.
pub struct Recorder {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    /// Listens on a free loopback port; `answer` is the JSON every request gets back.
    pub fn start(answer: &'static str) -> Recorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                recorded.lock().unwrap().push(body);
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Recorder { port, bodies }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request bodies received so far, oldest first.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A Pushover form: its fields by name.
pub type PushoverForm = std::collections::BTreeMap<String, String>;

/// A fake Pushover: records each form POST, answers `{"status":1}`.
pub struct FakePushover(Recorder);

impl FakePushover {
    /// Listens on a free loopback port.
    pub fn start() -> FakePushover {
        FakePushover(Recorder::start(r#"{"status":1,"request":"fake"}"#))
    }

    /// The `api_url` to configure.
    pub fn url(&self) -> String {
        self.0.url("/1/messages.json")
    }

    /// The forms received so far, as maps.
    pub fn forms(&self) -> Vec<PushoverForm> {
        self.0
            .bodies()
            .iter()
            .map(|body| url::form_urlencoded::parse(body).into_owned().collect())
            .collect()
    }

    /// Waits (at most `limit`) for a notification that `wanted` accepts; `what` names it in
    /// the failure message.
    pub fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&PushoverForm) -> bool,
    ) -> PushoverForm {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(form) = self.forms().into_iter().find(&wanted) {
                return form;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {what}; got {:#?}",
                self.forms()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most 20 s) for a notification whose title is `title`.
    pub fn wait_for(&self, title: &str) -> PushoverForm {
        self.wait_until(&format!("titled {title:?}"), Duration::from_secs(20), |f| {
            f["title"] == title
        })
    }
}
