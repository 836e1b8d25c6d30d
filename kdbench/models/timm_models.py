"""Any timm model by name, ``pretrained=False`` (no weights are fetched), adapted to the
dataset's channels, class count and — for models that take one — image size."""

from __future__ import annotations

import functools

import torch.nn as nn

from ..errors import KDBenchError


@functools.lru_cache(maxsize=1)
def timm_names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def build_timm(name: str, in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    import timm

    if name not in timm_names():
        raise KDBenchError(f"timm has no model {name!r}")
    kwargs = dict(pretrained=False, num_classes=num_classes, in_chans=in_chans)
    # Vision transformers fix their patch grid from img_size; CNNs take no such argument.
    try:
        model = timm.create_model(name, img_size=image_size, **kwargs)
    except TypeError:
        model = timm.create_model(name, **kwargs)
    return model
