#!/usr/bin/env bash
# End to end on data segforge makes itself: synthetic donors with known segments → segforge-prep
# rfm → sweep (which K) → fit (named, profiled segments) → stability → predict for new donors →
# report.html → the same from Python → next quarter: prep --scaler-from → drift (the verdict) →
# refresh (same names where segments survive) → report → kpis (the first quarter's segments
# over the second).
# Outputs in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
P=build/tools/segforge-prep
S=build/tools/segforge
d=out/demo
mkdir -p $d
$S info
# A CRM export (gifts) and a marketing-automation export (events) of 20 000 donors, five true segments.
$P synth donors -n 20000 --seed 1 -o $d/gifts.csv --events $d/events.csv --truth $d/truth.csv
$P rfm $d/gifts.csv --events $d/events.csv --as-of 2024-01-01 -o $d/features.h5
# How many segments? Elbow, silhouette, gap, Davies–Bouldin and Calinski–Harabasz vote.
$S sweep $d/features.h5 --k 2:9 --gap-refs 5 --seed 7 -o $d/sweep.json
k=$(/usr/bin/python3 -c "import json,sys; print(json.load(open('$d/sweep.json'))['recommended_k'])")
if [ "$k" = 0 ]; then  # no K passed the sweep's own rules: it says why
  /usr/bin/python3 -c "import json; print('demo: no K recommended:', json.load(open('$d/sweep.json'))['reason'])"
  exit 1
fi
$S fit $d/features.h5 -k "$k" --seed 7 -o $d/model.h5 --labels $d/segments.csv --metrics $d/metrics.json
$S stability $d/features.h5 -k "$k" --runs 4 --sample-fraction 0.5 --seed 7 -o $d/stability.json
# New donors, prepared exactly like the training data, get segments for CRM import.
$P synth donors -n 2000 --seed 2 -o $d/new_gifts.csv --events $d/new_events.csv
$P rfm $d/new_gifts.csv --events $d/new_events.csv --as-of 2024-01-01 --scaler-from $d/features.h5 -o $d/new_features.h5
$S predict $d/model.h5 $d/new_features.h5 -o $d/new_segments.csv
$S report $d/model.h5 --features $d/features.h5 --labels $d/segments.csv \
  --sweep $d/sweep.json --stability $d/stability.json -o $d/report.html
head -n 4 $d/new_segments.csv
# The same engine from Python (README, "Python"): the features file as numpy, the CLI's model
# loaded, predict and a refit from its centres give the CLI's labels; segments.csv by pandas.
PYTHONPATH=build/python /usr/bin/python3 - "$d" <<'PY'
import sys
import numpy as np, pandas as pd, segforge
d = sys.argv[1]
X, ids, names = segforge.read_features(f"{d}/features.h5")
model = segforge.load_model(f"{d}/model.h5")
cli = pd.read_csv(f"{d}/segments.csv")
same = np.array_equal(model.predict(X), cli["segment"].to_numpy())
refit = segforge.KMeans(model.n_clusters, init=model.cluster_centers_, n_init=1).fit(X)
print(f"demo: python: {len(X)} donors x {len(names)} features; predict equals segments.csv: {same}; "
      f"refit from the model's centres: inertia {refit.inertia_:.6g} (CLI {model.inertia_:.6g})")
print(segforge.profiles(X, refit.labels_, feature_names=names)[["size", "share"]].to_string())
PY
# Next quarter: the same donors' gifts up to 2024-04-01, prepared like the training data; drift
# says how far they moved (stable, watch or refresh, with its reasons; docs/drift.md), then a
# refresh from the model's centres: surviving segments keep their index and name; refresh.json
# says what survived, split, merged, dissolved or emerged (scripts/cron/refresh_quarterly.sh
# runs this loop with the drift verdict deciding). Last, the KPIs of the first quarter's
# segments over the quarter that followed (docs/kpis.md).
# The Q2 export is Q1's rows plus the first quarter of 2024: the gifts and events dated from
# 2024-01-01 of the same donors (same seed, same segments) simulated up to 2024-04-01.
$P synth donors -n 20000 --seed 1 --end 2024-04-01 -o $d/sim_q2.csv --events $d/sim_events_q2.csv
for f in gifts events; do
  sim=$d/sim_q2.csv; [ $f = events ] && sim=$d/sim_events_q2.csv
  { cat $d/$f.csv; awk -F, 'NR > 1 && $2 >= "2024-01-01"' "$sim"; } > $d/${f}_q2.csv
done
$P rfm $d/gifts_q2.csv --events $d/events_q2.csv --as-of 2024-04-01 --scaler-from $d/features.h5 -o $d/features_q2.h5
$S drift $d/model.h5 $d/features.h5 $d/features_q2.h5 -o $d/drift.json
verdict=$(/usr/bin/python3 -c "import json; print(json.load(open('$d/drift.json'))['verdict'])")
echo "demo: drift verdict for the second quarter: $verdict"
$S refresh $d/model.h5 $d/features_q2.h5 -o $d/model_q2.h5 --summary $d/refresh.json --labels $d/segments_q2.csv
$S report $d/model_q2.h5 --features $d/features_q2.h5 --labels $d/segments_q2.csv --drift $d/drift.json \
  -o $d/report_q2.html
$S kpis $d/gifts_q2.csv $d/segments.csv --as-of 2024-01-01 --window-days 91 -o $d/kpis.json
echo "demo: K=$k recommended; open $d/report.html (named segments, profiles, charts; works offline)"
