"""What a cell's result and its cached stages are keyed by: the cell's configuration (suite
settings, device class, training code, starting weights, CPU numerics) and the cache keys of
the trainings it runs. A finished result is current while its configuration matches; a cached
teacher, assistant or checkpoint is reused while its key does. One place computes both, so
`kdbench list`, a run's skip decision and its caches cannot disagree."""

from __future__ import annotations

import dataclasses

import torch

from .code_lineage import canonical, load_links
from .determinism import flush_denormals
from .fingerprint import CODE_FILES, FP8_CODE_FILES, code_fingerprint, raw_code_fingerprint
from .prepare import Prepared
from .suite import Cell, Suite, spec_hash, teacher_recipe_hash
from .suite_spec import kd_read_by


class CellIdentity:
    def __init__(self, suite: Suite, device_class: str, pretrained_sha256: dict[str, str]):
        """``pretrained_sha256``: model name → sha256 of the starting weights the suite names."""
        self.suite = suite
        self.device_class = device_class
        self.pretrained_sha256 = pretrained_sha256
        # The files' own fingerprints, and the oldest ones verified to train the same
        # (kdbench.code_lineage), which key results and caches: a verified refactor of the
        # training code keeps every finished result and cached training current.
        self.files_code = {"": code_fingerprint(), "fp8": code_fingerprint(FP8_CODE_FILES)}
        links = load_links()
        self.code = canonical(self.files_code[""], links)
        self.code_fp8 = canonical(self.files_code["fp8"], links)
        self.raw_code = {k: canonical(raw_code_fingerprint(files), links) for k, files in (("", CODE_FILES), ("fp8", FP8_CODE_FILES))}
        # On a CPU, whether denormals are flushed decides the numbers (and the speed): part of
        # a CPU cell's configuration and of its cached stages' keys. GPU cells are unaffected.
        self.cpu_denormals = flush_denormals()
        self.cpu_numerics = self.numerics_of(device_class)

    def numerics_of(self, device_class: str) -> dict:
        """What decides the numbers on that device class beyond code and settings: on a CPU,
        whether denormals are flushed."""
        return {"cpu_denormals": self.cpu_denormals} if device_class == "cpu" else {}

    def pretrained_of(self, names) -> dict[str, str]:
        """sha256 of the starting weights of those models that have them (for cache keys)."""
        return {n: self.pretrained_sha256[n] for n in names if n in self.pretrained_sha256}

    def pretrained_entry(self, name: str) -> dict:
        """A trained stage's key entry for its starting weights: none for a model that starts
        from scratch, so the keys of such stages stay what they were before `pretrained` existed."""
        return {"pretrained": self.pretrained_of([name])} if name in self.pretrained_sha256 else {}

    def code_of(self, cell: Cell) -> str:
        """The fingerprint of the code that trains this cell's models."""
        return self.code_fp8 if cell.precision == "fp8" else self.code

    def files_code_of(self, cell: Cell) -> str:
        """The fingerprint of the training code's files as they are now (``code_of`` may be an
        older one, verified to train the same)."""
        return self.files_code["fp8" if cell.precision == "fp8" else ""]

    def raw_code_of(self, cell: Cell) -> str:
        """The same over the files' raw bytes, comments included (what results made before
        comments were left out of the fingerprint hold)."""
        return self.raw_code["fp8" if cell.precision == "fp8" else ""]

    # ----------------------------------------------------------------- results

    def cell_config(self, cell: Cell) -> dict:
        s = self.suite.spec_of(cell)
        return {
            "cell": {"dataset": cell.dataset, "teacher": cell.teacher, "assistants": list(cell.assistants), "student": cell.student,
                     "precision": cell.precision, "method": cell.method, "seed": cell.seed, "variant": cell.variant},
            "split": spec_hash(s.split),
            # How the pixels reach the model (memory or streamed, how many workers) does not
            # change them or their order (tested bitwise), so it does not re-run finished cells.
            "data": spec_hash(dataclasses.replace(s.data, loading="auto", workers=0)),
            "teacher_recipe": teacher_recipe_hash(s),
            "student_recipe": spec_hash(s.student),
            "kd": spec_hash(kd_read_by(s.kd, cell.method)) if cell.method != "none" else None,
            "metrics": list(s.metrics),
            "device_class": self.device_class,
            "code": self.code_of(cell),
            "pretrained": self.pretrained_of((cell.teacher, *cell.assistants, cell.student)),
            **self.cpu_numerics,
            # Only a pinned teacher of another seed (recipe teacher.seed) is a different
            # configuration: pinned to the cell's own seed it trains the same teacher.
            **({"teacher_seed": cell.teacher_seed} if cell.teacher_seed != cell.seed else {}),
        }

    def config_changes(self, cell: Cell, result: dict, here: bool = False) -> list[str]:
        """The parts of a finished result's configuration that differ from what this suite and
        this training code would run now ([]: the result is current, a re-run keeps it), judged
        on the device class the result was made on (so GPU results can be checked on a CPU), or
        with ``here`` on this device class."""
        have = result.get("config") or {}
        want = self.cell_config(cell)
        if not here:
            want["device_class"] = have.get("device_class", want["device_class"])
            want.pop("cpu_denormals", None)
            want.update(self.numerics_of(want["device_class"]))
        # A result made before comments were left out of the fingerprint holds the raw files'.
        raw = dict(want, code=self.raw_code_of(cell))
        if result.get("config_hash") in (spec_hash(want), spec_hash(raw)):
            return []
        if have.get("code") == raw["code"]:
            want = raw
        return sorted(k for k in want if have.get(k) != want[k]) or ["config_hash"]

    # ----------------------------------------------------------------- trainings

    def teacher_key(self, cell: Cell, p: Prepared) -> str:
        return spec_hash({
            "dataset": p.data.fingerprint, "split": p.split.fingerprint, "model": cell.teacher,
            "recipe": teacher_recipe_hash(self.suite.spec_of(cell)), "seed": cell.teacher_seed, "precision": cell.precision,
            "device_class": self.device_class, "torch": torch.__version__, "code": self.code_of(cell), **self.cpu_numerics,
            **self.pretrained_entry(cell.teacher),
        })

    def assistant_key(self, cell: Cell, name: str, previous_key: str) -> str:
        """A TAKD assistant's cache key: keyed by the whole chain above it (``previous_key``)."""
        spec = self.suite.spec_of(cell)
        return spec_hash({"previous": previous_key, "model": name, "recipe": spec_hash(spec.student), "kd": spec_hash(kd_read_by(spec.kd, "kd")),
                          "seed": cell.seed, "precision": cell.precision, "device_class": self.device_class, "code": self.code_of(cell),
                          **self.cpu_numerics, **self.pretrained_entry(name)})

    def student_key(self, cell: Cell) -> str:
        """The student's checkpoint key: the cell's configuration hash (its result's config_hash)."""
        return spec_hash(self.cell_config(cell))

    def training_keys(self, cell: Cell, p: Prepared) -> list[tuple[str, str, int]]:
        """(key, stage, epochs) of each training the cell runs on the data ``p``, keyed as a run
        keys its caches and checkpoints: the teacher, the assistants (takd), the student."""
        spec = self.suite.spec_of(cell)
        out = [(self.teacher_key(cell, p), f"teacher {cell.teacher}", spec.teacher.epochs)]
        for name in cell.assistants if cell.method == "takd" else ():
            out.append((self.assistant_key(cell, name, out[-1][0]), f"assistant {name}", spec.student.epochs))
        out.append((self.student_key(cell), f"student {cell.student} [{cell.method}]", spec.student.epochs))
        return out
