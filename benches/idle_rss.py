#!/usr/bin/env python3
"""Idle memory of `sightline` on its embedded default config.

Starts the release binary with no arguments in an empty working directory (so it uses
./data there and listens on 127.0.0.1:9090, exactly as `scripts/run` does), samples its
resident set size from /proc every second for --seconds (default 60), and prints the
samples at a few points, the peak, and the final figure against the 30 MiB goal.

    cargo build --release && python3 benches/idle_rss.py [--binary PATH] [--seconds 60]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

GOAL_MIB = 30.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def wait_ready(url, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{url} did not become ready")


def main():
    default_binary = os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sightline-target")),
        "release", "sightline")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=default_binary)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen([args.binary], cwd=workdir,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready("http://127.0.0.1:9090/-/ready", time.time() + 30)
            samples = []
            for second in range(1, args.seconds + 1):
                time.sleep(1)
                if process.poll() is not None:
                    sys.exit(f"sightline exited with {process.returncode}")
                samples.append((second, rss_kib(process.pid)))
                # One request per 15 s, as the embedded self-scrape will make.
                if second % 15 == 0:
                    urllib.request.urlopen("http://127.0.0.1:9090/metrics", timeout=5).read()
        finally:
            process.terminate()
            process.wait(timeout=15)

    for second, kib in samples:
        if second in (1, 10, 30, args.seconds):
            print(f"RSS after {second:>3} s: {kib / 1024:.1f} MiB")
    peak = max(kib for _, kib in samples) / 1024
    final = samples[-1][1] / 1024
    print(f"peak RSS: {peak:.1f} MiB")
    verdict = "meets" if final <= GOAL_MIB else "misses"
    print(f"idle RSS after {args.seconds} s: {final:.1f} MiB ({verdict} the {GOAL_MIB:.0f} MiB goal)")


if __name__ == "__main__":
    main()
