"""A Fig. 3-style grid (predicted vs target label maps on PublicTest faces) for docs/results.md.

Usage::

    python examples/fer2013_grid.py RUN --data fer2013.csv --landmarks fer2013_landmarks.npz \
        -o docs/img/fer2013_fig3.png

``RUN`` is a multi-task ``examples/train.py`` output folder trained on that file. Shows 12 faces,
as the paper's figure does; the data itself is never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/fer2013.py draws the grid

from fer2013 import write_grid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--landmarks", required=True)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    write_grid(args.data, args.landmarks, args.run, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
