"""Draw docs/img/synthetic_faces.png: SyntheticFaces prototypes and random faces with landmarks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import PAPER_GROUPS


def main() -> None:
    out = Path(__file__).resolve().parents[2] / "docs" / "img" / "synthetic_faces.png"
    # one prototype per class: draw until each class has appeared
    protos = SyntheticFaces(70, seed=0, expression_strength=(1.0, 1.0), rotation=0.0,
                            scale=(1.0, 1.0), shift=0.0, noise=(0.0, 0.0), identity=0.0)
    first = [int(np.flatnonzero(protos.labels == c)[0]) for c in range(7)]
    random = SyntheticFaces(7, seed=1)
    colours = {g.name: c for g, c in zip(PAPER_GROUPS, ("red", "deepskyblue", "lime"), strict=True)}
    fig, axes = plt.subplots(2, 7, figsize=(10.5, 3.4))
    for col, i in enumerate(first):
        for row, (ds, j) in enumerate(((protos, i), (random, col))):
            ax = axes[row, col]
            ax.imshow(ds.images[j], cmap="gray", vmin=0, vmax=255)
            for g in PAPER_GROUPS:
                pts = ds.landmarks[j, list(g.indices)]
                ax.plot(pts[:, 0], pts[:, 1], ".", ms=2, color=colours[g.name])
            ax.set_title(ds.classes[int(ds.labels[j])], fontsize=8)
            ax.axis("off")
    fig.suptitle("SyntheticFaces: class prototypes (top), random faces (bottom); "
                 "brow and mouth landmarks", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
