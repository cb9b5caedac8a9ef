#!/usr/bin/env bash
# Resident memory of one Sightline build at 20 targets x 5,000 series every 1 s (by default):
# starts ../shared/bench/metrics/targets.py on ports 19100-19119 and BIN scraping them, prints VmHWM,
# VmRSS, RssAnon and RssFile (KiB, from /proc/PID/status) every 10 s, and at the end keeps
# /proc/PID/smaps and the resident code pages by crate (benches/resident_code.py) in WORKDIR.
# VmHWM catches every spike, which metrics_peers.sh's 5 s samples can miss.
#   usage: benches/memprobe.sh BIN SECONDS [WORKDIR]
# TARGETS (default 20), INTERVAL (1s), PORT (first target port, 19100) and LISTEN (Sightline's
# port, 19090) change the load; e.g. TARGETS=2 INTERVAL=100ms packs an hour and a half of a
# 1 s scrape's chunks per series into 10 minutes, and two probes run side by side on other ports.
set -u
bin=${1:?usage: $0 BIN SECONDS [WORKDIR]}; secs=${2:?usage: $0 BIN SECONDS [WORKDIR]}
work=${3:-/tmp/memprobe}
targets_n=${TARGETS:-20}; interval=${INTERVAL:-1s}; first=${PORT:-19100}; listen=${LISTEN:-19090}
last=$((first + targets_n - 1))
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench/metrics" && pwd)
rm -rf "$work"; mkdir -p "$work/data"
python3 "$bench/targets.py" --ports "$first-$last" --series 5000 > "$work/targets.log" 2>&1 &
targets=$!
sleep 3
{
  echo "global: {scrape_interval: $interval}"
  echo "scrape_configs:"
  echo "- job_name: bench"
  echo "  honor_timestamps: true"
  echo "  static_configs:"
  echo "  - targets:"
  for port in $(seq "$first" "$last"); do echo "    - 127.0.0.1:$port"; done
} > "$work/scrape.yml"
"$bin" --listen "127.0.0.1:$listen" --data-dir "$work/data" --config "$work/scrape.yml" > "$work/sightline.log" 2>&1 &
sightline=$!
for i in $(seq 1 $((secs / 10))); do
  sleep 10
  awk -v t=$((i * 10)) '/VmHWM|VmRSS|RssAnon|RssFile/ {printf "%s %s ", $1, $2} END {print "t=" t}' "/proc/$sightline/status"
done
cp "/proc/$sightline/smaps" "$work/smaps"
python3 "$here/resident_code.py" "$sightline" "$bin" > "$work/resident.txt" 2>&1
kill "$sightline" "$targets"
wait 2>/dev/null
