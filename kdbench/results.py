"""A suite's result files read back, the per-epoch history written beside each, and how a
long run reports its pace."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from statistics import median

from .errors import DataError
from .io import read_json
from .suite import Suite


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"


def progress_text(elapsed: float, done: int, total: int, left: float | None = None, trainings: int = 0) -> str:
    """Elapsed time and what is left: ``left`` seconds for ``trainings`` trainings where the
    runner could time them (``Runner.time_left``: each at its stage's epoch pace), else the mean
    pace per cell so far (which errs long: teachers are trained by the first cell that needs
    them, so early cells run slower than later ones)."""
    if left is None:
        return f"{duration_text(elapsed)} elapsed, about {duration_text(elapsed / done * (total - done))} left at this pace"
    what = f"{trainings} training{'s' if trainings != 1 else ''}"
    return f"{duration_text(elapsed)} elapsed, about {duration_text(left)} left ({what} at the epoch pace seen so far, and the cells' evaluation)"


# An end-of-epoch line as train.py writes it. Its format is read here rather than changed
# there: train.py is part of the code fingerprint, and any edit of it re-keys every result.
_EPOCH_LINE = re.compile(r"^\s+(?P<stage>.+?) epoch (?P<epoch>\d+)/(?P<epochs>\d+)  loss .*  (?P<seconds>\d+(?:\.\d+)?)s$")


class StagePace:
    """A log that appends to each end-of-epoch line the time its training has left at the
    median epoch so far ("at most": early stopping may end it sooner). The median, so the
    first epoch's warm-up or a few disturbed epochs do not swing it; a stage's epochs count
    from where this run first saw it, so a resumed training is paced by its own epochs."""

    def __init__(self, log):
        self.log = log
        self._stage: dict[str, tuple[int, list[float]]] = {}  # stage -> (last epoch seen, epoch seconds)
        self.epochs_total_s = 0.0  # every epoch seen, all trainings: the rest of a run's time is not training

    def __call__(self, line: str) -> None:
        m = _EPOCH_LINE.match(line)
        if m:
            epoch, epochs = int(m["epoch"]), int(m["epochs"])
            last, seconds = self._stage.get(m["stage"], (None, []))
            if last != epoch - 1:  # a new training under a name seen before (another cell), or a resume
                seconds = []
            seconds.append(float(m["seconds"]))
            self.epochs_total_s += seconds[-1]
            self._stage[m["stage"]] = (epoch, seconds)
            if epoch < epochs:
                line += f"  (at most {duration_text(median(seconds) * (epochs - epoch))} left)"
        self.log(line)

    def epoch_seconds(self) -> dict[str, float]:
        """stage → its median epoch in seconds, over the last training seen under that name."""
        return {stage: median(seconds) for stage, (_, seconds) in self._stage.items() if seconds}


def at_chance(result: dict) -> list[str]:
    """The models of a finished result whose test top-1 is no better than always answering the
    test split's most common class (plus one test image): trainings that learned nothing, such
    as a collapse whose loss stayed finite (no TrainingFault). Each named with its figure."""
    support = [c["support"] for c in (result.get("report") or {}).get("per_class", [])]
    if result.get("status") != "ok" or not sum(support):
        return []
    n, base = sum(support), max(support) / sum(support)
    out = []
    for who, prefix in (("teacher", "teacher_test_top1_"), ("student", "test_top1_")):
        top1 = next((v for k, v in result["metrics"].items() if k.startswith(prefix)), None)
        if top1 is not None and top1 <= base + 1 / n:
            out.append(f"{who} {100 * top1:.2f} %")
    return [f"{', '.join(out)} against {100 * base:.2f} % for always the most common test class"] if out else []


def history_csv(rows: list[dict]) -> str:
    columns = ["epoch", "train_loss", "train_ce", "train_kd", "train_top1", "val_top1", "lr", "epoch_seconds", "max_memory_mib"]
    columns += [k for k in dict.fromkeys(k for r in rows for k in r) if k not in columns]  # val_<metric> columns
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def load_results(suite: Suite, results_dir: Path) -> dict[str, dict]:
    """Results of this suite's cells that exist, by cell id."""
    out = {}
    for cell in suite.cells():
        path = results_dir / suite.name / f"{cell.id}.json"
        if path.exists():
            try:
                out[cell.id] = read_json(path)
            except (OSError, ValueError) as e:
                raise DataError(f"{path}: unreadable result file ({e})") from None
    return out


def stale_results(suite: Suite, results_dir: Path, results: dict[str, dict]) -> dict[str, list[str]]:
    """cell id → what changed since that finished result was made (settings or training code),
    for the results a re-run would redo."""
    from .runner import Runner, RunOptions  # the runner reads and writes results: imported late

    found = Runner(suite, RunOptions(results_dir=results_dir)).ok_results(suite.cells())
    return {cid: parts for cid, (_, parts) in found.items() if parts and cid in results}
