"""Results → Markdown tables (tabulate)."""

from __future__ import annotations

import statistics
from collections import Counter

from tabulate import tabulate

from .determinism import hardware
from .report_notes import across_hardware_note, at_chance_note, stale_note, weaker_teacher_note
from .report_rows import ACROSS_MARK, result_rows

# Opens the page of a suite with no finished cell on its device class (cli: never overwrite a
# page of results with one).
NO_RESULTS_MARK = "No finished cell of this suite"


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.2f}" if pct else f"{v:,}"


def markdown_table(results: dict[str, dict], golden: dict | None) -> str:
    rows = result_rows(results, golden)
    swept = any(r["variant"] for r in rows)
    headers = ["dataset", "teacher", "student", "method", "precision", "seed", *(["sweep"] if swept else []), "test top-1 %",
               "golden band %", "in band", "KD gain (pp)", "F1 macro %", "agreement %", "teacher top-1 %", "student params", "teacher params"]
    table = []
    for r in rows:
        head = [r["dataset"], r["teacher"], r["student"], r["method"], r["precision"], r["seed"], *([r["variant"]] if swept else [])]
        if r["status"] != "ok":
            table.append(head + [r["status"].upper(), "", "", "", "", "", "", "", r.get("note", "")])
            continue
        gain = r.get("gain")
        gain_s = f"{100 * gain:+.2f}{ACROSS_MARK if 'alone' in r else ''}" if gain is not None else "—"
        table.append(head + [_fmt(r["top1"]), r.get("band", "—"), r.get("in_band", "—"), gain_s,
                             _fmt(r["f1"]), _fmt(r["agreement"]), " → ".join(_fmt(v) for v in (r["teacher_top1"], *r["assistants_top1"])),
                             _fmt(r["params_student"], False), _fmt(r["params_teacher"], False)])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def precision_table(results: dict[str, dict]) -> str | None:
    """Each student at each precision side by side, with the test top-1 delta against the
    same cell at fp32 (None when the suite has one precision)."""
    rows = result_rows(results, None)
    precisions = [p for p in ("fp32", "tf32", "bf16", "fp16", "fp8") if any(r["precision"] == p for r in rows)]
    sim = any(r.get("fp8_sim") is not None for r in rows if r["precision"] == "fp32")
    if len(precisions) + sim < 2:
        return None
    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        key = (r["dataset"], r["teacher"], r["student"], r["method"], r["seed"], r["variant"])
        groups.setdefault(key, {})[r["precision"]] = r
    table = []
    for key, by_p in sorted(groups.items()):
        base = by_p.get("fp32")
        line = [*key[:5], *([key[5]] if any(k[5] for k in groups) else [])]
        for p in precisions:
            r = by_p.get(p)
            if r is None:
                line.append("—")
            elif r["status"] != "ok":
                line.append(r["status"])
            elif p == "fp32" or base is None or base["status"] != "ok":
                line.append(_fmt(r["top1"]))
            else:
                line.append(f"{_fmt(r['top1'])} ({100 * (r['top1'] - base['top1']):+.2f})")
        if sim:
            ok = base is not None and base["status"] == "ok" and base.get("fp8_sim") is not None
            line.append(f"{_fmt(base['fp8_sim'])} ({100 * (base['fp8_sim'] - base['top1']):+.2f})" if ok else "—")
        table.append(line)
    swept = any(k[5] for k in groups)
    headers = ["dataset", "teacher", "student", "method", "seed", *(["sweep"] if swept else []),
               *[f"{p} top-1 %" + ("" if p == "fp32" else " (Δ pp vs fp32)") for p in precisions],
               *(["fp32 weights, fp8 eval (sim) % (Δ pp)"] if sim else [])]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def reported_table(results: dict[str, dict], reported) -> str | None:
    """The system's published figures beside ours: the mean over the matching cells' seeds,
    and the difference where both were measured on the same data."""
    if not reported:
        return None
    ok = [r for r in results.values() if r["status"] == "ok"]
    table = []
    for rep in reported:
        what = (f"{rep.student} [{rep.method}]" + (f" from {rep.teacher}" if rep.teacher else "")) if rep.student else f"teacher {rep.teacher}"
        same = [r for r in ok if (not rep.teacher or r["cell"]["teacher"] == rep.teacher)
                and (not rep.student or (r["cell"]["student"] == rep.student and r["cell"]["method"] == rep.method))]
        here = sorted({r["cell"]["dataset"] for r in same})
        comparable = [r for r in same if r["cell"]["dataset"] == rep.dataset]
        if comparable:
            if not rep.student:  # one value per trained teacher, however many students it taught
                comparable = list({r.get("teacher", {}).get("cache_key") or (r["cell"]["precision"], r["cell"]["seed"], r["cell"].get("variant")): r
                                   for r in comparable}.values())
            key = "teacher_test_top1_" if not rep.student else "test_top1_"
            vals = [next(v for k, v in r["metrics"].items() if k.startswith(key)) for r in comparable]
            ours = 100 * sum(vals) / len(vals)
            ours_s, delta = f"{ours:.2f} (n={len(vals)})", f"{ours - rep.top1:+.2f}"
        elif same:
            ours_s, delta = "not comparable: ours on " + ", ".join(here), "—"
        else:
            ours_s, delta = "not run yet", "—"
        table.append([what, f"{rep.dataset} ({rep.split})", f"{rep.top1:.2f}", ours_s, delta, rep.source])
    return tabulate(table, ["model", "reported on", "reported top-1 %", "ours, test top-1 %", "Δ pp", "source"],
                    tablefmt="github", disable_numparse=True)


