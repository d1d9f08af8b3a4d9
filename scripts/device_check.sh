#!/usr/bin/env bash
# The CUDA backend on a GPU machine (the `device` tool), in one call that brings back every number
# issue 20 needs. Two halves:
#
#   scripts/device_check.sh build            here, on the development machine (no GPU needed)
#   scripts/device_check.sh run [CARRY]      there, on the GPU machine; CARRY = build-gpu/carry
#
# build: configures build-gpu/ (CUDA code for sm_90 only, MPI off, the CPU side for AVX2 + FMA with
# -march=x86-64-v3, no Python package), builds segforge, segforge_bench and test_cuda_backend, and
# fills the slim carry folder build-gpu/carry/ (ignored by git, about 30 MiB; the whole build tree
# would be most of the 64 MiB a call may carry): bin/ with the three binaries and lib/ with the
# shared libraries they load that the GPU machine lacks (HDF5 and what it pulls in: libcurl,
# libssl, GnuTLS, Kerberos, ..., and this compiler's libgomp); glibc itself stays the machine's
# (the build prints the newest glibc symbol the carried files need: 2.35 where the GPU machine's
# glibc is older than 2.36). This compiler's libstdc++ and libgcc_s go to lib-cxx/, used only if
# the binaries do not start on the machine's own (Debian 12's libstdc++ needs glibc 2.36; the
# binaries need GLIBCXX_3.4.30, GCC 12). cudart is linked statically and libcuda comes from the
# GPU machine's driver. Flash-KMeans
# (svg-project/flash-kmeans, not committed) is used when peers/flash-kmeans/flash_kmeans exists.
#
# run, in this order so that a call cut short still returns what matters, each step time-capped
# (about 5 minutes in all):
#   1. nvidia-smi and `segforge info` (device, compute capability, memory, driver, runtime and the
#      architectures the binary holds);
#   2. the CUDA test suite with CUDA_LAUNCH_BLOCKING=1 (a kernel fault names its kernel);
#   3. the benchmark, bench/gpu_peers.py: roofline (copy bandwidth, FP32 rate), Lloyd per iteration
#      at 10M x 8 K=8, 10M x 32 K=64, 2M x 128 K=1024 against PyTorch FP32 and Flash-KMeans, GPU
#      against CPU on the first shape, the exact silhouette at 1M x 32 K=16, streaming 200M x 16
#      (skipped until segforge_bench has it);
#   4. end to end: `segforge fit --device gpu` against `--device cpu` on one synthetic file (ARI of
#      the labels, inertia relative difference);
#   5. compute-sanitizer memcheck, then racecheck, on a few small CUDA tests.
# LD_LIBRARY_PATH is set for the project's binaries alone (never exported: the GPU machine's
# Python must keep its own libssl and friends). At most 8 files go to $OUT: summary.md, info.txt,
# tests.log, bench.jsonl, bench.log, fit.log, sanitizer.log, run.log.
# Without a GPU (or with --dry-run) every GPU step says it skipped and the script exits 0: CTest
# runs that dry run (device_check_dry_run) with the build's own binaries:
#   scripts/device_check.sh run --dry-run --segforge B --bench B --tests B
#
# The next GPU slot (the `device` tool's run; one call, about 5 minutes, leaving time for a rerun):
#   here:  scripts/device_check.sh build
#   run:   command   = PYTHONUNBUFFERED=1 bash scripts/device_check.sh run build-gpu/carry
#          carry     = ["build-gpu/carry", "peers/flash-kmeans"]
#          timeout_s = 420
#   then put the tables of $OUT/summary.md in bench/RESULTS.md (device, driver, date, commit, command).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- build (development machine) ---------------------------------------------------------------

