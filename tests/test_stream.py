"""Image sets streamed from disk (data.loading: stream): DataLoader workers decode each batch
of the trainer's seeded order. Streaming must change nothing but where the pixels wait:
same pixels, same order, same weights, same config hash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdbench.cli import main
from kdbench.data import DATASETS
from kdbench.data import stream as stream_mod
from kdbench.data.stream import FileImages
from kdbench.errors import DataError, SuiteError
from kdbench.suite import parse_suite
from kdbench.train import channel_stats, normalisation_stats

CLASSES = ("ant", "bee", "cow")


def make_tree(top: Path, n: int = 12, size: int = 20) -> None:
    """Real JPEG files (lossy, so decoding matters) in the image-folder layout; class c's
    images are brighter in channel c, so there is something to learn."""
    rng = np.random.default_rng(1)
    for part, count in (("train", n), ("test", n // 2)):
        for ci, c in enumerate(CLASSES):
            (top / part / c).mkdir(parents=True)
            for i in range(count):
                arr = rng.integers(0, 160, (size, size, 3), dtype=np.uint8)
                arr[..., ci] += 90
                Image.fromarray(arr).save(top / part / c / f"{i:04d}.jpg", quality=80)


def suite_text(loading: str, workers: int = 2) -> str:
    return (
        "name: streamed\nseeds: [3]\nsplit: {seed: 5, train: 0.75, val: 0.25}\n"
        f"data: {{loading: {loading}, workers: {workers}}}\n"
        "matrix: {datasets: ['folder:tree@20'], teachers: [cnn_small], students: [cnn_tiny], methods: [none, kd]}\n"
        "teacher: {epochs: 2, batch_size: 8, augment: [crop, flip]}\n"
        "student: {epochs: 2, batch_size: 8, augment: [crop, flip], select: best_val}\n"
        "metrics: [top1, agreement]\n"
    )


def run(tmp_path: Path, loading: str, results: str, workers: int = 2) -> tuple[int, str]:
    suite = tmp_path / f"{loading}.yaml"
    suite.write_text(suite_text(loading, workers))
    code = main(["run", str(suite), "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / results),
                 "--cache", str(tmp_path / f"cache-{loading}"), "--device", "cpu"])
    return code, results


def test_streamed_training_is_bitwise_the_in_memory_training(tmp_path, capsys):
    make_tree(tmp_path / "data" / "tree")
    assert run(tmp_path, "memory", "r-mem")[0] == 0
    assert run(tmp_path, "stream", "r-stream")[0] == 0
    out = capsys.readouterr().out
    assert "streamed from disk by 2 DataLoader worker(s)" in out
    assert "checking that the 54 images of" in out  # the one pass that finds bad files up front
    mem = sorted((tmp_path / "r-mem" / "streamed").glob("*.json"))
    streamed = sorted((tmp_path / "r-stream" / "streamed").glob("*.json"))
    assert [p.name for p in mem] == [p.name for p in streamed] and len(mem) == 2
    for a, b in zip(mem, streamed, strict=True):
        ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
        assert ra["config_hash"] == rb["config_hash"]
        assert ra["metrics"] == rb["metrics"]
        assert ra["normalisation"] == rb["normalisation"]
        wa = torch.load(a.with_suffix(".pt"), weights_only=True)
        wb = torch.load(b.with_suffix(".pt"), weights_only=True)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # Same config hash: switching to streaming does not re-run finished cells.
    assert run(tmp_path, "stream", "r-mem")[0] == 0
    assert "0 to run" in capsys.readouterr().out


def test_worker_count_changes_nothing(tmp_path):
    make_tree(tmp_path / "tree", n=10)
    data = DATASETS.get("cifar10-jpeg")  # an image-folder source: streamable
    from kdbench.data.folder import load_image_tree

    streamed = load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="stream")
    memory = load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="memory")
    assert isinstance(streamed.train_x, FileImages) and data.streamable
    order = torch.randperm(len(streamed.train_x), generator=torch.Generator().manual_seed(0))
    sizes = [7, 7, 7, 9]
    one = torch.cat(list(streamed.train_x.batches(order, sizes, torch.device("cpu"), workers=1, seed=0)))
    two = torch.cat(list(streamed.train_x.batches(order, sizes, torch.device("cpu"), workers=2, seed=0)))
    assert torch.equal(one, memory.train_x[order]) and torch.equal(two, one)
    # Lazy subsets index like tensors: by indices, by a mask, by a slice.
    idx = torch.tensor([4, 0, 17])
    assert torch.equal(streamed.train_x[idx].decode(range(3)), memory.train_x[idx])
    mask = streamed.train_y == 1
    assert torch.equal(streamed.train_x[mask].decode(range(int(mask.sum()))), memory.train_x[mask])
    assert torch.equal(streamed.train_x[2:5].decode([0, 1, 2]), memory.train_x[2:5])
    # Channel statistics from integer sums over the files equal the in-memory ones exactly.
    for a, b in zip(normalisation_stats(streamed.train_x, "split", 2), channel_stats(memory.train_x), strict=True):
        assert torch.equal(a, b)


def test_bad_image_is_found_before_training_and_skipped_only_when_asked(tmp_path, capsys):
    from kdbench.data.folder import load_image_tree

    make_tree(tmp_path / "tree", n=4)
    bad = tmp_path / "tree" / "train" / "bee" / "0002.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(DataError, match=r"1 image\(s\) under .* cannot be decoded, e\.g\. .*bee/0002\.jpg.*skip_bad_images"):
        load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="stream")
    assert "checking that the 18 images" in capsys.readouterr().out
    d = load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="stream", skip_bad_images=True)
    out = capsys.readouterr().out
    assert "checking" not in out  # remembered by the files' fingerprint
    assert "skipped 1 image(s)" in out and len(d.train_x) == len(d.train_y) == 11
    assert not any(p.endswith("bee/0002.jpg") for p in d.train_x.paths)


def test_an_image_that_breaks_after_the_check_stops_the_run_with_its_name(tmp_path):
    from kdbench.data.folder import load_image_tree

    make_tree(tmp_path / "tree", n=4)
    d = load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="stream")
    Path(d.train_x.paths[5]).write_bytes(b"not an image")
    with pytest.raises(DataError) as err:
        list(d.train_x.batches(torch.arange(12), [6, 6], torch.device("cpu"), workers=2, seed=0))
    message = str(err.value)
    assert message.startswith(d.train_x.paths[5]) and "cannot decode image" in message
    assert "Traceback" not in message


def test_auto_streams_only_large_sets(tmp_path, monkeypatch):
    from kdbench.data.folder import load_image_tree

    make_tree(tmp_path / "tree", n=2)
    assert isinstance(load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="auto").train_x, torch.Tensor)
    monkeypatch.setattr(stream_mod, "STREAM_ABOVE_BYTES", 9 * 3 * 20 * 20 - 1)  # just under the 9 images' pixels
    assert isinstance(load_image_tree("t", tmp_path / "tree", ("train", "test"), 20, "RGB", tmp_path / "c", loading="auto").train_x, FileImages)


def test_streaming_an_array_data_set_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "suites/smoke.yaml", "--set", "data.loading=stream", "--results", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "c"), "--device", "cpu"])
    assert code != 0
    assert "is read whole from array files, so data.loading: stream does not apply" in capsys.readouterr().err
    assert not (tmp_path / "r" / "smoke").exists() or not list((tmp_path / "r" / "smoke").glob("*.json"))


def test_loading_fields_are_validated():
    base = "name: x\nmatrix: {datasets: [fmnist-smoke], teachers: [cnn_small], students: [cnn_tiny]}\n"
    with pytest.raises(SuiteError, match="data.workers"):
        parse_suite(base + "data: {workers: -1}\n", "x.yaml")
    with pytest.raises(SuiteError, match="data.loading"):
        parse_suite(base + "data: {loading: disk}\n", "x.yaml")
