"""Augmentation of uint8 image batches as tensor work on the device, its randomness drawn
from a CPU generator for a whole epoch up front, so CPU and CUDA runs see the same batches."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CROP_PAD = 4  # pixels of reflect padding before the random crop
ROTATE_DEGREES = 15.0  # rotation drawn uniformly in ±15°
COLOR_JITTER = 0.2  # brightness, contrast and saturation factors drawn in 1 ± 0.2


def apply_augmentation(xb: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per image, as tensor work on the device: 4-pixel reflect-pad random crop, horizontal
    flip, rotation (bilinear, zero fill) and brightness / contrast / saturation jitter."""
    n, c, h, w = xb.shape
    dev = xb.device
    if "dy" in params:
        pad = CROP_PAD
        padded = F.pad(xb.float(), (pad, pad, pad, pad), mode="reflect").to(xb.dtype)
        rows = (torch.arange(h, device=dev)[None, :] + params["dy"][:, None])[:, None, :, None]
        cols = (torch.arange(w, device=dev)[None, :] + params["dx"][:, None])[:, None, None, :]
        xb = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if "flip" in params:
        xb = torch.where(params["flip"][:, None, None, None], xb.flip(3), xb)
    if "angle" in params or "bright" in params:
        xf = xb.float()
        if "angle" in params:
            a = params["angle"] * (math.pi / 180)
            zero = torch.zeros_like(a)
            theta = torch.stack([torch.stack([a.cos(), -a.sin(), zero], 1), torch.stack([a.sin(), a.cos(), zero], 1)], 1)
            grid = F.affine_grid(theta, list(xf.shape), align_corners=False)
            xf = F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if "bright" in params:
            xf = xf * params["bright"][:, None, None, None]
            mean = xf.mean((1, 2, 3), keepdim=True)
            xf = (xf - mean) * params["contrast"][:, None, None, None] + mean
            if c == 3:
                grey = (0.299 * xf[:, 0:1] + 0.587 * xf[:, 1:2] + 0.114 * xf[:, 2:3])
                xf = (xf - grey) * params["sat"][:, None, None, None] + grey
        xb = xf.clamp(0, 255).round().to(torch.uint8)
    return xb


def draw_augmentation(ops: tuple[str, ...], batch_sizes: list[int], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One epoch's augmentation parameters, drawn on the CPU generator batch by batch (crop
    offsets, then flips), so a run's randomness does not depend on the device."""
    draws: dict[str, list[torch.Tensor]] = {k: [] for k in ("dy", "dx", "flip", "angle", "bright", "contrast", "sat")}
    for n in batch_sizes:
        # Order matters: each op draws after the ones before it, so adding an op to the end
        # of this list leaves the earlier ops' draws (and old results) unchanged.
        if "crop" in ops:
            draws["dy"].append(torch.randint(0, 2 * CROP_PAD + 1, (n,), generator=gen))
            draws["dx"].append(torch.randint(0, 2 * CROP_PAD + 1, (n,), generator=gen))
        if "flip" in ops:
            draws["flip"].append(torch.rand(n, generator=gen) < 0.5)
        if "rotate" in ops:
            draws["angle"].append((torch.rand(n, generator=gen) * 2 - 1) * ROTATE_DEGREES)
        if "color" in ops:
            for k in ("bright", "contrast", "sat"):
                draws[k].append(1 + (torch.rand(n, generator=gen) * 2 - 1) * COLOR_JITTER)
    return {k: torch.cat(v) for k, v in draws.items() if v}
