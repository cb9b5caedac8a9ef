#!/usr/bin/env python3
"""`sightline import prometheus` and `sightline import loki`: samples and lines imported per
second, and the importer's CPU-seconds, against real sources on 127.0.0.1.

Prometheus: the Debian `prometheus` scrapes ../shared/bench/metrics/targets.py (TARGETS x
SERIES every 1 s) for SCRAPE seconds, then `sightline import prometheus --since 1h` copies
its history through remote read into a fresh data directory.

Loki API: a second Sightline takes LINES log lines (20 streams, ~120-byte lines, spread over
the last hour) through its push API; `sightline import loki --since 2h` copies them.

Each import's wall time comes from the process, its CPU from getrusage of the child; the
counts from the importer's own summary, which the import tests check against the source.

usage: benches/import_rate.py --sightline TARGET/release/sightline [--workdir W]
         [--targets 10] [--series 2000] [--scrape 180] [--lines 500000]
needs: apt-get install prometheus
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "metrics"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited with %s" % (proc.args[0], proc.returncode))
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except Exception:
            time.sleep(0.5)
    sys.exit("not ready: " + url)


def timed_import(args):
    """Runs `sightline import ...`; returns (wall s, CPU s, summary line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit("import failed: " + done.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr.strip().splitlines()[-1]


def prometheus_phase(a, procs):
    ports = [19500 + i for i in range(a.targets)]
    targets = ["127.0.0.1:%d" % p for p in ports]
    generator = subprocess.Popen([sys.executable, os.path.join(BENCH, "targets.py"), "--ports",
                                  ",".join(map(str, ports)), "--series", str(a.series)],
                                 stderr=subprocess.DEVNULL)
    procs.append(generator)
    wait_ready("http://%s/stats" % targets[-1], generator)
    work = os.path.join(a.workdir, "prometheus")
    os.makedirs(work)
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n"
                "  - job_name: bench\n    static_configs: [{targets: [%s]}]\n"
                % ", ".join("'%s'" % t for t in targets))
    port = free_port()
    source = subprocess.Popen(["prometheus", "--config.file=" + config,
                               "--storage.tsdb.path=" + os.path.join(work, "data"),
                               "--web.listen-address=127.0.0.1:%d" % port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(source)
    wait_ready("http://127.0.0.1:%d/-/ready" % port, source)
    time.sleep(a.scrape)
    generator.terminate()
    wall, cpu, summary = timed_import([
        a.sightline, "import", "prometheus", "--url", "http://127.0.0.1:%d/" % port,
        "--since", "1h", "--match", '{job="bench"}', "--data-dir", os.path.join(work, "imported")])
    samples = int(re.search(r"imported (\d+) samples", summary).group(1))
    return {"source": "prometheus", "samples": samples, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "per_s": round(samples / wall), "per_cpu_s": round(samples / cpu),
            "summary": summary}


def loki_phase(a, procs):
    work = os.path.join(a.workdir, "loki")
    os.makedirs(work)
    port = free_port()
    config = os.path.join(work, "source.yml")
    with open(config, "w") as f:
        # The push is the set-up, not what is measured: no rate limit in the way.
        f.write("limits:\n  logs:\n    ingestion_rate: 1GiB\n    ingestion_burst_size: 1GiB\n"
                "    per_stream_rate_limit: 1GiB\n    per_stream_rate_limit_burst: 1GiB\n")
    source = subprocess.Popen([a.sightline, "--listen", "127.0.0.1:%d" % port, "--data-dir",
                               os.path.join(work, "source"), "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(source)
    wait_ready("http://127.0.0.1:%d/-/ready" % port, source)
    now = time.time_ns()
    start = now - 3_600 * 10**9
    step = 3_600 * 10**9 // a.lines
    per_push = 5_000
    for first in range(0, a.lines, per_push):
        streams = {}
        for i in range(first, min(first + per_push, a.lines)):
            app = "app-%02d" % (i % 20)
            line = "level=info app=%s request_id=%08x path=/api/v1/items/%d status=200 duration_ms=%d" % (
                app, i * 2654435761 % 2**32, i % 977, i % 313)
            streams.setdefault(app, []).append([str(start + i * step), line])
        body = json.dumps({"streams": [{"stream": {"job": "bench", "app": app}, "values": values}
                                       for app, values in streams.items()]}).encode()
        request = urllib.request.Request("http://127.0.0.1:%d/loki/api/v1/push" % port, data=body,
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()
    wall, cpu, summary = timed_import([
        a.sightline, "import", "loki", "--url", "http://127.0.0.1:%d/" % port, "--since", "2h",
        "--query", '{job="bench"}', "--data-dir", os.path.join(work, "imported")])
    lines = int(re.search(r"imported (\d+) log lines", summary).group(1))
    return {"source": "sightline (Loki API)", "lines": lines, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "per_s": round(lines / wall), "per_cpu_s": round(lines / cpu),
            "summary": summary}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sightline", required=True)
    ap.add_argument("--workdir", default="/tmp/import_rate")
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--scrape", type=int, default=180)
    ap.add_argument("--lines", type=int, default=500_000)
    a = ap.parse_args()
    if shutil.which("prometheus") is None:
        sys.exit("prometheus is missing: apt-get install prometheus")
    if os.path.exists(a.workdir):
        shutil.rmtree(a.workdir)
    os.makedirs(a.workdir)
    procs = []
    try:
        for phase in (prometheus_phase, loki_phase):
            print(json.dumps(phase(a, procs)), flush=True)
            for proc in procs:
                proc.terminate()
                proc.wait()
            procs.clear()
    finally:
        for proc in procs:
            proc.kill()


if __name__ == "__main__":
    main()
