#!/usr/bin/env bash
# Resident memory of one Sightline build at 20 targets x 5,000 series every 1 s: starts
# ../shared/bench/metrics/targets.py on ports 19100-19119 and BIN scraping them, prints VmHWM,
# VmRSS, RssAnon and RssFile (KiB, from /proc/PID/status) every 10 s, and at the end keeps
# /proc/PID/smaps and the resident code pages by crate (benches/resident_code.py) in WORKDIR.
# VmHWM catches every spike, which metrics_peers.sh's 5 s samples can miss.
#   usage: benches/memprobe.sh BIN SECONDS [WORKDIR]
set -u
bin=${1:?usage: $0 BIN SECONDS [WORKDIR]}; secs=${2:?usage: $0 BIN SECONDS [WORKDIR]}
work=${3:-/tmp/memprobe}
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench/metrics" && pwd)
rm -rf "$work"; mkdir -p "$work/data"
python3 "$bench/targets.py" --ports 19100-19119 --series 5000 > "$work/targets.log" 2>&1 &
targets=$!
sleep 3
{
  echo "global: {scrape_interval: 1s}"
  echo "scrape_configs:"
  echo "- job_name: bench"
  echo "  honor_timestamps: true"
  echo "  static_configs:"
  echo "  - targets:"
  for port in $(seq 19100 19119); do echo "    - 127.0.0.1:$port"; done
} > "$work/scrape.yml"
"$bin" --listen 127.0.0.1:19090 --data-dir "$work/data" --config "$work/scrape.yml" > "$work/sightline.log" 2>&1 &
sightline=$!
for i in $(seq 1 $((secs / 10))); do
  sleep 10
  awk -v t=$((i * 10)) '/VmHWM|VmRSS|RssAnon|RssFile/ {printf "%s %s ", $1, $2} END {print "t=" t}' "/proc/$sightline/status"
done
cp "/proc/$sightline/smaps" "$work/smaps"
python3 "$here/resident_code.py" "$sightline" "$bin" > "$work/resident.txt" 2>&1
kill "$sightline" "$targets"
wait 2>/dev/null
