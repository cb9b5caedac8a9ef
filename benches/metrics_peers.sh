#!/usr/bin/env bash
# Metric ingestion side by side: Sightline, then Prometheus and VictoriaMetrics (Debian
# packages), each alone against the same synthetic targets of ../shared/bench/metrics
# (targets.py), with ../shared/bench/metrics/run_peer.py measuring CPU-seconds, RSS, disk and
# query latency. Prints the summary table; the raw JSON lines stay in WORKDIR/results.jsonl.
#   usage: benches/metrics_peers.sh WORKDIR [SECONDS] [TARGETS] [SERIES_PER_TARGET] [INTERVAL]
#   needs: cargo build --release; apt-get install prometheus victoria-metrics
#   PEERS (default "sightline prometheus victoriametrics") picks the peers, SIGHTLINE_BIN the
#   binary: `PEERS=sightline SIGHTLINE_BIN=…` once per build compares two builds.
set -euo pipefail
work=${1:?usage: $0 WORKDIR [SECONDS] [TARGETS] [SERIES_PER_TARGET] [INTERVAL]}
seconds=${2:-300}; targets=${3:-20}; series=${4:-5000}; interval=${5:-1s}
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench/metrics" && pwd)
binary=${SIGHTLINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}/release/sightline}
mkdir -p "$work"
last=$((19100 + targets - 1))
common=(--workdir "$work" --port 19090 --targets "127.0.0.1:19100-$last" --spawn-targets "--series $series"
        --interval "$interval" --duration "$seconds" --reps 3 --count-query --out results.jsonl)
for peer in ${PEERS:-sightline prometheus victoriametrics}; do
  if [ "$peer" = sightline ]; then
    python3 "$bench/run_peer.py" "${common[@]}" --peer custom --name sightline \
      --cmd "$binary --listen {listen} --data-dir {data_dir} --config {config}" \
      --ready-path /-/ready --samples-metric sightline_tsdb_head_samples_appended_total
  else
    python3 "$bench/run_peer.py" "${common[@]}" --peer "$peer"
  fi
done
python3 "$bench/summarize.py" "$work/results.jsonl"
