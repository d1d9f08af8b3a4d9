#!/usr/bin/env bash
# The CUDA backend on a GPU machine (the `device` tool): device info, the CUDA test suite, and a
# quick fit on synthetic data with --device gpu against --device cpu, printing both inertias.
# Logs go to $OUT when it is set (the device tool brings that folder back).
#
# The device machines have CUDA 13 but none of Debian's -dev packages (no HDF5 headers, Eigen,
# CLI11, GoogleTest) and no network, so the build is made on the development machine and carried:
#
#   cmake -S . -B build-cuda -G Ninja -DSEGFORGE_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES=90
#   ninja -C build-cuda segforge test_cuda_backend
#   # the non-system shared libraries the binaries link (HDF5 and friends), beside the build:
#   mkdir -p build-cuda/lib
#   ldd build-cuda/tools/segforge build-cuda/tests/test_cuda_backend | awk '/=> \// {print $3}' |
#     grep -vE '/(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
#     sort -u | xargs -I{} cp -L {} build-cuda/lib/
#
# then run on the device (carry build-cuda; SEGFORGE_NATIVE=OFF so the CPU code runs on its CPU):
#   scripts/device_check.sh build-cuda
#
# cudart is linked statically, so nothing from the CUDA toolkit has to be carried; the driver's
# libcuda comes from the machine.
set -uo pipefail

build=${1:-build-cuda}
if [[ ! -x "$build/tools/segforge" ]]; then
  echo "device_check: $build/tools/segforge not found; build it first (see the top of this script)" >&2
  exit 2
fi
for lib in "$build/lib" "$build/../lib"; do
  if [[ -d "$lib" ]]; then
    export LD_LIBRARY_PATH="$(cd "$lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
status=0

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$out/nvidia-smi.log" | head -15

echo "== segforge info"
"$build/tools/segforge" info 2>&1 | tee "$out/info.log" || status=1

echo "== test_cuda_backend"
"$build/tests/test_cuda_backend" --gtest_color=no 2>&1 | tee "$out/test_cuda_backend.log" | tail -40
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
if grep -q "no CUDA backend:" "$out/test_cuda_backend.log"; then
  echo "device_check: the CUDA tests skipped: no device answered" >&2
  status=1
fi

echo "== fit: --device gpu vs --device cpu"
"$build/tools/segforge" synth -o "$work/features.h5" --rows 200000 --segments 8 --features 16 \
  > "$out/synth.log" 2>&1 || status=1
for device in gpu cpu; do
  start=$(date +%s.%N)
  "$build/tools/segforge" fit "$work/features.h5" -k 8 -o "$work/model_$device.h5" \
    --device "$device" > "$out/fit_$device.log" 2>&1 || status=1
  end=$(date +%s.%N)
  summary=$(grep -m1 -E "^(lloyd|minibatch) k=" "$out/fit_$device.log")
  printf '%s: %s (%.2f s)\n' "$device" "${summary:-no summary line, see $out/fit_$device.log}" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
done

rm -rf "$work"
echo "logs: $out"
exit $status
