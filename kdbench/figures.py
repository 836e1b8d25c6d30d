"""Figures for a suite's report page, drawn from result files only (no training, no data):
training curves, confusion matrices and accuracy against parameter count.

matplotlib with the Agg backend (files only, no display); every figure is written as PNG
with fixed metadata so that the same results give the same bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

from .io import atomic_write_bytes

# Without a date in the PNG metadata, regenerating a page from unchanged results changes no file.
_PNG_META = {"Software": "kdbench (matplotlib)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_META)
    _plt().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _label(r: dict, with_dataset: bool = False) -> str:
    c = r["cell"]
    chain = "→".join([c["teacher"], *c.get("assistants", [])])
    parts = ([f"{c['dataset']}:"] if with_dataset else []) + [c["student"], c["method"]] + \
        ([c["precision"]] if c["precision"] != "fp32" else []) + ([c["variant"]] if c.get("variant") else [])
    return f"{' '.join(parts)} (from {chain})" if c["method"] != "none" else " ".join(parts)


def _several_datasets(ok: list[dict]) -> bool:
    """Whether the results span data sets (a suite with a stand-in beside its data set): the
    labels then name each cell's."""
    return len({r["cell"]["dataset"] for r in ok}) > 1


def _ok(results: dict[str, dict]) -> list[dict]:
    return [r for _, r in sorted(results.items()) if r["status"] == "ok"]


def training_curves(results: dict[str, dict], path: Path) -> Path | None:
    """Training loss and validation top-1 per epoch, one line per cell (students), plus the
    teachers' curves (each distinct teacher once)."""
    ok = _ok(results)
    if not ok:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    teachers_drawn = set()
    several = _several_datasets(ok)
    for r in ok:
        h = r["student"]["history"]
        ep = [row["epoch"] for row in h]
        line = axes[0].plot(ep, [row["train_loss"] for row in h], marker=".", label=_label(r, several))[0]
        axes[1].plot(ep, [100 * row["val_top1"] for row in h], marker=".", color=line.get_color())
        if all("train_top1" in row for row in h):  # results from before it was recorded lack it
            axes[1].plot(ep, [100 * row["train_top1"] for row in h], ":", color=line.get_color(), alpha=0.7)
        key = r["teacher"]["cache_key"]
        if key not in teachers_drawn and r["teacher"].get("history"):
            teachers_drawn.add(key)
            th = r["teacher"]["history"]
            tlabel = (f"{r['cell']['dataset']}: " if several else "") + f"teacher {r['cell']['teacher']}" + \
                (f" ({r['cell']['precision']})" if r["cell"]["precision"] != "fp32" else "")
            axes[0].plot([x["epoch"] for x in th], [x["train_loss"] for x in th], "k--", alpha=0.6, label=tlabel)
            axes[1].plot([x["epoch"] for x in th], [100 * x["val_top1"] for x in th], "k--", alpha=0.6)
    axes[0].set(xlabel="epoch", ylabel="training loss (the cell's objective)", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="top-1 %", title="validation top-1 (solid), training top-1 during the epoch (dotted)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=min(3, len(ok) + len(teachers_drawn)), fontsize=7, bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil((len(ok) + len(teachers_drawn)) / 3)))
    return _save(fig, path)


def confusion_matrices(results: dict[str, dict], path: Path) -> Path | None:
    """Each cell's test confusion matrix (rows: true class, columns: predicted), row-normalised
    so classes of different sizes compare; the counts are in the result files."""
    ok = [r for r in _ok(results) if "confusion_matrix" in r.get("report", {})]
    if not ok:
        return None
    plt = _plt()
    cols = min(4, len(ok))
    rows = math.ceil(len(ok) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(ok):]:
        ax.axis("off")
    several = _several_datasets(ok)
    for ax, r in zip(axes.flat, ok, strict=False):
        cm = r["report"]["confusion_matrix"]
        norm = [[v / max(1, sum(row)) for v in row] for row in cm]
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        n = len(cm)
        ax.set_title(_label(r, several), fontsize=7)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.tick_params(labelsize=6)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if cm[i][j]:
                        ax.text(j, i, f"{cm[i][j]}", ha="center", va="center", fontsize=5, color="white" if norm[i][j] > 0.5 else "black")
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    classes = {r["cell"]["dataset"]: r["normalisation"]["classes"] for r in ok}
    fig.suptitle("test confusion matrices — classes: " + "; ".join(
        (f"{d}: " if several else "") + ", ".join(f"{i} {c}" for i, c in enumerate(names)) for d, names in classes.items()), fontsize=7, y=1.0)
    return _save(fig, path)


def accuracy_vs_params(results: dict[str, dict], path: Path) -> Path | None:
    """Test top-1 against student parameter count (log scale), one marker per method."""
    ok = _ok(results)
    if not ok:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"none": "o", "kd": "^", "dkd": "s", "takd": "D"}
    several = _several_datasets(ok)
    for method in dict.fromkeys(r["cell"]["method"] for r in ok):
        pts = [r for r in ok if r["cell"]["method"] == method]
        xs = [r["params"]["student"] for r in pts]
        ys = [100 * next(v for k, v in r["metrics"].items() if k.startswith("test_top1_")) for r in pts]
        ax.scatter(xs, ys, marker=markers.get(method, "x"), label=method, alpha=0.8)
        for x, y, r in zip(xs, ys, pts, strict=True):
            name = f"{r['cell']['student']} ({r['cell']['dataset']})" if several else r["cell"]["student"]
            ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel="student parameters", ylabel="test top-1 %", title="accuracy against student size")
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize=7)
    return _save(fig, path)


def draw_all(results: dict[str, dict], out_dir: Path) -> dict[str, Path]:
    """Every figure that the results support, by name."""
    made = {
        "training curves": training_curves(results, out_dir / "curves.png"),
        "confusion matrices": confusion_matrices(results, out_dir / "confusion.png"),
        "accuracy vs parameters": accuracy_vs_params(results, out_dir / "accuracy_vs_params.png"),
    }
    return {k: v for k, v in made.items() if v is not None}
