"""Single-image prediction with a trained student from a results folder (S2's use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import DataError, KDBenchError
from .io import read_json, tensors_sha256
from .models import build_model


def load_student(result_path: Path) -> tuple[torch.nn.Module, dict]:
    """The student of a finished cell, its weights checked against the recorded sha256."""
    if not result_path.exists():
        raise KDBenchError(f"{result_path}: no such result file")
    res = read_json(result_path)
    if res.get("status") != "ok":
        raise KDBenchError(f"{result_path}: the cell did not finish ({res.get('failure', {}).get('reason')})")
    weights = result_path.with_suffix(".pt")
    if not weights.exists():
        raise KDBenchError(f"{weights}: the student's weights are missing (results written before kdbench saved them); re-run the cell")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        intact = tensors_sha256(state) == res["student"]["weights_sha256"]
    except Exception:  # unreadable: as bad as a wrong hash
        intact = False
    if not intact:
        raise KDBenchError(f"{weights}: weights do not match the sha256 recorded in {result_path.name}; re-run the cell")
    norm = res["normalisation"]
    model = build_model(res["cell"]["student"], norm["channels"], len(norm["classes"]), norm["image_size"])
    model.load_state_dict(state)
    return model.eval(), norm


def image_tensor(path: Path, channels: int, size: int) -> torch.Tensor:
    """uint8 (C, H, W) the way the training data was prepared: grey or RGB, resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.array(im, dtype=np.uint8)  # a writable copy (torch warns on PIL's read-only buffer)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None
    return torch.from_numpy(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy())


@torch.no_grad()
def predict_images(result_path: Path, images: list[Path], top_k: int = 3) -> list[dict]:
    """One entry per image, in order: its top-k classes, or, for an image that cannot be read,
    ``error`` (the others are still classified: one bad file among many loses nothing)."""
    model, norm = load_student(result_path)
    mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
    out = []
    for path in images:
        try:
            x = image_tensor(path, norm["channels"], norm["image_size"])[None]
        except DataError as e:
            out.append({"image": str(path), "error": str(e)})
            continue
        probs = model((x.float() / 255.0 - mean) / std).softmax(1)[0]
        p, i = probs.topk(min(top_k, probs.numel()))
        out.append({"image": str(path), "top": [{"class": norm["classes"][c], "probability": float(v)} for v, c in zip(p.tolist(), i.tolist(), strict=True)]})
    return out
