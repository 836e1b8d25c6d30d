"""The KD loss: invariants (hypothesis), an independent float64 reference, alpha conventions."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdbench.losses import dkd_loss, dkd_terms, kd_loss, kd_term, weights_from_alpha_on_hard, weights_from_alpha_on_soft

shapes = st.tuples(st.integers(1, 16), st.integers(2, 20))
temps = st.floats(0.5, 10.0)
seeds = st.integers(0, 2**31 - 1)


def logits(seed: int, b: int, c: int, scale: float = 5.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g) * scale


def reference_kd(s: torch.Tensor, t: torch.Tensor, T: float) -> float:
    """Written from the definition, in float64, with plain exp/log: sum_j p_t (log p_t - log p_s)."""
    s, t = s.double() / T, t.double() / T
    total = 0.0
    for i in range(s.shape[0]):
        zs = sum(math.exp(v) for v in (s[i] - s[i].max()).tolist())
        zt = sum(math.exp(v) for v in (t[i] - t[i].max()).tolist())
        for j in range(s.shape[1]):
            log_ps = (s[i, j] - s[i].max()).item() - math.log(zs)
            log_pt = (t[i, j] - t[i].max()).item() - math.log(zt)
            total += math.exp(log_pt) * (log_pt - log_ps)
    return T * T * total / s.shape[0]


@settings(max_examples=60, deadline=None)
@given(shapes, temps, seeds)
def test_kd_term_is_non_negative(shape, T, seed):
    assert kd_term(logits(seed, *shape), logits(seed + 1, *shape), T).item() >= -1e-6


@settings(max_examples=60, deadline=None)
@given(shapes, temps, seeds)
def test_kd_term_is_zero_when_logits_match(shape, T, seed):
    s = logits(seed, *shape)
    assert abs(kd_term(s, s.clone(), T).item()) < 1e-5


@settings(max_examples=60, deadline=None)
# No subnormal floats: the tests run with denormals flushed, as the CLI does (conftest).
@given(shapes, temps, seeds, st.floats(-50, 50, allow_subnormal=False))
def test_adding_a_constant_to_a_row_changes_nothing(shape, T, seed, c):
    s, t = logits(seed, *shape), logits(seed + 1, *shape)
    base = kd_term(s, t, T).item()
    shifted = kd_term(s + c, t - 2 * c, T).item()
    assert shifted == pytest.approx(base, rel=1e-4, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(shapes, temps, seeds)
def test_batch_order_does_not_matter(shape, T, seed):
    s, t = logits(seed, *shape), logits(seed + 1, *shape)
    y = torch.arange(shape[0]) % shape[1]
    perm = torch.randperm(shape[0], generator=torch.Generator().manual_seed(seed))
    a, _ = kd_loss(s, t, y, temperature=T, ce_weight=0.3, kd_weight=0.7)
    b, _ = kd_loss(s[perm], t[perm], y[perm], temperature=T, ce_weight=0.3, kd_weight=0.7)
    assert a.item() == pytest.approx(b.item(), rel=1e-5, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(shapes, seeds, st.floats(2.0, 8.0))
def test_gradient_is_exact_and_t_squared_keeps_its_scale(shape, seed, T):
    """d/ds [T²·KL(p_t‖p_s)] = T·(p_s − p_t)/B exactly. For small logits that is ≈ (s − t)/(C·B)
    whatever T: the T² factor keeps the gradient scale independent of T (without it the
    gradient would shrink as 1/T²)."""
    B = shape[0]
    s, t = logits(seed, *shape, scale=0.1), logits(seed + 1, *shape, scale=0.1)

    def grad(temp):
        x = s.clone().requires_grad_(True)
        kd_term(x, t, temp).backward()
        return x.grad

    g1, g2 = grad(T), grad(2 * T)
    exact = T * (torch.softmax(s.double() / T, 1) - torch.softmax(t.double() / T, 1)) / B
    assert torch.allclose(g1.double(), exact, rtol=1e-3, atol=1e-6)  # float32 vs float64
    ratio = (g2.norm() / g1.norm()).item()
    assert 0.9 < ratio < 1.1, f"gradient norm changed by {ratio:.3f} when T doubled"


@pytest.mark.parametrize("b, c, T", [(1, 2, 1.0), (8, 10, 4.0), (5, 100, 2.0), (3, 7, 0.7)])
def test_matches_float64_reference(b, c, T):
    s, t = logits(b * c, b, c), logits(b * c + 1, b, c)
    assert kd_term(s, t, T).item() == pytest.approx(reference_kd(s, t, T), rel=1e-4, abs=1e-5)


def test_total_is_the_weighted_sum_and_teacher_gets_no_gradient():
    s = logits(0, 4, 10).requires_grad_(True)
    t = logits(1, 4, 10).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 3])
    total, parts = kd_loss(s, t, y, temperature=3.0, ce_weight=0.25, kd_weight=0.75)
    assert total.item() == pytest.approx(0.25 * parts["ce"].item() + 0.75 * parts["kd"].item(), rel=1e-6)
    total.backward()
    assert t.grad is None and s.grad is not None


def test_half_precision_logits_are_computed_in_fp32():
    s, t = logits(0, 4, 10), logits(1, 4, 10)
    ref = kd_term(s, t, 4.0)
    low = kd_term(s.bfloat16(), t.bfloat16(), 4.0)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(ref.item(), rel=0.05)


def test_alpha_conventions():
    assert weights_from_alpha_on_soft(0.7) == pytest.approx((0.3, 0.7))  # S1: α·soft + (1-α)·hard
    assert weights_from_alpha_on_hard(0.5) == pytest.approx((0.5, 0.5))  # S2: α·CE + (1-α)·KD
    assert weights_from_alpha_on_hard(0.9) == pytest.approx((0.9, 0.1))
    with pytest.raises(ValueError, match="alpha"):
        weights_from_alpha_on_soft(1.2)
    with pytest.raises(ValueError, match="temperature"):
        kd_term(logits(0, 2, 3), logits(1, 2, 3), 0.0)


# --------------------------------------------------------------------------- DKD


def reference_dkd(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, dtype=torch.float64) -> tuple[float, float]:
    """The published DKD recipe (probabilities, masks, log of probabilities), in float64 by
    default: fine for moderate logits, where it is the definition."""
    s, t = s.to(dtype) / T, t.to(dtype) / T
    gt = torch.nn.functional.one_hot(y, s.shape[1]).bool()
    ps, pt = s.softmax(1), t.softmax(1)
    bs = torch.stack([(ps * gt).sum(1), (ps * ~gt).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * ~gt).sum(1)], 1)
    tckd = (bt * (bt.log() - bs.log())).sum() / s.shape[0]
    ps2 = (s - 1000.0 * gt).log_softmax(1)
    pt2 = (t - 1000.0 * gt).softmax(1)
    nckd = torch.nn.functional.kl_div(ps2, pt2, reduction="sum") / s.shape[0]
    return (tckd * T * T).item(), (nckd * T * T).item()


@pytest.mark.parametrize("b, c, T", [(4, 10, 4.0), (8, 100, 2.0), (3, 3, 1.0)])
def test_dkd_matches_published_recipe(b, c, T):
    s, t = logits(b + c, b, c), logits(b + c + 1, b, c)
    y = torch.arange(b) % c
    tckd, nckd = dkd_terms(s, t, y, T)
    ref_t, ref_n = reference_dkd(s, t, y, T)
    assert tckd.item() == pytest.approx(ref_t, rel=1e-4, abs=1e-5)
    assert nckd.item() == pytest.approx(ref_n, rel=1e-4, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(shapes, temps, seeds)
def test_dkd_terms_non_negative_and_zero_when_logits_match(shape, T, seed):
    s, t = logits(seed, *shape), logits(seed + 1, *shape)
    y = torch.arange(shape[0]) % shape[1]
    tckd, nckd = dkd_terms(s, t, y, T)
    assert tckd.item() >= -1e-5 and nckd.item() >= -1e-5
    z1, z2 = dkd_terms(s, s.clone(), y, T)
    assert abs(z1.item()) < 1e-4 and abs(z2.item()) < 1e-4


def test_dkd_is_finite_on_saturated_binary_problems():
    # Two classes with logits far apart: p_target underflows to 0 in float32, where
    # log(p) in the published recipe gives inf / nan. Ours stays finite, NCKD is 0.
    s = torch.tensor([[60.0, -60.0], [-80.0, 80.0]], requires_grad=True)
    t = torch.tensor([[-70.0, 70.0], [90.0, -90.0]])
    y = torch.tensor([0, 1])
    loss, parts = dkd_loss(s, t, y, temperature=1.0, ce_weight=1.0, alpha=1.0, beta=8.0)
    assert torch.isfinite(loss) and loss.item() > 0
    assert dkd_terms(s, t, y, 1.0)[1].item() == 0.0
    loss.backward()
    assert torch.isfinite(s.grad).all()
    ref64, _ = reference_dkd(s.detach(), t, y, 1.0)  # no underflow in float64
    assert dkd_terms(s, t, y, 1.0)[0].item() == pytest.approx(ref64, rel=1e-5)
    naive32, _ = reference_dkd(s.detach(), t, y, 1.0, dtype=torch.float32)  # the published recipe in float32
    assert not math.isfinite(naive32)


def test_dkd_warmup_weighs_the_term_like_dkds_code():
    """DKD's code multiplies its term by min(epoch / warmup, 1), epochs from 1 (20 on CIFAR)."""
    import dataclasses

    from kdbench.suite import spec_hash
    from kdbench.suite_spec import KDSpec
    from kdbench.train import dkd_warmup

    ramp = KDSpec(dkd_warmup_epochs=20)
    assert [dkd_warmup(ramp, e) for e in (1, 10, 20, 21, 240)] == [0.05, 0.5, 1.0, 1.0, 1.0]
    assert dkd_warmup(KDSpec(), 1) == 1.0, "0, the default: no ramp"
    # Unset, the field is not hashed: the KD settings of results made before it keep their hash.
    before = {k: v for k, v in dataclasses.asdict(KDSpec()).items() if k != "dkd_warmup_epochs"}
    assert spec_hash(KDSpec()) == spec_hash(before) != spec_hash(ramp)
    s, t, y = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10), torch.randint(0, 10, (8,))
    args = {"temperature": 4.0, "ce_weight": 1.0, "alpha": 1.0, "beta": 8.0}
    full, parts = dkd_loss(s, t, y, **args)
    quarter, q_parts = dkd_loss(s, t, y, **args, warmup=0.25)
    assert torch.equal(q_parts["ce"], parts["ce"]) and q_parts["kd"].item() == pytest.approx(0.25 * parts["kd"].item(), rel=1e-6)
    assert quarter.item() == pytest.approx(parts["ce"].item() + 0.25 * parts["kd"].item(), rel=1e-6)
    assert torch.equal(dkd_loss(s, t, y, **args, warmup=1.0)[0], full), "a weight of 1 computes what no ramp does"


