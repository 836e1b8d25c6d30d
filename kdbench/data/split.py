"""Seeded, stratified splits that are identical on every machine and torch version.

Each index's place in its class is decided by sha256(seed, index) alone: no RNG stream
whose algorithm could change between library versions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..errors import DataError


@dataclass(frozen=True)
class Split:
    train: torch.Tensor  # indices into the training pool
    val: torch.Tensor
    test: torch.Tensor | None  # None: the dataset's own test split is used
    fingerprint: str  # sha256 over the three index lists


def _order(indices: list[int], seed: int) -> list[int]:
    return sorted(indices, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())


def make_split(labels: torch.Tensor, classes: list[str], seed: int, val: float, test: float) -> Split:
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels.tolist()):
        by_class.setdefault(y, []).append(i)
    for c in range(len(classes)):
        idx = _order(by_class.get(c, []), seed)
        n = len(idx)
        n_val, n_test = round(val * n), round(test * n)
        # Every requested part needs at least one image of every class.
        if (val > 0 and n_val == 0) or (test > 0 and n_test == 0) or n - n_val - n_test < 1:
            raise DataError(
                f"class {classes[c]!r} has {n} image(s): too few for a stratified split with "
                f"val={val}, test={test} (each part needs ≥ 1 image of every class)"
            )
        parts["val"] += idx[:n_val]
        parts["test"] += idx[n_val : n_val + n_test]
        parts["train"] += idx[n_val + n_test :]
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        parts[name].sort()
        h.update(f"{name}:{','.join(map(str, parts[name]))};".encode())
    as_t = {k: torch.tensor(v, dtype=torch.int64) for k, v in parts.items()}
    return Split(as_t["train"], as_t["val"], as_t["test"] if test > 0 else None, h.hexdigest())
