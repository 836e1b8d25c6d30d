"""How much slower a bf16 training step is than fp32 on this CPU (kdbench.cpu_bf16 cites it).

    python tools/bf16_cpu_speed.py [--model timm/resnet18] [--batch 128] [--steps 3]

One model from kdbench's registry at Fashion-MNIST's shape (1×28×28, 10 classes), AdamW, the
median of ``--steps`` timed steps after one warm-up step per precision, fp32 timed before and
after bf16 so that a machine whose speed drifts shows it. Keep other work off the CPU while it
runs (a training beside it halves both figures, not their ratio)."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdbench.cpu_bf16 import fast_bf16
from kdbench.determinism import cpu_model
from kdbench.models import build_model


def step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="timm/resnet18")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = build_model(a.model, in_chans=1, num_classes=10, image_size=28)
    x, y = torch.randn(a.batch, 1, 28, 28), torch.randint(0, 10, (a.batch,))
    fp32 = step_seconds(model, x, y, False, a.steps)
    bf16 = step_seconds(model, x, y, True, a.steps)
    fp32_after = step_seconds(model, x, y, False, a.steps)
    print(f"{cpu_model()}, {torch.backends.cpu.get_cpu_capability()} kernels, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"oneDNN bf16 support: {fast_bf16()}")
    print(f"{a.model}, batch {a.batch}, 1x28x28, one training step (median of {a.steps}): fp32 {fp32:.3f} s "
          f"(again after bf16: {fp32_after:.3f} s), bf16 {bf16:.3f} s: bf16 takes {bf16 / min(fp32, fp32_after):.1f}x fp32's time")


if __name__ == "__main__":
    main()
