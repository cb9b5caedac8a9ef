//! Overload: heavy queries cannot starve ingestion. Sightline scrapes a target of 50,000
//! series every second and takes a log push every 200 ms while twenty clients (the engine's
//! concurrency limit) run expensive range queries back to back for 15 s, far more than the
//! two cores can serve. Queries run on low-priority threads (ui/src/query_thread.rs), so
//! scrapes keep their interval and pushes stay fast. (With the query threads at normal
//! priority, the same run stored 11 scrapes in 15 s, with a 2.1 s gap.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, get_json, http, write_file};
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

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn heavy_queries_do_not_starve_scrapes_or_pushes() {
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
