"""ViT-Base / Small / Tiny (timm's VisionTransformer, from scratch) with the patch size
adapted to the image: a 16-pixel patch turns a 32×32 image into 4 tokens, so small inputs
get a patch that gives a grid of about 8×8 (S3's ViT chain on CIFAR-size data)."""

from __future__ import annotations

import torch.nn as nn

from . import register_model

# timm's names for the three sizes (embedding width / depth / heads are theirs).
_VIT = {"vit_base": "vit_base_patch16_224", "vit_small": "vit_small_patch16_224", "vit_tiny": "vit_tiny_patch16_224"}


def patch_size_for(image_size: int) -> int:
    """16 for ImageNet-size inputs (a grid of at least 7×7); otherwise the divisor of the
    image size whose grid is closest to 8×8 (32 → 4, 28 → 4, 64 → 8)."""
    if image_size % 16 == 0 and image_size // 16 >= 7:
        return 16
    divisors = [p for p in range(1, image_size + 1) if image_size % p == 0]
    return min(divisors, key=lambda p: (abs(image_size // p - 8), -p))


def _builder(timm_name: str):
    def build(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
        import timm

        return timm.create_model(timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                                 img_size=image_size, patch_size=patch_size_for(image_size))

    return build


for _name, _timm in _VIT.items():
    register_model(_name, f"{_timm} from scratch, patch size adapted to the image (S3's ViT chain)")(_builder(_timm))
