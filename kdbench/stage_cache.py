"""Trained teachers and TAKD assistants, and their logits on the training split: kept in
memory for the run and on disk under the cache folder across runs, every file checked by
sha256 when read (a damaged one is reported, removed and rebuilt, never used)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from . import precision as prec
from .io import atomic_write_bytes, read_checked_blob, state_dict_bytes, tensors_sha256
from .suite import spec_hash
from .train import DeviceData, predict


class StageCache:
    def __init__(self, cache_dir: Path, device: torch.device, log: Callable[[str], None]):
        self.cache_dir = cache_dir
        self.device = device
        self.log = log
        self._models: dict[str, tuple[torch.nn.Module, dict]] = {}
        self._logits: dict[str, torch.Tensor] = {}

    def has_model(self, key: str) -> bool:
        """Whether the model keyed ``key`` is trained already (in memory, or a file in the cache;
        one found damaged when read is trained again)."""
        return key in self._models or (self.cache_dir / "teachers" / f"{key}.pt").is_file()

    def model(self, key: str, name: str, role: str, build: Callable[[], torch.nn.Module], train, epochs: int) -> tuple[torch.nn.Module, dict]:
        """The model keyed ``key`` from the cache when its file is intact, else ``build()`` and
        ``train(model)`` (a FitResult), then cached. Returned in eval mode with its record."""
        if key in self._models:
            return self._models[key]
        path = self.cache_dir / "teachers" / f"{key}.pt"
        model = build()

        def check(blob):
            if blob["meta"]["key"] != key or tensors_sha256(blob["state_dict"]) != blob["meta"]["weights_sha256"]:
                raise ValueError("content does not match its recorded hash")
            model.load_state_dict(blob["state_dict"])  # a state dict of another shape is damage too

        info = None
        existed = path.exists()
        blob = read_checked_blob(path, check, self.log, f"{role} cache")
        if blob is not None:
            info = dict(blob["meta"], cached=True)
            self.log(f"  {role} {name}: from cache {path.name[:16]}…")
        elif existed:  # rejected, perhaps half loaded: start again from a fresh model, as if never cached
            model = build()
        if info is None:
            self.log(f"  {role} {name}: training ({epochs} epochs)")
            fr = train(model)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            info = {
                "key": key, "model": name, "role": role, "weights_sha256": tensors_sha256(state), "history": fr.history,
                "selected_epoch": fr.selected_epoch, "stopped_early": fr.stopped_early, "train_seconds": fr.train_seconds,
            }
            atomic_write_bytes(path, state_dict_bytes({"state_dict": state, "meta": info}))
            info = dict(info, cached=False)
        model.eval()
        self._models[key] = (model, info)
        return model, info

    def train_logits(self, model: torch.nn.Module, info: dict, train: DeviceData, split_fingerprint: str, policy: prec.Policy,
                     flip: bool = False) -> torch.Tensor:
        """The eval-mode logits of a teacher (or assistant) on every training image (``flip``:
        mirrored), in order: computed once and kept in memory and on disk (keyed by the model's
        cache key, its weights' sha256, the split and the precision), so every student of that
        teacher, in this run or a later one, skips the teacher forward."""
        key = spec_hash({"model": info["key"], "weights": info["weights_sha256"], "split": split_fingerprint, "precision": policy.name,
                         **({"flip": True} if flip else {})})
        if key in self._logits:
            return self._logits[key]
        path = self.cache_dir / "teacher_logits" / f"{key}.pt"

        def check(blob):
            if blob["key"] != key or tensors_sha256({"logits": blob["logits"]}) != blob["sha256"] or blob["logits"].shape[0] != len(train):
                raise ValueError("content does not match its recorded hash")

        blob = read_checked_blob(path, check, self.log, "teacher-logit cache")
        logits = None if blob is None else blob["logits"]
        if logits is not None:
            self.log(f"  teacher logits on the training split: from cache {path.name[:16]}…")
        else:
            logits = predict(model, train, 512, policy, self.device, flip=flip)
            atomic_write_bytes(path, state_dict_bytes({"key": key, "logits": logits, "sha256": tensors_sha256({"logits": logits})}))
        self._logits[key] = logits.to(self.device)
        return self._logits[key]
