"""Measure where the eyes and the mouth sit in a 48x48 FER2013 face (the framing `predict` copies).

Runs dlib's 68-point detector (``mtl_heads.annotate.FaceLandmarkDetector``, 4x upsampling, both
passes) on PublicTest faces of ``fer2013.npz`` and prints the median eye and mouth centres, the
constants of :data:`mtl_heads.predict.FER_FRAMING`::

    python scripts/data/measure_fer_framing.py --data ../shared/data/fer2013.npz --num 400
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from mtl_heads.annotate import FaceLandmarkDetector
from mtl_heads.predict import face_anchors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/fer2013.npz")
    p.add_argument("--num", type=int, default=400, help="PublicTest faces to measure")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with np.load(args.data, allow_pickle=False) as data:
        rows = np.flatnonzero(data["split"] == "PublicTest")
        rows = np.sort(np.random.default_rng(args.seed).permutation(rows)[: args.num])
        images = data["images"][rows]
    det = FaceLandmarkDetector(upsample=4)
    found = det.detect(images)
    points = found["landmarks"][found["valid"]]
    anchors = face_anchors(points)  # (N, 3, 2): image-left eye, image-right eye, mouth
    med = np.median(anchors, axis=0)
    q1, q3 = np.percentile(anchors, [25, 75], axis=0)
    print(f"{len(points)} of {len(images)} PublicTest faces with landmarks (seed {args.seed})")
    for name, m, a, b in zip(("left eye", "right eye", "mouth"), med, q1, q3, strict=True):
        print(f"{name:10s} x {m[0]:6.2f} (IQR {a[0]:.2f}-{b[0]:.2f})  "
              f"y {m[1]:6.2f} (IQR {a[1]:.2f}-{b[1]:.2f})")
    eye = np.linalg.norm(anchors[:, 1] - anchors[:, 0], axis=1)
    print(f"eye distance median {np.median(eye):.2f} px (IQR {np.percentile(eye, 25):.2f}-"
          f"{np.percentile(eye, 75):.2f})")
    (lx, ly), (rx, ry), (mx, my) = med
    print(f"FER_FRAMING = (({lx:.2f}, {ly:.2f}), ({rx:.2f}, {ry:.2f}), ({mx:.2f}, {my:.2f}))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
