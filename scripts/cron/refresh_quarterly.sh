#!/usr/bin/env bash
# The quarterly refresh: prep the new quarter exactly like the production data (--scaler-from)
# -> drift against the production reference -> refresh when the verdict says so -> report ->
# KPIs of last quarter's segments over the quarter just ended.
# The production model is replaced only when drift says "refresh" and the refresh succeeded;
# otherwise this quarter is labelled with the model in production. Run it from cron, e.g.
#
#   # 03:00 on the first day of each quarter
#   0 3 1 1,4,7,10 *  /opt/segforge/scripts/cron/refresh_quarterly.sh >> /var/log/segforge-refresh.log 2>&1
#
# or under Slurm (scripts/slurm/refresh_quarterly.sbatch). Settings (environment):
#   SEGFORGE_PROD   production folder: model.h5, its dictionary model.segments.json and the
#                   reference features.h5 it was fitted on (the first time, copy them there from
#                   your fit). Each run leaves there segments.csv (this quarter's labels) and
#                   as_of (its date), from which the next run computes the quarter's KPIs.
#   SEGFORGE_INBOX  this quarter's exports: gifts.csv, and events.csv when you have one
#   SEGFORGE_RUNS   where each run's files go (one folder per as-of date)
#   AS_OF           the as-of date, YYYY-MM-DD (default: today)
#   SEGFORGE, SEGFORGE_PREP   the binaries (default: on PATH)
#   REFRESH_ARGS    extra `segforge refresh` options (e.g. "--recheck-k --n-init 3")
# Exit status: 0 done (model kept or replaced), 1 a runtime failure, 2 bad input (nothing in
# production changed either way); a failed KPI step (after production is settled) exits with
# its status too.
set -euo pipefail
segforge=${SEGFORGE:-segforge}
prep=${SEGFORGE_PREP:-segforge-prep}
prod=${SEGFORGE_PROD:?set SEGFORGE_PROD to the production folder (model.h5, features.h5)}
inbox=${SEGFORGE_INBOX:?set SEGFORGE_INBOX to the folder with this quarter\'s gifts.csv}
as_of=${AS_OF:-$(date -u +%F)}
run=${SEGFORGE_RUNS:-$prod/runs}/$as_of
mkdir -p "$run"
log() { echo "$(date -u +%FT%TZ) refresh_quarterly: $*"; }

# 1. Prepare the quarter like the production data (same columns, same scaling).
events=()
[[ -f $inbox/events.csv ]] && events=(--events "$inbox/events.csv")
"$prep" rfm "$inbox/gifts.csv" "${events[@]}" --as-of "$as_of" --scaler-from "$prod/features.h5" \
  -o "$run/features.h5"

# 2. Drift: --fail-on refresh exits 5 when the verdict is "refresh" (0 for stable and watch;
#    docs/drift.md).
status=0
"$segforge" drift "$prod/model.h5" "$prod/features.h5" "$run/features.h5" -o "$run/drift.json" \
  --fail-on refresh || status=$?
verdict=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['verdict'])" "$run/drift.json")
log "as of $as_of: drift verdict $verdict"
if [[ $status -ne 0 && $status -ne 5 ]]; then
  log "drift failed (status $status); production unchanged"
  exit "$status"
fi

if [[ $status -eq 5 ]]; then
  # 3. Refresh: survivors keep their index and name; --strict refuses too little data.
  # shellcheck disable=SC2086  # REFRESH_ARGS is a list of options
  "$segforge" refresh "$prod/model.h5" "$run/features.h5" -o "$run/model.h5" --strict \
    --summary "$run/refresh.json" --labels "$run/segments.csv" --dictionary "$run/model.segments.json" \
    ${REFRESH_ARGS:-}
  "$segforge" report "$run/model.h5" --features "$run/features.h5" --labels "$run/segments.csv" \
    --drift "$run/drift.json" -o "$run/report.html"
  # 4. Promote: keep the previous production files, then rename the new ones into place (each
  # rename is atomic; the model goes last, so a reader never sees a model without its features).
  archive=$prod/archive/$as_of
  mkdir -p "$archive"
  cp -p "$prod/model.h5" "$prod/features.h5" "$archive/"
  [[ -f $prod/model.segments.json ]] && cp -p "$prod/model.segments.json" "$archive/"
  for f in features.h5 model.segments.json model.h5; do
    cp -p "$run/$f" "$prod/.$f.new"
    mv -f "$prod/.$f.new" "$prod/$f"
  done
  log "production model replaced: $(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['changes'])" "$run/refresh.json")"
else
  # Stable or watch: this quarter's segments from the production model.
  "$segforge" predict "$prod/model.h5" "$run/features.h5" -o "$run/segments.csv"
  log "production model kept ($verdict); labels in $run/segments.csv"
fi

# 5. KPIs: how last quarter's segments did over the quarter that just ended (retention, average
# gift, revenue per member; docs/kpis.md). Then this quarter's labels become the next baseline.
kpi_status=0
if [[ -f $prod/segments.csv && -f $prod/as_of ]]; then
  prev=$(cat "$prod/as_of")
  days=$(( ($(date -u -d "$as_of" +%s) - $(date -u -d "$prev" +%s)) / 86400 ))
  if (( days >= 1 )); then
    "$segforge" kpis "$inbox/gifts.csv" "$prod/segments.csv" --as-of "$prev" --window-days "$days" \
      -o "$run/kpis.json" || kpi_status=$?
    if (( kpi_status == 0 )); then
      log "KPIs of the segments as of $prev over $days days in $run/kpis.json"
    else
      log "kpis failed (status $kpi_status); production is settled as logged above"
    fi
  fi
fi
cp -p "$run/segments.csv" "$prod/.segments.csv.new"
mv -f "$prod/.segments.csv.new" "$prod/segments.csv"
echo "$as_of" > "$prod/.as_of.new"
mv -f "$prod/.as_of.new" "$prod/as_of"
exit "$kpi_status"
