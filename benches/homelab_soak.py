#!/usr/bin/env python3
"""The homelab soak: Sightline against a simulated homelab for a bounded time.

Starts, on 127.0.0.1 only:
  - 30 synthetic targets (../shared/bench/metrics/targets.py) and the real
    prometheus-node-exporter, scraped every 15 s;
  - a "switch" target whose gauge the harness flips to 1 at a known moment, with a rule
    that alerts on it, to measure alert latency (condition true -> Pushover request);
  - local fake Pushover and Telegram servers that record what they get;
  - 20 log streams of loggen's lines (../shared/bench/logs/loggen) pushed as Loki JSON at
    a steady rate with a burst of 10x every minute;
  - Sightline (the release binary by default) with the fixture rules of
    ../shared/fixtures/rules/plain and a notifier routing to the fake receivers.

With --peers, Prometheus and VictoriaMetrics (Debian packages `prometheus`,
`victoria-metrics`) run alongside in the same run, scraping the same targets at the same
interval (Prometheus also evaluates the same fixture rules; VictoriaMetrics single-node has
no rule evaluation), for a side-by-side table of the metric load.

While it runs it samples each process's CPU and RSS every 5 s and times a fixed set of PromQL
(and, on Sightline, LogQL) queries every 30 s. At the end it checks that every pushed
(acknowledged) log line is stored, and prints a Markdown report: CPU, RSS over time, disk
growth per day (extrapolated from the second half, with and without the write-ahead logs,
whose size cycles with block cuts), alert latency, query latencies, next to the seed stack's
budget, and the side-by-side table (metric stores' disk only).

Usage: benches/homelab_soak.py [--binary target/release/sightline] [--duration 600] [--peers]
"""

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TARGETS_PY = SHARED / "bench/metrics/targets.py"
FIXTURE_RULES = SHARED / "fixtures/rules/plain"
LOGGEN = SHARED / "bench/logs/loggen"
# One `name="value"` of a label set as loggen prints it.
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMETHEUS = "/usr/bin/prometheus"
VICTORIA_METRICS = "/usr/bin/victoria-metrics"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

PROMQL_QUERIES = [
    "sum by (job) (rate(scrape_samples_scraped[5m]))",
    'sum by (code) (rate(http_requests_total[5m]))',
    "topk(10, rate(container_cpu_usage_seconds_total[5m]))",
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
    "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
]
LOGQL_QUERIES = [
    'sum by (app) (count_over_time({namespace=~".+"}[5m]))',
    '{namespace="media"} |= "error"',
    'sum by (app) (rate({namespace=~".+"} | logfmt | level="error" [5m]))',
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {timeout} s")


class Recorder(http.server.ThreadingHTTPServer):
    """A fake Pushover or Telegram API: answers as the real one and records the requests."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


class RecorderHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((time.time(), self.path, body.decode("utf-8", "replace")))
        payload = json.dumps(self.server.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class Switch(http.server.ThreadingHTTPServer):
    """A scrape target exposing `homelab_switch`, 0 until the harness flips it."""

    def __init__(self):
        self.value = 0
        self.flipped_at = None
        super().__init__(("127.0.0.1", 0), SwitchHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def flip(self):
        self.value = 1
        self.flipped_at = time.time()


class SwitchHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"# TYPE homelab_switch gauge\nhomelab_switch {self.server.value}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def scrape_configs(target_ports, node_port, switch_port):
    """The scrape jobs every process of the run gets: the targets, node-exporter, the switch."""
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in target_ports)
    return f"""scrape_configs:
  - job_name: homelab
    static_configs: [{{targets: [{targets}]}}]
  - job_name: node-exporter
    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]
  - job_name: switch
    scrape_interval: 1s
    static_configs: [{{targets: ['127.0.0.1:{switch_port}']}}]
