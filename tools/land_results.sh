#!/usr/bin/env bash
# Copy the finished full-scale results of a results folder into reports/results/DEVICECLASS/
# (to commit; then `nox -s tables` regenerates the pages): per suite, each cell's result file and
# history CSV, never its .pt weights (MBs each; the result records their sha256). Only the
# results the committed suite and code would keep (kdbench list says "ok"): not --tiny
# rehearsals, not stale ones. Each goes to the folder of the device class it ran on (its
# environment.device_class), so a CPU result and a GPU result of the same cell both stay.
# Used by tools/gpu_session.sh land and tools/cpu_cells.sh land.
#   bash tools/land_results.sh RESULTS_DIR
set -euo pipefail
src="${1:?usage: land_results.sh RESULTS_DIR}"
landed=$(mktemp)
trap 'rm -f "$landed"' EXIT
# Every seed that has a result in a suite's folder (a golden file's spread seeds beside the
# suite's own), as kdbench list arguments.
seeds_of() {
  local seeds
  seeds=$(find "$1" -maxdepth 1 -name '*__s*.json' | sed -n 's/.*__s\([0-9]*\)\.json$/\1/p' | sort -un | paste -sd, -)
  if [ -n "$seeds" ]; then echo "--set seeds=[$seeds]"; fi
}
for d in "$src"/*/; do
  [ -d "$d" ] || continue
  suite=$(basename "$d")
  [ -f "suites/$suite.yaml" ] || { echo "$d: no suites/$suite.yaml here; left out"; continue; }
  # shellcheck disable=SC2046  # seeds_of: words without spaces
  for id in $(python3 -m kdbench list "suites/$suite.yaml" $(seeds_of "$d") --results "$src" | awk '$2 == "ok" && $1 ~ /__/ {print $1}'); do
    class=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["environment"]["device_class"])' "$d$id.json")
    dest="reports/results/$class/$suite"
    mkdir -p "$dest" && cp "$d$id.json" "$dest/"
    if [ -f "$d$id.history.csv" ]; then cp "$d$id.history.csv" "$dest/"; fi
    echo "$class $suite" >> "$landed"
  done
done
sort -u "$landed" | while read -r class suite; do
  # shellcheck disable=SC2046
  echo "reports/results/$class: $(python3 -m kdbench list "suites/$suite.yaml" $(seeds_of "reports/results/$class/$suite") --results "reports/results/$class" | tail -1)"
done
