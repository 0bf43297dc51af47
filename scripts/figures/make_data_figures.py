"""Grids of FER2013 faces with their dlib landmarks, for docs/data.md.

Usage::

    python scripts/figures/make_data_figures.py FER2013_CSV LANDMARKS.npz [--out docs/img] \
        [--seed 0]

Writes ``landmarks_pass1.png`` (faces found by the first detector pass),
``landmarks_pass2.png`` (found by the second, low-threshold pass) and
``landmarks_failures.png`` (no face found): random PublicTest images (seeded), 3x enlarged,
points drawn at their sub-pixel positions, brows red, mouth yellow, the rest green.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mtl_heads.datasets import FER2013

SCALE = 3
COLUMNS, ROWS = 10, 3


def colour(k: int) -> tuple[int, int, int]:
    if 17 <= k <= 26:
        return (255, 40, 40)
    if 48 <= k <= 67:
        return (255, 220, 0)
    return (0, 230, 0)


def grid(images: np.ndarray, landmarks: np.ndarray | None, path: Path) -> None:
    from PIL import Image, ImageDraw

    h, w = images.shape[1:3]
    canvas = Image.new("RGB", (COLUMNS * w * SCALE, ROWS * h * SCALE))
    for j, image in enumerate(images[: COLUMNS * ROWS]):
        tile = Image.fromarray(image).resize((w * SCALE, h * SCALE), Image.NEAREST).convert("RGB")
        if landmarks is not None:
            draw = ImageDraw.Draw(tile)
            for k, (x, y) in enumerate(landmarks[j]):
                # pixel centres at integers: stored (x, y) -> enlarged (x + 0.5) * s - 0.5
                cx, cy = (x + 0.5) * SCALE - 0.5, (y + 0.5) * SCALE - 0.5
                draw.ellipse((cx - 1, cy - 1, cx + 1, cy + 1), fill=colour(k))
        canvas.paste(tile, ((j % COLUMNS) * w * SCALE, (j // COLUMNS) * h * SCALE))
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed palette (61 greys + the 3 marker colours) keeps the committed PNGs small
    # without losing the marker colours, which an adaptive palette merges into greys.
    greys = [round(v) for v in np.linspace(0, 255, 61)]
    colours = [(g, g, g) for g in greys] + [colour(17), colour(48), colour(0)]
    palette = Image.new("P", (1, 1))
    palette.putpalette([c for rgb in colours for c in rgb] + [0] * 3 * (256 - len(colours)))
    canvas.quantize(palette=palette, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("landmarks", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--split", default="PublicTest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from mtl_heads.datasets import load_landmarks

    ds = FER2013(args.csv, split=args.split, landmarks=args.landmarks)
    passes = load_landmarks(args.landmarks).passes[ds.rows]
    rng = np.random.default_rng(args.seed)
    for name, mask in (("pass1", passes == 1), ("pass2", passes == 2), ("failures", passes == 0)):
        idx = np.flatnonzero(mask)
        idx = np.sort(rng.choice(idx, min(len(idx), COLUMNS * ROWS), replace=False))
        lm = None if name == "failures" else ds.landmarks[idx]
        grid(ds.images[idx], lm, args.out / f"landmarks_{name}.png")


if __name__ == "__main__":
    main()
