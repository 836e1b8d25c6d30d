"""Benchmark baselines: ratios, regressions past the threshold, noise, machine matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdbench.bench_compare import compare, noise, threshold_for
from kdbench.cli import main
from kdbench.errors import KDBenchError

REPO = Path(__file__).resolve().parents[1]


def run_file(path: Path, medians: dict[str, float], gpu: str | None = "NVIDIA H100 80GB HBM3", torch_version: str = "2.11.0") -> Path:
    """A file in pytest-benchmark's JSON layout, with the machine info our conftest adds."""
    data = {"machine_info": {"cpu": {"brand_raw": "Some CPU"}, "kdbench": {"gpu": gpu, "torch": torch_version}},
            "benchmarks": [{"fullname": k, "name": k, "stats": {"median": v}} for k, v in medians.items()]}
    path.write_text(json.dumps(data))
    return path


def test_regression_beyond_threshold_only(tmp_path):
    base = run_file(tmp_path / "base.json", {"a": 1.0, "b": 1.0, "c": 1.0, "gone": 1.0})
    new = run_file(tmp_path / "new.json", {"a": 1.09, "b": 1.11, "c": 0.5, "added": 1.0})
    table, regressions = compare(base, new, 0.10)
    assert regressions == ["b: 1.11× the baseline's median (1,110,000.0 µs vs 1,000,000.0 µs; threshold 10 %)"]
    lines = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "same" in lines["a"] and "SLOWER" in lines["b"] and "faster" in lines["c"]
    assert "only in baseline" in lines["gone"] and "only in new run" in lines["added"]


def test_runs_from_different_machines_are_not_compared(tmp_path):
    base = run_file(tmp_path / "base.json", {"a": 1.0})
    new = run_file(tmp_path / "new.json", {"a": 1.0}, gpu="NVIDIA H200")
    with pytest.raises(KDBenchError, match="compare runs from the same machine"):
        compare(base, new, 0.1)


def test_noise_is_the_spread_between_repeated_runs(tmp_path):
    runs = [run_file(tmp_path / f"r{i}.json", {"a": 1.0 + 0.1 * i, "b": 2.0}) for i in range(3)]
    n = noise(runs)
    assert n["benchmarks"] == 2 and n["max_spread"] == pytest.approx(0.2) and n["median_spread"] == pytest.approx(0.1)
    with pytest.raises(KDBenchError, match="at least two runs"):
        noise(runs[:1])


def test_disabled_run_is_a_clear_error(tmp_path):
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"machine_info": {}, "benchmarks": []}))
    with pytest.raises(KDBenchError, match="holds no benchmark timings"):
        compare(empty, empty, 0.1)


def test_cli_picks_the_baseline_of_this_machine_and_fails_on_a_regression(tmp_path, capsys):
    bdir = tmp_path / "benchmarks"
    bdir.mkdir()
    run_file(bdir / "h100.json", {"a": 1.0})
    (bdir / "thresholds.json").write_text(json.dumps({"h100.json": {"threshold": 0.05, "reason": "measured"}}))
    slow = run_file(tmp_path / "slow.json", {"a": 1.2})
    assert main(["bench-compare", str(slow), "--baseline-dir", str(bdir)]) == 1
    assert "1.20× the baseline's median" in capsys.readouterr().err
    ok = run_file(tmp_path / "ok.json", {"a": 1.01})
    assert main(["bench-compare", str(ok), "--baseline-dir", str(bdir)]) == 0
    other = run_file(tmp_path / "other.json", {"a": 9.0}, gpu="NVIDIA H200")
    assert main(["bench-compare", str(other), "--baseline-dir", str(bdir)]) == 0
    assert "nothing to compare" in capsys.readouterr().out
    (bdir / "thresholds.json").write_text("{}")
    assert main(["bench-compare", str(ok), "--baseline-dir", str(bdir)]) == 2
    assert "no threshold for h100.json" in capsys.readouterr().err


def test_saved_thresholds_have_reasons_and_files():
    entries = json.loads((REPO / "benchmarks" / "thresholds.json").read_text())
    for name, entry in entries.items():
        assert (REPO / "benchmarks" / name).exists(), name
        assert 0 < entry["threshold"] < 5 and "measured" in entry["reason"]
        assert threshold_for(REPO / "benchmarks" / name, REPO / "benchmarks" / "thresholds.json")[0] == entry["threshold"]


