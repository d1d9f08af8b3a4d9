#!/usr/bin/env bash
# Lloyd ms/iteration, segforge CPU vs scikit-learn, same files and starting centres, alternating
# in one run. Usage: bench/run_cpu_vs_sklearn.sh [iters] [reps]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-20}
reps=${2:-5}
sf=build/tools/segforge
bench=build/bench/bench_lloyd
work=out/bench
mkdir -p "$work"
for shape in "1000000 8 8" "1000000 32 64"; do
  read -r n d k <<<"$shape"
  f=$work/synth_${n}_${d}.h5
  init=$work/init_${n}_${d}_${k}.h5
  [ -f "$f" ] || $sf synth -o "$f" --rows "$n" --features "$d" --segments "$k" --seed 3 >/dev/null 2>&1
  [ -f "$init" ] || /usr/bin/python3 bench/make_init.py "$f" "$k" "$init"
  for round in 1 2; do
    $bench "$f" "$init" --iters "$iters" --reps "$reps"
    /usr/bin/python3 bench/sklearn_lloyd.py "$f" "$init" "$iters" "$reps"
  done
done
