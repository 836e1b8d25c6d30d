"""The recipe's speed options (channels_last, fused optimizer, torch.compile) on a real run:
each keeps training deterministic (bitwise, in a fresh model) and learns like the default."""

from __future__ import annotations

import pytest
import torch

from kdbench import precision as prec
from kdbench.determinism import configure_determinism
from kdbench.io import tensors_sha256
from kdbench.models import build_model
from kdbench.suite import load_suite
from kdbench.train import fit, predict

from .conftest import REPO, smoke_subset


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return smoke_subset(tmp_path_factory.mktemp("r"), 40)


def train_once(suite, p, **options):
    import dataclasses

    recipe = dataclasses.replace(suite.spec.student, epochs=2, **options)
    configure_determinism(0)
    model = build_model("cnn_tiny", 1, 10, 28)
    policy = prec.get_policy("fp32", torch.device("cpu"))
    fr = fit(model, p.train, p.val, recipe, seed=0, policy=policy, device=torch.device("cpu"), stage="test", log=lambda m: None)
    acc = (predict(model, p.test, 256, policy, torch.device("cpu")).argmax(1) == p.test.y).float().mean().item()
    return tensors_sha256(model.state_dict()), fr.history[-1]["train_loss"], acc


@pytest.mark.smoke
@pytest.mark.parametrize("option", ["channels_last", "fused_optimizer", "compile"])
def test_speed_option_is_deterministic_and_learns_alike(smoke_data, option):
    suite, p = smoke_data
    base_sha, base_loss, base_acc = train_once(suite, p)
    a = train_once(suite, p, **{option: True})
    b = train_once(suite, p, **{option: True})
    assert a[0] == b[0], f"{option}: two runs gave different weights"
    # Rounding differs from the default path, the optimisation does not: same loss within 5 %
    # and test top-1 within 5 points after two epochs on 400 images.
    assert a[1] == pytest.approx(base_loss, rel=0.05), (option, a[1], base_loss)
    assert abs(a[2] - base_acc) <= 0.05, (option, a[2], base_acc)


@pytest.mark.smoke
def test_cuda_graph_on_a_cpu_trains_eagerly_and_says_so(smoke_data):
    """cuda_graph is a CUDA option: on the CPU the steps run eagerly (the same weights as
    without it), with one line in the log saying so. On a GPU tests/test_determinism.py checks
    the graphed steps bitwise against the eager ones."""
    import dataclasses

    suite, p = smoke_data
    cpu, lines = torch.device("cpu"), []

    def weights(cuda_graph: bool) -> str:
        configure_determinism(0)
        model = build_model("cnn_tiny", 1, 10, 28)
        recipe = dataclasses.replace(suite.spec.student, epochs=1, cuda_graph=cuda_graph)
        fit(model, p.train, p.val, recipe, seed=0, policy=prec.get_policy("fp32", cpu), device=cpu, stage="s", log=lines.append)
        return tensors_sha256(model.state_dict())

    assert weights(True) == weights(False)
    assert lines.count("    s: cuda_graph needs CUDA: eager steps on cpu") == 1


def test_a_recipe_field_added_later_leaves_the_hash_of_recipes_without_it_alone():
    """cuda_graph entered RecipeSpec after results existed: at its default it is not hashed, so
    those results stay current; set, it makes another configuration."""
    import dataclasses
    import hashlib
    import json

    from kdbench.suite import spec_hash
    from kdbench.suite_spec import RecipeSpec

    recipe = load_suite(REPO / "suites" / "canonical-cifar.yaml").spec.student
    later = ("cuda_graph", "train_metrics_each_epoch", "grad_checkpointing", "seed")  # the HASHED_WHEN_SET fields, added after results existed
    before = {k: v for k, v in dataclasses.asdict(recipe).items() if k not in later}  # the form hashed before them
    assert spec_hash(recipe) == hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
    assert spec_hash(dataclasses.replace(recipe, cuda_graph=True)) != spec_hash(recipe)
    assert spec_hash(dataclasses.replace(recipe, train_metrics_each_epoch=True)) != spec_hash(recipe)
    assert spec_hash(dataclasses.replace(recipe, grad_checkpointing=True)) != spec_hash(recipe)
    assert spec_hash(dataclasses.replace(recipe, seed=0)) != spec_hash(recipe)
    assert spec_hash(RecipeSpec()) != spec_hash(RecipeSpec(compile=True)), "fields from before are hashed at any value"


@pytest.mark.smoke
def test_flip_replayed_from_cached_teacher_logits_matches_the_teacher_forward(smoke_data):
    """With flip as the only augmentation the student's KD targets come from two cached logit
    tables (plain, mirrored), picked per image by its flip draw; that must give the same
    training as running the teacher every step, up to float rounding of batch composition."""
    import dataclasses

    suite, p = smoke_data
    cpu, policy = torch.device("cpu"), prec.get_policy("fp32", torch.device("cpu"))
    configure_determinism(1)
    teacher = build_model("cnn_small", 1, 10, 28).eval()
    recipe = dataclasses.replace(suite.spec.student, epochs=1, augment=("flip",))
    tables = (predict(teacher, p.train, 512, policy, cpu), predict(teacher, p.train, 512, policy, cpu, flip=True))
    assert not torch.allclose(tables[0], tables[1]), "mirrored images give other logits"
    runs = []
    for cached in (None, tables):
        configure_determinism(0)
        student = build_model("cnn_tiny", 1, 10, 28)
        fr = fit(student, p.train, p.val, recipe, seed=0, policy=policy, device=cpu, stage="t", teacher=teacher,
                 kd=suite.spec.kd, teacher_logits=cached, log=lambda m: None)
        runs.append((fr.history[-1], student.state_dict()))
    (h_step, w_step), (h_cache, w_cache) = runs
    assert h_cache["train_kd"] == pytest.approx(h_step["train_kd"], rel=1e-5)
    assert all(torch.allclose(w_step[k].float(), w_cache[k].float(), rtol=1e-3, atol=1e-4) for k in w_step)
    with pytest.raises(ValueError, match="flip only"):
        fit(build_model("cnn_tiny", 1, 10, 28), p.train, p.val, recipe, seed=0, policy=policy, device=cpu, stage="t",
            teacher=teacher, kd=suite.spec.kd, teacher_logits=tables[0], log=lambda m: None)
