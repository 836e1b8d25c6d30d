"""Every cell of every suite, end to end on CPU at a tiny scale (``--tiny``: 8 images a class,
one epoch, fp32), so that a broken cell is caught without a GPU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kdbench.cli import main
from kdbench.suite import load_suite

from .conftest import REPO
from .layouts import STANDIN_DATASETS, standin_data_root

SUITES = sorted((REPO / "suites").glob("*.yaml"))


@pytest.fixture(scope="session")
def standin_root(data_root, tmp_path_factory) -> Path:
    return standin_data_root(data_root, tmp_path_factory.mktemp("standin-data"))


@pytest.mark.parametrize("suite_path", SUITES, ids=[p.stem for p in SUITES])
def test_every_cell_runs_tiny(suite_path, data_root, tmp_path, capsys, request):
    cache = Path(os.environ.get("KDBENCH_CACHE", tmp_path / "cache"))  # shared: decode each data set once
    suite = load_suite(suite_path, ("matrix.precisions=[fp32]",))

    def run(root: Path) -> tuple[int, pytest.CaptureResult]:
        code = main(["run", str(suite_path), "--tiny", "--set", "matrix.precisions=[fp32]", "--device", "cpu",
                     "--data-root", str(root), "--results", str(tmp_path / "r"), "--cache", str(cache)])
        return code, capsys.readouterr()

    code, out = run(data_root)
    if code == 2 and "not found. Looked in" in out.err and set(suite.spec.matrix.datasets) <= STANDIN_DATASETS:
        # The suite's own data set is not on this machine (EuroSAT, Intel, PathMNIST): its cells
        # run on CIFAR-10 photographs laid out like that set (tests/layouts.py), which checks
        # that every cell works (loader, image size, class count, recipe), not what it scores.
        code, out = run(request.getfixturevalue("standin_root"))
    assert code == 0, out.err[-3000:]
    files = sorted((tmp_path / "r" / suite.name).glob("*.json"))
    assert len(files) == len(suite.cells())
    for f in files:
        res = json.loads(f.read_text())
        assert res["status"] == "ok", res.get("failure")
        assert res["suite_spec"]["split"]["max_per_class"] == 8
        # Every training a cell needs records its epochs (kdbench cost --timed-by reads them).
        for stage in res["teacher"]["chain"]:
            assert [h["epoch"] for h in stage["history"]] == [1], stage["model"]
