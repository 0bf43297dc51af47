"""Shared pieces of the paper-reproduction scripts (examples/fer2013.py, examples/tfd.py).

Each run is one call of examples/train.py in its own output folder; a run whose ``final.json``
exists is reused, an interrupted one is resumed (``--resume``), so a protocol can be stopped
and restarted at any time.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import RESUMABLE, build_parser, saved_options, train  # noqa: E402

# Options that do not change what a finished run measured.
RESULT_NEUTRAL = RESUMABLE - {"epochs", "early_stop", "tta", "tta_val"}


def finished_run(output: Path, args: Sequence[str]) -> dict[str, Any] | None:
    """``final.json`` of a finished run in ``output`` made with ``args``, or None if unfinished.

    Raises ValueError when ``output`` holds a finished run made with other options.
    """
    final = output / "final.json"
    if not final.is_file():
        return None
    # Reuse only a run of the same options (a resumable option such as --epochs still changes
    # the result of a finished run). An option the run's args.json lacks predates that option
    # and ran with its default then (train.saved_options).
    wanted = vars(build_parser().parse_args([*args, "--output", str(output)]))
    saved = saved_options(json.loads((output / "args.json").read_text()))
    changed = {k: (saved[k], v) for k, v in wanted.items()
               if k not in RESULT_NEUTRAL and saved[k] != v}
    if changed:
        raise ValueError(f"{output} holds a finished run with other options (saved, now): "
                         f"{changed}; remove it or choose another --output")
    return json.loads(final.read_text())


def run_training(output: Path, args: Sequence[str], *, quiet: bool = False) -> dict[str, Any]:
    """Train (or reuse / resume) one run in ``output`` and return its ``final.json``."""
    argv = [*args, "--output", str(output), "--resume"] + (["--quiet"] if quiet else [])
    done = finished_run(output, argv)
    if done is not None:
        print(f"reusing {output}", flush=True)
        return done
    print(f"== train {' '.join(argv)}", flush=True)
    return train(build_parser().parse_args(argv))


def annotate(data: str, output: Path) -> Path:
    """Make a landmark file for ``data`` with ``python -m mtl_heads annotate`` (dlib)."""
    if output.is_file():
        return output
    print(f"no --landmarks given: annotating {data} -> {output} (dlib; this takes a while)")
    subprocess.run([sys.executable, "-m", "mtl_heads", "annotate", data, "-o", str(output)],
                   check=True)
    return output


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def fmt(values: Sequence[float]) -> str:
    """``"63.71 ± 0.63 (n=8)"`` in percent."""
    if not values:
        return "–"
    m, s = mean_std([100 * v for v in values])
    return f"{m:.2f} ± {s:.2f} (n={len(values)})"


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
    from train import build_model, load_checkpoint

    from mtl_heads.augmentation import center_crop
    from mtl_heads.landmarks import landmarks_to_label_maps
    from mtl_heads.preprocessing import PaperPreprocessing

    args = build_parser().parse_args(["--data", "synthetic", "--output", str(run)])
    for k, v in json.loads((run / "args.json").read_text()).items():
        setattr(args, k, v)
    if args.label_maps == 0:
        raise ValueError(f"{run} is a baseline run: it predicts no label maps")
    num_classes = len(json.loads((run / "final.json").read_text())["classes"])
    model = build_model(args, images.shape[1], num_classes)
    pre = PaperPreprocessing(channels=images.shape[1], size=args.image_size, crop=args.crop)
    ckpt = run / "best.safetensors"
    ckpt = ckpt if ckpt.is_file() else run / "last.safetensors"
    from mtl_heads import MaskedMultiTaskLoss

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
