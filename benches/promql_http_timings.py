#!/usr/bin/env python3
"""Times /api/v1/query_range of the PromQL benchmark queries against a Prometheus-API server.

Prints one Markdown row per query and range: the median of --runs wall times (HTTP request
to the last byte of the answer) and the growth of the server's peak RSS (VmHWM, reset
through /proc/PID/clear_refs before each query) over its RSS before the query. The queries
and ranges are those of tsdb/benches/promql.rs.
"""
import argparse
import json
import statistics
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--end", type=int, required=True, help="Unix seconds")
    parser.add_argument("--hours", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
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
            for _ in range(args.runs):
                with open(f"/proc/{args.pid}/clear_refs", "w") as clear:
                    clear.write("5")
                before = status_bytes(args.pid, "VmRSS")
                started = time.perf_counter()
                with urllib.request.urlopen(f"{args.url}/api/v1/query_range?{params}") as response:
                    body = json.load(response)
                times.append(time.perf_counter() - started)
                peak = max(peak, status_bytes(args.pid, "VmHWM") - before)
                result = body["data"]["result"]
                shape = (len(result), sum(len(s["values"]) for s in result))
            print(
                f"| `{query}` | {name}@{step}s | {statistics.median(times) * 1000:.0f} "
                f"| {peak / 1048576:.1f} | {shape[0]} × {shape[1]} |"
            )


if __name__ == "__main__":
    main()
