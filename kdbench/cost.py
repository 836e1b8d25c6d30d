"""What a suite will cost before it runs: for every training the cells need, its epochs,
images and forward FLOPs per image, summed into the compute it takes. Teachers and TAKD
assistants are counted once, as the runner trains them once and caches them; a distilled
student adds the teacher's forward passes (every step, or once per image version where the
runner replays cached teacher logits). So a user knows what they start, and a GPU session can
be planned against its budget.

FLOPs are torch's FlopCounterMode counts (2 per multiply-add, convolutions and matmuls) of one
forward pass; a training step is taken as 3 forward passes (the backward pass costs about
twice the forward), 4 with gradient checkpointing (the blocks' forward again in the
backward). Epochs are the recipe's: early stopping can end a training sooner, so the totals
are upper bounds.

FLOPs say little about time where a model is bound by launching its kernels rather than by
arithmetic: the EfficientNet-B4 teacher of s1 (CIFAR-10, 32 px, fp32) sustained about 0.2
TFLOP/s on an H200, the ResNet-18 teacher of gpu-cifar10 about 17 on an H100. So a suite is
timed by epochs measured on the device that will run it (``measured_epoch_seconds``: from the
results of an earlier run; a quick profile's one epoch per model is enough), each training's
time being its recipe's epochs at the measured seconds per epoch."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .errors import KDBenchError
from .io import read_json
from .models import build_model, count_flops
from .suite import Cell, Suite, spec_hash, teacher_recipe_hash
from .suite_spec import kd_read_by

TRAIN_STEP_FORWARDS = 3  # forward + backward ≈ 3 forward passes
# Recipe options that change how long an epoch takes, not what it trains on: trainings that
# differ in them are timed apart.
SPEED_OPTIONS = ("channels_last", "fused_optimizer", "compile", "cuda_graph", "grad_checkpointing")


def speed_options(recipe) -> tuple[str, ...]:
    """The SPEED_OPTIONS a recipe sets (a RecipeSpec, or its dict in a result file; results
    from before an option existed have no key for it: off)."""
    get = recipe.get if isinstance(recipe, dict) else lambda o: getattr(recipe, o)
    return tuple(o for o in SPEED_OPTIONS if get(o))


@dataclass(frozen=True)
class Shape:
    """What the models of a dataset see, and how many images each split has."""

    channels: int
    image_size: int
    num_classes: int
    n_train: int
    n_val: int


@dataclass
class Stage:
    role: str  # teacher, assistant, student
    model: str
    dataset: str
    epochs: int
    n_train: int
    forward_flops: int  # per image
    teacher_passes: str  # how a distilling stage sees its teacher: "", "every step", "cached ×2"…
    flops: float
    cells: list[str]
    precision: str = ""
    batch_size: int = 0
    source: str = ""  # the model it distils from every step ("" for none or cached logits)
    speed: tuple[str, ...] = ()  # the recipe's SPEED_OPTIONS

    def timing_key(self) -> tuple:
        return timing_key(self.model, self.dataset, self.precision, self.batch_size, self.teacher_passes, self.source, self.speed)


def timing_key(model: str, dataset: str, precision: str, batch_size: int, passes: str, source: str, speed: tuple[str, ...]) -> tuple:
    """What the time of an epoch depends on, beyond the device: the model, its data and
    precision, the batch size, the teacher it runs beside every step, if any, and the speed
    options."""
    return (model, dataset, precision, batch_size, passes, source if passes == "every step" else "", speed)


def replayed_versions(augment: tuple[str, ...]) -> int | None:
    """How many versions of each training image a distilled student sees when the runner can
    cache the teacher's logits (none: 1, flip only: 2); None when it runs the teacher every step."""
    return {(): 1, ("flip",): 2}.get(tuple(augment))


def suite_stages(suite: Suite, cells: list[Cell], shapes: dict[str, Shape]) -> list[Stage]:
    """Every training the cells need, once each, with its compute."""
    flops_of: dict[tuple[str, str], int] = {}

    def fwd(model: str, dataset: str) -> int:
        if (model, dataset) not in flops_of:
            s = shapes[dataset]
            flops_of[model, dataset] = count_flops(build_model(model, s.channels, s.num_classes, s.image_size), s.channels, s.image_size)
        return flops_of[model, dataset]

    stages: dict[str, Stage] = {}

    def add(key: str, role: str, model: str, cell: Cell, recipe, source: str | None = None, source_key: str = "",
            per_step: bool = True, versions: int = 0) -> None:
        if key in stages:
            stages[key].cells.append(cell.id)
            return
        s = shapes[cell.dataset]
        f = fwd(model, cell.dataset)
        flops = recipe.epochs * ((TRAIN_STEP_FORWARDS + recipe.grad_checkpointing) * f * s.n_train + f * s.n_val)
        passes = ""
        if source is not None:
            ft = fwd(source, cell.dataset)
            if per_step:
                flops += recipe.epochs * ft * s.n_train
                passes = "every step"
            else:
                # The cached logits are shared by every student of this teacher: counted here,
                # with the first student that needs them.
                table = spec_hash({"logits": source_key, "versions": versions})
                if table not in stages:
                    stages[table] = Stage("teacher logits", source, cell.dataset, 0, s.n_train, ft, f"×{versions} (cached)", versions * ft * s.n_train, [])
                stages[table].cells.append(cell.id)
                passes = f"cached ×{versions}"
        stages[key] = Stage(role, model, cell.dataset, recipe.epochs, s.n_train, f, passes, flops, [cell.id], cell.precision,
                            recipe.batch_size, source if per_step and source is not None else "", speed_options(recipe))

    for cell in cells:
        spec = suite.spec_of(cell)
        teacher_key = source_key = spec_hash({"d": cell.dataset, "t": cell.teacher, "seed": cell.teacher_seed, "p": cell.precision, "r": teacher_recipe_hash(spec)})
        add(teacher_key, "teacher", cell.teacher, cell, spec.teacher)
        source = cell.teacher
        for name in cell.assistants:  # each assistant distils from the stage before, every step
            key = spec_hash({"previous": source_key, "a": name, "r": spec_hash(spec.student), "kd": spec_hash(kd_read_by(spec.kd, "kd"))})
            add(key, "assistant", name, cell, spec.student, source, source_key)
            source, source_key = name, key
        versions = replayed_versions(spec.student.augment)
        if cell.method == "none":
            add(f"cell {cell.id}", "student", cell.student, cell, spec.student)
        else:
            add(f"cell {cell.id}", "student", cell.student, cell, spec.student, source, source_key, versions is None, versions or 0)
    return list(stages.values())


