"""Precision policies: what "fp32", "tf32", "bf16" and "fp16" mean for one cell.

fp32 is true fp32: TF32 is off for both matmul and cuDNN (cuDNN's flag is on by default,
which silently runs "fp32" convolutions in TF32). Losses are always computed in fp32."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .errors import KDBenchError


@dataclass(frozen=True)
class Policy:
    name: str
    autocast_dtype: torch.dtype | None
    tf32: bool
    grad_scaler: bool
    devices: tuple[str, ...]  # device types that can run it


POLICIES = {
    "fp32": Policy("fp32", None, tf32=False, grad_scaler=False, devices=("cpu", "cuda")),
    "tf32": Policy("tf32", None, tf32=True, grad_scaler=False, devices=("cuda",)),
    "bf16": Policy("bf16", torch.bfloat16, tf32=False, grad_scaler=False, devices=("cpu", "cuda")),
    "fp16": Policy("fp16", torch.float16, tf32=False, grad_scaler=True, devices=("cuda",)),
    # Linear layers in fp8 through torchao (kdbench.fp8), everything else under bf16 autocast.
    # Where fp8 matmuls are missing the runner records the cell as unsupported (with the
    # reason) instead of refusing the whole suite, so a suite can list fp8 on any machine.
    "fp8": Policy("fp8", torch.bfloat16, tf32=False, grad_scaler=False, devices=("cpu", "cuda")),
}


def get_policy(name: str, device: torch.device) -> Policy:
    p = POLICIES[name]
    if device.type not in p.devices:
        raise KDBenchError(
            f"precision {name!r} cannot run on {device.type}: it needs {' or '.join(p.devices)}. "
            f"Remove it from matrix.precisions or run with --device {p.devices[-1]}."
        )
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise KDBenchError(f"precision 'bf16' is not supported by {torch.cuda.get_device_name(device)}")
    return p


def apply_global_flags(p: Policy) -> None:
    torch.backends.cuda.matmul.allow_tf32 = p.tf32
    torch.backends.cudnn.allow_tf32 = p.tf32


def autocast(p: Policy, device: torch.device, cache: bool = True):
    """``cache=False``: no cast-weight cache (what a CUDA-graph capture needs; the same numbers)."""
    if p.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=p.autocast_dtype, **({} if cache else {"cache_enabled": False}))


def grad_scaler(p: Policy, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=p.grad_scaler)
