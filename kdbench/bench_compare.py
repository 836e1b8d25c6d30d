"""Compare a pytest-benchmark run with a saved baseline: each benchmark's median time as a
ratio new / baseline, a regression when it is slower by more than a threshold.

The threshold belongs to the baseline: it is set from the run-to-run noise measured on the
machine that made it (``kdbench bench-noise RUN1 RUN2 …``: the largest median ratio between
repeated runs of the same code), written into ``benchmarks/thresholds.json`` with how it was
measured. Benchmarks of one test function (a family: the KD loss at every shape, the training
step at every precision) share a character — a launch-bound loss of a few hundred µs is far
noisier than a 15 ms training step — so each family also gets its own threshold from its own
noise, and the baseline's single threshold (the largest) applies only to families the noise runs
did not have. How a benchmark launches its work sets its noise more than anything else: on the
H100 (2026-11-26) the eager and compiled KD loss varied by up to 98 % between runs (each call is
Python and a few dozen kernel launches), the same loss replayed from a CUDA graph by at most 9 %.
So a benchmark whose parameters name a launch mode (eager, compiled, graphed) has the mode in its
family: ``test_kd_loss_fwd_bwd[graphed]`` is guarded by its own noise, not the eager loss's.
Comparing runs from different machines is refused: the ratio would measure the machine, not the
change."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from tabulate import tabulate

from .errors import KDBenchError


def _load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        benches = {b["fullname"]: b["stats"]["median"] for b in data["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KDBenchError(f"{path}: not a pytest-benchmark JSON file ({type(e).__name__}: {e})") from None
    if not benches:
        raise KDBenchError(f"{path}: holds no benchmark timings (was it run with --benchmark-disable?)")
    return {"medians": benches, "machine": machine_of(data)}


def machine_of(data: dict) -> str:
    """What the timings depend on: the GPU (or CPU model) and the torch build."""
    mi = data.get("machine_info", {})
    k = mi.get("kdbench", {})
    hw = k.get("gpu") or mi.get("cpu", {}).get("brand_raw") or mi.get("processor") or "unknown"
    return f"{hw} / torch {k.get('torch', '?')}"


LAUNCH_MODES = ("eager", "compiled", "graphed")


def bench_function(name: str) -> str:
    """The test function a benchmark belongs to: its name without the parameters."""
    return name.split("[", 1)[0]


def family(name: str) -> str:
    """The test function, with the launch mode when a parameter names one (see the module doc)."""
    params = name[len(bench_function(name)) + 1:-1].split("-") if "[" in name else []
    mode = next((m for m in LAUNCH_MODES if m in params), None)
    return f"{bench_function(name)}[{mode}]" if mode else bench_function(name)


def family_threshold(name: str, families: dict[str, float], threshold: float) -> float:
    """A benchmark's threshold: its family's; else its test function's (baselines saved before
    families had launch modes); else the baseline's single threshold."""
    return families.get(family(name), families.get(bench_function(name), threshold))


def rounded_threshold(spread: float) -> float:
    """A spread rounded up to the next 5 %, at least 5 %."""
    return max(0.05, math.ceil(spread * 20 - 1e-9) / 20)


def noise(paths: list[Path]) -> dict:
    """Run-to-run spread of repeated runs: for each benchmark present in all of them, the
    largest / smallest median; summarised as the maximum and the 95th percentile, and as the
    maximum per family."""
    runs = [_load(p) for p in paths]
    if len(runs) < 2:
        raise KDBenchError("bench-noise needs at least two runs of the same benchmarks")
    machines = {r["machine"] for r in runs}
    if len(machines) > 1:
        raise KDBenchError(f"the runs come from different machines: {sorted(machines)}")
    common = set.intersection(*(set(r["medians"]) for r in runs))
    by_name = {n: max(r["medians"][n] for r in runs) / min(r["medians"][n] for r in runs) - 1 for n in common}
    spreads = sorted(by_name.values())
    if not spreads:
        raise KDBenchError("the runs share no benchmark")
    p95 = spreads[min(len(spreads) - 1, round(0.95 * (len(spreads) - 1)))]
    families: dict[str, float] = {}
    for n, s in by_name.items():
        families[family(n)] = max(s, families.get(family(n), 0.0))
    return {"machine": runs[0]["machine"], "runs": len(runs), "benchmarks": len(spreads), "max_spread": spreads[-1],
            "p95_spread": p95, "median_spread": statistics.median(spreads), "family_max_spread": dict(sorted(families.items()))}


