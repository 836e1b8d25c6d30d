"""Bad input and faults: broken suite files, fuzzed suites, killed runs, corrupt caches."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdbench.cli import main
from kdbench.errors import SuiteError
from kdbench.golden import build_golden, diff_golden
from kdbench.runner import Runner, RunOptions
from kdbench.suite import load_suite, parse_suite

from .conftest import REPO

BROKEN = sorted((Path(__file__).parent / "broken_suites").glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    where, words = first.removeprefix("# expect:").split("|", 1)
    return where.strip(), words.strip()


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_suite_gives_one_clear_error(path, tmp_path, capsys):
    where, words = expectation(path)
    code = main(["run", str(path), "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kdbench: error: ")
    assert where in err and words in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists(), "no training may start"


SMOKE_DOC = yaml.safe_load((REPO / "suites" / "smoke.yaml").read_text())
values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


ALL_PATHS = [p for p in paths(SMOKE_DOC) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["replace", "delete", "add"]), values, st.text(max_size=8))
def test_mutated_suites_load_or_raise_our_error(path, op, value, new_key):
    doc = copy.deepcopy(SMOKE_DOC)
    node = doc
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if op == "replace":
        node[last] = value
    elif op == "delete":
        del node[last]
    elif isinstance(node, dict):
        node[new_key] = value
    text = yaml.safe_dump(doc)
    try:
        suite = parse_suite(text, "fuzz.yaml")
    except SuiteError:
        return
    assert suite.cells()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_our_error(text):
    try:
        parse_suite(text, "fuzz.yaml")
    except SuiteError:
        pass


QUICK = ["--set", "teacher.epochs=2", "--set", "student.epochs=2", "--device", "cpu"]


def run_cli(results: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, KDBENCH_CACHE=str(cache))
    return subprocess.Popen([sys.executable, "-m", "kdbench", "run", "suites/smoke.yaml", "--results", str(results), "--cells", "*cnn_tiny*", *QUICK, *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def summary(folder: Path) -> dict:
    out = {}
    for f in sorted(folder.glob("*.json")):
        r = json.loads(f.read_text())
        out[f.name] = (r["status"], r["student"]["weights_sha256"], r["metrics"])
    return out


@pytest.mark.smoke
def test_sigkill_then_resume_gives_the_same_results(tmp_path):
    """Kill runs with SIGKILL at several points; each re-run resumes; the end state equals an
    uninterrupted run, and no result file is ever torn."""
    ref = run_cli(tmp_path / "ref", tmp_path / "cache-ref")
    assert ref.wait(timeout=900) == 0, ref.stdout.read()[-2000:]
    expected = summary(tmp_path / "ref" / "smoke")
    assert len(expected) == 2

    results, cache = tmp_path / "killed", tmp_path / "cache-killed"
    kills = 0
    for delay in (2.0, 5.0, 8.0, 11.0):  # seconds into a run: start-up, teacher training, between cells, ...
        proc = run_cli(results, cache)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        for f in (results / "smoke").glob("*.json"):  # every file present is whole
            json.loads(f.read_text())
    final = run_cli(results, cache)
    assert final.wait(timeout=900) == 0, final.stdout.read()[-2000:]
    assert kills >= 1
    assert summary(results / "smoke") == expected
    assert not list((results / "smoke").glob(".*.tmp*"))


@pytest.mark.smoke
def test_sigterm_stops_with_a_message_and_the_run_resumes(tmp_path):
    """SIGTERM (what Slurm sends at a job's time limit, and timeout and kill) stops a run in
    order: exit 143 with a message saying how to resume, and the same command then finishes."""
    proc = run_cli(tmp_path / "r", tmp_path / "cache")
    seen = []
    for line in proc.stdout:  # wait until training is under way
        seen.append(line)
        if " epoch 1/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 143, "".join(seen) + rest
    assert "kdbench: stopped by SIGTERM. Finished cells are saved" in rest and "Traceback" not in rest
    again = run_cli(tmp_path / "r", tmp_path / "cache")
    assert again.wait(timeout=900) == 0, again.stdout.read()[-2000:]
    assert len(list((tmp_path / "r" / "smoke").glob("*.json"))) == 2


@pytest.mark.smoke
def test_corrupt_teacher_cache_is_detected_and_rebuilt(tmp_path):
    suite = load_suite(REPO / "suites" / "smoke.yaml", ("teacher.epochs=1", "student.epochs=1"))
    cell = next(c for c in suite.cells() if c.method == "kd" and c.student == "cnn_tiny")
    logs: list[str] = []
    opts = RunOptions(results_dir=tmp_path / "r", cache_dir=tmp_path / "c", device=torch.device("cpu"), log=logs.append)
    first = Runner(suite, opts).run([cell])[0]
    [cache_file] = list((tmp_path / "c" / "teachers").glob("*.pt"))
    data = bytearray(cache_file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # damage the middle of the file
    cache_file.write_bytes(bytes(data))
    (tmp_path / "r" / "smoke" / f"{cell.id}.json").unlink()
    logs.clear()
    second = Runner(suite, opts).run([cell])[0]
    assert any("is corrupt" in line and "rebuilding" in line for line in logs), logs
    assert second["teacher"]["from_cache"] is False
    assert second["teacher"]["weights_sha256"] == first["teacher"]["weights_sha256"]
    assert second["student"]["weights_sha256"] == first["student"]["weights_sha256"]
    # And an intact cache is used as is.
    (tmp_path / "r" / "smoke" / f"{cell.id}.json").unlink()
    third = Runner(suite, opts).run([cell])[0]
    assert third["teacher"]["from_cache"] is True
    assert third["student"]["weights_sha256"] == first["student"]["weights_sha256"]


def fake_result(cid: str, seed: int, top1: float) -> dict:
    return {"cell_id": cid, "status": "ok", "cell": {"seed": seed}, "data": {"n_test": 500},
            "fingerprints": {"dataset": "d" * 64, "split": "s" * 64}, "metrics": {"test_top1_last": top1}}


def test_golden_tolerance_comes_from_seed_spread_and_update_prints_a_diff():
    runs = [fake_result(f"a__s{s}", s, v) for s, v in zip(range(5), (0.80, 0.82, 0.78, 0.81, 0.79), strict=True)]
    g = build_golden("x", "cpu", {"a__s0": runs[0]}, {"a": runs}, {"command": "test"})
    m = g["cells"]["a__s0"]["metrics"]["test_top1_last"]
    assert m["value"] == 0.80
    assert m["tolerance"] == pytest.approx(3 * 0.0158114, rel=1e-4)  # 3 × sample std
    assert "seeds [0, 1, 2, 3, 4]" in m["reason"]
    assert diff_golden(None, g) == ["+ a__s0: new"]
    g2 = build_golden("x", "cpu", {"a__s0": fake_result("a__s0", 0, 0.9)}, {"a": runs}, {"command": "test"})
    assert diff_golden(g, g2)[0].startswith("~ a__s0: test_top1_last: 0.8000 ± ")


def test_golden_cells_name_the_machine_of_each_seed():
    """One device class, two CPU kinds: the spread mixes them, and the file says so."""
    xeon = {"cpu_model": "Intel(R) Xeon(R) Processor", "torch_threads": 2, "torch": "2.14.1"}
    epyc = {**xeon, "cpu_model": "AMD EPYC"}
    runs = [dict(fake_result(f"a__s{s}", s, v), environment=env) for s, v, env in ((0, 0.80, xeon), (1, 0.82, epyc), (2, 0.81, epyc))]
    g = build_golden("x", "cpu", {"a__s0": runs[0]}, {"a": runs}, {"command": "test"})
    assert g["cells"]["a__s0"]["machine_by_seed"] == {"0": "Intel(R) Xeon(R) Processor (2 threads), torch 2.14.1",
                                                      "1": "AMD EPYC (2 threads), torch 2.14.1", "2": "AMD EPYC (2 threads), torch 2.14.1"}
    gpu = dict(fake_result("a__s0", 0, 0.8), environment={**xeon, "gpu": "NVIDIA H200"})
    assert build_golden("x", "cuda-sm90", {"a__s0": gpu}, {"a": [gpu]}, {"command": "t"})["cells"]["a__s0"]["machine_by_seed"] == {"0": "NVIDIA H200, torch 2.14.1"}


def test_golden_comparison_with_other_data_says_so():
    from kdbench.errors import GoldenMismatch
    from kdbench.golden import compare

    golden_cell = {"fingerprints": {"dataset": "d" * 64, "split": "s" * 64}, "metrics": {"test_top1_last": {"value": 0.8, "tolerance": 0.01, "reason": "r"}}}
    res = fake_result("a__s0", 0, 0.8)
    assert compare(res, golden_cell) == []
    assert compare(fake_result("a__s0", 0, 0.7), golden_cell)[0].startswith("a__s0: test_top1_last = 0.7000, outside golden 0.8000 ± 0.0100")
    res["fingerprints"]["split"] = "t" * 64
    with pytest.raises(GoldenMismatch, match="split fingerprint differs .* the split changed"):
        compare(res, golden_cell)


def test_out_of_memory_fails_the_cell_with_its_batch_size(tmp_path, monkeypatch):
    """CUDA OOM cannot be produced on a CPU machine, so fit() raises it here as torch would:
    the cell is recorded as failed naming the cell and batch sizes, and the suite goes on."""
    import kdbench.runner as runner_mod

    suite = load_suite(REPO / "suites" / "smoke.yaml", ("teacher.epochs=1", "student.epochs=1"))
    cells = [c for c in suite.cells() if c.student == "cnn_tiny"]
    real_fit = runner_mod.fit

    def fit_that_runs_out(model, *args, stage, **kwargs):
        if stage.startswith("student") and "[kd]" in stage:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_fit(model, *args, stage=stage, **kwargs)

    monkeypatch.setattr(runner_mod, "fit", fit_that_runs_out)
    opts = RunOptions(results_dir=tmp_path / "r", cache_dir=tmp_path / "c", device=torch.device("cpu"), log=lambda s: None)
    results = {r["cell"]["method"]: r for r in Runner(suite, opts).run(cells)}
    assert results["none"]["status"] == "ok"
    failed = results["kd"]
    assert failed["status"] == "failed"
    assert cells[1].id in failed["failure"]["reason"] and "batch sizes: teacher 64, student 64" in failed["failure"]["reason"]


def test_a_cell_that_learned_nothing_is_flagged_in_the_log(tmp_path, monkeypatch):
    """The run's log names a finished cell whose model learned nothing (kdbench.results.at_chance,
    tested in test_report on a collapsed result; stood in for here, since no training of seconds
    collapses on cue) and points at its history."""
    import kdbench.runner as runner_mod

    suite = load_suite(REPO / "suites" / "smoke.yaml", ("teacher.epochs=1", "student.epochs=1"))
    cell = next(c for c in suite.cells() if c.method == "none" and c.student == "cnn_tiny")
    monkeypatch.setattr(runner_mod, "at_chance", lambda r: ["student 10.00 % against 10.00 % for always the most common test class"])
    logs: list[str] = []
    opts = RunOptions(results_dir=tmp_path / "r", cache_dir=tmp_path / "c", device=torch.device("cpu"), log=logs.append)
    assert Runner(suite, opts).run([cell])[0]["status"] == "ok"
    history = tmp_path / "r" / "smoke" / f"{cell.id}.history.csv"
    assert f"  WARNING: learned nothing: student 10.00 % against 10.00 % for always the most common test class; the per-epoch history ({history}) shows from which epoch" in logs
    assert history.exists()


def test_a_full_disk_is_a_clear_error_that_loses_nothing(tmp_path, monkeypatch, capsys):
    """The disk fills after the first cell is saved: the run stops with a message, not a
    traceback; the saved cell stays, no part-written file is left, and a re-run resumes."""
    import errno
    import stat

    results = tmp_path / "r"
    args = ["run", str(REPO / "suites" / "smoke.yaml"), "--cells", "*cnn_tiny*", *QUICK, "--results", str(results),
            "--cache", str(tmp_path / "c")]
    real_fsync = os.fsync

    def fsync_on_a_full_disk(fd: int) -> None:
        # Files (not folders) fail once the first result is there, as a disk that just filled would.
        if stat.S_ISREG(os.fstat(fd).st_mode) and list(results.glob("smoke/*.json")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "kdbench: error: No space left on device" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert [p.name for p in results.glob("smoke/*.json")] == ["fmnist-smoke__cnn_medium__cnn_tiny__fp32__none__s0.json"]
    assert not list(results.glob("smoke/.*.tmp*")), "a part-written file was left behind"

    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed
    assert main(args) == 0
    assert "1 already done" in capsys.readouterr().out
    assert len(list(results.glob("smoke/*.json"))) == 2


def test_a_results_or_cache_path_that_is_not_a_folder_is_refused_before_any_work(tmp_path, capsys):
    """Checked before data is decoded or anything trains, and nothing is created."""
    not_a_folder = tmp_path / "results.txt"
    not_a_folder.write_text("")
    run = ["run", str(REPO / "suites" / "smoke.yaml"), *QUICK]
    assert main([*run, "--results", str(not_a_folder / "r"), "--cache", str(tmp_path / "c")]) == 2
    out = capsys.readouterr()
    assert f"kdbench: error: --results {not_a_folder / 'r' / 'smoke'}: {not_a_folder} is not a folder; nothing was run" in out.err
    assert "[data]" not in out.out + out.err and not (tmp_path / "c").exists()
    assert main([*run, "--results", str(tmp_path / "r"), "--cache", str(not_a_folder)]) == 2
    assert f"--cache {not_a_folder}: {not_a_folder} is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
