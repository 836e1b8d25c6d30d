"""Where one model's training step spends its time: on the host (Python, dispatch, kernel
launches) or on the device. Prints one JSON line per model.

The step is kdbench.plain_step's, the one tests/test_bench.py's training-step benchmark times
(forward, cross-entropy, backward, SGD with momentum; the precision's autocast and flags;
deterministic kernels, as in a run), on random 32×32 data already on the device. After warm-up
it is timed for --steps steps (wall, synchronised), then the same number of steps run under
torch.profiler, which gives the kernels a step and their summed duration: the device's busy
time. busy / wall well below 1 means the GPU waits on the host, so CUDA graphs or
torch.compile are the lever, not faster kernels.
Why: the canonical recipe's resnet56 at batch 64 took ~35 ms a step on the H200 (2026-11-27),
~1 TFLOP/s, and this says where that goes. On a CPU only the wall time and the operator count
are reported.

    python tools/step_trace.py --model resnet56 --batch 64 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdbench.determinism import pick_device  # noqa: E402
from kdbench.errors import KDBenchError  # noqa: E402
from kdbench.models import MODELS  # noqa: E402
from kdbench.plain_step import plain_step_on_random_batch  # noqa: E402


def trace_step(model_name: str, batch: int, precision: str, device: torch.device, steps: int, warmup: int,
               channels: int = 3, classes: int = 10, image_size: int = 32) -> dict:
    step = plain_step_on_random_batch(model_name, precision, device, batch, channels, classes, image_size)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    try:
        for _ in range(warmup):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        wall_ms = (time.perf_counter() - t0) * 1e3 / steps
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(steps):
                step()
            sync()
    finally:
        torch.use_deterministic_algorithms(False)
    events = prof.events()
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    ops = [e for e in events if e.device_type == DeviceType.CPU and e.name.startswith("aten::") and e.cpu_parent is None]
    row = {"model": model_name, "batch": batch, "precision": precision, "device": str(device),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "torch": torch.__version__,
           "steps": steps, "wall_ms_per_step": round(wall_ms, 3),
           "top_level_ops_per_step": round(len(ops) / steps, 1), "kernels_per_step": None, "busy_ms_per_step": None,
           "busy_over_wall": None}
    if kernels:
        busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1e3 / steps
        row.update(kernels_per_step=round(len(kernels) / steps, 1), busy_ms_per_step=round(busy_ms, 3),
                   busy_over_wall=round(busy_ms / wall_ms, 3))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", help="a registered model (repeat for several; default: the canonical "
                   "recipe's resnet56 and resnet20)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64, the canonical recipe's)")
    p.add_argument("--precision", default="bf16", help="fp32, tf32, bf16 or fp16 (default bf16)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--steps", type=int, default=20, help="steps timed, then steps profiled (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="steps before timing (default 5)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1:
        p.error("--steps and --batch must be at least 1")
    models = args.model or ["resnet56", "resnet20"]
    unknown = [m for m in models if m not in MODELS.names()]
    if unknown:  # before any model runs, with the registered names
        print(f"step_trace: {MODELS.unknown_message(unknown[0])}", file=sys.stderr)
        return 2
    try:
        device = pick_device(args.device)
        for name in models:
            print(json.dumps(trace_step(name, args.batch, args.precision, device, args.steps, args.warmup)), flush=True)
    except KDBenchError as e:
        print(f"step_trace: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
