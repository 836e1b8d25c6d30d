"""Datasets: readers on real files and on small trees laid out like the real ones, splits,
fingerprints, and the errors for missing or broken data."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdbench.data import DATASETS, make_split, resolve_data_root
from kdbench.data.folder import list_images, load_image_tree, tree_fingerprint
from kdbench.data.idx import read_idx
from kdbench.errors import DataError

from .layouts import write_eurosat, write_intel, write_pathmnist

# From ../shared/datasets/README.md: the published fingerprint of the JPEG CIFAR-10 copy.
CIFAR10_JPEG_FINGERPRINT = "c217601eebcfee757a51b381539a30bc3b0a89cac54850a81d992750b4fa8352"
SMOKE_FINGERPRINT_FILE = Path(__file__).resolve().parents[1] / "kdbench" / "data" / "smoke" / "PROVENANCE.md"


def write_idx(path: Path, arr: np.ndarray, magic: bytes | None = None) -> None:
    header = (magic or struct.pack(">HBB", 0, 8, arr.ndim)) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def assert_declared_shape(d, whole_release: bool = True) -> None:
    """The loaded images are what the source's registration declares (the benchmarks derive
    each suite model's input from it, without the data); the class count only for data laid
    out with every class of the release."""
    shape = DATASETS.get(d.name).shape
    assert (d.channels, d.image_size) == (shape.channels, shape.size), d.name
    if whole_release:
        assert d.num_classes == shape.classes, d.name


def test_every_registered_dataset_declares_its_shape():
    assert all(DATASETS.get(name).shape is not None for name in DATASETS.names())


def test_smoke_subset_is_balanced_and_recorded():
    d = DATASETS.get("fmnist-smoke").load(Path("/nonexistent"), False, Path("/nonexistent"))
    assert_declared_shape(d)
    assert d.train_x.shape == (2000, 1, 28, 28) and d.test_x.shape == (500, 1, 28, 28)
    assert torch.bincount(d.train_y).tolist() == [200] * 10
    assert torch.bincount(d.test_y).tolist() == [50] * 10
    assert len(d.fingerprint) == 64


def test_split_is_stratified_disjoint_and_pinned():
    d = DATASETS.get("fmnist-smoke").load(Path("/nonexistent"), False, Path("/nonexistent"))
    s = make_split(d.train_y, d.classes, seed=20261125, val=0.1, test=0.0)
    assert len(s.train) == 1800 and len(s.val) == 200 and s.test is None
    assert torch.bincount(d.train_y[s.val]).tolist() == [20] * 10
    assert set(s.train.tolist()).isdisjoint(s.val.tolist())
    again = make_split(d.train_y, d.classes, seed=20261125, val=0.1, test=0.0)
    assert again.fingerprint == s.fingerprint
    assert make_split(d.train_y, d.classes, seed=1, val=0.1, test=0.0).fingerprint != s.fingerprint
    # Pinned: computed from sha256 of (seed, index) only, so this value holds on every
    # machine and torch version. A change here changes every golden comparison.
    assert s.fingerprint == "076ab79a32f5b5e6c033054c253243e3aaca4df28c0342eda75abfca59c58136"


def test_split_rejects_classes_too_small():
    y = torch.tensor([0] * 20 + [1] * 3)
    with pytest.raises(DataError, match="class 'b' has 3 image"):
        make_split(y, ["a", "b"], seed=0, val=0.1, test=0.1)


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("KDBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "cli") == (tmp_path / "cli", "--data-root")
    assert resolve_data_root(None) == (tmp_path / "env", "$KDBENCH_DATA")
    monkeypatch.delenv("KDBENCH_DATA")
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path / "cache"))
    assert resolve_data_root(None)[0] == tmp_path / "cache" / "data"


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        DATASETS.get("fashion-mnist").load(tmp_path, False, tmp_path / "cache")
    msg = str(e.value)
    assert str(tmp_path / "fashion-mnist") in msg and str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "--download" in msg


def test_idx_wrong_header_and_truncation(tmp_path):
    arr = np.zeros((3, 4, 4), np.uint8)
    write_idx(tmp_path / "bad.gz", arr, magic=struct.pack(">HBB", 0, 0x0D, 3))
    with pytest.raises(DataError, match="bad IDX header"):
        read_idx(tmp_path / "bad.gz")
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 3, 4, 4) + bytes(40)
    (tmp_path / "short").write_bytes(raw)
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_layout_and_label_mismatch(tmp_path):
    folder = tmp_path / "FashionMNIST" / "raw"  # torchvision's layout
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (10, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(9) % 10)
    with pytest.raises(DataError, match="do not match"):
        DATASETS.get("fashion-mnist").load(tmp_path, False, tmp_path / "cache")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10) % 10)
    d = DATASETS.get("fashion-mnist").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (20, 1, 28, 28)


def make_tree(top: Path, n: int = 3, size: int = 32, grey_one: bool = False) -> None:
    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for c in ("cat", "dog"):
            (top / part / c).mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                im = Image.fromarray(arr)
                if grey_one and i == 0 and c == "dog":
                    im = im.convert("L")
                im.save(top / part / c / f"{i:04d}.jpg", quality=75)


def test_image_tree_reads_grey_images_as_rgb(tmp_path, isolated_cache):
    make_tree(tmp_path / "cifar10-jpeg", grey_one=True)
    d = DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (6, 3, 32, 32) and d.classes == ["cat", "dog"]
    assert d.test_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert_declared_shape(d, whole_release=False)
    # The second load comes from the decoded cache and is identical.
    again = DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache")
    assert torch.equal(again.train_x, d.train_x) and again.fingerprint == d.fingerprint


def test_image_tree_corrupt_file_is_named_or_skipped_when_asked(tmp_path, isolated_cache):
    make_tree(tmp_path / "t")
    bad = tmp_path / "t" / "train" / "cat" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:40])
    (tmp_path / "t" / "test" / "dog" / "0002.jpg").write_text("not an image at all")
    with pytest.raises(DataError, match="0001.jpg: cannot decode .* data.skip_bad_images"):
        load_image_tree("t", tmp_path / "t", ("train", "test"), 32, "RGB", tmp_path / "cache")
    d = load_image_tree("t", tmp_path / "t", ("train", "test"), 32, "RGB", tmp_path / "cache", skip_bad_images=True)
    assert d.train_x.shape[0] == 5 and d.test_x.shape[0] == 5 and len(d.train_y) == 5 and len(d.test_y) == 5
    assert [Path(f).name for f in d.skipped_files] == ["0001.jpg", "0002.jpg"]
    assert d.train_y.tolist() == [0, 0, 1, 1, 1]
    # The decoded cache remembers the bad files: without the option the error comes back.
    with pytest.raises(DataError, match="2 image\\(s\\) under .* cannot be decoded"):
        load_image_tree("t", tmp_path / "t", ("train", "test"), 32, "RGB", tmp_path / "cache")


def test_image_tree_class_mismatch_and_empty_class(tmp_path, isolated_cache):
    make_tree(tmp_path / "t")
    (tmp_path / "t" / "test" / "bird").mkdir()
    with pytest.raises(DataError, match="class folder has no images"):
        load_image_tree("t", tmp_path / "t", ("train", "test"), 32, "RGB", tmp_path / "cache")


def test_fingerprint_changes_with_content(tmp_path):
    make_tree(tmp_path / "t")
    _, items = list_images(tmp_path / "t" / "train")
    files = [p for p, _ in items]
    before = tree_fingerprint(tmp_path / "t", files)
    files[0].write_bytes(files[0].read_bytes() + b"\0")
    assert tree_fingerprint(tmp_path / "t", files) != before


def test_cifar10_torchvision_format(tmp_path):
    top = tmp_path / "cifar-10-batches-py"
    top.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(top / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 255, (10, 3072), dtype=np.uint8), "labels": list(range(10))}, f)
    d = DATASETS.get("cifar10").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (50, 3, 32, 32) and d.test_x.shape == (10, 3, 32, 32)
    assert_declared_shape(d)
    # 50 images where the release has 50,000: the run goes on, but says so, and the results'
    # data notes carry it (a truncated download must not pass for CIFAR-10).
    from kdbench.prepare import prepare_data
    from kdbench.suite import parse_suite

    suite = parse_suite("name: cut\nseeds: [0]\nsplit: {seed: 1, train: 0.8, val: 0.2}\nmatrix: {datasets: [cifar10], teachers: [cnn_small], "
                        "students: [cnn_tiny]}\nteacher: {epochs: 1}\nstudent: {epochs: 1}\n", "cut.yaml")
    lines: list[str] = []
    p = prepare_data("cifar10", suite, tmp_path, False, tmp_path / "cache", torch.device("cpu"), lines.append)
    warning = [line for line in lines if "warning" in line]
    assert len(warning) == 1 and "cifar10 at " in warning[0] and "is not the whole release" in warning[0], lines
    assert "train 50 images of the release's 50,000 (airplane 5 of 5,000" in warning[0] and "and 6 more classes" in warning[0]
    assert "test 10 images of the release's 10,000" in warning[0]
    assert "not the whole release: train 50 images" in p.data.notes


def test_release_counts_name_what_an_incomplete_copy_lacks():
    from kdbench.data.folder import CIFAR10_CLASSES
    from kdbench.data.release import release_differences

    def labels(per_class: list[int]) -> torch.Tensor:
        return torch.cat([torch.full((n,), i) for i, n in enumerate(per_class)])

    whole_train, whole_test = labels([5000] * 10), labels([1000] * 10)
    assert release_differences("cifar10-jpeg", CIFAR10_CLASSES, whole_train, whole_test) == []
    # An unpack cut short in the cat folder: named, with the totals.
    cut = labels([5000] * 3 + [1200] + [5000] * 6)
    assert release_differences("cifar10-jpeg", CIFAR10_CLASSES, cut, whole_test) == [
        "train 46,200 images of the release's 50,000 (cat 1,200 of 5,000)"]
    # A suite that keeps two classes is judged on those two only (folders decode only those).
    assert release_differences("cifar10-jpeg", ["cat", "dog"], labels([5000, 5000]), labels([1000, 1000])) == []
    assert release_differences("cifar10-jpeg", ["cat", "dog"], labels([5000, 4999]), None) == [
        "train 9,999 images of the release's 10,000 (dog 4,999 of 5,000)"]
    # Data sets whose release counts are not listed (stand-in layouts, generic folders): nothing said.
    assert release_differences("eurosat", ["a"], labels([3]), None) == []
    assert release_differences("folder:/x@32", ["a"], labels([3]), None) == []


@pytest.mark.parametrize("name, parts", [("cifar10-jpeg", ("train", "test")), ("imagenette-224", ("train", "val"))])
def test_release_counts_match_the_real_copies_here(data_root, name, parts):
    """The listed counts are the copies' (whose totals ../shared/datasets/README.md documents):
    a wrong expectation would accuse a complete copy. Counted from the folders, not decoded."""
    from kdbench.data.release import release_differences

    top = data_root / name
    if not top.is_dir():
        pytest.skip(f"no {name} under {data_root}")
    classes = sorted(p.name for p in (top / parts[0]).iterdir())
    train, test = (torch.cat([torch.full((len(list((top / part / c).iterdir())),), i) for i, c in enumerate(classes)]) for part in parts)
    assert release_differences(name, classes, train, test) == []


def test_real_cifar10_jpeg_fingerprint_matches_published(data_root):
    top = data_root / "cifar10-jpeg"
    if not top.is_dir():
        pytest.skip(f"no cifar10-jpeg under {data_root}")
    files = sorted(p for p in top.rglob("*") if p.is_file() and p.suffix == ".jpg")
    assert len(files) == 60000
    assert tree_fingerprint(top, files) == CIFAR10_JPEG_FINGERPRINT


def test_real_fashion_mnist_loads(data_root):
    if not (data_root / "fashion-mnist").is_dir():
        pytest.skip(f"no fashion-mnist under {data_root}")
    d = DATASETS.get("fashion-mnist").load(data_root, False, Path("/nonexistent"))
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert_declared_shape(d)
    assert torch.bincount(d.test_y).tolist() == [1000] * 10
    from kdbench.data.release import release_differences

    assert release_differences("fashion-mnist", d.classes, d.train_y, d.test_y) == []


def test_generic_image_folder_by_path(tmp_path, isolated_cache):
    from kdbench.data import dataset_source
    from kdbench.suite import parse_suite

    make_tree(tmp_path / "my-set", size=40)
    d = dataset_source("folder:my-set@24").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (6, 3, 24, 24) and d.test_x is not None
    suite = parse_suite("name: x\nmatrix: {datasets: ['folder:my-set@24'], teachers: [cnn_small], students: [cnn_tiny]}", "x.yaml")
    assert suite.cells()[0].id.startswith("folder:my-set@24__")
    with pytest.raises(DataError, match="SIZE must be"):
        dataset_source("folder:my-set@big")


def test_decoded_cache_damage_is_detected_and_rebuilt(tmp_path, capsys):
    make_tree(tmp_path / "cifar10-jpeg")
    first = DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache")
    [cache] = list((tmp_path / "cache" / "decoded").glob("*.pt"))
    blob = torch.load(cache, weights_only=True)
    blob["train_x"][0, 0, 0, 0] ^= 0xFF  # a silent bit flip in the pixels, file still loads
    torch.save(blob, cache)
    again = DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache")
    assert "is corrupt" in capsys.readouterr().out
    assert torch.equal(again.train_x, first.train_x)


def test_imagenette_layout_is_read_at_224(tmp_path, isolated_cache):
    make_tree(tmp_path / "imagenette-224", size=160)  # the copy here is 224×224; others (imagenette2-160) are resized
    (tmp_path / "imagenette-224" / "test").rename(tmp_path / "imagenette-224" / "val")
    d = DATASETS.get("imagenette-224").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (6, 3, 224, 224) and d.test_x.shape == (6, 3, 224, 224)
    assert_declared_shape(d, whole_release=False)


def test_eurosat_layouts(tmp_path):
    rng = np.random.default_rng(0)
    write_eurosat(tmp_path, {c: list(rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)) for c in ("AnnualCrop", "Forest")})
    d = DATASETS.get("eurosat").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (8, 3, 64, 64) and d.test_x is None and d.classes == ["AnnualCrop", "Forest"]
    assert_declared_shape(d, whole_release=False)
    with pytest.raises(DataError, match="--download"):
        DATASETS.get("eurosat").load(tmp_path / "empty", False, tmp_path / "cache")


def test_intel_image_kaggle_layout(tmp_path):
    rng = np.random.default_rng(0)

    def part() -> dict[str, list[np.ndarray]]:
        # Kaggle's set has a few images that are not 150×150: they are resized.
        return {c: [rng.integers(0, 255, (150 if i else 113, 150, 3), dtype=np.uint8) for i in range(3)] for c in ("buildings", "sea")}

    write_intel(tmp_path, part(), part())
    d = DATASETS.get("intel-image").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (6, 3, 150, 150) and d.test_x.shape == (6, 3, 150, 150)
    assert_declared_shape(d, whole_release=False)
    with pytest.raises(DataError, match="Kaggle"):
        DATASETS.get("intel-image").load(tmp_path / "empty", False, tmp_path / "cache")


def test_class_subset_relabels_and_decodes_only_those(tmp_path):
    from kdbench.data.base import restrict_classes

    make_tree(tmp_path / "cifar10-jpeg")
    d = DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache", classes=("dog",))
    assert d.classes == ["dog"] and d.train_y.tolist() == [0, 0, 0]
    with pytest.raises(DataError, match="no class folder 'dgo' \\(did you mean 'dog'"):
        DATASETS.get("cifar10-jpeg").load(tmp_path, False, tmp_path / "cache", classes=("dgo",))
    smoke = DATASETS.get("fmnist-smoke").load(Path("/unused"), False, tmp_path)
    two = restrict_classes(smoke, ("Sneaker", "T-shirt/top"))
    assert two.classes == ["Sneaker", "T-shirt/top"] and two.train_x.shape[0] == 400
    assert torch.equal(two.train_x[two.train_y == 1], smoke.train_x[smoke.train_y == 0])


def random_pathmnist(path: Path, n: dict[str, int], rng: np.random.Generator, **replace) -> None:
    """A pathmnist.npz of random pixels, ``n[part]`` images in each part, the 9 labels in turn."""
    write_pathmnist(path, {part: (rng.integers(0, 256, (count, 28, 28, 3), dtype=np.uint8), np.arange(count) % 9) for part, count in n.items()}, **replace)


def test_pathmnist_layout_pool_and_test(tmp_path):
    rng = np.random.default_rng(0)
    random_pathmnist(tmp_path / "pathmnist.npz", {"train": 36, "val": 18, "test": 27}, rng)
    d = DATASETS.get("pathmnist").load(tmp_path, False, tmp_path / "cache")
    assert d.train_x.shape == (54, 3, 28, 28) and d.test_x.shape == (27, 3, 28, 28)
    assert d.num_classes == 9 and d.classes[0] == "adipose"
    assert_declared_shape(d)
    with np.load(tmp_path / "pathmnist.npz") as z:
        # HWC → CHW without changing a pixel; val follows train in the pool.
        assert np.array_equal(d.train_x[36].permute(1, 2, 0).numpy(), z["val_images"][0])
    split = make_split(d.train_y, d.classes, 0, 0.1, 0.0, 0, d.test_y)
    assert len(split.train) + len(split.val) == 54


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"test_labels": np.zeros((5, 1), np.uint8)}, "test_images has 27 images but test_labels has 5 labels"),
        ({"train_labels": np.full((36, 1), 9, np.uint8)}, "train_labels outside 0…8"),
        ({"val_images": np.zeros((18, 28, 28), np.uint8)}, "val_images must be uint8 (N, H, W, 3)"),
    ],
)
def test_pathmnist_bad_arrays_are_named(tmp_path, replace, message):
    random_pathmnist(tmp_path / "pathmnist.npz", {"train": 36, "val": 18, "test": 27}, np.random.default_rng(0), **replace)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DATASETS.get("pathmnist").load(tmp_path, False, tmp_path / "cache")


def test_pathmnist_truncated_or_missing(tmp_path):
    random_pathmnist(tmp_path / "pathmnist.npz", {"train": 9, "val": 9, "test": 9}, np.random.default_rng(0))
    raw = (tmp_path / "pathmnist.npz").read_bytes()
    (tmp_path / "pathmnist.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cannot read .*download it again"):
        DATASETS.get("pathmnist").load(tmp_path, False, tmp_path / "cache")
    np.savez(tmp_path / "pathmnist.npz", images=np.zeros(3))
    with pytest.raises(DataError, match="not a MedMNIST file: missing arrays train_images"):
        DATASETS.get("pathmnist").load(tmp_path, False, tmp_path / "cache")
    with pytest.raises(DataError, match="'pathmnist' not found. Looked in"):
        DATASETS.get("pathmnist").load(tmp_path / "empty", False, tmp_path / "cache")


def test_a_size_variant_under_a_release_name_is_refused(tmp_path):
    """MedMNIST+ ships PathMNIST at 64, 128 and 224 px too; one of those renamed to pathmnist.npz
    would train S3's PathMNIST models at an input nobody benchmarked: a clear error instead."""
    from kdbench.prepare import prepare_data
    from kdbench.suite import parse_suite

    rng = np.random.default_rng(0)
    write_pathmnist(tmp_path / "pathmnist.npz", {part: (rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), np.arange(n) % 9)
                                                 for part, n in (("train", 36), ("val", 18), ("test", 27))})
    suite = parse_suite("name: variant\nseeds: [0]\nsplit: {seed: 1, train: 0.8, val: 0.2}\nmatrix: {datasets: [pathmnist], "
                        "teachers: [cnn_small], students: [cnn_tiny]}\nteacher: {epochs: 1}\nstudent: {epochs: 1}\n", "variant.yaml")
    with pytest.raises(DataError, match=r"pathmnist at .*pathmnist.npz holds 3×64×64 images, but the pathmnist release is 3×28×28 "
                                        r"\(MedMNIST v2 PathMNIST.*another release, or a size variant"):
        prepare_data("pathmnist", suite, tmp_path, False, tmp_path / "cache", torch.device("cpu"), print)
