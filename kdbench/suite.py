"""Suite files: YAML → validated, frozen dataclasses → expanded cells with stable ids.

A suite is read with ``yaml.safe_load`` (no tags, no imports, no code) and validated
completely before anything trains: every unknown key, wrong type, unknown name and
impossible value is reported with the file, the dotted path and, where there is one, a
suggestion.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import KDBenchError, SuiteError
from .suite_checks import validate
from .suite_overrides import apply_override, refuse_kd_a_pair_keeps, set_path, unshared, with_pair_kd_in_full

# KDSpec and RecipeSpec are not used here: train.py imports them from this module, and train.py
# is part of the code fingerprint (editing its imports would re-key every result). Everything
# else imports the specs from suite_spec.
from .suite_spec import SWEEPABLE, KDSpec, RecipeSpec, SuiteSpec  # noqa: F401
from .typed_build import build


@dataclass(frozen=True)
class Cell:
    """One point of the matrix. Its id is built from its own axis values only, so it does
    not change when other cells are added or the file is reformatted."""

    suite: str
    dataset: str
    teacher: str
    student: str
    precision: str
    method: str
    seed: int
    assistants: tuple[str, ...] = ()  # takd only: the chain between teacher and student
    variant: str = ""  # a sweep's FIELD=VALUE, "" without a sweep
    pinned_teacher_seed: int | None = None  # the recipe's teacher.seed; not part of the id

    @property
    def teacher_seed(self) -> int:
        """The seed the cell's teacher is trained with: the cell's own unless pinned."""
        return self.seed if self.pinned_teacher_seed is None else self.pinned_teacher_seed

    @property
    def teacher_group(self) -> tuple[str, str, str, int]:
        """Cells with one group share one teacher training (dataset, teacher, precision, seed)."""
        return (self.dataset, self.teacher, self.precision, self.teacher_seed)

    @property
    def id(self) -> str:
        chain = "~".join((self.teacher, *self.assistants))
        parts = (self.dataset, chain, self.student, self.precision, self.method, f"s{self.seed}") + ((self.variant,) if self.variant else ())
        return "__".join(p.replace("/", "-") for p in parts)


@dataclass(frozen=True)
class Suite:
    spec: SuiteSpec
    source: str  # the file it came from, for messages and provenance
    # A sweep's variants: (FIELD=VALUE, the whole spec with that value set), each validated.
    variants: tuple[tuple[str, SuiteSpec], ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    def chains(self) -> list[tuple[str, ...]]:
        """(teacher, assistants…, student) for every teacher–student combination."""
        m = self.spec.matrix
        if m.pairs:
            return [tuple(p) for p in m.pairs]
        return [(t, s) for t in m.teachers for s in m.students]

    def cells(self) -> list[Cell]:
        m = self.spec.matrix
        specs = dict(self.variants) or {"": self.spec}
        return [
            Cell(self.name, d, c[0], c[-1], p, meth, seed, tuple(c[1:-1]) if meth == "takd" else (), label, specs[label].teacher.seed)
            for label in specs
            for d in m.datasets
            for c in self.chains()
            for p in m.precisions
            for meth in m.methods
            for seed in self.spec.seeds
        ]

    def spec_of(self, cell: Cell) -> SuiteSpec:
        """The spec a cell runs under: its sweep variant's, else the suite's, with its pair's
        KD settings (``kd_by_pair``) where the suite gives some."""
        spec = dict(self.variants)[cell.variant] if cell.variant else self.spec
        for pair in spec.kd_by_pair:
            if (pair.teacher, pair.student) == (cell.teacher, cell.student):
                return dataclasses.replace(spec, kd=pair.kd)
        return spec

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.spec)


def _hashed(obj: Any) -> Any:
    """``dataclasses.asdict`` without the HASHED_WHEN_SET fields that hold their default."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("hashed") == "when set" and value == (f.default_factory() if f.default is dataclasses.MISSING else f.default):
                continue
            out[f.name] = _hashed(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_hashed(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _hashed(v) for k, v in obj.items()}
    return obj


def spec_hash(obj: Any) -> str:
    """sha256 of a canonical JSON form of plain data or dataclasses."""
    text = json.dumps(_hashed(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def teacher_recipe_hash(spec: SuiteSpec) -> str:
    """The teacher recipe's hash without its seed, which keys carry on their own
    (Cell.teacher_seed): a teacher pinned to seed N is the very training seed N's unpinned
    cells make, and shares their cache."""
    return spec_hash(dataclasses.replace(spec.teacher, seed=None))


def parse_suite(text: str, source: str, overrides: tuple[str, ...] = ()) -> Suite:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SuiteError(source, where, f"not valid YAML: {problem}") from None
    if data is None:
        raise SuiteError(source, "", "the file is empty")
    if not isinstance(data, dict):
        raise SuiteError(source, "", f"the top level must be a mapping, got {type(data).__name__}")
    # YAML anchors (student: *teacher, <<: *teacher) make parts of the tree one shared object;
    # without this copy an override or sweep of student.* would change teacher.* too.
    data = unshared(data)
    for o in overrides:
        apply_override(data, o, source)
        key = o.split("=", 1)[0].strip()
        refuse_kd_a_pair_keeps(data, key, source, f"--set {key}")
    spec = build(SuiteSpec, with_pair_kd_in_full(data), source)
    validate(spec, source)
    return Suite(spec, source, sweep_variants(spec, data, source))


def sweep_variants(spec: SuiteSpec, data: dict, source: str) -> tuple[tuple[str, SuiteSpec], ...]:
    """Each value of the sweep set on a copy of the raw suite, built and validated like the
    file itself, so a bad value is reported before anything runs."""
    sw = spec.sweep
    if sw is None:
        return ()
    if not sw.field.startswith(SWEEPABLE) or sw.field.count(".") < 1:
        raise SuiteError(source, "sweep.field", f"can sweep a field under {', '.join(p + '*' for p in SWEEPABLE)}, got {sw.field!r}")
    if not sw.values:
        raise SuiteError(source, "sweep.values", "needs at least one value")
    labels = [f"{sw.field}={v}" for v in sw.values]
    if len(set(labels)) != len(labels):
        raise SuiteError(source, "sweep.values", f"duplicate values in {list(sw.values)}")
    refuse_kd_a_pair_keeps(data, sw.field, source, "sweep.field")
    out = []
    for i, (label, value) in enumerate(zip(labels, sw.values, strict=True)):
        variant = copy.deepcopy(data)
        del variant["sweep"]
        set_path(variant, sw.field, value, source)
        where = f"{source} (sweep.values[{i}] = {value!r})"
        vspec = build(SuiteSpec, with_pair_kd_in_full(variant), where)
        validate(vspec, where)
        out.append((label, vspec))
    return tuple(out)


def load_suite(path: str | Path, overrides: tuple[str, ...] = ()) -> Suite:
    p = Path(path)
    if not p.exists():
        # Allow "smoke" as a short form of suites/smoke.yaml.
        alt = Path("suites") / f"{p.name}.yaml"
        if p.suffix == "" and alt.exists():
            p = alt
        else:
            raise SuiteError(str(path), "", "no such suite file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(str(p), "", f"cannot read: {e}") from None
    return parse_suite(text, str(p), overrides)


def select_cells(cells: list[Cell], pattern: str | None = None, shard: str | None = None) -> list[Cell]:
    """Filter by a glob on cell ids, then keep shard i of n. Shards split by teacher group
    (Cell.teacher_group), so a teacher is trained in one shard only."""
    if pattern:
        cells = [c for c in cells if fnmatch.fnmatch(c.id, pattern)]
    if shard:
        try:
            i, n = (int(v) for v in shard.split("/"))
            if not (n >= 1 and 1 <= i <= n):
                raise ValueError
        except ValueError:
            raise KDBenchError(f"--shard must be i/n with 1 ≤ i ≤ n, got {shard!r}") from None
        groups = sorted({c.teacher_group for c in cells})
        mine = set(groups[i - 1 :: n])
        cells = [c for c in cells if c.teacher_group in mine]
    return cells
