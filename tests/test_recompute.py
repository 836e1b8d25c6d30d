"""Gradient checkpointing (recipe ``grad_checkpointing``, kdbench.recompute): the blocks'
forward really is recomputed in the backward pass, and training is bitwise the same as
without it — BatchNorm's running statistics included, which PyTorch's checkpoint alone
updates twice a step. On a GPU, tests/test_determinism.py also checks the memory it saves."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from kdbench import precision as prec
from kdbench.determinism import configure_determinism
from kdbench.errors import KDBenchError, SuiteError
from kdbench.io import tensors_sha256
from kdbench.models import build_model
from kdbench.recompute import gradient_checkpointing
from kdbench.runner import Runner, RunOptions
from kdbench.suite import load_suite
from kdbench.train import fit

from .conftest import REPO, smoke_subset

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return smoke_subset(tmp_path_factory.mktemp("r"), 16)


def training_steps(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for x in batches:
        opt.zero_grad(set_to_none=True)
        model(x).logsumexp(1).mean().backward()
        opt.step()


def test_checkpointing_alone_updates_batchnorm_twice_and_the_guard_once():
    """The failure the guard exists for, shown on timm's ResNet-18: the same steps with
    timm's checkpointing alone leave other running statistics (and twice the batch count in
    the checkpointed blocks) than plain steps; under ``gradient_checkpointing`` every tensor
    of the state is bitwise the plain run's."""
    configure_determinism(0)
    plain = build_model("timm/resnet18", 3, 10, 32)
    alone, guarded = (build_model("timm/resnet18", 3, 10, 32) for _ in range(2))
    alone.load_state_dict(plain.state_dict())
    guarded.load_state_dict(plain.state_dict())
    batches = [torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]

    training_steps(plain, batches)
    alone.set_grad_checkpointing(True)
    training_steps(alone, batches)
    with gradient_checkpointing(guarded, "test"):
        training_steps(guarded, batches)

    assert int(plain.layer1[0].bn1.num_batches_tracked) == 2
    assert int(alone.layer1[0].bn1.num_batches_tracked) == 4, "timm's checkpointing recomputes the block, BatchNorm included"
    assert not torch.equal(alone.layer1[0].bn1.running_mean, plain.layer1[0].bn1.running_mean)
    assert int(alone.bn1.num_batches_tracked) == 2, "the stem is not checkpointed"
    assert tensors_sha256(guarded.state_dict()) == tensors_sha256(plain.state_dict())
    assert not guarded.grad_checkpointing and {m.momentum for m in guarded.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}


class SharedNormNet(torch.nn.Module):
    """A model that calls one BatchNorm twice in its forward (outside the checkpointed block)
    and checkpoints a block with its own BatchNorm when ``set_grad_checkpointing`` asks: the
    case that tells a recomputation apart from a model's own second call."""

    def __init__(self, use_reentrant: bool):
        super().__init__()
        self.use_reentrant, self.grad_checkpointing = use_reentrant, False
        self.shared = torch.nn.BatchNorm2d(4)
        self.block = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.stem, self.head = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4, 5)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward(self, x):
        x = self.shared(self.stem(x))
        x = checkpoint(self.block, x, use_reentrant=self.use_reentrant) if self.grad_checkpointing else self.block(x)
        return self.head(self.shared(x).mean((2, 3)))


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_a_batchnorm_the_model_calls_twice_still_updates_twice(use_reentrant):
    """Only the calls in the backward pass (the recomputation) leave the running statistics
    alone: the shared BatchNorm counts two batches a step with or without the guard, the
    checkpointed block's one, and the whole state is bitwise the plain run's."""
    torch.manual_seed(0)
    plain = SharedNormNet(use_reentrant)
    guarded = SharedNormNet(use_reentrant)
    guarded.load_state_dict(plain.state_dict())
    batches = [torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]

    training_steps(plain, batches)
    with gradient_checkpointing(guarded, "test"):
        training_steps(guarded, batches)

    assert int(plain.shared.num_batches_tracked) == 6 and int(plain.block[1].num_batches_tracked) == 3
    assert tensors_sha256(guarded.state_dict()) == tensors_sha256(plain.state_dict())


def train(suite, p, name: str, checkpointing: bool) -> tuple[str, list[dict], int, torch.nn.Module]:
    """One epoch of ``name`` by fit: its weights' hash, its history without times, how often
    its first block ran in training mode, and the model."""
    recipe = dataclasses.replace(suite.spec.student, epochs=1, batch_size=32, grad_checkpointing=checkpointing)
    configure_determinism(0)
    model = build_model(name, 1, 10, 28)
    first_block = model.layer1[0] if hasattr(model, "layer1") else model.blocks[0]
    calls = []
    # A pre-hook: PyTorch stops a recomputation once it has what the backward needs, which may
    # be before the block's own forward hook would run.
    first_block.register_forward_pre_hook(lambda m, args: calls.append(m.training))
    fr = fit(model, p.train, p.val, recipe, seed=0, policy=prec.get_policy("fp32", CPU), device=CPU, stage="t", log=lambda m: None)
    history = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in fr.history]
    return tensors_sha256(model.state_dict()), history, sum(calls), model


@pytest.mark.smoke
@pytest.mark.parametrize("name", ["timm/resnet18", "vit_tiny"])
def test_a_checkpointed_run_recomputes_and_trains_bitwise_as_a_plain_one(smoke_data, name):
    suite, p = smoke_data
    plain_sha, plain_history, plain_calls, _ = train(suite, p, name, False)
    sha, history, calls, model = train(suite, p, name, True)
    steps = len(p.train) // 32 + (len(p.train) % 32 > 1)
    assert plain_calls == steps and calls == 2 * steps, "each step's first block ran once more: recomputed in the backward pass"
    assert sha == plain_sha and history == plain_history  # validation metrics too, to the bit
    assert not model.grad_checkpointing, "fit leaves the model as it came"


def test_a_model_without_checkpointing_is_refused_before_anything_trains(smoke_data, tmp_path):
    suite = load_suite(REPO / "suites" / "smoke.yaml", ("split.max_per_class=16", "student.grad_checkpointing=true"))
    runner = Runner(suite, RunOptions(results_dir=tmp_path, log=lambda m: None))
    with pytest.raises(SuiteError) as e:
        runner.check_runnable(suite.cells())
    assert e.value.path == "student.grad_checkpointing" and "cnn_small has no gradient checkpointing" in str(e.value)
    with pytest.raises(KDBenchError, match="has no gradient checkpointing"), gradient_checkpointing(build_model("cnn_tiny", 1, 10, 28), "t"):
        pass
    timm_only = load_suite(REPO / "suites" / "smoke.yaml", ("split.max_per_class=16", "student.grad_checkpointing=true",
                                                             "teacher.grad_checkpointing=true", "matrix.teachers=[timm/resnet34]",
                                                             "matrix.students=[timm/resnet18, vit_tiny]"))
    Runner(timm_only, RunOptions(results_dir=tmp_path, log=lambda m: None)).check_runnable(timm_only.cells())
    with pytest.raises(SuiteError, match="not tested with fp8 training"):
        fp8 = load_suite(REPO / "suites" / "smoke.yaml", ("student.grad_checkpointing=true", "matrix.students=[vit_tiny]", "matrix.precisions=[fp8]"))
        Runner(fp8, RunOptions(results_dir=tmp_path, log=lambda m: None)).check_runnable(fp8.cells())
