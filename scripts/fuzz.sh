#!/usr/bin/env bash
# A short, seeded libFuzzer run of segforge's file readers (tests/fuzz/): builds the targets with
# clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/, runs each over its committed corpus
# (tests/fuzz/corpus/<target>/) and then for a fixed number of mutations with a fixed seed.
# Exits non-zero on any crash, hang, leak or sanitizer report; the input that caused it is left
# in build-fuzz/artifacts/. Skips (exit 0, with a message) where clang or libFuzzer is missing.
#   scripts/fuzz.sh                      the CI run (about a minute on 2 cores, after the build)
#   FUZZ_RUNS_CSV=100000 FUZZ_RUNS_HDF5=20000 FUZZ_SEED=7 scripts/fuzz.sh   a longer local run
# fuzz_hdf5 only replays its corpus by default: Debian's HDF5 1.10 itself crashes, leaks or
# exhausts memory within a few hundred mutated files (tests/fuzz/README.md), which would make the
# run fail on HDF5's bugs rather than segforge's.
#   scripts/fuzz.sh fuzz_csv -runs=-1 -max_total_time=600   one target; libFuzzer flags after it win
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cxx=$(command -v clang++ || command -v clang++-14 || true)
cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cxx" ] || [ -z "$cc" ]; then
  echo "fuzz: skipped: clang is not installed (Debian: clang, libclang-rt-14-dev)" >&2
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: skipped: $cxx cannot link libFuzzer with ASan/UBSan (Debian: libclang-rt-14-dev)" >&2
  exit 0
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  cmake -S tests/fuzz -B build-fuzz "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" >/dev/null
fi
cmake --build build-fuzz --parallel "${SEGFORGE_FUZZ_JOBS:-$(nproc)}" --target fuzz_csv fuzz_hdf5

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OMP_NUM_THREADS=1
seed="${FUZZ_SEED:-20261201}"
mkdir -p build-fuzz/artifacts

# One target: the committed corpus first (every file once), then the seeded mutations into a
# scratch corpus, so the committed one never changes.
fuzz_one() {
  local target=$1 runs
  shift
  case $target in
    fuzz_csv) runs="${FUZZ_RUNS_CSV:-4000}" ;;
    *) runs="${FUZZ_RUNS_HDF5:-0}" ;;
  esac
  local corpus=$root/tests/fuzz/corpus/$target
  local work=build-fuzz/work/$target
  rm -rf "$work"
  mkdir -p "$work"
  local flags=(-seed="$seed" -max_len=65536 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
               -artifact_prefix="build-fuzz/artifacts/$target-")
  echo "fuzz: $target: $(ls "$corpus" | wc -l) corpus files, then $runs runs, seed $seed" >&2
  "build-fuzz/$target" "${flags[@]}" -runs="$runs" "$@" "$work" "$corpus"
}

status=0
if [ $# -gt 0 ]; then
  fuzz_one "$@" || status=$?
else
  for target in fuzz_csv fuzz_hdf5; do
    fuzz_one "$target" || { status=$?; echo "fuzz: $target FAILED (exit $status); see build-fuzz/artifacts/" >&2; }
  done
fi
[ "$status" -eq 0 ] && echo "fuzz: no crash, hang, leak or sanitizer report" >&2
exit "$status"
