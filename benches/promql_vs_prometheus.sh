#!/bin/sh
# Range queries on the same data in Sightline's engine and in Prometheus 2.x (Debian).
#
#   benches/promql_vs_prometheus.sh WORK [SERIES] [HOURS]
#
# 1. `cargo bench --bench promql` (release profile; `$CARGO` instead of `cargo` if set)
#    appends SERIES (default 10000) series × HOURS (default 24) h at 60 s into Sightline's head, writes the same samples as OpenMetrics to WORK/data.om,
#    and times the engine on the range queries (in process: no HTTP, no JSON).
# 2. `promtool tsdb create-blocks-from openmetrics` backfills them into WORK/prometheus;
#    Prometheus serves them on 127.0.0.1 and `promql_http_timings.py` times the same range
#    queries over HTTP, with the server's peak RSS growth per query.
# 3. `sightline import prometheus` copies them from that Prometheus (remote read) into
#    WORK/sightline's blocks; the release binary (SIGHTLINE_BIN, default the release build in
#    CARGO_TARGET_DIR) serves them and `promql_http_timings.py` times it the same way, in the
#    same run: both over HTTP and JSON.
# 4. Both again with each query and range in a freshly started server (`--server`), so that
#    each query's memory is measured from the same start rather than after the queries
#    before it.
# WORK is deleted at the end (the OpenMetrics file is ~80 bytes per sample).
set -eu
work=${1:?usage: $0 WORK [SERIES] [HOURS]}
series=${2:-10000}
hours=${3:-24}
here=$(cd "$(dirname "$0")" && pwd)
command -v promtool >/dev/null || { echo "install prometheus (Debian package) for promtool" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "install prometheus (Debian package)" >&2; exit 1; }
mkdir -p "$work"
trap 'kill "$prom_pid" "$sightline_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
prom_pid=
sightline_pid=
sightline=${SIGHTLINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}/release/sightline}
[ -x "$sightline" ] || { echo "build Sightline first (cargo build --release) or set SIGHTLINE_BIN" >&2; exit 1; }
# Whole hours, ending an hour ago: inside Prometheus's retention, not in the future.
start=$(( ($(date +%s) / 3600 - 1 - hours) * 3600 ))

echo "== Sightline engine (cargo bench, release profile)"
# CARGO may name a wrapper that sets the release flags (e.g. one linking a prebuilt RocksDB).
# The bench is tsdb's: `-p sightline-tsdb` shares the feature set (and the RocksDB build) of
# the other tsdb benches, where `--workspace` would compile RocksDB's C++ once more.
(cd "$here/.." && PROMQL_BENCH_SERIES=$series PROMQL_BENCH_HOURS=$hours \
  PROMQL_BENCH_START_S=$start PROMQL_BENCH_OPENMETRICS="$work/data.om" \
  ${CARGO:-cargo} bench -p sightline-tsdb --bench promql)

echo "== Prometheus $(prometheus --version 2>&1 | head -1 | cut -d' ' -f3)"
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/prometheus" >/dev/null
rm -f "$work/data.om"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global: {scrape_interval: 1h}\n' > "$work/prometheus.yml"
prometheus_command="prometheus --config.file=$work/prometheus.yml \
  --storage.tsdb.path=$work/prometheus --storage.tsdb.retention.time=30d \
  --web.listen-address=127.0.0.1:$port --log.level=warn"
$prometheus_command 2>"$work/prometheus.log" &
prom_pid=$!
python3 "$here/promql_http_timings.py" --url "http://127.0.0.1:$port" --pid "$prom_pid" \
  --end $(( start + hours * 3600 )) --hours "$hours"

echo "== Sightline over HTTP ($("$sightline" version | head -1))"
printf 'global: {scrape_interval: 1h}\n' > "$work/sightline.yml"
"$sightline" import prometheus --config "$work/sightline.yml" --data-dir "$work/sightline" \
  --url "http://127.0.0.1:$port" --since "$(( hours + 3 ))h" --match '{__name__=~".+"}'
kill "$prom_pid"
wait "$prom_pid" || true
sightline_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sightline_command="$sightline --config $work/sightline.yml --data-dir $work/sightline \
  --listen 127.0.0.1:$sightline_port --log-level warn"
$sightline_command 2>"$work/sightline.log" &
sightline_pid=$!
python3 "$here/promql_http_timings.py" --url "http://127.0.0.1:$sightline_port" \
  --pid "$sightline_pid" --end $(( start + hours * 3600 )) --hours "$hours"
kill "$sightline_pid"
wait "$sightline_pid" || true

echo "== Each query in a fresh process: Prometheus"
python3 "$here/promql_http_timings.py" --url "http://127.0.0.1:$port" \
  --server "$prometheus_command" --end $(( start + hours * 3600 )) --hours "$hours"
echo "== Each query in a fresh process: Sightline"
python3 "$here/promql_http_timings.py" --url "http://127.0.0.1:$sightline_port" \
  --server "$sightline_command" --end $(( start + hours * 3600 )) --hours "$hours"
