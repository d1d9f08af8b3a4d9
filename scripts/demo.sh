#!/usr/bin/env bash
# End-to-end demo on data segforge makes itself: synthetic customers → fit → labels, metrics →
# predict on new customers. Outputs in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
sf=build/tools/segforge
mkdir -p out/demo
$sf info
$sf synth -o out/demo/customers.h5 --rows 200000 --segments 6 --features 8 --seed 1 --centres-seed 5
$sf synth -o out/demo/new_customers.h5 --rows 10000 --segments 6 --features 8 --seed 2 --centres-seed 5
$sf fit out/demo/customers.h5 -k 6 --seed 7 -o out/demo/model.h5 \
  --labels out/demo/segments.csv --metrics out/demo/metrics.json
$sf fit out/demo/customers.h5 -k 6 --algorithm minibatch --seed 7 -o out/demo/model_minibatch.h5 \
  --labels out/demo/labels_minibatch.h5
$sf score out/demo/customers.h5 --labels out/demo/labels_minibatch.h5 --silhouette sample=10000
$sf predict out/demo/model.h5 out/demo/new_customers.h5 -o out/demo/new_segments.csv
echo "demo: outputs in out/demo/ (model.h5, segments.csv, metrics.json, new_segments.csv)"
head -n 4 out/demo/segments.csv
