#!/usr/bin/env bash
# The GPU work kdbench still owes, in steps that each fit one 10-minute device call.
# Run from the repository root on the GPU machine: bash tools/gpu_session.sh STEP
#   setup        unpack .data/cifar10.tgz to /tmp/data; install wheels carried in .whl/ (torchao
#                for fp8 training, matplotlib for figures: the machine has no network)
#   determinism  every GPU determinism test: precisions, speed options (channels_last, fused
#                optimizer, torch.compile), fp8 training (skips where fp8 matmuls are missing)
#   bench        the benchmarks three times, their noise (the threshold for the saved baseline)
#   loop         the 5× target: seed-style KD loop against kdbench's loop on the same cell, with
#                and without the speed options (tools/bench_loop.py)
#   profile      the quick profile (--quick: all cells, all data, one epoch per model) of every
#                suite whose data is here, with its wall time
# Outputs go under $OUT (the device tool brings them back).
set -euo pipefail
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
export KDBENCH_DATA=/tmp/data KDBENCH_CACHE=/tmp/kdbench-cache PYTHONUNBUFFERED=1
step="${1:?usage: bash tools/gpu_session.sh setup|determinism|bench|loop|profile}"
case "$step" in
  setup)
    mkdir -p /tmp/data
    [ -f .data/cifar10.tgz ] && tar xzf .data/cifar10.tgz -C /tmp/data
    [ -d .data/fashion-mnist ] && cp -r .data/fashion-mnist /tmp/data/
    if [ -d .whl ]; then python3 -m pip install -q --no-index --find-links .whl torchao matplotlib || true; fi
    python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))"
    ;;
  determinism)
    python3 -m pytest -m gpu tests/test_determinism.py -ra 2>&1 | tee "$OUT/determinism.log"
    ;;
  bench)
    for i in 1 2 3; do
      python3 -m pytest -q -m benchmark tests/test_bench.py --benchmark-enable --benchmark-json="$OUT/bench-$i.json" \
        --benchmark-min-rounds=5 --benchmark-max-time=0.1 > "$OUT/bench-$i.log" 2>&1
    done
    python3 -m kdbench bench-noise "$OUT"/bench-1.json "$OUT"/bench-2.json "$OUT"/bench-3.json | tee "$OUT/bench-noise.txt"
    ;;
  loop)
    python3 tools/bench_loop.py --data-root /tmp/data | tee "$OUT/bench-loop.jsonl"
    ;;
  profile)
    for suite in suites/*.yaml; do
      start=$(date +%s)
      python3 -m kdbench run "$suite" --quick --device cuda --results "$OUT/results-quick" > "$OUT/quick-$(basename "$suite" .yaml).log" 2>&1 \
        && status=ok || status="exit $?"
      echo "$(basename "$suite" .yaml): $(( $(date +%s) - start )) s ($status)" | tee -a "$OUT/profile.txt"
    done
    ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