build() {
  local dir=${1:-build-gpu}
  cd "$here" || exit 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGFORGE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DSEGFORGE_MPI=OFF -DSEGFORGE_NATIVE=OFF -DSEGFORGE_PYTHON=OFF \
    -DCMAKE_CXX_FLAGS=-march=x86-64-v3 -DCMAKE_CUDA_FLAGS=-Xcompiler=-march=x86-64-v3 >/dev/null || exit 1
  ninja -C "$dir" segforge segforge_bench test_cuda_backend || exit 1
  local carry=$dir/carry
  rm -rf "$carry"
  mkdir -p "$carry/bin" "$carry/lib" "$carry/lib-cxx"
  cp "$dir/tools/segforge" "$dir/bench/segforge_bench" "$dir/tests/test_cuda_backend" "$carry/bin/"
  strip --strip-unneeded "$carry"/bin/* 2>/dev/null
  # Every shared library the binaries load except glibc's own (the machine's glibc must serve).
  ldd "$carry"/bin/* | awk '/=> \// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|librt|libpthread|libresolv|libutil|ld-linux[^/]*)\.so' |
    while read -r lib; do
      case $lib in
        */libstdc++.so*|*/libgcc_s.so*) cp -L "$lib" "$carry/lib-cxx/" ;;
        *) cp -L "$lib" "$carry/lib/" ;;
      esac
    done
  if ldd "$carry"/bin/* | grep -q 'libmpi'; then
    echo "device_check: MPI is linked into the GPU build; configure with -DSEGFORGE_MPI=OFF" >&2
    exit 1
  fi
  local glibc
  glibc=$(objdump -T "$carry"/bin/* "$carry"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1)
  echo "device_check: newest glibc symbol needed: $glibc (the GPU machine's must be at least that)"
  du -sh "$carry" "$carry/bin" "$carry/lib" "$carry/lib-cxx"
}

# ---- run (GPU machine) -------------------------------------------------------------------------

carry=""
dry=0
segforge="" bench="" tests=""
python=${PYTHON:-python3}
parse_run() {
  while (($#)); do
    case $1 in
      --dry-run) dry=1 ;;
      --segforge) segforge=$2; shift ;;
      --bench) bench=$2; shift ;;
      --tests) tests=$2; shift ;;
      *) carry=$1 ;;
    esac
    shift
  done
  [[ -z $carry && -z $segforge ]] && carry=build-gpu/carry
  if [[ -n $carry ]]; then
    segforge=${segforge:-$carry/bin/segforge}
    bench=${bench:-$carry/bin/segforge_bench}
    tests=${tests:-$carry/bin/test_cuda_backend}
  fi
  lib=""
  [[ -n $carry && -d $carry/lib ]] && lib=$(cd "$carry/lib" && pwd)
  # The machine's libstdc++ first; the carried one where the binaries do not start without it.
  if [[ -n $carry && -d $carry/lib-cxx && -x $segforge ]] &&
     ! LD_LIBRARY_PATH="$lib" "$segforge" --help >/dev/null 2>&1 &&
     LD_LIBRARY_PATH="$lib:$(cd "$carry/lib-cxx" && pwd)" "$segforge" --help >/dev/null 2>&1; then
    lib="$lib:$(cd "$carry/lib-cxx" && pwd)"
    echo "device_check: the machine's libstdc++ is too old for segforge; using the carried one" >&2
  fi
}

# A project binary with the carried libraries, for that process alone.
project() { LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# The seconds a step may take: its own cap, and never past the run's deadline.
cap() {
  local left=$((deadline - SECONDS))
  ((left < 1)) && left=1
  echo $(($1 < left ? $1 : left))
}

step() { echo; echo "== $*"; }
note() { echo "$*" | tee -a "$summary"; }

run() {
  parse_run "$@"
  cd "$here" || exit 2
  out=${OUT:-$(mktemp -d)}
  mkdir -p "$out"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  summary=$out/summary.md
  deadline=$((SECONDS + ${DEVICE_CHECK_SECONDS:-330}))
  : >"$summary"
  status=0
  echo "# device check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" >>"$summary"

  for b in "$segforge" "$bench" "$tests"; do
    if [[ ! -x $b ]]; then
      echo "device_check: $b not found; run scripts/device_check.sh build first (or pass --segforge, --bench, --tests)" >&2
      exit 2
    fi
  done

  # 1. the device: nvidia-smi, then segforge's own view of it (which also proves that the
  # carried libraries load).
  step "1. nvidia-smi and segforge info"
  gpu=1
  if ((dry)); then
    gpu=0
    note "dry run: every GPU step skips"
  elif ! command -v nvidia-smi >/dev/null || ! timeout 20 nvidia-smi -L >/dev/null 2>&1; then
    gpu=0
    note "no GPU: nvidia-smi is missing or answers no device; every GPU step skips"
  fi
  {
    if ((gpu)); then timeout "$(cap 20)" nvidia-smi; else echo "nvidia-smi: skipped (no GPU)"; fi
    echo
    timeout "$(cap 30)" env LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$segforge" info
    echo "segforge info: exit $?"
  } >"$out/info.txt" 2>&1
  cat "$out/info.txt"
  grep -E '^(gpu|cpu backend):' "$out/info.txt" >>"$summary"
  if grep -q 'segforge info: exit [^0]' "$out/info.txt"; then
    note "segforge info FAILED (see info.txt): the carried binaries do not start here"
    status=1
    gpu=0
  elif ((gpu)) && grep -q '^gpu: none' "$out/info.txt"; then
    note "nvidia-smi sees a GPU but segforge does not (see info.txt); every GPU step skips"
    status=1
    gpu=0
  fi

  # 2. the CUDA test suite, each launch synchronous so that a fault names its kernel.
  step "2. test_cuda_backend (CUDA_LAUNCH_BLOCKING=1)"
  if ((gpu)); then
    CUDA_LAUNCH_BLOCKING=1 timeout "$(cap 150)" env LD_LIBRARY_PATH="$lib" "$tests" --gtest_color=no \
      >"$out/tests.log" 2>&1
    rc=$?
    tail -25 "$out/tests.log"
    note "tests: exit $rc; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/tests.log" | tr '\n' ' ')"
    grep -E '^\[  FAILED  \] [A-Za-z]' "$out/tests.log" | sort -u >>"$summary"
    ((rc == 0)) || status=1
  else
    n=$(project "$tests" --gtest_list_tests 2>&1 | grep -c '^  ')
    note "tests: skipped (no GPU); test_cuda_backend loads and lists $n tests"
  fi

  # 3. the benchmark against the GPU peers (bench/gpu_peers.py writes bench.jsonl).
  step "3. benchmark: bench/gpu_peers.py"
  flash=""
  [[ -d peers/flash-kmeans/flash_kmeans ]] && flash=peers/flash-kmeans
  if ((gpu)); then
    local budget
    budget=$(cap 170)
    timeout "$((budget + 15))" "$python" bench/gpu_peers.py --bench "$bench" --lib "$lib" --work "$work/bench" \
      --out "$out/bench.jsonl" --deadline "$budget" ${flash:+--flash "$flash"} >"$work/table.md" 2>"$out/bench.log"
    rc=$?
    cat "$work/table.md"
    { echo; echo "## benchmark (exit $rc)"; cat "$work/table.md"; } >>"$summary"
    ((rc == 0)) || { status=1; tail -5 "$out/bench.log"; }
  else
    note "benchmark: skipped (no GPU); $("$python" bench/gpu_peers.py --bench "$bench" --work "$work/bench" --out "$work/none.jsonl" 2>&1 | tail -1)"
    project "$bench" --help >/dev/null 2>&1 && note "segforge_bench loads; flash-kmeans: ${flash:-absent}"
  fi

  # 4. end to end: fit --device gpu against --device cpu on one file.
  step "4. fit --device gpu vs --device cpu"
  if ((gpu)); then
    {
      project "$segforge" synth -o "$work/fit.h5" --rows 1000000 --segments 12 --features 16 --seed 5 &&
        for device in gpu cpu; do
          start=$SECONDS
          timeout "$(cap 60)" env LD_LIBRARY_PATH="$lib" "$segforge" fit "$work/fit.h5" -k 12 --seed 5 \
            -o "$work/model_$device.h5" --labels "$work/labels_$device.h5" --metrics "$work/metrics_$device.json" \
            --device "$device" || exit 1
          echo "fit --device $device: $((SECONDS - start)) s"
        done
    } >"$out/fit.log" 2>&1
    rc=$?
    if ((rc == 0)); then
      "$python" - "$work" >>"$out/fit.log" 2>&1 <<'EOF'
import json, sys
import h5py, numpy as np
from sklearn.metrics import adjusted_rand_score
w = sys.argv[1]
m = {d: json.load(open(f"{w}/metrics_{d}.json")) for d in ("gpu", "cpu")}
lab = {d: h5py.File(f"{w}/labels_{d}.h5", "r")["/labels"][...] for d in ("gpu", "cpu")}
ig, ic = m["gpu"]["inertia"], m["cpu"]["inertia"]
print(f"fit gpu vs cpu, 1M x 16, K=12: ARI {adjusted_rand_score(lab['cpu'], lab['gpu']):.6f}, "
      f"inertia {ig:.9g} vs {ic:.9g} (rel diff {abs(ig - ic) / abs(ic):.2e}), "
      f"n_iter {m['gpu']['n_iter']} vs {m['cpu']['n_iter']}, device {m['gpu'].get('device')}")
EOF
      rc=$?
    fi
    tail -3 "$out/fit.log"
    note "fit: exit $rc; $(grep -m1 '^fit gpu vs cpu' "$out/fit.log")"
    ((rc == 0)) || status=1
  else
    note "fit: skipped (no GPU)"
  fi

  # 5. compute-sanitizer on small tests, last: memcheck then racecheck, each capped.
  step "5. compute-sanitizer"
  if ((gpu)) && command -v compute-sanitizer >/dev/null; then
    : >"$out/sanitizer.log"
    filter='*CudaVsCpu.*/n1000_d2_k3:*CudaVsCpu.*/n3001_d33_k45:*CudaVsCpu.*/n2500_d5_k300_weighted:CudaLargeShapes.SamplingNeverPicksARowOfNoMass'
    for tool in memcheck racecheck; do
      t=$(cap 60)
      if ((t < 15)); then note "sanitizer $tool: skipped (out of time)"; continue; fi
      timeout "$t" compute-sanitizer --tool "$tool" --error-exitcode 9 \
        env LD_LIBRARY_PATH="$lib" "$tests" --gtest_color=no --gtest_filter="$filter" >>"$out/sanitizer.log" 2>&1
      rc=$?
      note "sanitizer $tool: exit $rc ($( ((rc == 124)) && echo "stopped at $t s" || grep -m1 -E 'ERROR SUMMARY' "$out/sanitizer.log" | tail -1))"
      ((rc == 0 || rc == 124)) || status=1
    done
  else
    note "sanitizer: skipped ($( ((gpu)) && echo "no compute-sanitizer" || echo "no GPU"))"
  fi

  echo
  echo "== summary ($((SECONDS)) s, exit $status)"
  cat "$summary"
  echo "files: $out"
  return $status
}

case ${1:-} in
  build) shift; build "$@" ;;
  run)
    shift
    # The whole run's output also goes to $OUT/run.log (the reply keeps only its tail).
    if [[ -n ${OUT:-} ]]; then
      mkdir -p "$OUT"
      run "$@" 2>&1 | tee "$OUT/run.log"
      exit "${PIPESTATUS[0]}"
    fi
    run "$@"
    ;;
  *)
    sed -n '2,45p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