# Two-sided 95 % quantiles of Student's t by degrees of freedom (n − 1); 1.96 beyond the table.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(df: int) -> float:
    """The tabulated quantile for ``df`` or, between entries, the next smaller df's (wider)."""
    return T95[max(k for k in T95 if k <= df)] if df <= 30 else 1.96


def mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def ci_half_width(sd: float, n: int) -> float:
    """Half the 95 % confidence interval of a mean of ``n`` values with sample sd ``sd``."""
    return t95(n - 1) * sd / n ** 0.5


def seeds_to_resolve(mean: float, sd: float, most: int = 100) -> int | None:
    """How many seeds a paired gain of this mean and sd needs before its 95 % interval excludes
    0: the smallest n with t(n − 1) · sd / √n < |mean|; None past ``most`` (a gain this close
    to 0 against its spread). A planning figure: mean and sd are themselves estimates from the
    seeds run so far."""
    for n in range(2, most + 1):
        if ci_half_width(sd, n) < abs(mean):
            return n
    return None


# Gains in pp closer than this are one gain (they differ only by float rounding of top-1 values).
SAME_GAIN_PP = 1e-6


def bound_text(pp: float) -> str:
    """A confidence bound in pp: two decimals, more where two would read +0.00 and hide on
    which side of 0 it lies (the table's verdict turns on that side)."""
    digits = 2
    while pp != 0 and round(pp, digits) == 0 and digits < 6:
        digits += 1
    return f"{pp:+.{digits}f}"


