#!/usr/bin/env python3
"""Time to first render and bytes transferred for Home and a 20-panel dashboard.

Runs a release `sightline` (self-scrape and the built-in node-exporter collectors every
second, plus a generated 20-panel dashboard over their series), lets data accumulate, then
loads each page in headless Chromium through chromedriver, each run in a fresh session
with an empty cache: first contentful paint, when the page was complete (Home: the load
event; the dashboard: every panel drawn), and the bytes that crossed the wire (the
navigation and every resource, as transferred, i.e. compressed).

    benches/ui_render.py --binary $CARGO_TARGET_DIR/release/sightline --runs 10

Goal (issue 9): < 300 ms and < 500 KB for each page. Loopback only.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

QUERIES = [
    ("CPU busy", "1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"}[$__rate_interval]))", "percentunit", "timeseries"),
    ("CPU by mode", "sum by (mode) (rate(node_cpu_seconds_total[$__rate_interval]))", "short", "timeseries"),
    ("Load 1m", "node_load1", "short", "stat"),
    ("Load", "node_load1", "short", "timeseries"),
    ("Memory used", "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "percentunit", "gauge"),
    ("Memory", "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", "bytes", "timeseries"),
    ("Disk read", "sum(rate(node_disk_read_bytes_total[$__rate_interval]))", "Bps", "timeseries"),
    ("Disk written", "sum(rate(node_disk_written_bytes_total[$__rate_interval]))", "Bps", "timeseries"),
    ("Network in", "sum by (device) (rate(node_network_receive_bytes_total[$__rate_interval]))", "bps", "timeseries"),
    ("Network out", "sum by (device) (rate(node_network_transmit_bytes_total[$__rate_interval]))", "bps", "timeseries"),
    ("Filesystem use", "1 - node_filesystem_avail_bytes / node_filesystem_size_bytes", "percentunit", "bargauge"),
    ("Open fds", "node_filefd_allocated", "short", "stat"),
    ("Context switches", "rate(node_context_switches_total[$__rate_interval])", "ops", "timeseries"),
    ("Interrupts", "rate(node_intr_total[$__rate_interval])", "ops", "timeseries"),
    ("Samples appended", "rate(sightline_tsdb_head_samples_appended_total[$__rate_interval])", "short", "timeseries"),
    ("Head series", "sightline_tsdb_head_series", "short", "stat"),
    ("HTTP requests", "sum by (handler) (rate(sightline_http_requests_total[$__rate_interval]))", "reqps", "timeseries"),
    ("Resident memory", "process_resident_memory_bytes", "bytes", "timeseries"),
    ("Scrape duration", "scrape_duration_seconds", "s", "timeseries"),
    ("Targets", "up", "short", "table"),
]


def dashboard():
    panels = []
    for index, (title, expr, unit, kind) in enumerate(QUERIES):
        target = {"expr": expr, "refId": "A"}
        if kind == "table":
            target.update({"format": "table", "instant": True})
        panels.append({
            "id": index + 1, "type": kind, "title": title,
            "gridPos": {"x": (index % 4) * 6, "y": (index // 4) * 8, "w": 6, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [target],
        })
    return {"uid": "bench-20", "title": "Bench 20 panels", "time": {"from": "now-15m", "to": "now"}, "panels": panels}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listened on {port}")


def webdriver(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())["value"]


MEASURE = """
const nav = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
const resources = performance.getEntriesByType('resource');
const done = window.sightlineDashboard ? window.sightlineDashboard.finishedAt : nav.loadEventEnd;
return {fcp: paint ? paint.startTime : null, complete: done,
        bytes: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
        requests: 1 + resources.length,
        errors: window.sightlineDashboard ? window.sightlineDashboard.errors.length : 0};
"""

PAINTED = "performance.getEntriesByType('paint').some(p => p.name === 'first-contentful-paint')"
READY = {
    "home": f"return {PAINTED} && document.readyState === 'complete' && performance.getEntriesByType('navigation')[0].loadEventEnd > 0;",
    "dashboard": f"return {PAINTED} && !!(window.sightlineDashboard && window.sightlineDashboard.finished);",
}


def measure(driver_port, url, kind, profile):
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", "--window-size=1280,900",
            f"--user-data-dir={profile}"]}}}}
    session = webdriver(driver_port, "POST", "/session", caps)["sessionId"]
    try:
        webdriver(driver_port, "POST", f"/session/{session}/url", {"url": url})
        deadline = time.time() + 30
        while not webdriver(driver_port, "POST", f"/session/{session}/execute/sync", {"script": READY[kind], "args": []}):
            if time.time() > deadline:
                raise SystemExit(f"{url} did not finish")
            time.sleep(0.02)
        return webdriver(driver_port, "POST", f"/session/{session}/execute/sync", {"script": MEASURE, "args": []})
    finally:
        webdriver(driver_port, "DELETE", f"/session/{session}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.expanduser("~/.cache/sightline-target/release/sightline"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20, help="seconds of data before measuring")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ui-bench-")
    port, driver_port = free_port(), free_port()
    os.makedirs(f"{work}/dashboards")
    with open(f"{work}/dashboards/bench.json", "w") as out:
        json.dump(dashboard(), out)
    with open(f"{work}/sightline.yml", "w") as out:
        out.write(f"""scrape_configs:
  - job_name: sightline
    scrape_interval: 1s
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
  - job_name: node-exporter
    scrape_interval: 1s
    metrics_path: /metrics/node
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
dashboards:
  paths: [{work}/dashboards]
""")
    server = subprocess.Popen([args.binary, "--config", f"{work}/sightline.yml", "--data-dir", f"{work}/data",
                               "--listen", f"127.0.0.1:{port}", "--log-level", "warn"])
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        wait_port(driver_port)
        time.sleep(args.warmup)
        pages = [("Home", f"http://127.0.0.1:{port}/", "home"),
                 ("20-panel dashboard", f"http://127.0.0.1:{port}/d/bench-20", "dashboard")]
        for name, url, kind in pages:
            runs = [measure(driver_port, url, kind, f"{work}/profile-{kind}-{i}") for i in range(args.runs)]
            fcp = [r["fcp"] for r in runs]
            complete = [r["complete"] for r in runs]
            kib = [r["bytes"] / 1024 for r in runs]
            errors = sum(r["errors"] for r in runs)
            print(f"{name}: first contentful paint median {statistics.median(fcp):.0f} ms (max {max(fcp):.0f}), "
                  f"complete median {statistics.median(complete):.0f} ms (max {max(complete):.0f}), "
                  f"{statistics.median(kib):.1f} KiB in {runs[0]['requests']} requests, "
                  f"{errors} panel errors, {args.runs} cold-cache runs")
    finally:
        driver.terminate()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
