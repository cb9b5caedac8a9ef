//! A full disk: the data directory on a small tmpfs filled by the test. Log pushes are
//! refused with 507 and a log line saying so, scrapes report the error on their target,
//! reads keep working, ingestion (pushes, remote write and scrapes) resumes by itself once
//! space returns, and nothing acknowledged is lost (checked after a `kill -9`). And a data
//! disk filled past 90 % pages a phone: the built-in NodeFilesystemSpaceFillingUp reaches a
//! local fake Pushover with priority 1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    Appliance, FakePushover, free_port, get_json, http, remote_write, remote_write_body, write_file,
};

/// A tmpfs mounted for the test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let is_root = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
        assert!(
            is_root,
            "this test mounts a small tmpfs as the data directory: run it as root"
        );
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs (apt-get install mount)");
        assert!(status.success(), "mount -t tmpfs failed");
        Tmpfs(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0_u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..4096]).is_ok() {}
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Pushes one line to `{job="disk"}`; returns the status and the body.
fn push(app: &Appliance, line: &str) -> (u16, String) {
    let body = serde_json::json!({"streams": [{"stream": {"job": "disk"},
        "values": [[now_ns().to_string(), line]]}]});
    let response = http()
        .post(app.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// The lines stored for `{job="disk"}`.
fn stored(app: &Appliance) -> Vec<String> {
    let end = now_ns() + 1_000_000_000;
    let answer = get_json(
        app,
        &format!(
            "/loki/api/v1/query_range?query=%7Bjob%3D%22disk%22%7D&start={}&end={end}&limit=5000",
            end - 3_600_000_000_000
        ),
    );
    let mut lines = Vec::new();
    for stream in answer["data"]["result"].as_array().unwrap() {
        for entry in stream["values"].as_array().unwrap() {
            lines.push(entry[1].as_str().unwrap().to_owned());
        }
    }
    lines
}

#[test]
fn full_disk_refuses_writes_with_507_keeps_reads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mount, "48m");
    let data = mount.join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // It scrapes itself every second all along: scrapes meet the full disk too.
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "storage:\n  wal_sync: 0s\nscrape_configs:\n  - job_name: self\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{listen}']}}]\n"
        ),
    );
    let args = ["--config", config.to_str().unwrap(), "--listen", &listen];
    let mut app = Appliance::start(&data, &args);
    let mut acknowledged = Vec::new();
    assert_eq!(push(&app, "before the disk filled").0, 204);
    acknowledged.push("before the disk filled".to_owned());

    let filler = mount.join("filler");
    fill(&filler);
    // The WAL may still have room in its current segment: push until the disk says no.
    let padding = "x".repeat(64 * 1024);
    let refusal = (0..2000).find_map(|i| {
        let line = format!("while full {i} {padding}");
        match push(&app, &line) {
            (204, _) => {
                acknowledged.push(line);
                None
            }
            refused => Some(refused),
        }
    });
    let (status, body) = refusal.expect("a push was refused once the disk was full");
    assert_eq!(
        status, 507,
        "a full disk is 507 Insufficient Storage: {body}"
    );
    assert!(body.contains("No space left on device"), "{body}");
    assert!(
        app.logged_within(
            "disk full: log pushes are refused with 507",
            Duration::from_secs(5)
        ),
        "{:#?}",
        app.log()
    );

    // Remote write is refused the same way: nothing of the request is stored.
    let now_ms = (now_ns() / 1_000_000) as i64;
    let samples: Vec<(i64, f64)> = (0..200).map(|i| (now_ms - 200 + i, i as f64)).collect();
    let names: Vec<String> = (0..100).map(|i| format!("series_{i}")).collect();
    let series: Vec<Vec<(&str, &str)>> = names
        .iter()
        .map(|name| vec![("__name__", "disk_full_test"), ("series", name.as_str())])
        .collect();
    let body = remote_write_body(
        &series
            .iter()
            .map(|labels| (labels.as_slice(), samples.as_slice()))
            .collect::<Vec<_>>(),
    );
    let (status, body_text) = remote_write(&app, body.clone(), "snappy");
    assert_eq!(status, 507, "remote write on a full disk: {body_text}");
    assert!(body_text.contains("disk full"), "{body_text}");

    // Reads keep working while the disk is full.
    assert_eq!(stored(&app).len(), acknowledged.len());
    let build = get_json(&app, "/api/v1/status/buildinfo");
    assert_eq!(build["status"], "success");

    // Scrapes go on failing to store, and say why, while the disk is full.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape_error = loop {
        let targets = get_json(&app, "/api/v1/targets");
        let error = targets["data"]["activeTargets"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !error.is_empty() {
            break error;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape error on a full disk: {targets:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        scrape_error.contains("No space left on device"),
        "{scrape_error}"
    );

    // Space returns: ingestion resumes without a restart.
    std::fs::remove_file(&filler).unwrap();
    let space_returned_ms = (now_ns() / 1_000_000) as i64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = push(&app, "after space returned");
        if status == 204 {
            acknowledged.push("after space returned".to_owned());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pushes still refused: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, body_text) = remote_write(&app, body, "snappy");
    assert_eq!(
        status, 204,
        "remote write after space returned: {body_text}"
    );
    // And scrapes store again: an `up` sample newer than the moment space returned.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = get_json(&app, "/api/v1/query?query=timestamp(up{job=\"self\"})");
        let newest = up["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0);
        if newest * 1000.0 > space_returned_ms as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scrapes did not store again: {up:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Nothing acknowledged was lost, also across a kill -9 and a replay of the WAL the full
    // disk cut short.
    app.signal("KILL");
    assert!(app.wait_for_exit(Duration::from_secs(10)).is_some());
    let app = Appliance::start(&data, &args);
    let mut after = stored(&app);
    let mut expected = acknowledged.clone();
    after.sort();
    expected.sort();
    assert_eq!(
        after.len(),
        expected.len(),
        "acknowledged lines lost or duplicated after the restart"
    );
    assert_eq!(after, expected);
    eprintln!(
        "refused with 507 after {} acknowledged pushes; all {} present after kill -9",
        acknowledged.len() - 2,
        acknowledged.len()
    );
}

/// The built-in rule on a real, filling data disk: critical (over 90 %) is sent with priority
/// 1 and warning (over 80 %) with priority 0, as the route's template decides from the rule's
/// `severity`. Only the rule's `for` is shortened here (`builtin_rules.overrides`); its 5
/// minutes are shown by the rule's unit tests (alerting/builtin/homelab.rules.test.yaml).
#[test]
fn a_data_disk_filled_past_90_percent_pages_with_priority_1() {
    let pushover = FakePushover::start();
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mount, "48m");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            r#"global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: node-exporter
    metrics_path: /metrics/node
    static_configs: [{{targets: ['{listen}']}}]
builtin_rules:
  overrides:
    NodeFilesystemSpaceFillingUp: {{for: 2s}}
alertmanager:
  route:
    receiver: phone
    group_by: [alertname, mountpoint, severity]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
    routes:
      - matchers: [alertname="Watchdog"]
        receiver: "null"
  receivers:
    - name: "null"
    - name: phone
      pushover_configs:
        - user_key: user-1
          token: token-1
          api_url: {}
          priority: '{{{{ if eq .CommonLabels.severity "critical" }}}}1{{{{ else }}}}0{{{{ end }}}}'
          title: '{{{{ .CommonLabels.alertname }}}} {{{{ .CommonLabels.severity }}}}'
          message: '{{{{ .CommonLabels.mountpoint }}}}: {{{{ (index .Alerts 0).Annotations.description }}}}'
"#,
            pushover.url()
        ),
    );
    let args = ["--config", config.to_str().unwrap(), "--listen", &listen];
    let _app = Appliance::start(&mount.join("data"), &args);

    // Fill the disk, then give 3 MiB of its 48 back: about 94 % used, room to keep writing.
    let filler = mount.join("filler");
    fill(&filler);
    let full = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(full - (3 << 20))
        .unwrap();

    let ours = format!("{}: ", mount.display());
    let paged = |severity: &'static str| {
        let title = format!("NodeFilesystemSpaceFillingUp {severity}");
        pushover.wait_until(
            &format!("{title:?} for {}", mount.display()),
            Duration::from_secs(40),
            |form| form["title"] == title && form["message"].starts_with(&ours),
        )
    };
    let critical = paged("critical");
    assert_eq!(critical["priority"], "1", "{critical:#?}");
    assert_eq!(critical["user"], "user-1");
    assert!(
        critical["message"].contains("% full") && critical["message"].contains("tmpfs"),
        "the description names the device and the humanized fill: {critical:#?}"
    );
    let warning = paged("warning");
    assert_eq!(warning["priority"], "0", "{warning:#?}");
}
