#!/usr/bin/env python3
"""Remote write out: samples sent per CPU-second, Sightline against Prometheus, both sending
the same scraped load to the same VictoriaMetrics.

One run scrapes ../shared/bench/metrics/targets.py (TARGETS × SERIES every 1 s) with each
sender four times, one after the other: Sightline without and with a `remote_write` entry to
a fresh VictoriaMetrics (Debian `victoria-metrics`), then Prometheus 2.x (Debian
`prometheus`) the same two ways, with the same default queue settings. Each phase warms up
for WARMUP s, then counts over SECONDS s:

  * the sender's CPU-seconds (utime + stime of /proc/PID/stat),
  * samples scraped and stored (`*_tsdb_head_samples_appended_total`),
  * samples sent (`prometheus_remote_storage_samples_total`, the name both use), and
  * samples VictoriaMetrics took (`vm_rows_inserted_total{type="promremotewrite"}`).

The remote-write cost is the CPU the sender spends with the entry minus without it, so
"samples per CPU-second" is samples sent / that difference; the total CPU per million
samples with remote write on is given too. Everything binds to 127.0.0.1.

usage: benches/remote_write_cpu.py --sightline TARGET/release/sightline [--workdir W]
         [--seconds 120] [--warmup 30] [--targets 20] [--series 5000]
         [--senders sightline,prometheus]
needs: apt-get install prometheus victoria-metrics
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "metrics"))
TICKS = os.sysconf("SC_CLK_TCK")
SENDER = "127.0.0.1:19491"
RECEIVER = "127.0.0.1:19492"


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def metric(base, name, labels=""):
    """Sum of the samples of `name` (whose label text contains `labels`) on base/metrics."""
    total = 0.0
    for line in get(base + "/metrics").splitlines():
        if line.startswith(name) and line[len(name)] in " {" and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_ready(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited with %s" % (proc.args[0], proc.returncode))
        try:
            get(url, timeout=5)
            return
        except Exception:
            time.sleep(0.5)
    sys.exit("not ready: " + url)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def config(targets, remote_write):
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s",
             "scrape_configs:", "  - job_name: bench", "    static_configs:",
             "      - targets: [%s]" % ", ".join("'%s'" % t for t in targets)]
    if remote_write:
        lines += ["remote_write:", "  - url: http://%s/api/v1/write" % RECEIVER, "    name: vm"]
    return "\n".join(lines) + "\n"


def phase(a, sender, remote_write, targets):
    """One sender, with or without remote write, measured after the warm-up."""
    name = "%s-%s" % (sender, "rw" if remote_write else "plain")
    work = os.path.join(a.workdir, name)
    os.makedirs(os.path.join(work, "data"))
    os.makedirs(os.path.join(work, "vm"))
    path = os.path.join(work, "config.yml")
    with open(path, "w") as f:
        f.write(config(targets, remote_write))
    receiver = subprocess.Popen(
        ["victoria-metrics", "-storageDataPath=" + os.path.join(work, "vm"),
         "-httpListenAddr=" + RECEIVER, "-retentionPeriod=1d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready("http://%s/health" % RECEIVER, receiver)
    if sender == "sightline":
        argv = [a.sightline, "--listen", SENDER, "--data-dir", os.path.join(work, "data"),
                "--config", path]
        appended = "sightline_tsdb_head_samples_appended_total"
        ready = "/-/ready"
    else:
        argv = ["prometheus", "--config.file=" + path, "--web.listen-address=" + SENDER,
                "--storage.tsdb.path=" + os.path.join(work, "data")]
        appended = "prometheus_tsdb_head_samples_appended_total"
        ready = "/-/ready"
    log = open(os.path.join(work, "sender.log"), "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base = "http://" + SENDER
    vm = "http://" + RECEIVER
    try:
        wait_ready(base + ready, proc)
        time.sleep(a.warmup)
        start = (time.time(), cpu_seconds(proc.pid), metric(base, appended),
                 metric(base, "prometheus_remote_storage_samples_total"),
                 metric(vm, "vm_rows_inserted_total", 'type="promremotewrite"'),
                 cpu_seconds(receiver.pid))
        time.sleep(a.seconds)
        end = (time.time(), cpu_seconds(proc.pid), metric(base, appended),
               metric(base, "prometheus_remote_storage_samples_total"),
               metric(vm, "vm_rows_inserted_total", 'type="promremotewrite"'),
               cpu_seconds(receiver.pid))
        pending = metric(base, "prometheus_remote_storage_samples_pending")
        failed = metric(base, "prometheus_remote_storage_samples_failed_total")
        rss_kib = 0
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss_kib = int(line.split()[1])
    finally:
        stop(proc)
        stop(receiver)
    seconds = end[0] - start[0]
    return {
        "sender": sender, "remote_write": remote_write, "seconds": round(seconds, 1),
        "cpu_s": round(end[1] - start[1], 2),
        "stored_per_s": round((end[2] - start[2]) / seconds),
        "sent_per_s": round((end[3] - start[3]) / seconds),
        "received_per_s": round((end[4] - start[4]) / seconds),
        "receiver_cpu_s": round(end[5] - start[5], 2),
        "sent": end[3] - start[3], "pending_at_end": pending, "failed_total": failed,
        "rss_peak_mib": round(rss_kib / 1024, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sightline", required=True)
    ap.add_argument("--workdir", default="/tmp/remote_write_cpu")
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--series", type=int, default=5000)
    ap.add_argument("--senders", default="sightline,prometheus",
                    help="which senders to measure, comma-separated")
    a = ap.parse_args()
    for tool in ("prometheus", "victoria-metrics"):
        if shutil.which(tool) is None:
            sys.exit("%s is missing: apt-get install prometheus victoria-metrics" % tool)
    if os.path.exists(a.workdir):
        shutil.rmtree(a.workdir)
    os.makedirs(a.workdir)
    ports = [19400 + i for i in range(a.targets)]
    targets = ["127.0.0.1:%d" % p for p in ports]
    generator = subprocess.Popen(
        [sys.executable, os.path.join(BENCH, "targets.py"), "--ports", ",".join(map(str, ports)),
         "--series", str(a.series)], stderr=subprocess.DEVNULL)
    results = []
    try:
        wait_ready("http://%s/stats" % targets[-1], generator)
        for sender in a.senders.split(","):
            for remote_write in (False, True):
                result = phase(a, sender, remote_write, targets)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        stop(generator)
    print()
    print("| sender | samples/s sent | CPU-s per s, plain / with remote write | remote-write CPU-s per s | samples sent per remote-write CPU-second | CPU-s per 1M samples stored and sent | VictoriaMetrics CPU-s per 1M received |")
    print("|---|---|---|---|---|---|---|")
    for sender in a.senders.split(","):
        plain, rw = [r for r in results if r["sender"] == sender]
        per_s = lambda r: r["cpu_s"] / r["seconds"]
        extra = per_s(rw) - per_s(plain)
        print("| %s | %s | %.3f / %.3f | %.3f | %s | %.3f | %.3f |" % (
            sender, format(rw["sent_per_s"], ","), per_s(plain), per_s(rw), extra,
            format(round(rw["sent_per_s"] / extra), ",") if extra > 0 else "n/a",
            rw["cpu_s"] / (rw["sent"] / 1e6),
            rw["receiver_cpu_s"] / (rw["received_per_s"] * rw["seconds"] / 1e6)))


if __name__ == "__main__":
    main()
