"""Every registered model builds for the shapes datasets give, runs forward and backward."""

import pytest
import torch

from kdbench.models import MODELS, build_model, count_params

# (in_chans, image_size): Fashion-MNIST and CIFAR-10 shapes.
SHAPES = [(1, 28), (3, 32)]


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("in_chans, size", SHAPES)
def test_forward_backward(name, in_chans, size):
    torch.manual_seed(0)
    model = build_model(name, in_chans, 10, size)
    x = torch.randn(2, in_chans, size, size)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_parameter_counts():
    # Counted from the definitions (3 channels, 10 classes). ResNet-18 CIFAR: 11.17 M as in
    # the KD literature's tables.
    expected = {"cnn_tiny": 6_418, "cnn_small": 24_346, "cnn_medium": 288_746, "resnet18_cifar": 11_173_962}
    got = {n: count_params(build_model(n, 3, 10, 32)) for n in expected}
    assert got == expected


def test_timm_model_adapts_to_small_inputs():
    vit = build_model("timm/vit_tiny_patch16_224", 3, 10, 32)
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cnn = build_model("timm/resnet18", 1, 7, 28)
    assert cnn(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_same_seed_same_init():
    torch.manual_seed(3)
    a = build_model("cnn_small", 3, 10, 32).state_dict()
    torch.manual_seed(3)
    b = build_model("cnn_small", 3, 10, 32).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
