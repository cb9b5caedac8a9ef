//! Overload.
//!
//! Heavy queries cannot starve ingestion: Sightline scrapes a target of 50,000 series every
//! second and takes a log push every 200 ms while twenty clients (the engine's concurrency
//! limit) run expensive range queries back to back for 15 s, far more than the two cores can
//! serve. Queries run on low-priority threads (ui/src/query_thread.rs), so scrapes keep their
//! interval and pushes stay fast. (With the query threads at normal priority, the same run
//! stored 11 scrapes in 15 s, with a 2.1 s gap.)
//!
//! A flood of pushes meets 429 with `Retry-After`, from the rate limits and from the memory
//! ceiling, and resident memory stays under the ceiling; what was acknowledged is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, get_json, http, push_json, write_file};
use serde_json::json;

/// Serves `series` gauges in the text format on a loopback port; returns the port.
fn serve_series(series: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut body = String::from("# TYPE load_gauge gauge\n");
    for i in 0..series {
        body.push_str(&format!(
            "load_gauge{{shard=\"{}\",item=\"{i}\"}} {}\n",
            i % 50,
            i % 97
        ));
    }
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// The tests of this file load both cores on purpose; run in parallel, the push flood starves
/// the scrapes the heavy-query test times. Each holds this while it runs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn heavy_queries_do_not_starve_scrapes_or_pushes() {
    let _alone = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let port = serve_series(50_000);
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "scrape_configs:\n  - job_name: load\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    );
    let app = Arc::new(Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    ));
    // A few seconds of history is enough: 50,000 series and a fine step make each query
    // cost seconds.
    std::thread::sleep(Duration::from_secs(5));

    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let (app, stop, queries) = (app.clone(), stop.clone(), queries.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let end = now_s();
                    let url = format!(
                        "{}?query=sum%20by%20(shard)%20(count_over_time(load_gauge%5B5m%5D))&start={}&end={end}&step=0.2",
                        app.url("/api/v1/query_range"),
                        end - 60.0
                    );
                    if client.get(url).send().is_ok() {
                        queries.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();

    // Pushes every 200 ms while the queries run, timed.
    let started = now_s();
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let ns = (now_s() * 1e9) as i64;
        let body = json!({"streams": [{"stream": {"app": "door"}, "values": [[ns.to_string(), "opened"]]}]});
        let sent = Instant::now();
        let response = http()
            .post(app.url("/loki/api/v1/push"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
        slowest = slowest.max(sent.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let finished = now_s();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }

    // Every scrape of the window is stored: no gap longer than two intervals.
    let answer = get_json(
        &app,
        &format!(
            "/api/v1/query?query=up%7Bjob%3D%22load%22%7D%5B{}s%5D&time={finished}",
            (finished - started).ceil() as i64
        ),
    );
    let times: Vec<f64> = answer["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_f64().unwrap())
        .collect();
    let widest = times
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .fold(0.0, f64::max);
    let served = queries.load(Ordering::SeqCst);
    eprintln!(
        "{served} heavy queries served; {} scrapes in {:.0} s, widest gap {widest:.2} s; slowest push {slowest:?}",
        times.len(),
        finished - started
    );
    assert!(served >= 8, "the queries did run ({served})");
    assert!(times.len() >= 12, "{} scrapes in 15 s", times.len());
    assert!(widest <= 2.5, "a scrape gap of {widest:.2} s");
    assert!(slowest < Duration::from_secs(2), "a push took {slowest:?}");
}

/// The child's resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
fn resident_memory(app: &Appliance) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib << 10
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What a flood of pushes was answered.
#[derive(Debug, Default)]
struct Flood {
    /// Pushes answered 204, and the lines they carried.
    stored_pushes: usize,
    stored_lines: usize,
    /// Pushes answered 429 with a `Retry-After` of at least one second, and their answers.
    refused: Vec<String>,
    /// Any other status.
    other: Vec<u16>,
}

const MIB: u64 = 1 << 20;

/// Lines per stream of a flood push, and streams per push: 8 MiB of JSON.
const FLOOD_LINES: usize = 8192;
const FLOOD_STREAMS: usize = 4;

/// `clients` threads POST 8 MiB JSON pushes back to back for `duration`, each push to new
/// streams (labels `job="flood"`, `client`, `push`, `stream`) so that every line is kept.
fn flood(app: &Arc<Appliance>, clients: usize, duration: Duration) -> Flood {
    let line = format!("level=info msg=\"{}\"", "x".repeat(220));
    let ns = (now_s() * 1e9) as i64;
    let mut template = String::from("{\"streams\":[");
    for stream in 0..FLOOD_STREAMS {
        if stream > 0 {
            template.push(',');
        }
        template.push_str(&format!(
            "{{\"stream\":{{\"job\":\"flood\",\"client\":\"@CLIENT@\",\"push\":\"@PUSH@\",\"stream\":\"{stream}\"}},\"values\":["
        ));
        for i in 0..FLOOD_LINES {
            if i > 0 {
                template.push(',');
            }
            template.push_str(&format!(
                "[\"{}\",\"{}\"]",
                ns + i as i64,
                line.replace('"', "\\\"")
            ));
        }
        template.push_str("]}");
    }
    template.push_str("]}");
    let template = Arc::new(template);
    let until = Instant::now() + duration;
    let threads: Vec<_> = (0..clients)
        .map(|client_index| {
            let (app, template) = (app.clone(), template.clone());
            std::thread::spawn(move || {
                let client = http();
                let mut flood = Flood::default();
                let mut push = 0;
                while Instant::now() < until {
                    push += 1;
                    let body = template
                        .replace("@CLIENT@", &client_index.to_string())
                        .replace("@PUSH@", &push.to_string());
                    let response = push_json(&client, &app, body);
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("Retry-After")
                        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
                    let text = response.text().unwrap();
                    match status {
                        204 => {
                            flood.stored_pushes += 1;
                            flood.stored_lines += FLOOD_LINES * FLOOD_STREAMS;
                        }
                        429 if retry_after.is_some_and(|seconds| seconds >= 1) => {
                            flood.refused.push(text);
                            // An agent waits as told; the flood only pauses briefly.
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        other => flood.other.push(other),
                    }
                }
                flood
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .fold(Flood::default(), |mut total, flood| {
            total.stored_pushes += flood.stored_pushes;
            total.stored_lines += flood.stored_lines;
            total.refused.extend(flood.refused);
            total.other.extend(flood.other);
            total
        })
}

/// The lines stored for `selector`, counted by a LogQL query over the last hour.
fn lines_stored(app: &Appliance, selector: &str) -> usize {
    let url = reqwest::Url::parse_with_params(
        &app.url("/loki/api/v1/query"),
        [("query", format!("sum(count_over_time({selector}[1h]))"))],
    )
    .unwrap();
    let text = http().get(url).send().unwrap().text().unwrap();
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    answer["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0, |count| count.parse().unwrap())
}

fn flood_config(dir: &std::path::Path, limits: &str) -> std::path::PathBuf {
    write_file(dir, "sightline.yml", &format!("limits:\n{limits}"))
}

#[test]
fn a_push_flood_meets_429_and_resident_memory_stays_under_the_ceiling() {
    let _alone = one_at_a_time();
    const CLIENTS: usize = 8;
    const FLOOD: Duration = Duration::from_secs(6);
    let no_rate_limits = "  logs: {ingestion_rate: 0, per_stream_rate_limit: 0}\n";

    // Without a ceiling, the flood's peak: how much memory it takes.
    let unbounded_dir = tempfile::tempdir().unwrap();
    let config = flood_config(unbounded_dir.path(), no_rate_limits);
    let unbounded = Arc::new(Appliance::start(
        &unbounded_dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    ));
    let (idle, _) = resident_memory(&unbounded);
    let unbounded_flood = flood(&unbounded, CLIENTS, FLOOD);
    let (_, unbounded_peak) = resident_memory(&unbounded);
    eprintln!(
        "no ceiling: idle {} MiB, peak {} MiB; {unbounded_flood:?}",
        idle / MIB,
        unbounded_peak / MIB
    );
    assert!(unbounded_flood.refused.is_empty() && unbounded_flood.other.is_empty());
    assert!(
        unbounded_peak > idle + 64 * MIB,
        "the flood takes memory: idle {idle}, peak {unbounded_peak}"
    );
    drop(unbounded);

    // With a ceiling halfway up, the same flood stays under it.
    let ceiling = idle + (unbounded_peak - idle) / 2;
    let dir = tempfile::tempdir().unwrap();
    let limits = format!("  memory_ceiling: {ceiling}\n{no_rate_limits}");
    let config = flood_config(dir.path(), &limits);
    let app = Arc::new(Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    ));
    let bounded = flood(&app, CLIENTS, FLOOD);
    let (_, peak) = resident_memory(&app);
    eprintln!(
        "ceiling {} MiB: peak {} MiB; {} pushes stored, {} refused, other {:?}",
        ceiling / MIB,
        peak / MIB,
        bounded.stored_pushes,
        bounded.refused.len(),
        bounded.other
    );
    assert!(peak < ceiling, "peak {peak} over the ceiling {ceiling}");
    assert!(bounded.other.is_empty(), "{:?}", bounded.other);
    assert!(bounded.stored_pushes > 0, "pushes still get through");
    assert!(!bounded.refused.is_empty(), "the ceiling refused pushes");
    assert!(
        bounded.refused[0].contains("limits.memory_ceiling"),
        "{}",
        bounded.refused[0]
    );
    assert!(
        app.log()
            .iter()
            .any(|line| line.contains("refusing pushes with 429: memory ceiling reached")),
        "a log line says why"
    );
    assert_eq!(
        lines_stored(&app, "{job=\"flood\"}"),
        bounded.stored_lines,
        "every acknowledged line is stored"
    );
    assert_eq!(
        app.wait_for_metric("sightline_memory_ceiling_refused_pushes_total "),
        format!(
            "sightline_memory_ceiling_refused_pushes_total {}",
            bounded.refused.len()
        )
    );

    // Under the ceiling everything comes back: a push and a remote write are stored. Over it
    // (here: a ceiling below what is resident) both are refused, and stored again once it is
    // raised.
    let small_push = |app: &Appliance| {
        let ns = (now_s() * 1e9) as i64;
        let body =
            json!({"streams": [{"stream": {"job": "after"}, "values": [[ns.to_string(), "ok"]]}]});
        let response = push_json(&http(), app, body.to_string());
        let retry_after = response.headers().get("Retry-After").cloned();
        (response.status().as_u16(), retry_after)
    };
    let remote_write = |app: &Appliance| {
        let now_ms = (now_s() * 1e3) as i64;
        let body = common::remote_write_body(&[(
            &[("__name__", "after_flood"), ("job", "push")],
            &[(now_ms, 1.0)],
        )]);
        common::remote_write(app, body, "snappy").0
    };
    assert_eq!(small_push(&app).0, 204);
    assert_eq!(remote_write(&app), 204);
    let reload = |limits: &str| {
        flood_config(dir.path(), limits);
        let response = http().post(app.url("/-/reload")).send().unwrap();
        assert_eq!(response.status().as_u16(), 200);
    };
    reload(&format!("  memory_ceiling: 1MiB\n{no_rate_limits}"));
    let (status, retry_after) = small_push(&app);
    assert_eq!(status, 429);
    assert_eq!(retry_after.unwrap(), "1");
    assert_eq!(remote_write(&app), 429);
    reload(&limits);
    assert_eq!(small_push(&app).0, 204);
    assert_eq!(remote_write(&app), 204);

    // Ten times the configured rate (1 MiB/s, bursts of 2 MiB) for 3 s, in pushes of 1 MB
    // every 100 ms: what passes the rate is refused with 429 and Retry-After.
    reload(
        "  logs: {ingestion_rate: 1MiB, ingestion_burst_size: 2MiB, per_stream_rate_limit: 0}\n",
    );
    let line = "r".repeat(1000);
    let started = Instant::now();
    let (mut offered, mut stored, mut limited) = (0u64, 0u64, 0);
    for push in 0..30u32 {
        let ns = (now_s() * 1e9) as i64;
        let values: Vec<_> = (0..1000)
            .map(|i| json!([(ns + i).to_string(), line]))
            .collect();
        let body = json!({"streams": [{"stream": {"job": "rate", "push": push.to_string()}, "values": values}]});
        offered += 1000 * 1000;
        let response = push_json(&http(), &app, body.to_string());
        match response.status().as_u16() {
            204 => stored += 1000 * 1000,
            429 => {
                assert!(response.headers().contains_key("Retry-After"));
                limited += 1;
            }
            other => panic!("status {other}: {}", response.text().unwrap()),
        }
        let next = started + Duration::from_millis(100) * (push + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "rate limit: offered {} MB in {elapsed:?}, stored {} MB, {limited} pushes refused",
        offered / 1_000_000,
        stored / 1_000_000,
    );
    assert!(limited > 0);
    let allowed = 2 * MIB + elapsed.as_secs_f64().ceil() as u64 * MIB;
    assert!(stored <= allowed, "stored {stored} over {allowed}");
    assert!(
        stored >= 2 * MIB,
        "the burst and the rate get through: {stored}"
    );
}
