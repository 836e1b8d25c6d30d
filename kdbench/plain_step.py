"""The plain training step that the throughput benchmark (tests/test_bench.py) and the step
trace (tools/step_trace.py) time: forward, cross-entropy, backward, SGD with momentum, under a
precision's autocast and gradient scaler. Not the runner's step (kdbench.train.fit adds data,
augmentation, KD and checks): one shared definition so the two measure the same thing."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import precision as prec
from .models import build_model


def plain_train_step(model: torch.nn.Module, policy: prec.Policy, device: torch.device, x: torch.Tensor,
                     y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = prec.grad_scaler(policy, device)

    def step() -> None:
        with prec.autocast(policy, device):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def plain_step_on_random_batch(model_name: str, precision: str, device: torch.device, batch: int, channels: int = 3,
                               classes: int = 10, image_size: int = 32) -> Callable[[], None]:
    """``plain_train_step`` of a registered model, built afresh from seed 0, on one random batch
    already on the device, with the precision's global flags and deterministic kernels on, as in a
    real run. The caller turns ``torch.use_deterministic_algorithms`` off again when done."""
    policy = prec.get_policy(precision, device)
    prec.apply_global_flags(policy)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    model = build_model(model_name, channels, classes, image_size).to(device).train()
    x = torch.randn(batch, channels, image_size, image_size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    return plain_train_step(model, policy, device, x, y)
