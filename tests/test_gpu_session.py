"""tools/gpu_session.sh rehearsed on the CPU: the budgeted, resumable `owed` call a lent GPU
session runs, and `land`, which brings its results home. The GPU parts (determinism tests,
benchmarks, the 5× loop) are marked done here; the full-scale queue runs a real smoke cell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from .conftest import REPO, script_checkout

CELL = "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0"


def gpu_session(work: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "tools/gpu_session.sh", *args], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_owed_call_then_land_then_a_later_call_skips_what_is_done(tmp_path):
    work = tmp_path / "repo"  # a checkout's layout: the script, the suites, the committed results
    (work / "tools").mkdir(parents=True)
    for script in ("gpu_session.sh", "land_results.sh", "step_trace.py"):
        shutil.copy(REPO / "tools" / script, work / "tools")
    shutil.copytree(REPO / "suites", work / "suites")
    shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))  # the model benchmarks run from it
    shutil.copy(REPO / "pyproject.toml", work)  # pytest's markers and options
    (work / "reports" / "results").mkdir(parents=True)
    (work / "reports" / "gpu-owed-done.txt").write_text("# committed by an earlier land\ndeterminism\nbench\nloop\n")
    out = tmp_path / "out"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OUT=str(out),
               KDBENCH_DEVICE="cpu", KDBENCH_DATA=str(tmp_path / "data"), KDBENCH_CACHE=str(tmp_path / "cache"),
               OWED_FULL=f"smoke:{CELL}", BENCH_MODELS="cnn_tiny or resnet18-1x28",  # S4's timm/resnet18 on Fashion-MNIST
               CAP_MODELS_SUITES="120",  # its GPU cap (420 s) would not start within this call's 400 s
               TRACE_MODELS="cnn_tiny", TRACE_PRECISIONS="fp32",
               TRACE_BATCH="4", TRACE_STEPS="2")
    first = gpu_session(work, "owed", "400", env=env)
    assert "== determinism: finished in an earlier call" in first.stdout and f"[1/1] {CELL}" in first.stdout
    # At most 8 files come back from a call: everything travels in two archives.
    assert sorted(p.name for p in out.iterdir()) == ["gpu-state.tgz", "owed-logs.tgz"]
    with tarfile.open(out / "gpu-state.tgz") as t:
        names = t.getnames()
    assert f".gpu-state/results/smoke/{CELL}.json" in names and not any(n.endswith((".pt", ".lock")) and "/results/" in n for n in names)
    # The trained teacher travels (small enough), so a fresh machine in a later session has it.
    assert any(n.startswith(".gpu-state/teachers/") and n.endswith(".pt") for n in names), names
    # fp8: its test skips without a GPU, so nothing was checked and it is not done.
    assert "== fp8: nothing could run here; the next call tries again" in first.stdout
    assert "finished: determinism bench loop trace models-forward models-train models-suites full" in first.stdout

    shutil.rmtree(work / ".gpu-state")  # landing happens in the session's own checkout
    landed = gpu_session(work, "land", str(out), env=env)
    result = json.loads((work / "reports" / "results" / "cpu" / "smoke" / f"{CELL}.json").read_text())
    assert result["status"] == "ok" and result["config"]["device_class"] == "cpu"
    done = (work / "reports" / "gpu-owed-done.txt").read_text().splitlines()
    assert [line for line in done if not line.startswith("#")] == ["determinism", "bench", "loop", "trace", "models-forward", "models-train", "models-suites", "full"]
    assert "1 ok" in landed.stdout
    # Every model's throughput (here narrowed to cnn_tiny by BENCH_MODELS) lands as a run with
    # its tables, apart from the saved baselines that nox -s bench compares against.
    for kind, title in (("forward", "Inference throughput"), ("train", "Training step")):
        (run,) = (work / "benchmarks" / "runs").glob(f"cpu-models-{kind}-*.json")
        assert [b["params"]["name"] for b in json.loads(run.read_text())["benchmarks"]] == ["cnn_tiny"]
        assert title in run.with_suffix(".md").read_text()
    (suites_run,) = (work / "benchmarks" / "runs").glob("cpu-models-suites-*.json")
    names = sorted(b["name"] for b in json.loads(suites_run.read_text())["benchmarks"])
    assert names == ["test_suite_model_forward[timm/resnet18-1x28-fp32]", "test_suite_model_train_step[timm/resnet18-1x28-fp32]"]
    assert "| timm/resnet18 | 1×28×28 |" in suites_run.with_suffix(".md").read_text()
    assert not list((work / "benchmarks").glob("*.json"))
    (trace,) = (work / "benchmarks" / "runs").glob("cpu-step-trace-*.jsonl")
    (row,) = [json.loads(line) for line in trace.read_text().splitlines()]
    assert row["model"] == "cnn_tiny" and row["wall_ms_per_step"] > 0 and row["top_level_ops_per_step"] > 0

    # A later session on a fresh machine: no .gpu-state, no cache; owed starts from what was
    # committed (the queue position, the results, the teachers kept in reports/gpu-state.tgz);
    # with the full-scale part reopened, the committed result is current, so nothing trains again.
    landed_teachers = list((work / ".gpu-state" / "teachers").glob("*.pt"))
    assert landed_teachers, "land unpacks the carried teachers into .gpu-state/teachers"
    with tarfile.open(work / "reports" / "gpu-state.tgz") as t:
        assert {Path(n).name for n in t.getnames() if n.endswith(".pt")} == {p.name for p in landed_teachers}
    shutil.rmtree(work / ".gpu-state")
    shutil.rmtree(out)
    (work / "reports" / "gpu-owed-done.txt").write_text("\n".join(line for line in done if line != "full") + "\n")
    shutil.rmtree(tmp_path / "cache")  # a fresh machine: only what .gpu-state carries
    later = gpu_session(work, "owed", "400", env=env)
    assert "teachers and cut trainings from reports/gpu-state.tgz" in later.stdout
    assert {p.name for p in (tmp_path / "cache" / "teachers").glob("*.pt")} == {p.name for p in landed_teachers}
    assert "== loop: finished in an earlier call" in later.stdout
    assert "[suite] smoke: 1 cells, 1 already done, 0 to run on cpu" in later.stdout
    assert "== models-train: finished in an earlier call" in later.stdout
    assert "finished: determinism bench loop trace models-forward models-train models-suites full" in later.stdout


def test_a_part_cut_twice_is_set_aside_so_the_queue_moves_on(tmp_path):
    work = tmp_path / "repo"
    (work / "tools").mkdir(parents=True)
    for script in ("gpu_session.sh", "land_results.sh"):
        shutil.copy(REPO / "tools" / script, work / "tools")
    (work / ".gpu-state").mkdir()
    (work / ".gpu-state" / "done").write_text("determinism\nfp8\nloop\nfull\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OUT=str(tmp_path / "out"),
               KDBENCH_DEVICE="cpu", KDBENCH_DATA=str(tmp_path / "data"), KDBENCH_CACHE=str(tmp_path / "cache"), CAP_BENCH="1")
    first = gpu_session(work, "owed", "60", env=env)
    assert "== bench: cut at 1 s; the next call runs it again" in first.stdout and "finished: determinism fp8 loop full" in first.stdout
    second = gpu_session(work, "owed", "60", env=env)
    assert "== bench: cut at 1 s a second time; set aside" in second.stdout
    assert "finished: determinism fp8 loop full bench" in second.stdout
    # The queue's order as the script runs it (printed from its part calls, not a copy of them).
    assert "(the queue: determinism fp8 bench loop trace models-forward models-train graph recompute models-suites full)" in second.stdout


def test_landing_a_call_that_carried_an_older_state_keeps_the_queue_position(tmp_path):
    # Seen on the H200: a second call started before the first was landed carries the older
    # .gpu-state/done; landing it after the first must not reopen what the first finished.
    work = tmp_path / "repo"
    env = script_checkout(work, "gpu_session.sh", "land_results.sh")
    (work / "reports" / "results").mkdir(parents=True)
    (work / "reports" / "gpu-owed-done.txt").write_text("# landed from the first call\ndeterminism\nbench\ntrace\n")
    call = tmp_path / "call"
    (call / ".gpu-state" / "results").mkdir(parents=True)
    (call / ".gpu-state" / "done").write_text("determinism\nloop\n")
    call.joinpath("out").mkdir()
    with tarfile.open(call / "out" / "gpu-state.tgz", "w:gz") as t:
        t.add(call / ".gpu-state", arcname=".gpu-state")
    gpu_session(work, "land", str(call / "out"), env=env)
    done = (work / "reports" / "gpu-owed-done.txt").read_text().splitlines()
    assert [line for line in done if not line.startswith("#")] == ["determinism", "bench", "trace", "loop"]
    assert (work / ".gpu-state" / "done").read_text().split() == ["determinism", "bench", "trace", "loop"]


def profile_env(tmp_path: Path, work: Path, out: Path, **more: str) -> dict:
    """A checkout at ``work`` and the environment of a quick profile of the smoke suite on the CPU."""
    return dict(script_checkout(work, "gpu_session.sh", "land_results.sh"), OUT=str(out), KDBENCH_DEVICE="cpu",
                KDBENCH_DATA=str(tmp_path / "data"), KDBENCH_CACHE=str(tmp_path / "cache"), PROFILE_SUITES="suites/smoke.yaml", **more)


def test_profile_then_land_keeps_timings_that_cost_reads(tmp_path, capsys):
    """The quick profile (one epoch per model) rehearsed on the smoke suite: land keeps its
    results in reports/quick-profile/, where kdbench cost --timed-by times every training."""
    from kdbench.cli import main

    work = tmp_path / "repo"
    out = tmp_path / "out"
    env = profile_env(tmp_path, work, out)
    profiled = gpu_session(work, "profile", env=env)
    assert "smoke: " in profiled.stdout and "s (ok)" in profiled.stdout and "all: 1 of 1 suites whole in " in profiled.stdout
    assert sorted(p.name for p in out.iterdir()) == ["profile.txt", "quick.tgz"]
    with tarfile.open(out / "quick.tgz") as t:
        assert not any(n.endswith(".pt") for n in t.getnames()), "student weights stay behind"
    landed = gpu_session(work, "land", str(out), env=env)
    assert "quick profile: results in reports/quick-profile/" in landed.stdout
    assert len(list((work / "reports" / "quick-profile" / "smoke").glob("*.json"))) == 4
    assert main(["cost", str(work / "suites" / "smoke.yaml"), "--timed-by", str(work / "reports" / "quick-profile")]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].endswith("for 5 of 5 trainings")
    # A profile takes more than one call (canonical-cifar alone took 276 s on the H200): the next
    # call skips the cells landed in reports/quick-profile/ and still brings them back.
    again = tmp_path / "out-again"
    reprofiled = gpu_session(work, "profile", env=dict(env, OUT=str(again)))
    assert "smoke: " in reprofiled.stdout and "(ok; 4 cells profiled in an earlier call)" in reprofiled.stdout
    with tarfile.open(again / "quick.tgz") as t:
        assert sum(n.endswith(".json") and "/smoke/" in n for n in t.getnames()) == 4
    gpu_session(work, "land", str(again), env=env)
    # Both calls' wall times are kept (appended to the day's file: a day may see several calls).
    assert sum(len(p.read_text().splitlines()) for p in (work / "reports" / "quick-profile").glob("profile-*.txt")) == 4


def test_a_profile_past_its_deadline_still_packs_what_it_has(tmp_path):
    """A suite the deadline does not reach is named, and the call still leaves its two files, so
    a profile longer than a call loses only what did not run."""
    work = tmp_path / "repo"
    out = tmp_path / "out"
    env = profile_env(tmp_path, work, out, PROFILE_BUDGET_S="0")
    profiled = gpu_session(work, "profile", env=env)
    assert "smoke: not reached (the deadline)" in profiled.stdout and "all: 0 of 1 suites whole" in profiled.stdout
    assert sorted(p.name for p in out.iterdir()) == ["profile.txt", "quick.tgz"]
    landed = gpu_session(work, "land", str(out), env=env)
    assert "quick profile: results in reports/quick-profile/" in landed.stdout


def test_step_trace_names_an_unknown_model_and_a_precision_the_device_lacks():
    """tools/step_trace.py (the owed queue's trace part) fails with the reason, not a traceback."""
    for args, said in ((["--model", "nope"], "unknown model 'nope'; known: "), (["--model", "cnn_tiny", "--precision", "fp16"], "'fp16' cannot run on cpu")):
        proc = subprocess.run([sys.executable, "tools/step_trace.py", *args, "--device", "cpu", "--steps", "1"], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
