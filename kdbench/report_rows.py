"""Finished results as one row per cell, the form the report's tables and notes read: the
headline metrics, the golden band and whether the cell is in it, and the KD gain against the
same student trained alone (same seed)."""

from __future__ import annotations

from .determinism import hardware
from .errors import GoldenMismatch
from .golden import compare


def first_metric(result: dict, prefix: str) -> float | None:
    """The result's metric whose name starts with ``prefix`` (names end in their statistic)."""
    return next((v for k, v in result["metrics"].items() if k.startswith(prefix)), None)


def result_rows(results: dict[str, dict], golden: dict | None) -> list[dict]:
    by_id = {r["cell_id"]: r for r in results.values()}
    rows = []
    for cid, r in sorted(by_id.items()):
        c = r["cell"]
        teacher = " → ".join([c["teacher"], *c.get("assistants", [])])
        row = {"cell": cid, "variant": c.get("variant", ""), "dataset": c["dataset"], "teacher": teacher, "student": c["student"], "method": c["method"],
               "precision": c["precision"], "seed": c["seed"], "status": r["status"]}
        if r["status"] != "ok":
            row["note"] = r["failure"]["reason"]
            rows.append(row)
            continue
        top1_key = next(k for k in r["metrics"] if k.startswith("test_top1_"))
        row.update(top1=r["metrics"][top1_key], top1_key=top1_key,
                   f1=first_metric(r, "test_f1_macro_"), agreement=first_metric(r, "test_agreement_"),
                   teacher_top1=first_metric(r, "teacher_test_top1_"),
                   params_student=r["params"]["student"], params_teacher=r["params"]["teacher"],
                   fp8_sim=(r.get("fp8_eval") or {}).get("test_top1"), hardware=hardware(r.get("environment", {})),
                   teacher_key=(r.get("teacher") or {}).get("cache_key"),
                   assistants_top1=[s.get("test_top1") for s in (r.get("teacher") or {}).get("chain", [])])
        g = (golden or {}).get("cells", {}).get(cid)
        if g and top1_key in g["metrics"]:
            gm = g["metrics"][top1_key]
            row["band"] = f"{100 * gm['value']:.2f} ± {100 * gm['tolerance']:.2f}"
            try:
                row["in_band"] = "yes" if not compare(r, g) else "NO"
            except GoldenMismatch:
                row["in_band"] = "data changed"
        if c["method"] != "none":
            alone = next((o for o in by_id.values() if o["cell"]["method"] == "none" and all(
                o["cell"].get(k) == c.get(k) for k in ("dataset", "teacher", "student", "precision", "seed", "variant"))), None)
            if alone and alone["status"] == "ok":
                row["gain"] = row["top1"] - alone["metrics"][top1_key]
                alone_on = hardware(alone.get("environment", {}))
                if alone_on != row["hardware"]:
                    row["alone"] = {"hardware": alone_on, "teacher_top1": first_metric(alone, "teacher_test_top1_")}
        rows.append(row)
    return rows


# Marks a KD gain whose two cells (distilled, alone) ran on different hardware.
ACROSS_MARK = " †"
