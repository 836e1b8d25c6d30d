"""What a suite may say, beyond its types: names that exist in the registries, values in
range, a split that adds up, recipes that can run. ``validate`` raises ``SuiteError`` with the
file, the dotted path and a fix, before anything trains."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import KDBenchError, SuiteError
from .registry import suggest

if TYPE_CHECKING:
    from .suite_spec import KDSpec, RecipeSpec, SuiteSpec

METHODS = ("none", "kd", "dkd", "takd")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8")
# The metric names a suite may ask for (kdbench.metrics.METRIC_NAMES, repeated here so that
# loading a suite does not import torchmetrics).
METRICS = (
    "top1", "top3", "top5", "precision_micro", "precision_macro", "precision_weighted", "recall_micro", "recall_macro",
    "recall_weighted", "f1_micro", "f1_macro", "f1_weighted", "auroc_micro", "auroc_macro", "auroc_weighted", "ece", "agreement", "kl_teacher",
)
AUGMENTATIONS = ("flip", "crop", "rotate", "color")


def _check_names(source: str, path: str, names: tuple[str, ...], known: list[str], kind: str, extra_ok=lambda n: False) -> None:
    if not names:
        raise SuiteError(source, path, f"needs at least one {kind}")
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise SuiteError(source, f"{path}[{i}]", f"duplicate {kind} {n!r}: each matrix entry must be unique")
        seen.add(n)
        if n not in known and not extra_ok(n):
            raise SuiteError(source, f"{path}[{i}]", f"unknown {kind} {n!r}{suggest(n, known)}; known: {', '.join(known)}")


def _check_kd(source: str, path: str, kd: KDSpec) -> None:
    if not 0 < kd.temperature < math.inf:
        raise SuiteError(source, f"{path}.temperature", f"must be a finite number > 0, got {kd.temperature}")
    for k in ("ce_weight", "kd_weight"):
        v = getattr(kd, k)
        if not 0 <= v <= 1:
            raise SuiteError(source, f"{path}.{k}", f"must be in [0, 1], got {v}")
    for k in ("dkd_ce_weight", "dkd_alpha", "dkd_beta"):
        v = getattr(kd, k)
        if not 0 <= v < math.inf:
            raise SuiteError(source, f"{path}.{k}", f"must be a finite number ≥ 0, got {v}")
    if kd.dkd_warmup_epochs < 0:
        raise SuiteError(source, f"{path}.dkd_warmup_epochs", f"must be ≥ 0 (0: no ramp), got {kd.dkd_warmup_epochs}")
    if kd.ce_weight + kd.kd_weight <= 0:
        raise SuiteError(source, path, "ce_weight and kd_weight cannot both be 0")


def _check_recipe(source: str, path: str, r: RecipeSpec) -> None:
    def bad(sub: str, msg: str) -> SuiteError:
        return SuiteError(source, f"{path}.{sub}", msg)

    if r.epochs < 1:
        raise bad("epochs", f"must be ≥ 1, got {r.epochs}")
    if r.batch_size < 1:
        raise bad("batch_size", f"must be ≥ 1, got {r.batch_size}")
    if not 0 < r.optimizer.lr < math.inf:
        raise bad("optimizer.lr", f"must be a finite number > 0, got {r.optimizer.lr}")
    if not 0 <= r.optimizer.weight_decay < math.inf:
        raise bad("optimizer.weight_decay", f"must be ≥ 0, got {r.optimizer.weight_decay}")
    if not 0 <= r.optimizer.momentum < 1:
        raise bad("optimizer.momentum", f"must be in [0, 1), got {r.optimizer.momentum}")
    if r.optimizer.lr_reference_batch is not None and r.optimizer.lr_reference_batch < 1:
        raise bad("optimizer.lr_reference_batch", f"must be ≥ 1, got {r.optimizer.lr_reference_batch}")
    if r.scheduler.name == "multistep" and not r.scheduler.milestones:
        raise bad("scheduler.milestones", "multistep needs at least one milestone epoch")
    if any(b <= a for a, b in zip(r.scheduler.milestones, r.scheduler.milestones[1:], strict=False)) or any(e < 1 for e in r.scheduler.milestones):
        raise bad("scheduler.milestones", f"must be increasing epochs ≥ 1, got {list(r.scheduler.milestones)}")
    if r.scheduler.step_size < 1:
        raise bad("scheduler.step_size", f"must be ≥ 1, got {r.scheduler.step_size}")
    if not 0 < r.scheduler.gamma <= 1:  # also rejects NaN
        raise bad("scheduler.gamma", f"must be in (0, 1], got {r.scheduler.gamma}")
    if r.scheduler.patience < 0:
        raise bad("scheduler.patience", f"must be ≥ 0, got {r.scheduler.patience}")
    if not 0 <= r.early_stopping.min_delta < 1:
        raise bad("early_stopping.min_delta", f"must be in [0, 1), got {r.early_stopping.min_delta}")
    if r.early_stopping.patience < 0:
        raise bad("early_stopping.patience", f"must be ≥ 0 (0 disables it), got {r.early_stopping.patience}")
    if not 0 <= r.label_smoothing < 1:
        raise bad("label_smoothing", f"must be in [0, 1), got {r.label_smoothing}")
    if r.cuda_graph and r.compile:
        raise bad("cuda_graph", "choose cuda_graph or compile, not both (torch.compile brings its own CUDA graphs)")
    if r.grad_checkpointing and (r.compile or r.cuda_graph):
        raise bad("grad_checkpointing", "is not tested with compile or cuda_graph: use one of them")
    if r.seed is not None and path == "student":
        raise bad("seed", "only the teacher can be pinned to one seed: a student is seeded by the suite's seeds (one cell per seed)")
    if r.seed is not None and r.seed < 0:
        raise bad("seed", f"must be ≥ 0, got {r.seed}")
    for logged in ("test_each_epoch", "train_metrics_each_epoch"):
        if path == "teacher" and getattr(r, logged):
            # Else silently ignored: only the student stage logs these per-epoch metrics.
            raise bad(logged, "is a student option (teachers log their validation top-1 each epoch): set it under student")
    for i, a in enumerate(r.augment):
        if a not in AUGMENTATIONS:
            raise bad(f"augment[{i}]", f"unknown augmentation {a!r}{suggest(a, list(AUGMENTATIONS))}; known: {', '.join(AUGMENTATIONS)}")


def validate(spec: SuiteSpec, source: str) -> None:
    # Imported here: the registries fill when their modules import, and suite.py must stay
    # importable on its own.
    from .data import DATASETS, dataset_source
    from .models import MODELS, known_model_names

    if not spec.name or not all(c.isalnum() or c in "-_" for c in spec.name):
        raise SuiteError(source, "name", f"must be non-empty letters, digits, '-' or '_', got {spec.name!r}")
    if not spec.seeds:
        raise SuiteError(source, "seeds", "needs at least one seed")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise SuiteError(source, "seeds", f"duplicate seeds in {list(spec.seeds)}")
    if any(s < 0 for s in spec.seeds):
        raise SuiteError(source, "seeds", f"seeds must be ≥ 0, got {list(spec.seeds)}")
    sp = spec.split
    for k in ("train", "val", "test"):
        v = getattr(sp, k)
        if not 0 <= v <= 1:
            raise SuiteError(source, f"split.{k}", f"must be in [0, 1], got {v}")
    if len(spec.data.classes) == 1 or len(set(spec.data.classes)) != len(spec.data.classes):
        raise SuiteError(source, "data.classes", f"needs at least two distinct classes, got {list(spec.data.classes)}")
    if sp.max_per_class < 0:
        raise SuiteError(source, "split.max_per_class", f"must be ≥ 0 (0 keeps every image), got {sp.max_per_class}")
    if sp.train <= 0:
        raise SuiteError(source, "split.train", f"must be > 0, got {sp.train}")
    total = sp.train + sp.val + sp.test
    if abs(total - 1.0) > 1e-6:
        raise SuiteError(source, "split", f"train + val + test must be 1, got {sp.train} + {sp.val} + {sp.test} = {total:g}")
    m = spec.matrix
    _check_names(source, "matrix.datasets", m.datasets, DATASETS.names(), "dataset", extra_ok=lambda n: n.startswith("folder:"))
    for i, d in enumerate(m.datasets):
        try:
            has_test = dataset_source(d).has_test_split
        except KDBenchError as e:
            raise SuiteError(source, f"matrix.datasets[{i}]", str(e)) from None
        if has_test is None:
            continue  # a generic folder: checked when it is read
        if has_test and sp.test > 0:
            raise SuiteError(source, f"matrix.datasets[{i}]", f"dataset {d!r} has its own test split; set split.test to 0")
        if not has_test and sp.test <= 0:
            raise SuiteError(source, f"matrix.datasets[{i}]", f"dataset {d!r} has no test split; give split.test a fraction > 0")
    # timm's 1,300 names load only when a suite names a timm model (importing timm is slow).
    wants_timm = any(n.startswith("timm/") for n in m.teachers + m.students + tuple(x for p in m.pairs for x in p))
    models = known_model_names() if wants_timm else MODELS.names()
    if m.pairs:
        if m.teachers or m.students:
            raise SuiteError(source, "matrix.pairs", "give either pairs or teachers × students, not both")
        for i, pair in enumerate(m.pairs):
            if len(pair) < 2:
                raise SuiteError(source, f"matrix.pairs[{i}]", f"expected [teacher, student] or [teacher, assistant…, student], got {list(pair)}")
            if "takd" in m.methods and len(pair) < 3:
                raise SuiteError(source, f"matrix.pairs[{i}]", f"method takd needs an assistant: [teacher, assistant…, student], got {list(pair)}")
            for j, n in enumerate(pair):
                if n not in models:
                    raise SuiteError(source, f"matrix.pairs[{i}][{j}]", f"unknown model {n!r}{suggest(n, models)}")
        if len(set(m.pairs)) != len(m.pairs):
            raise SuiteError(source, "matrix.pairs", "duplicate pairs")
    else:
        for axis in ("teachers", "students"):
            _check_names(source, f"matrix.{axis}", getattr(m, axis), models, "model")
        if "takd" in m.methods:
            raise SuiteError(source, "matrix.methods", "method takd needs chains: give matrix.pairs as [teacher, assistant…, student]")
    _check_names(source, "matrix.precisions", m.precisions, list(PRECISIONS), "precision")
    _check_names(source, "matrix.methods", m.methods, list(METHODS), "method")
    _check_recipe(source, "teacher", spec.teacher)
    _check_recipe(source, "student", spec.student)
    if sp.val <= 0:
        for role in ("teacher", "student"):
            r = getattr(spec, role)
            if r.select == "best_val" or r.early_stopping.patience or r.scheduler.name == "plateau":
                raise SuiteError(source, "split.val", f"is 0, but {role} uses the validation split (best_val selection, early stopping "
                                 "or the plateau scheduler); give split.val a fraction > 0")
    _check_kd(source, "kd", spec.kd)
    ends = {(c[0], c[-1]) for c in (m.pairs or [(t, s) for t in m.teachers for s in m.students])}
    seen: set[tuple[str, str]] = set()
    for i, pair in enumerate(spec.kd_by_pair):
        key = (pair.teacher, pair.student)
        if key not in ends:
            listed = ", ".join(f"{t} → {s}" for t, s in sorted(ends))
            raise SuiteError(source, f"kd_by_pair[{i}]", f"{pair.teacher} → {pair.student} is not a teacher → student pair of the matrix; "
                             f"its pairs: {listed}")
        if key in seen:
            raise SuiteError(source, f"kd_by_pair[{i}]", f"a second entry for {pair.teacher} → {pair.student}; give each pair one")
        seen.add(key)
        _check_kd(source, f"kd_by_pair[{i}].kd", pair.kd)
    if spec.data.resize < 0:
        raise SuiteError(source, "data.resize", f"must be ≥ 0 (0 keeps the data set's size), got {spec.data.resize}")
    if spec.data.workers < 0:
        raise SuiteError(source, "data.workers", f"must be ≥ 0 (0: as many as the CPUs allow), got {spec.data.workers}")
    in_matrix = set(m.teachers + m.students + tuple(x for p in m.pairs for x in p))
    for name, file in spec.pretrained.items():
        if name not in in_matrix:
            raise SuiteError(source, f"pretrained.{name}", f"{name!r} is not a model of this suite's matrix{suggest(name, sorted(in_matrix))}")
        if not file:
            raise SuiteError(source, f"pretrained.{name}", "needs a file path")
    for i, r in enumerate(spec.reported):
        where = f"reported[{i}]"
        if not 0 < r.top1 <= 100:
            raise SuiteError(source, f"{where}.top1", f"is a percentage in (0, 100], got {r.top1}")
        if not r.teacher and not r.student:
            raise SuiteError(source, where, "names a teacher, a student, or both")
        for role, name in (("teacher", r.teacher), ("student", r.student)):
            if name and name not in in_matrix:
                raise SuiteError(source, f"{where}.{role}", f"{name!r} is not a model of this suite's matrix{suggest(name, sorted(in_matrix))}")
        if r.student and r.method not in METHODS:
            raise SuiteError(source, f"{where}.method", f"a student's figure needs its method, one of {', '.join(METHODS)}; got {r.method!r}")
    if not spec.metrics:
        raise SuiteError(source, "metrics", "needs at least one metric")
    _check_names(source, "metrics", spec.metrics, list(METRICS), "metric")
