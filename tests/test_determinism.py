"""The same cell trained twice, in fresh processes, gives bitwise-identical weights and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

CELL = "fmnist-smoke__cnn_medium__cnn_tiny__*__kd__s0"


def run_cell(tmp, tag: str, device: str, *overrides: str, cells: str = CELL) -> dict:
    env = dict(os.environ, KDBENCH_CACHE=str(tmp / f"cache-{tag}"))
    cmd = [sys.executable, "-m", "kdbench", "run", "suites/smoke.yaml", "--cells", cells, "--device", device,
           "--results", str(tmp / f"results-{tag}")]
    for o in overrides:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted((tmp / f"results-{tag}" / "smoke").glob("*.json"))
    return {f.name: json.loads(f.read_text()) for f in files}


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        ra, rb = a[name], b[name]
        assert ra["status"] == rb["status"] == "ok"
        assert ra["teacher"]["weights_sha256"] == rb["teacher"]["weights_sha256"], name
        assert ra["student"]["weights_sha256"] == rb["student"]["weights_sha256"], name
        assert ra["metrics"] == rb["metrics"], name  # exact float equality
        assert [h["train_loss"] for h in ra["student"]["history"]] == [h["train_loss"] for h in rb["student"]["history"]]


@pytest.mark.smoke
def test_cpu_runs_are_bitwise_identical(tmp_path):
    a, b = run_cell(tmp_path, "a", "cpu"), run_cell(tmp_path, "b", "cpu")
    assert_identical(a, b)
    assert {r["config"]["cpu_denormals"] for r in (*a.values(), *b.values())} == {"flushed"}, "the CLI flushes denormals on every thread"


# A fresh process with two torch threads: flush_denormals, then an elementwise op on denormals
# split across both threads. Prints what flush_denormals said and how many results were flushed.
PROBE = """
import torch
torch.set_num_threads(2)
{before}
from kdbench.determinism import DENORMAL_BITS, flush_denormals
state = flush_denormals()
out = torch.full((1 << 23,), DENORMAL_BITS, dtype=torch.int32).view(torch.float32) + 0.0
print(state, int((out == 0).sum()), out.numel())
"""


def probe(before: str = "") -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_denormals_are_flushed_on_every_thread_when_set_first():
    """Set before torch's thread pool starts, the flag holds in every thread: all flushed."""
    state, zeros, n = probe()
    assert state == "flushed" and zeros == n


def test_denormals_are_kept_alike_on_every_thread_when_the_pool_started_before():
    """The pool's threads started before the flag (a parallel op ran first) never see it: then
    it is switched off again, and no thread flushes, rather than only the main one."""
    state, zeros, _ = probe(before="(torch.ones(1 << 23) * 0.9).add_(1.0)  # starts the intra-op threads")
    assert state == "kept" and zeros == "0"


def test_cpu_cells_are_keyed_by_how_denormals_were_computed(tmp_path):
    """A CPU result computed with denormals kept is not current for a runner that flushes them
    (the numbers differ once denormals occur); GPU cells carry no such key."""
    from kdbench.runner import Runner, RunOptions
    from kdbench.suite import load_suite, spec_hash

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    cell = suite.cells()[0]
    runner = Runner(suite, RunOptions(results_dir=tmp_path))
    config = runner.ids.cell_config(cell)
    assert config["cpu_denormals"] == "flushed"  # conftest flushed before any test ran
    kept = dict(config, cpu_denormals="kept")
    assert runner.ids.config_changes(cell, {"status": "ok", "config": kept, "config_hash": spec_hash(kept)}) == ["cpu_denormals"]
    gpu = {k: v for k, v in dict(config, device_class="cuda-sm90").items() if k != "cpu_denormals"}
    assert runner.ids.config_changes(cell, {"status": "ok", "config": gpu, "config_hash": spec_hash(gpu)}) == [], "a GPU result judged on a CPU"


@pytest.mark.gpu
def test_cuda_runs_are_bitwise_identical(tmp_path, cuda):
    # Every GPU precision, with augmentation so the teacher also runs every step.
    over = ("matrix.precisions=[fp32, tf32, bf16, fp16]", "student.augment=[flip, crop]", "teacher.augment=[flip, crop]")
    assert_identical(run_cell(tmp_path, "a", "cuda", *over), run_cell(tmp_path, "b", "cuda", *over))


@pytest.mark.gpu
def test_cuda_speed_options_stay_bitwise_identical(tmp_path, cuda):
    # channels_last, fused optimizer and torch.compile (static shapes) together, bf16, with
    # augmentation: two fresh processes must agree to the bit.
    over = ("matrix.precisions=[bf16]", "student.augment=[flip, crop]", "teacher.augment=[flip, crop]",
            *(f"{role}.{opt}=true" for role in ("teacher", "student") for opt in ("channels_last", "fused_optimizer", "compile")))
    assert_identical(run_cell(tmp_path, "a", "cuda", *over), run_cell(tmp_path, "b", "cuda", *over))


@pytest.mark.gpu
def test_cuda_graph_steps_train_bitwise_as_eager_steps(tmp_path, cuda):
    # cuda_graph replays the eager step's kernels: the same weights to the bit, at each
    # precision, with augmentation (the teacher's forward graphed too) and the epoch's last,
    # smaller batch run eagerly (1,800 images in batches of 64).
    over = ("matrix.precisions=[fp32, bf16, fp16]", "student.augment=[flip, crop]", "teacher.augment=[flip, crop]")
    graphed = (*over, "teacher.cuda_graph=true", "student.cuda_graph=true")
    assert_identical(run_cell(tmp_path, "eager", "cuda", *over), run_cell(tmp_path, "graph", "cuda", *graphed))


