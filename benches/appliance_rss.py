#!/usr/bin/env python3
"""Memory of the whole appliance on the Kubernetes config, with 50 pods' logs.

Runs a release `sightline` on the config of deploy/manifests/configmap.yaml (self-scrape,
the built-in node-exporter collectors, ServiceMonitors/PodMonitors/PrometheusRules/dashboard
ConfigMaps and the built-in kube-state-metrics series from the `kubernetes:` section, and
`log_collection.pods_root`), with only the
paths changed to loopback and temp dirs: the Kubernetes API is a local fake that lists 50
running pods on this node (and nothing else) and holds watches open; 50 writers append
kubelet-style CRI lines to `<pods>/<ns>_<pod>_<uid>/<container>/0.log`. The resident set
size is sampled from /proc every second; the stored line count and the pods in the stored
`kube_pod_info` series are checked at the end.

    benches/appliance_rss.py --binary <release sightline> [--seconds 300] [--lines-per-second 200]

Goal (issue 10): RSS <= 128 MiB, against the seed stack's ~864 MiB of memory requests.
Loopback only.
"""
import argparse
import datetime
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

PODS = 50
NODE = "bench-node"
GOAL_MIB = 128.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pod(index):
    namespace = ["media", "home", "infra", "shop", "kube-system"][index % 5]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"app-{index}", "namespace": namespace, "uid": f"uid-{index}",
                     "resourceVersion": "1", "labels": {"app.kubernetes.io/name": f"app-{index % 17}"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "main"}]},
        "status": {"phase": "Running", "podIP": f"10.1.0.{index + 1}"},
    }


class FakeApi(http.server.ThreadingHTTPServer):
    """Lists: 50 pods for pod collections, nothing for every other kind; watches stay open."""

    daemon_threads = True


class FakeApiHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if query.get("watch") == ["true"]:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                time.sleep(float(query.get("timeoutSeconds", ["60"])[0]))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            return
        items = [pod(i) for i in range(PODS)] if url.path.endswith("/pods") else []
        body = json.dumps({"apiVersion": "v1", "kind": "List",
                           "metadata": {"resourceVersion": "1"}, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def writer(path, index, rate, stop):
    """Appends CRI lines at `rate` per second until `stop`; counts them in `writer.counts`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sequence = 0
    with open(path, "a", buffering=1) as out:
        while not stop.is_set():
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            level = "error" if sequence % 50 == 0 else "info"
            out.write(f"{now} stdout F level={level} msg=\"request served\" pod=app-{index} "
                      f"seq={sequence} path=/api/items/{sequence % 300} duration_ms={sequence % 97}\n")
            sequence += 1
            stop.wait(1.0 / rate)
    writer.counts[index] = sequence


writer.counts = {}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def config_text(api_port, port, work):
    """deploy/manifests/configmap.yaml's config with loopback addresses and temp paths."""
    with open(os.path.join(REPO, "deploy/manifests/configmap.yaml")) as manifest:
        text = manifest.read().split("sightline.yaml: |\n", 1)[1]
    lines = [line[4:] for line in text.splitlines()]
    config = "\n".join(lines) + "\n"
    replacements = {
        "127.0.0.1:9090": f"127.0.0.1:{port}",
        "0.0.0.0:9090": f"127.0.0.1:{port}",
        "/host/proc": "/proc", "/host/sys": "/sys", "/host/root": "/",
        "/var/lib/sightline": f"{work}/data",
        "/var/log/pods": f"{work}/pods",
        "kubernetes: {}": f"kubernetes: {{api_server: 'http://127.0.0.1:{api_port}'}}",
    }
    for old, new in replacements.items():
        if old not in config:
            sys.exit(f"the deploy config no longer has {old!r}")
        config = config.replace(old, new)
    return config.replace("pods_root:", f"node_name: {NODE}\n  pods_root:", 1)


def instant_value(port, api, query, time_param):
    """The first value of an instant query on `api` (`/loki/api/v1/query` or `/api/v1/query`)."""
    query = urllib.parse.urlencode({"query": query, "time": time_param})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{api}?{query}", timeout=30) as answer:
        result = json.loads(answer.read())["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def stored_lines(port):
    return instant_value(port, "/loki/api/v1/query", 'sum(count_over_time({node="%s"}[1h]))' % NODE,
                         str(time.time_ns()))


def scraped_pods(port):
    """Pods in the built-in kube-state-metrics series (`kube_pod_info`), as stored."""
    return instant_value(port, "/api/v1/query", 'count(kube_pod_info{job="kube-state-metrics"})',
                         str(time.time()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.expanduser("~/.cache/sightline-target/release/sightline"))
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--lines-per-second", type=float, default=200.0, help="over all 50 pods")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="appliance-rss-")
    api_port, port = free_port(), free_port()
    api = FakeApi(("127.0.0.1", api_port), FakeApiHandler)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    with open(f"{work}/sightline.yaml", "w") as out:
        out.write(config_text(api_port, port, work))
    stop = threading.Event()
    writers = []
    for index in range(PODS):
        namespace = pod(index)["metadata"]["namespace"]
        path = f"{work}/pods/{namespace}_app-{index}_uid-{index}/main/0.log"
        thread = threading.Thread(target=writer, args=(path, index, args.lines_per_second / PODS, stop))
        thread.start()
        writers.append(thread)
    log = open(f"{work}/sightline.log", "w")
    server = subprocess.Popen([args.binary, "--config", f"{work}/sightline.yaml"],
                              stdout=log, stderr=log)
    samples = []
    try:
        started = time.time()
        while time.time() - started < args.seconds:
            if server.poll() is not None:
                with open(f"{work}/sightline.log") as failed:
                    sys.exit("sightline exited: " + failed.read()[-2000:])
            samples.append(rss_kib(server.pid) / 1024)
            time.sleep(1)
        stop.set()
        for thread in writers:
            thread.join()
        time.sleep(3)
        written = sum(writer.counts.values())
        stored = stored_lines(port)
        pods = scraped_pods(port)
    finally:
        stop.set()
        server.terminate()
        server.wait(20)
        api.shutdown()
    steady = samples[len(samples) // 2:]
    print(f"{args.seconds} s, {PODS} pods, {args.lines_per_second:.0f} lines/s: RSS median "
          f"{statistics.median(samples):.1f} MiB, second-half median {statistics.median(steady):.1f} MiB, "
          f"peak {max(samples):.1f} MiB (goal {GOAL_MIB:.0f}); lines written {written}, stored {stored}; "
          f"pods in kube_pod_info {pods}")


if __name__ == "__main__":
    main()
