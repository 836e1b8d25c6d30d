"""Gradient checkpointing (S3's memory saving, the recipe's ``grad_checkpointing``): a timm
model keeps only each block's input in the forward pass and recomputes the block's forward in
the backward pass, trading one more forward for the activation memory.

PyTorch's checkpoint re-runs BatchNorm in training mode during that recomputation, so each
BatchNorm inside a checkpointed block updates its running statistics twice a step
(pytorch/pytorch#96136): the gradients are the same, the eval-mode model is not. While
``gradient_checkpointing`` is active, a BatchNorm called during the backward pass (that is
the recomputation) normalises by the batch's statistics, as its call in the forward pass did,
and leaves its running statistics and step count as they were; a BatchNorm a model calls
twice in its own forward updates them twice, as without the option. A run with the option
then trains bitwise as one without it (tests/test_recompute.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn

from .errors import KDBenchError


def supports_gradient_checkpointing(model: nn.Module) -> bool:
    """timm models do (``set_grad_checkpointing``); kdbench's own small CNNs do not."""
    return callable(getattr(model, "set_grad_checkpointing", None))


@contextlib.contextmanager
def gradient_checkpointing(model: nn.Module, stage: str) -> Iterator[None]:
    """Turn the model's gradient checkpointing on for the ``with`` block, with BatchNorm's
    running statistics updated once a step; everything is as before afterwards."""
    if not supports_gradient_checkpointing(model):
        raise KDBenchError(f"{stage}: {type(model).__name__} has no gradient checkpointing (timm models have it); "
                           "drop grad_checkpointing from this stage's recipe")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    # A recomputing BatchNorm runs with momentum 0: running ← 1·running + 0·batch, the same
    # bits (batch statistics are finite while the loss is). Its step count, which the call
    # still raises, is put back. (Leaving the running statistics out of the call instead
    # changes what it saves for the backward pass, which checkpoint refuses.)
    pending: dict[int, tuple[nn.Module, float | None, torch.Tensor]] = {}

    def put_back(norm_ids) -> None:
        for i in list(norm_ids):
            norm, momentum, batches = pending.pop(i)
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(batches)

    def new_forward(_model, _args) -> None:
        # Also here, not only after each BatchNorm: a recomputation that PyTorch stops early
        # (once it has what the backward needs) may end inside a BatchNorm's call.
        put_back(pending)

    def before_norm(norm, _args) -> None:
        # The autograd engine sets a graph task id while it runs a backward pass, and only
        # there; checkpoint (reentrant or not) recomputes inside it. Counting calls per forward
        # instead would take a BatchNorm a model uses twice for a recomputation.
        if norm.training and torch._C._current_graph_task_id() != -1:
            pending[id(norm)] = (norm, norm.momentum, norm.num_batches_tracked.clone())
            norm.momentum = 0.0

    def after_norm(norm, _args, _out) -> None:
        if id(norm) in pending:
            put_back([id(norm)])

    hooks = [model.register_forward_pre_hook(new_forward)]
    for norm in norms:
        hooks += [norm.register_forward_pre_hook(before_norm), norm.register_forward_hook(after_norm)]
    model.set_grad_checkpointing(True)
    try:
        yield
    finally:
        model.set_grad_checkpointing(False)
        put_back(pending)
        for h in hooks:
            h.remove()