def seeds_table(results: dict[str, dict]) -> str | None:
    """Each cell over its seeds (only cells run with ≥ 2): test top-1 mean ± sd and range, and
    the KD gain paired by seed with its 95 % confidence interval — whether distillation moved
    accuracy by more than the seed-to-seed spread."""
    rows = result_rows(results, None)
    groups: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["dataset"], r["teacher"], r["student"], r["method"], r["precision"], r["variant"]), {})[r["seed"]] = r
    table = []
    for key, by_seed in sorted(groups.items()):
        if len(by_seed) < 2:
            continue
        top1 = [100 * r["top1"] for r in by_seed.values()]
        m, sd = mean_sd(top1)
        gains = [100 * r["gain"] for r in by_seed.values() if "gain" in r]
        if len(gains) >= 2:
            gm, gsd = mean_sd(gains)
            across = sum("alone" in r for r in by_seed.values())
            gain_s = f"{gm:+.2f} ± {gsd:.2f} (n={len(gains)}{f', {across}{ACROSS_MARK.strip()} across machines' if across else ''})"
            if gsd < SAME_GAIN_PP:
                # Equal gains on every seed (two seeds on 500 test images can tie to the image)
                # measure no spread at all, not a zero one: an interval of width 0 would claim
                # certainty from coincidence.
                ci, verdict, needed_s = "—", "no spread measured (equal gains)", "—"
            else:
                half = ci_half_width(gsd, len(gains))
                ci = f"[{bound_text(gm - half)}, {bound_text(gm + half)}]"
                verdict = "yes" if gm - half > 0 or gm + half < 0 else "no"
                needed = seeds_to_resolve(gm, gsd)
                needed_s = str(needed) if needed is not None else "over 100"
        else:
            gain_s, ci, verdict, needed_s = "—", "—", "—", "—"
        dataset, teacher, student, method, precision, variant = key
        # A teacher pinned to one seed (recipe teacher.seed) is one training shared by every
        # seed: the spread is then the students' alone, which the reader must know.
        teachers = len({r.get("teacher_key") for r in by_seed.values()})
        seeds_s = str(len(top1)) if teachers == len(top1) else f"{len(top1)} ({teachers} teacher{'s' * (teachers != 1)})"
        table.append([dataset, teacher, student, method, precision, *([variant] if any(k[5] for k in groups) else []),
                      seeds_s, f"{m:.2f} ± {sd:.2f}", f"{min(top1):.2f} – {max(top1):.2f}", gain_s, ci, verdict, needed_s])
    if not table:
        return None
    swept = any(k[5] for k in groups)
    headers = ["dataset", "teacher", "student", "method", "precision", *(["sweep"] if swept else []), "seeds",
               "test top-1 % mean ± sd", "min – max", "KD gain pp mean ± sd", "95 % CI of the gain", "gain beyond seed spread",
               "seeds to exclude 0 at this mean ± sd"]
    out = tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
    if any("teacher" in row[len(headers) - 7] for row in table):
        out += ("\n\nA seed count with its teachers in brackets: fewer teachers than seeds were trained (the recipe's "
                "teacher.seed pins one teacher for every seed), so the spread and the gain's interval are the students' "
                "seed-to-seed variation alone, without the teacher's.")
    return out


def environment_line(results: dict[str, dict]) -> str:
    """The software of the first result, every machine the results ran on (with its count of
    cells where there are several), and every data set they read."""
    any_r = next(iter(results.values()))
    env = any_r["environment"]
    machines = Counter(hardware(r.get("environment", {})) for r in results.values())
    where = "; ".join(f"{m}: {n} cell{'s' * (n != 1)}" for m, n in sorted(machines.items())) if len(machines) > 1 else next(iter(machines))
    data = sorted({f"{r['data']['location'].split('/')[-1]} {r['data']['notes']}".rstrip() for r in results.values()})
    return (f"Environment: torch {env['torch']}, {where}, kdbench {env['kdbench']} ({env.get('git_revision') or 'no git revision'}). "
            f"Data: {' and '.join(data)}")


PER_CLASS_MAX_CELLS = 8  # columns of the per-class table; more cells make it unreadable


def per_class_tables(results: dict[str, dict]) -> list[tuple[dict, str]]:
    """Per data set of the results (each has its own classes): test F1 per class (rows) for
    each cell (columns) of that data set's first seed, precision and sweep value, with the
    class's support; returned with the first cell, which names them. The full per-class
    reports (precision, recall) are in the result files."""
    ok = [r for _, r in sorted(results.items()) if r["status"] == "ok" and "per_class" in r.get("report", {})]
    tables = []
    for dataset in sorted({r["cell"]["dataset"] for r in ok}):
        first = next(r for r in ok if r["cell"]["dataset"] == dataset)["cell"]
        chosen = [r for r in ok if all(r["cell"].get(k, "") == first.get(k, "") for k in ("dataset", "seed", "precision", "variant"))]
        chosen = chosen[:PER_CLASS_MAX_CELLS]
        classes = chosen[0]["report"]["per_class"]
        table = [[c["class"], c["support"], *(f"{100 * r['report']['per_class'][i]['f1']:.1f}" for r in chosen)] for i, c in enumerate(classes)]
        headers = ["class", "test images", *(f"{r['cell']['student']} [{r['cell']['method']}]" for r in chosen)]
        tables.append((first, tabulate(table, headers, tablefmt="github", disable_numparse=True)))
    return tables


def epoch_times(history: list[dict]) -> list[float]:
    return [row["epoch_seconds"] for row in history if row.get("epoch_seconds")]


def median_epoch_text(history: list[dict]) -> str:
    """The median epoch's wall-clock seconds: unlike the whole training's, it stays put when
    something else shared the machine for a few epochs."""
    times = epoch_times(history)
    return f"{statistics.median(times):,.1f}" if times else "—"


