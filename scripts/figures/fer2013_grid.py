"""A Fig. 3-style grid (predicted vs target label maps on PublicTest faces) for docs/results.md.

Usage::

    python scripts/figures/fer2013_grid.py RUN --data fer2013.csv \\
        --landmarks fer2013_landmarks.npz -o docs/img/fer2013_fig3.png

``RUN`` is a multi-task ``mtl-heads train`` output folder trained on that file. Shows 12 faces,
as the paper's figure does; the data itself is never committed.
"""

import argparse
import sys
from pathlib import Path

from mtl_heads.datasets import FER2013
from mtl_heads.study.figures import dataset_label_map_grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--landmarks", required=True)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    test = FER2013(args.data, split="PublicTest", landmarks=args.landmarks)
    if dataset_label_map_grid(args.run, test, args.output) is None:
        raise SystemExit(f"{args.data}: no PublicTest faces with landmarks (or no matplotlib)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
