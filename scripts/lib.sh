# Shared by scripts/run and scripts/test: install missing Debian packages, find the toolchain.

# The build cache lives outside the clone so that fresh clones (and CI) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}"

# ensure_packages PKG...: installs the packages that are missing, with apt when root;
# otherwise prints the exact command to run and fails.
ensure_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# ensure_cargo: fails with instructions when no Rust toolchain is on PATH.
ensure_cargo() {
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo >/dev/null && return 0
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  return 1
}

# Build dependencies: a C/C++ toolchain, and libclang for RocksDB's bindgen.
BUILD_PACKAGES=(build-essential pkg-config libclang-dev)
