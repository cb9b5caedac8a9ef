#!/usr/bin/env bash
# Cold release build: wall time of `cargo build --release` into an empty target directory,
# and the size of the resulting binary. Crates must already be downloaded (`cargo fetch`),
# so the figure is compile time, not network time.
#   usage: benches/cold_build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --locked >/dev/null
target=$(mktemp -d /tmp/sightline-cold-build.XXXXXX)
trap 'rm -rf "$target"' EXIT
start=$(date +%s.%N)
CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet
end=$(date +%s.%N)
binary="$target/release/sightline"
printf 'cores: %s\n' "$(nproc)"
size=$(stat -c %s "$binary")
awk -v s="$start" -v e="$end" -v b="$size" 'BEGIN {
  printf "cold release build: %.0f s\nbinary size: %d bytes (%.1f MiB)\n", e - s, b, b / 1048576 }'
