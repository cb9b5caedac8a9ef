//! CPU time of one collection of the built-in host metrics, against the named baseline: the
//! CPU time the real node-exporter (Debian package, the same 13 collectors) spends per scrape,
//! measured in the same run from its /proc/<pid>/stat.
//!
//! `cargo bench --bench host_metrics` (set `HOST_BENCH_SCRAPES`, default 300).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Bench output.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use cpu_time::ThreadTime;
use sightline_scraper::host::{HostCollector, collector_names};

/// utime + stime of `pid`, in seconds.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn scrape(port: u16) -> usize {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).unwrap();
    body.len()
}

fn main() {
    let scrapes: usize = std::env::var("HOST_BENCH_SCRAPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new("/usr/bin/prometheus-node-exporter");
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for collector in collector_names() {
        command.arg(format!("--collector.{collector}"));
    }
    let mut exporter = command
        .spawn()
        .expect("apt-get install prometheus-node-exporter");
    std::thread::sleep(Duration::from_secs(1));
    scrape(port);
    let before = process_cpu(exporter.id());
    let mut their_bytes = 0;
    for _ in 0..scrapes {
        their_bytes += scrape(port);
    }
    let theirs = (process_cpu(exporter.id()) - before) / scrapes as f64;
    let _ = exporter.kill();
    let _ = exporter.wait();

    let collector = HostCollector::default();
    collector.render();
    let started = ThreadTime::now();
    let mut our_bytes = 0;
    for _ in 0..scrapes {
        our_bytes += collector.render().len();
    }
    let ours = started.elapsed().as_secs_f64() / scrapes as f64;
    println!(
        "host metrics, {scrapes} collections: Sightline {:.3} ms CPU per collection ({} bytes), \
         node-exporter {:.3} ms CPU per scrape ({} bytes): ratio {:.2}",
        ours * 1e3,
        our_bytes / scrapes,
        theirs * 1e3,
        their_bytes / scrapes,
        ours / theirs
    );
}
