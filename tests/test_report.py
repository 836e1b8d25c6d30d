"""Report pages: tables, figures and Grad-CAM maps from real (small) runs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from kdbench.gradcam import chosen_images, grad_cam, last_conv
from kdbench.report import precision_table

from .conftest import md_cells, md_rows
from .test_cli import QUICK, kdbench

PNG = b"\x89PNG\r\n\x1a\n"


def probe_model() -> nn.Module:
    """conv 1×1 (identity) → global mean → linear: class 1's score grows with brightness."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def test_gradcam_points_at_the_evidence():
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 1:3, 5:7] = 1.0  # bright patch, top right
    x[1, 0, 6, 0] = 1.0  # one bright pixel, bottom left
    model = probe_model().train()
    maps, pred = grad_cam(model, x)
    assert pred.tolist() == [1, 1]
    assert maps.shape == (2, 8, 8) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    # For this model Grad-CAM of class 1 is the (ReLU'd, rescaled) activation: the image itself.
    assert torch.allclose(maps[0], x[0, 0], atol=1e-6)
    assert divmod(int(maps[1].argmax()), 8) == (6, 0)
    assert model.training, "the model's mode is restored"
    assert all(p.grad is None for p in model.parameters()), "no gradients left behind"


def test_gradcam_for_another_class_uses_its_gradient():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    maps, _ = grad_cam(probe_model(), x, target=torch.tensor([0]))
    # Class 0's weight is negative: ReLU removes all evidence, the map is all zero.
    assert float(maps.abs().max()) == 0.0


def test_last_conv_and_no_conv():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.Flatten())
    assert last_conv(m) is m[2]
    with pytest.raises(Exception, match="no convolution"):
        last_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_chosen_images_one_per_class_in_order():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 3])
    assert chosen_images(labels) == [1, 2, 0, 6]
    assert chosen_images(labels, per_class=2, max_images=3) == [1, 3, 2]


def _fake(cid: str, precision: str, method: str, top1: float, status: str = "ok") -> dict:
    cell = {"dataset": "d", "teacher": "t", "assistants": [], "student": "s", "precision": precision, "method": method, "seed": 0, "variant": ""}
    r = {"cell_id": cid, "cell": cell, "status": status}
    if status == "ok":
        r.update(metrics={"test_top1_last": top1}, params={"student": 1, "teacher": 2})
    else:
        r["failure"] = {"reason": "fp8 needs Hopper"}
    return r


def test_precision_table_deltas_against_fp32():
    results = {c["cell_id"]: c for c in (_fake("a", "fp32", "kd", 0.70), _fake("b", "bf16", "kd", 0.715), _fake("c", "fp16", "kd", 0.69),
                                          _fake("d", "fp8", "kd", 0.0, status="unsupported"))}
    table = precision_table(results)
    line = next(x for x in table.splitlines() if "| kd" in x)
    assert "70.00" in line and "71.50 (+1.50)" in line and "69.00 (-1.00)" in line and "unsupported" in line
    assert precision_table({"a": results["a"]}) is None


