"""What the public releases hold, class by class. An incomplete copy (an interrupted download
or unpack, files deleted by hand, unreadable images left out by data.skip_bad_images) passes
the loaders' integrity checks (shapes, label range, no empty class) yet trains on other data
than everyone else's under the same name, so its results compare with no one's. This names
the difference; the run goes on, says so, and the results record it.

Only releases whose counts are documented and checked against a copy here are listed
(../shared/datasets/README.md); EuroSAT, Intel Image Classification and PathMNIST are not:
a wrong expectation would accuse a complete copy."""

from __future__ import annotations

import torch

from .folder import CIFAR10_CLASSES
from .idx import FMNIST_CLASSES

# Imagenette (imagenette2, fast.ai): images per class, counted on the copy here, whose totals
# (9,469 train, 3,925 val) are the release's.
_IMAGENETTE_TRAIN = {"n01440764": 963, "n02102040": 955, "n02979186": 993, "n03000684": 858, "n03028079": 941,
                     "n03394916": 956, "n03417042": 961, "n03425413": 931, "n03445777": 951, "n03888257": 960}
_IMAGENETTE_VAL = {"n01440764": 387, "n02102040": 395, "n02979186": 357, "n03000684": 386, "n03028079": 409,
                   "n03394916": 394, "n03417042": 389, "n03425413": 419, "n03445777": 399, "n03888257": 390}

# dataset → part ("train": the release's training set, "test": its test set, Imagenette's val)
# → class → images.
RELEASE_COUNTS: dict[str, dict[str, dict[str, int]]] = {
    "fashion-mnist": {"train": dict.fromkeys(FMNIST_CLASSES, 6000), "test": dict.fromkeys(FMNIST_CLASSES, 1000)},
    "cifar10": {"train": dict.fromkeys(CIFAR10_CLASSES, 5000), "test": dict.fromkeys(CIFAR10_CLASSES, 1000)},
    "cifar10-jpeg": {"train": dict.fromkeys(CIFAR10_CLASSES, 5000), "test": dict.fromkeys(CIFAR10_CLASSES, 1000)},
    "imagenette-224": {"train": _IMAGENETTE_TRAIN, "test": _IMAGENETTE_VAL},
}

_SHOWN = 4  # classes named per part; the rest are counted


def release_differences(name: str, classes: list[str], train_y: torch.Tensor, test_y: torch.Tensor | None) -> list[str]:
    """One phrase per part whose images per class differ from the release's (for the classes
    loaded: a suite may keep only some); [] for a complete copy or a dataset not listed."""
    release = RELEASE_COUNTS.get(name)
    if release is None:
        return []
    out = []
    for part, y in (("train", train_y), ("test", test_y)):
        want = release.get(part)
        if want is None or y is None:
            continue
        have = dict(zip(classes, torch.bincount(y, minlength=len(classes)).tolist(), strict=True))
        known = [c for c in classes if c in want]
        off = [c for c in known if have[c] != want[c]]
        if not off:
            continue
        named = ", ".join(f"{c} {have[c]:,} of {want[c]:,}" for c in off[:_SHOWN])
        more = f" and {len(off) - _SHOWN} more classes" if len(off) > _SHOWN else ""
        out.append(f"{part} {sum(have[c] for c in known):,} images of the release's {sum(want[c] for c in known):,} ({named}{more})")
    return out
