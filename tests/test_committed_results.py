"""reports/results/ holds one results folder per device class: a result sits under the class it
ran on and the suite it belongs to, so a CPU and a GPU result of one cell never overwrite each
other and `nox -s tables` writes each class's page from its own folder."""

from __future__ import annotations

import json

from .conftest import REPO


def test_each_committed_result_sits_in_its_device_class_and_suite_folder():
    files = sorted((REPO / "reports" / "results").glob("*/*/*.json"))
    assert files, "no committed results: tests read the smoke results in reports/results/cpu/smoke"
    for f in files:
        r = json.loads(f.read_text())
        suite, device_class = f.parent.name, f.parent.parent.name
        assert r["environment"]["device_class"] == device_class, f
        assert (REPO / "suites" / f"{suite}.yaml").is_file(), f"{f}: no suite file of that name"
        assert r["cell_id"] == f.stem, f
    # Nothing left at the old one-level layout (a suite folder straight under reports/results).
    assert not list((REPO / "reports" / "results").glob("*/*.json"))
