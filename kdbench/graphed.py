"""CUDA graphs for a training step (the recipe's ``cuda_graph`` option).

The canonical recipe's resnet56 step at batch 64 launches ~1,900 kernels and keeps an H200
busy a quarter of the step (tools/step_trace.py, 2026-11-27): the host's dispatch decides the
speed. Here the student's training forward and backward, and the teacher's forward where it
runs every step, are each captured once for the full batch (torch.cuda.make_graphed_callables)
and replayed, one launch each; the loss, the optimiser and the bookkeeping stay eager, so the
LR schedule, the gradient scaler and the non-finite check work as in any step. A batch of
another shape (an epoch's last, smaller one) runs the model eagerly.

The replays run the kernels the eager step runs, on the same inputs: the warm-up passes that
capture needs move BatchNorm's running statistics and draw dropout masks, so the model's state
and the CUDA generator's are put back after capture. A replay then takes its random numbers
from the generator's seed and offset at replay time and advances the offset by what the
captured kernels draw (PyTorch's graph-safe Philox state), as the eager kernels would: a graphed
step trains as the eager step does, dropout included (tests/test_determinism.py checks both
bitwise on a GPU)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from . import precision as prec
from .errors import TrainingFault


class GraphedStep:
    """The student's (and a per-step teacher's) forward for one training, graphed for inputs of
    ``shape``; ``close()`` gives the student its own forward back."""

    def __init__(self, model: nn.Module, teacher: nn.Module | None, shape: torch.Size, memory_format: torch.memory_format,
                 policy: prec.Policy, device: torch.device, stage: str):
        self.model, self.shape = model, tuple(shape)
        self.eager_forward = model.forward
        self.teacher = teacher
        sample = torch.zeros(self.shape, device=device).contiguous(memory_format=memory_format)
        kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
        rng = torch.cuda.get_rng_state(device)
        try:
            # Autocast's cast cache cannot outlive a capture; without it the casts are the same.
            with prec.autocast(policy, device, cache=False):
                # allow_unused_input: a parameter the forward leaves unused gets no gradient, as in
                # the eager step.
                torch.cuda.make_graphed_callables(model, (sample,), allow_unused_input=True)
                self.graphed_teacher = (torch.cuda.make_graphed_callables(lambda x: teacher(x), (sample.clone(),), allow_unused_input=True)
                                        if teacher is not None else None)
        except Exception as e:  # a model whose forward cannot be captured (a host sync, a data-dependent shape)
            self.close()
            raise TrainingFault(f"{stage}: cuda_graph: the model's training step cannot be captured in a CUDA graph "
                                f"({type(e).__name__}: {e}); run it without cuda_graph", stage=stage) from None
        with torch.no_grad():  # in place: the graphs keep these tensors' addresses
            model.load_state_dict(kept)
        torch.cuda.set_rng_state(rng, device)

    def student(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if tuple(x.shape) == self.shape else self.eager_forward(x)

    def teacher_forward(self, x: torch.Tensor) -> torch.Tensor:
        fn: Callable = self.graphed_teacher if self.graphed_teacher is not None and tuple(x.shape) == self.shape else self.teacher
        return fn(x)

    def close(self) -> None:
        self.model.__dict__.pop("forward", None)  # make_graphed_callables set it on the instance
