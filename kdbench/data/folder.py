"""Image-folder datasets (``<root>/<split>/<class>/<image>``): CIFAR-10 as JPEG files,
Imagenette, and any folder a user points at; plus CIFAR-10 in torchvision's own format.

Images are decoded once (in parallel) into a uint8 tensor cached on disk, keyed by the
files' fingerprint, so later runs skip decoding."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_write_bytes, state_dict_bytes, tensors_sha256
from ..registry import suggest
from .base import ImageData, missing, register_dataset, sha256_files
from .stream import FileImages, should_stream

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def list_images(folder: Path, keep: tuple[str, ...] = ()) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and (file, label) pairs; with ``keep``, only those classes, in that order."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{folder}: no class folders inside (expected {folder}/<class>/<image>)")
    if keep:
        for c in keep:
            if c not in classes:
                raise DataError(f"{folder}: no class folder {c!r}{suggest(c, classes)}; classes: {', '.join(classes)}")
        classes = list(keep)
    items = []
    for ci, c in enumerate(classes):
        files = sorted(p for p in (folder / c).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise DataError(f"{folder / c}: class folder has no images ({', '.join(sorted(IMAGE_EXTS))})")
        items.extend((p, ci) for p in files)
    return classes, items


def tree_fingerprint(top: Path, files: list[Path]) -> str:
    """sha256 of the text ``find . -type f | LC_ALL=C sort | xargs sha256sum`` prints in
    ``top`` (the recipe ../shared/datasets/README.md gives), over ``files``."""
    rel = sorted(("./" + p.relative_to(top).as_posix(), p) for p in files)
    outer = hashlib.sha256()
    for name, p in rel:
        h = hashlib.sha256(p.read_bytes()).hexdigest()
        outer.update(f"{h}  {name}\n".encode())
    return outer.hexdigest()


def _decode(args: tuple[str, int, str, bool]) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    path, size, mode, skip_bad = args
    try:
        with Image.open(path) as im:
            im = im.convert(mode)  # grey images in an RGB set become RGB here
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        if skip_bad:
            return None
        raise DataError(f"{path}: cannot decode image ({e}); fix or remove it, or set data.skip_bad_images: true in the suite") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _map_images(fn, jobs: list) -> list:
    """``fn`` over the jobs in order, in up to 16 processes when there are many images (a
    process pool costs more than it saves below a few thousand)."""
    workers = min(16, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 2000:
        with ProcessPoolExecutor(workers) as ex:
            return list(ex.map(fn, jobs, chunksize=256))
    return [fn(j) for j in jobs]


def decode_all(paths: list[Path], size: int, mode: str, skip_bad: bool = False) -> tuple[torch.Tensor, list[int]]:
    """The images as one uint8 tensor, and the positions of those that could not be decoded
    (skipped only when ``skip_bad``; otherwise the first one raises)."""
    arrays = _map_images(_decode, [(str(p), size, mode, skip_bad) for p in paths])
    bad = [i for i, a in enumerate(arrays) if a is None]
    good = [a for a in arrays if a is not None]
    if not good:
        raise DataError(f"none of the {len(paths)} images under {paths[0].parent.parent if paths else '?'} could be decoded")
    return torch.from_numpy(np.stack(good)), bad


def read_decoded_cache(path: Path, fingerprint: str) -> dict | None:
    """The decoded tensors if the cache file is intact and belongs to these source files;
    otherwise None (and a damaged file is reported and removed, never used)."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, weights_only=True)
        tensors = {k: v for k, v in blob.items() if isinstance(v, torch.Tensor)}
        if "train_bad" not in blob:
            return None  # written by an older kdbench: decode again
        if blob.get("fingerprint") != fingerprint or tensors_sha256(tensors) != blob.get("content_sha256"):
            raise ValueError("content does not match its recorded sha256")
        return blob
    except Exception as e:  # any damage: report, rebuild
        print(f"[data] decoded cache {path} is corrupt ({type(e).__name__}: {e}); decoding again", flush=True)
        path.unlink(missing_ok=True)
        return None


