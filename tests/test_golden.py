"""Every cell of the golden-pinned suites, run (or resumed) and compared with its golden
values. The smoke suite trains for real on CPU in a temporary folder; the GPU suite reads
and resumes results/ so that `kdbench run` and this test share work on the GPU machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from kdbench.determinism import device_class
from kdbench.golden import compare, load_golden
from kdbench.runner import Runner, RunOptions
from kdbench.suite import load_suite

from .conftest import REPO, shared_data_root

GPU_SUITE = REPO / "suites" / "gpu-cifar10.yaml"


def suite_params(path: Path, mark) -> list:
    return [pytest.param(path, c.id, marks=mark, id=c.id) for c in load_suite(path).cells()]


_cache: dict[Path, dict[str, dict]] = {}


def run_suite(path: Path, device: torch.device, results: Path, cache: Path) -> dict[str, dict]:
    if path not in _cache:
        suite = load_suite(path)
        runner = Runner(suite, RunOptions(results_dir=results, cache_dir=cache, data_root=shared_data_root(), device=device))
        _cache[path] = {r["cell_id"]: r for r in runner.run(suite.cells())}
    return _cache[path]


@pytest.mark.parametrize("suite_path, cell_id", suite_params(REPO / "suites" / "smoke.yaml", pytest.mark.smoke))
def test_smoke_cell_matches_golden(suite_path, cell_id, tmp_path_factory):
    golden = load_golden("smoke", "cpu")
    assert golden is not None, "golden/smoke/cpu.json is missing: make it with `kdbench golden update suites/smoke.yaml`"
    base = tmp_path_factory.getbasetemp() / "smoke"
    results = run_suite(suite_path, torch.device("cpu"), base / "results", base / "cache")
    assert cell_id in golden["cells"], f"{cell_id} has no golden values yet"
    assert compare(results[cell_id], golden["cells"][cell_id]) == []


@pytest.mark.parametrize("suite_path, cell_id", suite_params(GPU_SUITE, pytest.mark.gpu) if GPU_SUITE.exists() else [])
def test_gpu_cell_matches_golden(suite_path, cell_id, cuda):
    dc = device_class(cuda)
    golden = load_golden(load_suite(suite_path).name, dc)
    if golden is None:
        pytest.skip(f"no golden values for device class {dc}; make them with `kdbench golden update {suite_path.name} --device cuda`")
    results_dir = Path(os.environ.get("KDBENCH_RESULTS", REPO / "results"))
    results = run_suite(suite_path, cuda, results_dir, Path(os.environ.get("KDBENCH_CACHE", REPO / ".kdbench-cache")))
    assert compare(results[cell_id], golden["cells"][cell_id]) == []


def test_golden_check_says_what_it_did_not_check(tmp_path, capsys):
    """kdbench golden check passes only on results it compared: a folder with none of the golden
    cells (a mistyped --results, another device class's results) is an error, not "0 cells
    within golden tolerances"; golden cells without a result are named, stale results are said to
    be stale; a moved metric fails."""
    import json

    from kdbench.cli import main

    from .conftest import committed_smoke_result

    golden = load_golden("smoke", "cpu")
    for cid in golden["cells"]:
        committed_smoke_result(f"{cid}.json", tmp_path / "cpu" / "smoke")
    check = ["golden", "check", str(REPO / "suites" / "smoke.yaml")]
    assert main([*check, "--results", str(tmp_path / "cpu")]) == 0
    out = capsys.readouterr().out
    assert f"{len(golden['cells'])} cells within golden tolerances" in out and "other settings or training code" not in out
    # A result of older training code still passes its band, and the check says it is stale.
    stale_one = sorted(golden["cells"])[-1]
    committed_smoke_result(f"{stale_one}.json", tmp_path / "cpu" / "smoke", code="0" * 64)
    assert main([*check, "--results", str(tmp_path / "cpu")]) == 0
    assert "of these, 1 were made with other settings or training code than now" in capsys.readouterr().out

    first = sorted(golden["cells"])[0]
    (tmp_path / "cpu" / "smoke" / f"{first}.json").unlink()
    assert main([*check, "--results", str(tmp_path / "cpu")]) == 0
    assert f"not checked: 1 of the {len(golden['cells'])} golden cells have no result on cpu" in capsys.readouterr().out

    assert main([*check, "--results", str(tmp_path / "typo")]) == 2
    assert f"{tmp_path / 'typo' / 'smoke'} does not exist; nothing to check" in capsys.readouterr().err
    for p in (tmp_path / "cpu" / "smoke").glob("*.json"):
        r = json.loads(p.read_text())
        r["environment"]["device_class"] = "cuda-sm90"
        p.write_text(json.dumps(r))
    assert main([*check, "--results", str(tmp_path / "cpu")]) == 2
    assert "holds results of cuda-sm90 only" in capsys.readouterr().err

    second = sorted(golden["cells"])[1]
    r = committed_smoke_result(f"{second}.json", tmp_path / "moved" / "smoke")
    band = golden["cells"][second]["metrics"]["test_top1_last"]
    r["metrics"]["test_top1_last"] = band["value"] + band["tolerance"] + 0.01
    (tmp_path / "moved" / "smoke" / f"{second}.json").write_text(json.dumps(r))
    assert main([*check, "--results", str(tmp_path / "moved")]) == 1
    assert f"{second}: test_top1_last = " in capsys.readouterr().out


def test_golden_check_names_a_machine_no_golden_seed_ran_on(tmp_path, capsys):
    """The canonical CPU band was measured over seeds run on an AMD EPYC and an Intel Xeon: its
    committed seed-0 results (an AMD EPYC's) check silently; the same results said to come from
    another processor, or another torch, are named as from a machine outside the golden runs."""
    import json
    import shutil

    from kdbench.cli import main

    golden = load_golden("canonical-cifar", "cpu")
    folder = tmp_path / "cpu" / "canonical-cifar"
    folder.mkdir(parents=True)
    for cid in golden["cells"]:
        shutil.copy(REPO / "reports/results/cpu/canonical-cifar" / f"{cid}.json", folder)
    check = ["golden", "check", str(REPO / "suites" / "canonical-cifar.yaml"), "--results", str(tmp_path / "cpu")]
    assert main(check) == 0
    assert "none of the golden seeds ran on" not in capsys.readouterr().out
    first, second = sorted(golden["cells"])[:2]
    for cid, change in ((first, {"cpu_model": "Ampere Altra"}), (second, {"torch": "2.99.0"})):
        r = json.loads((folder / f"{cid}.json").read_text())
        r["environment"].update(change)
        (folder / f"{cid}.json").write_text(json.dumps(r))
    assert main(check) == 0
    out = capsys.readouterr().out
    assert f"2 of the {len(golden['cells'])} checked results ran on a machine none of the golden seeds ran on" in out, out
    assert "(AMD EPYC (2 threads), torch 2.99.0; Ampere Altra (2 threads), torch 2.14.1+cu130; golden runs: AMD EPYC" in out, out


def test_a_partial_update_keeps_each_cells_provenance():
    """golden update --cells re-makes some cells: the others keep their values and the command,
    environment and date that made them, not the latest update's."""
    from kdbench.golden import merge_partial

    def made_by(command):
        return {"command": command, "date": "2026-11-27T00:00:00+00:00", "environment": {"cpu_model": command}}

    def cell(value):
        return {"fingerprints": {"dataset": "d", "split": "s"}, "metrics": {"test_top1_bestval": {"value": value, "tolerance": 0.01, "reason": "r"}}}

    first = {"suite": "s", "device_class": "cpu", "produced_by": made_by("first"), "cells": {"a__none__s0": cell(0.9), "a__kd__s0": cell(0.8)}}
    second = {"suite": "s", "device_class": "cpu", "produced_by": made_by("second"), "cells": {"a__kd__s0": cell(0.85)}}
    merged = merge_partial(first, second)
    assert merged["produced_by"]["command"] == "second"
    assert merged["cells"]["a__none__s0"]["produced_by"]["command"] == "first"
    assert merged["cells"]["a__none__s0"]["metrics"] == first["cells"]["a__none__s0"]["metrics"]
    assert merged["cells"]["a__kd__s0"]["produced_by"]["command"] == "second"
    assert merged["cells"]["a__kd__s0"]["metrics"]["test_top1_bestval"]["value"] == 0.85
    # A third partial update keeps the first cell's own provenance, not the second file's top level.
    third = merge_partial(merged, {**second, "produced_by": made_by("third"), "cells": {"b__none__s0": cell(0.7)}})
    assert [third["cells"][c]["produced_by"]["command"] for c in ("a__kd__s0", "a__none__s0", "b__none__s0")] == ["second", "first", "third"]
