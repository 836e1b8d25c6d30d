"""Where a suite stands (``kdbench list --results``): each cell's state in a results folder,
judged as a re-run would judge it, and the suite's trainings saved mid-way under the cache,
with how far they got. Reads files only; trains and writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from .checkpoint import saved_trainings
from .results import duration_text
from .runner import Runner
from .suite import Cell, Suite, spec_hash


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
                changed = runner.config_changes(c, r)
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


def saved_training_lines(suite: Suite, cells: list[Cell], folder: Path) -> list[str]:
    """This suite's trainings saved mid-way in ``folder`` (a run stopped before they ended): how
    far each got and, at its own pace so far, how long the rest takes. A run of the suite
    resumes them. Checkpoints of other suites sharing the cache are left out."""
    if not folder.is_dir():
        return []
    recipes, models = {}, set()
    for c in cells:
        spec = suite.spec_of(c)
        recipes.update({spec_hash(spec.teacher): spec.teacher, spec_hash(spec.student): spec.student})
        models.update((c.teacher, *c.assistants, c.student))
    lines = []
    for s in saved_trainings(folder):
        if "error" in s:
            lines.append(f"{s['file']}: unreadable ({s['error']}); the run that reaches it removes it and trains from the start")
            continue
        words = s["stage"].split()  # "teacher NAME", "assistant NAME", "student NAME [method]"
        recipe = recipes.get(s["recipe"])
        if recipe is None or len(words) < 2 or words[1] not in models:
            continue
        done, pace = s["epoch"], s["train_seconds"] / max(s["epoch"], 1)
        val = f" (val top-1 {100 * s['val_top1']:.2f} %)" if isinstance(s["val_top1"], float) else ""
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["saved_at"]))
        lines.append(f"{s['stage']}: epoch {done}/{recipe.epochs} done{val}, saved {saved} "
                     f"({duration_text(max(time.time() - s['saved_at'], 0))} ago); at {pace:.0f} s an epoch, "
                     f"at most {duration_text(pace * (recipe.epochs - done))} of training left")
    return lines
