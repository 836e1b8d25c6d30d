"""Results → Markdown tables (tabulate)."""

from __future__ import annotations

from tabulate import tabulate

from .errors import GoldenMismatch
from .golden import compare


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.2f}" if pct else f"{v:,}"


def result_rows(results: dict[str, dict], golden: dict | None) -> list[dict]:
    by_id = {r["cell_id"]: r for r in results.values()}
    rows = []
    for cid, r in sorted(by_id.items()):
        c = r["cell"]
        teacher = " → ".join([c["teacher"], *c.get("assistants", [])])
        row = {"cell": cid, "dataset": c["dataset"], "teacher": teacher, "student": c["student"], "method": c["method"],
               "precision": c["precision"], "seed": c["seed"], "status": r["status"]}
        if r["status"] != "ok":
            row["note"] = r["failure"]["reason"]
            rows.append(row)
            continue
        top1_key = next(k for k in r["metrics"] if k.startswith("test_top1_"))
        row.update(top1=r["metrics"][top1_key], top1_key=top1_key,
                   f1=next((v for k, v in r["metrics"].items() if k.startswith("test_f1_macro_")), None),
                   agreement=next((v for k, v in r["metrics"].items() if k.startswith("test_agreement_")), None),
                   teacher_top1=next((v for k, v in r["metrics"].items() if k.startswith("teacher_test_top1_")), None),
                   params_student=r["params"]["student"], params_teacher=r["params"]["teacher"])
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
                o["cell"][k] == c[k] for k in ("dataset", "teacher", "student", "precision", "seed"))), None)
            if alone and alone["status"] == "ok":
                row["gain"] = row["top1"] - alone["metrics"][top1_key]
        rows.append(row)
    return rows


def markdown_table(results: dict[str, dict], golden: dict | None) -> str:
    rows = result_rows(results, golden)
    headers = ["dataset", "teacher", "student", "method", "precision", "seed", "test top-1 %", "golden band %", "in band",
               "KD gain (pp)", "F1 macro %", "agreement %", "teacher top-1 %", "student params", "teacher params"]
    table = []
    for r in rows:
        if r["status"] != "ok":
            table.append([r["dataset"], r["teacher"], r["student"], r["method"], r["precision"], r["seed"], "FAILED", "", "", "", "", "", "", "", r.get("note", "")])
            continue
        gain = r.get("gain")
        table.append([r["dataset"], r["teacher"], r["student"], r["method"], r["precision"], r["seed"], _fmt(r["top1"]),
                      r.get("band", "—"), r.get("in_band", "—"), f"{100 * gain:+.2f}" if gain is not None else "—",
                      _fmt(r["f1"]), _fmt(r["agreement"]), _fmt(r["teacher_top1"]),
                      _fmt(r["params_student"], False), _fmt(r["params_teacher"], False)])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def suite_page(suite_name: str, description: str, results: dict[str, dict], golden: dict | None, device_class: str) -> str:
    any_r = next(iter(results.values()), None)
    stat = any_r["statistic"] if any_r else ""
    lines = [f"# Suite `{suite_name}` on `{device_class}`", ""]
    if description:
        lines += [description.strip(), ""]
    lines += [
        f"Test metrics: {stat}. KD gain: test top-1 of the distilled student minus the same student trained alone (same seed).",
        f"Golden band: value ± tolerance from `golden/{suite_name}/{device_class}.json`." if golden else "No golden file for this device class yet.",
        "",
        markdown_table(results, golden),
        "",
    ]
    if any_r:
        env = any_r["environment"]
        lines += [f"Environment: torch {env['torch']}, {env.get('gpu') or env['cpu']}, {env['torch_threads']} threads, "
                  f"kdbench {env['kdbench']} ({env.get('git_revision') or 'no git revision'}). Data: {any_r['data']['location'].split('/')[-1]} {any_r['data']['notes']}".rstrip(), ""]
    return "\n".join(lines)
