#!/usr/bin/env bash
# Installs what segforge needs from Debian's packages, only what is missing (idempotent).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libhdf5-dev hdf5-tools libeigen3-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-sklearn python3-h5py python3-pandas python3-faiss
  pybind11-dev python3-pybind11 python3-pytest python3-scipy python3-dev
  libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  libcsv-dev libhowardhinnant-date-dev zlib1g-dev
  nodejs chromium
  clang libclang-rt-14-dev libomp-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  if ! "${as_root[@]}" apt-get install -y --no-install-recommends "$@"; then
    "${as_root[@]}" apt-get update
    "${as_root[@]}" apt-get install -y --no-install-recommends "$@"
  fi
}
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi
# npm: bundled with some nodejs builds; Debian packages it apart (installed only when absent).
command -v npm >/dev/null 2>&1 || apt_install npm

# The report's browser libraries (plotly.js, inlined into report.html; playwright-core for the
# headless-Chromium test), pinned in package-lock.json; only when node_modules lacks them.
cd "$(dirname "$0")/.."
if [ ! -f node_modules/plotly.js-dist-min/plotly.min.js ] || [ ! -d node_modules/playwright-core ]; then
  echo "setup: npm ci (plotly.js-dist-min, playwright-core)" >&2
  npm ci --no-audit --no-fund ||
    echo "setup: warning: npm ci failed; reports will have no charts and the browser test will skip" >&2
fi
