"""Mid-training checkpoints: the whole state of a training after an epoch, so that a run
killed after hours resumes from its last saved epoch and ends bitwise where an uninterrupted
run ends (tests/test_checkpoint.py). ``kdbench.train.fit`` decides when to save."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from .io import atomic_write_bytes, read_checked_blob, state_dict_bytes, tensors_sha256
from .suite import spec_hash
from .suite_spec import RecipeSpec


def _training_identity(stage: str, recipe: RecipeSpec) -> dict:
    return {"stage": stage, "recipe": spec_hash(recipe)}


def save_training(path: Path, stage: str, recipe: RecipeSpec, epoch: int, model: nn.Module, opt, sched, scaler, gen: torch.Generator,
                  device: torch.device, progress: dict) -> None:
    """Everything a resumed training needs to continue bitwise: weights, optimizer, scheduler,
    grad scaler, the epoch-order generator and the global RNGs (dropout draws from them)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {
        **_training_identity(stage, recipe), "epoch": epoch, "model": state, "model_sha256": tensors_sha256(state),
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None, "generator": gen.get_state(),
        "cpu_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        **progress,
    }
    atomic_write_bytes(path, state_dict_bytes(blob))


def resume_training(path: Path, stage: str, recipe: RecipeSpec, model: nn.Module, opt, sched, scaler, gen: torch.Generator,
                    device: torch.device, log: Callable[[str], None]) -> dict | None:
    """Restore a training saved by ``save_training`` into these objects; None when there is no
    usable checkpoint (a damaged one, or one of another training, is reported and removed)."""
    def check(blob):
        if {k: blob.get(k) for k in ("stage", "recipe")} != _training_identity(stage, recipe):
            raise ValueError(f"it belongs to another training ({blob.get('stage')})")
        if tensors_sha256(blob["model"]) != blob["model_sha256"]:
            raise ValueError("weights do not match their recorded sha256")

    blob = read_checked_blob(path, check, log, "training checkpoint")
    if blob is None:
        return None
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    if sched is not None:
        sched.load_state_dict(blob["scheduler"])
    if blob["scaler"] is not None:
        scaler.load_state_dict(blob["scaler"])
    gen.set_state(blob["generator"])
    torch.set_rng_state(blob["cpu_rng"])
    if blob["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(blob["cuda_rng"], device)
    log(f"    {stage}: resumed after epoch {blob['epoch']}/{recipe.epochs} from checkpoint {path.name[:16]}…")
    return blob


def saved_trainings(folder: Path) -> list[dict]:
    """What each mid-training checkpoint in ``folder`` holds, for a progress listing: stage,
    last finished epoch, recipe hash, training seconds so far, the median epoch's seconds, the
    last validation top-1 and when it was saved. Memory-mapped, so a checkpoint of hundreds of
    MB is summarised without reading its tensors. A file that cannot be read is listed with ``error``."""
    out = []
    for path in sorted(folder.glob("*.pt")):
        entry: dict = {"file": path.name, "saved_at": path.stat().st_mtime}
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            history = blob.get("history") or [{}]
            times = [float(t) for t in (row.get("epoch_seconds") for row in history) if t]
            entry.update(stage=str(blob["stage"]), epoch=int(blob["epoch"]), recipe=str(blob["recipe"]),
                         train_seconds=float(blob.get("train_seconds", 0.0)), val_top1=history[-1].get("val_top1"),
                         median_epoch_seconds=statistics.median(times) if times else None)
        except Exception as e:  # damaged or foreign: a run reports and removes it (resume_training)
            entry["error"] = f"{type(e).__name__}: {e}"
        out.append(entry)
    return out
