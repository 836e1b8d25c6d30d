"""Grad-CAM (Selvaraju et al. 2017) for trained students, as S1 shows them: maps for chosen
test images per student, and the best student against the worst.

The map of a convolutional layer L for class c: ReLU(Σ_k w_k · A_k), where A_k are L's
activation channels and w_k the spatial mean of ∂y_c/∂A_k; upsampled to the image and
scaled to [0, 1]. L is the model's last Conv2d whose output is still a spatial map at the
forward of one image (the usual choice: the deepest layer with spatial detail)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import KDBenchError


def last_conv(model: nn.Module) -> nn.Module:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise KDBenchError(f"{type(model).__name__} has no convolution: Grad-CAM needs a spatial feature map")
    return convs[-1]


def grad_cam(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None, layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (N, H, W) in [0, 1] for normalised images ``x`` (N, C, H, W), for the classes in
    ``target`` (default: the predicted ones); returns (maps, predicted classes)."""
    layer = layer or last_conv(model)
    saved: dict[str, torch.Tensor] = {}

    def keep(_m, _inp, out):
        out.retain_grad()
        saved["act"] = out

    handle = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # gradients must flow even if the weights are frozen
            logits = model(x)
            pred = logits.argmax(1)
            cls = pred if target is None else target
            model.zero_grad(set_to_none=True)
            logits.gather(1, cls[:, None]).sum().backward()
        act, grad = saved["act"], saved["act"].grad
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * act).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        lo = cam.flatten(1).min(1).values[:, None, None]
        hi = cam.flatten(1).max(1).values[:, None, None]
        maps = ((cam - lo) / (hi - lo).clamp_min(1e-12)).detach()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return maps, pred.detach()


def chosen_images(labels: torch.Tensor, per_class: int = 1, max_images: int = 6) -> list[int]:
    """Test images to show: the first ``per_class`` of each class, in class order, at most
    ``max_images`` — the same images on every run and for every student."""
    picked: list[int] = []
    for c in range(int(labels.max()) + 1):
        picked += (labels == c).nonzero().flatten()[:per_class].tolist()
    return picked[:max_images]


def _to_rgb(img: torch.Tensor):
    """uint8 (C, H, W) → float (H, W, 3) in [0, 1] for display."""
    x = img.float() / 255.0
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy()


def draw_gradcam(students: list[tuple[str, nn.Module, float]], images: torch.Tensor, labels: torch.Tensor,
                 mean: torch.Tensor, std: torch.Tensor, classes: list[str], path: Path, title: str) -> Path:
    """A grid: one row per image, the image then one Grad-CAM overlay per student (titled
    with the student's prediction, ✓ or ✗)."""
    from .figures import _plt, _save

    plt = _plt()
    x = (images.float() / 255.0 - mean) / std
    cams = [(name, top1, *grad_cam(model, x)) for name, model, top1 in students]
    n, cols = len(images), 1 + len(students)
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 1.9 * n + 0.4), squeeze=False)
    for i in range(n):
        rgb = _to_rgb(images[i])
        axes[i][0].imshow(rgb)
        axes[i][0].set_title(f"true: {classes[int(labels[i])]}", fontsize=6)
        for j, (name, top1, maps, pred) in enumerate(cams, 1):
            ax = axes[i][j]
            ax.imshow(rgb)
            ax.imshow(maps[i].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            mark = "✓" if int(pred[i]) == int(labels[i]) else "✗"
            head = f"{name}\n(top-1 {100 * top1:.1f} %)\n" if i == 0 else ""
            ax.set_title(f"{head}{mark} {classes[int(pred[i])]}", fontsize=6)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def suite_gradcam(suite, results: dict[str, dict], results_dir: Path, out_dir: Path, data_root: Path | None,
                  cache_dir: Path | None, log=print) -> dict[str, Path]:
    """For each dataset of the suite: Grad-CAM maps of every student under every method (the
    cells at the suite's first seed and first precision) on one test image per class, and
    the best of those students against the worst."""
    from .predict import load_student
    from .runner import Runner, RunOptions

    first_seed, first_prec = suite.spec.seeds[0], suite.spec.matrix.precisions[0]
    opts = RunOptions(results_dir=results_dir, data_root=data_root, device=torch.device("cpu"), log=log)
    if cache_dir is not None:
        opts.cache_dir = cache_dir
    runner = Runner(suite, opts)
    made: dict[str, Path] = {}
    datasets = list(dict.fromkeys(r["cell"]["dataset"] for r in results.values()))
    for ds in datasets:
        students = []
        for cid, r in sorted(results.items()):
            c = r["cell"]
            if not (r["status"] == "ok" and c["dataset"] == ds and c["seed"] == first_seed and c["precision"] == first_prec and not c.get("variant")):
                continue
            model, _ = load_student(results_dir / suite.name / f"{cid}.json")
            if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
                log(f"[gradcam] {c['student']}: no convolution, no Grad-CAM map")
                continue
            top1 = next(v for k, v in r["metrics"].items() if k.startswith("test_top1_"))
            students.append((f"{c['student']} [{c['method']}]", model, top1, r))
        if not students:
            continue
        test = runner.prepare(ds).test
        idx = chosen_images(test.y.cpu())
        images, labels = test.images(idx), test.y[idx].cpu()
        norm = students[0][3]["normalisation"]
        if images.shape[-1] != norm["image_size"]:  # data.resize: show the images the models saw
            size = (norm["image_size"], norm["image_size"])
            images = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False).round().clamp(0, 255).to(torch.uint8)
        mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
        suffix = f"_{ds.replace('/', '-').replace(':', '-')}" if len(datasets) > 1 else ""
        made[f"Grad-CAM per student{f' ({ds})' if suffix else ''}"] = draw_gradcam(
            [s[:3] for s in students], images, labels, mean, std, norm["classes"], out_dir / f"gradcam{suffix}.png",
            f"Grad-CAM of each student's last convolution for its predicted class ({ds}, seed {first_seed}, {first_prec})")
        if len(students) > 2:
            ranked = sorted(students, key=lambda s: s[2])
            made[f"Grad-CAM best vs worst student{f' ({ds})' if suffix else ''}"] = draw_gradcam(
                [ranked[-1][:3], ranked[0][:3]], images, labels, mean, std, norm["classes"], out_dir / f"gradcam_best_vs_worst{suffix}.png",
                "best student (left) against worst (right) by test top-1")
    return made
