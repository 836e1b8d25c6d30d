"""Small plain CNNs: cheap students and a CPU-sized teacher for the smoke suite."""

from __future__ import annotations

import torch.nn as nn

from . import register_model


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class PlainCNN(nn.Module):
    """Stages of ``convs_per_stage`` 3×3 conv-BN-ReLU, 2×2 max-pool between stages, global
    average pool and a linear head. Works at any input size ≥ 2^(stages-1)."""

    def __init__(self, in_chans: int, num_classes: int, widths: tuple[int, ...], convs_per_stage: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(widths):
            for _ in range(convs_per_stage):
                layers += conv_bn(c, w)
                c = w
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))


@register_model("cnn_tiny", "3-stage plain CNN, widths 8-16-32 (student)")
def cnn_tiny(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return PlainCNN(in_chans, num_classes, (8, 16, 32))


@register_model("cnn_small", "3-stage plain CNN, widths 16-32-64 (student)")
def cnn_small(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return PlainCNN(in_chans, num_classes, (16, 32, 64))


@register_model("cnn_medium", "3-stage plain CNN, two convs a stage, widths 32-64-128 (teacher on CPU)")
def cnn_medium(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return PlainCNN(in_chans, num_classes, (32, 64, 128), convs_per_stage=2)
