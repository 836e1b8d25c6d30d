"""Test metrics from logits, with torchmetrics. Names say which statistic they are; the
runner adds the split and the weights used (``test_top1_last``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.classification import (
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

# Every metric a suite may ask for. topK: micro accuracy with K capped at the class count.
METRIC_NAMES = (
    "top1", "top3", "top5",
    "precision_micro", "precision_macro", "precision_weighted",
    "recall_micro", "recall_macro", "recall_weighted",
    "f1_micro", "f1_macro", "f1_weighted",
    "auroc_micro", "auroc_macro", "auroc_weighted",  # one-vs-rest; micro pools every (image, class) pair
    "ece",  # expected calibration error, 15 bins, L1
    "agreement",  # share of test images where the student's top-1 class is the teacher's
    "kl_teacher",  # mean KL(p_teacher ‖ p_student) at T = 1, in nats
)
_PRF = {"precision": MulticlassPrecision, "recall": MulticlassRecall, "f1": MulticlassF1Score}


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, wanted: tuple[str, ...], teacher_logits: torch.Tensor | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    logits, labels = logits.float().cpu(), labels.cpu()
    for name in wanted:
        if name.startswith("top"):
            k = min(int(name[3:]), num_classes)
            out[name] = MulticlassAccuracy(num_classes, top_k=k, average="micro")(logits, labels).item()
        elif name.split("_")[0] in _PRF:
            kind, average = name.split("_")
            out[name] = _PRF[kind](num_classes, average=average)(logits, labels).item()
        elif name == "auroc_micro":
            # torchmetrics' multiclass AUROC has no micro average; micro is the binary AUROC
            # of every (image, class) score against "is this the image's class" (as sklearn's
            # roc_auc_score(one_hot, scores, average="micro") defines it).
            one_hot = F.one_hot(labels, num_classes)
            out[name] = BinaryAUROC()(logits.softmax(1).flatten(), one_hot.flatten()).item()
        elif name.startswith("auroc_"):
            out[name] = MulticlassAUROC(num_classes, average=name.split("_")[1])(logits.softmax(1), labels).item()
        elif name == "ece":
            out[name] = MulticlassCalibrationError(num_classes, n_bins=15, norm="l1")(logits.softmax(1), labels).item()
        elif name == "agreement" and teacher_logits is not None:
            teacher_pred = teacher_logits.float().cpu().argmax(1)
            out[name] = MulticlassAccuracy(num_classes, top_k=1, average="micro")(logits, teacher_pred).item()
        elif name == "kl_teacher" and teacher_logits is not None:
            t = teacher_logits.float().cpu()
            out[name] = F.kl_div(logits.log_softmax(1), t.log_softmax(1), reduction="batchmean", log_target=True).item()
    return out


def per_class_report(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """Per-class precision / recall / F1 / support and the confusion matrix (rows: true class)."""
    logits, labels = logits.float().cpu(), labels.cpu()
    n = len(classes)
    stats = {kind: cls(n, average=None)(logits, labels).tolist() for kind, cls in _PRF.items()}
    support = torch.bincount(labels, minlength=n).tolist()
    return {
        "classes": classes,
        "per_class": [{"class": c, "precision": stats["precision"][i], "recall": stats["recall"][i], "f1": stats["f1"][i], "support": support[i]}
                      for i, c in enumerate(classes)],
        "confusion_matrix": MulticlassConfusionMatrix(n)(logits, labels).tolist(),
    }
