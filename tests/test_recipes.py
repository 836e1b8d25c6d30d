"""Recipe options from the reference systems: class-balanced sampling (S1), ImageNet
normalisation, and sweeps over one field."""

from __future__ import annotations

import json
import re

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


@pytest.mark.smoke
def test_a_pinned_teacher_is_trained_once_for_every_seed(tmp_path):
    """teacher.seed=0 over seeds 0 and 1: one teacher training, seed 0's own (an unpinned run
    finds it in the cache, and its seed-0 cell current); each student keeps its own seed; the
    report counts the teachers."""
    cells, small = ["--cells", "*cnn_tiny__fp32__kd*"], ["--set", "split.max_per_class=30", *QUICK]
    pinned = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "pinned"), *cells, "--set", "seeds=[0,1]",
                     "--set", "teacher.seed=0", *small, tmp=tmp_path, check=True)
    assert pinned.stdout.count("teacher cnn_medium: training") == 1, pinned.stdout
    runs = [json.loads((tmp_path / "pinned" / "smoke" / f"fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s{s}.json").read_text()) for s in (0, 1)]
    assert runs[0]["teacher"]["cache_key"] == runs[1]["teacher"]["cache_key"]
    assert runs[0]["student"]["weights_sha256"] != runs[1]["student"]["weights_sha256"]
    assert "| 2 (1 teacher) |" in pinned.stdout and "teacher.seed pins one teacher" in pinned.stdout
    # Unpinned over the same results: seed 0's cell is current (skipped), seed 1's distilled
    # from another teacher than it will now (re-run, with its own teacher trained).
    own = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "pinned"), *cells, "--set", "seeds=[0,1]", *small,
                  tmp=tmp_path, check=True)
    assert own.stdout.count("teacher cnn_medium: training") == 1, own.stdout
    again = [json.loads((tmp_path / "pinned" / "smoke" / f"fmnist-smoke__cnn_medium__cnn_tiny__fp32__kd__s{s}.json").read_text()) for s in (0, 1)]
    assert again[0] == runs[0] and again[1]["teacher"]["cache_key"] != runs[1]["teacher"]["cache_key"]
    assert re.search(r"\| 2 +\|", own.stdout) and "teacher.seed pins" not in own.stdout


def test_suite_error_type_for_unknown_sampling():
    with pytest.raises(SuiteError, match="student.sampling: expected one of 'shuffle', 'class_balanced'"):
        parse_suite(SMOKE, "s.yaml", ("student.sampling=balanced",))


def test_quick_profile_applies_to_every_suite():
    from kdbench.suite import load_suite
    from kdbench.suite_overrides import QUICK_OVERRIDES

    from .conftest import REPO

    for path in sorted((REPO / "suites").glob("*.yaml")):
        suite = load_suite(path, QUICK_OVERRIDES)
        for recipe in (suite.spec.teacher, suite.spec.student):
            assert recipe.epochs == 1 and recipe.early_stopping.patience == 0, path
        assert suite.spec.split == load_suite(path).spec.split, "the quick profile keeps all the data"


@pytest.mark.smoke
def test_pretrained_weights_start_a_model_and_are_recorded(tmp_path):
    from kdbench.models import build_model

    torch.manual_seed(123)
    donor = build_model("cnn_medium", 1, 1000, 28)  # as if from another task: a 1000-class head
    weights = tmp_path / "cnn_medium_1000.pt"
    torch.save({"state_dict": donor.state_dict(), "epoch": 7}, weights)
    args = ["run", "suites/smoke.yaml", "--cells", "*cnn_tiny__fp32__kd*", "--set", "split.max_per_class=20", *QUICK]
    plain = kdbench(*args, "--results", str(tmp_path / "plain"), tmp=tmp_path, check=True)
    warm = kdbench(*args, "--results", str(tmp_path / "warm"), "--set", f"pretrained={{cnn_medium: {weights}}}", tmp=tmp_path, check=True)
    assert "teacher cnn_medium: training" in warm.stdout, "a teacher from other weights is a different teacher: not the cached one"
    assert "cnn_medium: starting from" in warm.stdout and plain.returncode == 0
    res = json.loads(next((tmp_path / "warm" / "smoke").glob("*.json")).read_text())
    info = res["pretrained"]["cnn_medium"]
    assert info["left_at_init"] == ["head.bias", "head.weight"], "only the 1000-class head does not fit a 10-class task"
    assert info["unused"] == ["head.bias", "head.weight"]
    assert info["loaded"] == len(donor.state_dict()) - len(info["left_at_init"])
    assert res["config"]["pretrained"] == {"cnn_medium": info["sha256"]}
    base = json.loads(next((tmp_path / "plain" / "smoke").glob("*.json")).read_text())
    assert base["teacher"]["weights_sha256"] != res["teacher"]["weights_sha256"]


