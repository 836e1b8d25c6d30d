"""Inference speed of a trained model: single-image latency (what a deployed student costs per
request) and the timed passes over the test split that give the batch throughput the runner
records, each with the spread of its timings."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn as nn

from . import precision as prec
from .spread import relative_spread
from .train import DeviceData

T = TypeVar("T")

TEST_PASSES = 3  # the pass that gives the test logits and two more: a median and a spread (spread.MIN_VALUES)
LATENCY_WARMUP = 5  # untimed forwards first: allocator, cuDNN algorithm choice, compilation
LATENCY_RUNS = 30


@torch.no_grad()
def single_image_latency(model: nn.Module, data: DeviceData, policy: prec.Policy, device: torch.device,
                         warmup: int = LATENCY_WARMUP, runs: int = LATENCY_RUNS) -> dict:
    """Median and 90th-percentile wall time of one forward pass on one image (the split's
    first), in eval mode and the cell's precision, synchronised with the GPU around each pass,
    and the passes' spread (``spread.relative_spread``: one pass cut by the scheduler does not
    inflate it), so a change of the median between two runs can be judged against the noise
    each run measured; the model's mode is left as it was."""
    was_training = model.training
    model.eval()
    x = data.normalise(next(iter(data.batches(None, [1]))))
    times = []
    try:
        for i in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            with prec.autocast(policy, device):
                model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(1e3 * (time.perf_counter() - t0))
    finally:
        model.train(was_training)
    times.sort()
    spread = relative_spread(times)
    return {"batch1_median_ms": round(statistics.median(times), 4), "batch1_p90_ms": round(times[round(0.9 * (len(times) - 1))], 4),
            "batch1_spread": None if spread is None else round(spread, 4), "runs": runs, "warmup": warmup}


def timed_passes(run_pass: Callable[[], T], device: torch.device, passes: int = TEST_PASSES) -> tuple[T, list[float]]:
    """``run_pass`` run ``passes`` times, synchronised with the GPU around each: the first
    pass's result and every pass's seconds. Their median times the test split, not one pass
    (which a first pass's warm-up or a scheduler's cut decides), and their spread is the noise
    ``kdbench diff`` judges a throughput change against."""
    seconds: list[float] = []
    first = None
    for i in range(passes):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = run_pass()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - t0)
        if i == 0:
            first = out
    return first, seconds


def throughput(images: int, seconds: list[float]) -> dict:
    """Images per second at the median pass, and the passes' spread (None below 3 passes)."""
    spread = relative_spread(seconds)
    return {"images_per_s": round(images / statistics.median(seconds), 1), "spread": None if spread is None else round(spread, 4),
            "passes": len(seconds)}
