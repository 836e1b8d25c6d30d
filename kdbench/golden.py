"""Golden values: per suite and device class, per cell and metric, a value and a tolerance
with its reason. Written only by ``kdbench golden update``; tests only read them."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from pathlib import Path

from .errors import GoldenMismatch
from .io import atomic_write_json, read_json

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
SIGMAS = 3.0  # tolerance = SIGMAS × seed-to-seed sample std (≈ 99.7 % of a normal spread)


def golden_path(suite: str, device_class: str, root: Path = GOLDEN_DIR) -> Path:
    return root / suite / f"{device_class}.json"


def load_golden(suite: str, device_class: str, root: Path = GOLDEN_DIR) -> dict | None:
    path = golden_path(suite, device_class, root)
    return read_json(path) if path.exists() else None


def seedless(cell_id: str) -> str:
    """The cell id without its seed part (which a sweep's FIELD=VALUE part may follow)."""
    return re.sub(r"__s\d+(?=__|$)", "", cell_id)


def build_golden(suite: str, device_class: str, pinned: dict[str, dict], spread: dict[str, list[dict]], produced_by: dict) -> dict:
    """``pinned``: the suite's own cells' results by id; ``spread``: for each seedless id,
    the results of every seed run to measure the spread."""
    cells = {}
    for cell_id, res in sorted(pinned.items()):
        if res.get("status") != "ok":
            continue
        group = [r for r in spread.get(seedless(cell_id), []) if r.get("status") == "ok"]
        seeds = sorted(r["cell"]["seed"] for r in group)
        n_test = res["data"]["n_test"]
        floor = 1.0 / n_test  # one test image: no tolerance below what a single image moves
        metrics = {}
        for name, value in sorted(res["metrics"].items()):
            values = [r["metrics"][name] for r in group if name in r["metrics"]]
            std = statistics.stdev(values) if len(values) >= 2 else 0.0
            tol = max(SIGMAS * std, floor)
            reason = (
                f"max({SIGMAS:g} × sample std over seeds {seeds} (n={len(values)}, std={std:.4f}), "
                f"1 test image = 1/{n_test}); values {[round(v, 4) for v in values]}"
            )
            metrics[name] = {"value": value, "tolerance": round(tol, 6), "reason": reason}
        cells[cell_id] = {"fingerprints": {k: res["fingerprints"][k] for k in ("dataset", "split")}, "metrics": metrics}
        machines = {str(r["cell"]["seed"]): machine(r["environment"]) for r in group if "environment" in r}
        if machines:
            # One device class may span machines (CPU results are bitwise only on one CPU kind),
            # and then so does the spread: say which machine ran each seed.
            cells[cell_id]["machine_by_seed"] = dict(sorted(machines.items(), key=lambda kv: int(kv[0])))
    return {
        "suite": suite, "device_class": device_class,
        "produced_by": dict(produced_by, date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
        "cells": cells,
    }


def machine(env: dict) -> str:
    """A result's machine in a few words: its GPU, or on the CPU its processor and threads."""
    if env.get("gpu"):
        return f"{env['gpu']}, torch {env.get('torch', '?')}"
    return f"{env.get('cpu_model', env.get('cpu', '?'))} ({env.get('torch_threads', '?')} threads), torch {env.get('torch', '?')}"


def golden_machines(golden: dict, cell_id: str) -> set[str]:
    """The machines whose runs made a golden cell: each seed's (``machine_by_seed``), else the
    machine of the update that wrote it; empty where the file predates recording the processor."""
    cell = golden["cells"][cell_id]
    if "machine_by_seed" in cell:
        return set(cell["machine_by_seed"].values())
    env = cell.get("produced_by", golden["produced_by"]).get("environment", {})
    return {machine(env)} if env.get("gpu") or env.get("cpu_model") else set()


def unseen_machine_note(checked: dict[str, dict], golden: dict) -> str | None:
    """One line when results checked against a golden file ran on a machine (processor or GPU,
    threads, torch) that none of its seeds ran on: a band measures seed-to-seed spread, so there
    a pass says the machine stays inside it, and a miss may be the machine rather than the code."""
    unseen: dict[str, int] = {}
    golden_runs: set[str] = set()
    for cid, result in checked.items():
        known = golden_machines(golden, cid)
        golden_runs |= known
        here = machine(result.get("environment", {}))
        if known and here not in known:
            unseen[here] = unseen.get(here, 0) + 1
    if not unseen:
        return None
    return (f"{sum(unseen.values())} of the {len(checked)} checked results ran on a machine none of the golden seeds ran on "
            f"({'; '.join(sorted(unseen))}; golden runs: {'; '.join(sorted(golden_runs))}): the bands measure the spread from "
            "seed to seed, so a miss there may be the machine rather than the code (kdbench diff against a run on a golden "
            "machine says what differs)")


def merge_partial(old: dict, new: dict) -> dict:
    """A golden file after an update of some of its cells (``--cells``): the other cells stay as
    they were, and every cell keeps the provenance of the update that made it (its own
    ``produced_by``; the file's top-level one is the latest update's), so re-making one cell
    never credits the others to a command and an environment that did not produce them."""
    cells = {cid: dict(cell, produced_by=cell.get("produced_by", old["produced_by"])) for cid, cell in old["cells"].items()}
    cells.update({cid: dict(cell, produced_by=new["produced_by"]) for cid, cell in new["cells"].items()})
    return dict(new, cells=dict(sorted(cells.items())))


def diff_golden(old: dict | None, new: dict) -> list[str]:
    lines = []
    old_cells = (old or {}).get("cells", {})
    for cid, cell in new["cells"].items():
        before = old_cells.get(cid)
        if before is None:
            lines.append(f"+ {cid}: new")
            continue
        for m, g in cell["metrics"].items():
            b = before["metrics"].get(m)
            if b is None or abs(b["value"] - g["value"]) > 1e-12 or abs(b["tolerance"] - g["tolerance"]) > 1e-12:
                was = f"{b['value']:.4f} ± {b['tolerance']:.4f}" if b else "absent"
                lines.append(f"~ {cid}: {m}: {was} -> {g['value']:.4f} ± {g['tolerance']:.4f}")
        if before.get("fingerprints") != cell["fingerprints"]:
            lines.append(f"~ {cid}: data/split fingerprints changed")
    for cid in old_cells:
        if cid not in new["cells"]:
            lines.append(f"- {cid}: removed")
    return lines


def write_golden(data: dict, root: Path = GOLDEN_DIR) -> Path:
    path = golden_path(data["suite"], data["device_class"], root)
    atomic_write_json(path, data)
    return path


def compare(result: dict, golden_cell: dict) -> list[str]:
    """Problems with ``result`` against its golden entry: [] when every metric is inside its
    band. A different dataset or split raises GoldenMismatch: the numbers are not comparable."""
    cid = result["cell_id"]
    for kind in ("dataset", "split"):
        want, got = golden_cell["fingerprints"][kind], result["fingerprints"][kind]
        if want != got:
            raise GoldenMismatch(
                f"{cid}: the {kind} fingerprint differs from the golden run ({got[:12]}… vs {want[:12]}…): "
                f"the {kind} changed, so its metrics cannot be compared; re-make golden values with "
                f"'kdbench golden update' if the change is intended"
            )
    if result.get("status") != "ok":
        return [f"{cid}: cell failed: {result.get('failure', {}).get('reason')}"]
    problems = []
    for name, g in golden_cell["metrics"].items():
        if name not in result["metrics"]:
            problems.append(f"{cid}: metric {name} missing from the result")
            continue
        v = result["metrics"][name]
        if abs(v - g["value"]) > g["tolerance"]:
            problems.append(f"{cid}: {name} = {v:.4f}, outside golden {g['value']:.4f} ± {g['tolerance']:.4f} ({g['reason']})")
    return problems
