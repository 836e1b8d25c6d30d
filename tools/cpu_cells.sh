#!/usr/bin/env bash
# Full-scale cells a 2-core CPU can afford, run in the background while other work goes on
# (a CPU cell takes 30 min to 3 h). The trained teachers, the teacher logits and the
# mid-training checkpoints live in the run folder, so a stopped queue (to run the tests, say)
# resumes a cut cell from its last epoch. That holds only while the folder does: the agents'
# sessions sometimes start on a fresh machine (2026-11-27 morning: /work/cpu-run was gone, the
# queue with it) and sometimes on the last one (the next session found it whole), so plan for a
# queue line to finish, teacher included, inside the session that starts it, and take a
# checkpoint left by an earlier session as a gift.
# The times below were measured on a 2-core Intel Xeon (AVX-512, AMX); a 2-core AMD EPYC (AVX2)
# trains s4's ResNet-18 teacher at 145 images/s against ~550 there, about 3.8x slower. Another
# 2-core AMD EPYC (AVX-512, AVX512-BF16; 2026-11-28) trains bf16 faster than fp32, S3's ResNet-50
# on the subset at ~7 s an epoch.
#
#   bash tools/cpu_cells.sh start    the queue below, in order, in the background (nohup setsid), skipping
#                                    finished cells (those in reports/results/cpu/ too) and resuming a
#                                    cut training; refuses while a run of it is alive. Log: $RUN/log.txt.
#                                    On a CPU without fast bf16 kernels it skips lines with bf16 cells
#                                    (CPU_SLOW_BF16=1 runs them: 20-50x slower than fp32 there)
#   bash tools/cpu_cells.sh status   whether it runs, each queued cell's state, the trainings saved
#                                    mid-way (epoch, val top-1, time left at their pace), the log's tail
#   bash tools/cpu_cells.sh stop     stops it (the queue and the kdbench run under it, one process group); the
#                                    training under way loses what came after its last checkpoint
#   bash tools/cpu_cells.sh land     copies the finished, current results into reports/results/cpu/
#                                    (tools/land_results.sh; then nox -s tables and commit)
#
# RUN defaults to /work/cpu-run. Keep test runs off the CPU while it trains: on 2 cores a second
# process slows training 2-3x, and the time shows in the result's epoch seconds. The queue runs
# the code and suites as they were at `start` (a copy in $RUN/code); after a change to the
# training code (kdbench.fingerprint.CODE_FILES) the next start re-keys the teachers and
# checkpoints, and starts again from scratch (unless tools/verify_code_change.py linked it).
set -euo pipefail
RUN="${RUN:-/work/cpu-run}"
mkdir -p "$RUN" && RUN=$(cd "$RUN" && pwd)  # absolute: the queue runs from $RUN/code
# suite  cell-id glob  [more kdbench run arguments]; cheapest useful first: the first full-scale
# cell of a suite, then the cell that gives its KD gain, then seeds for a golden file, then more
# students of a teacher that is cached by then. Everything down to S4's seeds is committed
# (S3's stand-in chain on 2026-11-28, in 15 min on an AVX-512 AMD EPYC); start skips what is done.
QUEUE=(
  # S1 whole (EfficientNet-B4 teacher ~1 h: 683 s an epoch here; students 13-38 s an epoch):
  # its best student first (S1 reports StudentResNet 88.33 % on EuroSAT), alone and with KD.
  "s1-cifar10 cifar10-jpeg__timm-efficientnet_b4__student_resnet__fp32__*__s47"
  "s1-cifar10 cifar10-jpeg__timm-efficientnet_b4__*__s47"                  # ~1 h more
  "s3-cifar10 cifar10-jpeg__timm-resnet50__timm-resnet18__bf16__none__s0"   # ~2 h 45 (teacher ~2 h)
  # S5's first full-scale cell: DeiT-S teacher and ResNet-50 student at 224×224 (estimated
  # ~2.5 h each from FLOPs; measured below).
  "s5-imagenette *__none__s0"
  # Measured 2026-11-26: teacher ~100 s an epoch, student ~175 s (34 min and 58 min for 20
  # epochs): S5's KD cell (the cached teacher's forward added to each student step) in ~1 h 15.
  # Beside the none cell it gives S5's KD gain on one device class.
  "s5-imagenette *__kd__s0"
  "s3-cifar10 cifar10-jpeg__timm-resnet50__timm-resnet18__bf16__kd__s0"     # ~1 h 20 (teacher forward every step: crop)
  # S2's whole recipe on the shipped 1,800-image Fashion-MNIST subset (its CIFAR-10 cells need
  # the GPU): 635 TFLOP by kdbench cost, ~2.5 h on the AMD EPYC (VGG16 teacher ~70 min, then
  # ~36 and ~43 min for the students), so about 40 min on the Xeon.
  "s2-cifar10 fmnist-smoke__*__none__s0"
  "s2-cifar10 fmnist-smoke__*__kd__s0"
  # Seeds 1 and 2 of both (the teacher trained again per seed): then a golden file for S2's
  # stand-in cells (kdbench golden update suites/s2-cifar10.yaml --cells 'fmnist-smoke__*' --spread-seeds 0 1 2).
  # fp32, so the AMD EPYC runs them at its pace (~1 h 45 a seed there, ~30 min on the Xeon).
  "s2-cifar10 fmnist-smoke__*__s1 --set seeds=[0,1,2]"
  "s2-cifar10 fmnist-smoke__*__s2 --set seeds=[0,1,2]"
  # S3's CNN chain, whole recipe, on the same subset: teacher, student alone, KD, and TAKD
  # through the ResNet-34 assistant (107 TFLOP by kdbench cost, ~20 min on the Xeon). bf16:
  # skipped on a CPU without fast bf16 kernels (the AVX2 AMD EPYC), where it would take many hours.
  "s3-cifar10 fmnist-smoke__timm-resnet50*"
  # Seeds 1 and 2 beside the committed seed 0 (~1 h 30 a seed, its teacher included): then
  # kdbench golden update suites/s4-fmnist.yaml --cells '*rescnn_b4__fp32__*' --spread-seeds 0 1 2
  #   --results $RUN/results --cache $RUN/cache --device cpu  writes golden/s4-fmnist/cpu.json.
  "s4-fmnist *__rescnn_b4__fp32__* --set seeds=[0,1,2]"
  "s4-fmnist *__rescnn_b6__fp32__*__s0"                                      # ~1 h 20 for both (teacher cached)
  "s4-fmnist *__rescnn_b8__fp32__*__s0"
  "s4-fmnist *__rescnn_b10__fp32__*__s0"
  "s3-cifar10 cifar10-jpeg__timm-resnet50~timm-resnet34__timm-resnet18__bf16__takd__s0"  # ~3 h
  # The canonical 240-epoch recipe on the subset, the cheapest pair alone, with KD and with DKD
  # (bf16: an AVX-512 CPU only). On the AVX512-BF16 AMD EPYC: resnet56 teacher ~5 s an epoch
  # (21 min), resnet20 alone ~2 s (8 min), KD / DKD ~3.5 s (14 min each): ~1 h a seed.
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s0"
  # Seeds 1 to 5 (the teacher trained again per seed; the same pace on the AMX Intel Xeon,
  # 2026-11-29: 5.5 s a teacher epoch, 7-7.5 s when the host ran slow; seed 5: teacher 7.1 s,
  # alone 2.6 s, KD 3.9 s, DKD 3.8 s, 1 h 11 in all), then its golden file (seeds 0-5 since
  # 2026-11-29; 0-4 before):
  #   kdbench golden update suites/canonical-cifar.yaml --cells 'fmnist-smoke__resnet56__resnet20__bf16__*'
  #   --spread-seeds 0 1 2 3 4 5 --results $RUN/results --cache $RUN/cache --device cpu
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s1 --set seeds=[0,1,2]"
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s2 --set seeds=[0,1,2]"
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s3 --set seeds=[0,1,2,3]"
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s4 --set seeds=[0,1,2,3,4]"
  "canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s5 --set seeds=[0,1,2,3,4,5]"
  # The next pair by kdbench cost, vgg13 -> vgg8 (515 + 155 TFLOP against resnet56 -> resnet20's
  # 258 + 83), seed 0. On the AMX Intel Xeon (2026-11-29) its dense convolutions ran more FLOPs a
  # second than the resnets': teacher 8.6 s an epoch (35 min), vgg8 alone 3.8 s (15 min), KD
  # 5.9 s (24 min), DKD 5.6 s (23 min), medians of the result files: 1 h 38 in all.
  "canonical-cifar fmnist-smoke__vgg13__vgg8__bf16__*__s0"
  # Seeds 1 and 2 (the teacher trained again per seed, ~1 h 40 a seed here; seed 2 on 2026-11-29:
  # teacher 9.6 s an epoch, alone 4.4 s, KD 6.9 s, DKD 6.6 s, 1 h 51 in all), then its golden file
  # (made 2026-11-29 from seeds 0-2):
  #   kdbench golden update suites/canonical-cifar.yaml --cells 'fmnist-smoke__vgg13__vgg8__bf16__*'
  #   --spread-seeds 0 1 2 --results $RUN/results --cache $RUN/cache --device cpu
  "canonical-cifar fmnist-smoke__vgg13__vgg8__bf16__*__s1 --set seeds=[0,1,2]"
  "canonical-cifar fmnist-smoke__vgg13__vgg8__bf16__*__s2 --set seeds=[0,1,2]"
  # Not queued yet: the students' own spread, with the teacher held fixed (recipe teacher.seed,
  # 2026-11-29). Every seed distils from seed 0's teacher, which is cached already (a pinned
  # teacher shares its seed's key), so a seed costs its three students only (~1 h here). A
  # sweep of the one value gives these cells ids of their own (…__s1__teacher.seed=0), beside
  # the per-seed-teacher cells, and the canonical page then shows both spreads. Seed 0's
  # cells run again under their new ids and must come out bitwise as seed 0 has (a check).
  # By hand, one seed at a time like the lines above (…__s0__*, then __s1__* with seeds=[0,1], …):
  #   CPU_QUEUE='canonical-cifar fmnist-smoke__resnet56__resnet20__bf16__*__s0__* --set seeds=[0] --sweep teacher.seed=0'
)
# CPU_QUEUE (lines like those above) replaces it: tests/test_cpu_cells.py rehearses on the smoke suite.
if [ -n "${CPU_QUEUE:-}" ]; then mapfile -t QUEUE <<< "$CPU_QUEUE"; fi
alive() { [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if alive; then echo "already running (pid $(cat "$RUN/pid")): bash tools/cpu_cells.sh status"; exit 1; fi
    mkdir -p "$RUN/results"
    # A fresh machine's run folder is empty: the committed CPU results seed it (never over a
    # file there), so the cells they hold are skipped, not trained again for hours. Stale ones
    # (other code or settings) the runner re-runs as it would anyway.
    if [ -d reports/results/cpu ]; then
      (cd reports/results/cpu && find . -type f) | while read -r f; do
        [ -e "$RUN/results/$f" ] || { mkdir -p "$(dirname "$RUN/results/$f")" && cp "reports/results/cpu/$f" "$RUN/results/$f"; }
      done
    fi
    lines=$(printf '%s\n' "${QUEUE[@]}")
    # The queue runs a copy of the kdbench package and the suites taken now, from $RUN/code: an
    # edit of the checkout during its hours neither changes what it trains nor breaks it half-way
    # (2026-11-29: a run that had imported one module before an edit and the next after it
    # failed at its end on the mismatch).
    pkg=$(python3 -c "import os, kdbench; print(os.path.dirname(kdbench.__file__))")
    rm -rf "$RUN/code" && mkdir -p "$RUN/code" && cp -r "$pkg" "$RUN/code/kdbench" && cp -r suites "$RUN/code/suites"
    # setsid: its own session and process group, so that what ends the shell that started it
    # (a closed terminal, the end of an agent's session) does not reach it. setsid execs in
    # place here (a background job is no group leader), so $! stays the queue's pid.
    nohup setsid bash -c '
      cd "$1/code"
      # On a CPU without fast bf16 kernels (kdbench/cpu_bf16.py: 20-50x slower than fp32) a
      # line with bf16 cells would hold the queue for many hours: skipped unless CPU_SLOW_BF16=1.
      slow_bf16=$(python3 -c "from kdbench.cpu_bf16 import fast_bf16; print(fast_bf16() is False)")
      while read -r suite cells extra; do
        echo "=== $(date -u +%FT%TZ) $suite $cells $extra"
        # shellcheck disable=SC2086
        if [ "$slow_bf16" = True ] && [ -z "${CPU_SLOW_BF16:-}" ] \
            && python3 -m kdbench list "suites/$suite.yaml" --cells "$cells" $extra 2>/dev/null | grep -q "__bf16__"; then
          echo "=== skipped: bf16 cells, and this CPU has no fast bf16 kernels (20-50x slower than fp32); CPU_SLOW_BF16=1 runs them"
          continue
        fi
        # shellcheck disable=SC2086  # extra: words, no spaces inside any
        python3 -m kdbench run "suites/$suite.yaml" --cells "$cells" $extra --device cpu --results "$1/results" --cache "$1/cache" \
          || echo "=== exit $? (the queue goes on)"
      done <<< "$2"
      echo "=== $(date -u +%FT%TZ) queue done"' _ "$RUN" "$lines" >> "$RUN/log.txt" 2>&1 &
    echo $! > "$RUN/pid"
    echo "started (pid $!), log $RUN/log.txt"
    ;;
  status)
    if alive; then echo "running (pid $(cat "$RUN/pid"))"; else echo "not running"; fi
    # Each suite once, listed with its longest extra arguments (a seeds list covers seed 0's cells).
    printf '%s\n' "${QUEUE[@]}" | awk '{e = $3 " " $4; if (!($1 in x) || length(e) > length(x[$1])) x[$1] = e}
      END {for (k in x) print k, x[k]}' | sort | while read -r suite extra; do
      # shellcheck disable=SC2086
      python3 -m kdbench list "suites/$suite.yaml" $extra --results "$RUN/results" --cache "$RUN/cache" | grep -v '  not run$' || true
    done
    if [ -f "$RUN/log.txt" ]; then tail -n 3 "$RUN/log.txt"; fi
    ;;
  stop)  # the whole process group setsid made (the queue, the kdbench under it, any worker of
         # that), at once: the queue dies with its run and starts no next line
    if ! alive; then echo "not running"; exit 0; fi
    pid=$(cat "$RUN/pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 60); do  # kdbench stops in order on SIGTERM (a second or two)
      pgrep -g "$pid" > /dev/null || break
      sleep 1
    done
    echo "stopped (pid $pid); the training under way resumes from its last checkpoint on the next start"
    ;;
  land)
    bash "$(dirname "$0")/land_results.sh" "$RUN/results"
    echo "then: nox -s tables, and commit reports/"
    ;;
  *)
    sed -n '2,20p' "$0"; exit 2 ;;
esac
