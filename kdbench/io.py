"""Files that are never half-written, and a lock so two runs do not write the same suite."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import KDBenchError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync it, rename it over ``path``, fsync
    the folder: a reader sees the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk (or a Ctrl-C) part-way: the old file stands, and the part written goes,
        # so it neither takes the space a re-run needs nor lingers beside the results.
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def state_dict_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def tensors_sha256(state: dict) -> str:
    """sha256 over a state dict's tensors (names, dtypes, shapes, raw bytes), in name order:
    equal exactly when the weights are bitwise equal."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def read_checked_blob(path: Path, check, log, what: str) -> dict | None:
    """The torch-saved dict at ``path`` if it is there and intact (``check(blob)`` raises when
    its content does not match what it claims); a damaged file is reported through ``log``,
    removed and never used, so the caller rebuilds it. None when there is nothing usable."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        check(blob)
        return blob
    except Exception as e:  # any damage: report, rebuild, never use it
        log(f"  {what} {path} is corrupt ({type(e).__name__}: {e}); rebuilding it")
        path.unlink(missing_ok=True)
        return None


def unwritable_folder(path: Path) -> str | None:
    """Why files could not be written under ``path`` (made as needed), or None: checked before a
    run decodes data or trains, so a mistyped path or a read-only disk says so at once without
    creating anything."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written (read-only or no permission)"
    return None


class SuiteLock:
    """An exclusive, non-blocking lock on a results folder. A second run of the same suite
    gets a clear refusal instead of interleaving writes. The OS drops the lock if the
    holder dies, so a killed run never leaves a stale lock."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> SuiteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise KDBenchError(f"another kdbench run (pid {holder}) is writing {self.path.parent}; wait for it or use another --results folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
