"""Metrics against hand-computed values on a small case."""

import pytest
import torch

from kdbench.metrics import METRIC_NAMES, classification_metrics, per_class_report
from kdbench.suite_checks import METRICS


def test_suite_and_metrics_module_agree_on_names():
    assert METRICS == METRIC_NAMES


def test_values_on_a_small_case():
    # 4 images, 3 classes: predictions 0, 1, 1, 2 for labels 0, 1, 2, 2.
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 1.0], [0, 0, 3.0]])
    labels = torch.tensor([0, 1, 2, 2])
    teacher = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [0, 0, 3.0]])
    m = classification_metrics(logits, labels, 3, METRICS, teacher)
    assert m["top1"] == pytest.approx(0.75)
    assert m["top3"] == 1.0
    assert m["recall_macro"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["precision_macro"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["f1_micro"] == pytest.approx(0.75)
    assert m["agreement"] == pytest.approx(0.75)
    assert m["kl_teacher"] > 0 and 0 <= m["ece"] <= 1 and 0.5 <= m["auroc_macro"] <= 1
    assert classification_metrics(logits, labels, 3, ("kl_teacher",), logits)["kl_teacher"] == pytest.approx(0.0, abs=1e-6)
    rep = per_class_report(logits, labels, ["a", "b", "c"])
    assert rep["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert rep["per_class"][2] == {"class": "c", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


def mann_whitney_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """AUROC as the share of (positive, negative) pairs ranked right, ties counting half."""
    pos, neg = scores[positive], scores[~positive]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).double().sum() + 0.5 * (diff == 0).double().sum()).item() / (len(pos) * len(neg))


def test_auroc_micro_pools_every_image_class_pair():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(60, 4, generator=gen)
    labels = torch.randint(0, 4, (60,), generator=gen)
    logits[torch.arange(60), labels] += 1.0  # informative, not perfect
    m = classification_metrics(logits, labels, 4, ("auroc_micro", "auroc_macro"))
    expected = mann_whitney_auroc(logits.softmax(1).flatten(), torch.nn.functional.one_hot(labels, 4).flatten().bool())
    assert m["auroc_micro"] == pytest.approx(expected, abs=1e-6)
    assert 0.5 < m["auroc_micro"] < 1 and m["auroc_micro"] != pytest.approx(m["auroc_macro"], abs=1e-9)
