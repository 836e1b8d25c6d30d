"""Recipe options from the reference systems: class-balanced sampling (S1), ImageNet
normalisation, and sweeps over one field."""

from __future__ import annotations

import json

import pytest
import torch

from kdbench.errors import SuiteError
from kdbench.golden import seedless
from kdbench.suite import parse_suite
from kdbench.train import epoch_order, normalisation_stats

from .test_cli import QUICK, kdbench
from .test_suite import SMOKE, error_of


def test_shuffle_visits_every_image_once():
    y = torch.tensor([0] * 90 + [1] * 10)
    order = epoch_order(y, "shuffle", torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(100))


def test_class_balanced_sampling_sees_rare_classes_as_often_as_common_ones():
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    gen = torch.Generator().manual_seed(0)
    drawn = torch.cat([y[epoch_order(y, "class_balanced", gen)] for _ in range(20)])
    share = torch.bincount(drawn, minlength=3).double() / len(drawn)
    # 20,000 draws at p = 1/3 each: the binomial std of a share is 0.0033; 0.02 is 6 std.
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02), share
    again = epoch_order(y, "class_balanced", torch.Generator().manual_seed(0))
    assert torch.equal(again, epoch_order(y, "class_balanced", torch.Generator().manual_seed(0)))
    assert len(again) == len(y)


def test_imagenet_normalisation_uses_fixed_statistics():
    x = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    mean, std = normalisation_stats(x, "imagenet")
    assert mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])
    grey_mean, grey_std = normalisation_stats(x[:, :1], "imagenet")
    assert grey_mean.shape == (1, 1, 1, 1) and grey_mean.item() == pytest.approx((0.485 + 0.456 + 0.406) / 3)
    own_mean, _ = normalisation_stats(x, "split")
    assert own_mean.flatten().tolist() == pytest.approx((x.double() / 255).mean((0, 2, 3)).tolist(), abs=1e-6)


def test_sweep_expands_cells_with_their_own_recipes():
    suite = parse_suite(SMOKE, "s.yaml", ("sweep={field: kd.temperature, values: [1, 4, 8]}",))
    cells = suite.cells()
    assert len(cells) == 3 * len(parse_suite(SMOKE, "s.yaml").cells())
    ids = [c.id for c in cells]
    assert "fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0__kd.temperature=8" in ids
    assert len(set(ids)) == len(ids)
    temps = {c.variant: suite.spec_of(c).kd.temperature for c in cells}
    assert temps == {"kd.temperature=1": 1.0, "kd.temperature=4": 4.0, "kd.temperature=8": 8.0}
    assert seedless(ids[0]).endswith("__kd.temperature=1") and "__s0" not in seedless(ids[0])


@pytest.mark.parametrize(
    ("sweep", "path", "message"),
    [
        ("{field: split.val, values: [0.1, 0.2]}", "sweep.field", "can sweep a field under teacher.*, student.*, kd.*"),
        ("{field: kd.temperature, values: []}", "sweep.values", "needs at least one value"),
        ("{field: kd.temperature, values: [4, 4]}", "sweep.values", "duplicate values"),
        ("{field: kd.temperature, values: [4, -1]}", "kd.temperature", "must be a finite number > 0, got -1.0"),
        ("{field: student.epochz, values: [1]}", "student.epochz", "did you mean 'epochs'"),
    ],
)
def test_bad_sweeps_are_clear_errors(sweep, path, message):
    e = error_of(SMOKE, f"sweep={sweep}")
    assert path in str(e) and message in str(e), str(e)


def test_sweep_value_errors_name_the_value():
    e = error_of(SMOKE, "sweep={field: student.batch_size, values: [16, 0]}")
    assert "sweep.values[1] = 0" in str(e)


@pytest.mark.smoke
def test_sweep_runs_each_value_and_reuses_the_teacher(tmp_path):
    args = ["run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cells", "*cnn_tiny__fp32__kd*",
            "--sweep", "kd.temperature=2,8", "--set", "split.max_per_class=30", *QUICK]
    proc = kdbench(*args, tmp=tmp_path, check=True)
    assert proc.stdout.count("teacher cnn_medium: training") == 1, "a student-side sweep must not retrain the teacher"
    files = sorted((tmp_path / "r" / "smoke").glob("*.json"))
    assert [f.name for f in files] == [f"fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s0__kd.temperature={t}.json" for t in (2, 8)]
    runs = [json.loads(f.read_text()) for f in files]
    assert [r["suite_spec"]["kd"]["temperature"] for r in runs] == [2.0, 8.0]
    assert runs[0]["student"]["weights_sha256"] != runs[1]["student"]["weights_sha256"]
    assert "| sweep" in proc.stdout and "kd.temperature=8" in proc.stdout
    bad = kdbench("list", "suites/smoke.yaml", "--sweep", "kd.temperature", tmp=tmp_path)
    assert bad.returncode == 2 and "--sweep expects FIELD=V1,V2" in bad.stderr


def test_suite_error_type_for_unknown_sampling():
    with pytest.raises(SuiteError, match="student.sampling: expected one of 'shuffle', 'class_balanced'"):
        parse_suite(SMOKE, "s.yaml", ("student.sampling=balanced",))


def test_quick_profile_applies_to_every_suite():
    from kdbench.suite import QUICK_OVERRIDES, load_suite

    from .conftest import REPO

    for path in sorted((REPO / "suites").glob("*.yaml")):
        suite = load_suite(path, QUICK_OVERRIDES)
        for recipe in (suite.spec.teacher, suite.spec.student):
            assert recipe.epochs == 1 and recipe.early_stopping.patience == 0, path
        assert suite.spec.split == load_suite(path).spec.split, "the quick profile keeps all the data"
