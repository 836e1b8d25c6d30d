"""Fashion-MNIST (IDX files, as torchvision and Debian's package lay them out) and the
small Fashion-MNIST subset that ships with kdbench for the smoke suite."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import ImageData, missing, register_dataset, sha256_files

FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FMNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SMOKE_DIR = Path(__file__).parent / "smoke"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip'd): magic 0x0000 0x08 ndim, big-endian dims, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: bad IDX header {raw[:4].hex()} (expected 0000 08 0N: unsigned bytes, 1-4 dims)")
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header says {dims} ({expected} bytes) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx_set(name: str, folder: Path, classes: list[str], notes: str = "") -> ImageData:
    paths = [folder / f for f in FMNIST_FILES]
    arrays = [read_idx(p) for p in paths]
    train_x, train_y, test_x, test_y = arrays
    for part, x, y, px, py in (("train", train_x, train_y, paths[0], paths[1]), ("test", test_x, test_y, paths[2], paths[3])):
        if x.ndim != 3 or y.ndim != 1:
            raise DataError(f"{px}: expected images (N, H, W) and labels (N,), got {x.shape} and {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{name}: {part} images ({px.name}: {x.shape[0]}) and labels ({py.name}: {y.shape[0]}) do not match")
    data = ImageData(
        name=name,
        classes=classes,
        train_x=torch.from_numpy(train_x.copy()).unsqueeze(1),
        train_y=torch.from_numpy(train_y.astype(np.int64)),
        test_x=torch.from_numpy(test_x.copy()).unsqueeze(1),
        test_y=torch.from_numpy(test_y.astype(np.int64)),
        fingerprint=sha256_files(paths),
        location=str(folder),
        notes=notes,
    )
    data.check()
    return data


def find_fmnist(root: Path) -> Path | None:
    for folder in (root / "fashion-mnist", root / "FashionMNIST" / "raw"):
        if all((folder / f).exists() for f in FMNIST_FILES):
            return folder
    return None


@register_dataset("fashion-mnist", has_test_split=True, description="Fashion-MNIST, 60k/10k 28×28 grey, 10 classes", shape=(1, 28, 10))
def load_fashion_mnist(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = ()) -> ImageData:
    folder = find_fmnist(root)
    if folder is None and download:
        import torchvision

        torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
        folder = find_fmnist(root)
    if folder is None:
        raise missing(
            "fashion-mnist",
            [root / "fashion-mnist", root / "FashionMNIST" / "raw"],
            f"Put the four IDX files ({', '.join(FMNIST_FILES)}) in one of these folders, "
            "run again with --download (needs a network), or choose the root with --data-root / $KDBENCH_DATA.",
        )
    return load_idx_set("fashion-mnist", folder, FMNIST_CLASSES)


@register_dataset(
    "fmnist-smoke", has_test_split=True, description="Fashion-MNIST subset shipped with kdbench: 2,000 train / 500 test", shape=(1, 28, 10)
)
def load_fmnist_smoke(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = ()) -> ImageData:
    # Ships inside the package (see smoke/PROVENANCE.md); the data root is not used.
    return load_idx_set("fmnist-smoke", SMOKE_DIR, FMNIST_CLASSES, notes="subset of Fashion-MNIST; see kdbench/data/smoke/PROVENANCE.md")
