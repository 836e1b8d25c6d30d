"""FP8 for the precision axis, two ways:

* evaluation of any trained model with float8_e4m3fn weights and activations, per-tensor
  scaled, *simulated*: every Conv2d / Linear sees its input and weight rounded to e4m3 (after
  scaling the tensor's largest magnitude to e4m3's largest finite value, 448) and computes in
  fp32. This is what an fp8 inference kernel with per-tensor scales feeds its accumulator,
  so accuracy is faithful; speed is not measured this way.
* training of Linear layers in fp8 through torchao's Float8Linear (dynamic per-tensor
  scaling, e4m3 forward / e5m2 gradients) where the hardware has fp8 matmuls (compute
  capability ≥ 8.9: Ada, Hopper). Anywhere else a cell at precision fp8 is recorded as
  unsupported with the reason — never run in another precision under the fp8 name."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)  # 448
FP8_TRAINING_MIN_CAPABILITY = (8, 9)
SIMULATION = ("per-tensor scaled float8_e4m3fn weights and input activations of every Conv2d and Linear "
              "(scale = 448 / max |x|), rounded to e4m3 and computed in fp32 (simulated)")


def fake_quant_e4m3(x: torch.Tensor) -> torch.Tensor:
    """x rounded to the e4m3 grid after per-tensor scaling, returned in x's dtype."""
    amax = x.detach().abs().amax().float()
    if not torch.isfinite(amax) or amax == 0:
        return x
    scale = E4M3_MAX / amax
    return ((x.float() * scale).to(E4M3).float() / scale).to(x.dtype)


def fp8_simulated(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Conv2d / Linear layers use e4m3-rounded weights and inputs."""
    sim = copy.deepcopy(model).eval()
    for m in sim.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                m.weight.copy_(fake_quant_e4m3(m.weight))
            m.register_forward_pre_hook(lambda _m, args: (fake_quant_e4m3(args[0]), *args[1:]))
    return sim


def fp8_training_unsupported(device: torch.device) -> str | None:
    """Why fp8 training cannot run here, or None when it can."""
    if device.type != "cuda":
        return (f"fp8 training needs a CUDA GPU with fp8 matmuls (compute capability ≥ "
                f"{'.'.join(map(str, FP8_TRAINING_MIN_CAPABILITY))}: Ada, Hopper); this run is on {device.type}")
    cap = torch.cuda.get_device_capability(device)
    if cap < FP8_TRAINING_MIN_CAPABILITY:
        return f"{torch.cuda.get_device_name(device)} has compute capability {cap[0]}.{cap[1]}; fp8 matmuls need ≥ 8.9 (Ada, Hopper)"
    try:
        import torchao.float8  # noqa: F401
    except ImportError:
        return "torchao is not installed: pip install 'kdbench[fp8]'"
    return None


def _fp8_linear_ok(module: nn.Module, _fqn: str) -> bool:
    # fp8 matmul kernels need both dimensions divisible by 16.
    return isinstance(module, nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0


def to_fp8_training(model: nn.Module, emulate: bool = False) -> tuple[nn.Module, list[str]]:
    """Swap every eligible Linear for torchao's Float8Linear (in place); returns the model and
    the names of the swapped layers. ``emulate`` (torchao's CPU emulation) is for tests only.

    The weight gradient's matmul (grad_output^T @ input) has the rows of the batch (batch ×
    tokens for a ViT) as its inner dimension, which fp8 matmul kernels also need divisible by
    16: a ViT-S on 28 px images (50 tokens) with a last batch of 28 gave 1400 and stopped on the
    H200 ("Expected trailing dimension of mat1 to be divisible by 16"). ``pad_inner_dim`` pads
    that dimension with zeros inside the matmul, which adds nothing to the product and leaves
    the per-tensor scales (max |x|) unchanged."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    eligible = [name for name, m in model.named_modules() if _fp8_linear_ok(m, name)]
    if eligible:
        model = convert_to_float8_training(model, module_filter_fn=_fp8_linear_ok, config=Float8LinearConfig(emulate=emulate, pad_inner_dim=True))
    return model, eligible


def no_fp8_layers_reason(model_name: str, model: nn.Module) -> str:
    shapes = [f"{m.in_features}→{m.out_features}" for m in model.modules() if isinstance(m, nn.Linear)]
    return (f"{model_name} has no Linear layer whose dimensions are both divisible by 16 "
            f"(its Linear layers: {', '.join(shapes) or 'none'}); fp8 training here covers Linear layers only")