"""


def write_config(work, target_ports, node_port, switch_port, pushover, telegram, listen,
                 block_range):
    rules = work / "rules"
    rules.mkdir()
    for rule_file in sorted(FIXTURE_RULES.glob("*.yaml")):
        shutil.copy(rule_file, rules / rule_file.name)
    (rules / "soak.yaml").write_text(
        "groups:\n"
        "  - name: soak\n"
        "    interval: 1s\n"
        "    rules:\n"
        "      - alert: SoakSwitchOn\n"
        "        expr: homelab_switch == 1\n"
        "        labels: {severity: critical}\n"
        "        annotations: {summary: the soak harness flipped its switch}\n"
    )
    scrape = scrape_configs(target_ports, node_port, switch_port)
    storage = f"storage: {{metrics: {{block_range: {block_range}}}}}\n" if block_range else ""
    (work / "sightline.yml").write_text(f"""{storage}
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files: [rules/*.yaml]
{scrape}  - job_name: sightline
    static_configs: [{{targets: ['{listen}']}}]
alertmanager:
  route:
    receiver: telegram
    group_by: [alertname]
    group_wait: 30s
    routes:
      - matchers: [alertname="SoakSwitchOn"]
        receiver: pushover
        group_wait: 0s
  receivers:
    - name: pushover
      pushover_configs:
        - user_key: soak-user
          token: soak-token
          priority: "1"
          api_url: http://127.0.0.1:{pushover.port}/1/messages.json
    - name: telegram
      telegram_configs:
        - bot_token: "123:soak"
          chat_id: 42
          api_url: http://127.0.0.1:{telegram.port}
""")
    return work / "sightline.yml"


def write_peer_scrape_configs(work, target_ports, node_port, switch_port):
    """The metric part of Sightline's config: Prometheus's (with the rules) and
    VictoriaMetrics's (scrape only)."""
    scrape = scrape_configs(target_ports, node_port, switch_port)
    prometheus, victoria = work / "prometheus.yml", work / "victoria-metrics.yml"
    prometheus.write_text("global: {scrape_interval: 15s, evaluation_interval: 15s}\n"
                          "rule_files: [rules/*.yaml]\n" + scrape)
    victoria.write_text("global: {scrape_interval: 15s}\n" + scrape)
    return prometheus, victoria


class Peer:
    """A process measured in the run: its name, query URL and data directory."""

    def __init__(self, name, process, base, data):
        self.name, self.process, self.base, self.data = name, process, base, data
        self.samples = []
        self.timings = {q: [] for q in PROMQL_QUERIES}
        self.cpu0 = 0
        self.exited = None

    def start_measuring(self):
        self.cpu0, _ = process_sample(self.process.pid)

    def sample(self, elapsed):
        if self.process.poll() is not None:
            self.exited = self.exited or f"exited with {self.process.returncode} at {elapsed:.0f} s"
            return
        cpu, rss = process_sample(self.process.pid)
        self.samples.append((elapsed, cpu - self.cpu0, rss))

    def time_queries(self, now, failures):
        for query in PROMQL_QUERIES:
            time_query(f"{self.base}/api/v1/query_range", {
                "query": query, "start": now - 3600, "end": now, "step": 15},
                self.timings[query], failures)


def start_peers(work, configs, children, block_range):
    """Prometheus and VictoriaMetrics on the same targets, each on its own port; Prometheus
    with Sightline's block range when one is given (VictoriaMetrics has no blocks to cut)."""
    prometheus_config, victoria_config = configs
    blocks = [f"--storage.tsdb.min-block-duration={block_range}",
              f"--storage.tsdb.max-block-duration={block_range}"] if block_range else []
    peers = []
    for name, binary, argv in [
        ("Prometheus 2.42", PROMETHEUS, lambda listen, data: [
            f"--config.file={prometheus_config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address={listen}", *blocks]),
        ("VictoriaMetrics", VICTORIA_METRICS, lambda listen, data: [
            f"-promscrape.config={victoria_config}", f"-storageDataPath={data}",
            f"-httpListenAddr={listen}", "-retentionPeriod=7d"]),
    ]:
        if not os.path.exists(binary):
            raise SystemExit(f"missing {binary}: apt-get install prometheus victoria-metrics")
        listen = f"127.0.0.1:{free_port()}"
        data = work / name.split()[0].lower()
        data.mkdir()
        process = subprocess.Popen(
            [binary, *argv(listen, data)], cwd=work,
            stdout=open(work / f"{data.name}.log", "w"), stderr=subprocess.STDOUT)
        children.append(process)
        peers.append(Peer(name, process, f"http://{listen}", data))
    for peer in peers:
        wait_http(f"{peer.base}/-/ready" if peer.name.startswith("Prometheus")
                  else f"{peer.base}/health")
    return peers


def loggen_streams(count, lines_per_stream):
    """`count` streams of loggen's homelab lines (JSON, logfmt and plain, by app), as
    (labels, lines). loggen (../shared/bench/logs/loggen, built here on first use) pushes as
    fast as it can with timestamps spread over a past window, so the soak pushes its lines
    itself, at a rate and with present timestamps."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/sightline-target"))
    target = target / "loggen"
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                    str(LOGGEN / "Cargo.toml"), "--target-dir", str(target)], check=True)
    sample = subprocess.run(
        [str(target / "release/loggen"), "--streams", str(count), "--sample",
         str(lines_per_stream)], check=True, capture_output=True, text=True).stdout
    streams = {}
    for row in sample.splitlines():
        labels, line = row.split("\t", 1)
        streams.setdefault(labels, []).append(line)
    return [(dict(LABEL.findall(labels)), lines) for labels, lines in streams.items()]


class LogPusher(threading.Thread):
    """Pushes `streams` (labels, lines) at `rate` lines/s in all, 10x for 5 s every minute,
    each stream cycling through its lines; counts acknowledged lines."""

    def __init__(self, url, streams, rate, stop):
        super().__init__(daemon=True)
        self.url, self.streams, self.rate, self.stop = url, streams, rate, stop
        self.acknowledged = 0
        self.rejected = 0
        self.pushed = 0

    def run(self):
        start = time.time()
        while not self.stop.is_set():
            tick = time.time()
            burst = (tick - start) % 60 < 5
            per_stream = max(1, int(self.rate * (10 if burst else 1)) // len(self.streams))
            body = []
            for labels, lines in self.streams:
                values = []
                for k in range(per_stream):
                    line = lines[(self.pushed + k) % len(lines)]
                    values.append([str(time.time_ns()), line])
                body.append({"stream": labels, "values": values})
            self.pushed += per_stream
            count = per_stream * len(self.streams)
            request = urllib.request.Request(
                self.url, json.dumps({"streams": body}).encode(),
                {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if 200 <= response.status < 300:
                        self.acknowledged += count
            except OSError:
                self.rejected += count
            time.sleep(max(0.0, 1.0 - (time.time() - tick)))


def process_sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    rss = int(fields[21]) * PAGE
    return cpu, rss


# Directories of head data: write-ahead logs (Sightline's, Prometheus's) and Prometheus's
# memory-mapped head chunks. Their size cycles with block cuts instead of growing.
HEAD_DIRS = {"wal", "chunks_head"}


def disk_usage(path):
    """Bytes of the files under `path`: all of them, and those outside HEAD_DIRS (blocks,
    chunks and indexes: what grows for as long as retention keeps it)."""
    total = kept = 0
    for f in Path(path).rglob("*"):
        if f.is_file():
            size = f.stat().st_size
            total += size
            if not HEAD_DIRS.intersection(f.relative_to(path).parts[:-1]):
                kept += size
    return total, kept


def growth_per_day(mid, end, seconds):
    """(end, growth per day) of each of disk_usage's two figures, from `mid` to `end`."""
    return tuple((e, (e - m) * 86400 / seconds) for m, e in zip(mid, end))


def get_json(url, params):
    query = urllib.parse.urlencode(params)
    started = time.time()
    with urllib.request.urlopen(f"{url}?{query}", timeout=120) as response:
        body = json.load(response)
    return time.time() - started, body


def time_query(url, params, timings, failures):
    """Times one query into `timings`; a failed one is counted in `failures` (the run goes
    on: one process failing must not end the others' measurements)."""
    try:
        took, _ = get_json(url, params)
        timings.append(took)
    except OSError as error:
        failures.append(f"{url}: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(REPO / "target/release/sightline"))
    parser.add_argument("--duration", type=int, default=600, help="seconds (default 600)")
    parser.add_argument("--log-rate", type=int, default=200, help="log lines/s (default 200)")
    parser.add_argument("--series", type=int, default=1000, help="series per target")
    parser.add_argument("--peers", action="store_true",
                        help="run Prometheus and VictoriaMetrics on the same targets")
    parser.add_argument("--block-range", help="e.g. 30m: cut metric blocks (Sightline's and "
                        "Prometheus's) this often, so that a run shorter than 3 h measures "
                        "disk growth in blocks, not in the WAL (default: each one's 2h)")
    args = parser.parse_args()
    if not os.path.exists(NODE_EXPORTER):
        raise SystemExit("missing prometheus-node-exporter: apt-get install prometheus-node-exporter")
    if not os.path.exists(args.binary):
        raise SystemExit(f"missing {args.binary}: build it with cargo build --release")

    streams = loggen_streams(20, 1000)
    work = Path(tempfile.mkdtemp(prefix="sightline-soak-"))
    children = []
    stop = threading.Event()
    try:
        target_ports = [free_port() for _ in range(30)]
        children.append(subprocess.Popen(
            [sys.executable, str(TARGETS_PY), "--ports", ",".join(map(str, target_ports)),
             "--series", str(args.series)], stdout=subprocess.DEVNULL))
        node_port = free_port()
        children.append(subprocess.Popen(
            [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{node_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        switch = Switch()
        pushover = Recorder({"status": 1, "request": "soak"})
        telegram = Recorder({"ok": True, "result": {"message_id": 1}})
        port = free_port()
        listen = f"127.0.0.1:{port}"
        config = write_config(work, target_ports, node_port, switch.server_address[1],
                              pushover, telegram, listen, args.block_range)
        data = work / "data"
        sightline = subprocess.Popen(
            [args.binary, "--config", str(config), "--data-dir", str(data), "--listen", listen],
            stdout=open(work / "sightline.log", "w"), stderr=subprocess.STDOUT)
        children.append(sightline)
        base = f"http://{listen}"
        wait_http(f"{base}/-/ready")
        peers = []
        if args.peers:
            peers = start_peers(work, write_peer_scrape_configs(
                work, target_ports, node_port, switch.server_address[1]), children,
                args.block_range)
        started = time.time()
        cpu0, _ = process_sample(sightline.pid)
        for peer in peers:
            peer.start_measuring()

        pusher = LogPusher(f"{base}/loki/api/v1/push", streams, args.log_rate, stop)
        pusher.start()
        samples, timings = [], {q: [] for q in PROMQL_QUERIES + LOGQL_QUERIES}
        failures = []
        flip_at = started + args.duration / 2
        next_query = started + 30
        while time.time() - started < args.duration:
            now = time.time()
            cpu, rss = process_sample(sightline.pid)
            samples.append((now - started, cpu - cpu0, rss))
            for peer in peers:
                peer.sample(now - started)
            if switch.flipped_at is None and now >= flip_at:
                switch.flip()
                # Disk growth is measured over the second half, past start-up and the first
                # WAL segments.
                mid = (now - started, disk_usage(data), disk_usage(data / "metrics"))
                for peer in peers:
                    peer.disk_mid = disk_usage(peer.data)
            if now >= next_query:
                next_query = now + 30
                for query in PROMQL_QUERIES:
                    time_query(f"{base}/api/v1/query_range", {
                        "query": query, "start": now - 3600, "end": now, "step": 15},
                        timings[query], failures)
                for query in LOGQL_QUERIES:
                    time_query(f"{base}/loki/api/v1/query_range", {
                        "query": query, "start": int((now - 3600) * 1e9),
                        "end": int(now * 1e9), "limit": 100}, timings[query], failures)
                for peer in peers:
                    peer.time_queries(now, failures)
            time.sleep(5)
        stop.set()
        pusher.join()
        elapsed = time.time() - started
        cpu, rss = process_sample(sightline.pid)

        _, stored = get_json(f"{base}/loki/api/v1/query", {
            # Over the whole run, with a minute to spare.
            "query": f'sum(count_over_time({{namespace=~".+"}}[{int(elapsed) + 60}s]))',
            "time": time.time()})
        stored_lines = int(float(stored["data"]["result"][0]["value"][1])) if stored["data"]["result"] else 0
        alert_latency = next(
            (t - switch.flipped_at for t, _, body in pushover.requests
             if switch.flipped_at and "SoakSwitchOn" in body), None)
        second_half = elapsed - mid[0]
        disk = growth_per_day(mid[1], disk_usage(data), second_half)
        metrics_disk = growth_per_day(mid[2], disk_usage(data / "metrics"), second_half)
        for peer in peers:
            peer.sample(elapsed)
            peer.disk = growth_per_day(peer.disk_mid, disk_usage(peer.data), second_half)
        report(args, elapsed, cpu - cpu0, samples, disk, alert_latency,
               timings, pusher, stored_lines, len(telegram.requests))
        if peers:
            report_peers(elapsed, cpu - cpu0, samples, metrics_disk, timings, peers)
        if failures:
            print(f"\n{len(failures)} queries failed, the first: {failures[0]}")
        if stored_lines < pusher.acknowledged:
            sys.exit(1)
    finally:
        stop.set()
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(work, ignore_errors=True)


def report(args, elapsed, cpu, samples, disk, alert_latency, timings, pusher,
           stored_lines, telegram_messages):
    rss = [s[2] for s in samples]
    mib = 1024 * 1024
    print(f"## Homelab soak: {elapsed:.0f} s, 30 targets x {args.series} series + node-exporter, "
          f"20 log streams of loggen lines at {args.log_rate} lines/s (10x bursts)\n")
    print(f"Command: `benches/homelab_soak.py --binary {args.binary} --duration {args.duration} "
          f"--log-rate {args.log_rate} --series {args.series}{' --peers' if args.peers else ''}"
          f"{' --block-range ' + args.block_range if args.block_range else ''}`\n")
    print("| figure | Sightline | seed stack budget |")
    print("|---|---|---|")
    print(f"| CPU | {cpu / elapsed:.3f} cores ({cpu:.1f} CPU-s) | – |")
    print(f"| RSS median / peak | {statistics.median(rss) / mib:.0f} / {max(rss) / mib:.0f} MiB "
          f"| ~864 MiB of memory requests |")
    (total, total_per_day), (kept, kept_per_day) = disk
    print(f"| on disk at the end / growth per day (second half, extrapolated) | "
          f"{total / mib:.0f} MiB / {total_per_day / mib:.0f} MiB | 22 GiB of volumes |")
    print(f"| the same without the WALs (blocks, chunks, indexes) | "
          f"{kept / mib:.0f} MiB / {kept_per_day / mib:.0f} MiB | – |")
    latency = f"{alert_latency:.1f} s" if alert_latency is not None else "no notification"
    print(f"| alert latency (condition true -> Pushover request) | {latency} | – |")
    print(f"| log lines acknowledged / stored / rejected | {pusher.acknowledged} / "
          f"{stored_lines} / {pusher.rejected} | – |")
    print(f"| Telegram notifications (fixture rules) | {telegram_messages} | – |")
    print("\nRSS over time (MiB): " + ", ".join(
        f"{t:.0f}s {r / mib:.0f}" for t, _, r in samples[:: max(1, len(samples) // 12)]))
    print("\n| query (1 h range) | median | max |")
    print("|---|---|---|")
    for query, taken in timings.items():
        if taken:
            cell = query.replace("|", "\\|")
            print(f"| `{cell}` | {statistics.median(taken) * 1000:.0f} ms | "
                  f"{max(taken) * 1000:.0f} ms |")
    if stored_lines < pusher.acknowledged:
        print(f"\nLOST: {pusher.acknowledged - stored_lines} acknowledged log lines are missing")


def report_peers(elapsed, cpu, samples, disk, timings, peers):
    """The metric load side by side. Sightline's CPU and RSS include its log store, rules and
    notifier (its disk is its metric store's); Prometheus's include the same rules;
    VictoriaMetrics evaluates none."""
    mib = 1024 * 1024
    rows = [("Sightline (metrics, logs, rules, notifier)", cpu, samples, disk, timings)]
    rows += [(peer.name + (f" ({peer.exited})" if peer.exited else ""), peer.samples[-1][1],
              peer.samples, peer.disk, peer.timings) for peer in peers]
    print("\n### Side by side, same targets, same run\n")
    print("| | CPU | RSS median / peak | metrics on disk at the end (without WAL) "
          "| growth per day (without WAL) |")
    print("|---|---|---|---|---|")
    for name, cpu_s, rss_samples, ((end, per_day), (kept, kept_per_day)), _ in rows:
        rss = [r for _, _, r in rss_samples]
        print(f"| {name} | {cpu_s / elapsed:.3f} cores | {statistics.median(rss) / mib:.0f} / "
              f"{max(rss) / mib:.0f} MiB | {end / mib:.0f} MiB ({kept / mib:.1f}) | "
              f"{per_day / mib:.0f} MiB ({kept_per_day / mib:.0f}) |")
    print("\n| query (1 h range), median | " + " | ".join(row[0].split(" (")[0] for row in rows)
          + " |")
    print("|---" * (1 + len(rows)) + "|")
    for query in PROMQL_QUERIES:
        cells = [f"{statistics.median(row[4][query]) * 1000:.0f} ms" if row[4][query] else "–"
                 for row in rows]
        print(f"| `{query}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