def compare(baseline: Path, new: Path, threshold: float, families: dict[str, float] | None = None) -> tuple[str, list[str]]:
    """A Markdown table of new / baseline median ratios and the list of regressions; a
    benchmark's threshold is its family's in ``families``, else ``threshold``."""
    base, cur = _load(baseline), _load(new)
    if base["machine"] != cur["machine"]:
        raise KDBenchError(f"{new} was measured on {cur['machine']}, the baseline {baseline} on {base['machine']}: "
                           "compare runs from the same machine (or save a baseline for this one)")
    rows, regressions = [], []
    for name in sorted(set(base["medians"]) | set(cur["medians"])):
        b, c = base["medians"].get(name), cur["medians"].get(name)
        if b is None or c is None:
            rows.append([name, f"{b * 1e6:,.1f}" if b else "—", f"{c * 1e6:,.1f}" if c else "—", "—", "—", "only in " + ("baseline" if c is None else "new run")])
            continue
        ratio = c / b
        t = family_threshold(name, families or {}, threshold)
        verdict = "SLOWER" if ratio > 1 + t else ("faster" if ratio < 1 / (1 + t) else "same")
        if verdict == "SLOWER":
            regressions.append(f"{name}: {ratio:.2f}× the baseline's median ({c * 1e6:,.1f} µs vs {b * 1e6:,.1f} µs; threshold {100 * t:.0f} %)")
        rows.append([name, f"{b * 1e6:,.1f}", f"{c * 1e6:,.1f}", f"{ratio:.3f}", f"{100 * t:.0f}", verdict])
    table = tabulate(rows, ["benchmark", "baseline median µs", "new median µs", "new / baseline", "threshold %", "verdict"],
                     tablefmt="github", disable_numparse=True)
    return table, regressions


def threshold_for(baseline: Path, thresholds_file: Path) -> tuple[float, str, dict[str, float]]:
    """The threshold recorded for a baseline file, its reason, and the thresholds of its
    benchmark families (empty for baselines saved before families were measured)."""
    try:
        entries = json.loads(thresholds_file.read_text())
    except (OSError, ValueError) as e:
        raise KDBenchError(f"{thresholds_file}: cannot read thresholds ({e})") from None
    entry = entries.get(Path(baseline).name)
    if entry is None:
        raise KDBenchError(f"{thresholds_file} has no threshold for {Path(baseline).name}: measure the noise with "
                           "`kdbench bench-noise RUN1.json RUN2.json …` on that machine and record it, or pass --threshold")
    return float(entry["threshold"]), entry["reason"], {k: float(v) for k, v in entry.get("families", {}).items()}


def save_baseline(paths: list[Path], name: str, baseline_dir: Path, command: str = "") -> tuple[Path, float, str]:
    """Make the first of repeated runs a saved baseline ``baseline_dir/NAME.json``, with the
    threshold their noise sets (the largest spread, rounded up to 5 %) and how it was measured
    in ``baseline_dir/thresholds.json``. Refuses to replace an existing baseline."""
    import datetime as dt

    from .io import atomic_write_bytes

    n = noise(paths)
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise KDBenchError(f"a baseline name is letters, digits, '-', '_' or '.', got {name!r}")
    target = baseline_dir / f"{name}.json"
    if target.exists():
        raise KDBenchError(f"{target} exists: a saved baseline is replaced only by hand (delete it first) or saved under another name")
    threshold = rounded_threshold(n["max_spread"])
    families = {f: rounded_threshold(s) for f, s in n["family_max_spread"].items()}
    how = f" (`{command}`)" if command else ""
    reason = (f"run-to-run noise measured on the machine that made the baseline ({n['machine']}): {n['runs']} runs of the same "
              f"code{how} gave a largest/smallest median spread per benchmark over {n['benchmarks']} benchmarks of median "
              f"{100 * n['median_spread']:.1f} %, 95th percentile {100 * n['p95_spread']:.1f} %, max {100 * n['max_spread']:.1f} %; "
              f"threshold = the max, rounded up to 5 %; each benchmark family (test function, and launch mode where a parameter names one) has its own, the largest spread "
              f"among its benchmarks rounded up alike (families). Baseline: {Path(paths[0]).name}, saved {dt.date.today().isoformat()}.")
    thresholds_file = baseline_dir / "thresholds.json"
    entries = json.loads(thresholds_file.read_text()) if thresholds_file.exists() else {}
    entries[target.name] = {"threshold": threshold, "reason": reason, "families": families}
    baseline_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, Path(paths[0]).read_bytes())
    atomic_write_bytes(thresholds_file, (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode())
    return target, threshold, reason