@pytest.mark.smoke
def test_report_page_with_figures_and_gradcam(tmp_path):
    res = tmp_path / "r"
    kdbench("run", "suites/smoke.yaml", "--results", str(res), "--set", "split.max_per_class=20", *QUICK, tmp=tmp_path, check=True)
    page = tmp_path / "out" / "smoke-cpu.md"
    args = ["report", "suites/smoke.yaml", "--results", str(res), "--out", str(page), "--gradcam", "--cache", str(tmp_path / "cache")]
    proc = kdbench(*args, tmp=tmp_path, check=True)
    text = page.read_text()
    figs = ["curves", "confusion", "accuracy_vs_params", "gradcam", "gradcam_best_vs_worst"]
    for name in figs:
        assert f"](figures/smoke-cpu/{name}.png)" in text, name
        assert (tmp_path / "out" / "figures" / "smoke-cpu" / f"{name}.png").read_bytes().startswith(PNG)
    assert "## Training summary" in text and "| cnn_tiny  | kd" in text
    assert proc.stdout.strip() == text.strip()
    first = {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures" / "smoke-cpu").iterdir()}
    kdbench(*args, tmp=tmp_path, check=True)
    again = {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures" / "smoke-cpu").iterdir()}
    assert again == first, "the same results must give the same figure files"
    # Student weights that are not the ones the result recorded are refused, not drawn.
    weights = next(res.glob("smoke/*cnn_tiny__fp32__kd__s0.pt"))
    state = torch.load(weights, weights_only=True)
    next(iter(state.values())).view(-1)[0] += 1.0
    torch.save(state, weights)
    bad = kdbench(*args, tmp=tmp_path)
    assert bad.returncode == 2 and "do not match the sha256" in bad.stderr
    json.loads(next(res.glob("smoke/*.json")).read_text())  # results untouched


def test_published_figures_beside_ours():
    from kdbench.report import reported_table
    from kdbench.suite_spec import ReportedSpec

    ours = {c["cell_id"]: c for c in (_fake("a", "fp32", "kd", 0.70), _fake("b", "fp32", "none", 0.66))}
    for r in ours.values():
        r["metrics"]["teacher_test_top1_last"] = 0.80
    reported = (
        ReportedSpec(top1=82.0, dataset="d", source="paper", teacher="t"),
        ReportedSpec(top1=71.5, dataset="d", source="paper", teacher="t", student="s", method="kd"),
        ReportedSpec(top1=90.0, dataset="other", source="paper", student="s", method="none"),
        ReportedSpec(top1=50.0, dataset="d", source="paper", student="s", method="dkd"),
    )
    lines = reported_table(ours, reported).splitlines()[2:]
    assert "| 80.00 (n=1)" in lines[0] and "| -2.00" in lines[0]
    assert "| 70.00 (n=1)" in lines[1] and "| -1.50" in lines[1]
    assert "not comparable: ours on d" in lines[2]
    assert "not run yet" in lines[3]


def test_reported_figures_are_validated():
    from .test_suite import SMOKE, error_of

    e = error_of(SMOKE, "reported=[{student: cnn_tiny, top1: 70, dataset: fmnist-smoke, source: x}]")
    assert "reported[0].method: a student's figure needs its method" in str(e)
    e = error_of(SMOKE, "reported=[{teacher: resnet50, top1: 70, dataset: d, source: x}]")
    assert "reported[0].teacher: 'resnet50' is not a model of this suite's matrix" in str(e)
    e = error_of(SMOKE, "reported=[{teacher: cnn_medium, top1: 170, dataset: d, source: x}]")
    assert "reported[0].top1: is a percentage in (0, 100], got 170.0" in str(e)


@pytest.mark.smoke
def test_diff_of_two_runs_says_what_moved_and_why(tmp_path):
    args = ["run", "suites/smoke.yaml", "--cells", "*cnn_tiny__fp32__*", "--set", "split.max_per_class=20", *QUICK]
    kdbench(*args, "--results", str(tmp_path / "a"), tmp=tmp_path, check=True)
    kdbench(*args, "--results", str(tmp_path / "same"), tmp=tmp_path, check=True)
    kdbench(*args, "--results", str(tmp_path / "lr"), "--set", "student.optimizer.lr=0.3", tmp=tmp_path, check=True)
    same = kdbench("diff", "suites/smoke.yaml", str(tmp_path / "a"), str(tmp_path / "same"), tmp=tmp_path, check=True)
    # Two students and their one shared teacher (shown once).
    assert same.stdout.count("same weights (bitwise)") == 3 and "differs in: nothing recorded" in same.stdout
    # ... and how fast each ran: the cells' own timings side by side, the shared teacher left out.
    assert "Same hardware recorded in both." in same.stdout and "| student | test images / s" in same.stdout
    assert "| teacher |" not in same.stdout
    # --metric before the folders takes one value (commas for several), not the folders too.
    f1 = kdbench("diff", "suites/smoke.yaml", "--metric", "test_f1_macro,test_top1", "--metric", "teacher_test_top1",
                 str(tmp_path / "a"), str(tmp_path / "same"), tmp=tmp_path, check=True)
    accuracy = f1.stdout.split("\nSpeed:")[0]  # the accuracy table; the speed table follows it
    metrics = {r[1] for r in md_rows(accuracy) if r[0].startswith("fmnist-smoke")}
    assert all(any(m.startswith(x) for m in metrics) for x in ("test_f1_macro", "test_top1", "teacher_test_top1")), f1.stdout
    moved = kdbench("diff", "suites/smoke.yaml", str(tmp_path / "a"), str(tmp_path / "lr"), tmp=tmp_path)
    # Tolerances come from golden/smoke/cpu.json (seed spread of the full smoke cells).
    assert "tolerances from golden/smoke/cpu.json" in moved.stdout and "±6.48" in moved.stdout
    rows = {tuple(r[:2]): r[-1] for r in md_rows(moved.stdout.split("\nSpeed:")[0]) if r[0].startswith("fmnist-smoke")}
    student_verdicts = [v for (_, metric), v in rows.items() if not metric.startswith("teacher_")]
    assert len(student_verdicts) == 2 and set(student_verdicts) <= {"within tolerance", "MOVED"}
    # The student's LR does not touch the teacher: its row says so.
    assert [v for (_, metric), v in rows.items() if metric.startswith("teacher_")] == ["same weights (bitwise)"]
    assert moved.returncode == (1 if "MOVED" in student_verdicts else 0)
    none = kdbench("diff", "suites/smoke.yaml", str(tmp_path / "a"), str(tmp_path / "nowhere"), tmp=tmp_path)
    assert none.returncode == 2 and "no cell of smoke is finished in both" in none.stderr


def test_diff_verdicts_against_golden_tolerances():
    from kdbench.diff import diff_results, provenance_changes

    def res(top1: float, sha: str, torch_version: str) -> dict:
        r = _fake("c", "fp32", "kd", top1)
        r.update(student={"weights_sha256": sha}, environment={"torch": torch_version}, fingerprints={"code": "x"})
        return r

    golden = {"cells": {"c": {"metrics": {"test_top1_last": {"tolerance": 0.05}}}}}
    a = {"c": res(0.70, "w1", "2.11.0")}
    table, moved = diff_results(a, {"c": res(0.68, "w2", "2.14.1")}, golden)
    assert "within tolerance" in table and moved == []
    table, moved = diff_results(a, {"c": res(0.60, "w2", "2.14.1")}, golden)
    assert "MOVED" in table and moved == ["c: test_top1_last 70.00 → 60.00 % (-10.00 pp; tolerance ±5.00)"]
    assert "same weights (bitwise)" in diff_results(a, {"c": res(0.70, "w1", "2.11.0")}, golden)[0]
    assert "no golden tolerance" in diff_results(a, {"c": res(0.60, "w2", "2.11.0")}, None)[0]
    assert provenance_changes(a, {"c": res(0.6, "w2", "2.14.1")}) == ["torch: 2.11.0 → 2.14.1"]
    # The golden file pins seed 0; its tolerance (the seed-to-seed spread) judges seed 1 too.
    golden = {"cells": {"x__s0": {"metrics": {"test_top1_last": {"tolerance": 0.05}}}}}
    table, moved = diff_results({"x__s1": res(0.70, "w1", "2.11.0")}, {"x__s1": res(0.60, "w2", "2.11.0")}, golden)
    assert moved == ["x__s1: test_top1_last 70.00 → 60.00 % (-10.00 pp; tolerance ±5.00)"]
    assert "within tolerance" in diff_results({"x__s1": res(0.70, "w1", "2.11.0")}, {"x__s1": res(0.68, "w2", "2.11.0")}, golden)[0]


def test_diff_judges_a_teacher_row_by_the_teacher_and_shows_it_once():
    from kdbench.diff import diff_results

    def res(cid: str, student_sha: str, teacher_sha: str, teacher_top1: float) -> dict:
        r = _fake(cid, "fp32", "kd", 0.7)
        r["metrics"]["teacher_test_top1_last"] = teacher_top1
        r.update(student={"weights_sha256": student_sha}, teacher={"weights_sha256": teacher_sha})
        return r

    a = {c: res(c, "s", "t1", 0.80) for c in ("c1", "c2")}
    b = {c: res(c, "s2", "t1", 0.80) for c in ("c1", "c2")}
    table, moved = diff_results(a, b, None, ("test_top1", "teacher_test_top1"))
    teacher_rows = [line for line in table.splitlines() if "teacher_test_top1" in line]
    assert len(teacher_rows) == 1 and "same weights (bitwise)" in teacher_rows[0]
    assert table.count("no golden tolerance") == 2  # the two students moved
    b = {c: res(c, "s2", "t2", 0.75) for c in ("c1", "c2")}
    golden = {"cells": {"c1": {"metrics": {"teacher_test_top1_last": {"tolerance": 0.02}}}}}
    table, moved = diff_results(a, b, golden, ("test_top1", "teacher_test_top1"))
    assert moved == ["c1: teacher_test_top1_last 80.00 → 75.00 % (-5.00 pp; tolerance ±2.00)"]


def test_diff_speed_states_each_cells_speed_up_and_names_other_hardware():
    from kdbench.diff import diff_speed, hardware_changes

    def res(cid: str, epoch_s: list[float], images_per_s: float, latency_ms: float, teacher_epoch_s: list[float], cpu: str,
            latency_spread: float | None = None, images_spread: float | None = None) -> dict:
        r = _fake(cid, "fp32", "kd", 0.7)
        latency = {"batch1_median_ms": latency_ms} | ({"batch1_spread": latency_spread} if latency_spread is not None else {})
        images = {"student_test_images_per_s": images_per_s} | (
            {"student_test_images_per_s_spread": images_spread} if images_spread is not None else {})
        r.update(student={"weights_sha256": "s", "history": [{"epoch": i + 1, "epoch_seconds": t} for i, t in enumerate(epoch_s)]},
                 teacher={"weights_sha256": "t", "history": [{"epoch": i + 1, "epoch_seconds": t} for i, t in enumerate(teacher_epoch_s)]},
                 cost={**images, "student_latency_ms": latency},
                 environment={"cpu_model": cpu, "torch": "2.14.1"})
        return r

    # The median epoch: a slow first (warm-up) epoch does not decide it.
    a = {"c1": res("c1", [9.0, 2.0, 2.0], 1000.0, 1.0, [5.0, 4.0], "Xeon"), "c2": res("c2", [4.0, 4.0, 4.0], 500.0, 2.0, [5.0, 4.0], "Xeon")}
    b = {"c1": res("c1", [3.0, 1.0, 1.0], 2000.0, 0.5, [5.0, 4.0], "Xeon"), "c2": res("c2", [1.0, 1.0, 1.0], 2000.0, 0.5, [5.0, 4.0], "Xeon")}
    table, summary = diff_speed(a, b)
    rows = md_rows(table)[2:]
    assert ["c1", "student", "train s / epoch (median)", "2", "1", "2.00×", "beyond the epoch spread (epochs vary ±0 % and ±0 %)"] in rows
    assert ["c2", "student", "test images / s", "500", "2,000", "4.00×", "pass spread not recorded in both"] in rows  # one pass each
    assert ["c2", "student", "latency ms (batch 1, median)", "2", "0.5", "4.00×", "pass spread not recorded in both"] in rows
    # One cached teacher's one training recorded in both folders is not a measurement of either.
    assert not [r for r in rows if r[1] == "teacher"]
    assert summary[0] == "student train s / epoch (median): 2.83× (geometric mean of 2; 2.00× to 4.00×)"
    assert hardware_changes(a, b) == []
    # A change smaller than the epochs' own variation (one 30 s epoch, a disturbed machine, does
    # not widen it: a median absolute deviation) is said to be within it.
    a["c3"], b["c3"] = res("c3", [10, 11, 9, 10, 30], 1.0, 1.0, [5.0, 4.0], "Xeon"), res("c3", [12, 13, 11, 12, 40], 1.0, 1.0, [5.0, 4.0], "Xeon")
    table, _ = diff_speed(a, b)
    rows = md_rows(table)[2:]
    assert ["c3", "student", "train s / epoch (median)", "10", "12", "0.83×", "within the epoch spread (epochs vary ±15 % and ±12 %)"] in rows
    del a["c3"], b["c3"]
    # Latency is judged against the spread of each run's timed passes, where both recorded it:
    # 10 % slower against passes that vary ±1 % and ±2 % is beyond it; against ±5 % each, within.
    a["c4"], b["c4"] = res("c4", [1.0] * 3, 1.0, 1.0, [5.0, 4.0], "Xeon", 0.01), res("c4", [1.0] * 3, 1.0, 1.1, [5.0, 4.0], "Xeon", 0.02)
    a["c5"], b["c5"] = res("c5", [1.0] * 3, 1.0, 1.0, [5.0, 4.0], "Xeon", 0.05), res("c5", [1.0] * 3, 1.0, 1.1, [5.0, 4.0], "Xeon", 0.05)
    table, _ = diff_speed(a, b)
    rows = md_rows(table)[2:]
    assert ["c4", "student", "latency ms (batch 1, median)", "1", "1.1", "0.91×", "beyond the pass spread (passes vary ±1 % and ±2 %)"] in rows
    assert ["c5", "student", "latency ms (batch 1, median)", "1", "1.1", "0.91×", "within the pass spread (passes vary ±5 % and ±5 %)"] in rows
    del a["c4"], b["c4"], a["c5"], b["c5"]
    # So is test-set throughput, against the spread of each run's passes over the test split.
    a["c6"], b["c6"] = res("c6", [1.0] * 3, 1000.0, 1.0, [5.0, 4.0], "Xeon", images_spread=0.01), res("c6", [1.0] * 3, 1200.0, 1.0, [5.0, 4.0], "Xeon", images_spread=0.02)
    a["c7"], b["c7"] = res("c7", [1.0] * 3, 1000.0, 1.0, [5.0, 4.0], "Xeon", images_spread=0.10), res("c7", [1.0] * 3, 1200.0, 1.0, [5.0, 4.0], "Xeon", images_spread=0.10)
    table, _ = diff_speed(a, b)
    rows = md_rows(table)[2:]
    assert ["c6", "student", "test images / s", "1,000", "1,200", "1.20×", "beyond the pass spread (passes vary ±1 % and ±2 %)"] in rows
    assert ["c7", "student", "test images / s", "1,000", "1,200", "1.20×", "within the pass spread (passes vary ±10 % and ±10 %)"] in rows
    del a["c6"], b["c6"], a["c7"], b["c7"]
    # A teacher trained again (other times) is compared once, and other hardware is named.
    b = {c: res(c, [1.0], 2000.0, 0.5, [2.5, 2.0], "EPYC") for c in ("c1", "c2")}
    table, summary = diff_speed(a, b)
    assert [line for line in table.splitlines() if "| teacher" in line and "2.00×" in line][0].startswith("| c1")
    assert "teacher train s / epoch (median): 2.00× (one cell)" in summary
    assert hardware_changes(a, b) == ["CPU: Xeon → EPYC"]


def test_diff_names_the_processor_when_cpu_runs_differ():
    """Same code, seed and torch on two CPU models: the weights differ (AVX2 and AVX-512 kernels
    round differently; measured on the smoke suite: up to 2 pp on a teacher), and diff says why."""
    from kdbench.determinism import cpu_model, environment
    from kdbench.diff import provenance_changes

    env = environment(torch.device("cpu"))
    assert env["cpu_model"] == cpu_model() and env["cpu_model"] and env["cpu_capability"]

    def res(model, kernels, threads):
        return {"environment": {"torch": "2.14.1", "cpu_model": model, "cpu_capability": kernels, "torch_threads": threads},
                "fingerprints": {"code": "c" * 64}}

    a = {"x": res("AMD EPYC 9B14", "AVX2", 2)}
    assert provenance_changes(a, {"x": res("Intel(R) Xeon(R) Processor", "AVX512", 2)}) == [
        "CPU: AMD EPYC 9B14 → Intel(R) Xeon(R) Processor", "CPU kernels: AVX2 → AVX512"]
    older = {"x": {"environment": {"torch": "2.14.1", "torch_threads": 2}, "fingerprints": {"code": "c" * 64}}}
    assert provenance_changes(older, a)[0] == "CPU: not recorded → AMD EPYC 9B14"
    assert provenance_changes(a, {"x": dict(a["x"], fingerprints={"code": "d" * 64})}) == [f"training code (raw bytes): {'c' * 16} → {'d' * 16}"]
    kept, flushed = ({"x": dict(a["x"], config={"cpu_denormals": v})} for v in ("kept", "flushed"))
    assert provenance_changes(kept, flushed) == ["CPU denormals: kept → flushed"]


def test_diff_compares_code_fingerprints_of_the_same_kind():
    """Results made before comments were left out of the code fingerprint hold only the raw-bytes
    one under "code"; newer ones hold both. diff compares like with like: the same code never
    shows as a change, a comment edit shows only where an old result forces raw bytes."""
    from kdbench.diff import provenance_changes

    def res(**fp):
        return {"environment": {"torch": "2.14.1"}, "fingerprints": fp}

    old = {"x": res(code="a" * 64)}
    new = {"x": res(code="b" * 64, code_raw="a" * 64)}
    assert provenance_changes(old, new) == [], "same bytes, fingerprinted two ways: no change"
    comment_edit = {"x": res(code="b" * 64, code_raw="c" * 64)}
    assert provenance_changes(new, comment_edit) == [], "a comment is not training code"
    assert provenance_changes(old, comment_edit) == [f"training code (raw bytes): {'a' * 16} → {'c' * 16}"]
    code_edit = {"x": res(code="d" * 64, code_raw="e" * 64)}
    assert provenance_changes(new, code_edit) == [f"training code: {'b' * 16} → {'d' * 16}"]


def test_page_without_results_says_so_and_lists_the_published_figures():
    from kdbench.report import suite_page
    from kdbench.suite import load_suite

    from .conftest import REPO

    suite = load_suite(REPO / "suites" / "s1-cifar10.yaml")
    page = suite_page(suite.name, suite.spec.description, {}, None, "cpu", None, suite.spec.reported)
    assert "No finished cell of this suite on `cpu`" in page
    assert "| teacher timm/efficientnet_b4" in page and "not run yet" in page and "Test metrics" not in page


def test_per_class_table_uses_the_first_seed_and_precision():
    from kdbench.report import per_class_tables

    def cell(cid, seed, f1):
        r = _fake(cid, "fp32", "kd", 0.5)
        r["cell"]["seed"] = seed
        r["report"] = {"per_class": [{"class": "a", "support": 3, "f1": f1}, {"class": "b", "support": 4, "f1": 1 - f1}]}
        return r

    [(first, table)] = per_class_tables({"x": cell("x", 0, 0.25), "y": cell("y", 1, 0.40)})
    assert first["seed"] == 0
    assert md_rows(table)[2][:3] == ["a", "3", "25.0"]
    assert "40.0" not in table and "60.0" not in table, "only the first seed's cells"


def test_a_page_over_two_data_sets_keeps_each_data_sets_classes(tmp_path):
    """A suite with a stand-in beside its data set (s2 and s3 list the shipped Fashion-MNIST
    subset beside CIFAR-10): real committed results of both, on one page. Each data set gets
    its own per-class table under its own class names (one table headed by the first cell's
    classes put Fashion-MNIST's F1 under CIFAR-10's names), the training summary names the data
    set of each row, and the figures draw."""
    from kdbench.figures import draw_all
    from kdbench.report import suite_page

    from .conftest import REPO

    cpu = REPO / "reports" / "results" / "cpu"
    files = [*sorted((cpu / "s3-cifar10").glob("cifar10-jpeg__*.json")), *sorted((cpu / "s2-cifar10").glob("fmnist-smoke__*.json"))]
    results = {p.stem: json.loads(p.read_text()) for p in files}
    assert {r["cell"]["dataset"] for r in results.values()} == {"cifar10-jpeg", "fmnist-smoke"}
    page = suite_page("mixed", "", results, None, "cpu")
    per_class = page[page.index("## Per class"):page.index("## Training summary")]
    cifar = per_class[per_class.index("### cifar10-jpeg"):per_class.index("### fmnist-smoke")]
    fashion = per_class[per_class.index("### fmnist-smoke"):]
    assert "| airplane" in cifar and "Trouser" not in cifar
    assert "| Trouser" in fashion and "airplane" not in fashion
    f1 = next(r for r in results.values() if r["cell"]["dataset"] == "fmnist-smoke")["report"]["per_class"][1]["f1"]
    assert f"{100 * f1:.1f}" in next(line for line in fashion.splitlines() if line.startswith("| Trouser"))
    summary = page[page.index("## Training summary"):]
    assert "| dataset" in summary and "| fmnist-smoke" in summary and "| cifar10-jpeg" in summary
    assert set(draw_all(results, tmp_path)) == {"training curves", "confusion matrices", "accuracy vs parameters"}


def test_training_summary_gives_the_median_epoch_beside_the_wall_clock():
    """S4's rescnn_b6 run at seed 2 shared the CPU with another job for two of its 30 epochs
    (committed as run): its whole training's seconds carry that, marked ‡, its median epoch does not."""
    import statistics

    from kdbench.report import training_table

    from .conftest import REPO

    path = REPO / "reports/results/cpu/s4-fmnist/fashion-mnist__timm-resnet18__rescnn_b6__fp32__none__s2.json"
    result = json.loads(path.read_text())
    times = [row["epoch_seconds"] for row in result["student"]["history"]]
    row = next(line for line in training_table({path.stem: result}).splitlines() if "rescnn_b6" in line)
    cells = md_cells(row)
    assert cells[cells.index(f"{result['student']['train_seconds']:,.1f} ‡") + 1] == f"{statistics.median(times):,.1f}"
    assert statistics.median(times) * len(times) < 0.8 * result["student"]["train_seconds"], "the contended epochs are in the wall clock"
    even = json.loads(json.dumps(result))
    for row in even["student"]["history"]:
        row["epoch_seconds"] = statistics.median(times)
    row = next(line for line in training_table({path.stem: even}).splitlines() if "rescnn_b6" in line)
    assert f"{result['student']['train_seconds']:,.1f}" in md_cells(row), "no epoch over twice the median: no mark"


def test_cells_whose_teacher_scores_below_the_student_alone_are_named():
    """S4's ResNet-18 teacher (about 90 %) is below both residual students trained alone (92.8 %,
    94.1 %), and KD cost them accuracy: the page says so, with the figures of the results. The
    smoke teacher is above its students: nothing is said."""
    import json

    from kdbench.report_notes import weaker_teacher_note

    from .conftest import REPO, SMOKE_RESULTS

    folder = REPO / "reports/results/cpu/s4-fmnist"
    s4 = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    note = weaker_teacher_note(s4)

    def pct(cell: str, key: str) -> float:
        return 100 * next(v for k, v in s4[cell]["metrics"].items() if k.startswith(key))

    kd, alone = "fashion-mnist__timm-resnet18__rescnn_b6__fp32__kd__s2", "fashion-mnist__timm-resnet18__rescnn_b6__fp32__none__s2"
    pairs = [(c, c.replace("__kd__", "__none__")) for c in s4 if "__kd__" in c and c.replace("__kd__", "__none__") in s4]
    weaker = [c for c, a in pairs if pct(c, "teacher_test_top1_") < pct(a, "test_top1_")]
    assert len(weaker) >= 4 and note.startswith(f"**Teacher below the student alone** in {len(weaker)} of {len(pairs)} distilled cells"), note
    gained = [c for c in weaker if pct(c, "test_top1_") > pct(c.replace("__kd__", "__none__"), "test_top1_")]
    assert (f"a positive one ({len(gained)} of these {len(weaker)})" in note) == bool(gained), note
    b6_seeds = sorted(s4[c]["cell"]["seed"] for c, _ in pairs if "__rescnn_b6__" in c)
    if b6_seeds == [2]:  # one pair: its own figures; more seeds as they land: their means
        assert (f"rescnn_b6 [kd] from timm/resnet18 on fashion-mnist, fp32 (seed 2): teacher {pct(kd, 'teacher_test_top1_'):.2f} %, "
                f"student alone {pct(alone, 'test_top1_'):.2f} %, KD gain {pct(kd, 'test_top1_') - pct(alone, 'test_top1_'):+.2f} pp") in note
    else:
        assert f"rescnn_b6 [kd] from timm/resnet18 on fashion-mnist, fp32 (seeds {', '.join(map(str, b6_seeds))}, means)" in note
    assert "rescnn_b4 [kd] from timm/resnet18 on fashion-mnist, fp32 (seeds 0, 1, 2, means)" in note
    smoke = {p.stem: json.loads(p.read_text()) for p in SMOKE_RESULTS.glob("*.json")}
    assert smoke and weaker_teacher_note(smoke) is None


def _columns(line: str) -> list[str]:
    """A row of a github table, its cells stripped."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_seeds_table_on_the_committed_smoke_results():
    """The smoke results (5 seeds per cell, real runs) summarised over seeds; the figures are
    recomputed here independently with the statistics module."""
    import statistics

    from kdbench.report import seeds_table

    from .conftest import SMOKE_RESULTS

    results = {p.stem: json.loads(p.read_text()) for p in SMOKE_RESULTS.glob("*.json")}
    table = seeds_table(results)
    top1 = {(r["cell"]["student"], r["cell"]["method"], r["cell"]["seed"]): 100 * r["metrics"]["test_top1_last"] for r in results.values()}
    for student in ("cnn_tiny", "cnn_small"):
        for method in ("none", "kd"):
            vals = [top1[student, method, s] for s in range(5)]
            line = next(x for x in table.splitlines() if f"| {student} " in x and f"| {method} " in x)
            assert "| 5 " in line and f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}" in line
            assert f"{min(vals):.2f} – {max(vals):.2f}" in line
        gains = [top1[student, "kd", s] - top1[student, "none", s] for s in range(5)]
        half = 2.776 * statistics.stdev(gains) / 5**0.5  # t(0.975, 4 df)
        line = next(x for x in table.splitlines() if f"| {student} " in x and "| kd " in x)
        assert f"[{statistics.mean(gains) - half:+.2f}, {statistics.mean(gains) + half:+.2f}]" in line
        verdict, needed = _columns(line)[-2:]
        assert verdict == ("yes" if abs(statistics.mean(gains)) > half else "no")
        # the seeds a clear gain needs: at most the 5 run where the interval already excludes 0, more where not
        assert (int(needed) <= 5) if verdict == "yes" else (needed == "over 100" or int(needed) > 5)


def test_seeds_table_says_yes_only_when_the_gain_clears_the_spread():
    from kdbench.report import seeds_table

    def cells(gains, base=0.70):
        out = {}
        for seed, g in enumerate(gains):
            for method, top1 in (("none", base + 0.01 * seed), ("kd", base + 0.01 * seed + g)):
                r = _fake(f"{method}{seed}", "fp32", method, top1)
                r["cell"]["seed"] = seed
                out[r["cell_id"]] = r
        return out

    def kd_row(gains):
        return _columns(next(x for x in seeds_table(cells(gains)).splitlines() if "| kd " in x))

    assert kd_row([0.020, 0.022, 0.018])[-2:] == ["yes", "2"]
    # canonical-cifar's DKD gains on the subset, seeds 0-4 (pp): the interval's lower end is
    # +0.005, which two decimals would show as +0.00 beside a "yes"; 5 seeds were just enough
    barely = kd_row([0.012, 0.010, 0.012, 0.0, 0.002])
    assert "[+0.005, +1.44]" in barely and barely[-2:] == ["yes", "5"]
    # its KD gains: +1.12 ± 1.15 pp; t(6) · 1.154 / √7 = 1.07 < 1.12 (6 seeds: 1.21), so 7
    assert kd_row([0.004, 0.012, 0.010, 0.030, 0.0])[-2:] == ["no", "7"]
    assert kd_row([0.02, -0.03, 0.015])[-2:] == ["no", "over 100"]  # +0.17 ± 2.75 pp
    # canonical-cifar's vgg8 KD gains, seeds 0 and 1: +1.80 pp both (to the test image): no
    # spread measured, so no interval and no verdict, rather than [+1.80, +1.80] and "yes"
    tied = kd_row([0.018, 0.018])
    assert "+1.80 ± 0.00 (n=2)" in tied and tied[-3:] == ["—", "no spread measured (equal gains)", "—"], tied
    assert seeds_table({"a": _fake("a", "fp32", "kd", 0.7)}) is None  # one seed: nothing to summarise


def test_page_says_which_results_a_rerun_would_redo(tmp_path):
    """A results folder made by other training code: the page carries the figures and says they
    predate the code now, counting what changed; a current folder gets no such line."""
    from kdbench.report import suite_page
    from kdbench.results import load_results, stale_results
    from kdbench.suite import load_suite

    from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    folder = tmp_path / "smoke"
    for i, p in enumerate(sorted(SMOKE_RESULTS.glob("*__s0.json"))):
        committed_smoke_result(p.name, folder, **({} if i % 2 else {"code": "0" * 64}))  # every other one from older code
    results = load_results(suite, tmp_path)
    stale = stale_results(suite, tmp_path, results)
    assert len(results) == 4 and sorted(stale.values()) == [["code"], ["code"]]
    page = suite_page(suite.name, "", results, None, "cpu", None, (), stale)
    assert "**2 of these 4 results were made with other settings or training code" in page and "(changed: code (2))" in page
    fresh = {k: v for k, v in results.items() if k not in stale}
    assert "were made with other settings" not in suite_page(suite.name, "", fresh, None, "cpu", None, (), stale_results(suite, tmp_path, fresh))


def test_page_compares_the_cells_finished_on_another_device_class(tmp_path):
    """kdbench report --compare FOLDER: the cells finished both here and on another device class,
    side by side with the difference and what the two runs differ in; cells finished on one
    side only are left out, and without --compare the section is absent."""
    from kdbench.cli import main
    from kdbench.golden import load_golden

    from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result

    names = sorted(p.name for p in SMOKE_RESULTS.glob("*__s0.json"))[:2]
    for name in names:
        committed_smoke_result(name, tmp_path / "cpu" / "smoke")
    gpu = committed_smoke_result(names[0], tmp_path / "gpu" / "smoke", device_class="cuda-sm90")
    gpu["environment"].update(device_class="cuda-sm90", gpu="NVIDIA H100 80GB HBM3")
    cpu_top1 = gpu["metrics"]["test_top1_last"]
    gpu["metrics"]["test_top1_last"] = cpu_top1 + 0.0125
    gpu["student"]["weights_sha256"] = "f" * 64  # other kernels, other weights
    gpu["cost"]["student_test_images_per_s"] *= 2
    (tmp_path / "gpu" / "smoke" / names[0]).write_text(json.dumps(gpu))

    page_file = tmp_path / "page.md"
    args = ["report", str(REPO / "suites" / "smoke.yaml"), "--results", str(tmp_path / "cpu"), "--out", str(page_file), "--no-figures"]
    assert main([*args, "--compare", str(tmp_path / "gpu")]) == 0
    page = page_file.read_text()
    section = page[page.index("## On other device classes"):]
    assert "### `cpu` and `cuda-sm90`" in section and "1 cell(s) finished on both" in section
    assert "device class: cpu → cuda-sm90" in section
    rows = {r[1]: r for r in md_rows(section)
            if r[0] == names[0][:-5] and r[1] not in ("student", "teacher")}  # the accuracy rows; the speed rows follow
    assert rows["teacher_test_top1_last"][4] == "+0.00"  # the teacher's row beside the student's
    row = rows["test_top1_last"]
    # Judged against the seed-to-seed tolerance golden/smoke/cpu.json records for the cell.
    tol = load_golden("smoke", "cpu")["cells"][names[0][:-5]]["metrics"]["test_top1_last"]["tolerance"]
    verdict = "within tolerance" if 0.0125 <= tol else "MOVED"
    assert row[1:] == ["test_top1_last", f"{100 * cpu_top1:.2f}", f"{100 * cpu_top1 + 1.25:.2f}", "+1.25", f"±{100 * tol:.2f}", verdict]
    # And how fast each ran there, as the other device's speed-up.
    assert "as `cuda-sm90`'s speed-up over `cpu`" in section
    speed = {tuple(r[1:3]): r[5] for r in md_rows(section)
             if r[0] == names[0][:-5] and r[1] == "student"}
    assert speed[("student", "test images / s")] == "2.00×" and speed[("student", "train s / epoch (median)")] == "1.00×"
    assert "- student test images / s: 2.00× (one cell)" in section
    assert names[1][:-5] not in section, "finished on the CPU only: nothing to compare"
    assert main(args) == 0 and "## On other device classes" not in page_file.read_text()


def test_a_results_folder_without_the_suite_never_overwrites_a_page_of_results(tmp_path, capsys):
    """kdbench report with a mistyped --results (or the wrong --device-class) finds no finished
    cell: it leaves an existing page of results as it was and says where it looked; a page
    that has no results yet is still written (it lists the published figures)."""
    from kdbench.cli import main

    from .conftest import REPO, SMOKE_RESULTS, committed_smoke_result

    name = sorted(p.name for p in SMOKE_RESULTS.glob("*__s0.json"))[0]
    committed_smoke_result(name, tmp_path / "cpu" / "smoke")
    page_file = tmp_path / "page.md"
    args = ["report", str(REPO / "suites" / "smoke.yaml"), "--out", str(page_file), "--no-figures"]
    assert main([*args, "--results", str(tmp_path / "cpu")]) == 0
    with_results = page_file.read_text()
    assert "No finished cell" not in with_results

    assert main([*args, "--results", str(tmp_path / "cpu-typo")]) == 2
    assert page_file.read_text() == with_results
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cpu-typo' / 'smoke'} does not exist" in err and "was left as it is" in err
    assert main([*args, "--results", str(tmp_path / "cpu"), "--device-class", "cuda-sm90"]) == 2
    assert page_file.read_text() == with_results
    assert "holds results of cpu only" in capsys.readouterr().err

    empty = tmp_path / "empty.md"
    assert main(["report", str(REPO / "suites" / "smoke.yaml"), "--out", str(empty), "--results", str(tmp_path / "cpu-typo")]) == 0
    assert "No finished cell of this suite on `cpu`" in empty.read_text()
    assert main(["report", str(REPO / "suites" / "smoke.yaml"), "--out", str(empty), "--results", str(tmp_path / "cpu-typo")]) == 0


def test_kd_gains_across_machines_are_marked_and_named():
    """A KD gain pairs a distilled cell with the student alone at the same seed; where the two
    ran on different hardware the weights differ for that reason too (S4's rescnn_b4 at seeds 1
    and 2 were so committed until 2026-11-28: alone on an Intel Xeon, distilled on an AMD EPYC,
    their one teacher key scoring differently on each). The table marks such gains, the
    across-seeds row counts them, a paragraph names them, and the environment line lists every
    machine. S4's committed pairs each ran on one machine (seed 0 on the Xeon, 1 and 2 on the
    EPYC): nothing is marked, until the student alone of seed 1 is moved back to the Xeon."""
    import copy

    from kdbench.determinism import hardware
    from kdbench.report import environment_line, markdown_table, seeds_table
    from kdbench.report_notes import across_hardware_note
    from kdbench.report_rows import ACROSS_MARK

    from .conftest import REPO, SMOKE_RESULTS

    s4 = {p.stem: json.loads(p.read_text()) for p in (REPO / "reports/results/cpu/s4-fmnist").glob("*.json")}
    assert across_hardware_note(s4) is None and ACROSS_MARK.strip() not in markdown_table(s4, None)
    machines = {hardware(r["environment"]) for r in s4.values()}
    assert all(f"{m}: " in environment_line(s4) for m in machines) and len(machines) > 1

    kd, alone_id = "fashion-mnist__timm-resnet18__rescnn_b4__fp32__kd__s1", "fashion-mnist__timm-resnet18__rescnn_b4__fp32__none__s1"
    xeon = next(r["environment"] for r in s4.values() if r["environment"]["cpu_model"] != s4[kd]["environment"]["cpu_model"])
    moved = dict(s4, **{alone_id: copy.deepcopy(s4[alone_id])})
    alone = moved[alone_id]
    alone["environment"].update(cpu_model=xeon["cpu_model"], cpu_capability=xeon["cpu_capability"])
    alone["metrics"]["teacher_test_top1_bestval"] = 0.9104  # what its teacher scored on the Xeon
    note = across_hardware_note(moved)
    pairs = sum(c.replace("__kd__", "__none__") in s4 for c in s4 if "__kd__" in c)  # grows as seeds land
    assert note.startswith(f"† **KD gain across machines** in 1 of {pairs} pairs"), note
    assert f"seed 1: alone on {hardware(alone['environment'])}, teacher 91.04 %; distilled on {hardware(s4[kd]['environment'])}" in note
    marked = [line for line in markdown_table(moved, None).splitlines() if ACROSS_MARK.strip() in line]
    assert len(marked) == 1 and "| 1 " in marked[0]
    assert "(n=3, 1† across machines)" in seeds_table(moved)

    smoke = {p.stem: json.loads(p.read_text()) for p in SMOKE_RESULTS.glob("*.json")}
    assert across_hardware_note(smoke) is None and ACROSS_MARK.strip() not in markdown_table(smoke, None)
    (one,) = [c for c in smoke if c.endswith("cnn_small__fp32__kd__s0")]
    moved = dict(smoke, **{one: copy.deepcopy(smoke[one])})
    moved[one]["environment"].update(cpu_model="Other CPU", cpu_capability="AVX2")
    note = across_hardware_note(moved)
    assert note.startswith("† **KD gain across machines** in 1 of ") and "distilled on Other CPU (AVX2, 2 threads)" in note
    assert environment_line(moved).startswith("Environment: torch ") and "; Other CPU (AVX2, 2 threads): 1 cell, kdbench" in environment_line(moved)


def test_a_takd_row_gives_every_model_of_its_chain_and_the_page_every_data_set():
    """S3's TAKD cell on the shipped subset (a real CPU run): its teacher column reads
    "timm/resnet50 → timm/resnet34", so its teacher top-1 reads the same way, each model's test
    top-1 from the result's chain record; the environment line names both data sets the page's
    results read."""
    from kdbench.report import environment_line, markdown_table

    from .conftest import REPO

    s3 = {p.stem: json.loads(p.read_text()) for p in (REPO / "reports/results/cpu/s3-cifar10").glob("*.json")}
    takd = s3["fmnist-smoke__timm-resnet50~timm-resnet34__timm-resnet18__bf16__takd__s0"]
    (stage,) = takd["teacher"]["chain"]
    teacher = takd["metrics"]["teacher_test_top1_last"]
    rows = md_rows(markdown_table(s3, None))
    column = rows[0].index("teacher top-1 %")
    (row,) = [r for r in rows if r[3] == "takd" and r[5] == "0"]  # seeds 1-2 too since 2026-11-28
    assert row[1] == "timm/resnet50 → timm/resnet34" and row[column] == f"{100 * teacher:.2f} → {100 * stage['test_top1']:.2f}", row
    assert not any("→" in r[column] for r in rows[2:] if r[3] != "takd")
    line = environment_line(s3)
    assert "cifar10-jpeg JPEG re-encoded CIFAR-10" in line and " and smoke subset of Fashion-MNIST" in line, line


def test_a_training_that_learned_nothing_is_named():
    """DKD without its ramp collapsed resnet20 to one answer (val 10 % from epoch 2, loss finite,
    so no TrainingFault): a result whose model is no better than always answering the most common
    test class is named in the run's log and on the page."""
    from kdbench.report_notes import at_chance_note
    from kdbench.results import at_chance

    from .conftest import SMOKE_RESULTS

    trained = json.loads(next(SMOKE_RESULTS.glob("*__kd__s0.json")).read_text())
    assert at_chance(trained) == [] and at_chance_note({"c": trained}) is None
    support = [c["support"] for c in trained["report"]["per_class"]]
    base, n = max(support) / sum(support), sum(support)
    key = next(k for k in trained["metrics"] if k.startswith("test_top1_"))
    collapsed = json.loads(json.dumps(trained))
    collapsed["metrics"][key] = base
    assert at_chance(collapsed) == [f"student {100 * base:.2f} % against {100 * base:.2f} % for always the most common test class"]
    collapsed["metrics"][next(k for k in trained["metrics"] if k.startswith("teacher_test_top1_"))] = base + 1 / n
    assert at_chance(collapsed)[0].startswith(f"teacher {100 * (base + 1 / n):.2f} %, student"), "one image above: still chance"
    collapsed["metrics"][key] = base + 2 / n
    assert at_chance(collapsed)[0].startswith("teacher ") and "student" not in at_chance(collapsed)[0]
    note = at_chance_note({"a": trained, "b": collapsed})
    assert note.startswith("**Learned nothing** in 1 finished cell(s)") and "`b`: teacher" in note and "`a`" not in note
