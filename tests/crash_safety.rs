//! Crash safety under load: `kill -9` at random moments, several times in a row, while logs
//! are pushed and Sightline scrapes itself every second. After every restart no acknowledged
//! (2xx) log line is missing, and no scraped sample older than the WAL sync interval is. A
//! firing alert survives kills without being notified twice within its repeat interval.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, Recorder, free_port, get_json, http, write_file};

/// Kills in a row.
const ROUNDS: usize = 5;
/// Lines per push request.
const LINES_PER_PUSH: u64 = 20;
/// `storage.wal_sync` of the test config.
const WAL_SYNC: Duration = Duration::from_secs(1);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Pushes numbered lines until `stop`, recording the numbers of the lines that got a 2xx.
fn push_until(push_url: String, first: u64, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<u64>>>) {
    let client = http();
    let mut next = first;
    while !stop.load(Ordering::Relaxed) {
        let numbers: Vec<u64> = (next..next + LINES_PER_PUSH).collect();
        next += LINES_PER_PUSH;
        let values: Vec<_> = numbers
            .iter()
            .map(|n| serde_json::json!([now_ns().to_string(), format!("crash-test line {n}")]))
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"job": "crash"}, "values": values}]});
        if let Ok(response) = client
            .post(&push_url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            && response.status().is_success()
        {
            acked.lock().unwrap().extend(numbers);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The line numbers stored for `{job="crash"}`, read back through the Loki API.
fn stored_lines(app: &Appliance) -> Vec<u64> {
    let end = now_ns() + 1_000_000_000;
    let start = end - 3_600_000_000_000;
    let mut numbers = Vec::new();
    let mut from = start;
    loop {
        let answer = get_json(
            app,
            &format!(
                "/loki/api/v1/query_range?query=%7Bjob%3D%22crash%22%7D&start={from}&end={end}&limit=5000&direction=forward"
            ),
        );
        let mut last = None;
        let mut page = 0;
        for stream in answer["data"]["result"].as_array().unwrap() {
            for entry in stream["values"].as_array().unwrap() {
                let ts: u128 = entry[0].as_str().unwrap().parse().unwrap();
                let line = entry[1].as_str().unwrap();
                numbers.push(line.rsplit(' ').next().unwrap().parse::<u64>().unwrap());
                last = Some(last.map_or(ts, |l: u128| l.max(ts)));
                page += 1;
            }
        }
        match last {
            Some(last) if page == 5000 => from = last + 1,
            _ => return numbers,
        }
    }
}

/// Timestamps (ms) of the stored `up{job="sightline"}` samples of the last hour.
fn stored_up_timestamps(app: &Appliance) -> BTreeSet<i64> {
    let answer = get_json(
        app,
        "/api/v1/query?query=up%7Bjob%3D%22sightline%22%7D%5B1h%5D",
    );
    let mut timestamps = BTreeSet::new();
    for series in answer["data"]["result"].as_array().unwrap() {
        for sample in series["values"].as_array().unwrap() {
            timestamps.insert((sample[0].as_f64().unwrap() * 1000.0).round() as i64);
        }
    }
    timestamps
}

fn start(data: &Path, config: &Path, listen: &str) -> Appliance {
    Appliance::start(
        data,
        &["--config", config.to_str().unwrap(), "--listen", listen],
    )
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_line_and_no_synced_sample() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "scrape_configs:\n  - job_name: sightline\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{listen}']}}]\nstorage:\n  wal_sync: 1s\n"
        ),
    );
    let acked = Arc::new(Mutex::new(Vec::new()));
    // Samples seen through the API more than one WAL sync interval before a kill: synced.
    let mut synced_samples = BTreeSet::new();
    // A different pause before each kill, from 1.3 s to 3.7 s, so kills land at varied
    // moments of the sync and scrape cycles.
    let pauses_ms = [1300_u64, 3700, 2100, 2900, 1700];
    for (round, pause) in pauses_ms.iter().enumerate().take(ROUNDS) {
        let app = start(&data, &config, &listen);
        let stop = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (url, stop, acked) = (app.url("/loki/api/v1/push"), stop.clone(), acked.clone());
            let first = (round as u64 + 1) * 1_000_000;
            std::thread::spawn(move || push_until(url, first, stop, acked))
        };
        std::thread::sleep(Duration::from_millis(*pause));
        let seen = stored_up_timestamps(&app);
        let seen_at = Instant::now();
        std::thread::sleep(WAL_SYNC + Duration::from_millis(300));
        let mut app = app;
        app.signal("KILL");
        assert!(app.wait_for_exit(Duration::from_secs(10)).is_some());
        stop.store(true, Ordering::Relaxed);
        pusher.join().unwrap();
        assert!(seen_at.elapsed() > WAL_SYNC);
        synced_samples.extend(seen);
    }

    let app = start(&data, &config, &listen);
    let stored: BTreeSet<u64> = stored_lines(&app).into_iter().collect();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() as u64 >= ROUNDS as u64 * LINES_PER_PUSH,
        "too few pushes were acknowledged to test anything: {}",
        acked.len()
    );
    let missing: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged lines are missing after {ROUNDS} kills, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    let samples = stored_up_timestamps(&app);
    let lost: Vec<_> = synced_samples.difference(&samples).collect();
    assert!(
        lost.is_empty(),
        "{} of {} samples older than the WAL sync interval are missing after {ROUNDS} kills: {lost:?}",
        lost.len(),
        synced_samples.len()
    );
    eprintln!(
        "{ROUNDS} kills: {} acknowledged lines all stored ({} stored in all), {} synced samples all kept",
        acked.len(),
        stored.len(),
        synced_samples.len()
    );
}

/// The firing notifications of `alertname` a webhook received.
fn firing_notifications(hook: &Recorder, alertname: &str) -> usize {
    hook.bodies()
        .iter()
        .filter_map(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
        .filter(|payload| {
            payload["status"] == "firing"
                && payload["alerts"].as_array().is_some_and(|alerts| {
                    alerts.iter().any(|a| a["labels"]["alertname"] == alertname)
                })
        })
        .count()
}

#[test]
fn sigkill_neither_repeats_nor_loses_a_notification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hook = Recorder::start("{}");
    let rules = write_file(
        dir.path(),
        "crash.rules.yml",
        "groups:\n  - name: crash\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n",
    );
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "rule_files: [{}]\nbuiltin_rules: {{enabled: false}}\nalertmanager:\n  route: {{receiver: hook, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}\n  receivers:\n    - name: hook\n      webhook_configs: [{{url: '{}'}}]\n",
            rules.display(),
            hook.url("/hook")
        ),
    );
    let mut app = start(&data, &config, "127.0.0.1:0");
    let listen = app.address.to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while firing_notifications(&hook, "AlwaysFiring") == 0 {
        assert!(Instant::now() < deadline, "the alert was never notified");
        std::thread::sleep(Duration::from_millis(100));
    }
    for round in 0..3 {
        // Past the moment the notification log is written, then killed.
        std::thread::sleep(Duration::from_millis(500));
        app.signal("KILL");
        assert!(app.wait_for_exit(Duration::from_secs(10)).is_some());
        app = start(&data, &config, &listen);
        // Several rule evaluations and dispatches after the restart.
        std::thread::sleep(Duration::from_secs(4));
        let alerts = get_json(&app, "/api/v2/alerts");
        assert!(
            alerts
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["alertname"] == "AlwaysFiring"),
            "round {round}: the alert is lost after the restart: {alerts:#}"
        );
        assert_eq!(
            firing_notifications(&hook, "AlwaysFiring"),
            1,
            "round {round}: notified again within repeat_interval"
        );
    }
}