def test_pretrained_errors_before_any_training(tmp_path):
    from kdbench.models import build_model

    missing = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--set", "pretrained={cnn_medium: /no/such.pt}", tmp=tmp_path)
    assert missing.returncode == 2 and "pretrained.cnn_medium: no such file /no/such.pt" in missing.stderr
    assert not (tmp_path / "r").exists()
    e = error_of(SMOKE, "pretrained={resnet50: w.pt}")
    assert "pretrained.resnet50: 'resnet50' is not a model of this suite's matrix" in str(e)
    other = tmp_path / "other.pt"
    torch.save(build_model("vgg8", 3, 10, 32).state_dict(), other)
    wrong = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--set", f"pretrained={{cnn_tiny: {other}}}", *QUICK, tmp=tmp_path)
    assert wrong.returncode == 2 and "are these the weights of another architecture?" in wrong.stderr
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    bad = kdbench("run", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--set", f"pretrained={{cnn_tiny: {junk}}}", tmp=tmp_path)
    assert bad.returncode == 2 and "cannot read weights" in bad.stderr


def test_resize_happens_per_batch_before_normalising():
    from kdbench.train import DeviceData

    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    d = DeviceData(x, torch.zeros(2, dtype=torch.long), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1), resize=56)
    out = d.normalise(x)
    assert out.shape == (2, 1, 56, 56) and torch.allclose(out, torch.ones_like(out))
    assert DeviceData(x, d.y, d.mean, d.std).normalise(x).shape == (2, 1, 28, 28)


@pytest.mark.smoke
def test_resized_data_builds_models_for_the_new_size(tmp_path):
    args = ["run", "suites/smoke.yaml", "--cells", "*cnn_tiny__fp32__none*", "--set", "split.max_per_class=10", *QUICK]
    proc = kdbench(*args, "--results", str(tmp_path / "r"), "--set", "data.resize=56", tmp=tmp_path, check=True)
    assert "resized to 56×56" in proc.stdout
    res = json.loads(next((tmp_path / "r" / "smoke").glob("*.json")).read_text())
    assert res["normalisation"]["image_size"] == 56
    small = kdbench(*args, "--results", str(tmp_path / "r28"), tmp=tmp_path, check=True)
    assert small.returncode == 0
    res28 = json.loads(next((tmp_path / "r28" / "smoke").glob("*.json")).read_text())
    # cnn_tiny is fully convolutional up to a global pool: 4× the pixels, 4× the FLOPs.
    assert res["cost"]["student_flops_per_image"] == pytest.approx(4 * res28["cost"]["student_flops_per_image"], rel=0.05)


@pytest.mark.smoke
def test_test_metrics_each_epoch_are_logged_not_used(tmp_path):
    args = ["run", "suites/smoke.yaml", "--cells", "*cnn_tiny__fp32__none*", "--set", "split.max_per_class=20", *QUICK]
    plain = kdbench(*args, "--results", str(tmp_path / "a"), tmp=tmp_path, check=True)
    logged = kdbench(*args, "--results", str(tmp_path / "b"), "--set", "student.test_each_epoch=true", "--set", "student.epochs=2",
                     tmp=tmp_path, check=True)
    assert plain.returncode == logged.returncode == 0
    res = json.loads(next((tmp_path / "b" / "smoke").glob("*.json")).read_text())
    last = res["student"]["history"][-1]
    assert {"test_top1", "test_f1_macro", "val_f1_macro"} <= set(last)
    # The last epoch's logged test top-1 is the final test metric (last-epoch weights).
    assert last["test_top1"] == pytest.approx(res["metrics"]["test_top1_last"])
    header = next((tmp_path / "b" / "smoke").glob("*.history.csv")).read_text().splitlines()[0]
    assert header.endswith("val_f1_macro,test_top1,test_f1_macro")


@pytest.mark.smoke
def test_train_metrics_each_epoch_are_the_training_pass_s_and_change_nothing_trained(tmp_path):
    """S2 logs precision / recall / F1 / AUROC per epoch on train too: gathered from the logits
    the steps trained on. The same weights as without it, with the KD teacher's cached logits
    and flip replay in the path (the kd cell, augment flip)."""
    args = ["run", "suites/smoke.yaml", "--cells", "*cnn_tiny__fp32__kd*", "--set", "split.max_per_class=20", *QUICK,
            "--set", "student.epochs=2", "--set", "student.augment=[flip]", "--set", "metrics=[top1, recall_micro, f1_macro, auroc_macro, agreement]"]
    kdbench(*args, "--results", str(tmp_path / "a"), tmp=tmp_path, check=True)
    kdbench(*args, "--results", str(tmp_path / "b"), "--set", "student.train_metrics_each_epoch=true", tmp=tmp_path, check=True)
    plain, logged = (json.loads(next((tmp_path / d / "smoke").glob("*.json")).read_text()) for d in "ab")
    assert logged["student"]["weights_sha256"] == plain["student"]["weights_sha256"]
    assert logged["metrics"] == plain["metrics"]
    for row, base in zip(logged["student"]["history"], plain["student"]["history"], strict=True):
        # agreement is against the teacher (final test evaluation only); top1 is the running count.
        assert set(row) - set(base) == {"train_recall_micro", "train_f1_macro", "train_auroc_macro"}
        assert {k: row[k] for k in ("train_loss", "train_top1", "val_top1")} == {k: base[k] for k in ("train_loss", "train_top1", "val_top1")}
        # Micro recall over every training image is its accuracy: the gathered logits are the
        # epoch's, each with its own label, in step order.
        assert row["train_recall_micro"] == pytest.approx(row["train_top1"], abs=1e-6)
        assert 0.0 <= row["train_f1_macro"] <= 1.0 and 0.0 <= row["train_auroc_macro"] <= 1.0
    header = next((tmp_path / "b" / "smoke").glob("*.history.csv")).read_text().splitlines()[0]
    assert "train_f1_macro" in header.split(",")
