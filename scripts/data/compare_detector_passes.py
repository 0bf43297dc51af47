"""Coverage and time of dlib HOG detector variants on random FER2013 images (docs/data.md).

Usage::

    python scripts/data/compare_detector_passes.py FER2013_CSV [--n 400] [--seed 0]

Prints, per variant, the share of images where the detector returns at least one box (no
plausibility check, no shape prediction) and the time per image on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mtl_heads.annotate import _import_dlib, _upsample
from mtl_heads.datasets import read_fer2013_csv


def equalise(image: np.ndarray) -> np.ndarray:
    cdf = np.bincount(image.ravel(), minlength=256).cumsum()
    lut = (cdf - cdf[0]) * 255 / max(cdf[-1] - cdf[0], 1)
    return lut.clip(0, 255).astype(np.uint8)[image]


VARIANTS = {
    "4x, threshold 0 (pass 1)": lambda a: (_upsample(a, 4), 0.0),
    "6x, threshold 0": lambda a: (_upsample(a, 6), 0.0),
    "4x equalised, threshold 0": lambda a: (_upsample(equalise(a), 4), 0.0),
    "4x, threshold -0.5 (no check)": lambda a: (_upsample(a, 4), -0.5),
    "4x, threshold -1.0 (no check)": lambda a: (_upsample(a, 4), -1.0),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images, _, _ = read_fer2013_csv(args.csv)
    idx = np.random.default_rng(args.seed).choice(len(images), args.n, replace=False)
    detector = _import_dlib().get_frontal_face_detector()
    print(f"{args.n} random images of {args.csv} (seed {args.seed})")
    for name, prepare in VARIANTS.items():
        t = time.perf_counter()
        found = 0
        for image in images[idx]:
            big, threshold = prepare(image)
            found += bool(detector.run(big, 0, threshold)[0])
        ms = (time.perf_counter() - t) / args.n * 1e3
        print(f"{name:32s} {found / args.n:6.1%}  {ms:5.1f} ms/image")


if __name__ == "__main__":
    main()
