#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (GoogleTest via CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# One CUDA architecture is enough to check that the CUDA code compiles (releases build all).
scripts/build.sh -DCMAKE_CUDA_ARCHITECTURES="${SEGFORGE_CUDA_ARCHITECTURES:-90}"
cd build
ctest --output-on-failure --timeout 600 -j "$(nproc)"
../scripts/fuzz.sh  # the short seeded libFuzzer run (tests/fuzz/); skips without clang
