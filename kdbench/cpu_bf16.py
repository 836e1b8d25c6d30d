"""Whether this CPU computes bf16 in fast kernels: a bf16 cell on a CPU without them trains in
oneDNN's reference kernels, 20 to 50 times slower than fp32, so a run says so before it starts
instead of leaving the user to wonder why an epoch takes hours."""

from __future__ import annotations

import torch

from .determinism import cpu_model

# Measured on a 2-core AMD EPYC (AVX2, no AVX512-BF16 or AMX), 2026-11-27, by
# tools/bf16_cpu_speed.py --batch 64 (timm/resnet18) and --model resnet18_cifar --batch 32, one
# training step on Fashion-MNIST's shape, AdamW: 17.5 s in bf16 against 0.37 s in fp32 (47x) for
# timm's ResNet-18, 17.7 s against 0.90 s (20x) for the CIFAR ResNet-18. The 2-core Intel Xeon
# (AVX-512, AMX) that ran S3 and S5 at bf16 trained them at fp32-like speed, and so does a 2-core
# AMD EPYC with AVX-512 (and AVX512-BF16), 2026-11-28: timm/resnet50 at batch 128, bf16 0.59 s a
# step against 0.71-0.83 s in fp32 (tools/bf16_cpu_speed.py --model timm/resnet50). AMD EPYC
# names both kinds: the kernel set (cpu_capability) tells them apart.
MEASURED_SLOWDOWN = "20 to 50 times"


def fast_bf16() -> bool | None:
    """True where oneDNN has bf16 kernels for this CPU (x86: AVX-512, with or without
    AVX512-BF16 and AMX; Arm's bf16 extension), False where it falls back to reference kernels, None where this torch cannot
    tell (the private query is gone): then nothing is said."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def slow_bf16_warning(precisions: list[str], device: torch.device) -> str | None:
    """The warning a run on ``device`` gives for the precisions of the cells it will train, or
    None. Only bf16: fp8 cells, whose other layers run under bf16 autocast, never train on a
    CPU (recorded unsupported: kdbench.fp8)."""
    if device.type != "cpu" or "bf16" not in precisions or fast_bf16() is not False:
        return None
    return (f"[precision] warning: this CPU ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()} kernels) has no fast "
            f"bf16 kernels (oneDNN reports no bf16 support; on x86 it needs AVX-512), so the bf16 cells train in reference "
            f"kernels, {MEASURED_SLOWDOWN} slower than fp32 (tools/bf16_cpu_speed.py measures it). They run, slowly; a CPU "
            f"with AVX-512 or a GPU runs them at speed.")
