"""reports/README.md (`kdbench index`): every suite in a row, with how many of its cells have a
committed result on each device class, what a re-run would redo, the golden files, and
whether the system's published figures are on the suite's own data."""

from __future__ import annotations

import shutil

from kdbench.cli import main

from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result, md_cells


def row(page: str, suite: str) -> list[str]:
    line = next(x for x in page.splitlines() if x.startswith(f"| [`{suite}`]"))
    return md_cells(line)


def test_index_counts_each_suites_cells_per_device_class(tmp_path, capsys):
    suites, reports = tmp_path / "suites", tmp_path / "reports"
    suites.mkdir()
    for name in ("smoke", "canonical-cifar", "s1-eurosat"):
        shutil.copy(REPO / "suites" / f"{name}.yaml", suites)
    cpu = reports / "results" / "cpu" / "smoke"
    pinned = sorted(SMOKE_RESULTS.glob("*__s0.json"))
    for i, p in enumerate(pinned):
        committed_smoke_result(p.name, cpu, **({"code": "0" * 64} if i == 0 else {}))  # one made by older code
    committed_smoke_result(sorted(SMOKE_RESULTS.glob("*__s1.json"))[0].name, cpu)  # a golden spread seed
    (reports / "smoke-cpu.md").write_text("the page")
    (reports / "results" / "cuda-sm90").mkdir()  # a device class with nothing of these suites

    assert main(["index", "--suites", str(suites), "--results", str(reports / "results"), "--out", str(reports / "README.md")]) == 0
    page = (reports / "README.md").read_text()
    assert page in capsys.readouterr().out
    # A column per device class holding results of these suites: cuda-sm90 holds none.
    headers = md_cells(next(x for x in page.splitlines() if x.startswith("| suite")))
    assert headers == ["suite", "data", "teacher → students", "cells", "finished on `cpu`", "golden values", "published figures"]
    smoke = row(page, "smoke")
    assert smoke[0] == "[`smoke`](../suites/smoke.yaml)" and smoke[3] == str(len(pinned))
    assert smoke[4] == f"[{len(pinned)}/{len(pinned)}](smoke-cpu.md) (1 stale, +1 at other seeds)"
    assert smoke[5] == "cpu"  # golden/smoke/cpu.json
    assert smoke[6] == "none published"
    assert row(page, "canonical-cifar")[6] == "16 on cifar100: not comparable (the suite runs other data)"  # CRD/DKD table 12, DKD 4
    assert row(page, "s1-eurosat")[6] == "2 on eurosat: the suite's data"
    assert row(page, "s1-eurosat")[4] == "—"


def test_index_needs_a_results_folder(tmp_path, capsys):
    assert main(["index", "--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "README.md")]) == 2
    assert "nowhere: no such results folder" in capsys.readouterr().err
    assert not (tmp_path / "README.md").exists()


def test_the_committed_index_is_current():
    """reports/README.md is what `kdbench index` makes of the committed suites, results and
    golden files: landing results (or changing a suite or the training code, which can make
    results stale) without `nox -s tables` fails here rather than leaving the page behind."""
    from kdbench.golden import GOLDEN_DIR
    from kdbench.index_page import build_index

    committed = REPO / "reports" / "README.md"
    page = build_index(REPO / "suites", REPO / "reports" / "results", committed, GOLDEN_DIR)
    assert page == committed.read_text(), "reports/README.md is behind the committed results: run `nox -s tables` (or `kdbench index`)"
