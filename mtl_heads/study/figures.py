"""Figures of training runs: learning curves, a Fig. 3-style grid of predicted label maps, and a
study block's accuracy by fraction of Training.

matplotlib is optional (``pip install 'mtl-heads[examples]'``): without it the functions say so
and return ``None``.
"""

import json
import math
from pathlib import Path
from typing import Any

from ..losses import MaskedMultiTaskLoss
from ..preprocessing import PREPROCESSING, PaperPreprocessing

__all__ = ["dataset_label_map_grid", "label_map_grid", "plot_curves", "plot_efficiency"]


def plot_curves(runs: dict[str, Path], path: Path, title: str) -> Path | None:
    """Training loss and validation accuracy per epoch of each run, one figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'mtl-heads[examples]')")
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, run in runs.items():
        metrics = run / "metrics.jsonl"
        if not metrics.is_file():
            continue
        hist = [json.loads(line) for line in metrics.read_text().splitlines()]
        epochs = [h["epoch"] for h in hist]
        style = "-" if "multitask" in name else "--"
        axes[0].plot(epochs, [h["train_ce"] for h in hist], style, label=name)
        axes[1].plot(epochs, [h["train_acc"] for h in hist], style, label=name)
        if "val_acc" in hist[0]:
            axes[2].plot(epochs, [h["val_acc"] for h in hist], style, label=name)
    for ax, ylabel in zip(axes, ("training cross-entropy", "training accuracy",
                                 "validation accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def label_map_grid(run: Path, images: Any, landmarks: Any, valid: Any, path: Path,
                   num: int = 12) -> Path | None:
    """A Fig. 3-style grid: test faces with the predicted maps (p > 0.5) beside the targets.

    Args:
        run: a multi-task run folder (``best.safetensors`` or ``last.safetensors``, args.json).
        images: uint8 (N, 1, H, W) test images; landmarks (N, 68, 2) and valid (N,) tensors.
        path: the PNG to write.
        num: faces to show.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import torch

    from ..augmentation import center_crop
    from ..landmarks import landmarks_to_label_maps
    from ..train import build_model, load_checkpoint, parse_args, saved_options

    saved = saved_options(json.loads((run / "args.json").read_text()))
    args = parse_args(["--data", "synthetic", "--output", str(run)])
    vars(args).update(saved)
    if args.label_maps == 0:
        raise ValueError(f"{run} is a baseline run: it predicts no label maps")
    num_classes = len(json.loads((run / "final.json").read_text())["classes"])
    model = build_model(args, images.shape[1], num_classes)
    pre = PaperPreprocessing(channels=images.shape[1], size=args.image_size, crop=args.crop,
                             **PREPROCESSING[args.preprocessing])
    ckpt = run / "best.safetensors"
    ckpt = ckpt if ckpt.is_file() else run / "last.safetensors"
    load_checkpoint(ckpt, model, pre, MaskedMultiTaskLoss(), None)
    model.eval()
    pre.eval()
    pick = torch.nonzero(valid).flatten()[:num]
    with torch.inference_mode():
        x = images[pick]
        pred = model(pre(x))["label_maps"].sigmoid() > 0.5
    offset = (args.image_size - args.crop) // 2
    target = landmarks_to_label_maps(landmarks[pick] - offset, args.crop) > 0.5
    faces = center_crop(x, args.crop)[:, 0].float() / 255

    def overlay(face: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        rgb = face[..., None].repeat(1, 1, 3) * 0.8
        colours = torch.tensor([[1.0, 0.2, 0.2], [0.2, 0.4, 1.0], [0.2, 1.0, 0.2]])
        for k in range(maps.shape[0]):
            rgb = torch.where(maps[k][..., None], colours[k] * 0.7 + rgb * 0.3, rgb)
        return rgb

    cols = 6
    rows = math.ceil(len(pick) / (cols // 2))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.6))
    for ax in axes.flat:
        ax.axis("off")
    for i in range(len(pick)):
        r, c = divmod(i, cols // 2)
        axes[r, 2 * c].imshow(overlay(faces[i], pred[i]).numpy())
        axes[r, 2 * c].set_title("predicted", fontsize=7)
        axes[r, 2 * c + 1].imshow(overlay(faces[i], target[i]).numpy())
        axes[r, 2 * c + 1].set_title("target", fontsize=7)
    fig.suptitle("label maps: p > 0.5 (left) vs maps drawn from landmarks (right)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dataset_label_map_grid(run: Path, dataset: Any, path: Path, num: int = 12,
                           candidates: int = 200) -> Path | None:
    """:func:`label_map_grid` over the first faces of a data set with landmarks
    (:class:`~mtl_heads.datasets.FaceDataset`, e.g. ``FER2013(csv, split="PublicTest",
    landmarks=...)``); ``None`` when it is empty or has no landmarks."""
    import torch

    if len(dataset) == 0 or dataset.landmarks is None:
        return None
    images = torch.from_numpy(dataset.images[:candidates])
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return label_map_grid(run, images, torch.from_numpy(dataset.landmarks[:candidates]),
                          torch.from_numpy(dataset.landmarks_valid[:candidates]), path, num=num)


def plot_efficiency(eff: dict[str, dict[float, list[float]]], diff: dict[str, dict[float, Any]],
                    ref: str, metric: str, path: Path) -> bool:
    """A study block by fraction of Training: each arm's mean ± std, and the paired differences.

    Args:
        eff: ``{arm: {fraction: [metric per seed]}}`` (fractions of 1).
        diff: ``{arm: {fraction: PairedComparison}}`` against ``ref``
            (:func:`~mtl_heads.study.stats.compare_paired` in points).
        ref: the reference arm.
        metric: the metric's name, for the axis.
        path: the PNG to write.

    Returns:
        Whether it was written (False without matplotlib).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from .stats import mean_std

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (arm, by_f) in enumerate(eff.items()):
        fr = sorted(f for f in by_f if by_f[f])
        stats = [mean_std([100 * v for v in by_f[f]]) for f in fr]
        dodge = 1 + 0.03 * (i - (len(eff) - 1) / 2)  # keep the arms' error bars apart
        axes[0].errorbar([100 * f * dodge for f in fr], [m for m, _ in stats],
                         yerr=[s for _, s in stats], fmt="o-", capsize=3, label=arm)
    for arm, by_f in diff.items():
        fr = sorted(by_f)
        cs = [by_f[f] for f in fr]
        lo = [c.mean_diff - (c.ci_low if c.n > 1 else c.mean_diff) for c in cs]
        hi = [(c.ci_high if c.n > 1 else c.mean_diff) - c.mean_diff for c in cs]
        axes[1].errorbar([100 * f for f in fr], [c.mean_diff for c in cs], yerr=[lo, hi],
                         fmt="o-", capsize=3, label=f"{arm} − {ref}")
    axes[1].axhline(0, color="grey", lw=0.8)
    for ax, ylabel in zip(axes, (f"{metric} (%)", "paired difference (points)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("% of Training")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no pairs yet: no differences to label
            ax.legend(fontsize=8)
        ticks = sorted({100 * f for by_f in eff.values() for f in by_f})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return True