def test_bench_tables_state_ratios_against_the_same_runs_baseline(tmp_path):
    from kdbench.bench_report import bench_tables

    def b(name, median, **extra):
        return {"name": name, "fullname": name, "stats": {"median": median}, "extra_info": extra}

    data = {"machine_info": {"kdbench": {"gpu": "G", "torch": "t"}}, "datetime": "now", "benchmarks": [
        b("test_train_step_throughput[m-fp32]", 2e-3, model="m", precision="fp32", batch=8),
        b("test_train_step_throughput[m-bf16]", 1e-3, model="m", precision="bf16", batch=8),
        b("test_forward_throughput[m-fp32]", 4e-3, model="m", precision="fp32", batch=8),
        b("test_kd_train_step[bf16-True]", 5e-3, precision="bf16", deterministic=True, batch=256),
        b("test_kd_train_step_graphed[bf16]", 1e-3, precision="bf16", deterministic=True, batch=256, graphed=True),
        b("test_suite_model_forward[r-3x32-fp32]", 2e-3, model="r", precision="fp32", batch=8, input="3×32×32"),
        b("test_suite_model_forward[r-1x28-fp32]", 1e-3, model="r", precision="fp32", batch=8, input="1×28×28"),
        b("test_suite_model_forward[r-1x28-bf16]", 0.4e-3, model="r", precision="bf16", batch=8, input="1×28×28"),
    ]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    page = bench_tables(path)
    train = page[page.index("## Training step"):]
    assert "2.00×" in train and "1.00×" in page[page.index("## Inference"):page.index("## Training step")]
    suite_models = page[page.index("## Inference throughput, the suites'"):page.index("## KD training step")]
    # each input its own fp32 baseline: 1.0 / 0.4, not 2.0 / 0.4 against the other input's
    [bf16_row] = [line for line in suite_models.splitlines() if "| 1×28×28 | bf16" in line]
    assert bf16_row.rstrip(" |").endswith("2.50×"), suite_models
    assert "| input" not in page[:page.index("## Inference throughput, the suites'")], "the 32×32 tables keep their columns"
    kd_step = page[page.index("## KD training step"):]
    assert "| eager      |" in kd_step and "| CUDA graph |" in kd_step and "5.00×" in kd_step, "the graph against the eager deterministic step"
    committed = bench_tables(REPO / "benchmarks" / "cuda-sm90-h100.json")
    assert "## Inference throughput" in committed and "## KD loss, forward + backward" in committed
    assert "12 of 12 rows are bound by the host" in committed, "H100 KD-loss calls of ~0.7 ms against a floor of at most 4 µs"
    assert "bound by the host" not in page, "no GPU time recorded: nothing to say"


def test_noise_saves_a_baseline_with_its_threshold_and_compare_finds_it(tmp_path, capsys):
    runs = [run_file(tmp_path / f"run{i}.json", {"a": 1.0 + d, "b": 2.0}) for i, d in enumerate((0.0, 0.08, 0.03))]
    bdir = tmp_path / "benchmarks"
    assert main(["bench-noise", *map(str, runs), "--save", "h100-kd", "--baseline-dir", str(bdir), "--command", "pytest -m benchmark"]) == 0
    assert "threshold 10 %" in capsys.readouterr().out  # the largest spread, 8 %, rounded up to 5 %
    entry = json.loads((bdir / "thresholds.json").read_text())["h100-kd.json"]
    assert entry["threshold"] == 0.10 and "max 8.0 %" in entry["reason"] and "`pytest -m benchmark`" in entry["reason"]
    assert (bdir / "h100-kd.json").read_bytes() == runs[0].read_bytes()
    assert main(["bench-noise", *map(str, runs), "--save", "h100-kd", "--baseline-dir", str(bdir)]) == 2
    assert "h100-kd.json exists: a saved baseline is replaced only by hand" in capsys.readouterr().err
    slower = run_file(tmp_path / "new.json", {"a": 1.2, "b": 2.0})
    assert main(["bench-compare", str(slower), "--baseline-dir", str(bdir)]) == 1
    assert "against " + str(bdir / "h100-kd.json") in capsys.readouterr().out


def test_compare_picks_the_baseline_of_this_machine_that_shares_most_benchmarks(tmp_path, capsys):
    bdir = tmp_path / "benchmarks"
    bdir.mkdir()
    full = run_file(bdir / "a-full.json", {"kd": 1.0, "fwd": 1.0, "step": 1.0})
    run_file(bdir / "z-kd-only.json", {"kd": 1.0})  # sorts last, shares less
    run_file(bdir / "other-gpu.json", {"kd": 1.0, "fwd": 1.0, "step": 1.0}, gpu="NVIDIA H200")
    (bdir / "thresholds.json").write_text(json.dumps({n: {"threshold": 0.2, "reason": "test"} for n in ("a-full.json", "z-kd-only.json")}))
    new = run_file(tmp_path / "new.json", {"kd": 1.0, "fwd": 1.0, "step": 1.05})
    assert main(["bench-compare", str(new), "--baseline-dir", str(bdir)]) == 0
    assert f"against {full}" in capsys.readouterr().out


def test_each_benchmark_family_gets_the_threshold_its_own_noise_sets(tmp_path, capsys):
    """A noisy, launch-bound KD loss must not widen the threshold of a steady training step."""
    spreads = {"t.py::test_loss[a]": 0.5, "t.py::test_loss[b]": 0.1, "t.py::test_step[x]": 0.02}
    runs = [run_file(tmp_path / f"run{i}.json", {n: 1.0 + s * i for n, s in spreads.items()}) for i in (0, 1)]
    bdir = tmp_path / "benchmarks"
    assert main(["bench-noise", *map(str, runs), "--save", "g", "--baseline-dir", str(bdir)]) == 0
    assert "t.py::test_loss: max 50.0 %" in capsys.readouterr().out
    entry = json.loads((bdir / "thresholds.json").read_text())["g.json"]
    assert entry["threshold"] == 0.5 and entry["families"] == {"t.py::test_loss": 0.5, "t.py::test_step": 0.05}
    new = run_file(tmp_path / "new.json", {"t.py::test_loss[a]": 1.4, "t.py::test_loss[b]": 1.4, "t.py::test_step[x]": 1.1})
    assert main(["bench-compare", str(new), "--baseline-dir", str(bdir)]) == 1
    out = capsys.readouterr()
    assert "per family: t.py::test_loss 50 %, t.py::test_step 5 %" in out.out
    assert "t.py::test_step[x]: 1.10×" in out.err and "test_loss[a]:" not in out.err
    # Baselines saved before families were measured keep their single threshold.
    assert compare(bdir / "g.json", new, 0.5)[1] == []


def test_a_launch_mode_is_its_own_family(tmp_path):
    """The graphed loss (steady) must not inherit the eager loss's wide threshold (H100, 2026-11-26:
    98 % against 9 %); a baseline whose families predate launch modes still guards every mode."""
    spreads = {"t.py::test_loss[128-10-fp32-eager]": 0.9, "t.py::test_loss[128-10-fp32-graphed]": 0.04,
               "t.py::test_loss[1024-10-bf16-graphed]": 0.08, "t.py::test_step[fp32]": 0.02}
    runs = [run_file(tmp_path / f"run{i}.json", {n: 1.0 + s * i for n, s in spreads.items()}) for i in (0, 1)]
    assert noise(runs)["family_max_spread"] == pytest.approx(
        {"t.py::test_loss[eager]": 0.9, "t.py::test_loss[graphed]": 0.08, "t.py::test_step": 0.02})
    bdir = tmp_path / "benchmarks"
    assert main(["bench-noise", *map(str, runs), "--save", "g", "--baseline-dir", str(bdir)]) == 0
    threshold, _, families = threshold_for(bdir / "g.json", bdir / "thresholds.json")
    assert families == {"t.py::test_loss[eager]": 0.9, "t.py::test_loss[graphed]": 0.1, "t.py::test_step": 0.05}
    new = run_file(tmp_path / "new.json", {n: 1.5 for n in spreads})
    regressions = compare(bdir / "g.json", new, threshold, families)[1]
    assert [r.split(":")[2] for r in regressions] == ["test_loss[1024-10-bf16-graphed]", "test_loss[128-10-fp32-graphed]", "test_step[fp32]"]
    # Families keyed by test function alone (saved before 2026-11-26) apply to every launch mode.
    old = compare(bdir / "g.json", new, 0.05, {"t.py::test_loss": 0.6})[1]
    assert [r.split(":")[2] for r in old] == ["test_step[fp32]"]
