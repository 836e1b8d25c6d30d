"""What every dataset source produces, where data is looked for, and the dataset registry."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DataError
from ..registry import Registry

ENV_DATA = "KDBENCH_DATA"
ENV_CACHE = "KDBENCH_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kdbench"


def resolve_data_root(cli_value: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data root and how it was chosen: ``--data-root``, then $KDBENCH_DATA, then the
    per-user cache directory."""
    if cli_value:
        return Path(cli_value).expanduser(), "--data-root"
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser(), f"${ENV_DATA}"
    return default_cache_dir() / "data", "the per-user cache directory"


@dataclass
class ImageData:
    """A whole dataset held as uint8 tensors (N, C, H, W) and int64 labels (or, streamed,
    as ``FileImages`` that stand in for the image tensors).

    ``test_x`` is None for sources without their own test split; the suite's split then
    carves a test part out of the training pool."""

    name: str
    classes: list[str]
    train_x: torch.Tensor  # or FileImages (data.loading: stream)
    train_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    fingerprint: str  # sha256 of the source files' content; see each source for the recipe
    location: str  # where it was read from
    notes: str = ""  # e.g. "JPEG re-encoded copy: not pixel-identical to CIFAR-10"
    skipped_files: list[str] = field(default_factory=list)  # unreadable images left out (data.skip_bad_images)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def check(self) -> None:
        """Integrity checks: shapes, dtypes, label range, no empty class."""
        for part, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x is None:
                continue
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise DataError(f"{self.name}: {part} images must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
            if y.shape != (x.shape[0],):
                raise DataError(f"{self.name}: {part} has {x.shape[0]} images but {y.shape[0]} labels")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(f"{self.name}: {part} labels outside 0..{self.num_classes - 1}")
        counts = torch.bincount(self.train_y, minlength=self.num_classes)
        empty = [self.classes[i] for i in range(self.num_classes) if counts[i] == 0]
        if empty:
            raise DataError(f"{self.name}: no training images for class(es) {', '.join(empty)}")


def restrict_classes(data: ImageData, keep: tuple[str, ...]) -> ImageData:
    """Only the images of ``keep``, relabelled 0… in that order (a no-op when the source
    already restricted itself, as image folders do before decoding)."""
    if not keep or list(keep) == data.classes:
        return data
    from ..registry import suggest

    for c in keep:
        if c not in data.classes:
            raise DataError(f"{data.name}: no class {c!r}{suggest(c, data.classes)}; classes: {', '.join(data.classes)}")
    old = torch.tensor([data.classes.index(c) for c in keep])
    remap = torch.full((len(data.classes),), -1, dtype=torch.int64)
    remap[old] = torch.arange(len(keep))

    def part(x, y):
        if x is None:
            return None, None
        mask = remap[y] >= 0
        return x[mask], remap[y[mask]]

    tx, ty = part(data.train_x, data.train_y)
    vx, vy = part(data.test_x, data.test_y)
    return ImageData(data.name, list(keep), tx, ty, vx, vy, data.fingerprint, data.location,
                     (data.notes + f"; classes kept: {', '.join(keep)}").lstrip("; "), data.skipped_files)


@dataclass(frozen=True)
class InputShape:
    channels: int
    size: int
    classes: int


@dataclass(frozen=True)
class DatasetSource:
    name: str
    load: Callable[..., ImageData]  # (data root, download allowed, cache dir, skip_bad_images=False, classes=(), [loading=]) -> data
    has_test_split: bool | None  # None: known only when the data is read (generic folders)
    description: str
    # Image folders can leave their files on disk and decode batches on demand (data.loading,
    # and their load takes ``loading=``); array files are read whole.
    streamable: bool = False
    # What the release loads as: its images' channels and size, and its classes. Known without
    # the data, so that what a suite's models see can be worked out where the data is absent
    # (the benchmarks of every suite model at its input); None for generic folders.
    shape: InputShape | None = None


DATASETS: Registry[DatasetSource] = Registry("dataset")


def check_declared_shape(source: DatasetSource, data: ImageData) -> None:
    """The images a release loads as have the channels and size its registration declares. A
    file of another size under the release's name (MedMNIST+'s ``pathmnist_224.npz`` renamed to
    ``pathmnist.npz``, say) would otherwise train the suite's models at an input nobody
    benchmarked, at many times the cost, with results that compare with no one's."""
    if source.shape is None:  # generic folders: their size is the path's @SIZE
        return
    channels, height, width = (int(n) for n in data.train_x.shape[1:])
    want = source.shape
    if (channels, height, width) != (want.channels, want.size, want.size):
        raise DataError(f"{source.name} at {data.location} holds {channels}×{height}×{width} images, but the {source.name} release "
                        f"is {want.channels}×{want.size}×{want.size} ({source.description}): another release, or a size variant, "
                        "under its name? Put the release itself there, or fetch it with --download (needs a network)")


def register_dataset(name: str, *, has_test_split: bool, description: str, shape: tuple[int, int, int], streamable: bool = False):
    """``shape``: (channels, image size, classes) of the release as its loader gives it."""

    def deco(fn: Callable[..., ImageData]):
        DATASETS.add(name, DatasetSource(name, fn, has_test_split, description, streamable, InputShape(*shape)))
        return fn

    return deco


def sha256_files(paths: list[Path]) -> str:
    """sha256 over the files' sha256 lines, in the given order (``sha256sum`` style)."""
    outer = hashlib.sha256()
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        outer.update(f"{h.hexdigest()}  {p.name}\n".encode())
    return outer.hexdigest()


def missing(name: str, looked: list[Path], how: str) -> DataError:
    places = "\n  ".join(str(p) for p in looked)
    return DataError(f"dataset {name!r} not found. Looked in:\n  {places}\n{how}")
