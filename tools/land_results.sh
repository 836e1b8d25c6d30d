#!/usr/bin/env bash
# Copy the finished full-scale results of a results folder into reports/results/ (to commit;
# then `nox -s tables` regenerates the pages): per suite, each cell's result file and history
# CSV, never its .pt weights (MBs each; the result records their sha256). Only the results the
# committed suite and code would keep (kdbench list says "ok"): not --tiny rehearsals, not
# stale ones. Used by tools/gpu_session.sh land and tools/cpu_cells.sh land.
#   bash tools/land_results.sh RESULTS_DIR
set -euo pipefail
src="${1:?usage: land_results.sh RESULTS_DIR}"
for d in "$src"/*/; do
  [ -d "$d" ] || continue
  suite=$(basename "$d")
  [ -f "suites/$suite.yaml" ] || { echo "$d: no suites/$suite.yaml here; left out"; continue; }
  # Every seed that has a result there (a golden file's spread seeds beside the suite's own).
  seeds=$(find "$d" -maxdepth 1 -name '*__s*.json' | sed -n 's/.*__s\([0-9]*\)\.json$/\1/p' | sort -un | paste -sd, -)
  for id in $(python3 -m kdbench list "suites/$suite.yaml" ${seeds:+--set "seeds=[$seeds]"} --results "$src" | awk '$2 == "ok" && $1 ~ /__/ {print $1}'); do
    mkdir -p "reports/results/$suite" && cp "$d$id.json" "reports/results/$suite/"
    if [ -f "$d$id.history.csv" ]; then cp "$d$id.history.csv" "reports/results/$suite/"; fi
  done
  python3 -m kdbench list "suites/$suite.yaml" ${seeds:+--set "seeds=[$seeds]"} --results reports/results | tail -1
done
