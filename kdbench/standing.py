"""Where a suite stands (``kdbench list --results``): each cell's state in a results folder,
judged as a re-run would judge it, and the suite's trainings saved mid-way under the cache,
with how far they got. Trains nothing and writes no result (reading which checkpoints are the
suite's decodes its data into the cache, once, as a run would)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from .checkpoint import saved_trainings
from .errors import KDBenchError
from .results import duration_text
from .runner import Runner
from .suite import Cell


def cell_lines(runner: Runner, cells: list[Cell]) -> Iterator[tuple[str, str]]:
    """(status, line) per cell: ok (test top-1), stale (what changed: a re-run redoes it),
    failed or unsupported (the reason), not run, or unreadable."""
    for c in cells:
        try:
            r = json.loads(runner.result_path(c).read_text())
            status = r["status"]
            if status == "ok":
                top1 = next(v for k, v in r["metrics"].items() if k.startswith("test_top1_"))
                detail = f"test top-1 {100 * top1:.2f} % on {r['environment']['device_class']}, finished {r.get('finished_at', '?')}"
                changed = runner.ids.config_changes(c, r)
                if changed:
                    # Made with other settings or other training code: a re-run redoes it.
                    status, detail = "stale", f"{detail}; changed since: {', '.join(changed)} (a re-run redoes it)"
            else:
                detail = r["failure"]["reason"]
        except FileNotFoundError:
            status, detail = "not run", ""
        except (OSError, ValueError, KeyError, StopIteration) as e:
            status, detail = "unreadable", f"{type(e).__name__}: {e} (a re-run redoes it)"
        yield status, f"{c.id}  {status}{'  ' + detail if detail else ''}"


def saved_training_lines(runner: Runner, cells: list[Cell]) -> list[str]:
    """The trainings of these cells saved mid-way under the runner's cache (a run stopped before
    they ended): how far each got and, at its own pace so far, how long the rest takes. Which
    checkpoint belongs to which cell is decided by the keys a run would use now (so the data
    must be there); the others are counted: another suite's, or saved under other code or
    settings, which no run resumes from."""
    folder = runner.opts.cache_dir / "checkpoints"
    saved = saved_trainings(folder) if folder.is_dir() else []
    if not saved:
        return []
    try:
        wanted: dict[str, tuple[str, int, list[str]]] = {}  # key → (stage, epochs, cell ids)
        for c in cells:
            for key, stage, epochs in runner.training_keys(c):
                wanted.setdefault(key, (stage, epochs, []))[2].append(c.id)
    except KDBenchError as e:
        return [f"{len(saved)} checkpoint(s) there; which are this suite's needs its data: {e}"]
    lines, others = [], 0
    for s in saved:
        key = s["file"].removesuffix(".pt")
        if "error" in s:
            lines.append(f"{s['file']}: unreadable ({s['error']}); the run that reaches it removes it and trains from the start")
            continue
        if key not in wanted:
            others += 1
            continue
        stage, epochs, ids = wanted[key]
        # The median epoch's pace, where the checkpoint holds epoch times: epochs slowed by other
        # work on the machine (a test run beside a CPU queue: 4x) do not set the estimate.
        done = s["epoch"]
        median_epoch = s.get("median_epoch_seconds")
        pace = median_epoch or s["train_seconds"] / max(done, 1)
        pace_of = " (the median epoch so far)" if median_epoch else ""
        val = f" (val top-1 {100 * s['val_top1']:.2f} %)" if isinstance(s["val_top1"], float) else ""
        saved_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["saved_at"]))
        used_by = ids[0] if len(ids) == 1 else f"{len(ids)} cells"
        lines.append(f"{stage}: epoch {done}/{epochs} done{val}, saved {saved_at} ({duration_text(max(time.time() - s['saved_at'], 0))} ago); "
                     f"at {pace:.0f} s an epoch{pace_of}, at most {duration_text(pace * (epochs - done))} of training left (for {used_by})")
    if others:
        lines.append(f"{others} other checkpoint(s) there belong to no training of this suite as it would run now "
                     "(another suite's, or saved under other code or settings: no run of this suite resumes from them)")
    return lines
