"""Distillation losses as pure functions of logits and labels.

All of them compute in float32, whatever dtype the logits arrive in (autocast hands out
bf16/fp16 logits; softmax at low temperature in half precision loses the soft targets)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def kd_term(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Hinton et al. 2015 (arXiv:1503.02531) soft-target term:

        T² · KL(softmax(t/T) ‖ softmax(s/T))

    averaged over the batch (``reduction="batchmean"``: sum over classes, mean over
    samples; ``"mean"`` would also divide by the class count). The T² factor keeps the
    gradient magnitude of this term independent of T. The teacher's logits are detached."""
    if temperature <= 0:
        raise ValueError(f"Expected argument `temperature` to be > 0, but got {temperature}")
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    kl = F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), reduction="batchmean", log_target=True)
    return kl * (temperature * temperature)


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    *,
    temperature: float,
    ce_weight: float,
    kd_weight: float,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``ce_weight · CE(s, y) + kd_weight · T² · KL(softmax(t/T) ‖ softmax(s/T))``.

    Returns the total and its two terms (unweighted), for logging."""
    ce = F.cross_entropy(student_logits.float(), labels, label_smoothing=label_smoothing)
    kd = kd_term(student_logits, teacher_logits, temperature)
    return ce_weight * ce + kd_weight * kd, {"ce": ce.detach(), "kd": kd.detach()}


def ce_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
    ce = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    return ce, {"ce": ce.detach()}


# Libraries disagree on what "alpha" weights. Name the convention at the call site.


def weights_from_alpha_on_soft(alpha: float) -> tuple[float, float]:
    """alpha weights the soft (KD) term: ``alpha·KD + (1-alpha)·CE`` (the seed scripts S1,
    S3, S5, and KD_Lib). Returns (ce_weight, kd_weight)."""
    _check_alpha(alpha)
    return 1.0 - alpha, alpha


def weights_from_alpha_on_hard(alpha: float) -> tuple[float, float]:
    """alpha weights the hard (CE) term: ``alpha·CE + (1-alpha)·KD`` (torchdistill, S2).
    Returns (ce_weight, kd_weight)."""
    _check_alpha(alpha)
    return alpha, 1.0 - alpha


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Expected argument `alpha` to be in [0, 1], but got {alpha}")


def dkd_terms(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Decoupled KD (Zhao et al., CVPR 2022, arXiv:2203.08679), both terms × T², batch mean:

        TCKD = KL(b_t ‖ b_s),  b = [p_target, 1 − p_target]
        NCKD = KL(p̂_t ‖ p̂_s),  p̂ = softmax over the non-target classes only

    Computed in log space from logits, so it stays finite where the published code takes
    log(0): saturated binary problems give TCKD ≥ 0 finite, and with 2 classes the
    non-target distribution is a single class, so NCKD is exactly 0."""
    if temperature <= 0:
        raise ValueError(f"Expected argument `temperature` to be > 0, but got {temperature}")
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    b, c = s.shape
    target = F.one_hot(labels, c).bool()
    s_other, t_other = s[~target].view(b, c - 1), t[~target].view(b, c - 1)

    def binary_logs(z: Tensor, z_other: Tensor) -> tuple[Tensor, Tensor]:
        total = z.logsumexp(1)
        return z[target] - total, z_other.logsumexp(1) - total  # log p_target, log(1 − p_target)

    (st, so), (tt, to) = binary_logs(s, s_other), binary_logs(t, t_other)
    tckd = (tt.exp() * (tt - st) + to.exp() * (to - so)).mean()
    nckd = F.kl_div(F.log_softmax(s_other, 1), F.log_softmax(t_other, 1), reduction="batchmean", log_target=True)
    scale = temperature * temperature
    return tckd * scale, nckd * scale


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    *,
    temperature: float,
    ce_weight: float,
    alpha: float,
    beta: float,
    label_smoothing: float = 0.0,
    warmup: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``ce_weight · CE + warmup · (alpha · TCKD + beta · NCKD)`` (DKD; the paper uses alpha 1,
    beta 8 on CIFAR, and ramps ``warmup`` from 1/20 to 1 over the first 20 epochs)."""
    ce = F.cross_entropy(student_logits.float(), labels, label_smoothing=label_smoothing)
    tckd, nckd = dkd_terms(student_logits, teacher_logits, labels, temperature)
    kd = alpha * tckd + beta * nckd
    if warmup != 1.0:
        kd = warmup * kd
    return ce_weight * ce + kd, {"ce": ce.detach(), "kd": kd.detach()}
