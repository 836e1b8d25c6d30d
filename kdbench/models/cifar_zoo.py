"""The CIFAR model zoo of KD papers (CRD, Tian et al. 2020; DKD, Zhao et al. 2022), written
from the architectures those papers' public code defines: resnet8x4 / resnet32x4 /
resnet20 / resnet56 (3-stage CIFAR ResNets), wrn_16_2 / wrn_40_2 (wide ResNets with
pre-activation blocks) and vgg8 / vgg13 (CIFAR VGG with BatchNorm).

Published parameter counts (CIFAR-100 heads) are in ``PUBLISHED_PARAMS_CIFAR100``;
tests/test_models.py checks ours against them. The VGGs end in a global mean, not
torchvision's AdaptiveAvgPool2d((7, 7)), whose CUDA backward has no deterministic kernel."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from . import register_model

PUBLISHED_PARAMS_CIFAR100 = {
    "resnet8x4": 1.23e6, "resnet32x4": 7.43e6, "resnet20": 0.28e6, "resnet56": 0.86e6,
    "wrn_16_2": 0.70e6, "wrn_40_2": 2.26e6, "vgg8": 3.96e6, "vgg13": 9.46e6,
}


class Block(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus identity or 1×1-conv-BN shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.down is None else self.down(x)))


class CifarResNet3(nn.Module):
    """depth = 6n + 2; filters = (stem, stage1, stage2, stage3)."""

    def __init__(self, depth: int, filters: tuple[int, int, int, int], in_chans: int, num_classes: int):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_chans, filters[0], 3, 1, 1, bias=False), nn.BatchNorm2d(filters[0]), nn.ReLU(inplace=True))
        blocks, c = [], filters[0]
        for stage, w in enumerate(filters[1:]):
            for j in range(n):
                blocks.append(Block(c, w, 2 if (stage > 0 and j == 0) else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.short = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (x if self.short is None else self.short(o))


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, in_chans: int, num_classes: int):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        blocks, c = [], widths[0]
        for stage, w in enumerate(widths[1:]):
            for j in range(n):
                blocks.append(PreActBlock(c, w, 2 if (stage > 0 and j == 0) else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.blocks(self.conv1(x)))).mean((2, 3)))


VGG_CFG = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
}


class CifarVGG(nn.Module):
    """Five conv stages with BN; 2×2 max-pool after the first four; global mean; linear."""

    def __init__(self, cfg: list[list[int]], in_chans: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, stage in enumerate(cfg):
            for w in stage:
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            if i < len(cfg) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def _reg(name: str, desc: str, make):
    register_model(name, desc)(lambda in_chans, num_classes, image_size: make(in_chans, num_classes))


_reg("resnet8x4", "CIFAR ResNet-8, filters 32-64-128-256 (CRD zoo)", lambda c, k: CifarResNet3(8, (32, 64, 128, 256), c, k))
_reg("resnet32x4", "CIFAR ResNet-32, filters 32-64-128-256 (CRD zoo)", lambda c, k: CifarResNet3(32, (32, 64, 128, 256), c, k))
_reg("resnet20", "CIFAR ResNet-20, filters 16-16-32-64", lambda c, k: CifarResNet3(20, (16, 16, 32, 64), c, k))
_reg("resnet56", "CIFAR ResNet-56, filters 16-16-32-64", lambda c, k: CifarResNet3(56, (16, 16, 32, 64), c, k))
_reg("wrn_16_2", "Wide ResNet 16-2", lambda c, k: WideResNet(16, 2, c, k))
_reg("wrn_40_2", "Wide ResNet 40-2", lambda c, k: WideResNet(40, 2, c, k))
_reg("vgg8", "CIFAR VGG-8 with BN", lambda c, k: CifarVGG(VGG_CFG["vgg8"], c, k))
_reg("vgg13", "CIFAR VGG-13 with BN", lambda c, k: CifarVGG(VGG_CFG["vgg13"], c, k))
# S2's teacher: VGG16 in the CIFAR form (global mean, not torchvision's 7×7 adaptive pool,
# so it trains under deterministic CUDA kernels).
_reg("vgg16", "CIFAR VGG-16 with BN", lambda c, k: CifarVGG(VGG_CFG["vgg16"], c, k))