def find_bad_images(paths: list[Path], size: int, mode: str) -> list[int]:
    """Positions of the images that cannot be decoded (a full decode pass, pixels dropped)."""
    ok = _map_images(_decodes, [(str(p), size, mode, True) for p in paths])
    return [i for i, good in enumerate(ok) if not good]


def _decodes(args: tuple[str, int, str, bool]) -> bool:
    return _decode(args) is not None


def checked_for_streaming(name: str, fp: str, size: int, mode: str, train_items: list, test_items: list, cache_dir: Path) -> dict:
    """For a streamed data set: which images cannot be decoded, found by one pass over the
    files before any training (so a bad file stops the run at the start, named, and not
    hours into it), and remembered by the files' fingerprint so later runs skip the pass."""
    path = cache_dir / "decoded" / f"{name}-{fp[:16]}-{size}{mode}-checked.json"
    try:
        blob = json.loads(path.read_text())
        if blob.get("fingerprint") == fp:
            return blob
    except (OSError, ValueError):
        pass
    print(f"[data] checking that the {len(train_items) + len(test_items)} images of {name} decode "
          f"(once, for streaming; remembered in {path.parent})", flush=True)
    blob = {"fingerprint": fp, "train_bad": find_bad_images([p for p, _ in train_items], size, mode),
            "test_bad": find_bad_images([p for p, _ in test_items], size, mode) if test_items else []}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(blob).encode())
    return blob


def decoded_in_memory(name: str, fp: str, size: int, mode: str, train_items: list, test_items: list, cache_dir: Path, skip_bad_images: bool) -> dict:
    """The decoded uint8 tensors of every image (read from the decoded cache when it is
    intact, otherwise decoded in parallel and cached)."""
    cache = cache_dir / "decoded" / f"{name}-{fp[:16]}-{size}{mode}.pt"  # fp covers the classes kept
    blob = read_decoded_cache(cache, fp)
    if blob is None:
        print(f"[data] decoding {len(train_items) + len(test_items)} images of {name} (once; cached in {cache.parent})", flush=True)
        train_x, train_bad = decode_all([p for p, _ in train_items], size, mode, skip_bad_images)
        test_x, test_bad = decode_all([p for p, _ in test_items], size, mode, skip_bad_images) if test_items else (None, [])
        blob = {"fingerprint": fp, "train_x": train_x, "test_x": test_x,
                "train_bad": torch.tensor(train_bad, dtype=torch.int64), "test_bad": torch.tensor(test_bad, dtype=torch.int64)}
        blob["content_sha256"] = tensors_sha256({k: v for k, v in blob.items() if isinstance(v, torch.Tensor)})
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, state_dict_bytes(blob))
    return blob


