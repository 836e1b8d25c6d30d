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
    fingerprint: str  # sha256 over the index lists
    official_test: torch.Tensor | None = None  # indices kept of the dataset's own test split (None: all)


def _order(indices: list[int], seed: int) -> list[int]:
    return sorted(indices, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())


def _by_class(labels: torch.Tensor) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels.tolist()):
        by_class.setdefault(y, []).append(i)
    return by_class


def limit_per_class(labels: torch.Tensor, seed: int, max_per_class: int) -> torch.Tensor:
    """Indices of at most ``max_per_class`` images of each class, in the seeded order, sorted."""
    keep: list[int] = []
    for idx in _by_class(labels).values():
        keep += _order(idx, seed)[:max_per_class]
    return torch.tensor(sorted(keep), dtype=torch.int64)


def make_split(labels: torch.Tensor, classes: list[str], seed: int, val: float, test: float, max_per_class: int = 0,
               official_test_labels: torch.Tensor | None = None) -> Split:
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    by_class = _by_class(labels)
    for c in range(len(classes)):
        idx = _order(by_class.get(c, []), seed)
        if max_per_class:
            idx = idx[:max_per_class]
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
    official = None
    if max_per_class and official_test_labels is not None:
        official = limit_per_class(official_test_labels, seed, max_per_class)
        h.update(f"official_test:{','.join(map(str, official.tolist()))};".encode())
    as_t = {k: torch.tensor(v, dtype=torch.int64) for k, v in parts.items()}
    return Split(as_t["train"], as_t["val"], as_t["test"] if test > 0 else None, h.hexdigest(), official)
