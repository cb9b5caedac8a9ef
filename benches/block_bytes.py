#!/usr/bin/env python3
"""Bytes on disk per sample once metrics are in blocks: Sightline, VictoriaMetrics and
Prometheus scraping the same targets at the same time, in the same run.

All three scrape ../shared/bench/metrics/targets.py with --timestamp-quantum 1 (explicit
timestamps, values a function of the timestamp), so they store the same samples. After
SECONDS of ingestion every peer gets a config without scrape jobs (SIGHUP), so no sample is
added any more, then:

  * Sightline (storage.metrics.block_range lowered, default 2m) cuts everything into blocks
    and truncates its WAL: we wait until the head holds no sample, and measure the block
    store (DATA/metrics/blocks) as cut ("fresh": the level-0 SST files of the flushes)
    and the whole data directory; then Sightline is stopped and tsdb/examples/compact_blocks
    compacts the store fully ("settled": RocksDB's bottommost level, zstd 9 with a
    dictionary — where RocksDB moves blocks on its own once four wait in level 0, and where
    day compaction puts every finished day);
  * VictoriaMetrics is flushed (/internal/force_flush) and its data directory measured;
  * Prometheus (--storage.tsdb.min-block-duration lowered like Sightline's) writes a snapshot
    including its head, i.e. everything as blocks, which is measured.

Samples are each store's own count of samples added. Sizes are allocated bytes (du).
Everything binds to 127.0.0.1.

With --backfill HOURS the peers scrape nothing: the same targets.py series (same seed, same
values as a function of time) for the HOURS whole hours before an even hour, at 1 s, are
generated here and sent to all three peers as identical Prometheus remote-write bodies
(snappy framing without compression, which is valid snappy). This measures blocks at the
default 2 h block range without scraping for hours: the script waits for the next even hour,
backfills the hours before it (this must take under an hour), and Sightline cuts them into a
block an hour later, as it cuts any head data whose 2 h range ended an hour ago (earlier, it
would cut a partly backfilled range and refuse the rest as out of bounds).

usage: benches/block_bytes.py --sightline TARGET/debug/sightline \
         --compact-tool TARGET/debug/examples/compact_blocks [--workdir W] [--seconds 360] \
         [--targets 4] [--series 2000] [--block-range 2m] [--baseline OTHER/sightline]
         [--backfill HOURS]
(--baseline runs a second Sightline binary alongside, e.g. the build before a change, and
measures it the same way: before/after in one run)
(both built by `cargo test --workspace --no-run`)
needs: apt-get install prometheus victoria-metrics
"""