def train_seconds_text(student: dict) -> str:
    """The whole training's wall clock, marked ‡ when an epoch took over twice the median
    epoch: the machine was shared then (or the first epoch compiled), so the total overstates
    what the training itself costs."""
    times = epoch_times(student["history"])
    slow = bool(times) and max(times) > 2 * statistics.median(times)
    return f"{student['train_seconds']:,.1f}{' ‡' if slow else ''}"


def training_table(results: dict[str, dict]) -> str | None:
    """Per cell: size, cost and how training ended (S4's run summary)."""
    table = []
    several = len({r["cell"]["dataset"] for r in results.values() if r["status"] == "ok"}) > 1
    swept = any(r["cell"].get("variant") for r in results.values())
    for _, r in sorted(results.items()):
        if r["status"] != "ok":
            continue
        c, st, cost = r["cell"], r["student"], r.get("cost", {})
        flops = cost.get("student_flops_per_image")
        table.append([*([c["dataset"]] if several else []), c["student"], c["method"], c["precision"], c["seed"], *([c.get("variant", "")] if swept else []),
                      f"{r['params']['student']:,}", f"{flops / 1e6:,.1f}" if flops else "—",
                      f"{st['selected_epoch']} / {len(st['history'])}", "yes" if st["stopped_early"] else "no",
                      train_seconds_text(st), median_epoch_text(st["history"]),
                      f"{cost['student_test_images_per_s']:,.0f}" if "student_test_images_per_s" in cost else "—",
                      f"{cost['student_latency_ms']['batch1_median_ms']:.2f}" if "student_latency_ms" in cost else "—"])
    if not table:
        return None
    headers = [*(["dataset"] if several else []), "student", "method", "precision", "seed", *(["sweep"] if swept else []), "params", "MFLOPs / image",
               "epoch kept / run", "stopped early", "train s", "s / epoch (median)", "test images / s", "latency ms (batch 1)"]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def other_devices_section(device_class: str, results: dict[str, dict], elsewhere: dict[str, dict[str, dict]], golden: dict | None) -> list[str]:
    """Page lines comparing the cells finished both here and on another device class
    (``elsewhere``: device class → its results of this suite); [] where none is in both."""
    from .diff import diff_results, provenance_changes, speed_section

    lines = []
    for other, theirs in sorted(elsewhere.items()):
        common = sorted(cid for cid in set(results) & set(theirs) if results[cid]["status"] == theirs[cid]["status"] == "ok")
        if not common:
            continue
        here_c, there_c = {c: results[c] for c in common}, {c: theirs[c] for c in common}
        table, _ = diff_results(here_c, there_c, golden, names=(device_class, other))
        changes = provenance_changes(here_c, there_c)
        lines += [f"### `{device_class}` and `{other}`", "",
                  f"{len(common)} cell(s) finished on both, same suite settings and seed. Other kernels round differently, so "
                  "the weights differ and so can the figures; the golden tolerance (the seed-to-seed spread on "
                  f"`{device_class}`, where measured) says whether the device moved a figure by more than a seed does. "
                  f"`kdbench diff` gives the same comparison for any two results folders.", "",
                  "Differs in: " + ("; ".join(changes) if changes else "nothing recorded") + ".", "", table, ""]
        speed = speed_section(here_c, there_c, f"How fast each ran: the cells' own timings, one run each, as `{other}`'s "
                               f"speed-up over `{device_class}` (on other hardware they compare the machines); the only noise a run "
                               "holds is how much its training's epochs varied (last column).", names=(device_class, other))
        lines += [*speed, ""] if speed else []
    return ["## On other device classes", "", *lines] if lines else []


