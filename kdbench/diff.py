"""Did a change move the numbers? Two results folders of the same suite, cell by cell: each
metric before and after, the difference, and whether it stays within the seed-to-seed
tolerance the golden file records for that cell (measured, not guessed), plus whatever
differs in how the two were produced (torch, GPU, code, data); and did it move speed: the
timings each cell recorded, side by side as speed-ups."""

from __future__ import annotations

import math
import statistics

from tabulate import tabulate

from .golden import seedless
from .spread import relative_spread

# What a result's provenance can differ in, and where it sits in the result file.
_PROVENANCE = {
    "torch": ("environment", "torch"), "CUDA": ("environment", "cuda"), "cuDNN": ("environment", "cudnn"),
    "GPU": ("environment", "gpu"), "device class": ("environment", "device_class"), "git revision": ("environment", "git_revision"),
    # On a CPU the processor model and thread count decide the rounding (AVX2 and AVX-512
    # kernels differ), so the same code and seed give other weights on another model.
    "CPU": ("environment", "cpu_model"), "CPU kernels": ("environment", "cpu_capability"), "threads": ("environment", "torch_threads"),
    "CPU denormals": ("config", "cpu_denormals"),  # flushed or kept: see determinism.flush_denormals
    "training code": ("fingerprints", "code"), "data": ("fingerprints", "dataset"), "split": ("fingerprints", "split"),
}


def _get(res: dict, path: tuple[str, ...]):
    """The value at (section, key): with several keys, the first the section holds (a later key
    is the fallback for results written before the first existed)."""
    section = res.get(path[0], {})
    return next((section[k] for k in path[1:] if k in section), None)


def _shown(v) -> str:
    """A provenance value for a one-line comparison: hashes cut to 16 characters, names whole."""
    if v is None:
        return "not recorded"
    v = str(v)
    head, dirty = (v[:-6], "-dirty") if v.endswith("-dirty") else (v, "")
    return head[:16] + dirty if len(head) >= 40 and all(c in "0123456789abcdef" for c in head) else v


def _code_fingerprints(a: dict[str, dict], b: dict[str, dict]) -> tuple[str, tuple[str, ...]]:
    """Which code fingerprint compares like with like. Results made before 2026-11-26 hold only
    the raw-bytes one (under "code"); later ones hold "code" without comments and "code_raw".
    Where both folders are new-style, "code" (a comment edit is no change); otherwise the raw
    bytes of every result, so a comment edit shows, but the same code never shows as a change."""
    everything = [*a.values(), *b.values()]
    if all("code_raw" in r.get("fingerprints", {}) for r in everything):
        return "training code", ("fingerprints", "code")
    return "training code (raw bytes)", ("fingerprints", "code_raw", "code")


def provenance_changes(a: dict[str, dict], b: dict[str, dict], fields: tuple[str, ...] | None = None) -> list[str]:
    """'torch: 2.11.0 → 2.14.1' lines for every provenance field (or those of ``fields``) whose values differ."""
    rows = [_code_fingerprints(a, b) if label == "training code" else (label, path) for label, path in _PROVENANCE.items()
            if fields is None or label in fields]
    lines = []
    for label, path in rows:
        va = sorted({_shown(_get(r, path)) for r in a.values()})
        vb = sorted({_shown(_get(r, path)) for r in b.values()})
        if va != vb:
            lines.append(f"{label}: {', '.join(va)} → {', '.join(vb)}")
    return lines


# What "did it move?" compares by default: the student's test top-1, and the teacher's, since a
# moved teacher moves every student distilled from it.
TOP1_METRICS = ("test_top1", "teacher_test_top1")


