"""Peak resident memory of a running Sightline during each query of the log benchmark
(../shared/bench/logs/bench.py's Loki query set over a 24 h window ending at END_UNIX):
VmRSS sampled every 5 ms while the query runs, and just before it. Run it against a
Sightline serving the data directory that `bench.py lokicompat --keep-data` left.

Usage: python3 benches/logql_query_rss.py PORT END_UNIX
"""
import json, re, subprocess, sys, threading, time, urllib.parse, urllib.request

port, end = int(sys.argv[1]), int(sys.argv[2])
start = end - 86400
pid = int(subprocess.check_output(["pgrep", "-f", f"listen 127.0.0.1:{port}"]).split()[0])

def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

se = {"start": f"{start}000000000", "end": f"{end}000000000"}
queries = [
    ("count_by_app_5m", "query_range", dict(se, query='sum by (app) (count_over_time({namespace=~".+"}[5m]))', step="300")),
    ("total_count_instant", "query", {"query": 'sum(count_over_time({namespace=~".+"}[86400s]))', "time": f"{end}000000000"}),
    ("needle_search", "query_range", dict(se, query='{namespace=~".+"} |= "zqxneedle7f3a"', limit="1000")),
    ("json_error_lines_limit100", "query_range", dict(se, query='{namespace=~".+"} | json | level="error"', limit="100")),
    ("json_error_rate_5m", "query_range", dict(se, query='sum by (app) (count_over_time({namespace=~".+"} | json | level="error" [5m]))', step="300")),
    ("logfmt_error_rate_5m", "query_range", dict(se, query='sum by (app) (count_over_time({namespace="monitoring"} | logfmt | level="error" [5m]))', step="300")),
]
for name, path, params in queries:
    url = f"http://127.0.0.1:{port}/loki/api/v1/{path}?" + urllib.parse.urlencode(params)
    before, peak, done = rss_mb(), 0.0, threading.Event()
    def sample():
        global peak
        while not done.is_set():
            peak = max(peak, rss_mb())
            time.sleep(0.005)
    t = threading.Thread(target=sample); t.start()
    t0 = time.time()
    with urllib.request.urlopen(url) as r:
        body = json.load(r)
    took = time.time() - t0
    done.set(); t.join()
    print(json.dumps({"query": name, "seconds": round(took, 3), "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1), "status": body["status"]}))
