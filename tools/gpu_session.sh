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
#   full         one full-scale KD cell per suite (the cheapest of each), resumable: run it again
#                (on the same warm machine) until it says "all done"; a training cut by the call's
#                time limit resumes from its last epoch checkpoint. Results in .gpu-results/
#                (kept between calls) and copied to $OUT each time.
#   profile      the quick profile (--quick: all cells, all data, one epoch per model) of every
#                suite whose data is here, with its wall time
# Outputs go under $OUT (the device tool brings them back).
# Data travels in .data/*.tgz (ignored by git; carry it): cifar10.tgz, fashion-mnist.tgz and
# imagenette-pair.tgz are together over the 64 MiB a call may carry, so carry them over two
# calls to one warm machine: setup unpacks whatever came and keeps what earlier calls unpacked.
set -euo pipefail
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
export KDBENCH_DATA=/tmp/data KDBENCH_CACHE=/tmp/kdbench-cache PYTHONUNBUFFERED=1
step="${1:?usage: bash tools/gpu_session.sh setup|determinism|bench|loop|full|profile}"
case "$step" in
  setup)
    mkdir -p /tmp/data
    for t in .data/*.tgz; do [ -f "$t" ] && tar xzf "$t" -C /tmp/data && echo "unpacked $t"; done
    ls /tmp/data
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
  full)
    export KDBENCH_CACHE="$PWD/.kdbench-cache"  # in the working tree: kept between calls while the machine is warm
    deadline=$(( $(date +%s) + ${BUDGET_S:-540} ))
    done_all=yes
    for spec in "s4-fmnist:*__rescnn_b4__fp32__kd__*" "s5-imagenette:*__kd__*" "s1-cifar10:*__student_light__fp32__kd__*" \
                "s3-cifar10:*__timm-resnet50__timm-resnet18__bf16__kd__*" "s2-cifar10:*__kd__*" "canonical-cifar:*__resnet56__resnet20__bf16__kd__*"; do
      suite=${spec%%:*}; cells=${spec#*:}
      left=$(( deadline - $(date +%s) ))
      if [ "$left" -le 30 ]; then done_all=no; break; fi
      echo "== $suite $cells (${left} s left in this call)"
      rc=0
      timeout "$left" python3 -m kdbench run "suites/$suite.yaml" --cells "$cells" --device cuda --results .gpu-results \
        >> "$OUT/full-$suite.log" 2>&1 || rc=$?
      grep -E "^\[|done in|resumed|FAILED|UNSUPPORTED|error" "$OUT/full-$suite.log" | tail -15 || true
      [ "$rc" = 0 ] || { echo "exit $rc"; done_all=no; }
    done
    mkdir -p "$OUT/results" && cp -r .gpu-results/. "$OUT/results/"
    [ "$done_all" = yes ] && echo "all done" || echo "not finished: run 'full' again on this warm machine"
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