@pytest.mark.smoke
def test_a_dkd_training_ramps_its_term_in(tmp_path):
    """A 1-epoch ramp weighs epoch 1 fully: bitwise the training without one. A 4-epoch ramp
    gives epoch 1 a quarter of the DKD term: another training, with a smaller DKD loss."""
    import dataclasses

    from kdbench import precision as prec
    from kdbench.determinism import configure_determinism
    from kdbench.io import tensors_sha256
    from kdbench.models import build_model
    from kdbench.train import fit

    from .conftest import smoke_subset

    suite, p = smoke_subset(tmp_path, 16)
    cpu = torch.device("cpu")
    recipe = dataclasses.replace(suite.spec.student, epochs=1)
    configure_determinism(1)
    teacher = build_model("cnn_small", 1, 10, 28).eval()

    def train(warmup: int) -> tuple[float, str]:
        configure_determinism(0)
        student = build_model("cnn_tiny", 1, 10, 28)
        kd = dataclasses.replace(suite.spec.kd, dkd_warmup_epochs=warmup)
        fr = fit(student, p.train, p.val, recipe, seed=0, policy=prec.get_policy("fp32", cpu), device=cpu, stage="s",
                 teacher=teacher, kd=kd, method="dkd", log=lambda m: None)
        return fr.history[0]["train_kd"], tensors_sha256(student.state_dict())

    (kd0, w0), (kd1, w1), (kd4, w4) = train(0), train(1), train(4)
    assert (kd1, w1) == (kd0, w0)
    assert w4 != w0 and 0 < kd4 < kd0
