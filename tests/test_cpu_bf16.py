"""A bf16 run on a CPU without fast bf16 kernels is announced before it trains (measured 20-50x
slower than fp32 on the AMD EPYC these sessions sometimes get)."""

from __future__ import annotations

import pytest
import torch

from kdbench import cpu_bf16
from kdbench.cpu_bf16 import fast_bf16, slow_bf16_warning

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_this_torch_can_tell_whether_the_cpu_has_bf16_kernels():
    # The query is private to torch: when a torch drops it the warning goes silent, and this
    # test says so instead.
    assert fast_bf16() in (True, False)


@pytest.mark.parametrize("fast", [False, True, None])
def test_a_bf16_cell_on_a_cpu_without_bf16_kernels_is_warned_about(monkeypatch, fast):
    monkeypatch.setattr(cpu_bf16, "fast_bf16", lambda: fast)
    text = slow_bf16_warning(["fp32", "bf16"], CPU)
    if fast is False:
        assert text.startswith("[precision] warning: this CPU (")
        assert "the bf16 cells train in reference kernels" in text and cpu_bf16.MEASURED_SLOWDOWN in text
        assert "tools/bf16_cpu_speed.py" in text
    else:
        assert text is None, "fast kernels, or no way to tell: nothing to say"


def test_no_warning_without_bf16_cells_or_off_the_cpu(monkeypatch):
    monkeypatch.setattr(cpu_bf16, "fast_bf16", lambda: False)
    assert slow_bf16_warning(["fp32"], CPU) is None
    assert slow_bf16_warning(["fp8"], CPU) is None, "fp8 cells never train on a CPU (unsupported)"
    assert slow_bf16_warning([], CPU) is None
    assert slow_bf16_warning(["bf16"], CUDA) is None


def test_a_run_says_it_before_its_first_cell(monkeypatch, tmp_path, capsys):
    from kdbench.cli import main

    from .conftest import REPO

    monkeypatch.setattr(cpu_bf16, "fast_bf16", lambda: False)
    code = main(["run", str(REPO / "suites" / "smoke.yaml"), "--tiny", "--set", "matrix.precisions=[bf16]", "--cells", "*__none__s0",
                 "--device", "cpu", "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert code == 0
    assert "[precision] warning: this CPU" in out
    assert out.index("[precision] warning") < out.index("[1/")


def test_the_cost_of_a_suite_says_it_too(monkeypatch, tmp_path, capsys):
    from kdbench.cli import main

    from .conftest import REPO

    monkeypatch.setattr(cpu_bf16, "fast_bf16", lambda: False)
    assert main(["cost", str(REPO / "suites" / "smoke.yaml"), "--set", "matrix.precisions=[bf16]", "--device", "cpu",
                 "--cache", str(tmp_path)]) == 0
    assert "[precision] warning: this CPU" in capsys.readouterr().out
    assert main(["cost", str(REPO / "suites" / "smoke.yaml"), "--device", "cpu", "--cache", str(tmp_path)]) == 0
    assert "[precision] warning" not in capsys.readouterr().out, "the smoke suite is fp32"
