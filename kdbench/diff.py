"""Did a change move the numbers? Two results folders of the same suite, cell by cell: each
metric before and after, the difference, and whether it stays within the seed-to-seed
tolerance the golden file records for that cell (measured, not guessed), plus whatever
differs in how the two were produced (torch, GPU, code, data)."""

from __future__ import annotations

from tabulate import tabulate

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


def provenance_changes(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """'torch: 2.11.0 → 2.14.1' lines for every provenance field whose values differ."""
    rows = [_code_fingerprints(a, b) if label == "training code" else (label, path) for label, path in _PROVENANCE.items()]
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
            tol = tolerances.get(cid, {}).get("metrics", {}).get(name, {}).get("tolerance")
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
