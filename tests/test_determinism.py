"""The same cell trained twice, in fresh processes, gives bitwise-identical weights and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

CELL = "fmnist-smoke__cnn_medium__cnn_tiny__*__kd__s0"


def run_cell(tmp, tag: str, device: str, *overrides: str) -> dict:
    env = dict(os.environ, KDBENCH_CACHE=str(tmp / f"cache-{tag}"))
    cmd = [sys.executable, "-m", "kdbench", "run", "suites/smoke.yaml", "--cells", CELL, "--device", device,
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
    assert_identical(run_cell(tmp_path, "a", "cpu"), run_cell(tmp_path, "b", "cpu"))


@pytest.mark.gpu
def test_cuda_runs_are_bitwise_identical(tmp_path, cuda):
    # Every GPU precision, with augmentation so the teacher also runs every step.
    over = ("matrix.precisions=[fp32, tf32, bf16, fp16]", "student.augment=[flip, crop]", "teacher.augment=[flip, crop]")
    assert_identical(run_cell(tmp_path, "a", "cuda", *over), run_cell(tmp_path, "b", "cuda", *over))
