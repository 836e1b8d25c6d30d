"""The system suites say what ../shared/docs/systems.md says each system ran.

A suite file is where a reproduction lives or dies: an edit that moves S1's α or S3's
scheduler would still train and still pass its golden file (regenerated from the edited
suite), and the figures would silently stop being S1's or S3's. Each check below quotes the
sentence of systems.md it holds the suite to. The stand-in suites (another dataset, because
the system's own is not on our machines) must run the very recipe of the faithful suite, so
the two stay comparable; `test_stand_in_suites_differ_from_the_faithful_one_only_in_data`
holds them to that.
"""

import dataclasses

import pytest
import torch

from kdbench.models import build_model
from kdbench.suite import load_suite

from .conftest import REPO


def spec(name: str):
    return load_suite(REPO / "suites" / f"{name}.yaml").spec


@pytest.mark.parametrize("suite", ["s1-eurosat", "s1-cifar10"])
def test_s1(suite):
    s = spec(suite)
    # "Teacher: EfficientNet-B4 …, trained 5 epochs."
    assert s.matrix.teachers == ("timm/efficientnet_b4",) and s.teacher.epochs == 5
    # "Students, trained 20 epochs each with KD: SimpleNet, StudentResNet, StudentNetSeparable,
    #  StudentNetDepthwiseSkip, StudentNetLight"
    assert set(s.matrix.students) == {"simplenet", "student_resnet", "student_separable", "student_dwskip", "student_light"}
    assert s.student.epochs == 20 and set(s.matrix.methods) >= {"kd"}
    # "Loss: α·soft + (1−α)·hard, α = 0.7 weights the soft (KL) term, T = 3."
    assert (s.kd.kd_weight, s.kd.ce_weight, s.kd.temperature) == (0.7, pytest.approx(0.3), 3.0)
    # "Adam-style, LR scaled linearly with batch (0.001 / 32 × batch), ReduceLROnPlateau,
    #  early stopping on validation with patience, best-on-val model selection; seed 47."
    for r in (s.teacher, s.student):
        assert r.optimizer.name in ("adam", "adamw")
        assert (r.optimizer.lr, r.optimizer.lr_reference_batch) == (0.001, 32)
        assert r.scheduler.name == "plateau" and r.early_stopping.patience > 0 and r.select == "best_val"
    assert s.seeds == (47,) and s.split.seed == 47
    # "ImageNet normalisation"
    assert s.data.normalize == "imagenet"
    # "Reported: teacher 96.63 % test; best student StudentResNet 88.33 %."
    assert {(r.student, r.top1) for r in s.reported} == {("", 96.63), ("student_resnet", 88.33)}


def test_s1_eurosat_split():
    # "EuroSAT RGB (10 classes, 64×64), split 80 / 10 / 10"
    s = spec("s1-eurosat")
    assert s.matrix.datasets == ("eurosat",)
    assert (s.split.train, s.split.val, s.split.test) == (0.8, 0.1, 0.1)


def test_s2():
    s = spec("s2-cifar10")
    # "Teacher VGG16 (100 epochs); student ResNet18 trained twice: without KD (baseline) and
    #  with KD (30 epochs each); LR 1e-4, batch 32."
    assert s.matrix.teachers == ("vgg16",) and s.matrix.students == ("resnet18_cifar",)
    assert set(s.matrix.methods) == {"none", "kd"}
    assert (s.teacher.epochs, s.student.epochs) == (100, 30)
    for r in (s.teacher, s.student):
        assert (r.optimizer.lr, r.batch_size) == (1e-4, 32)
    # "Loss: α·CE + (1−α)·KD, here α = 0.5 weights the hard term, T = 2."
    assert (s.kd.ce_weight, s.kd.kd_weight, s.kd.temperature) == (0.5, 0.5, 2.0)
    # "Metrics per epoch on train / val / test: loss, top-1, top-3, precision, recall and F1
    #  (micro, macro, weighted), AUC (micro, macro, weighted)"
    wanted = {"top1", "top3"} | {f"{m}_{a}" for m in ("precision", "recall", "f1", "auroc")
                                 for a in ("micro", "macro", "weighted")}
    assert wanted <= set(s.metrics)
    assert s.student.test_each_epoch


def test_vgg16_is_the_cifar_form():
    # "VGG16 (a CIFAR-size variant that stays deterministic on CUDA)" (issue #3): 13 convs and
    # no adaptive pooling, whose CUDA backward has no deterministic kernel.
    m = build_model("vgg16", 3, 10, 32)
    assert sum(isinstance(x, torch.nn.Conv2d) for x in m.modules()) == 13
    assert not any(isinstance(x, (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)) for x in m.modules())


@pytest.mark.parametrize("suite", ["s3-cifar10", "s3-pathmnist"])
def test_s3(suite):
    s = spec(suite)
    # "CNN chain ResNet-50 → ResNet-34 → ResNet-18; ViT chain ViT-Base → ViT-Small →
    #  ViT-Tiny; each chain independent."
    assert s.matrix.pairs == (("timm/resnet50", "timm/resnet34", "timm/resnet18"), ("vit_base", "vit_small", "vit_tiny"))
    assert "takd" in s.matrix.methods
    # "AdamW, LR 1e-4, cosine annealing, T = 4, α = 0.7 on the KD term; AMP"
    for r in (s.teacher, s.student):
        assert (r.optimizer.name, r.optimizer.lr, r.scheduler.name) == ("adamw", 1e-4, "cosine")
    assert (s.kd.temperature, s.kd.kd_weight, s.kd.ce_weight) == (4.0, 0.7, pytest.approx(0.3))
    assert set(s.matrix.precisions) <= {"bf16", "fp16"}


