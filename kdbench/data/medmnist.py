"""MedMNIST PathMNIST (S3's medical data set): one ``pathmnist.npz`` holding uint8 arrays
``{train,val,test}_images`` (N, 28, 28, 3) and ``{train,val,test}_labels`` (N, 1).

The official train and val arrays together form the pool the suite's seeded, stratified
split divides (so train / val follow ``split:`` like every other set); the official test
array is the test split."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import ImageData, missing, register_dataset, sha256_files

PATHMNIST_URL = "https://zenodo.org/record/6496656/files/pathmnist.npz?download=1"
PATHMNIST_MD5 = "a8b06965200029087d5bd730944a56c1"  # MedMNIST v2's published checksum
PATHMNIST_CLASSES = [
    "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
    "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
]
_KEYS = [f"{part}_{kind}" for part in ("train", "val", "test") for kind in ("images", "labels")]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The six arrays, checked for presence, dtype, shape and label range."""
    try:
        with np.load(path, allow_pickle=False) as z:
            absent = [k for k in _KEYS if k not in z.files]
            if absent:
                raise DataError(f"{path}: not a MedMNIST file: missing arrays {', '.join(absent)} (has {', '.join(z.files) or 'none'})")
            arrays = {k: z[k] for k in _KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e}); delete it and download it again") from None
    for part in ("train", "val", "test"):
        x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"].reshape(-1)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            raise DataError(f"{path}: {part}_images must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}")
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{path}: {part}_images has {x.shape[0]} images but {part}_labels has {y.shape[0]} labels")
        if y.size and not (0 <= y.min() and y.max() < len(PATHMNIST_CLASSES)):
            raise DataError(f"{path}: {part}_labels outside 0…{len(PATHMNIST_CLASSES) - 1} (found {y.min()}…{y.max()})")
        arrays[f"{part}_labels"] = y
    return arrays


@register_dataset("pathmnist", has_test_split=True, description="MedMNIST v2 PathMNIST, 100k/7.2k 28×28 RGB, 9 tissue classes",
                  shape=(3, 28, 9))
def load_pathmnist(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = ()) -> ImageData:
    candidates = [root / "pathmnist.npz", root / "medmnist" / "pathmnist.npz"]
    path = next((p for p in candidates if p.exists()), None)
    if path is None and download:
        from torchvision.datasets.utils import download_url

        download_url(PATHMNIST_URL, str(root), filename="pathmnist.npz", md5=PATHMNIST_MD5)
        path = root / "pathmnist.npz"
    if path is None:
        raise missing("pathmnist", candidates, f"Download pathmnist.npz ({PATHMNIST_URL}, md5 {PATHMNIST_MD5}) into one of these "
                      "folders, run again with --download (needs a network), or choose the root with --data-root / $KDBENCH_DATA.")
    a = read_npz(path)

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    data = ImageData(
        name="pathmnist", classes=list(PATHMNIST_CLASSES),
        train_x=torch.cat([images(a["train_images"]), images(a["val_images"])]),
        train_y=torch.from_numpy(np.concatenate([a["train_labels"], a["val_labels"]]).astype(np.int64)),
        test_x=images(a["test_images"]), test_y=torch.from_numpy(a["test_labels"].astype(np.int64)),
        fingerprint=sha256_files([path]), location=str(path),
        notes="official train + val form the pool the suite's split divides; official test is the test split",
    )
    data.check()
    return data
