"""tools/cpu_cells.sh, the background queue of full-scale CPU cells, rehearsed on a real smoke
cell: started in the background, watched with status, brought home with land."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .conftest import script_checkout

CELL = "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s{}"


def cpu_cells(work: Path, *args: str, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "tools/cpu_cells.sh", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert (proc.returncode == 0) == ok, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def wait_for_the_queue(run: Path, seconds: float = 600) -> None:
    """Until the background run ends; one still alive after ``seconds`` is stopped (with the
    kdbench process under it) and the test fails."""
    pid = int((run / "pid").read_text())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(1)
    subprocess.run(["pkill", "-P", str(pid)], check=False)
    os.kill(pid, signal.SIGTERM)
    raise AssertionError(f"the queue did not finish in {seconds:.0f} s: {(run / 'log.txt').read_text()[-2000:]}")


def test_the_queue_runs_in_the_background_and_lands_its_results(tmp_path):
    work = tmp_path / "repo"
    run = tmp_path / "run"
    env = dict(script_checkout(work, "cpu_cells.sh", "land_results.sh"), RUN=str(run),
               KDBENCH_CACHE=str(tmp_path / "unused-cache"), CPU_QUEUE=f"smoke {CELL.format('*')} --set seeds=[0,1]")  # a queue line with more run arguments

    started = cpu_cells(work, "start", env=env)
    assert "started (pid" in started.stdout
    wait_for_the_queue(run)
    log = (run / "log.txt").read_text()
    assert f"[2/2] {CELL.format(1)}" in log and "queue done" in log, log[-3000:]
    # It ran a copy of the code taken at start (its shipped data subset says where from), so an
    # edit of the checkout under a running queue reaches neither it nor its results.
    assert f"from {run / 'code' / 'kdbench' / 'data' / 'smoke'}" in log and (run / "code" / "suites" / "smoke.yaml").exists(), log[:2000]
    # Teachers and checkpoints go to the run folder, not the default cache: a restarted queue resumes from them.
    assert any((run / "cache" / "teachers").iterdir()) and not (tmp_path / "unused-cache").exists()

    status = cpu_cells(work, "status", env=env)
    assert "not running" in status.stdout and f"{CELL.format(1)}  ok  test top-1" in status.stdout

    landed = cpu_cells(work, "land", env=env)
    folder = work / "reports" / "results" / "cpu" / "smoke"
    for seed in (0, 1):  # seed 1 too, though the suite file names seed 0 only
        assert json.loads((folder / f"{CELL.format(seed)}.json").read_text())["status"] == "ok"
    assert sorted({p.suffix for p in folder.iterdir()}) == [".csv", ".json"]  # never the .pt weights
    assert "2 ok" in landed.stdout

    # Started again on a fresh machine (an empty run folder), the cells landed in
    # reports/results/cpu/ are not trained twice.
    shutil.rmtree(run)
    cpu_cells(work, "start", env=env)
    wait_for_the_queue(run)
    assert "2 cells, 2 already done, 0 to run" in (run / "log.txt").read_text()


def test_stop_ends_the_queue_and_the_run_under_it(tmp_path):
    """stop ends the background queue and the kdbench run it started (in order: its SIGTERM
    message is in the log), and no later queue line starts as that run exits."""
    work = tmp_path / "repo"
    run = tmp_path / "run"
    queue = f"smoke {CELL.format('*')} --set teacher.epochs=50\nsmoke *cnn_small*"
    env = dict(script_checkout(work, "cpu_cells.sh", "land_results.sh"), RUN=str(run), CPU_QUEUE=queue)
    cpu_cells(work, "start", env=env)
    deadline = time.monotonic() + 300
    while " epoch 1/" not in ((run / "log.txt").read_text() if (run / "log.txt").exists() else ""):
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.5)
    pid = int((run / "pid").read_text())
    kdbench = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    assert kdbench, "the queue runs kdbench under it"
    stopped = cpu_cells(work, "stop", env=env)
    assert "stopped" in stopped.stdout
    for p in (pid, *map(int, kdbench)):
        try:
            os.kill(p, 0)
            raise AssertionError(f"process {p} still runs after stop")
        except ProcessLookupError:
            pass
    time.sleep(2)
    log = (run / "log.txt").read_text()
    assert "*cnn_small*" not in log and "kdbench: stopped by SIGTERM" in log, log[-2000:]
    assert "not running" in cpu_cells(work, "stop", env=env).stdout


def test_a_bf16_line_is_skipped_where_this_cpu_has_no_fast_bf16_kernels(tmp_path):
    """On a CPU without oneDNN's bf16 kernels (the AVX2 AMD EPYC: 20-50x slower than fp32) the
    queue skips a line with bf16 cells, which would hold it for hours, and goes on; elsewhere
    (AVX-512) it runs it. This machine decides which of the two is checked."""
    from kdbench.cpu_bf16 import fast_bf16

    work = tmp_path / "repo"
    run = tmp_path / "run"
    queue = "smoke *cnn_tiny__*__none__s0 --tiny --set matrix.precisions=[bf16]\nsmoke *cnn_small__*__none__s0 --tiny"
    env = dict(script_checkout(work, "cpu_cells.sh", "land_results.sh"), RUN=str(run), CPU_QUEUE=queue)
    cpu_cells(work, "start", env=env)
    wait_for_the_queue(run)
    log = (run / "log.txt").read_text()
    skipped = "=== skipped: bf16 cells, and this CPU has no fast bf16 kernels" in log
    assert skipped == (fast_bf16() is False), log[-3000:]
    assert ("cnn_tiny__fp32" not in log) and ("__bf16__none__s0" in log) != skipped, log[-3000:]
    assert "fmnist-smoke__cnn_medium__cnn_small__fp32__none__s0" in log and "queue done" in log, "the next line runs"