@pytest.mark.parametrize("suite", ["s4-intel", "s4-fmnist"])
def test_s4(suite):
    s = spec(suite)
    # "Students: custom CNNs with 4, 6, 8, 10 residual blocks; teacher a larger CNN."
    assert s.matrix.students == ("rescnn_b4", "rescnn_b6", "rescnn_b8", "rescnn_b10")
    (teacher,) = s.matrix.teachers
    sizes = [sum(p.numel() for p in build_model(n, 3, 6, 64).parameters()) for n in (teacher, *s.matrix.students)]
    assert sizes[0] > max(sizes[1:])
    # "Precision sweep FP32, FP16 (autocast), FP8; early stopping with patience 3."
    assert s.matrix.precisions == ("fp32", "fp16", "fp8")
    assert s.teacher.early_stopping.patience == s.student.early_stopping.patience == 3


def test_s4_intel_data():
    # "Intel Image Classification (6 classes, 150×150, image folders)."
    assert spec("s4-intel").matrix.datasets == ("intel-image",)


def test_s5():
    s = spec("s5-imagenette")
    # "Teacher DeiT-Small distilled (timm deit_small_distilled_patch16_224), student torchvision
    #  ResNet-50 with a dropout + linear head, 2 classes, 224×224."
    assert s.matrix.teachers == ("timm/deit_small_distilled_patch16_224",)
    assert s.matrix.students == ("tv_resnet50_dropout",)
    assert len(s.data.classes) == 2
    head = build_model("tv_resnet50_dropout", 3, 2, 224).fc
    assert [type(x) for x in head] == [torch.nn.Dropout, torch.nn.Linear]
    # "Augmentation: random horizontal flip, rotation, colour jitter; StepLR; 20 epochs; T = 5;
    #  α·KD + (1−α)·CE."
    for r in (s.teacher, s.student):
        assert set(r.augment) == {"flip", "rotate", "color"}
        assert (r.scheduler.name, r.epochs) == ("step", 20)
    assert s.kd.temperature == 5.0 and s.kd.kd_weight + s.kd.ce_weight == pytest.approx(1.0)
    # "Reported: ~97.3 % validation accuracy."
    assert [(r.top1, r.split) for r in s.reported] == [(97.3, "val")]


def test_canonical_pairs_and_recipe():
    s = spec("canonical-cifar")
    # "resnet32x4 → resnet8x4, wrn_40_2 → wrn_16_2, resnet56 → resnet20, vgg13 → vgg8"
    assert s.matrix.pairs == (("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2"), ("resnet56", "resnet20"), ("vgg13", "vgg8"))
    # "(CIFAR-100, 240 epochs) … KD there uses CE weight 0.1, KD weight 0.9, T = 4."
    assert s.teacher.epochs == s.student.epochs == 240
    assert (s.kd.ce_weight, s.kd.kd_weight, s.kd.temperature) == (0.1, 0.9, 4.0)
    # The table's twelve figures, each once.
    table = {("resnet32x4", "", ""): 79.42, ("resnet32x4", "resnet8x4", "none"): 72.50, ("resnet32x4", "resnet8x4", "kd"): 73.33,
             ("wrn_40_2", "", ""): 75.61, ("wrn_40_2", "wrn_16_2", "none"): 73.26, ("wrn_40_2", "wrn_16_2", "kd"): 74.92,
             ("resnet56", "", ""): 72.34, ("resnet56", "resnet20", "none"): 69.06, ("resnet56", "resnet20", "kd"): 70.66,
             ("vgg13", "", ""): 74.64, ("vgg13", "vgg8", "none"): 70.36, ("vgg13", "vgg8", "kd"): 72.98}
    # Beside them DKD's own figures for the four pairs (its code's README, not systems.md).
    dkd = {("resnet32x4", "resnet8x4", "dkd"): 76.32, ("wrn_40_2", "wrn_16_2", "dkd"): 76.23,
           ("resnet56", "resnet20", "dkd"): 71.97, ("vgg13", "vgg8", "dkd"): 74.68}
    assert {(r.teacher, r.student, r.method): r.top1 for r in s.reported} == table | dkd
    # DKD as its code trains these pairs (configs/cifar100/dkd/*.yaml over its defaults):
    # CE 1, alpha 1, T 4, the term ramped in over 20 epochs, beta per pair.
    assert (s.kd.dkd_ce_weight, s.kd.dkd_alpha, s.kd.dkd_beta, s.kd.dkd_warmup_epochs) == (1.0, 1.0, 8.0, 20)
    assert {(p.teacher, p.student): p.kd.dkd_beta for p in s.kd_by_pair} == {
        ("wrn_40_2", "wrn_16_2"): 6.0, ("resnet56", "resnet20"): 2.0, ("vgg13", "vgg8"): 6.0}


# (faithful suite, stand-in suite, the fields the stand-in may change: its data and split)
STAND_INS = [("s1-eurosat", "s1-cifar10", {"split"}), ("s3-pathmnist", "s3-cifar10", set()), ("s4-intel", "s4-fmnist", set())]


@pytest.mark.parametrize("faithful, stand_in, also", STAND_INS, ids=[s for _, s, _ in STAND_INS])
def test_stand_in_suites_differ_from_the_faithful_one_only_in_data(faithful, stand_in, also):
    a, b = spec(faithful), spec(stand_in)
    assert a.matrix.datasets != b.matrix.datasets
    allowed = {"name", "description", "matrix"} | also
    differ = {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}
    assert differ <= allowed, f"{stand_in} no longer runs {faithful}'s recipe: {sorted(differ - allowed)} differ"
    assert dataclasses.replace(a.matrix, datasets=()) == dataclasses.replace(b.matrix, datasets=())
