"""Training and evaluation of one model on a dataset held as uint8 tensors.

Batches are index slices of a seeded permutation; augmentation is tensor work on the
device, its randomness drawn from a CPU generator so CPU and CUDA runs see the same
batches. No per-image Python in the step loop: the images are a tensor on the device, or,
for sets streamed from disk (data.loading), DataLoader workers decode each batch of the
same seeded order."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import precision as prec
from .augment import apply_augmentation, draw_augmentation
from .checkpoint import resume_training, save_training
from .data.stream import FileImages, default_workers
from .errors import TrainingFault
from .graphed import GraphedStep
from .losses import ce_loss, dkd_loss, kd_loss
from .recompute import gradient_checkpointing
from .suite import KDSpec, RecipeSpec

Log = Callable[[str], None]


@dataclass
class DeviceData:
    """One split's images (uint8, on the device; or FileImages decoded batch by batch) and
    labels (on the device), plus normalisation."""

    x: torch.Tensor | FileImages
    y: torch.Tensor
    mean: torch.Tensor  # (1, C, 1, 1) float32
    std: torch.Tensor
    resize: int = 0  # > 0: batches are resized to this size (data.resize) before the model
    workers: int = 0  # DataLoader workers for FileImages (0: default_workers())

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batches(self, order: torch.Tensor | None, sizes: list[int]) -> Iterator[torch.Tensor]:
        """uint8 image batches on the labels' device: ``order`` (indices; None: 0, 1, …) cut
        into consecutive batches of ``sizes``."""
        if isinstance(self.x, FileImages):
            order = torch.arange(len(self)) if order is None else order
            yield from self.x.batches(order, sizes, self.y.device, self.workers or default_workers(), seed=0)
            return
        lo = 0
        for n in sizes:
            yield self.x[lo : lo + n] if order is None else self.x[order[lo : lo + n]]
            lo += n

    def images(self, idx: torch.Tensor) -> torch.Tensor:
        """A few images as uint8 on the CPU (for figures)."""
        return self.x.decode(idx) if isinstance(self.x, FileImages) else self.x[idx].cpu()

    def normalise(self, xb: torch.Tensor) -> torch.Tensor:
        xf = xb.float()
        if self.resize and xf.shape[-1] != self.resize:
            xf = F.interpolate(xf, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return (xf / 255.0 - self.mean) / self.std


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 1] units (float64 sums: exact enough
    to be identical on every machine)."""
    xf = x.to(torch.float64) / 255.0
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def streamed_channel_stats(x: FileImages, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``channel_stats`` of images on disk, from exact integer sums over one pass."""
    s, ss, m = x.channel_sums(workers or default_workers())
    s, ss = s.to(torch.float64), ss.to(torch.float64)
    mean = s / m / 255.0
    std = ((ss - s * s / m) / (m - 1)).clamp_min(0).sqrt() / 255.0
    return mean.float().view(1, -1, 1, 1), std.clamp_min(1e-3).float().view(1, -1, 1, 1)


def normalisation_stats(train_x: torch.Tensor | FileImages, how: str, workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as (1, C, 1, 1): the training split's own, or ImageNet's (what pretrained
    weights expect; a grey image gets the average of the three channels)."""
    if how == "imagenet":
        c = train_x.shape[1]
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if c != 3:
            mean, std = mean.mean().repeat(c), std.mean().repeat(c)
        return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
    if isinstance(train_x, FileImages):
        return streamed_channel_stats(train_x, workers)
    return channel_stats(train_x)


PROGRESS_EVERY_S = 30.0  # a progress line within an epoch at most this often (long CPU epochs)
CHECKPOINT_EVERY_S = 60.0  # a long training saves its state after an epoch at most this often


def epoch_order(y: torch.Tensor, sampling: str, gen: torch.Generator) -> torch.Tensor:
    """The training images of one epoch, in order, as indices: a permutation ("shuffle"),
    or len(y) draws with replacement weighted by 1 / class count ("class_balanced")."""
    n = int(y.shape[0])
    if sampling == "class_balanced":
        counts = torch.bincount(y)
        weights = (1.0 / counts.double())[y]
        return torch.multinomial(weights, n, replacement=True, generator=gen)
    return torch.randperm(n, generator=gen)


@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, batch_size: int, policy: prec.Policy, device: torch.device, flip: bool = False) -> torch.Tensor:
    """Logits (float32, on CPU) for every image, in order, with the model in eval mode
    (``flip``: of every image mirrored left-right, as the flip augmentation mirrors it)."""
    was_training = model.training
    model.eval()
    outs = []
    n = len(data)
    for xb in data.batches(None, [min(batch_size, n - i) for i in range(0, n, batch_size)]):
        with prec.autocast(policy, device):
            outs.append(model(data.normalise(xb.flip(3) if flip else xb)).float().cpu())
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def make_optimizer(model: nn.Module, recipe: RecipeSpec) -> tuple[torch.optim.Optimizer, float]:
    o = recipe.optimizer
    lr = o.lr * recipe.batch_size / o.lr_reference_batch if o.lr_reference_batch else o.lr
    params = model.parameters()
    fused = {"fused": True} if recipe.fused_optimizer else {}
    if o.name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov and o.momentum > 0, **fused)
    elif o.name == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=o.weight_decay, **fused)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=o.weight_decay, **fused)
    return opt, lr


