"""Students of S1 (satellite land use: EfficientNet-B4 → five small CNNs) and the S4
residual-block students. S1's code is not available: these follow its descriptions, sized
to the parameter counts it reports at 64×64 RGB with 10 classes (``S1_REPORTED_PARAMS``).
The fully connected students (SimpleNet, StudentNetLight) grow with the input size, as in
the original; the convolutional ones do not."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from .cifar_zoo import Block

S1_REPORTED_PARAMS = {"simplenet": 1.3e6, "student_resnet": 169e3, "student_separable": 151e3, "student_dwskip": 153e3, "student_light": 8.4e6}


class FlatCNN(nn.Module):
    """Two conv-ReLU-maxpool stages, then a hidden fully connected layer."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, widths: tuple[int, int], hidden: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(widths[0], widths[1], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[1] * side * side, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class ResStudent(nn.Module):
    """Stem, then residual blocks (stride 2 where the width changes), global mean, linear."""

    def __init__(self, in_chans: int, num_classes: int, widths: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, c = [], widths[0]
        for w in widths[1:]:
            blocks.append(Block(c, w, 2 if w != c else 1))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class SeparableConv(nn.Module):
    """Depthwise 3×3 then pointwise 1×1, each with BN; a skip where the shapes allow it."""

    def __init__(self, cin: int, cout: int, stride: int, skip: bool):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = skip and cin == cout and stride == 1

    def forward(self, x):
        y = self.bn2(self.pw(F.relu(self.bn1(self.dw(x)))))
        return F.relu(y + x if self.skip else y)


class SeparableStudent(nn.Module):
    def __init__(self, in_chans: int, num_classes: int, plan: tuple[tuple[int, int], ...], skip: bool):
        super().__init__()
        c = plan[0][0]
        self.stem = nn.Sequential(nn.Conv2d(in_chans, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        layers = []
        for w, stride in plan[1:]:
            layers.append(SeparableConv(c, w, stride, skip))
            c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.layers(self.stem(x)).mean((2, 3)))


SEPARABLE_PLAN = ((32, 1), (64, 2), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1))


@register_model("simplenet", "S1 SimpleNet: two conv layers and a hidden FC layer (~1.3 M at 64×64)")
def simplenet(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return FlatCNN(in_chans, num_classes, image_size, (32, 64), 80)


@register_model("student_light", "S1 StudentNetLight: simple but wide, large FC layer (~8.4 M at 64×64)")
def student_light(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return FlatCNN(in_chans, num_classes, image_size, (64, 128), 256)


@register_model("student_resnet", "S1 StudentResNet: residual blocks with BN (~169 K)")
def student_resnet(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return ResStudent(in_chans, num_classes, (16, 32, 64, 72))


@register_model("student_separable", "S1 StudentNetSeparable: depthwise separable convs (~151 K)")
def student_separable(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return SeparableStudent(in_chans, num_classes, SEPARABLE_PLAN, skip=False)


@register_model("student_dwskip", "S1 StudentNetDepthwiseSkip: depthwise convs with skips (~153 K)")
def student_dwskip(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return SeparableStudent(in_chans, num_classes, SEPARABLE_PLAN, skip=True)


def _rescnn(blocks: int):
    """S4: a residual CNN of ``blocks`` blocks at widths 32 → 64 → 128 → 256, evenly split."""

    def build(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
        widths = [32] + [(32, 64, 128, 256)[min(3, i * 4 // blocks)] for i in range(blocks)]
        return ResStudent(in_chans, num_classes, tuple(widths))

    return build


for _b in (4, 6, 8, 10):
    register_model(f"rescnn_b{_b}", f"S4 residual CNN with {_b} residual blocks")(_rescnn(_b))
