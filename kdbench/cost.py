"""What a suite will cost before it runs: for every training the cells need, its epochs,
images and forward FLOPs per image, summed into the compute it takes. Teachers and TAKD
assistants are counted once, as the runner trains them once and caches them; a distilled
student adds the teacher's forward passes (every step, or once per image version where the
runner replays cached teacher logits). So a user knows what they start, and a GPU session can
be planned against its budget.

FLOPs are torch's FlopCounterMode counts (2 per multiply-add, convolutions and matmuls) of one
forward pass; a training step is taken as 3 forward passes (the backward pass costs about
twice the forward). Epochs are the recipe's: early stopping can end a training sooner, so the
totals are upper bounds."""

from __future__ import annotations

from dataclasses import dataclass

from .models import build_model, count_flops
from .suite import Cell, Suite, spec_hash

TRAIN_STEP_FORWARDS = 3  # forward + backward ≈ 3 forward passes


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
        flops = recipe.epochs * (TRAIN_STEP_FORWARDS * f * s.n_train + f * s.n_val)
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
        stages[key] = Stage(role, model, cell.dataset, recipe.epochs, s.n_train, f, passes, flops, [cell.id])

    for cell in cells:
        spec = suite.spec_of(cell)
        teacher_key = source_key = spec_hash({"d": cell.dataset, "t": cell.teacher, "seed": cell.seed, "p": cell.precision, "r": spec_hash(spec.teacher)})
        add(teacher_key, "teacher", cell.teacher, cell, spec.teacher)
        source = cell.teacher
        for name in cell.assistants:  # each assistant distils from the stage before, every step
            key = spec_hash({"previous": source_key, "a": name, "r": spec_hash(spec.student), "kd": spec_hash(spec.kd)})
            add(key, "assistant", name, cell, spec.student, source, source_key)
            source, source_key = name, key
        versions = replayed_versions(spec.student.augment)
        if cell.method == "none":
            add(f"cell {cell.id}", "student", cell.student, cell, spec.student)
        else:
            add(f"cell {cell.id}", "student", cell.student, cell, spec.student, source, source_key, versions is None, versions or 0)
    return list(stages.values())


def cost_table(stages: list[Stage], tflops: float | None = None) -> str:
    from tabulate import tabulate

    rows = []
    for st in stages:
        cells = st.cells[0] if len(st.cells) == 1 else f"{len(st.cells)} cells"
        row = [st.role, st.model, st.dataset, st.epochs or "", f"{st.n_train:,}", f"{st.forward_flops / 1e9:.3g}", st.teacher_passes,
               flops_text(st.flops), cells]
        if tflops:
            row.append(duration(st.flops / (tflops * 1e12)))
        rows.append(row)
    headers = ["training", "model", "data", "epochs", "train images", "GFLOP / image (fwd)", "teacher passes", "compute", "for"]
    if tflops:
        headers.append(f"at {tflops:g} TFLOP/s")
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
