"""torchvision models, built with ``weights=None`` (users with weights load them themselves)."""

from __future__ import annotations

import torch.nn as nn

from . import register_model


@register_model("tv_resnet50_dropout", "torchvision ResNet-50 with a dropout(0.5) + linear head (S5's student)")
def tv_resnet50_dropout(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    if in_chans != 3:
        model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(model.fc.in_features, num_classes))
    return model
