"""Run cells: teacher (trained once, cached), student alone or distilled, evaluated on the
test split, written as one JSON file per cell with its provenance.

A finished cell's file is the unit of progress: a re-run skips cells whose file exists with
the same configuration hash, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import torch

from . import precision as prec
from .cpu_bf16 import slow_bf16_warning
from .data.base import default_cache_dir, resolve_data_root
from .determinism import configure_determinism, device_class, environment
from .errors import KDBenchError, SuiteError, TrainingFault
from .fp8 import SIMULATION, fp8_simulated, fp8_training_unsupported, no_fp8_layers_reason, to_fp8_training
from .identity import CellIdentity
from .io import SuiteLock, atomic_write_bytes, atomic_write_json, read_json, state_dict_bytes, tensors_sha256
from .latency import single_image_latency, throughput, timed_passes
from .metrics import classification_metrics, per_class_report
from .models import build_model, count_flops, count_params
from .models.weights import file_sha256, load_pretrained, read_state_dict
from .prepare import Prepared, prepare_data
from .recompute import supports_gradient_checkpointing
from .results import StagePace, at_chance, history_csv, progress_text
from .stage_cache import StageCache
from .suite import Cell, Suite, spec_hash
from .train import CHECKPOINT_EVERY_S, fit, predict

Log = Callable[[str], None]
SCHEMA = 1


@dataclass
class RunOptions:
    results_dir: Path = Path("results")
    cache_dir: Path = field(default_factory=default_cache_dir)
    data_root: Path | None = None
    download: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    log: Log = print
    # Long trainings save their state after an epoch at most this often, under
    # <cache>/checkpoints/, so an interrupted run resumes mid-training (bitwise the same).
    checkpoint_every_s: float = CHECKPOINT_EVERY_S


class Fp8Unsupported(KDBenchError):
    """A model of an fp8 cell has nothing fp8 training can convert."""


class Runner:
    def __init__(self, suite: Suite, opts: RunOptions):
        self.suite = suite
        self.opts = opts
        self.log = opts.log
        self.fit_log = StagePace(self.log)  # trainings' epoch lines, with the time each has left
        self.device = opts.device
        self.device_class = device_class(opts.device)
        self.data_root, self.data_root_from = resolve_data_root(opts.data_root)
        self.pretrained = self._check_pretrained()
        self.ids = CellIdentity(suite, self.device_class, {name: sha for name, (_, sha) in self.pretrained.items()})
        if self.ids.cpu_numerics.get("cpu_denormals") == "kept":
            self.log("[cpu] denormal floats are computed, not flushed (torch's threads started before kdbench could set the flag: "
                     "call kdbench.determinism.flush_denormals() first); CPU training can slow several-fold once weights decay "
                     "towards zero, and these results are keyed 'cpu_denormals: kept'")
        self._prepared: dict[str, Prepared] = {}
        self.stages = StageCache(opts.cache_dir, self.device, self.log)
        self._pretrained_info: dict[str, dict] = {}

    def _check_pretrained(self) -> dict[str, tuple[Path, str]]:
        """model name → (weights file, its sha256), every file read and checked before any training."""
        out = {}
        for name, file in self.suite.spec.pretrained.items():
            path = Path(file).expanduser()
            if not path.is_file():
                raise KDBenchError(f"{self.suite.source}: pretrained.{name}: no such file {path} (paths are absolute or relative to {Path.cwd()})")
            read_state_dict(path)
            out[name] = (path, file_sha256(path))
        return out

    def training_keys(self, cell: Cell) -> list[tuple[str, str, int]]:
        """(key, stage, epochs) of each training the cell runs (``CellIdentity.training_keys``).
        Needs the data: the teacher's key holds its fingerprint."""
        return self.ids.training_keys(cell, self.prepare(cell.dataset))

    # ----------------------------------------------------------------- results

    def result_path(self, cell: Cell) -> Path:
        return self.opts.results_dir / self.suite.name / f"{cell.id}.json"

    def ok_results(self, cells: list[Cell], here: bool = False) -> dict[str, tuple[dict, list[str]]]:
        """cell id → (its finished result, what changed since: see ``CellIdentity.config_changes``), for the
        cells with an ok result file; missing, unreadable, failed and unsupported ones are left out."""
        out = {}
        for cell in cells:
            try:
                r = read_json(self.result_path(cell))
            except (OSError, ValueError):
                continue  # missing or unreadable: a run redoes it
            if r.get("status") == "ok":
                out[cell.id] = (r, self.ids.config_changes(cell, r, here))
        return out

    def finished(self, cell: Cell) -> bool:
        found = self.ok_results([cell], here=True).get(cell.id)
        return found is not None and not found[1]

    # ----------------------------------------------------------------- data

    def prepare(self, name: str) -> Prepared:
        """The dataset ``name`` split and on the device, once per run."""
        if name not in self._prepared:
            self._prepared[name] = prepare_data(name, self.suite, self.data_root, self.opts.download, self.opts.cache_dir, self.device, self.log)
        return self._prepared[name]

    # ----------------------------------------------------------------- teacher

    def teacher(self, cell: Cell, p: Prepared, policy: prec.Policy) -> tuple[torch.nn.Module, dict]:
        spec = self.suite.spec_of(cell)

        def train(model: torch.nn.Module, checkpoint: Path):
            return fit(model, p.train, p.val, spec.teacher, seed=cell.teacher_seed, policy=policy, device=self.device, stage=f"teacher {cell.teacher}", log=self.fit_log,
                       checkpoint=checkpoint, checkpoint_every_s=self.opts.checkpoint_every_s)

        return self._cached_model(self.ids.teacher_key(cell, p), cell.teacher, "teacher", cell.teacher_seed, p, train, spec.teacher.epochs, policy)

    def assistant_chain(self, cell: Cell, p: Prepared, policy: prec.Policy, teacher: torch.nn.Module, tinfo: dict) -> tuple[torch.nn.Module, dict, list[dict]]:
        """TAKD: distil each assistant from the model before it (student recipe, KD loss);
        every stage is cached like a teacher, keyed by the whole chain above it. Returns the
        last assistant, its record, and the records of every stage."""
        spec = self.suite.spec_of(cell)
        prev, prev_info = teacher, tinfo
        stages = []
        for name in cell.assistants:
            key = self.ids.assistant_key(cell, name, prev_info["key"])
            source = prev

            def train(model: torch.nn.Module, checkpoint: Path, source=source, name=name):
                return fit(model, p.train, p.val, spec.student, seed=cell.seed, policy=policy, device=self.device,
                           stage=f"assistant {name}", teacher=source, kd=spec.kd, method="kd", log=self.fit_log,
                           checkpoint=checkpoint, checkpoint_every_s=self.opts.checkpoint_every_s)

            prev, prev_info = self._cached_model(key, name, "assistant", cell.seed, p, train, spec.student.epochs, policy)
            test_top1 = classification_metrics(predict(prev, p.test, 512, policy, self.device), p.test.y.cpu(), p.data.num_classes, ("top1",))["top1"]
            stages.append({"model": name, "cache_key": key, "weights_sha256": prev_info["weights_sha256"], "from_cache": prev_info["cached"], "test_top1": test_top1,
                           "history": prev_info["history"]})
        return prev, prev_info, stages

    def build(self, name: str, p: Prepared, policy: prec.Policy) -> torch.nn.Module:
        """A fresh model for the dataset; at fp8 with its eligible Linear layers in fp8."""
        model = build_model(name, p.data.channels, p.data.num_classes, p.image_size)
        if name in self.pretrained:
            info = load_pretrained(model, name, self.pretrained[name][0])
            if info["sha256"] != self.pretrained[name][1]:
                raise KDBenchError(f"{info['file']} changed while the suite ran (sha256 {info['sha256'][:12]}… ≠ {self.pretrained[name][1][:12]}…)")
            self._pretrained_info[name] = info
            self.log(f"  {name}: starting from {info['file']} ({info['loaded']} tensors; left at init: {', '.join(info['left_at_init']) or 'none'})")
        if policy.name == "fp8":
            model, swapped = to_fp8_training(model)
            if not swapped:
                raise Fp8Unsupported(no_fp8_layers_reason(name, model))
        return model.to(self.device)

    def checkpoint_path(self, key: str) -> Path:
        """Where the training keyed ``key`` (a cache key or a cell's config hash) saves its state."""
        return self.opts.cache_dir / "checkpoints" / f"{key}.pt"

    def _cached_model(self, key: str, name: str, role: str, seed: int, p: Prepared, train, epochs: int, policy: prec.Policy) -> tuple[torch.nn.Module, dict]:
        def build() -> torch.nn.Module:
            configure_determinism(seed)  # the same initial weights whether or not a damaged cache was tried first
            return self.build(name, p, policy)

        return self.stages.model(key, name, role, build, lambda model: train(model, self.checkpoint_path(key)), epochs)

    def teacher_train_logits(self, model: torch.nn.Module, info: dict, p: Prepared, policy: prec.Policy, flip: bool = False) -> torch.Tensor:
        return self.stages.train_logits(model, info, p.train, p.split.fingerprint, policy, flip)

    @staticmethod
    def epoch_metrics(p: Prepared, spec):
        """The suite's metrics on the validation split after every epoch."""
        metrics, y = Runner.train_metrics(p, spec), p.val.y.cpu()
        return lambda logits: metrics(logits, y)

    @staticmethod
    def train_metrics(p: Prepared, spec):
        """The suite's per-epoch metrics of given logits and labels: the training pass's
        (train_metrics_each_epoch), and the validation split's (epoch_metrics)."""
        return lambda logits, labels: classification_metrics(logits, labels, p.data.num_classes, history_metric_names(spec))

    def test_metrics(self, p: Prepared, spec, policy: prec.Policy):
        """The suite's metrics on the test split for a model (student.test_each_epoch)."""
        y = p.test.y.cpu()
        return lambda model: classification_metrics(predict(model, p.test, 512, policy, self.device), y, p.data.num_classes,
                                                    history_metric_names(spec))

    # ----------------------------------------------------------------- cells

    def check_runnable(self, cells: list[Cell]) -> None:
        """Everything that can be known before training: precisions on this device, gradient
        checkpointing where a recipe asks for it, data."""
        for c in cells:
            prec.get_policy(c.precision, self.device)
        self.check_gradient_checkpointing(cells)
        for name in dict.fromkeys(c.dataset for c in cells):
            self.prepare(name)

    def check_gradient_checkpointing(self, cells: list[Cell]) -> None:
        """A recipe's grad_checkpointing needs models that have it, and no fp8 training (untested)."""
        asked: set[tuple[str, str]] = set()  # (model, role)
        for c in cells:
            for role, names in (("teacher", (c.teacher,)), ("student", (*c.assistants, c.student))):
                if getattr(self.suite.spec_of(c), role).grad_checkpointing:
                    if c.precision == "fp8":
                        raise SuiteError(self.suite.source, f"{role}.grad_checkpointing", "is not tested with fp8 training (its scaled "
                                         "matmuls would be recomputed): leave it off, or leave the fp8 cells out (--cells)")
                    asked.update((name, role) for name in names)
        for name, role in sorted(asked):
            with torch.device("meta"):  # the architecture only: no memory, no initialisation cost
                model = build_model(name, 3, 10, 32)
            if not supports_gradient_checkpointing(model):
                raise SuiteError(self.suite.source, f"{role}.grad_checkpointing", f"{name} has no gradient checkpointing "
                                 f"(timm models, vit_* included, have it): leave it off, or train only timm models by the {role} recipe")

    def run(self, cells: list[Cell]) -> list[dict]:
        self.check_runnable(cells)
        out_dir = self.opts.results_dir / self.suite.name
        results = []
        with SuiteLock(out_dir):
            # Temporary files of a run that was killed mid-write: never results, safe to drop.
            for stale in out_dir.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
            todo = [c for c in cells if not self.finished(c)]
            self.log(f"[suite] {self.suite.name}: {len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run on {self.device_class}")
            self.log_stale(todo)
            slow = slow_bf16_warning([c.precision for c in todo], self.device)
            if slow:
                self.log(slow)
            run_start, ran = time.perf_counter(), 0
            for i, cell in enumerate(cells, 1):
                if cell not in todo:
                    results.append(read_json(self.result_path(cell)))
                    continue
                self.log(f"[{i}/{len(cells)}] {cell.id}")
                t0 = time.perf_counter()
                res = self.run_cell(cell)
                if res["status"] == "ok":
                    # Per-epoch history as CSV and the student's weights beside the result
                    # (written before it: a result file means its companions are complete).
                    atomic_write_bytes(self.result_path(cell).with_suffix(".history.csv"), history_csv(res["student"]["history"]).encode())
                    atomic_write_bytes(self.result_path(cell).with_suffix(".pt"), state_dict_bytes(self._last_student_state))
                atomic_write_json(self.result_path(cell), res)
                results.append(res)
                if res["status"] == "ok":
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in res["metrics"].items() if k.startswith("test_"))
                    self.log(f"  done in {time.perf_counter() - t0:.1f}s: {shown}")
                    for chance in at_chance(res):
                        self.log(f"  WARNING: learned nothing: {chance}; the per-epoch history "
                                 f"({self.result_path(cell).with_suffix('.history.csv')}) shows from which epoch")
                else:
                    self.log(f"  {res['status'].upper()}: {res['failure']['reason']}")
                ran += 1
                if ran < len(todo):
                    elapsed = time.perf_counter() - run_start
                    rest = todo[todo.index(cell) + 1:]
                    left, trainings = self.time_left(rest, elapsed, ran) or (None, 0)
                    self.log(f"  [{ran}/{len(todo)} run] {progress_text(elapsed, ran, len(todo), left, trainings)}")
        return results

    def time_left(self, cells: list[Cell], elapsed: float = 0.0, ran: int = 0) -> tuple[float, int] | None:
        """(seconds, trainings): the epochs of the trainings ``cells`` still need, at the pace this
        run has seen. Each training once (a teacher its students share counts once, a cached one
        not at all), at its stage's median epoch (as its epoch lines show); a stage not seen yet
        (the first KD student, say) at the median of the stages seen. Every epoch of each: early
        stopping makes it shorter. Given the run's ``elapsed`` seconds over the ``ran`` cells so
        far, each of ``cells`` also adds the mean time a cell spent outside its epochs
        (evaluation, decoding, caches). None before any epoch."""
        paces = self.fit_log.epoch_seconds()
        if not paces:
            return None
        unseen = median(paces.values())
        left, counted = 0.0, set()
        for c in cells:
            for key, stage, epochs in self.training_keys(c):
                if key in counted or (not stage.startswith("student") and self.stages.has_model(key)):
                    continue
                counted.add(key)
                left += epochs * paces.get(stage, unseen)
        if ran:
            left += max(elapsed - self.fit_log.epochs_total_s, 0.0) / ran * len(cells)
        return left, len(counted)

    def log_stale(self, todo: list[Cell]) -> None:
        """Say why finished results run again (no surprise re-training after a code change)."""
        redone = self.ok_results(todo, here=True)
        changed: dict[str, int] = {}
        for _, parts in redone.values():
            for part in parts:
                changed[part] = changed.get(part, 0) + 1
        if redone:
            what = ", ".join(f"{k} ×{v}" for k, v in sorted(changed.items()))
            self.log(f"[suite] {len(redone)} of them finished before with another configuration and run again (changed since: {what})")

    def run_cell(self, cell: Cell) -> dict:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        p = self.prepare(cell.dataset)
        policy = prec.get_policy(cell.precision, self.device)
        prec.apply_global_flags(policy)
        config = self.ids.cell_config(cell)
        spec = self.suite.spec_of(cell)
        stat = "last" if spec.student.select == "last" else "bestval"
        base = {
            "schema": SCHEMA, "suite": self.suite.name, "suite_file": self.suite.source, "cell_id": cell.id,
            "cell": config["cell"], "config_hash": spec_hash(config), "config": config,
            "suite_spec": dataclasses.asdict(spec),
            # code_raw (the raw bytes, comments included) lets `kdbench diff` compare this result
            # with ones made before comments were left out of "code".
            # code_files: the files' own fingerprint, where "code" is an older one verified to
            # train the same (kdbench.code_lineage).
            "fingerprints": {"dataset": p.data.fingerprint, "split": p.split.fingerprint, "code": self.ids.code_of(cell),
                             "code_raw": self.ids.raw_code_of(cell), "code_files": self.ids.files_code_of(cell)},
            "data": {"name": p.data.name, "location": p.data.location, "root_chosen_by": self.data_root_from, "notes": p.data.notes,
                     "skipped_files": len(p.data.skipped_files), "skipped_examples": p.data.skipped_files[:10],
                     "n_train": len(p.train), "n_val": len(p.val), "n_test": len(p.test)},
            "statistic": {"last": "weights of the last epoch, evaluated on test", "bestval": "weights of the epoch best on validation, evaluated on test"}[stat],
            "environment": environment(self.device), "started_at": started,
        }
        if cell.precision == "fp8" and (why := fp8_training_unsupported(self.device)):
            return dict(base, status="unsupported", failure={"reason": why, "stage": "", "epoch": None, "step": None})
        try:
            teacher, tinfo = self.teacher(cell, p, policy)
            teacher_test = predict(teacher, p.test, 512, policy, self.device)
            source, sinfo = teacher, tinfo  # the model the student learns from
            chain_info: list[dict] = []
            if cell.method == "takd":
                source, sinfo, chain_info = self.assistant_chain(cell, p, policy, teacher, tinfo)
            configure_determinism(cell.seed)
            student = self.build(cell.student, p, policy)
            self.log(f"  student {cell.student} ({cell.method}): training ({spec.student.epochs} epochs)")
            distil = cell.method != "none"
            cached_logits = None
            if distil and spec.student.augment in ((), ("flip",)):
                # No augmentation, or flip only: the teacher sees one of at most two versions
                # of each image, so its logits are computed once per teacher (and version) and
                # reused by all its students instead of a teacher forward every step.
                cached_logits = self.teacher_train_logits(source, sinfo, p, policy)
                if spec.student.augment:
                    cached_logits = (cached_logits, self.teacher_train_logits(source, sinfo, p, policy, flip=True))
            fr = fit(student, p.train, p.val, spec.student, seed=cell.seed, policy=policy, device=self.device,
                     stage=f"student {cell.student} [{cell.method}]", teacher=source if distil else None, kd=spec.kd if distil else None,
                     method="dkd" if cell.method == "dkd" else "kd",
                     teacher_logits=cached_logits, epoch_metrics=self.epoch_metrics(p, spec),
                     test_metrics=self.test_metrics(p, spec, policy), train_metrics=self.train_metrics(p, spec), log=self.fit_log,
                     checkpoint=self.checkpoint_path(self.ids.student_key(cell)), checkpoint_every_s=self.opts.checkpoint_every_s)
            logits, test_pass_s = timed_passes(lambda: predict(student, p.test, 512, policy, self.device), self.device)
            test_speed = throughput(len(p.test), test_pass_s)
            latency = single_image_latency(student, p.test, policy, self.device)
            fp8_eval = None
            if policy.name != "fp8":  # an fp8 cell is evaluated in fp8 already
                fp8_logits = predict(fp8_simulated(student), p.test, 512, prec.POLICIES["fp32"], self.device)
                fp8_eval = {"test_top1": (fp8_logits.argmax(1) == p.test.y.cpu()).float().mean().item(),
                            "agreement_with_cell": (fp8_logits.argmax(1) == logits.argmax(1)).float().mean().item(),
                            "method": SIMULATION}
        except Fp8Unsupported as e:
            return dict(base, status="unsupported", failure={"reason": str(e), "stage": "", "epoch": None, "step": None})
        except TrainingFault as e:
            return dict(base, status="failed", failure={"reason": str(e), "stage": e.stage, "epoch": e.epoch, "step": e.step})
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            reason = f"out of GPU memory in cell {cell.id} (batch sizes: teacher {spec.teacher.batch_size}, student {spec.student.batch_size}); lower batch_size"
            return dict(base, status="failed", failure={"reason": reason, "stage": "", "epoch": None, "step": None})
        y = p.test.y.cpu()
        metrics = {f"test_{k}_{stat}": v for k, v in classification_metrics(logits, y, p.data.num_classes, spec.metrics, teacher_test).items()}
        t_stat = "last" if spec.teacher.select == "last" else "bestval"
        metrics[f"teacher_test_top1_{t_stat}"] = classification_metrics(teacher_test, y, p.data.num_classes, ("top1",))["top1"]
        state = {k: v.detach().cpu() for k, v in student.state_dict().items()}
        self._last_student_state = state
        return dict(
            base, status="ok", metrics=metrics, report=per_class_report(logits, y, p.data.classes),
            params={"student": count_params(student), "teacher": count_params(teacher)},
            cost={"student_flops_per_image": count_flops(student, p.data.channels, p.image_size),
                  "teacher_flops_per_image": count_flops(teacher, p.data.channels, p.image_size),
                  "student_test_images_per_s": test_speed["images_per_s"],
                  "student_test_images_per_s_spread": test_speed["spread"], "student_test_passes": test_speed["passes"],
                  "student_latency_ms": latency,
                  "note": "images/s: the whole test split at batch 512 in the cell's precision, host-timed, at the median of the "
                          "passes, with their spread (1.4826 x MAD / median of the pass times; one pass in results without it); "
                          "latency: one test image at batch 1, median, p90 and spread (1.4826 x MAD / median) of the timed passes after warm-up"},
            fp8_eval=fp8_eval,
            pretrained={n: self._pretrained_info[n] for n in (cell.teacher, *cell.assistants, cell.student) if n in self._pretrained_info},
            normalisation={"mean": p.train.mean.flatten().tolist(), "std": p.train.std.flatten().tolist(), "classes": p.data.classes,
                           "image_size": p.image_size, "channels": p.data.channels},
            teacher={"logits": {(): "computed once on the training split (no augmentation)",
                                ("flip",): "computed once on the training split, plain and mirrored (flip is the only augmentation)"}.get(
                                    spec.student.augment, "computed every step") if distil else "not used in training",
                     "chain": chain_info, "cache_key": tinfo["key"], "weights_sha256": tinfo["weights_sha256"], "from_cache": tinfo["cached"], "history": tinfo["history"], "selected_epoch": tinfo["selected_epoch"]},
            student={"weights_sha256": tensors_sha256(state), "history": fr.history, "selected_epoch": fr.selected_epoch, "stopped_early": fr.stopped_early, "train_seconds": fr.train_seconds},
            timing={"cell_seconds": round(time.perf_counter() - t0, 3)},
            finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )


def history_metric_names(spec) -> tuple[str, ...]:
    """The suite's metrics that make sense per epoch (those against the teacher are for the
    final test evaluation only)."""
    return tuple(m for m in spec.metrics if m not in ("agreement", "kl_teacher"))
