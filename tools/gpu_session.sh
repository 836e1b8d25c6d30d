#!/usr/bin/env bash
# The GPU work kdbench still owes, sized for a session's device budget (15 minutes of device
# time in all, machine start included; at most 10 minutes a call).
#
# Here (this machine), before the first device call:
#   bash tools/gpu_session.sh pack     .data/gpu-a.tgz (CIFAR-10 JPEG + the Imagenette pair of s5,
#                                      ~44 MB), .data/gpu-b.tgz (Fashion-MNIST, ~30 MB: s4), .whl/
#                                      (torchao for the device's Python 3.12: fp8 training). A call
#                                      carries at most 64 MiB: one pack a call (move the other out
#                                      of .data); a suite whose data did not come says so and the
#                                      queue goes on.
# On the device, one call (repository root; carry .data .whl .gpu-state):
#   bash tools/gpu_session.sh owed [SECONDS]
#       does what fits in SECONDS (default 520) of the queue below, in this order, skipping what
#       is finished, and leaves everything under $OUT in two files: owed-logs.tgz (logs,
#       benchmark runs) and gpu-state.tgz (the finished full-scale results, and the mid-training
#       checkpoints and the finished teachers when they fit in 15 MiB: a CIFAR resnet56's do, a
#       ResNet-18 teacher's with its Adam state (~180 MB) do not; those resume only on the same
#       warm machine, so call again at once, within its 30 s idle release). The queue:
#         determinism  the GPU determinism tests of precisions and speed options
#         fp8          the fp8-training determinism test (torchao from .whl; Hopper)
#         bench        the KD-loss and KD-step benchmarks three times, and their run-to-run noise
#         loop         the 5× target: seed-style KD loop against kdbench's loop (tools/bench_loop.py)
#         trace        where a training step's time goes, host or device (tools/step_trace.py): the
#                      canonical recipe's resnet56 and resnet20 at batch 64, bf16 and fp32
#         models-forward, models-train
#                      inference and training-step throughput of every registered model at each
#                      precision (tests/test_bench.py), once each: absolute figures, landed under
#                      benchmarks/runs/ (not a regression baseline: no noise measured for them);
#                      BENCH_MODELS="resnet or vgg" narrows them to the models that match
#         graph        the cuda_graph option: its steps against the eager ones, bitwise (dropout and
#                      per-epoch train metrics too)
#                      (tests/test_determinism.py), then the canonical pair's loop eager against
#                      graphed, fp32 and bf16, batch 64 and 512 (tools/bench_loop.py --graph)
#         models-suites
#                      models-forward and models-train for every suite model at its suite's input where that
#                      is not 3×32×32 or the model is not registered (timm's, S5's pair at 224×224, S4's at
#                      1×28 and 3×150, S1's EuroSAT 3×64, S3's PathMNIST 3×28: tests/test_bench.py SUITE_INPUTS)
#         full         one full-scale KD cell per suite, cheapest first; a training cut by the
#                      deadline resumes from its last epoch checkpoint in the next call
#       A part is "finished" when it ran to its end, passed or failed (its marker is then in
#       .gpu-state/done, carried back and forth), so successive calls, on a fresh machine or a
#       warm one, walk down the queue; a part cut by its cap runs once more, and is set aside
#       if cut again, so no part can hold up the queue.
# Here, after each call (DIR: the call's files_at):
#   bash tools/gpu_session.sh land DIR  (also after 'profile': keeps its results in reports/quick-profile/)
#                                       unpacks DIR/gpu-state.tgz into .gpu-state/ (carry it in the
#                                       next call), keeps its trained teachers and cut trainings in
#                                       reports/gpu-state.tgz (commit it: a session on a fresh
#                                       machine has no .gpu-state; owed starts from it then),
#                                       writes the queue position to
#                                       reports/gpu-owed-done.txt (commit it: a later session's
#                                       owed starts there), copies the finished full-scale results that
#                                       are current into reports/results/DEVICECLASS/ (then: nox -s tables),
#                                       saves the three benchmark runs as a baseline with the
#                                       threshold their noise sets (kdbench bench-noise --save)
#                                       and the loop figures under benchmarks/.
# The device call itself: run(command="bash tools/gpu_session.sh owed 520", carry=[".data", ".whl"],
# timeout_s=590): the deadline leaves time to pack $OUT before the call's limit. .gpu-state need
# not travel (it would count twice against the 64 MiB): what owed needs of it comes from the
# committed reports/gpu-owed-done.txt, reports/results/DEVICECLASS/ and reports/gpu-state.tgz,
# and a warm machine still holds its own.
# The older single steps stay: setup | determinism | bench | loop | full | profile (the quick
# profile of every suite: a whole call on its own, stopped by PROFILE_BUDGET_S, default 540 s,
# so what finished comes back; the data of all suites exceeds one call's 64 MiB, so
# PROFILE_SUITES="suites/s4-fmnist.yaml" in a second call with gpu-b.tgz). First run on the H200
# 2026-11-27: canonical-cifar whole in 276 s, then the deadline; the cells profiled so far are
# committed in reports/quick-profile/, and the next profile call starts after them.
# After 'land', `kdbench cost SUITE --timed-by reports/quick-profile` times each suite's full
# run from the profile's measured epochs.
#
# Finished full-scale cells are skipped only while their configuration hash holds: it covers the
# training code (kdbench.fingerprint.code_fingerprint), so a change to the code (not the comments)
# of train.py, losses.py, precision.py, metrics.py, models/ or data/split.py between calls
# re-runs them and makes the checkpoints unusable (they are then reported and removed, never
# misused).
set -euo pipefail
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
export KDBENCH_DATA="${KDBENCH_DATA:-/tmp/data}" PYTHONUNBUFFERED=1
# In the working tree, so a warm machine keeps it between calls; gpu-state.tgz carries it further.
export KDBENCH_CACHE="${KDBENCH_CACHE:-$PWD/.kdbench-cache}"
DEVICE="${KDBENCH_DEVICE:-cuda}"           # cpu: rehearse the flow here (with EXTRA="--tiny")
EXTRA="${EXTRA:-}"                         # more kdbench run arguments for the full cells
STATE=.gpu-state
DONE_FILE=reports/gpu-owed-done.txt       # committed by land: the queue position across sessions
# Committed by land too: the finished teachers and cut trainings, because the agents' sessions
# sometimes start on a fresh machine, .gpu-state gone (2026-11-28: the canonical KD student's 156
# of 240 epochs and its resnet56 teacher were lost so). At most STATE_MAX_BYTES, a landing's.
STATE_KEPT=reports/gpu-state.tgz
STATE_MAX_BYTES=$(( 15 * 1024 * 1024 ))    # one file back from $OUT is at most 16 MiB
# One full-scale cell per suite, cheapest first by `kdbench cost SUITE --cells GLOB` (training
# FLOPs, upper bounds): s1 181 TFLOP, s3 1.24 PFLOP, s5 2.09 PFLOP, s4 862 TFLOP (its data travels
# in the other pack, so it comes after the gpu-a suites), canonical resnet56→resnet20 on the
# shipped subset 674 TFLOP (on CIFAR-10 13.9: see below), s2 14.3 PFLOP. s1's StudentNetLight alone
# (175 TFLOP, about 4 minutes on the H200: its teacher is trained again, the cache stays on the
# machine) comes after s5: beside the KD cell it gives S1's KD gain. The H100 sustained about
# 6 TFLOP/s over the gpu-cifar10 suite (4.14 PFLOP in 729 s of cells), ~17 for its ResNet-18
# teacher at true fp32: minutes for the first four, 14–42 minutes each for the last two, more
# than one session's budget (see above for what resumes where).
FULL_CELLS=(
  "s1-cifar10:*__student_light__fp32__kd__*"
  # canonical on the shipped subset, before s3: its teacher (4.2 min on the H200) and the KD
  # student's checkpoint are small enough to travel in .gpu-state, so what is left of it (the KD
  # student cut at epoch 231/240 on 2026-11-27, then DKD: 1.6-3.2 min a student) fits any call.
  # On CIFAR-10 the same pair needs ~3 h of the H200 (the teacher 1.8 h at 26.9 s an epoch: batch
  # 64 of a 56-layer CNN is bound by kernel launches, tools/step_trace.py: the GPU busy 26 %).
  "canonical-cifar:fmnist-smoke__resnet56__resnet20__*"
  # s3's ResNet-50 teacher: 30 epochs at ~12 s on the H200, then the student: ~11 min in all,
  # more than what one call leaves, and its checkpoint (> 15 MiB) resumes only on the same warm
  # machine: call 'full' again at once after an owed call that cut it.
  "s3-cifar10:cifar10-jpeg__timm-resnet50__timm-resnet18__bf16__kd__*"
  "s5-imagenette:*__kd__*"
  "s1-cifar10:*__student_light__fp32__none__*"
  "s4-fmnist:*__rescnn_b4__fp32__kd__*"
  "s2-cifar10:cifar10-jpeg__*__kd__*"  # CIFAR-10: the fmnist-smoke stand-in runs on a CPU
)
# OWED_FULL="suite:glob …" replaces the list (tests/test_gpu_session.py rehearses on the smoke suite).
if [ -n "${OWED_FULL:-}" ]; then read -r -a FULL_CELLS <<< "$OWED_FULL"; fi
step="${1:?usage: bash tools/gpu_session.sh pack|owed [SECONDS]|land DIR|setup|determinism|bench|loop|full|profile}"