def suite_page(suite_name: str, description: str, results: dict[str, dict], golden: dict | None, device_class: str,
               figures: dict[str, str] | None = None, reported=(), stale: dict[str, list[str]] | None = None,
               elsewhere: dict[str, dict[str, dict]] | None = None) -> str:
    """The Markdown page of a suite; ``figures`` maps a figure's title to its path relative to the page;
    ``stale``: cell id → what changed since that result was made (see ``CellIdentity.config_changes``);
    ``elsewhere``: device class → results of this suite made there, compared cell by cell."""
    any_r = next(iter(results.values()), None)
    stat = any_r["statistic"] if any_r else ""
    lines = [f"# Suite `{suite_name}` on `{device_class}`", ""]
    if description:
        lines += [description.strip(), ""]
    if not results:
        lines += [f"{NO_RESULTS_MARK} on `{device_class}` in the results folder yet: run `kdbench run` first "
                  "(or pick the device class the results were made on with --device-class).", ""]
        against = reported_table(results, reported)
        return "\n".join(lines + (["## Published figures", "", against, ""] if against else []))
    chained = any((r.get("teacher") or {}).get("chain") for r in results.values() if r["status"] == "ok")
    lines += [
        f"Test metrics: {stat}. KD gain: test top-1 of the distilled student minus the same student trained alone (same seed)."
        + (" Teacher top-1 of a TAKD chain: each model of the chain on the test split, teacher → assistant(s)." if chained else ""),
        f"Golden band: value ± tolerance from `golden/{suite_name}/{device_class}.json`." if golden else "No golden file for this device class yet.",
        "",
        markdown_table(results, golden),
        "",
    ]
    if stale:
        lines += [stale_note(stale, len(results)), ""]
    for note in (at_chance_note(results), weaker_teacher_note(results)):
        if note:
            lines += [note, ""]
    across = across_hardware_note(results)
    if across:
        lines += [across, ""]
    over_seeds = seeds_table(results)
    if over_seeds:
        lines += ["## Across seeds", "",
                  "Cells run with several seeds: the spread of test top-1 from seed to seed, and the KD gain paired by "
                  "seed (distilled minus alone) with its 95 % confidence interval (Student's t); \"yes\" when the "
                  "interval excludes 0, i.e. distillation moved accuracy by more than the seeds do (no verdict where "
                  "every seed gave the same gain: that measures no spread). The last column: "
                  "how many seeds a gain of this mean and sd would need for its interval to exclude 0 (a planning "
                  "figure: the mean and sd are themselves measured on the seeds run so far).", "",
                  over_seeds, ""]
    by_precision = precision_table(results)
    if by_precision:
        lines += ["## Precision side by side", "",
                  "Test top-1 per precision; in brackets the change against the same cell at fp32. Each precision trains its own "
                  "teacher and student. fp8 eval (sim): the fp32 cell's student evaluated with per-tensor scaled float8 e4m3 "
                  "weights and activations in every Conv2d and Linear (simulated, fp32 compute).", "",
                  by_precision, ""]
    lines += other_devices_section(device_class, results, elsewhere or {}, golden)
    against = reported_table(results, reported)
    if against:
        lines += ["## Against the published figures", "",
                  "The reproduced system's own figures (see the suite file) beside ours from these results; a difference "
                  "only where both come from the same data set.", "", against, ""]
    by_class = per_class_tables(results)
    if len(by_class) == 1:
        first, table = by_class[0]
        lines += ["## Per class", "", f"Test F1 % per class (seed {first['seed']}, {first['precision']}); precision and recall per "
                  "class are in each result file's `report`.", "", table, ""]
    elif by_class:
        lines += ["## Per class", "", "Test F1 % per class, for each data set at its first seed and precision; precision and "
                  "recall per class are in each result file's `report`.", ""]
        for first, table in by_class:
            lines += [f"### {first['dataset']} (seed {first['seed']}, {first['precision']})", "", table, ""]
    summary = training_table(results)
    if summary:
        lines += ["## Training summary", "",
                  "Epoch kept: the epoch whose weights were evaluated (best on validation, or the last). "
                  "Train s: the whole training's wall clock, which counts anything else the machine ran meanwhile; "
                  "s / epoch: its median epoch, which does not; ‡ marks a training with an epoch over twice its median. "
                  "Test images / s: the whole test split at batch 512 in the cell's precision, host-timed, the median of 3 passes "
                  "(one pass in results made before 2026-11-27 afternoon). "
                  "Latency: one image at batch 1, median of 30 timed passes after 5 warm-up passes (GPU synchronised).", "",
                  summary, ""]
    if figures:
        lines += ["## Figures", ""]
        for title, rel in figures.items():
            lines += [f"### {title[0].upper() + title[1:]}", "", f"![{title}]({rel})", ""]
    if any_r:
        lines += [environment_line(results), ""]
    return "\n".join(lines)
