"""Image sets too large to hold decoded in memory: the files stay on disk and each batch is
decoded by DataLoader workers as it is needed.

``FileImages`` stands where a uint8 (N, C, H, W) tensor stands elsewhere (shape, dtype,
indexing by index tensors gives a lazy subset), so splits and the rest of the pipeline do
not care which one they hold. Pixels come from the same decoder as the in-memory cache
(``folder._decode``), and batches follow the trainer's seeded order (a batch sampler
built from it), so a streamed run trains on exactly the bytes, in exactly the order, of an
in-memory run: the weights come out bitwise the same (tests/test_stream.py). Decoding has
no randomness; workers are seeded anyway (``seed_worker``) so that any library they touch
that draws random numbers is reproducible too."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError

# data.loading: auto streams a data set whose decoded pixels would take more than this.
STREAM_ABOVE_BYTES = 4 * 2**30


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class FileImages:
    """Images on disk, decoded to uint8 (C, size, size) on demand."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, paths: Sequence[str], size: int, mode: str):
        self.paths = tuple(str(p) for p in paths)
        self.size = size
        self.mode = mode

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 1 if self.mode == "L" else 3, self.size, self.size))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> FileImages:
        """A lazy subset, like indexing a tensor: by an index tensor, a boolean mask or a slice."""
        if isinstance(index, slice):
            return FileImages(self.paths[index], self.size, self.mode)
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        return FileImages([self.paths[i] for i in index.tolist()], self.size, self.mode)

    def to(self, device) -> FileImages:  # noqa: ARG002 — the files stay where they are; batches move
        return self

    def cpu(self) -> FileImages:
        return self

    def decode(self, index: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """These images, decoded here (for a handful; batches go through ``batches``)."""
        items = torch.as_tensor(index).tolist()
        return torch.stack([_DecodeFiles(self)[i] for i in items]) if items else torch.empty(0, *self.shape[1:], dtype=torch.uint8)

    def batches(self, order: torch.Tensor, sizes: list[int], device: torch.device, workers: int, seed: int) -> Iterator[torch.Tensor]:
        """uint8 batches on ``device``: images ``order[0:sizes[0]]``, then the next ``sizes[1]``…"""
        order = order.cpu().tolist()
        plan, lo = [], 0
        for n in sizes:
            plan.append(order[lo : lo + n])
            lo += n
        loader = DataLoader(
            _DecodeFiles(self), batch_sampler=plan, num_workers=workers, worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )
        try:
            for xb in loader:
                yield xb.to(device, non_blocking=True)
        except DataError as e:
            # A worker's error arrives wrapped with its traceback; keep our message only.
            text = str(e)
            raise DataError(text.rsplit(f"{DataError.__module__}.DataError: ", 1)[-1].strip()) from None

    def channel_sums(self, workers: int, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Per-channel sum and sum of squares of the pixel values (int64: exact, so the order
        of the pass does not matter) and the number of pixels per channel."""
        s = torch.zeros(self.shape[1], dtype=torch.int64)
        ss = torch.zeros(self.shape[1], dtype=torch.int64)
        n = len(self)
        sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
        for xb in self.batches(torch.arange(n), sizes, torch.device("cpu"), workers, 0):
            v = xb.to(torch.int64)
            s += v.sum((0, 2, 3))
            ss += (v * v).sum((0, 2, 3))
        return s, ss, n * self.size * self.size


class _DecodeFiles(Dataset):
    def __init__(self, images: FileImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        from .folder import _decode

        arr = _decode((self.images.paths[i], self.images.size, self.images.mode, False))
        return torch.from_numpy(np.ascontiguousarray(arr))


def seed_worker(worker_id: int) -> None:
    """Seed Python's and NumPy's generators in a DataLoader worker from the loader's seed
    (torch's own is already set per worker by the DataLoader)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def should_stream(loading: str, n_images: int, channels: int, size: int) -> bool:
    if loading == "stream":
        return True
    if loading == "memory":
        return False
    return n_images * channels * size * size > STREAM_ABOVE_BYTES


def not_streamable(name: str) -> DataError:
    return DataError(f"dataset {name!r} is read whole from array files, so data.loading: stream does not apply to it; "
                     "streaming is for image-folder data sets (use auto or memory)")