@pytest.mark.gpu
def test_cuda_graph_steps_log_the_eager_steps_train_metrics(tmp_path, cuda):
    # A graphed step's logits live in a buffer the next replay overwrites: the per-epoch train
    # metrics must be gathered from copies, so they equal the eager steps' to the bit.
    over = ("student.train_metrics_each_epoch=true", "metrics=[top1, recall_macro, f1_macro, auroc_macro]")
    eager, graph = run_cell(tmp_path, "eager", "cuda", *over), run_cell(tmp_path, "graph", "cuda", *over, "student.cuda_graph=true")
    assert_identical(eager, graph)
    for name in eager:
        rows = [[{k: v for k, v in h.items() if k.startswith("train_")} for h in r[name]["student"]["history"]] for r in (eager, graph)]
        assert rows[0] == rows[1] and "train_f1_macro" in rows[0][-1], name


@pytest.mark.gpu
def test_cuda_grad_checkpointing_trains_bitwise_and_takes_less_memory(tmp_path, cuda):
    # S3's gradient checkpointing on timm ResNets (BatchNorm in every block) at 112×112 in fp32
    # and bf16: the same weights and metrics to the bit as without it, and a lower peak of
    # allocated memory (each epoch's row records the process's peak; the teacher trains in it).
    over = ("matrix.teachers=[timm/resnet34]", "matrix.students=[timm/resnet18]", "matrix.precisions=[fp32, bf16]",
            "data.resize=112", "teacher.epochs=2", "student.epochs=2")
    cell = "fmnist-smoke__timm-resnet34__timm-resnet18__*__kd__s0"
    plain = run_cell(tmp_path, "plain", "cuda", *over, cells=cell)
    checkpointed = run_cell(tmp_path, "ckpt", "cuda", *over, "teacher.grad_checkpointing=true", "student.grad_checkpointing=true", cells=cell)
    assert_identical(plain, checkpointed)
    for name in plain:
        peak = [r[name]["student"]["history"][-1]["max_memory_mib"] for r in (plain, checkpointed)]
        print(f"{name}: peak allocated {peak[0]:,.0f} MiB plain, {peak[1]:,.0f} MiB checkpointed ({peak[1] / peak[0]:.2f}×)")
        assert peak[1] < peak[0], (name, peak)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graph_steps_draw_the_eager_steps_dropout_masks(cuda, precision):
    """The smoke models have no dropout (S5's student has): here a model with BatchNorm and
    dropout trains two epochs of 100 samples in batches of 32 (the last, of 4, eager), with and
    without GraphedStep. Capture's warm-up passes draw masks too; GraphedStep puts the CUDA
    generator back, so the replays draw the eager step's masks and the weights agree to the bit."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from kdbench import precision as prec
    from kdbench.determinism import configure_determinism
    from kdbench.graphed import GraphedStep

    policy = prec.get_policy(precision, cuda)

    def train(graphed: bool) -> list[torch.Tensor]:
        configure_determinism(0)
        data = torch.Generator(device=cuda).manual_seed(1)  # not the default generator dropout draws from
        x, y = torch.randn(100, 1, 28, 28, device=cuda, generator=data), torch.randint(0, 10, (100,), device=cuda, generator=data)
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                              nn.Flatten(), nn.Linear(8 * 28 * 28, 10)).to(cuda)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        step = None
        for _epoch in range(2):
            for i in range(0, 100, 32):
                xb, yb = x[i:i + 32], y[i:i + 32]
                if graphed and step is None:
                    step = GraphedStep(model, None, xb.shape, torch.contiguous_format, policy, cuda, "student")
                with prec.autocast(policy, cuda, cache=step is None):
                    out = model(xb) if step is None else step.student(xb)
                loss = F.cross_entropy(out.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if step is not None:
            step.close()
        return [v.detach().cpu() for v in model.state_dict().values()]

    try:
        eager, graphed = train(False), train(True)
    finally:
        torch.use_deterministic_algorithms(False)  # this process's later tests set their own
    assert len(eager) == len(graphed) and all(torch.equal(a, b) for a, b in zip(eager, graphed, strict=True))


@pytest.mark.gpu
def test_cuda_fp8_training_runs_and_is_bitwise_identical(tmp_path, cuda):
    # ViTs have Linear layers fp8 matmuls can take (qkv, proj, fc1, fc2); on a GPU without fp8
    # matmuls the cells are recorded unsupported instead, which this test reports as a skip.
    over = ("matrix.teachers=[vit_small]", "matrix.students=[vit_tiny]", "matrix.precisions=[fp8]", "split.max_per_class=60")
    env = dict(os.environ, KDBENCH_CACHE=str(tmp_path / "cache-probe"))
    probe = subprocess.run([sys.executable, "-c", "import torch; from kdbench.fp8 import fp8_training_unsupported as f; "
                            "print(f(torch.device('cuda')) or '')"], cwd=REPO, env=env, capture_output=True, text=True)
    if probe.stdout.strip():
        pytest.skip(f"fp8 training cannot run here: {probe.stdout.strip()}")
    cell = "fmnist-smoke__vit_small__vit_tiny__fp8__kd__s0"
    assert_identical(run_cell(tmp_path, "a", "cuda", *over, cells=cell), run_cell(tmp_path, "b", "cuda", *over, cells=cell))
