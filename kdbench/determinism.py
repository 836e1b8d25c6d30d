"""Deterministic execution and the record of the environment a result came from."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

# cuBLAS reads this when its handle is created, i.e. at the first CUDA matmul; it must be
# set before that, so configure_determinism() runs before any CUDA work.
CUBLAS_CONFIG = ":4096:8"


def configure_determinism(seed: int) -> None:
    """Seed every RNG and make kernels deterministic (raising where one has none)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_CONFIG)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA generators too
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing: run-dependent
    torch.backends.cudnn.deterministic = True


DENORMAL_BITS = 0x000AE398  # the float32 1e-39, below the smallest normal float (1.18e-38)


def flush_denormals() -> str:
    """Have every CPU thread of torch treat denormal floats (|x| < 1.2e-38) as zero; returns
    "flushed", or "kept" where that cannot hold for all of them.

    Why: weight decay drives unused weights, and Adam's second moments, into the denormal range
    after a few epochs, where x86 elementwise kernels run several times slower. Measured on this
    project's 2-core Xeon: s4's ResNet-18 teacher on Fashion-MNIST fell from 440 images/s in
    epoch 1 to about 70 by epoch 9 (20 million denormal values in its checkpoint); training steps
    from that checkpoint ran at 111 images/s, and at 565 with the flag (an elementwise op on 8 M
    denormals: 35 ms, 4.9 ms flushed). GPUs are not affected.

    The flag lives in each thread's control register and a new thread copies its creator's, so
    it holds in torch's intra-op pool only when set before the pool starts (before the first
    parallel op of the process): the CLI and the tests call this first. A probe split across the
    threads checks it; where only some threads would flush, it is turned off again so that all
    compute alike. Whether CPU results were computed this way is part of their configuration."""
    if not torch.set_flush_denormal(True):
        return "kept"  # the CPU has no such mode (neither SSE3 nor AArch64)
    # 1e-39 written as bits (a float fill would itself be flushed on this thread), in a tensor
    # large enough to be split across every thread; adding 0 flushes it where the flag holds.
    probe = torch.full((1 << 22,), DENORMAL_BITS, dtype=torch.int32).view(torch.float32) + 0.0
    if bool((probe == 0).all()):
        return "flushed"
    torch.set_flush_denormal(False)
    return "kept"


def pick_device(name: str) -> torch.device:
    from .errors import KDBenchError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise KDBenchError("--device cuda was asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise KDBenchError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def device_class(device: torch.device) -> str:
    """Golden files are kept per device class: 'cpu', or 'cuda-sm90' for compute capability 9.0."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda-sm{major}{minor}"
    return "cpu"


def git_revision() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The processor's model name (/proc/cpuinfo on Linux): CPU results are bitwise
    reproducible on the same model and thread count, not across models, whose kernels (AVX2,
    AVX-512) round differently."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    from . import __version__

    env = {
        "kdbench": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "device_class": device_class(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernel set torch picked: DEFAULT, AVX2, AVX512
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_capability=f"{props.major}.{props.minor}", gpu_memory_mib=props.total_memory // 2**20)
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
            env["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    return env


def hardware(env: dict) -> str:
    """The hardware a result ran on (``environment``'s record), in words: its GPU, else its CPU
    model, the kernel set torch picked there and the thread count. Within one device class these
    differ in speed several-fold, and CPUs of one class in the weights they train (other kernels,
    other summation orders)."""
    if env.get("gpu"):
        return env["gpu"]
    if not env.get("cpu_model"):
        return "a CPU it did not record"
    return f"{env['cpu_model']} ({env.get('cpu_capability', '?')}, {env.get('torch_threads', '?')} threads)"
