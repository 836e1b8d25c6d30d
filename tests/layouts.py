"""Data sets that are not on this machine (EuroSAT, Intel Image Classification, PathMNIST), laid
out on disk exactly as their downloads unpack, for the tests of their loaders and suites.

``write_*`` take the pixels as uint8 (H, W, 3) arrays. ``standin_data_root`` fills the three
layouts with real CIFAR-10 photographs resized to each set's image size, so every cell of
s1-eurosat, s3-pathmnist and s4-intel runs end to end at ``--tiny`` scale here. The pixels are
CIFAR-10's, not the set's own: such a run shows that a cell works, never what it would score.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

# The class folders of the real downloads (EuroSAT RGB's 2750/, Kaggle's Intel seg_train/).
EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                   "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")
INTEL_CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
PATHMNIST_CLASS_COUNT = 9
# The data sets standin_data_root lays out (kdbench's dataset names).
STANDIN_DATASETS = {"eurosat", "intel-image", "pathmnist"}


def write_image_folder(folder: Path, images: dict[str, list[np.ndarray]],
                       file_name: Callable[[str, int], str] = lambda c, i: f"{i}.jpg") -> None:
    """``folder/<class>/<file>`` JPEGs, one class folder per key."""
    for c, arrays in images.items():
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i, arr in enumerate(arrays):
            Image.fromarray(arr).save(folder / c / file_name(c, i), quality=90)


def write_eurosat(root: Path, images: dict[str, list[np.ndarray]]) -> None:
    """As torchvision's download leaves it: eurosat/2750/<class>/<class>_<n>.jpg (64×64)."""
    write_image_folder(root / "eurosat" / "2750", images, lambda c, i: f"{c}_{i + 1}.jpg")


def write_intel(root: Path, train: dict[str, list[np.ndarray]], test: dict[str, list[np.ndarray]]) -> None:
    """As Kaggle's archive unpacks: intel-image/seg_train/seg_train/<class>/<n>.jpg and seg_test/seg_test/."""
    write_image_folder(root / "intel-image" / "seg_train" / "seg_train", train)
    write_image_folder(root / "intel-image" / "seg_test" / "seg_test", test)


def write_pathmnist(path: Path, parts: dict[str, tuple[np.ndarray, np.ndarray]], **replace: np.ndarray) -> None:
    """A pathmnist.npz as MedMNIST v2 ships it: ``<part>_images`` uint8 (N, 28, 28, 3) and
    ``<part>_labels`` (N, 1) for each part (train, val, test); ``replace`` swaps arrays."""
    arrays = {}
    for part, (images, labels) in parts.items():
        arrays[f"{part}_images"] = images
        arrays[f"{part}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    arrays.update(replace)
    np.savez_compressed(path, **arrays)


def _cifar_photos(cifar_root: Path, names: tuple[str, ...], per_class: int, offset: int, size: int) -> dict[str, list[np.ndarray]]:
    """For each name, in turn, ``per_class`` photographs of the next CIFAR-10 class (in file
    order from ``offset``), resized to size × size."""
    folders = sorted(d for d in (cifar_root / "train").iterdir() if d.is_dir())[:len(names)]
    return {name: [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR))
                   for f in sorted(folder.glob("*.jpg"))[offset:offset + per_class]]
            for name, folder in zip(names, folders, strict=True)}


def standin_data_root(real_root: Path, dest: Path, per_class: int = 10) -> Path:
    """``dest`` laid out as a data root holding EuroSAT, Intel Image and PathMNIST, each with
    ``per_class`` images a class (and part) cut from the CIFAR-10 JPEG copy under ``real_root``."""
    cifar = real_root / "cifar10-jpeg"
    write_eurosat(dest, _cifar_photos(cifar, EUROSAT_CLASSES, per_class, 0, 64))
    write_intel(dest, _cifar_photos(cifar, INTEL_CLASSES, per_class, 0, 150),
                _cifar_photos(cifar, INTEL_CLASSES, per_class, per_class, 150))
    labels = [str(k) for k in range(PATHMNIST_CLASS_COUNT)]
    parts = {}
    for k, part in enumerate(("train", "val", "test")):
        photos = _cifar_photos(cifar, tuple(labels), per_class, k * per_class, 28)
        parts[part] = (np.stack([p for label in labels for p in photos[label]]),
                       np.repeat(np.arange(PATHMNIST_CLASS_COUNT), per_class))
    write_pathmnist(dest / "pathmnist.npz", parts)
    return dest