def measured_epoch_seconds(results: list[dict]) -> dict[tuple, float]:
    """Seconds per epoch of each kind of training (``timing_key``) in finished results: per
    training, the median over its epochs after the first (which carries warm-up and
    compilation), or its one epoch; over several trainings of a kind, their median."""
    found: dict[tuple, list[float]] = {}

    def add(key: tuple, history: list[dict] | None) -> None:
        times = [h["epoch_seconds"] for h in history or () if h.get("epoch_seconds") is not None]
        if times:
            found.setdefault(key, []).append(statistics.median(times[1:] or times))

    for r in results:
        cell, spec = r["cell"], r["suite_spec"]
        add(timing_key(cell["teacher"], cell["dataset"], cell["precision"], spec["teacher"]["batch_size"], "", "", speed_options(spec["teacher"])),
            r.get("teacher", {}).get("history"))
        previous = cell["teacher"]
        for stage in r.get("teacher", {}).get("chain") or ():  # TAKD assistants: student recipe, the model before every step
            add(timing_key(stage["model"], cell["dataset"], cell["precision"], spec["student"]["batch_size"], "every step", previous,
                           speed_options(spec["student"])),
                stage.get("history"))  # results before 2026-11-26 did not record it
            previous = stage["model"]
        passes, source = "", ""
        if cell["method"] != "none":
            # Results from before TAKD and augmentation were recorded have neither field.
            versions = replayed_versions(tuple(spec["student"].get("augment", ())))
            passes = "every step" if versions is None else f"cached ×{versions}"
            source = (cell.get("assistants") or [cell["teacher"]])[-1]
        add(timing_key(cell["student"], cell["dataset"], cell["precision"], spec["student"]["batch_size"], passes, source,
                       speed_options(spec["student"])),
            r.get("student", {}).get("history"))
    return {k: statistics.median(v) for k, v in found.items()}


def measured_seconds(stage: Stage, epoch_seconds: dict[tuple, float]) -> float | None:
    """The stage's time at its recipe's epochs and the measured seconds per epoch; None if untimed."""
    per_epoch = epoch_seconds.get(stage.timing_key())
    return None if per_epoch is None or not stage.epochs else per_epoch * stage.epochs


def cost_table(stages: list[Stage], tflops: float | None = None, epoch_seconds: dict[tuple, float] | None = None) -> str:
    from tabulate import tabulate

    rows = []
    for st in stages:
        cells = st.cells[0] if len(st.cells) == 1 else f"{len(st.cells)} cells"
        row = [st.role, st.model, st.dataset, st.epochs or "", f"{st.n_train:,}", f"{st.forward_flops / 1e9:.3g}", st.teacher_passes,
               flops_text(st.flops), cells]
        if tflops:
            row.append(duration(st.flops / (tflops * 1e12)))
        if epoch_seconds is not None:
            seconds = measured_seconds(st, epoch_seconds)
            row += ["—", "—"] if seconds is None else [f"{seconds / st.epochs:.3g}", duration(seconds)]
        rows.append(row)
    headers = ["training", "model", "data", "epochs", "train images", "GFLOP / image (fwd)", "teacher passes", "compute", "for"]
    if tflops:
        headers.append(f"at {tflops:g} TFLOP/s")
    if epoch_seconds is not None:
        headers += ["measured s / epoch", "time (all epochs)"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def flops_text(flops: float) -> str:
    """3 significant digits in the unit that fits: 812 GFLOP, 1.93 PFLOP."""
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12)):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops / 1e9:.3g} GFLOP"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def timing_results(folder: Path, device_class: str | None) -> tuple[list[dict], str]:
    """The finished results in a suite's results folder that time its trainings, all from one
    device class (the one asked for, or the only one there), and that class."""
    results = []
    for path in sorted(folder.glob("*.json")):
        try:
            r = read_json(path)
        except (OSError, ValueError):
            continue
        if r.get("status") == "ok" and isinstance(r.get("config"), dict):
            results.append(r)
    classes = sorted({r["config"].get("device_class", "?") for r in results})
    if not results:
        raise KDBenchError(f"--timed-by: no finished result in {folder} to take epoch times from "
                           "(run the suite there first; a quick profile, --quick, times one epoch of every model)")
    if device_class is None:
        if len(classes) > 1:
            raise KDBenchError(f"--timed-by: {folder} holds results of several device classes ({', '.join(classes)}): choose one with --device-class")
        device_class = classes[0]
    chosen = [r for r in results if r["config"].get("device_class") == device_class]
    if not chosen:
        raise KDBenchError(f"--timed-by: no result of device class {device_class} in {folder} (there: {', '.join(classes)})")
    return chosen, device_class
