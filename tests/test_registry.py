import pytest

from kdbench.data import DATASETS
from kdbench.models import MODELS
from kdbench.registry import Registry


def test_duplicate_name_raises():
    r = Registry("thing")
    r.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a")(2)


def test_miss_names_close_matches_and_all_names():
    r = Registry("model")
    for n in ("resnet18", "resnet34", "vgg8"):
        r.add(n, n)
    with pytest.raises(KeyError) as e:
        r.get("resnt18")
    msg = str(e.value)
    assert "did you mean 'resnet18'" in msg
    assert "known: resnet18, resnet34, vgg8" in msg


def test_package_import_registers_everything():
    # Registration must not depend on import order: importing kdbench.data / kdbench.models
    # is enough to fill the registries.
    assert {"fashion-mnist", "fmnist-smoke", "cifar10", "cifar10-jpeg", "imagenette-224"} <= set(DATASETS.names())
    assert {"cnn_tiny", "cnn_small", "cnn_medium", "resnet18_cifar"} <= set(MODELS.names())
