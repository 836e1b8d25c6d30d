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


def test_committed_results_agree_with_the_golden_values_of_their_device_class():
    """The committed pages and the golden files tell one story: every committed result of a
    golden cell lies inside that cell's band on its own device class. A golden file re-made
    after the results were landed (or results landed from other code) fails here, not in a
    reader's comparison of two pages."""
    from kdbench.golden import compare, load_golden

    compared = set()
    for golden_file in sorted((REPO / "golden").glob("*/*.json")):
        suite, device_class = golden_file.parent.name, golden_file.stem
        golden = load_golden(suite, device_class)
        for cid, cell in golden["cells"].items():
            committed = REPO / "reports" / "results" / device_class / suite / f"{cid}.json"
            if committed.is_file():
                assert compare(json.loads(committed.read_text()), cell) == [], committed
                compared.add((suite, device_class))
    # The smoke suite's results and golden values are both committed: this test compares something.
    assert ("smoke", "cpu") in compared


def test_committed_results_of_the_current_training_code_are_current():
    """A committed result made by today's training code (its fingerprint, or one verified to
    train the same: kdbench.code_lineage) is current: a change in how settings are hashed (a
    recipe field added, a default moved) that would make a run redo it fails here, not as a
    page of stale results after the next landing."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite

    checked = 0
    for suite_dir in sorted((REPO / "reports" / "results").glob("*/*/")):
        results = [json.loads(f.read_text()) for f in sorted(suite_dir.glob("*.json"))]
        seeds = sorted({r["cell"]["seed"] for r in results})
        suite = load_suite(REPO / "suites" / f"{suite_dir.name}.yaml", (f"seeds={seeds}",))
        ids = Runner(suite, RunOptions(results_dir=suite_dir.parent)).ids
        cells = {c.id: c for c in suite.cells()}
        for r in results:
            cell = cells[r["cell_id"]]
            if r["config"]["code"] in (ids.code_of(cell), ids.raw_code_of(cell)):
                assert ids.config_changes(cell, r) == [], (suite_dir, r["cell_id"])
                checked += 1
    assert checked >= 40, f"only {checked} committed results were made by the current training code"