import argparse
import json
import math
import os
import random
import re
import struct
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "metrics"))


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def post(url, timeout=300):
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def metric(base, name):
    """Sum of the samples of one metric (name or name{labels}) on base/metrics."""
    total = 0.0
    for line in get(base + "/metrics").decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {" if "{" not in name else True):
            total += float(line.rsplit(" ", 1)[1])
    return total


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def wait_ready(url, proc, timeout=300):
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


def scrape_yaml(targets, with_jobs, extra=""):
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s"]
    if with_jobs:
        lines += ["scrape_configs:", "  - job_name: bench", "    honor_timestamps: true",
                  "    static_configs:",
                  "      - targets: [%s]" % ", ".join("'%s'" % t for t in targets)]
    else:
        lines += ["scrape_configs: []"]
    return "\n".join(lines) + "\n" + extra


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag, payload):
    """A length-delimited protobuf field."""
    return bytes([tag]) + uvarint(len(payload)) + payload


def snappy_literal(data):
    """`data` as a snappy block of one literal: valid snappy that any decoder accepts."""
    return uvarint(len(data)) + bytes([63 << 2]) + struct.pack("<I", len(data) - 1) + data


def backfill_series(ntargets, nseries, t0):
    """The series of targets.py's bench profile with its seed and counter origin `t0`: per
    target, a list of (labels as protobuf fields, isint, base, rate, amplitude, phase)."""
    sys.path.insert(0, BENCH)
    import targets as tp  # noqa: E402  (../shared/bench/metrics/targets.py)
    out = []
    for i in range(ntargets):
        tg = tp.Target(i, random.Random(42 * 1000003 + i), t0)
        tp.build_bench(tg, nseries)
        tg.finalize()
        series = []
        for j, prefix in enumerate(tg.prefix):
            name, _, rest = prefix.strip().partition("{")
            labels = {"__name__": name, "job": "bench", "instance": "127.0.0.1:%d" % (19300 + i)}
            for key, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', rest):
                labels[key] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
            encoded = b"".join(field(0x0A, field(0x0A, k.encode()) + field(0x12, v.encode()))
                               for k, v in sorted(labels.items()))
            series.append((encoded, tg.isint[j], tg.base[j], tg.rate[j], tg.amp[j], tg.phase[j]))
        out.append(series)
    return out, tp.WAVE, tp.WAVE_LEN


def backfill(urls, ntargets, nseries, start_s, end_s):
    """Sends every series' samples for [start_s, end_s) at 1 s to each remote-write URL, in
    windows of 5 minutes, one request per target and window. Returns the samples sent."""
    targets, wave, wave_len = backfill_series(ntargets, nseries, start_s)
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    sent = 0
    window = 300
    for w in range(start_s, end_s, window):
        seconds = range(w, min(w + window, end_s))
        stamps = [b"\x10" + uvarint(t * 1000) for t in seconds]
        for series in targets:
            body = bytearray()
            for labels, isint, base, rate, amp, phase in series:
                samples = []
                for t, stamp in zip(seconds, stamps):
                    v = base + rate * (t - start_s) + amp * wave[(phase + t) % wave_len]
                    if isint:
                        v = float(int(v))
                    sample = b"\x09" + struct.pack("<d", v) + stamp
                    samples.append(b"\x12" + uvarint(len(sample)) + sample)
                body += field(0x0A, labels + b"".join(samples))
                sent += len(seconds)
            payload = snappy_literal(bytes(body))
            for url in urls:
                request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=300) as response:
                    response.read()
        print("backfilled up to %s" % time.strftime("%H:%M:%S", time.gmtime(seconds[-1])), flush=True)
    return sent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sightline", required=True, help="path of the sightline binary")
    ap.add_argument("--compact-tool", required=True, help="path of the compact_blocks example")
    ap.add_argument("--workdir", default="/tmp/block_bytes")
    ap.add_argument("--seconds", type=int, default=360)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--block-range", default="2m")
    ap.add_argument("--baseline", help="a second sightline binary (e.g. before a change), run and "
                    "measured alongside the first in the same run, as peer 'baseline'")
    ap.add_argument("--backfill", type=int, default=0, metavar="HOURS",
                    help="send HOURS of samples by remote write instead of scraping (see above)")
    a = ap.parse_args()
    for tool in ("prometheus", "victoria-metrics"):
        if shutil.which(tool) is None:
            sys.exit("%s is missing: apt-get install prometheus victoria-metrics" % tool)
    if os.path.exists(a.workdir):
        shutil.rmtree(a.workdir)
    os.makedirs(a.workdir)
    ports = [19300 + i for i in range(a.targets)]
    targets = ["127.0.0.1:%d" % p for p in ports]
    # Built-in rules off: their ALERTS series would keep the head from ever emptying.
    storage = "storage:\n  metrics:\n    block_range: %s\nbuiltin_rules:\n  enabled: false\n" % a.block_range
    # The Sightline instances: the binary under test, and the baseline if given.
    ours = {"sightline": a.sightline}
    if a.baseline:
        ours["baseline"] = a.baseline
    paths = {}
    for peer in list(ours) + ["prometheus", "victoriametrics"]:
        os.makedirs(os.path.join(a.workdir, peer, "data"))
        paths[peer] = os.path.join(a.workdir, peer, "scrape.yml")
        with open(paths[peer], "w") as f:
            f.write(scrape_yaml(targets, not a.backfill, storage if peer in ours else ""))

    procs = []
    try:
        if not a.backfill:
            tproc = subprocess.Popen([sys.executable, os.path.join(BENCH, "targets.py"), "--ports",
                                      ",".join(map(str, ports)), "--series", str(a.series),
                                      "--timestamp-quantum", "1"], stderr=subprocess.DEVNULL)
            procs.append(tproc)
            wait_ready("http://%s/stats" % targets[-1], tproc)
        bases = {"sightline": "http://127.0.0.1:19390", "prometheus": "http://127.0.0.1:19391",
                 "victoriametrics": "http://127.0.0.1:19392", "baseline": "http://127.0.0.1:19393"}
        range_flag = a.block_range
        argv = {
            peer: [binary, "--listen", bases[peer].replace("http://", ""), "--data-dir",
                   os.path.join(a.workdir, peer, "data"), "--config", paths[peer]]
            for peer, binary in ours.items()
        }
        argv.update({
            "prometheus": ["prometheus", "--config.file=" + paths["prometheus"],
                           "--storage.tsdb.path=" + os.path.join(a.workdir, "prometheus", "data"),
                           "--web.listen-address=127.0.0.1:19391", "--web.enable-admin-api",
                           "--storage.tsdb.min-block-duration=" + range_flag,
                           "--storage.tsdb.max-block-duration=" + range_flag,
                           "--web.enable-remote-write-receiver"],
            "victoriametrics": ["victoria-metrics", "-storageDataPath=" + os.path.join(a.workdir, "victoriametrics", "data"),
                                "-httpListenAddr=127.0.0.1:19392", "-promscrape.config=" + paths["victoriametrics"],
                                "-retentionPeriod=1"],
        })
        peers = {}
        for peer, args in argv.items():
            log = open(os.path.join(a.workdir, peer, "peer.log"), "wb")
            peers[peer] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            procs.append(peers[peer])
        ready = {"prometheus": "/-/ready", "victoriametrics": "/health"}
        for peer in peers:
            wait_ready(bases[peer] + ready.get(peer, "/-/ready"), peers[peer])
        if a.backfill:
            # The hours before the last even hour: Sightline cuts a 2 h range once it ended an
            # hour ago, and must not cut it while it is still arriving, so the backfill starts
            # at an even hour (waiting for the next one) and has an hour to finish.
            wait = -time.time() % 7200
            print("waiting %d s for the next even hour" % wait, flush=True)
            time.sleep(wait)
            end_s = math.floor(time.time() / 7200) * 7200
            start_s = end_s - a.backfill * 3600
            print("backfilling %d h: %d targets x %d series at 1 s" % (a.backfill, a.targets, a.series), flush=True)
            backfill([bases[peer] + "/api/v1/write" for peer in peers], a.targets, a.series, start_s, end_s)
        else:
            print("ingesting %d s: %d targets x %d series every 1 s" % (a.seconds, a.targets, a.series), flush=True)
            time.sleep(a.seconds)
            for peer, path in paths.items():
                with open(path, "w") as f:
                    f.write(scrape_yaml(targets, False, storage if peer in ours else ""))
                peers[peer].send_signal(signal.SIGHUP)
        stopped = time.time()
        time.sleep(10)

        samples = {
            "prometheus": metric(bases["prometheus"], "prometheus_tsdb_head_samples_appended_total"),
            "victoriametrics": metric(bases["victoriametrics"], "vm_rows_added_to_storage_total"),
        }
        for peer in ours:
            samples[peer] = metric(bases[peer], "sightline_tsdb_head_samples_appended_total")
        # Sightline: wait until every sample is in a block (the head is empty).
        while True:
            if all(metric(bases[peer], "sightline_tsdb_head_series") == 0 for peer in ours):
                break
            # The cut of backfilled data comes an hour after its range ended.
            if time.time() - stopped > (4500 if a.backfill else 900):
                sys.exit("Sightline did not cut its head into blocks in time")
            time.sleep(10)
        waited = time.time() - stopped
        sizes, whole, settled = {}, {}, {}
        for peer in ours:
            blocks = os.path.join(a.workdir, peer, "data", "metrics", "blocks")
            sizes[peer + " (fresh)"] = du(blocks)
            whole[peer + " (fresh)"] = du(os.path.join(a.workdir, peer, "data"))
            samples[peer + " (fresh)"] = samples[peer]
            peers[peer].terminate()
            peers[peer].wait(timeout=60)
            settled[peer] = json.loads(subprocess.run([a.compact_tool, blocks], check=True,
                                                      capture_output=True).stdout)
            sizes[peer] = settled[peer]["bytes_after"]
            whole[peer] = du(os.path.join(a.workdir, peer, "data"))
        get(bases["victoriametrics"] + "/internal/force_flush")
        time.sleep(5)
        snapshot = json.loads(post(bases["prometheus"] + "/api/v1/admin/tsdb/snapshot?skip_head=false"))
        snap_dir = os.path.join(a.workdir, "prometheus", "data", "snapshots", snapshot["data"]["name"])
        sizes["prometheus"] = du(snap_dir)
        sizes["victoriametrics"] = du(os.path.join(a.workdir, "victoriametrics", "data"))
        whole["prometheus"] = du(os.path.join(a.workdir, "prometheus", "data")) - sizes["prometheus"]
        whole["victoriametrics"] = sizes["victoriametrics"]
        result = {"seconds": a.seconds, "targets": a.targets, "series_per_target": a.series,
                  "block_range": a.block_range, "sightline_head_emptied_after_s": round(waited, 1),
                  "sightline_samples_in_blocks": settled["sightline"]["samples"]}
        print("%-18s %14s %14s %12s %18s" % ("peer", "samples", "bytes", "B/sample", "whole dir B/sample"))
        rows = [name for peer in ours for name in (peer + " (fresh)", peer)]
        for peer in rows + ["victoriametrics", "prometheus"]:
            per = sizes[peer] / samples[peer] if samples[peer] else float("nan")
            print("%-18s %14d %14d %12.3f %18.3f" % (peer, samples[peer], sizes[peer], per,
                                                      whole[peer] / samples[peer] if samples[peer] else 0))
            result[peer] = {"samples": samples[peer], "bytes": sizes[peer], "bytes_per_sample": round(per, 3),
                            "whole_dir_bytes": whole[peer]}
        with open(os.path.join(a.workdir, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
        print(json.dumps(result))
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
