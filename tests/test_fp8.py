"""FP8: simulated e4m3 evaluation, torchao fp8 training of Linear layers (CPU emulation here,
real fp8 matmuls on Ada/Hopper), and cells that cannot run recorded as unsupported."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from kdbench.fp8 import E4M3_MAX, fake_quant_e4m3, fp8_simulated, fp8_training_unsupported, no_fp8_layers_reason, to_fp8_training
from kdbench.models import build_model

from .test_cli import QUICK, kdbench


def test_fake_quant_keeps_the_max_and_rounds_to_three_mantissa_bits():
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 7
    q = fake_quant_e4m3(x)
    i = int(x.abs().argmax())
    assert q[i] == x[i], "the largest magnitude maps to e4m3's largest value and back exactly"
    scale = E4M3_MAX / x.abs().max()
    normal = (x.abs() * scale) >= 2.0**-6  # e4m3's smallest normal
    rel = ((q - x).abs() / x.abs())[normal]
    assert float(rel.max()) <= 2.0**-4 + 1e-6, "round to nearest with 3 mantissa bits: at most half an ulp (2^-4)"
    assert float(rel.max()) > 0, "values really are rounded"
    assert torch.equal(fake_quant_e4m3(q), q), "rounding is idempotent"
    assert torch.equal(fake_quant_e4m3(torch.zeros(3)), torch.zeros(3))


def test_fp8_simulation_leaves_the_model_alone_and_stays_close():
    torch.manual_seed(0)
    model = build_model("cnn_small", 1, 10, 28).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(64, 1, 28, 28)
    ref = model(x)
    sim = fp8_simulated(model)(x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(sim, ref)
    # Two e4m3 roundings per layer (≤ 6 % each) through five layers: logits stay correlated.
    assert torch.corrcoef(torch.stack([sim.flatten(), ref.flatten()]))[0, 1] > 0.98


def test_fp8_simulation_of_a_compiled_model_is_quantised():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = torch.randn(32, 16)
    eager_sim = fp8_simulated(model)(x)
    # A compiled student (recipe.compile) is simulated through a copy: the copy must run the
    # quantised layers, not the original's compiled function (torch drops it when copying).
    model.compile(backend="eager")  # no C compiler needed: what matters is the compiled wrapper
    compiled_sim = fp8_simulated(model)(x)
    assert torch.equal(compiled_sim, eager_sim)
    assert not torch.equal(compiled_sim, model(x))


def test_fp8_training_is_unsupported_on_cpu_with_the_reason():
    why = fp8_training_unsupported(torch.device("cpu"))
    assert "needs a CUDA GPU with fp8 matmuls" in why and "this run is on cpu" in why


def test_fp8_training_swaps_eligible_linear_layers_and_trains():
    torch.manual_seed(0)
    vit = build_model("vit_tiny", 3, 10, 32)
    vit, swapped = to_fp8_training(vit, emulate=True)  # torchao's CPU emulation of fp8 matmuls
    assert len(swapped) == 12 * 4, "qkv, proj, fc1, fc2 in each of ViT-Ti's 12 blocks; the 192→10 head is not divisible by 16"
    assert "head" not in swapped
    opt = torch.optim.AdamW(vit.parameters(), lr=1e-3)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(vit(x).float(), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in vit.parameters() if p.grad is not None)


def test_cnn_without_eligible_linear_layers_says_so():
    model, swapped = to_fp8_training(build_model("cnn_small", 1, 10, 28), emulate=True)
    assert swapped == []
    assert "has no Linear layer whose dimensions are both divisible by 16" in no_fp8_layers_reason("cnn_small", model)


@pytest.mark.smoke
def test_fp8_cells_are_recorded_unsupported_and_others_carry_an_fp8_eval(tmp_path):
    args = ["run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny__*__kd__*",
            "--set", "matrix.precisions=[fp32, fp8]", "--set", "split.max_per_class=20", *QUICK]
    proc = kdbench(*args, tmp=tmp_path, check=True)  # unsupported is not a failure: exit 0
    assert "cannot run on this machine (recorded as unsupported" in proc.stderr
    fp8 = json.loads(next((tmp_path / "r" / "smoke").glob("*__fp8__kd__s0.json")).read_text())
    assert fp8["status"] == "unsupported" and "this run is on cpu" in fp8["failure"]["reason"]
    fp32 = json.loads(next((tmp_path / "r" / "smoke").glob("*__fp32__kd__s0.json")).read_text())
    assert 0 <= fp32["fp8_eval"]["test_top1"] <= 1 and "float8_e4m3fn" in fp32["fp8_eval"]["method"]
    assert "fp8 eval (sim)" in proc.stdout and "| unsupported" in proc.stdout
    again = kdbench(*args, tmp=tmp_path, check=True)
    assert "1 already done, 1 to run" in again.stdout, "an unsupported cell is tried again on the next run (maybe on a GPU)"


def test_fp8_training_matmuls_get_inner_dimensions_divisible_by_16(monkeypatch):
    # fp8 matmul kernels on the GPU refuse an inner dimension not divisible by 16; the weight
    # gradient's inner dimension is batch × tokens (here 7 × 5 = 35), which no suite controls.
    # The CPU's scaled matmul has no such limit, so this test records what every fp8 matmul is
    # given, at the point where the GPU kernel would be called. (A ViT's blocks are such Linear
    # layers over tokens; the CPU's fp8 matmul is too slow to run a whole ViT-Ti in a test.)
    import torchao.float8.float8_ops as ops

    inner: list[tuple[int, int]] = []
    original = ops.preprocess_addmm

    def recording(a, b):
        a_data, a_scale, b_data, b_scale = original(a, b)
        inner.append((a_data.shape[1], b_data.shape[0]))
        return a_data, a_scale, b_data, b_scale

    monkeypatch.setattr(ops, "preprocess_addmm", recording)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
    mlp, swapped = to_fp8_training(mlp)  # the real scaled-matmul path, on the CPU
    x = torch.randn(7, 5, 32)
    loss = mlp(x).float().square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert len(inner) == 3 * len(swapped), "output, grad_input and grad_weight matmuls of every fp8 layer"
    assert all(k == n and k % 16 == 0 for k, n in inner), sorted(set(inner))
    assert all(torch.isfinite(p.grad).all() for p in mlp.parameters())