def diff_results(a: dict[str, dict], b: dict[str, dict], golden: dict | None, metric_prefix: str | tuple[str, ...] = TOP1_METRICS,
                 names: tuple[str, str] = ("A", "B")) -> tuple[str, list[str]]:
    """A Markdown table over the cells both folders finished, and the cells whose metric (the
    metrics whose names start with ``metric_prefix``, or any of several) moved beyond its golden
    tolerance; ``names`` head the two folders' columns."""
    rows, moved = [], []
    tolerances = (golden or {}).get("cells", {})
    # A golden file pins each cell at one seed, but its tolerance is the cell's seed-to-seed
    # spread, which holds at every seed: the cell's other seeds are judged by it too.
    by_config = {seedless(cid): cell for cid, cell in tolerances.items()}
    teachers_shown = set()
    for cid in sorted(set(a) & set(b)):
        ra, rb = a[cid], b[cid]
        if ra["status"] != "ok" or rb["status"] != "ok":
            rows.append([cid, "", ra["status"], rb["status"], "", "", ""])
            continue
        for name in sorted(k for k in ra["metrics"] if k.startswith(metric_prefix) and k in rb["metrics"]):
            # A teacher metric belongs to the teacher's weights, which every cell of that
            # teacher shares: judged by those, and shown once per pair of teachers.
            model = "teacher" if name.startswith("teacher_") else "student"
            pair = (ra[model]["weights_sha256"], rb[model]["weights_sha256"])
            if model == "teacher":
                if (pair, name) in teachers_shown:
                    continue
                teachers_shown.add((pair, name))
            same_weights = pair[0] == pair[1]
            va, vb = ra["metrics"][name], rb["metrics"][name]
            tol = tolerances.get(cid, by_config.get(seedless(cid), {})).get("metrics", {}).get(name, {}).get("tolerance")
            if same_weights:
                verdict = "same weights (bitwise)"
            elif tol is None:
                verdict = "no golden tolerance"
            elif abs(vb - va) <= tol:
                verdict = "within tolerance"
            else:
                verdict = "MOVED"
                moved.append(f"{cid}: {name} {100 * va:.2f} → {100 * vb:.2f} % ({100 * (vb - va):+.2f} pp; tolerance ±{100 * tol:.2f})")
            rows.append([cid, name, f"{100 * va:.2f}", f"{100 * vb:.2f}", f"{100 * (vb - va):+.2f}", f"±{100 * tol:.2f}" if tol is not None else "—", verdict])
    na, nb = names
    table = tabulate(rows, ["cell", "metric", f"{na} %", f"{nb} %", f"{nb} − {na} (pp)", "golden tolerance (pp)", "verdict"],
                     tablefmt="github", disable_numparse=True)
    return table, moved


# Did it move speed? The timings each cell recorded while it ran, compared cell by cell. These
# are one run's figures: the noise they hold is the spread of a training's epoch times and of
# the timed batch-1 passes, so the table states ratios, says whether an epoch-time or latency
# change exceeds that spread, and never fails the diff (the benchmarks, `nox -s bench`, judge
# speed against repeated runs).
_HARDWARE = ("GPU", "CPU", "CPU kernels", "threads", "device class")


EPOCH_SECONDS = "train s / epoch (median)"
LATENCY = "latency ms (batch 1, median)"


def _epoch_seconds(res: dict, model: str) -> list[float]:
    return [t for t in (row.get("epoch_seconds") for row in res.get(model, {}).get("history", [])) if t]


def epoch_spread(res: dict, model: str = "student") -> float | None:
    """How much one training's epochs varied in time, relative to their median
    (``spread.relative_spread``); None below 3 epochs."""
    return relative_spread(_epoch_seconds(res, model))


def latency_spread(res: dict) -> float | None:
    """How much the student's timed batch-1 passes varied (results from 2026-11-27 on record it)."""
    return res.get("cost", {}).get("student_latency_ms", {}).get("batch1_spread")


def split_pass_spread(res: dict) -> float | None:
    """How much the student's timed passes over the test split varied (results from the
    afternoon of 2026-11-27 on time several; older ones one)."""
    return res.get("cost", {}).get("student_test_images_per_s_spread")


def _against_spread(speedup: float, spread_a: float | None, spread_b: float | None, what: str = "epoch") -> str:
    """Whether a change of a median (epoch time, test-split pass, latency) exceeds 3 × the two
    runs' own spread of the timings it is the median of (combined; on a log scale, where a 2×
    and a 0.5× are the same distance). The timings' spread, not the median's, so "beyond" is
    said only of a clear move."""
    plural = {"epoch": "epochs", "pass": "passes"}[what]
    if spread_a is None or spread_b is None:
        return f"too few {plural} to say" if what == "epoch" else f"{what} spread not recorded in both"
    band = 3 * math.hypot(spread_a, spread_b)
    shown = f"{plural} vary ±{100 * spread_a:.0f} % and ±{100 * spread_b:.0f} %"
    return f"{'beyond' if abs(math.log(speedup)) > band else 'within'} the {what} spread ({shown})"


