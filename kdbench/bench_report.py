"""pytest-benchmark JSON → Markdown tables, each figure stated as a ratio against a baseline
measured in the same run (eager KD loss, fp32 forward, deterministic KD step)."""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate


def _median_us(b: dict) -> float:
    return b["stats"]["median"] * 1e6


def _per_model(benches: list[dict], prefix: str, title: str) -> list[str]:
    """A section with one row per model and precision, each against the same model at fp32."""
    chosen = [b for b in benches if b["name"].startswith(prefix)]
    if not chosen:
        return []
    # A model may be benchmarked at several inputs (the suites' models): each its own fp32 baseline.
    with_input = any("input" in b["extra_info"] for b in chosen)

    def key(b: dict) -> tuple:
        return b["extra_info"]["model"], b["extra_info"].get("input", "")

    base = {key(b): _median_us(b) for b in chosen if b["extra_info"]["precision"] == "fp32"}
    rows = []
    for b in sorted(chosen, key=lambda b: (*key(b), b["extra_info"]["precision"])):
        e = b["extra_info"]
        rows.append([e["model"], *([e.get("input", "")] if with_input else []), e["precision"], e["batch"], f"{_median_us(b) / 1e3:.3f}",
                     e.get("images_per_s", "—"), f"{base[key(b)] / _median_us(b):.2f}×" if key(b) in base else "—"])
    head = ["model", *(["input"] if with_input else []), "precision", "batch", "wall ms", "images/s (GPU time)", "speed vs fp32"]
    return [f"## {title}", "", tabulate(rows, head, tablefmt="github"), ""]


def bench_tables(path: Path) -> str:
    data = json.loads(Path(path).read_text())
    mi = data["machine_info"].get("kdbench", {})
    benches = data["benchmarks"]
    out = [f"# Benchmarks: {mi.get('gpu') or data['machine_info'].get('cpu', {}).get('brand_raw', 'CPU')}", "",
           f"torch {mi.get('torch')}, CUDA {mi.get('cuda')}, cuDNN {mi.get('cudnn')}, driver {mi.get('driver')}; "
           f"from `{Path(path).name}` ({data.get('datetime', '')}). Wall = pytest-benchmark median of a call that "
           "synchronises; GPU = CUDA-event time per call over 20-50 back-to-back calls.", ""]

    kd = [b for b in benches if b["name"].startswith("test_kd_loss_fwd_bwd")]
    if kd:
        eager = {(b["extra_info"]["batch"], b["extra_info"]["classes"], b["extra_info"]["dtype"]): _median_us(b) for b in kd if b["extra_info"]["impl"] == "eager"}
        rows = []
        for b in kd:
            e = b["extra_info"]
            key = (e["batch"], e["classes"], e["dtype"])
            rows.append([f"{e['batch']}×{e['classes']}", e["dtype"], e["impl"], f"{_median_us(b):.1f}", e.get("gpu_us", "—"),
                         e.get("floor_us", "—"), e.get("times_floor", "—"), f"{eager[key] / _median_us(b):.2f}×" if key in eager else "—"])
        out += ["## KD loss, forward + backward", "",
                tabulate(rows, ["B×C", "logits", "impl", "wall µs", "GPU µs", "memory floor µs", "× floor", "speed vs eager"], tablefmt="github"), ""]
        # GPU time from events over back-to-back calls includes the gaps while the CPU launches
        # the next kernels; when it is as long as the synchronised wall time and far above the
        # floor, the figure measures launching, not the kernels.
        launch_bound = [b for b in kd if b["extra_info"].get("times_floor", 0) >= 50 and b["extra_info"].get("gpu_us", 0) >= 0.5 * _median_us(b)]
        if launch_bound:
            out += [f"{len(launch_bound)} of {len(kd)} rows are bound by the host, not by the GPU: their GPU time is at least half "
                    "the wall time and 50× or more the memory floor, so the GPU waits for each call's Python, dispatch and kernel "
                    "launches. The floor is what one fused kernel could reach; CUDA graphs (one launch for the whole call), not "
                    "faster kernels, close that gap.", ""]

    out += _per_model(benches, "test_forward_throughput", "Inference throughput, 32×32 inputs")
    out += _per_model(benches, "test_train_step_throughput", "Training step (forward, CE, backward, SGD; deterministic), 32×32 inputs")
    out += _per_model(benches, "test_suite_model_forward", "Inference throughput, the suites' timm and 224×224 models at their suite's input")
    out += _per_model(benches, "test_suite_model_train_step", "Training step, the suites' timm and 224×224 models at their suite's input")

    st = [b for b in benches if b["name"].startswith("test_kd_train_step")]  # with test_kd_train_step_graphed
    if st:
        # The baseline of each precision: the eager step with deterministic kernels.
        det = {b["extra_info"]["precision"]: _median_us(b) for b in st if b["extra_info"]["deterministic"] and not b["extra_info"].get("graphed")}
        rows = []
        for b in sorted(st, key=lambda b: (b["extra_info"]["precision"], not b["extra_info"]["deterministic"], bool(b["extra_info"].get("graphed")))):
            e = b["extra_info"]
            rows.append([e["precision"], "on" if e["deterministic"] else "off", "CUDA graph" if e.get("graphed") else "eager", e["batch"],
                         f"{_median_us(b) / 1e3:.3f}", e.get("images_per_s", "—"),
                         f"{det[e['precision']] / _median_us(b):.2f}×" if e["precision"] in det else "—"])
        out += ["## KD training step (resnet18_cifar teacher → cnn_small student, data on the device)", "",
                tabulate(rows, ["precision", "deterministic", "launch", "batch", "wall ms", "images/s (GPU time)", "speed vs eager deterministic"],
                         tablefmt="github"), ""]
    return "\n".join(out)
