"""Build kdbench/data/smoke/: the first N_TRAIN images of each class from Fashion-MNIST's
training set and the first N_TEST of each class from its test set, in their original order,
written as IDX files laid out exactly like the originals.

    python tools/make_smoke_subset.py ../shared/datasets/fashion-mnist kdbench/data/smoke
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdbench.data.idx import FMNIST_FILES, read_idx  # noqa: E402

N_TRAIN, N_TEST = 200, 50


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    # mtime=0 so the .gz bytes (and so the fingerprint) do not depend on when this ran.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def first_per_class(y: np.ndarray, n: int) -> np.ndarray:
    keep = np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)])
    return np.sort(keep)


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    tx, ty, vx, vy = (read_idx(src / f) for f in FMNIST_FILES)
    ti, vi = first_per_class(ty, N_TRAIN), first_per_class(vy, N_TEST)
    for name, arr in zip(FMNIST_FILES, (tx[ti], ty[ti], vx[vi], vy[vi]), strict=True):
        write_idx(dst / name, arr)
        print(name, arr.shape, hashlib.sha256((dst / name).read_bytes()).hexdigest())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
