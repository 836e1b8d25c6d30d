"""Test metrics from logits, with torchmetrics. Names say which statistic they are."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, wanted: tuple[str, ...], teacher_logits: torch.Tensor | None = None) -> dict[str, float]:
    """topK (micro accuracy; K capped at the class count), f1_macro, and agreement (the
    share of test images on which the student's top-1 class equals the teacher's)."""
    out: dict[str, float] = {}
    logits, labels = logits.float().cpu(), labels.cpu()
    for name in wanted:
        if name.startswith("top"):
            k = min(int(name[3:]), num_classes)
            out[name] = MulticlassAccuracy(num_classes, top_k=k, average="micro")(logits, labels).item()
    if "f1_macro" in wanted:
        out["f1_macro"] = MulticlassF1Score(num_classes, average="macro")(logits, labels).item()
    if "agreement" in wanted and teacher_logits is not None:
        teacher_pred = teacher_logits.float().cpu().argmax(1)
        out["agreement"] = MulticlassAccuracy(num_classes, top_k=1, average="micro")(logits, teacher_pred).item()
    return out