def dkd_warmup(kd: KDSpec, epoch: int) -> float:
    """The weight of DKD's term in 1-based ``epoch``: a linear ramp to 1 over
    ``kd.dkd_warmup_epochs`` (DKD's code: min(epoch / warmup, 1)), 1 without one."""
    return min(epoch / kd.dkd_warmup_epochs, 1.0) if kd.dkd_warmup_epochs > 0 else 1.0


def make_scheduler(opt: torch.optim.Optimizer, recipe: RecipeSpec, steps_per_epoch: int):
    s = recipe.scheduler
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs * steps_per_epoch), "step"
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma), "epoch"
    if s.name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(s.milestones), gamma=s.gamma), "epoch"
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=s.gamma, patience=s.patience), "val"
    return None, "none"


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    selected_epoch: int = 0  # 1-based epoch whose weights were kept
    stopped_early: bool = False
    train_seconds: float = 0.0


def fit(
    model: nn.Module,
    train: DeviceData,
    val: DeviceData,
    recipe: RecipeSpec,
    *,
    seed: int,
    policy: prec.Policy,
    device: torch.device,
    stage: str,
    teacher: nn.Module | None = None,
    kd: KDSpec | None = None,
    method: str = "kd",
    teacher_logits: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    epoch_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None,
    test_metrics: Callable[[nn.Module], dict[str, float]] | None = None,
    train_metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
    log: Log = print,
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> FitResult:
    """Train ``model`` by ``recipe``; with a ``teacher`` and ``kd``, distil from it.

    The teacher stays in eval mode and runs under no_grad. ``teacher_logits`` (the eval-mode
    teacher's logits for every training image, in order) replace the per-step teacher
    forward: a tensor when the recipe has no augmentation, or (plain, mirrored) when flip is
    its only augmentation — the one that can be replayed: each step takes the row matching
    its image's flip draw. ``epoch_metrics`` adds metrics of
    the validation logits to each epoch's history row (as val_<name>); with
    ``recipe.test_each_epoch``, ``test_metrics(model)`` adds test_<name> (logged, never used to
    select or stop); with ``recipe.train_metrics_each_epoch``, ``train_metrics(logits, labels)``
    of the logits the epoch's steps trained on adds train_<name>. Raises TrainingFault on a
    non-finite loss (naming the epoch and step), leaving nothing half-done behind.

    ``checkpoint``: a file (keyed by the caller to this training's identity) where the whole
    training state is saved after an epoch, at most every ``checkpoint_every_s`` seconds; a
    later call with the same file resumes after the saved epoch, and ends bitwise where an
    uninterrupted run ends. The file is removed when training finishes."""
    gen = torch.Generator().manual_seed(seed)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    if recipe.compile:
        # In place (the state dict keeps its names). Static shapes: with dynamic=None a shape
        # seen second (the last, smaller batch) switches torch to a dynamic-shape graph whose
        # kernels round differently, and which graph a run gets would depend on what the
        # process compiled before — results must not.
        model.compile(dynamic=False)
    opt, _ = make_optimizer(model, recipe)
    n = len(train)
    bs = min(recipe.batch_size, n)
    # A last batch of one image breaks BatchNorm's batch statistics: drop it.
    steps = n // bs + (1 if n % bs > 1 else 0)
    sched, sched_every = make_scheduler(opt, recipe, steps)
    scaler = prec.grad_scaler(policy, device)
    if teacher_logits is not None:
        pair = isinstance(teacher_logits, tuple)
        if recipe.augment not in ((), ("flip",)) or pair != (recipe.augment == ("flip",)):
            raise ValueError(f"cached teacher logits need no augmentation (one tensor) or flip only (plain and mirrored), "
                             f"got augment={list(recipe.augment)} with {'two tensors' if pair else 'one tensor'}")
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    graph: GraphedStep | None = None  # captured at the first full batch (recipe.cuda_graph, CUDA only)
    if recipe.cuda_graph and device.type != "cuda":
        log(f"    {stage}: cuda_graph needs CUDA: eager steps on {device.type}")
    if recipe.cuda_graph and policy.name == "fp8":
        raise TrainingFault(f"{stage}: cuda_graph with fp8 training is not supported (its scaling is not captured); "
                            "run fp8 cells without cuda_graph", stage=stage)
    result = FitResult(model)
    best_val, best_state, since_best = -math.inf, None, 0
    t_start = time.perf_counter()
    first_epoch, seconds_before = 1, 0.0
    saved = resume_training(checkpoint, stage, recipe, model, opt, sched, scaler, gen, device, log) if checkpoint is not None else None
    if saved is not None:
        first_epoch, seconds_before = saved["epoch"] + 1, saved["train_seconds"]
        result.history, result.selected_epoch = saved["history"], saved["selected_epoch"]
        best_val, best_state, since_best = saved["best_val"], saved["best_state"], saved["since_best"]
    last_save = time.perf_counter()
    # Gradient checkpointing (kdbench.recompute) for the epochs only: the model leaves fit as it came.
    recomputing = gradient_checkpointing(model, stage) if recipe.grad_checkpointing else contextlib.nullcontext()
    with recomputing:
        for epoch in range(first_epoch, recipe.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            # Everything random for the epoch is drawn up front and moved to the device once:
            # no host-device copy or synchronisation inside the step loop.
            perm = epoch_order(train.y.cpu(), recipe.sampling, gen)
            sizes = [min(bs, n - i * bs) for i in range(steps)]
            aug = {k: v.to(device) for k, v in draw_augmentation(recipe.augment, sizes, gen).items()} if recipe.augment else {}
            perm = perm.to(device)
            sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, ce, kd (× batch size), correct
            first_bad = torch.full((), -1, dtype=torch.int64, device=device)
            bad_loss = torch.zeros((), device=device)
            step_ids = torch.arange(steps, device=device)
            seen = 0
            last_note = t0
            gather = train_metrics is not None and recipe.train_metrics_each_epoch
            epoch_logits: list[torch.Tensor] = []
            epoch_labels: list[torch.Tensor] = []
            for step, xb in enumerate(train.batches(perm, sizes)):
                lo, hi = step * bs, step * bs + sizes[step]
                idx = perm[lo:hi]
                if aug:
                    xb = apply_augmentation(xb, {k: v[lo:hi] for k, v in aug.items()})
                xb = train.normalise(xb).contiguous(memory_format=memory_format)
                yb = train.y[idx]
                if recipe.cuda_graph and graph is None and device.type == "cuda" and sizes[step] == bs:
                    graph = GraphedStep(model, teacher if teacher_logits is None else None, xb.shape, memory_format, policy, device, stage)
                with prec.autocast(policy, device, cache=graph is None):
                    out = model(xb) if graph is None else graph.student(xb)
                    if teacher is not None and teacher_logits is None:
                        with torch.no_grad():
                            t_out = teacher(xb) if graph is None else graph.teacher_forward(xb)
                if isinstance(teacher_logits, tuple):
                    t_out = torch.where(aug["flip"][lo:hi, None], teacher_logits[1][idx], teacher_logits[0][idx])
                elif teacher_logits is not None:
                    t_out = teacher_logits[idx]
                if teacher is not None and kd is not None and method == "dkd":
                    loss, parts = dkd_loss(out, t_out, yb, temperature=kd.temperature, ce_weight=kd.dkd_ce_weight, alpha=kd.dkd_alpha, beta=kd.dkd_beta,
                                           label_smoothing=recipe.label_smoothing, warmup=dkd_warmup(kd, epoch))
                elif teacher is not None and kd is not None:
                    loss, parts = kd_loss(out, t_out, yb, temperature=kd.temperature, ce_weight=kd.ce_weight, kd_weight=kd.kd_weight, label_smoothing=recipe.label_smoothing)
                else:
                    loss, parts = ce_loss(out, yb, recipe.label_smoothing)
                newly_bad = (first_bad < 0) & ~torch.isfinite(loss)
                first_bad = torch.where(newly_bad, step_ids[step], first_bad)
                bad_loss = torch.where(newly_bad, loss.detach().float(), bad_loss)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                if sched_every == "step":
                    sched.step()
                if gather:
                    # A copy: a graphed step's output is a buffer the next replay overwrites.
                    epoch_logits.append(out.detach().to(torch.float32, copy=True))
                    epoch_labels.append(yb)
                k = sizes[step]
                seen += k
                sums[0] += loss.detach().double() * k
                sums[3] += (out.detach().argmax(1) == yb).sum()
                sums[1] += parts["ce"].double() * k
                if "kd" in parts:
                    sums[2] += parts["kd"].double() * k
                # One synchronisation every 32 steps (and at the end) to stop on a non-finite
                # loss; the first bad step is recorded on the device, so it is named exactly.
                if step % 32 == 31 or step == steps - 1:
                    bad_step = int(first_bad)
                    if time.perf_counter() - last_note > PROGRESS_EVERY_S and step < steps - 1:
                        last_note = time.perf_counter()
                        log(f"    {stage} epoch {epoch}/{recipe.epochs}  step {step + 1}/{steps}  "
                            f"{seen / (last_note - t0):.0f} img/s")
                    if bad_step >= 0:
                        raise TrainingFault(
                            f"{stage}: loss became {float(bad_loss)} at epoch {epoch}, step {bad_step + 1}/{steps} "
                            f"(lr {opt.param_groups[0]['lr']:.3g}, precision {policy.name}); lower the LR or use another precision",
                            stage=stage, epoch=epoch, step=bad_step + 1,
                        )
            totals = (sums / seen).tolist()
            val_logits = predict(model, val, max(bs, 256), policy, device)
            val_top1 = (val_logits.argmax(1) == val.y.cpu()).float().mean().item() if len(val) else float("nan")
            lr_now = opt.param_groups[0]["lr"]
            if sched_every == "epoch":
                sched.step()
            elif sched_every == "val":
                sched.step(val_top1)
            row = {
                "epoch": epoch,
                "train_loss": totals[0],
                "train_ce": totals[1],
                "train_kd": totals[2] if teacher is not None else None,
                "train_top1": totals[3],
                "val_top1": val_top1,
                "lr": lr_now,
                "epoch_seconds": round(time.perf_counter() - t0, 3),
            }
            if epoch_metrics is not None and len(val):
                row.update({f"val_{k}": v for k, v in epoch_metrics(val_logits).items() if k != "top1"})
            if gather:
                row.update({f"train_{k}": v for k, v in train_metrics(torch.cat(epoch_logits), torch.cat(epoch_labels)).items()
                            if k != "top1"})  # train_top1 is the running count above, the same figure
                epoch_logits.clear()  # freed before the test pass below
                epoch_labels.clear()
            if test_metrics is not None and recipe.test_each_epoch:  # logged only; never selects or stops
                row.update({f"test_{k}": v for k, v in test_metrics(model).items()})
            if device.type == "cuda":
                row["max_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            result.history.append(row)
            log(f"    {stage} epoch {epoch}/{recipe.epochs}  loss {row['train_loss']:.4f}  val_top1 {val_top1:.4f}  lr {lr_now:.3g}  {row['epoch_seconds']:.1f}s")
            improved = val_top1 > best_val + recipe.early_stopping.min_delta
            if improved:
                best_val, since_best = val_top1, 0
                if recipe.select == "best_val":
                    best_state, result.selected_epoch = copy.deepcopy(model.state_dict()), epoch
            else:
                since_best += 1
            if recipe.early_stopping.patience and since_best >= recipe.early_stopping.patience:
                result.stopped_early = True
                log(f"    {stage} early stop after epoch {epoch}: no val_top1 gain for {since_best} epochs")
                break
            if checkpoint is not None and epoch < recipe.epochs and time.perf_counter() - last_save >= checkpoint_every_s:
                save_training(checkpoint, stage, recipe, epoch, model, opt, sched, scaler, gen, device, {
                    "history": result.history, "selected_epoch": result.selected_epoch, "best_val": best_val, "best_state": best_state,
                    "since_best": since_best, "train_seconds": seconds_before + time.perf_counter() - t_start})
                last_save = time.perf_counter()
    if recipe.select == "best_val" and best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.selected_epoch = len(result.history)
    result.train_seconds = round(seconds_before + time.perf_counter() - t_start, 3)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    if graph is not None:
        graph.close()
    return result
