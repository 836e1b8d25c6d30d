"""The plain training step that the throughput benchmark (tests/test_bench.py) and the step
trace (tools/step_trace.py) time: forward, cross-entropy, backward, SGD with momentum, under a
precision's autocast and gradient scaler. Not the runner's step (kdbench.train.fit adds data,
augmentation, KD and checks): one shared definition so the two measure the same thing."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import precision as prec


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
