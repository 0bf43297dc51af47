"""The overlay figure of docs/predict.md: FER2013 PublicTest faces pasted into one photo at
several sizes and positions, then ``mtl-heads predict --save-overlay`` on it.

    python scripts/figures/make_predict_figure.py --checkpoint RUN \\
        --data ../shared/data/fer2013.npz --output docs/img/predict_overlay.png

Picks the first PublicTest face of each of ``--classes`` (in FER2013 row order), pastes them into
a grey canvas at 2x-3.5x their size, writes the canvas beside the output (``*_input.png``) and
prints each face's true class, the model's top 3, and where it was pasted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_heads.predict import draw_overlay, predict

# (x, y, side) of each pasted face in a 600x290 canvas
PLACES = [(20, 60, 96), (150, 20, 168), (350, 90, 120), (500, 40, 84)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default="../shared/data/fer2013.npz")
    p.add_argument("--classes", nargs=4, default=["Happy", "Surprise", "Angry", "Neutral"])
    p.add_argument("--output", default="docs/img/predict_overlay.png")
    args = p.parse_args(argv)
    with np.load(args.data, allow_pickle=False) as data:
        names = list(data["label_names"])
        test = np.flatnonzero(data["split"] == "PublicTest")
        rows = [test[data["labels"][test] == names.index(c)][0] for c in args.classes]
        faces = data["images"][rows]
    canvas = np.full((290, 600), 150, np.uint8)
    canvas[:, :] = np.linspace(110, 190, 600, dtype=np.uint8)[None]  # a plain, shaded wall
    for face, (x, y, side) in zip(faces, PLACES, strict=True):
        canvas[y : y + side, x : x + side] = np.asarray(
            Image.fromarray(face).resize((side, side), Image.BICUBIC))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    photo = out.with_name(out.stem + "_input.png")
    Image.fromarray(canvas).save(photo)
    (result,), trained = predict(photo, args.checkpoint)
    print(f"{trained.path}: {trained.backbone}, {trained.label_maps} label maps")
    for row, cls, (x, y, side) in zip(rows, args.classes, PLACES, strict=True):
        hit = [f for f in result.faces if x <= (f.box[0] + f.box[2]) / 2 <= x + side]
        top = ", ".join(f"{c} {q:.2f}" for c, q in hit[0].top(trained.classes)) if hit else "-"
        print(f"row {row} ({cls}) at ({x}, {y}) {side} px: {'found' if hit else 'NOT found'}; "
              f"predicted {top}")
    draw_overlay(photo, result, trained.classes, trained.crop).save(out)
    print(f"wrote {out} and {photo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
