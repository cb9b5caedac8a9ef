#!/usr/bin/env python3
"""Times /api/v1/query_range of the PromQL benchmark queries against a Prometheus-API server.

Prints one Markdown row per query and range: the median of --runs wall times (HTTP request
to the last byte of the answer) and the growth of the server's peak RSS (VmHWM, reset
through /proc/PID/clear_refs before each query) over its RSS before the query. The queries
and ranges are those of tsdb/benches/promql.rs.

With --pid the server runs throughout, so a query's growth depends on what the queries
before it left behind (freed memory a process keeps is reused). With --server the script
starts the server afresh from that command for each query and range, and stops it after, so
that every query's memory is measured from the same start.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import time
import urllib.parse
import urllib.request

QUERIES = [
    "sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(10, rate(http_requests_total[5m]))",
    'count by (job) ({__name__=~"http_.+|node_.+", instance=~"host-(1|2|3).*"})',
]
RANGES = [("1h", 3600, 15), ("24h", 24 * 3600, 60), ("7d", 7 * 24 * 3600, 600)]


def status_bytes(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def wait_ready(url):
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not become ready")


def start_server(command, url):
    """Starts `command`, waits until it answers at `url` and has settled (a store may tidy up
    right after it opens), and returns the process."""
    process = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_ready(url)
    time.sleep(3)
    return process


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    server = parser.add_mutually_exclusive_group(required=True)
    server.add_argument("--pid", type=int, help="the server already running at --url")
    server.add_argument("--server", help="a command starting the server at --url, run afresh "
                        "for each query and range")
    parser.add_argument("--end", type=int, required=True, help="Unix seconds")
    parser.add_argument("--hours", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.pid:
        wait_ready(args.url)
    print("| query | range@step | median ms | peak RSS growth MiB | series × points |")
    print("|---|---|---|---|---|")
    for query in QUERIES:
        for name, seconds, step in RANGES:
            if seconds > args.hours * 3600:
                continue
            params = urllib.parse.urlencode(
                {"query": query, "start": args.end - seconds, "end": args.end, "step": step}
            )
            times, peak, shape = [], 0, (0, 0)
            fresh = start_server(args.server, args.url) if args.server else None
            pid = fresh.pid if fresh else args.pid
            try:
                for _ in range(args.runs):
                    with open(f"/proc/{pid}/clear_refs", "w") as clear:
                        clear.write("5")
                    before = status_bytes(pid, "VmRSS")
                    started = time.perf_counter()
                    url = f"{args.url}/api/v1/query_range?{params}"
                    with urllib.request.urlopen(url) as response:
                        body = json.load(response)
                    times.append(time.perf_counter() - started)
                    peak = max(peak, status_bytes(pid, "VmHWM") - before)
                    result = body["data"]["result"]
                    shape = (len(result), sum(len(s["values"]) for s in result))
            finally:
                if fresh:
                    fresh.terminate()
                    fresh.wait(timeout=60)
            print(
                f"| `{query}` | {name}@{step}s | {statistics.median(times) * 1000:.0f} "
                f"| {peak / 1048576:.1f} | {shape[0]} × {shape[1]} |"
            )


if __name__ == "__main__":
    main()
