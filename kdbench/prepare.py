"""A suite's dataset made ready for training: loaded (decoded once and cached, or streamed),
restricted to the suite's classes, split by the suite's seeded split, normalised by the
training split's statistics, and placed on the device."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import ImageData, Split, dataset_source, make_split
from .data.base import check_declared_shape, restrict_classes
from .data.release import release_differences
from .data.stream import FileImages, default_workers, not_streamable
from .errors import DataError
from .suite import Suite
from .train import DeviceData, normalisation_stats


@dataclass
class Prepared:
    data: ImageData
    split: Split
    train: DeviceData
    val: DeviceData
    test: DeviceData
    image_size: int  # what the models see: the data's size, or data.resize


def prepare_data(name: str, suite: Suite, data_root: Path, download: bool, cache_dir: Path, device: torch.device,
                 log: Callable[[str], None]) -> Prepared:
    ds = suite.spec.data
    source = dataset_source(name)
    if ds.loading == "stream" and not source.streamable:
        raise not_streamable(name)
    data = source.load(data_root, download, cache_dir, skip_bad_images=ds.skip_bad_images, classes=ds.classes,
                       **({"loading": ds.loading} if source.streamable else {}))
    check_declared_shape(source, data)
    differs = release_differences(name, data.classes, data.train_y, data.test_y)
    if differs:
        # A warning, not an error: a user may mean to run on what they have. The results carry
        # it (data.notes), so no table presents them as results on the release.
        log(f"[data] warning: {name} at {data.location} is not the whole release: {'; '.join(differs)}. "
            "Results on it compare with no one's on this name (an interrupted download or unpack? fetch it again); "
            "they record this in their data notes")
        data = dataclasses.replace(data, notes=(data.notes + f"; not the whole release: {'; '.join(differs)}").lstrip("; "))
    data = restrict_classes(data, ds.classes)
    sp = suite.spec.split
    if data.test_x is None and sp.test <= 0:
        raise DataError(f"dataset {name!r} ({data.location}) has no test split; give split.test a fraction > 0 in {suite.source}")
    if data.test_x is not None and sp.test > 0:
        raise DataError(f"dataset {name!r} ({data.location}) has its own test split; set split.test to 0 in {suite.source}")
    split = make_split(data.train_y, data.classes, sp.seed, sp.val, sp.test, sp.max_per_class, data.test_y)
    mean, std = normalisation_stats(data.train_x[split.train], ds.normalize, ds.workers)

    def part(x: torch.Tensor, y: torch.Tensor) -> DeviceData:
        return DeviceData(x.to(device), y.to(device), mean.to(device), std.to(device), ds.resize, ds.workers)

    if split.test is not None:
        test = part(data.train_x[split.test], data.train_y[split.test])
    elif split.official_test is not None:
        test = part(data.test_x[split.official_test], data.test_y[split.official_test])
    else:
        test = part(data.test_x, data.test_y)
    prepared = Prepared(data, split, part(data.train_x[split.train], data.train_y[split.train]), part(data.train_x[split.val], data.train_y[split.val]), test,
                        ds.resize or data.image_size)
    resized = f" resized to {ds.resize}×{ds.resize}" if ds.resize else ""
    streamed = f", streamed from disk by {ds.workers or default_workers()} DataLoader worker(s)" if isinstance(data.train_x, FileImages) else ""
    log(f"[data] {name}: {len(prepared.train)} train / {len(prepared.val)} val / {len(prepared.test)} test, "
        f"{data.channels}×{data.image_size}×{data.image_size}{resized}, {data.num_classes} classes, from {data.location}{streamed}")
    return prepared
