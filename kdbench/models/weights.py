"""Starting a model from weights on disk (the suite's ``pretrained`` mapping): ImageNet
weights users have, or any earlier checkpoint. Nothing is downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import KDBenchError


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: plain, or inside a checkpoint's "state_dict" / "model" entry;
    a DataParallel "module." prefix is removed."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable, not a torch file, or pickled code (refused by weights_only)
        raise KDBenchError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if isinstance(blob, dict):
        for key in ("state_dict", "model"):
            if isinstance(blob.get(key), dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise KDBenchError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in blob.items()}


def load_pretrained(model: nn.Module, name: str, path: Path) -> dict:
    """Copy every tensor of the file that fits the model; the rest stays at its init. Returns
    what was loaded and what was not, for the result's provenance."""
    weights = read_state_dict(path)
    own = model.state_dict()
    fits = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    # A head or stem of another shape is expected; most of the network not fitting means the
    # file holds another architecture (a few tensors can match by accident).
    if len(fits) < len(own) / 2:
        raise KDBenchError(f"{path}: only {len(fits)} of {name}'s {len(own)} tensors match a tensor of the file by name "
                           "and shape: are these the weights of another architecture?")
    model.load_state_dict(fits, strict=False)
    return {
        "file": str(path), "sha256": file_sha256(path), "loaded": len(fits),
        "left_at_init": sorted(k for k in own if k not in fits),  # e.g. a classifier head of another class count
        "unused": sorted(k for k in weights if k not in fits),
    }