now() { date +%s; }

setup() {
  mkdir -p "$KDBENCH_DATA"
  for t in .data/*.tgz; do [ -f "$t" ] && tar xzf "$t" -C "$KDBENCH_DATA" && echo "unpacked $t"; done
  ls "$KDBENCH_DATA"
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" || echo "wheels in .whl/ did not install: fp8 training cells will say unsupported"
  fi
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
}

run_determinism() {  # $1: pytest -k selection, $2: log name
  python3 -m pytest -m gpu tests/test_determinism.py -k "$1" -raP 2>&1 | tee "$OUT/$2.log"
  local rc=${PIPESTATUS[0]}
  # Every test skipped (no GPU, no torchao, no fp8 matmuls): nothing was checked, so the part
  # is not done; 75 tells 'part' to try again next call.
  if ! grep -Eq "[0-9]+ (passed|failed|errors?)" "$OUT/$2.log"; then
    echo "every selected test skipped (reasons above): nothing checked"
    return 75
  fi
  return "$rc"
}

run_bench() {  # $1: pytest -k selection (empty: every benchmark)
  local k=(); [ -n "${1:-}" ] && k=(-k "$1")
  for i in 1 2 3; do
    python3 -m pytest -q -m benchmark tests/test_bench.py "${k[@]}" --benchmark-enable --benchmark-json="$OUT/bench-$i.json" \
      --benchmark-min-rounds=5 --benchmark-max-time=0.1 > "$OUT/bench-$i.log" 2>&1
  done
  python3 -m kdbench bench-noise "$OUT"/bench-1.json "$OUT"/bench-2.json "$OUT"/bench-3.json | tee "$OUT/bench-noise.txt"
}

run_loop() { python3 tools/bench_loop.py --data-root "$KDBENCH_DATA" | tee "$OUT/bench-loop.jsonl"; }

run_graph() {  # cuda_graph: bitwise against the eager step, then its speed on the canonical pair
  run_determinism cuda_graph determinism-graph || return $?
  python3 tools/bench_loop.py --data-root "$KDBENCH_DATA" --teacher resnet56 --student resnet20 --graph | tee "$OUT/bench-graph.jsonl"
}

run_trace() {  # TRACE_MODELS, TRACE_PRECISIONS, TRACE_BATCH, TRACE_STEPS narrow it (the CPU rehearsal does)
  local p m args=()
  for m in ${TRACE_MODELS:-resnet56 resnet20}; do args+=(--model "$m"); done
  local rc=0
  for p in ${TRACE_PRECISIONS:-bf16 fp32}; do
    python3 tools/step_trace.py "${args[@]}" --batch "${TRACE_BATCH:-64}" --steps "${TRACE_STEPS:-20}" --precision "$p" \
      >> "$OUT/step-trace.jsonl" 2>> "$OUT/step-trace.log" || { rc=$?; break; }
  done
  cat "$OUT/step-trace.jsonl" 2>/dev/null
  [ "$rc" = 0 ] || tail -5 "$OUT/step-trace.log"  # the reason (the profiler's own notes go to the log too)
  return "$rc"
}

run_models() {  # $1: the benchmark test function, $2: the run's name (bench-NAME.json under $OUT)
  local k="$1"; [ -n "${BENCH_MODELS:-}" ] && k="$1 and ($BENCH_MODELS)"
  python3 -m pytest -q -m benchmark tests/test_bench.py -k "$k" --benchmark-enable --benchmark-json="$OUT/bench-$2.json" \
    --benchmark-min-rounds=5 --benchmark-max-time=0.1 > "$OUT/bench-$2.log" 2>&1
  local rc=$?
  tail -3 "$OUT/bench-$2.log"
  return "$rc"
}

# The full-scale cells until $1 (epoch seconds); returns 0 when every one is finished.
run_full() {
  local deadline=$1 all=0 spec suite cells left rc
  for spec in "${FULL_CELLS[@]}"; do
    suite=${spec%%:*}; cells=${spec#*:}
    left=$(( deadline - $(now) ))
    if [ "$left" -le 30 ]; then all=1; break; fi
    echo "== $suite $cells (${left} s left)"
    rc=0
    # --checkpoint-every: the deadline's SIGTERM loses at most this much training (the default
    # minute cut the canonical KD student back from epoch 231 to 156 of 240 on 2026-11-27).
    # shellcheck disable=SC2086  # EXTRA is a list of arguments
    timeout "$left" python3 -m kdbench run "suites/$suite.yaml" --cells "$cells" --device "$DEVICE" --results "$STATE/results" \
      --checkpoint-every "${CHECKPOINT_EVERY_S:-15}" $EXTRA \
      >> "$OUT/full-$suite.log" 2>&1 || rc=$?
    grep -E "^\[|done in|resumed|FAILED|UNSUPPORTED|error" "$OUT/full-$suite.log" | tail -8 || true
    [ "$rc" = 0 ] || { echo "   exit $rc (124: cut by the deadline; the next call resumes it)"; all=1; }
  done
  return $all
}

save_state() {  # what the next call (this session's or a later one's) carries back in as .gpu-state
  local tmp="$OUT/gpu-state.tgz" d
  # The mid-training checkpoints, and the finished teachers and TAKD assistants (so a CIFAR
  # resnet56 teacher trained in one session is not trained again in the next).
  for d in checkpoints teachers; do
    rm -rf "${STATE:?}/$d"
    [ -d "$KDBENCH_CACHE/$d" ] && cp -r "$KDBENCH_CACHE/$d" "$STATE/$d"
  done
  # Student weights (.pt) stay behind: a result's sha256 records them, and a ResNet alone is
  # over the 16 MiB a file may bring back. Over that size, the checkpoints are left out first,
  # then the teachers too.
  local base=(--exclude="$STATE/results/*.pt" --exclude="$STATE/results/*/.lock" --exclude='*.tmp*' --exclude="$STATE/logs")
  tar czf "$tmp" "${base[@]}" "$STATE"
  if [ "$(stat -c %s "$tmp")" -gt "$STATE_MAX_BYTES" ]; then
    tar czf "$tmp" "${base[@]}" --exclude="$STATE/checkpoints" "$STATE"
    echo "checkpoints left out of gpu-state.tgz (over $STATE_MAX_BYTES bytes): a cut training restarts on a fresh machine"
  fi
  if [ "$(stat -c %s "$tmp")" -gt "$STATE_MAX_BYTES" ]; then
    tar czf "$tmp" "${base[@]}" --exclude="$STATE/checkpoints" --exclude="$STATE/teachers" "$STATE"
    echo "finished teachers left out of gpu-state.tgz too (over $STATE_MAX_BYTES bytes): a fresh machine trains them again"
  fi
  rm -rf "$STATE/checkpoints" "$STATE/teachers"
  echo "state: $(stat -c %s "$tmp") bytes in $tmp"
}

