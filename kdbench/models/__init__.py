"""Model registry. Every builder takes (in_chans, num_classes, image_size) from the dataset.

Names registered here, plus ``timm/<name>`` for any model timm knows (built with
``pretrained=False``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from ..registry import Registry

Builder = Callable[[int, int, int], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Builder
    description: str


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, description: str = ""):
    def deco(fn: Builder) -> Builder:
        MODELS.add(name, ModelEntry(name, fn, description))
        return fn

    return deco


def known_model_names() -> list[str]:
    """Our own names plus timm's, as ``timm/<name>``, for validation and suggestions."""
    from .timm_models import timm_names

    return MODELS.names() + [f"timm/{n}" for n in timm_names()]


def build_model(name: str, in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    if name.startswith("timm/"):
        from .timm_models import build_timm

        return build_timm(name[len("timm/") :], in_chans, num_classes, image_size)
    return MODELS.get(name).build(in_chans, num_classes, image_size)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, in_chans: int, image_size: int) -> int:
    """FLOPs of one forward pass on one image (torch's FlopCounterMode: 2 per multiply-add,
    convolutions and matmuls only), in eval mode, on a CPU copy of the input's shape."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, in_chans, image_size, image_size, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


from . import cifar_zoo, cnn, resnet_cifar, s1_students, torchvision_models, vit_models  # noqa: E402,F401  (register their models)
