"""Training-code changes verified to train bitwise as before keep results and caches current
(kdbench.code_lineage, tools/verify_code_change.py); unverified ones do not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kdbench import code_lineage
from kdbench.errors import KDBenchError
from kdbench.fingerprint import code_fingerprint

from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result

OLD = "0" * 64


def link(code: str, same_as: str) -> dict:
    return {"code": code, "same_as": same_as, "kind": "code"}


EVIDENCE = {"verified": {"cells": [{"suite": "smoke", "cell": "x", "same": True}]}, "old_revision": "r"}


def test_canonical_follows_links_to_the_oldest_fingerprint_and_refuses_a_cycle(tmp_path):
    links = {"c": link("c", "b"), "b": link("b", "a")}
    assert code_lineage.canonical("c", links) == "a" and code_lineage.canonical("b", links) == "a"
    assert code_lineage.canonical("x", links) == "x", "a fingerprint without a link is its own"
    with pytest.raises(KDBenchError, match="cycle"):
        code_lineage.canonical("c", {**links, "a": link("a", "c")})
    bad = tmp_path / "code_lineage.json"
    bad.write_text("{not json")
    with pytest.raises(KDBenchError, match="unreadable code lineage"):
        code_lineage.load_links(bad)
    assert code_lineage.add_links([link("d", "c"), link("e", "e")], EVIDENCE, tmp_path / "new.json") == 1
    assert code_lineage.add_links([link("d", "c")], EVIDENCE, tmp_path / "new.json") == 0, "linked already"
    loaded = code_lineage.load_links(tmp_path / "new.json")
    assert set(loaded) == {"d"}, "a link to itself says nothing"
    assert loaded["d"] == {**link("d", "c"), **EVIDENCE}, "each link carries its verification's evidence"
    old_schema = tmp_path / "old.json"
    old_schema.write_text(json.dumps({"schema": 1, "links": [link("d", "c")]}))
    with pytest.raises(KDBenchError, match="schema 1"):
        code_lineage.load_links(old_schema)
    with pytest.raises(KDBenchError, match="schema 1"):
        code_lineage.add_links([link("e", "d")], EVIDENCE, old_schema)
    assert json.loads(old_schema.read_text())["schema"] == 1, "a refused file is left as it was"


def test_the_committed_lineage_is_written_as_add_links_writes_it():
    """One line per probe cell (kdbench.code_lineage.dumps), every link's evidence complete."""
    text = code_lineage.LINEAGE_FILE.read_text()
    assert code_lineage.dumps(json.loads(text)) == text
    for fp, one in code_lineage.load_links().items():
        assert one["verified"]["cells"] and all(c["same"] for c in one["verified"]["cells"]), fp


def test_training_differences_see_weights_and_metrics_not_provenance_or_times():
    result = json.loads((SMOKE_RESULTS / "fmnist-smoke__cnn_medium__cnn_small__fp32__kd__s0.json").read_text())
    later = json.loads(json.dumps(result))
    later.update(finished_at="2027-01-01T00:00:00+00:00", config_hash="f" * 64)
    later["environment"]["cpu_model"] = "another CPU"
    later["student"]["train_seconds"] = 99.0
    later["student"]["history"][0]["epoch_seconds"] = 99.0
    assert code_lineage.training_differences(result, later) == []
    later["student"]["weights_sha256"] = "0" * 64
    later["metrics"]["test_top1_last"] = 0.5
    later["teacher"]["history"][2]["train_loss"] += 1e-7
    later["config"]["code"] = "1" * 64  # what differs by construction
    later["config"]["student_recipe"] = "2" * 64
    assert [d.split(":")[0] for d in code_lineage.training_differences(result, later)] == [
        "config.student_recipe", "metrics.test_top1_last", "student.weights_sha256", "teacher.history.2.train_loss"]


def test_a_result_of_verified_older_code_stays_current_and_one_of_unverified_code_does_not(tmp_path, monkeypatch):
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    cell = next(c for c in suite.cells() if c.seed == 0)
    result = committed_smoke_result(f"{cell.id}.json", tmp_path / "smoke", code=OLD)
    lineage = tmp_path / "code_lineage.json"
    monkeypatch.setattr(code_lineage, "LINEAGE_FILE", lineage)
    assert Runner(suite, RunOptions(results_dir=tmp_path)).ids.config_changes(cell, result) == ["code"]
    code_lineage.add_links([link(code_fingerprint(), OLD)], EVIDENCE, lineage)
    runner = Runner(suite, RunOptions(results_dir=tmp_path))
    assert runner.ids.config_changes(cell, result) == [] and runner.finished(cell)
    assert runner.ids.code_of(cell) == OLD and runner.ids.files_code_of(cell) == code_fingerprint()
    # Checkpoints and cached teachers are keyed with the same fingerprint: the old code's are found.
    assert runner.ids.student_key(cell) == result["config_hash"]
    lineage.write_text(lineage.read_text().replace(code_fingerprint(), "1" * 64))
    monkeypatch.setattr(code_lineage, "LINEAGE_FILE", lineage)
    assert Runner(suite, RunOptions(results_dir=tmp_path)).ids.config_changes(cell, result) == ["code"], \
        "a link names the exact code it vouches for"


def copy_of_the_code(where, edit: tuple[str, str] | None = None):
    """The kdbench package and the smoke suite under ``where``, with one text replacement in train.py."""
    shutil.copytree(REPO / "kdbench", where / "kdbench", ignore=shutil.ignore_patterns("__pycache__", "code_lineage.json"))
    (where / "suites").mkdir()
    shutil.copy(REPO / "suites" / "smoke.yaml", where / "suites")
    if edit:
        train = where / "kdbench" / "train.py"
        text = train.read_text()
        assert edit[0] in text
        train.write_text(text.replace(edit[0], edit[1], 1))
    return where


@pytest.mark.smoke
def test_verify_code_change_links_a_refactor_and_refuses_a_change_of_the_numbers(tmp_path):
    """tools/verify_code_change.py runs the smoke suite's probe with both codes: a change that
    trains the same is linked; one that moves the numbers (momentum halved) is not."""
    old = copy_of_the_code(tmp_path / "old")
    same = copy_of_the_code(tmp_path / "same", ("    return opt, lr\n", "    lr = float(lr)  # the same number\n    return opt, lr\n"))
    moved = copy_of_the_code(tmp_path / "moved", ("momentum=o.momentum,", "momentum=o.momentum / 2,"))

    def verify(new):
        return subprocess.run([sys.executable, str(REPO / "tools" / "verify_code_change.py"), str(old), "--new", str(new), "--quick",
                               "--suite", "smoke", "--record", "--work", str(new / "runs")], capture_output=True, text=True, cwd=tmp_path)

    ok = verify(same)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "the same: 4 cells, bitwise" in ok.stdout
    links = code_lineage.load_links(same / "kdbench" / "code_lineage.json")
    fp = {t: subprocess.run([sys.executable, "-c", "from kdbench.fingerprint import code_fingerprint as f; print(f())"],
                            capture_output=True, text=True, cwd=t).stdout.strip() for t in (old, same)}
    assert links[fp[same]]["same_as"] == fp[old] and links[fp[same]]["verified"]["cells"][0]["same"]
    bad = verify(moved)
    assert bad.returncode == 1 and "NOT the same" in bad.stdout and "smoke-tiny: 4 cells, 4 differ" in bad.stdout, bad.stdout + bad.stderr
    assert not (moved / "kdbench" / "code_lineage.json").exists(), "nothing is linked"
