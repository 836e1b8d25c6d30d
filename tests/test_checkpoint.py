"""Mid-training checkpoints: a training interrupted after some epochs resumes from its last
saved epoch and ends bitwise where an uninterrupted training ends — weights, optimizer and
scheduler state, the epoch-order generator and the global RNG (dropout) all restored."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from kdbench import precision as prec
from kdbench.io import tensors_sha256
from kdbench.runner import Runner, RunOptions
from kdbench.suite import load_suite
from kdbench.suite_spec import OptimizerSpec, SchedulerSpec
from kdbench.train import fit

from .conftest import REPO, smoke_subset

CPU = torch.device("cpu")


class Interrupted(Exception):
    pass


def crash_at(line_start: str):
    """A log function that raises (a crash) when a line starting with ``line_start`` comes."""
    seen: list[str] = []

    def log(msg: str) -> None:
        seen.append(msg)
        if msg.strip().startswith(line_start):
            raise Interrupted(msg)

    log.seen = seen
    return log


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return smoke_subset(tmp_path_factory.mktemp("r"), 30)


def dropout_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                         nn.Dropout(0.3), nn.Linear(8 * 7 * 7, 10))


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_interrupted_training_resumes_bitwise(smoke, tmp_path, scheduler):
    suite, p = smoke
    recipe = dataclasses.replace(suite.spec.student, epochs=5, batch_size=32, augment=("crop", "flip"), select="best_val",
                                 optimizer=OptimizerSpec(name="adam", lr=0.003), scheduler=SchedulerSpec(name=scheduler, patience=1, gamma=0.5))
    policy = prec.get_policy("fp32", CPU)

    def train(log, ckpt):
        model = dropout_net()
        torch.manual_seed(123)  # the global RNG dropout draws from; a resumed run must restore it, not reseed
        fr = fit(model, p.train, p.val, recipe, seed=7, policy=policy, device=CPU, stage="t", log=log, checkpoint=ckpt, checkpoint_every_s=0)
        return model, fr

    ref_model, ref = train(lambda m: None, None)
    ckpt = tmp_path / "ck.pt"
    log = crash_at("t epoch 4/5")  # epoch 4 trained, its state not yet saved: the resume redoes it
    with pytest.raises(Interrupted):
        train(log, ckpt)
    assert ckpt.exists()
    torch.manual_seed(999)  # whatever the restarted process's RNG holds
    log2 = crash_at("never")
    model, fr = train(log2, ckpt)
    assert any("resumed after epoch 3/5" in m for m in log2.seen)
    assert tensors_sha256(model.state_dict()) == tensors_sha256(ref_model.state_dict())
    strip = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in fr.history]
    assert strip == [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in ref.history]
    assert fr.selected_epoch == ref.selected_epoch and len(fr.history) == 5
    assert not ckpt.exists()  # removed once training finished


def test_checkpoint_of_another_training_or_damaged_is_not_used(smoke, tmp_path):
    suite, p = smoke
    recipe = dataclasses.replace(suite.spec.student, epochs=3, batch_size=64)
    policy = prec.get_policy("fp32", CPU)
    ckpt = tmp_path / "ck.pt"
    with pytest.raises(Interrupted):
        fit(dropout_net(), p.train, p.val, recipe, seed=0, policy=policy, device=CPU, stage="a", log=crash_at("a epoch 2/3"), checkpoint=ckpt, checkpoint_every_s=0)
    log = crash_at("never")
    fit(dropout_net(), p.train, p.val, recipe, seed=0, policy=policy, device=CPU, stage="b", log=log, checkpoint=ckpt, checkpoint_every_s=0)
    assert any("training checkpoint" in m and "belongs to another training" in m for m in log.seen)
    assert not any("resumed" in m for m in log.seen)
    with pytest.raises(Interrupted):
        fit(dropout_net(), p.train, p.val, recipe, seed=0, policy=policy, device=CPU, stage="a", log=crash_at("a epoch 2/3"), checkpoint=ckpt, checkpoint_every_s=0)
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # torn
    log = crash_at("never")
    fit(dropout_net(), p.train, p.val, recipe, seed=0, policy=policy, device=CPU, stage="a", log=log, checkpoint=ckpt, checkpoint_every_s=0)
    assert any("is corrupt" in m for m in log.seen) and not any("resumed" in m for m in log.seen)


@pytest.mark.smoke
def test_runner_resumes_a_crashed_teacher_and_student_mid_training(tmp_path):
    suite = load_suite(REPO / "suites" / "smoke.yaml", ("split.max_per_class=40", "teacher.epochs=3", "student.epochs=3"))
    [cell] = [c for c in suite.cells() if c.student == "cnn_tiny" and c.method == "kd"]

    def run(folder, log, cache):
        opts = RunOptions(results_dir=tmp_path / folder, cache_dir=tmp_path / cache, device=CPU, log=log, checkpoint_every_s=0)
        return Runner(suite, opts).run([cell])

    [ref] = run("ref", lambda m: None, "cache-ref")
    first = crash_at("teacher cnn_medium epoch 3/3")
    with pytest.raises(Interrupted):
        run("r", first, "cache")
    # train.py's epoch lines, as the runner logs them, say what is left of their training
    assert [m.endswith("left)") for m in first.seen if " epoch " in m and " loss " in m] == [True, True, False]
    second = crash_at("student cnn_tiny [kd] epoch 2/3")
    with pytest.raises(Interrupted):
        run("r", second, "cache")
    assert any("teacher cnn_medium: resumed after epoch 2/3" in m for m in second.seen)
    log = crash_at("never")
    [res] = run("r", log, "cache")
    assert any("student cnn_tiny [kd]: resumed after epoch 1/3" in m for m in log.seen)
    assert [m.endswith("left)") for m in log.seen if " epoch " in m and " loss " in m] == [True, False]
    assert res["status"] == "ok" and res["student"]["weights_sha256"] == ref["student"]["weights_sha256"]
    assert res["teacher"]["weights_sha256"] == ref["teacher"]["weights_sha256"] and res["metrics"] == ref["metrics"]
    assert not list((tmp_path / "cache" / "checkpoints").glob("*.pt"))


def test_list_shows_how_far_trainings_saved_midway_got(tmp_path, capsys):
    """kdbench list --results: a training this suite saved mid-way is listed with its epoch, its
    last validation top-1, the time left at its own pace and the cell it serves; a checkpoint
    under a key no current training of the suite has (another suite's, or older code's) is only
    counted; a damaged one is named."""
    from kdbench.checkpoint import save_training
    from kdbench.cli import main

    suite = load_suite(REPO / "suites" / "smoke.yaml")
    runner = Runner(suite, RunOptions(cache_dir=tmp_path / "cache", log=lambda m: None))
    cell = next(c for c in suite.cells() if c.method == "kd")
    (teacher_key, teacher_stage, _), (student_key, student_stage, _) = runner.training_keys(cell)
    assert teacher_stage == "teacher cnn_medium" and student_stage == f"student {cell.student} [kd]"
    spec = suite.spec_of(cell)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = prec.grad_scaler(prec.get_policy("fp32", CPU), CPU)
    folder = tmp_path / "cache" / "checkpoints"

    def save(key: str, stage: str, epoch: int, seconds: float, epoch_seconds: list[float] | None = None) -> None:
        history = [{"val_top1": 0.5} | ({"epoch_seconds": epoch_seconds[i]} if epoch_seconds else {}) for i in range(epoch)]
        save_training(folder / f"{key}.pt", stage, spec.teacher, epoch, model, opt, None, scaler, torch.Generator(), CPU,
                      {"history": history, "train_seconds": seconds})

    save(teacher_key, teacher_stage, 2, 120.0)  # no epoch times recorded: the mean pace
    # One epoch slowed 5x by other work on the machine does not set the pace: the median does.
    save(student_key, student_stage, 3, 70.0, [10.0, 50.0, 10.0])
    save("0" * 64, teacher_stage, 5, 50.0)  # the same stage under a key no current training has
    (folder / "c.pt").write_bytes(b"torn")
    assert main(["list", "suites/smoke.yaml", "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "cache"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"mid-training checkpoints in {folder}" in out
    assert "teacher cnn_medium: epoch 2/6 done (val top-1 50.00 %)" in out
    assert "at 60 s an epoch, at most 4m00s of training left (for 4 cells)" in out  # every cell of the smoke suite
    assert f"{student_stage}: epoch 3/6 done" in out
    assert f"at 10 s an epoch (the median epoch so far), at most 30s of training left (for {cell.id})" in out
    assert "epoch 5/" not in out and "1 other checkpoint(s) there belong to no training of this suite" in out
    assert "c.pt: unreadable" in out
    assert out.splitlines()[-1].startswith("4 not run")  # the counts stay last (tools/land_results.sh reads them)
