"""The paragraphs a suite's page adds under its main table where the results call for a
warning: results made with other settings or code (stale), trainings that learned nothing,
teachers below their students, and KD gains whose two cells ran on different machines."""

from __future__ import annotations

from .report_rows import ACROSS_MARK, result_rows
from .results import at_chance


def stale_note(stale: dict[str, list[str]], total: int) -> str:
    """One paragraph: how many results predate the suite file or training code now, and what changed."""
    parts: dict[str, int] = {}
    for changed in stale.values():
        for p in changed:
            parts[p] = parts.get(p, 0) + 1
    what = ", ".join(f"{p} ({n})" for p, n in sorted(parts.items()))
    return (f"**{len(stale)} of these {total} results were made with other settings or training code than the suite and code "
            f"now** (changed: {what}); a re-run would redo them, and `kdbench list SUITE --results FOLDER` names them. "
            "Their figures are what that code measured.")


def at_chance_note(results: dict[str, dict]) -> str | None:
    """One paragraph naming the finished cells whose teacher or student learned nothing (test
    top-1 no better than always answering the most common test class): their KD gains and
    golden values describe a failed training, not the recipe."""
    found = {cid: chance for cid, r in sorted(results.items()) for chance in at_chance(r)}
    if not found:
        return None
    return (f"**Learned nothing** in {len(found)} finished cell(s), a training that failed without a non-finite loss "
            "(see each cell's history.csv for where): " + "; ".join(f"`{cid}`: {text}" for cid, text in found.items()) + ".")


def weaker_teacher_note(results: dict[str, dict]) -> str | None:
    """One paragraph naming the distilled cells (kd, dkd) whose teacher scores below the same
    student trained alone (same seed): there KD pulls the student toward the teacher's errors,
    and a negative KD gain says more about the teacher than about the method. It counts those
    that gained all the same."""
    rows = [r for r in result_rows(results, None) if r["status"] == "ok" and r["method"] in ("kd", "dkd")
            and "gain" in r and r.get("teacher_top1") is not None]
    weaker = [r for r in rows if r["teacher_top1"] < r["top1"] - r["gain"]]
    if not weaker:
        return None
    groups: dict[tuple, list[dict]] = {}
    for r in weaker:
        groups.setdefault((r["dataset"], r["teacher"], r["student"], r["method"], r["precision"], r["variant"]), []).append(r)
    parts = []
    for (dataset, teacher, student, method, precision, variant), rs in sorted(groups.items()):
        columns = zip(*((r["teacher_top1"], r["top1"] - r["gain"], r["gain"]) for r in rs), strict=True)
        teacher_top1, alone, gain = (100 * sum(c) / len(rs) for c in columns)
        seeds = ", ".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
        parts.append(f"{student} [{method}] from {teacher} on {dataset}, {precision}{', ' + variant if variant else ''} "
                     f"(seed{'s' if len(rs) > 1 else ''} {seeds}{', means' if len(rs) > 1 else ''}): teacher {teacher_top1:.2f} %, "
                     f"student alone {alone:.2f} %, KD gain {gain:+.2f} pp")
    # A weaker teacher that still helps is no artefact: its soft targets act as learned label
    # smoothing (Yuan et al., 2020), so the note says such gains are not suspect.
    gained = sum(r["gain"] > 0 for r in weaker)
    positive = (f"; a positive one ({gained} of these {len(weaker)}) needs no teacher that scores higher and fits the "
                "reading of KD as learned label smoothing (Yuan et al., 2020)") if gained else ""
    return (f"**Teacher below the student alone** in {len(weaker)} of {len(rows)} distilled cells (test top-1): distillation pulls "
            f"such a student toward the teacher's errors, so a negative KD gain there speaks of the teacher more than of the method{positive}. "
            + "; ".join(parts) + ".")


def across_hardware_note(results: dict[str, dict]) -> str | None:
    """One paragraph naming the KD gains (marked †) whose distilled cell and student-alone cell
    ran on different hardware. The same code, seed and configuration train other weights on other
    CPU kernels or GPUs (their shared teacher, one cache key, can score differently on each), so
    such a gain mixes the machine with the method."""
    rows = [r for r in result_rows(results, None) if r["status"] == "ok" and "gain" in r]
    across = [r for r in rows if "alone" in r]
    if not across:
        return None

    def teacher(top1: float | None) -> str:
        return f", teacher {100 * top1:.2f} %" if top1 is not None else ""

    parts = [f"{r['student']} [{r['method']}] from {r['teacher']} on {r['dataset']}, {r['precision']}, seed {r['seed']}"
             f"{', ' + r['variant'] if r['variant'] else ''}: alone on {r['alone']['hardware']}{teacher(r['alone']['teacher_top1'])}; "
             f"distilled on {r['hardware']}{teacher(r['teacher_top1'])}" for r in across]
    return (f"{ACROSS_MARK.strip()} **KD gain across machines** in {len(across)} of {len(rows)} pairs: the distilled student and the "
            "student alone ran on different hardware, where the same code, seed and configuration train different weights (the "
            "teacher too, though its cache key is the same), so such a gain mixes the machine with the method; run both on one "
            "machine to compare like with like. " + "; ".join(parts) + ".")
