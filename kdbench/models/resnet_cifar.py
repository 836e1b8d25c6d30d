"""CIFAR-style ResNet-18 (He et al. 2016 with the 3×3 stem and no max-pool used for 32×32
inputs in KD papers; 11.17 M parameters for 3 channels and 10 classes)."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from .cifar_zoo import Block  # the same basic block as the CIFAR zoo


class CifarResNet(nn.Module):
    def __init__(self, in_chans: int, num_classes: int, blocks: tuple[int, ...], widths=(64, 128, 256, 512)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers = []
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=False)):
            for j in range(n):
                layers.append(Block(c, w, 2 if (j == 0 and i > 0) else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


@register_model("resnet18_cifar", "ResNet-18 with a 3×3 stem and no max-pool, for 28-64 px inputs")
def resnet18_cifar(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return CifarResNet(in_chans, num_classes, (2, 2, 2, 2))
