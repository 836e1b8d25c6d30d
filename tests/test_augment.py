"""GPU-side augmentation: seeded, shape- and dtype-preserving, identity at neutral parameters."""

import torch

from kdbench.augment import apply_augmentation, draw_augmentation

ALL = ("crop", "flip", "rotate", "color")


def images(n=6, c=3, s=16):
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_same_seed_same_augmentation_and_dtype_kept():
    x = images()
    a = apply_augmentation(x, draw_augmentation(ALL, [4, 2], torch.Generator().manual_seed(5)))
    b = apply_augmentation(x, draw_augmentation(ALL, [4, 2], torch.Generator().manual_seed(5)))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == x.shape
    c = apply_augmentation(x, draw_augmentation(ALL, [4, 2], torch.Generator().manual_seed(6)))
    assert not torch.equal(a, c)


def test_neutral_parameters_are_the_identity():
    x = images()
    n = x.shape[0]
    params = {"dy": torch.full((n,), 4), "dx": torch.full((n,), 4), "flip": torch.zeros(n, dtype=torch.bool),
              "angle": torch.zeros(n), "bright": torch.ones(n), "contrast": torch.ones(n), "sat": torch.ones(n)}
    assert torch.equal(apply_augmentation(x, params), x)


def test_adding_new_ops_keeps_the_draws_of_old_ones():
    # Suites that use only crop and flip must see exactly the draws they saw before rotate and
    # colour jitter existed: their golden values depend on it.
    old = draw_augmentation(("crop", "flip"), [8], torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    ref = {"dy": torch.randint(0, 9, (8,), generator=g), "dx": torch.randint(0, 9, (8,), generator=g), "flip": torch.rand(8, generator=g) < 0.5}
    assert all(torch.equal(old[k], ref[k]) for k in ref) and set(old) == set(ref)