case "$step" in
  pack)
    src="${KDBENCH_DATA_SRC:-../shared/datasets}"
    mkdir -p .data
    classes=$(python3 -c "import yaml; print(' '.join(yaml.safe_load(open('suites/s5-imagenette.yaml'))['data']['classes']))")
    # shellcheck disable=SC2046  # one path per word
    tar czf .data/gpu-a.tgz -C "$src" cifar10-jpeg $(for c in $classes; do echo "imagenette-224/train/$c imagenette-224/val/$c"; done)
    tar czf .data/gpu-b.tgz -C "$src" fashion-mnist
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl torchao
    ls -la .data .whl
    echo "call 1 carries .data (gpu-a.tgz only) .whl .gpu-state; a later call .data with gpu-b.tgz (s4)"
    ;;
  owed)
    deadline=$(( $(now) + ${2:-520} ))
    mkdir -p "$STATE" "$KDBENCH_CACHE"
    # A new session's checkout has no .gpu-state: start from what earlier sessions committed
    # (the finished parts, and the full-scale results of this machine's device class, which the
    # runner skips while current).
    [ -f "$STATE/done" ] || { [ -f "$DONE_FILE" ] && grep -v '^#' "$DONE_FILE" > "$STATE/done"; } || true
    touch "$STATE/done"
    # Nor the trained teachers and cut trainings: the last landing's, committed.
    if [ ! -d "$STATE/checkpoints" ] && [ ! -d "$STATE/teachers" ] && [ -f "$STATE_KEPT" ]; then
      tar xzf "$STATE_KEPT" && echo "teachers and cut trainings from $STATE_KEPT (the last landing)"
    fi
    for d in checkpoints teachers; do  # what save_state carried: into the cache, where the runner looks
      if [ -d "$STATE/$d" ]; then cp -rn "$STATE/$d" "$KDBENCH_CACHE/" && rm -rf "${STATE:?}/$d"; fi
    done
    setup
    class=$(python3 -c "from kdbench.determinism import device_class, pick_device; print(device_class(pick_device('$DEVICE')))")
    for d in "reports/results/$class"/*/; do
      [ -d "$d" ] && mkdir -p "$STATE/results/$(basename "$d")" && cp -n "$d"*.json "$d"*.csv "$STATE/results/$(basename "$d")/" 2>/dev/null || true
    done
    export OUT KDBENCH_DATA KDBENCH_CACHE
    export -f run_determinism run_bench run_loop run_graph run_trace run_models
    queue=()  # the parts in the order of the calls below (the last line prints it)
    part() {  # name, cap in seconds, function and arguments: run unless done or no time is left
      local name=$1 cap=$2 left
      shift 2
      queue+=("$name")
      if grep -qx "$name" "$STATE/done"; then echo "== $name: finished in an earlier call"; return; fi
      left=$(( deadline - $(now) ))
      [ "$left" -lt "$cap" ] && { echo "== $name: needs up to $cap s, $left s left: next call"; return; }
      echo "== $name (up to $cap s)"
      local rc=0
      timeout "$cap" bash -o pipefail -c '"$@"' _ "$@" || rc=$?
      # A part that ran to its end is done, passed or not (a failing test is a finding to
      # report, not to re-run every call); one cut by its cap, or one whose tests all skipped
      # (exit 75), runs again next call.
      if [ "$rc" = 124 ]; then
        if grep -qx "$name" "$STATE/cut" 2>/dev/null; then  # never let one part hold up the queue
          echo "== $name: cut at $cap s a second time; set aside (raise its cap in this script to run it whole)"
          echo "$name" >> "$STATE/done"
        else
          echo "$name" >> "$STATE/cut"
          echo "== $name: cut at $cap s; the next call runs it again"
        fi
        return
      fi
      if [ "$rc" = 75 ]; then echo "== $name: nothing could run here; the next call tries again"; return; fi
      echo "$name" >> "$STATE/done"
      [ "$rc" = 0 ] || echo "== $name ended with exit $rc: see its log under \$OUT"
    }
    # fp8 training apart: it needs torchao and fp8 matmuls, and failed alone on the H200 (2026-11-26).
    part determinism "${CAP_DETERMINISM:-300}" run_determinism "not fp8" determinism
    part fp8 "${CAP_FP8:-150}" run_determinism fp8 determinism-fp8
    part bench "${CAP_BENCH:-240}" run_bench "kd_loss or kd_train_step"
    part loop "${CAP_LOOP:-120}" run_loop
    # Before the full-scale cells: 'full' is finished only when every one of them is, which takes
    # more than a session, so anything after it would never run.
    part trace "${CAP_TRACE:-120}" run_trace
    part models-forward "${CAP_MODELS:-300}" run_models test_forward_throughput models-forward
    part models-train "${CAP_MODELS:-300}" run_models test_train_step_throughput models-train
    # graph before models-suites: it checks a claim the code makes (GraphedStep replays the
    # eager step's dropout masks, untested on a GPU since 2026-11-28), models-suites only adds
    # throughput figures.
    part graph "${CAP_GRAPH:-300}" run_graph
    # grad_checkpointing (2026-11-28, written without a GPU): bitwise against plain steps, and
    # the peak memory it saves (the log's "peak allocated" lines; -raP keeps them).
    part recompute "${CAP_RECOMPUTE:-150}" run_determinism grad_checkpointing determinism-recompute
    # 28 (model, input) pairs × 4 precisions, forward and training step: twice models-forward's
    # count (104 benchmarks in 68 s on the H200), with larger models and inputs.
    part models-suites "${CAP_MODELS_SUITES:-420}" run_models test_suite_model models-suites
    queue+=(full)
    if ! grep -qx full "$STATE/done"; then
      if run_full "$deadline"; then echo full >> "$STATE/done"; fi
    fi
    save_state
    # At most 8 files come back from $OUT: the logs and benchmark runs travel as one archive.
    (cd "$OUT" && find . -maxdepth 1 -type f ! -name gpu-state.tgz -printf '%f\n' | tar czf owed-logs.tgz -T - \
      && find . -maxdepth 1 -type f ! -name gpu-state.tgz ! -name owed-logs.tgz -delete)
    echo "finished: $(tr "\n" " " < "$STATE/done")(the queue: ${queue[*]})"
    ;;
  land)
    dir="${2:?usage: bash tools/gpu_session.sh land DIR (files_at of the call)}"
    if [ -f "$dir/quick.tgz" ]; then  # a quick profile: its results time every suite (kdbench cost --timed-by reports/quick-profile)
      tmp=$(mktemp -d) && tar xzf "$dir/quick.tgz" -C "$tmp"
      mkdir -p reports/quick-profile && cp -r "$tmp"/results-quick/. reports/quick-profile/ && rm -rf "$tmp"
      cat "$dir/profile.txt" >> "reports/quick-profile/profile-$(date +%Y%m%d).txt"  # appended: a day may see several calls
      echo "quick profile: results in reports/quick-profile/, wall times in reports/quick-profile/profile-$(date +%Y%m%d).txt"
    fi
    if [ ! -f "$dir/gpu-state.tgz" ]; then echo "no gpu-state.tgz in $dir: nothing of 'owed' to land"; exit 0; fi
    rm -rf "$STATE" && tar xzf "$dir/gpu-state.tgz"
    kept=(); for d in checkpoints teachers; do [ -d "$STATE/$d" ] && kept+=("$STATE/$d"); done
    if [ "${#kept[@]}" -gt 0 ]; then  # a call that left them out (over the size) keeps the last landing's
      tar czf "$STATE_KEPT" "${kept[@]}" && echo "teachers and cut trainings: $STATE_KEPT ($(stat -c %s "$STATE_KEPT") bytes; commit it)"
    fi
    if [ -f "$dir/owed-logs.tgz" ]; then  # unpack the logs and benchmark runs beside the state
      mkdir -p "$STATE/logs" && tar xzf "$dir/owed-logs.tgz" -C "$STATE/logs" && dir="$STATE/logs"
      echo "logs and benchmark runs of the call: $dir"
    fi
    bash "$(dirname "$0")/land_results.sh" "$STATE/results"
    if [ -f "$dir/bench-3.json" ]; then  # the benchmark runs: the first becomes the saved baseline, their noise its threshold
      name=$(python3 -c "import json,re,sys,datetime as d; k=json.load(open(sys.argv[1]))['machine_info']['kdbench']; \
print(re.sub('[^a-z0-9]+','-',(k.get('gpu') or 'cpu').lower()).strip('-')+'-kd-'+d.date.today().strftime('%Y%m%d'))" "$dir/bench-1.json")
      python3 -m kdbench bench-noise "$dir"/bench-{1,2,3}.json --save "$name" \
        --command "tools/gpu_session.sh owed: pytest -m benchmark tests/test_bench.py -k 'kd_loss or kd_train_step' --benchmark-min-rounds=5 --benchmark-max-time=0.1, three times" \
        && python3 -m kdbench bench-report "benchmarks/$name.json"
    fi
    for f in "$dir"/bench-models-*.json; do  # absolute throughput of every model: kept with its Markdown tables
      [ -f "$f" ] || continue
      mkdir -p benchmarks/runs
      name=$(python3 -c "import json,re,sys; k=json.load(open(sys.argv[1]))['machine_info']['kdbench']; \
print(re.sub('[^a-z0-9]+','-',(k.get('gpu') or 'cpu').lower()).strip('-'))" "$f")-$(basename "$f" .json | sed 's/^bench-//')-$(date +%Y%m%d)
      cp "$f" "benchmarks/runs/$name.json" && python3 -m kdbench bench-report "benchmarks/runs/$name.json" > /dev/null \
        && echo "model throughput: benchmarks/runs/$name.md"
    done
    if grep -qs busy_over_wall "$dir/step-trace.jsonl"; then  # named like the model runs: GPU (or cpu), then date
      gpu=$(python3 -c "import json,re,sys; r=json.loads(open(sys.argv[1]).readline()); \
print(re.sub('[^a-z0-9]+','-',(r['gpu'] or 'cpu').lower()).strip('-'))" "$dir/step-trace.jsonl")
      mkdir -p benchmarks/runs && cp "$dir/step-trace.jsonl" "benchmarks/runs/$gpu-step-trace-$(date +%Y%m%d).jsonl"
      echo "step trace: benchmarks/runs/$gpu-step-trace-$(date +%Y%m%d).jsonl"
    fi
    if grep -qs images_per_s "$dir/bench-loop.jsonl"; then  # named like the benchmark baseline: GPU, then date
      gpu=$(python3 -c "import json,re,sys; r=json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][0]); \
print(re.sub('[^a-z0-9]+','-',r['gpu'].lower()).strip('-'))" "$dir/bench-loop.jsonl")
      cp "$dir/bench-loop.jsonl" "benchmarks/kd-loop-$gpu-$(date +%Y%m%d).jsonl"
    fi
    if grep -qs ratio_vs_eager "$dir/bench-graph.jsonl"; then  # the cuda_graph loop against the eager one
      gpu=$(python3 -c "import json,re,sys; r=json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][0]); \
print(re.sub('[^a-z0-9]+','-',r['gpu'].lower()).strip('-'))" "$dir/bench-graph.jsonl")
      mkdir -p benchmarks/runs && grep '^{' "$dir/bench-graph.jsonl" > "benchmarks/runs/$gpu-graph-loop-$(date +%Y%m%d).jsonl"
      echo "cuda_graph loop: benchmarks/runs/$gpu-graph-loop-$(date +%Y%m%d).jsonl"
    fi
    # The queue position only moves forward: a call that carried an older .gpu-state (a 'full'
    # call started before the previous call was landed) must not undo what the committed file holds.
    { [ -f "$DONE_FILE" ] && grep -v '^#' "$DONE_FILE"; cat "$STATE/done"; } | awk 'NF && !seen[$0]++' > "$STATE/done.merged"
    mv "$STATE/done.merged" "$STATE/done"
    { echo "# Parts of 'tools/gpu_session.sh owed' that ran to their end on a GPU (written by its land step;"
      echo "# to run a part again, delete its line here and in .gpu-state/done). Last landed $(date -u +%F) at $(git rev-parse --short HEAD 2>/dev/null || echo "an unknown revision")."
      cat "$STATE/done"; } > "$DONE_FILE"
    echo "done: $(tr '\n' ' ' < "$STATE/done")(in $DONE_FILE: commit it with the results)"
    ;;
  setup) setup ;;
  determinism) run_determinism "" determinism ;;
  bench) run_bench "" ;;
  loop) run_loop ;;
  full)
    if run_full $(( $(now) + ${BUDGET_S:-540} )); then echo "all done"; else echo "not finished: run 'full' again"; fi
    save_state
    ;;
  profile)  # PROFILE_SUITES: which suites (default every one in suites/); one call on its own: carry .data .whl
    # run(command="bash tools/gpu_session.sh profile", carry=[".data", ".whl"], timeout_s=590)
    setup
    start_all=$(now)
    # A deadline inside the call's limit (PROFILE_BUDGET_S, default 540 of a 600 s call): a
    # suite still running then is cut, and what finished still comes back packed below.
    deadline=$(( start_all + ${PROFILE_BUDGET_S:-540} ))
    whole=0 total=0
    # A profile longer than one call resumes in the next: the cells an earlier call profiled
    # (committed in reports/quick-profile/ by its land) are skipped by the runner while their
    # configuration hash holds. On the H200 (2026-11-27) canonical-cifar alone took 276 s of a
    # 520 s call, so every suite's profile takes several calls.
    mkdir -p "$OUT/results-quick"
    for d in reports/quick-profile/*/; do [ -d "$d" ] && cp -r "$d" "$OUT/results-quick/"; done
    for suite in ${PROFILE_SUITES:-suites/*.yaml}; do
      start=$(now) total=$(( total + 1 ))
      left=$(( deadline - start ))
      if [ "$left" -le 5 ]; then echo "$(basename "$suite" .yaml): not reached (the deadline)" | tee -a "$OUT/profile.txt"; continue; fi
      # shellcheck disable=SC2086  # EXTRA is a list of arguments
      timeout "$left" python3 -m kdbench run "$suite" --quick --device "$DEVICE" --results "$OUT/results-quick" $EXTRA > "$OUT/quick-$(basename "$suite" .yaml).log" 2>&1 \
        && { status=ok; whole=$(( whole + 1 )); } || { rc=$?; [ "$rc" = 124 ] && status="cut by the deadline: its finished cells are kept" || status="exit $rc"; }
      before=$(grep -om1 '[0-9]* already done' "$OUT/quick-$(basename "$suite" .yaml).log" || true)
      [ -n "$before" ] && [ "${before%% *}" != 0 ] && status="$status; ${before%% *} cells profiled in an earlier call"
      echo "$(basename "$suite" .yaml): $(( $(now) - start )) s ($status)" | tee -a "$OUT/profile.txt"
    done
    echo "all: $whole of $total suites whole in $(( $(now) - start_all )) s on $(python3 -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')")" | tee -a "$OUT/profile.txt"
    # At most 8 files come back: the results (without student weights, which a ViT-B's alone
    # would make too large) and logs travel as one archive beside profile.txt.
    (cd "$OUT" && find . -maxdepth 1 -name 'quick-*.log' -printf '%f\n' | tar czf quick.tgz --exclude='*.pt' --exclude='*.lock' results-quick -T - \
      && rm -rf results-quick quick-*.log)
    ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