def _judged(measure: str, speedup: float, ra: dict, rb: dict, model: str) -> str:
    if measure == EPOCH_SECONDS:
        return _against_spread(speedup, epoch_spread(ra, model), epoch_spread(rb, model))
    if measure == LATENCY:
        return _against_spread(speedup, latency_spread(ra), latency_spread(rb), "pass")
    return _against_spread(speedup, split_pass_spread(ra), split_pass_spread(rb), "pass")


def speed_figures(res: dict, model: str = "student") -> dict[str, float]:
    """A result's own timings of one model: median seconds per training epoch (the median, so
    a first epoch's warm-up or one disturbed epoch does not decide it) and, for the student,
    test-set images/s and batch-1 latency. Figures the result does not hold are left out."""
    out: dict[str, float] = {}
    epochs = _epoch_seconds(res, model)
    if epochs:
        out[EPOCH_SECONDS] = statistics.median(epochs)
    if model == "student":
        cost = res.get("cost", {})
        if cost.get("student_test_images_per_s"):
            out["test images / s"] = cost["student_test_images_per_s"]
        if cost.get("student_latency_ms", {}).get("batch1_median_ms"):
            out[LATENCY] = cost["student_latency_ms"]["batch1_median_ms"]
    return out


def _figure(v: float) -> str:
    """4 significant digits, thousands written out (12,219 images/s, not 1.222e+04)."""
    return f"{v:,.0f}" if v >= 1000 else f"{v:.4g}"


def _times(s: float) -> str:
    """A speed-up: two decimals, and three significant digits below 0.1× (a CPU against a GPU)."""
    return f"{s:.2f}×" if s >= 0.1 else f"{s:.3g}×"


def _speedup(measure: str, va: float, vb: float) -> float:
    """How many times faster B is than A: throughput rises, times fall."""
    return vb / va if measure == "test images / s" else va / vb


def hardware_changes(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """The provenance lines about the machine: where there are any, a speed ratio compares the
    machines, not only the code."""
    return provenance_changes(a, b, _HARDWARE)


def diff_speed(a: dict[str, dict], b: dict[str, dict], names: tuple[str, str] = ("A", "B")) -> tuple[str, list[str]]:
    """A Markdown table of each shared cell's timings before and after and B's speed-up over A
    (> 1: faster), each teacher once; and a summary line per measure: the geometric mean of the
    speed-ups and their range."""
    rows, ratios = [], {}
    teachers_shown = set()
    for cid in sorted(set(a) & set(b)):
        ra, rb = a[cid], b[cid]
        if ra["status"] != "ok" or rb["status"] != "ok":
            continue
        for model in ("teacher", "student"):
            if model == "teacher":
                pair = (ra.get("teacher", {}).get("weights_sha256"), rb.get("teacher", {}).get("weights_sha256"))
                if pair in teachers_shown:
                    continue
                teachers_shown.add(pair)
            fa, fb = speed_figures(ra, model), speed_figures(rb, model)
            if model == "teacher" and fa == fb:
                continue  # one cached teacher's one training, recorded in both: nothing was re-measured
            for measure in (m for m in fa if m in fb):
                s = _speedup(measure, fa[measure], fb[measure])
                ratios.setdefault(f"{model} {measure}", []).append(s)
                rows.append([cid, model, measure, _figure(fa[measure]), _figure(fb[measure]), _times(s), _judged(measure, s, ra, rb, model)])
    na, nb = names
    table = tabulate(rows, ["cell", "model", "measure", na, nb, f"{nb} speed-up over {na}", "against the run's own noise"],
                     tablefmt="github", disable_numparse=True)
    summary = []
    for what, values in ratios.items():
        geomean = 1.0
        for v in values:
            geomean *= v ** (1 / len(values))
        summary.append(f"{what}: {_times(geomean)} (geometric mean of {len(values)}; {_times(min(values))} to {_times(max(values))})"
                       if len(values) > 1 else f"{what}: {_times(geomean)} (one cell)")
    return table, summary


def speed_section(a: dict[str, dict], b: dict[str, dict], intro: str, names: tuple[str, str] = ("A", "B")) -> list[str]:
    """``intro``, the speed table and a line per measure, as Markdown lines; [] where no shared
    cell holds timings."""
    table, summary = diff_speed(a, b, names)
    return [intro, "", table, "", *(f"- {line}" for line in summary)] if summary else []