def load_image_tree(name: str, top: Path, parts: tuple[str, str | None], size: int, mode: str, cache_dir: Path, notes: str = "",
                    skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
    """Load ``top/<train>/<class>/*`` and, if given, ``top/<test>/<class>/*`` (only ``classes``
    when given: the others are never decoded). ``loading`` (data.loading): decode everything
    into memory once, or leave the files on disk and decode batches as training needs them
    (``stream``; ``auto`` streams above STREAM_ABOVE_BYTES of decoded pixels)."""
    train_dir = top / parts[0]
    keep = classes
    classes, train_items = list_images(train_dir, keep)
    test_items: list[tuple[Path, int]] = []
    if parts[1] is not None:
        test_classes, test_items = list_images(top / parts[1], keep)
        if test_classes != classes:
            raise DataError(f"{name}: class folders differ between {parts[0]}/ and {parts[1]}/: {classes} vs {test_classes}")
    files = [p for p, _ in train_items + test_items]
    fp = tree_fingerprint(top, files)
    stream = should_stream(loading, len(files), 1 if mode == "L" else 3, size)
    if stream:
        blob = checked_for_streaming(name, fp, size, mode, train_items, test_items, cache_dir)
    else:
        blob = decoded_in_memory(name, fp, size, mode, train_items, test_items, cache_dir, skip_bad_images)
    bad_train, bad_test = set(torch.as_tensor(blob["train_bad"], dtype=torch.int64).tolist()), set(torch.as_tensor(blob["test_bad"], dtype=torch.int64).tolist())
    skipped = [str(train_items[i][0]) for i in sorted(bad_train)] + [str(test_items[i][0]) for i in sorted(bad_test)]
    if skipped and not skip_bad_images:
        raise DataError(f"{len(skipped)} image(s) under {top} cannot be decoded, e.g. {skipped[0]}; fix or remove them, "
                        "or set data.skip_bad_images: true in the suite")
    if skipped:
        print(f"[data] {name}: skipped {len(skipped)} image(s) that cannot be decoded (data.skip_bad_images), e.g. {skipped[0]}", flush=True)
    if stream:
        train_x = FileImages([p for i, (p, _) in enumerate(train_items) if i not in bad_train], size, mode)
        test_x = FileImages([p for i, (p, _) in enumerate(test_items) if i not in bad_test], size, mode) if test_items else None
        notes = (notes + "; streamed from the image files (data.loading)").lstrip("; ")
    else:
        train_x, test_x = blob["train_x"], blob["test_x"]
    data = ImageData(
        name=name,
        classes=classes,
        train_x=train_x,
        train_y=torch.tensor([c for i, (_, c) in enumerate(train_items) if i not in bad_train], dtype=torch.int64),
        test_x=test_x,
        test_y=torch.tensor([c for i, (_, c) in enumerate(test_items) if i not in bad_test], dtype=torch.int64) if test_items else None,
        fingerprint=fp,
        location=str(top),
        notes=notes,
        skipped_files=skipped,
    )
    data.check()
    return data


@register_dataset(
    "cifar10-jpeg", has_test_split=True, description="CIFAR-10 as an image-folder tree of JPEGs (train/ test/), 32×32 RGB", shape=(3, 32, 10),
    streamable=True
)
def load_cifar10_jpeg(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
    top = root / "cifar10-jpeg"
    if not (top / "train").is_dir():
        raise missing(
            "cifar10-jpeg",
            [top / "train", top / "test"],
            "Expected train/<class>/*.jpg and test/<class>/*.jpg. For the official CIFAR-10 files use dataset 'cifar10'.",
        )
    return load_image_tree(
        "cifar10-jpeg", top, ("train", "test"), 32, "RGB", cache_dir,
        notes="JPEG re-encoded CIFAR-10 (quality 75): pixels differ from the original arrays", skip_bad_images=skip_bad_images, classes=classes, loading=loading,
    )


@register_dataset(
    "imagenette-224", has_test_split=True, description="Imagenette, 224×224 image folders train/ val/ (val used as test)", shape=(3, 224, 10),
    streamable=True
)
def load_imagenette(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
    top = root / "imagenette-224"
    if not (top / "train").is_dir():
        raise missing("imagenette-224", [top / "train", top / "val"], "Expected train/<wnid>/*.JPEG and val/<wnid>/*.JPEG.")
    return load_image_tree("imagenette-224", top, ("train", "val"), 224, "RGB", cache_dir, skip_bad_images=skip_bad_images, classes=classes, loading=loading)


CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@register_dataset("cifar10", has_test_split=True, description="CIFAR-10 in torchvision's format (cifar-10-batches-py)", shape=(3, 32, 10))
def load_cifar10(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = ()) -> ImageData:
    top = root / "cifar-10-batches-py"
    if not top.is_dir() and download:
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    paths = [top / b for b in CIFAR10_BATCHES]
    if not all(p.exists() for p in paths):
        raise missing(
            "cifar10", [top], "Run again with --download (needs a network), or use 'cifar10-jpeg' for an image-folder copy."
        )
    xs, ys = [], []
    for p in paths:
        try:
            with open(p, "rb") as f:
                # The official CIFAR-10 python format is a pickle; torchvision reads it the same way.
                d = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d["labels"], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise DataError(f"{p}: not a readable CIFAR-10 batch ({e})") from None
    data = ImageData(
        name="cifar10",
        classes=CIFAR10_CLASSES,
        train_x=torch.from_numpy(np.concatenate(xs[:5])),
        train_y=torch.from_numpy(np.concatenate(ys[:5])),
        test_x=torch.from_numpy(xs[5]),
        test_y=torch.from_numpy(ys[5]),
        fingerprint=sha256_files(paths),
        location=str(top),
    )
    data.check()
    return data


def generic_folder_source(name: str):
    """``folder:PATH`` or ``folder:PATH@SIZE``: any image-folder tree. PATH is relative to the
    data root (or absolute) and holds ``train/<class>/*`` and, if the data set has one,
    ``test/<class>/*``. Images are converted to RGB and resized to SIZE×SIZE (default 64)."""
    from .base import DatasetSource

    spec = name[len("folder:") :]
    path, _, size_text = spec.partition("@")
    if not path:
        raise DataError(f"dataset {name!r}: expected folder:PATH or folder:PATH@SIZE")
    try:
        size = int(size_text) if size_text else 64
        if size < 8:
            raise ValueError
    except ValueError:
        raise DataError(f"dataset {name!r}: SIZE must be an integer ≥ 8, got {size_text!r}") from None

    def load(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
        top = Path(path) if Path(path).is_absolute() else root / path
        if not (top / "train").is_dir():
            raise missing(name, [top / "train"], "Expected train/<class>/<image> (and optionally test/<class>/<image>).")
        test = "test" if (top / "test").is_dir() else None
        safe = "folder-" + hashlib.sha256(str(top).encode()).hexdigest()[:8]
        return load_image_tree(safe, top, ("train", test), size, "RGB", cache_dir, notes=f"image folder {top}", skip_bad_images=skip_bad_images, classes=classes, loading=loading)

    # has_test_split is only known once the folder is seen: the runner checks it then.
    return DatasetSource(name, load, has_test_split=None, description=f"image folder {path} at {size}×{size}", streamable=True)


@register_dataset(
    "eurosat", has_test_split=False, description="EuroSAT RGB, 27,000 64×64 images, 10 classes, no test split (S1)", shape=(3, 64, 10),
    streamable=True,
)
def load_eurosat(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
    # torchvision's download unpacks to eurosat/2750/; the Zenodo zip to EuroSAT_RGB/.
    candidates = [root / "eurosat" / "2750", root / "EuroSAT_RGB", root / "eurosat"]
    found = next((c for c in candidates if c.is_dir() and any(d.is_dir() for d in c.iterdir())), None)
    if found is None and download:
        import torchvision

        torchvision.datasets.EuroSAT(str(root), download=True)
        found = candidates[0] if candidates[0].is_dir() else None
    if found is None:
        raise missing("eurosat", candidates, "Run again with --download (needs a network) or unpack EuroSAT_RGB.zip under the data root.")
    return load_image_tree("eurosat", found.parent, (found.name, None), 64, "RGB", cache_dir, skip_bad_images=skip_bad_images, classes=classes, loading=loading)


@register_dataset(
    "intel-image", has_test_split=True, description="Intel Image Classification, 150×150, 6 classes (S4)", shape=(3, 150, 6), streamable=True
)
def load_intel_image(root: Path, download: bool, cache_dir: Path, skip_bad_images: bool = False, classes: tuple[str, ...] = (), loading: str = "memory") -> ImageData:
    # Kaggle's archive nests each part once more: seg_train/seg_train/<class>/.
    top = root / "intel-image"
    for train, test in (("seg_train/seg_train", "seg_test/seg_test"), ("seg_train", "seg_test")):
        if (top / train).is_dir() and (top / test).is_dir() and any(d.is_dir() and not d.name.startswith("seg_") for d in (top / train).iterdir()):
            return load_image_tree("intel-image", top, (train, test), 150, "RGB", cache_dir, skip_bad_images=skip_bad_images, classes=classes, loading=loading)
    raise missing(
        "intel-image", [top / "seg_train" / "seg_train", top / "seg_train"],
        "Download 'Intel Image Classification' from Kaggle (it needs an account) and unpack it as intel-image/ under the data root.",
    )
